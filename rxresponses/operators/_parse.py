"""SSE messages -> Chat chunks, and SSE messages -> typed Responses events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc

from ..errors import ChunkDecodeError
from ..sse import SSEMessage
from ..types.chat import ChatCompletionChunk, parse_chunk
from ..types.events import parse_event

__all__ = ["parse_chunks", "parse_events"]


def _message_data(value: SSEMessage | str | bytes) -> str | bytes:
    return value.data if isinstance(value, SSEMessage) else value


def parse_chunks() -> Callable[[Observable[Any]], Observable[ChatCompletionChunk]]:
    """Implementation of :func:`rxresponses.operators.parse_chunks`."""

    def _parse(source: Observable[Any]) -> Observable[ChatCompletionChunk]:
        def subscribe(
            observer: abc.ObserverBase[ChatCompletionChunk],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            def on_next(value: SSEMessage | str | bytes) -> None:
                data = _message_data(value)
                if data == "[DONE]" or data == b"[DONE]":
                    return
                try:
                    chunk = parse_chunk(data)
                except ChunkDecodeError as exc:
                    observer.on_error(exc)
                    return
                observer.on_next(chunk)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return _parse


def parse_events() -> Callable[[Observable[Any]], Observable[Any]]:
    """Implementation of :func:`rxresponses.operators.parse_events`."""

    def _parse(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_next(value: SSEMessage | str | bytes) -> None:
                data = _message_data(value)
                if data == "[DONE]" or data == b"[DONE]":
                    return
                try:
                    event = parse_event(data)
                except Exception as exc:
                    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
                    observer.on_error(ChunkDecodeError(f"undecodable event ({exc})", text))
                    return
                observer.on_next(event)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return _parse

"""Observables over the places LLM streams come from.

Every source is *cold*: nothing happens until you subscribe, and each subscription reads (or
requests) again. Subscribing twice to an HTTP source sends two requests; to fan one stream out, use
``share()`` / ``publish()`` (see the README).

Sync sources (:func:`from_bytes` over an iterable, :func:`from_file`, :func:`from_httpx`) read on
the thread that subscribes, unless you subscribe with a scheduler (``scheduler=...``), which they
honour. Async sources (:func:`from_bytes` over an async iterable, :func:`from_httpx_async`) run as
an asyncio task on the running loop, or on the loop of an ``AsyncIOScheduler`` passed at
subscription; disposing the subscription cancels the task, which closes the HTTP response.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
)
from pathlib import Path
from typing import Any, Literal

import httpx
from reactivex import Observable, abc
from reactivex.scheduler.eventloop import AsyncIOScheduler

from .errors import UpstreamError, UpstreamStatusError
from .operators import decode_sse
from .operators._core import IterableSource
from .sse import _BOM, DEFAULT_MAX_LINE_BYTES, SSEMessage
from .types._base import WIRE
from .types.chat import ChatCompletionChunk

__all__ = ["from_bytes", "from_file", "from_httpx", "from_httpx_async", "from_openai_chunks"]

_READ_SIZE = 64 * 1024


def from_bytes(source: Iterable[bytes] | AsyncIterable[bytes]) -> Observable[bytes]:
    """An Observable of the chunks of a bytes iterable or async iterable.

    The iterable is iterated once per subscription (pass a re-iterable, or subscribe once). A
    generator is closed when the subscription is disposed.
    """
    if isinstance(source, AsyncIterable):
        return _from_async(lambda: aiter(source))
    return _from_sync(lambda: iter(source))


def from_file(
    path: str | Path,
    *,
    format: Literal["auto", "sse", "jsonl"] = "auto",
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Observable[SSEMessage]:
    """An Observable of the messages in a recorded stream file.

    Args:
        path: The file. ``.sse`` (a raw ``text/event-stream`` body) or ``.jsonl`` / ``.ndjson``
            (one JSON payload per line, as ``rxresponses convert --format jsonl`` writes).
        format: ``auto`` decides by extension, else by the first byte (``{`` means JSONL).
        max_line_bytes: Line bound for the SSE decoder.

    A missing file surfaces as :class:`FileNotFoundError` through ``on_error``.
    """
    p = Path(path)

    def chunks() -> Iterator[bytes]:
        with p.open("rb") as fh:
            while block := fh.read(_READ_SIZE):
                yield block

    kind = format
    if kind == "auto":
        suffix = p.suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            kind = "jsonl"
        elif suffix in (".sse", ".txt", ".event-stream"):
            kind = "sse"
        else:
            kind = "jsonl" if _first_byte(p) == b"{" else "sse"
    if kind == "sse":
        return _from_sync(chunks).pipe(decode_sse(max_line_bytes=max_line_bytes))

    def lines() -> Iterator[SSEMessage]:
        with p.open("rb") as fh:
            for number, raw in enumerate(fh):
                line = raw.strip()
                if number == 0:
                    line = line.removeprefix(_BOM).lstrip()  # as the SSE decoder does
                if line:
                    yield SSEMessage(line.decode("utf-8", "replace"))

    return _from_sync(lines)


def _first_byte(p: Path) -> bytes:
    try:
        with p.open("rb") as fh:
            return fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    except OSError:
        return b""


def from_httpx(
    client: httpx.Client,
    method_or_request: str | httpx.Request,
    url: str | None = None,
    **kwargs: Any,
) -> Observable[bytes]:
    """Stream a response body with a sync ``httpx.Client``.

    The request is sent when subscribed (``client.stream(method, url, **kwargs)``, or
    ``client.send(request, stream=True)``) and the response is closed on completion, error and
    dispose. A non-2xx status ends the stream with :class:`~rxresponses.errors.UpstreamStatusError`
    (status code and the first 64 KiB of the body as text); a transport failure with
    :class:`~rxresponses.errors.UpstreamError`. So does a 2xx answer whose content type is
    ``application/json`` instead of an event stream (a server that ignored ``"stream": true``, or
    a proxy that reports errors with a 200): the error carries the body's own ``error.message``
    when it has one. Other content types are read as SSE (some servers send ``text/plain``).
    """
    request = _build(client, method_or_request, url, kwargs)

    def open_stream() -> Iterator[bytes]:
        try:
            response = client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc
        try:
            if not response.is_success or _is_json(response):
                body = b""
                for block in response.iter_bytes():
                    body += block
                    if len(body) >= MAX_ERROR_BODY_BYTES:
                        break
                raise _answer_error(response, body)
            try:
                yield from response.iter_bytes()
            except httpx.HTTPError as exc:
                raise _transport_error(exc) from exc
        finally:
            response.close()

    return _from_sync(open_stream)


def from_httpx_async(
    client: httpx.AsyncClient,
    method_or_request: str | httpx.Request,
    url: str | None = None,
    **kwargs: Any,
) -> Observable[bytes]:
    """Stream a response body with an ``httpx.AsyncClient`` (see :func:`from_httpx`).

    Runs as an asyncio task; disposing the subscription cancels it and closes the response, so the
    upstream connection is released at once.
    """
    request = _build(client, method_or_request, url, kwargs)

    async def open_stream() -> AsyncIterator[bytes]:
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc
        try:
            if not response.is_success or _is_json(response):
                body = b""
                async for block in response.aiter_bytes():
                    body += block
                    if len(body) >= MAX_ERROR_BODY_BYTES:
                        break
                raise _answer_error(response, body)
            try:
                async for chunk in response.aiter_bytes():
                    yield chunk
            except httpx.HTTPError as exc:
                raise _transport_error(exc) from exc
        finally:
            await response.aclose()

    return _from_async(open_stream)


def from_openai_chunks(
    chunks: Iterable[Any] | AsyncIterable[Any],
) -> Observable[ChatCompletionChunk]:
    """An Observable of :class:`~rxresponses.types.chat.ChatCompletionChunk` from the openai SDK.

    Takes what ``client.chat.completions.create(..., stream=True)`` returns (an
    ``openai.Stream[ChatCompletionChunk]`` or an ``openai.AsyncStream``), or any iterable / async
    iterable of chunk objects with ``model_dump()`` (pydantic models) or of plain dicts. Pipe it
    into :func:`~rxresponses.pipelines.chat_to_responses`::

        stream = openai_client.chat.completions.create(model=..., messages=..., stream=True)
        events = from_openai_chunks(stream).pipe(chat_to_responses())

    Fields the SDK models keep as extras (``reasoning_content``, ``reasoning_details``...) are
    kept. The stream is iterated once per subscription and closed (``close()`` / ``aclose()``,
    which releases the HTTP response) when the subscription completes, fails or is disposed.
    """

    def convert(chunk: Any) -> ChatCompletionChunk:
        if isinstance(chunk, ChatCompletionChunk):
            return chunk
        data = chunk if isinstance(chunk, dict) else chunk.model_dump(mode="json")
        return ChatCompletionChunk.model_validate(data, context=WIRE)

    if isinstance(chunks, AsyncIterable):
        source: AsyncIterable[Any] = chunks

        async def aconverted() -> AsyncIterator[ChatCompletionChunk]:
            try:
                async for chunk in source:
                    yield convert(chunk)
            finally:
                close = getattr(source, "close", None) or getattr(source, "aclose", None)
                if close is not None:
                    result = close()
                    if asyncio.iscoroutine(result):
                        await result

        return _from_async(aconverted)

    sync_source: Iterable[Any] = chunks

    def converted() -> Iterator[ChatCompletionChunk]:
        try:
            for chunk in sync_source:
                yield convert(chunk)
        finally:
            close = getattr(sync_source, "close", None)
            if close is not None:
                close()

    return _from_sync(converted)


#: How much of an error body (non-2xx, or JSON instead of SSE) the sources read.
MAX_ERROR_BODY_BYTES = 64 * 1024


def _is_json(response: httpx.Response) -> bool:
    media = str(response.headers.get("content-type", "")).split(";", 1)[0].strip().lower()
    return media == "application/json"


def _answer_error(response: httpx.Response, body: bytes) -> UpstreamError:
    """The error for an answer that is not an event stream (see :func:`from_httpx`)."""
    text = body[:MAX_ERROR_BODY_BYTES].decode("utf-8", "replace")
    if not response.is_success:
        return UpstreamStatusError(response.status_code, text)
    message = "upstream answered application/json, not an event stream"
    code: str | None = None
    try:
        error = json.loads(text).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        message = f"upstream error: {error.get('message') or error}"
        code = error.get("code") if isinstance(error.get("code"), str) else None
    elif isinstance(error, str):
        message = f"upstream error: {error}"
    else:
        message += ' (did it ignore "stream": true?)'
    exc = UpstreamError(message)
    if code:
        exc.code = code
    return exc


def _build(
    client: httpx.Client | httpx.AsyncClient,
    method_or_request: str | httpx.Request,
    url: str | None,
    kwargs: dict[str, Any],
) -> httpx.Request:
    if isinstance(method_or_request, httpx.Request):
        if url is not None or kwargs:
            raise TypeError("pass either an httpx.Request or method, url and request options")
        return method_or_request
    if url is None:
        raise TypeError("from_httpx(client, method, url, ...) needs a url")
    return client.build_request(method_or_request, url, **kwargs)


def _transport_error(exc: httpx.HTTPError) -> UpstreamError:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError(f"upstream timed out ({type(exc).__name__})")
    return UpstreamError(f"upstream connection failed: {exc or type(exc).__name__}")


def _from_sync(factory: Callable[[], Iterator[Any]]) -> Observable[Any]:
    """Iterate ``factory()`` on subscription; close the iterator when done or disposed. The
    operators' driver iterates it itself (see
    :class:`~rxresponses.operators._core.IterableSource`)."""
    return IterableSource(factory)


def _from_async(factory: Callable[[], AsyncIterator[Any]]) -> Observable[Any]:
    """Run ``async for`` over ``factory()`` as a task; dispose cancels the task.

    The task is created and cancelled on its loop's thread: subscribed (or disposed) from another
    thread (a worker of :func:`~rxresponses.bridges.aiterate` whose sync source feeds a
    ``flat_map`` of async sources), it is handed over with ``call_soon_threadsafe``, which also
    wakes a loop that sleeps waiting for input; a task created there with ``create_task`` would
    not run until something else woke the loop, if ever.
    """

    def subscribe(
        observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        if isinstance(scheduler, AsyncIOScheduler):
            loop = scheduler._loop
        else:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise RuntimeError(
                    "an async source needs a running asyncio loop: subscribe inside a coroutine, "
                    "or pass scheduler=AsyncIOScheduler(loop)"
                ) from None

        async def run() -> None:
            iterator = factory()
            try:
                async for item in iterator:
                    observer.on_next(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                observer.on_error(exc)
                return
            finally:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
            observer.on_completed()

        return _LoopTask(loop, run)

    return Observable(subscribe)


def _on_thread_of(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class _LoopTask(abc.DisposableBase):
    """A task of ``loop`` running ``run()``, started and cancelled on the loop's thread whichever
    thread asks (the disposable of :func:`_from_async`)."""

    __slots__ = ("_cancelled", "_loop", "_run", "_task")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, run: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        self._loop = loop
        self._run = run
        self._task: asyncio.Task[None] | None = None
        self._cancelled = False
        if _on_thread_of(loop):
            self._start()
        else:
            loop.call_soon_threadsafe(self._start)

    def _start(self) -> None:
        if not self._cancelled:
            self._task = self._loop.create_task(self._run())

    def _cancel(self) -> None:
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()

    def dispose(self) -> None:
        if self._task is not None and self._task.done():
            return
        if _on_thread_of(self._loop):
            self._cancel()
        elif not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: nothing runs any more
                self._loop.call_soon_threadsafe(self._cancel)

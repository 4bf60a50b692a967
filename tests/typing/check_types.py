"""What a type checker sees of the public API: checked by ``mypy --strict`` from
``tests/test_typing.py``, never run.

Each ``assert_type`` is a promise to users: the pipelines yield the ``ResponseStreamEvent`` union,
and it narrows on ``event.type``.
"""

from __future__ import annotations

from typing import assert_type

import reactivex
from reactivex import Observable

from rxresponses import (
    chat_sse_to_responses,
    chat_to_responses,
    from_bytes,
    from_file,
    get_final_response,
    iterate,
    parse_events,
    responses_sse_to_events,
)
from rxresponses import operators as rxo
from rxresponses.types.chat import ChatCompletionChunk
from rxresponses.types.events import (
    ResponseCompletedEvent,
    ResponseErrorEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseStreamEvent,
    ResponseTextDeltaEvent,
    UnknownEvent,
)
from rxresponses.types.response import Response
from rxresponses.types.signals import Signal


def pipelines(body: list[bytes], chunks: Observable[ChatCompletionChunk]) -> None:
    events = from_bytes(body).pipe(chat_sse_to_responses(response_id="resp_1", think_tags=False))
    assert_type(events, Observable[ResponseStreamEvent])
    assert_type(chunks.pipe(chat_to_responses()), Observable[ResponseStreamEvent])
    assert_type(from_bytes(body).pipe(responses_sse_to_events()), Observable[ResponseStreamEvent])
    assert_type(from_file("x.sse").pipe(parse_events()), Observable[ResponseStreamEvent])
    assert_type(get_final_response(events), Response)
    assert_type(events.pipe(rxo.final_response()), Observable[Response])


def composed(chunks: Observable[ChatCompletionChunk]) -> None:
    signals = chunks.pipe(rxo.split_by_item())
    assert_type(signals, Observable[Signal])
    events = signals.pipe(
        rxo.collect_reasoning(),
        rxo.accumulate_text(),
        rxo.join_tool_args(),
        rxo.assemble(response_id="resp_1"),
    )
    assert_type(events, Observable[ResponseStreamEvent])


def narrowing(events: Observable[ResponseStreamEvent]) -> None:
    for event in iterate(events):
        assert_type(event.sequence_number, int)
        if event.type == "response.output_text.delta":
            assert_type(event, ResponseTextDeltaEvent)
            assert_type(event.delta, str)
        elif event.type == "response.function_call_arguments.delta":
            assert_type(event, ResponseFunctionCallArgumentsDeltaEvent)
        elif event.type == "response.completed":
            assert_type(event, ResponseCompletedEvent)
            assert_type(event.response, Response)
        elif event.type == "error":
            assert_type(event, ResponseErrorEvent)
            assert_type(event.error_message, str)
        elif isinstance(event, UnknownEvent):
            assert_type(event.event_type, str)


def sources() -> None:
    assert_type(
        reactivex.of(b"data: {}\n\n").pipe(chat_sse_to_responses()), Observable[ResponseStreamEvent]
    )

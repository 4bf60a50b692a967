"""Each operator under RxPY's TestScheduler / marbles, with the expected values written out.

Also: per-subscription state, user stages inserted between the operators, the PipelineError of a
mis-wired pipeline, ``final_response()`` on streams that do not complete, and the bridges out of Rx.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pydantic
import pytest
import reactivex
from pydantic import BaseModel
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing

from rxresponses import operators as rxo
from rxresponses.bridges import aget_final_response, aiterate, get_final_response, iterate
from rxresponses.errors import ChunkDecodeError, PipelineError, UpstreamStatusError
from rxresponses.pipelines import chat_to_responses, chat_to_responses_composed
from rxresponses.sse import SSEMessage, encode_event
from rxresponses.types._base import to_dict
from rxresponses.types.chat import parse_chunk
from rxresponses.types.events import (
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    UnknownEvent,
)
from rxresponses.types.response import (
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseUsage,
)
from rxresponses.types.signals import (
    ItemFinished,
    ItemStarted,
    ReasoningDelta,
    RefusalDelta,
    StreamFinished,
    StreamStarted,
    TextDelta,
    ToolCallDelta,
)
from tests._util import Ids, chunk, dumps
from tests.grammar import check_stream

pytestmark = pytest.mark.filterwarnings("error::UserWarning")  # pydantic serializer warnings

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error

CREATED = 1_700_000_000


def _value(v: Any) -> Any:
    return to_dict(v) if isinstance(v, BaseModel) else v


def record(messages: list[Any]) -> list[tuple[Any, ...]]:
    """Recorded notifications as ``(time, "N", dump)``, ``(time, "C")``, ``(time, "E", exc)``."""
    out: list[tuple[Any, ...]] = []
    for m in messages:
        n = m.value
        if n.kind == "N":
            out.append((m.time, "N", _value(n.value)))
        elif n.kind == "E":
            out.append((m.time, "E", n.exception))
        else:
            out.append((m.time, "C"))
    return out


def run_hot(operator: Any, values: list[tuple[int, Any]], end: int = 300) -> list[tuple[Any, ...]]:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(*[on_next(t, v) for t, v in values], on_completed(end))
    return record(scheduler.start(lambda: xs.pipe(operator)).messages)


def parsed(*chunks: dict[str, Any]) -> list[Any]:
    return [parse_chunk(json.dumps(c)) for c in chunks]


def collect(source: reactivex.Observable[Any]) -> tuple[list[Any], list[Exception], bool]:
    values: list[Any] = []
    errors: list[Exception] = []
    done: list[bool] = []
    source.subscribe(values.append, errors.append, lambda: done.append(True))
    return values, errors, bool(done)


# A small Chat stream used throughout: reasoning, text, one tool call, usage.
STREAM = [
    chunk({"role": "assistant", "content": None, "reasoning_content": "Think"}),
    chunk({"content": None, "reasoning_content": "ing."}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo"}),
    chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_w",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":'},
                }
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
    chunk({}, "tool_calls"),
    chunk(
        choices=[],
        usage={
            "prompt_tokens": 11,
            "completion_tokens": 7,
            "total_tokens": 18,
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    ),
]
USAGE = {
    "input_tokens": 11,
    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
    "output_tokens": 7,
    "output_tokens_details": {"reasoning_tokens": 2},
    "total_tokens": 18,
}
REASONING_ITEM = {
    "id": "rs_1",
    "type": "reasoning",
    "summary": [],
    "content": [{"type": "reasoning_text", "text": "Thinking."}],
    "status": "completed",
}
MESSAGE_ITEM = {
    "id": "msg_1",
    "type": "message",
    "status": "completed",
    "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Hello"}],
    "role": "assistant",
}
CALL_ITEM = {
    "id": "fc_1",
    "type": "function_call",
    "status": "completed",
    "arguments": '{"city":"Paris"}',
    "call_id": "call_w",
    "name": "get_weather",
}
EXPECTED_TYPES = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.reasoning_text.delta",
    "response.reasoning_text.delta",
    "response.reasoning_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
]


def convert(
    chunks: list[dict[str, Any]], *, composed: bool = False, **kw: Any
) -> list[dict[str, Any]]:
    op = chat_to_responses_composed if composed else chat_to_responses
    pipeline = op(ids=Ids(), response_id="resp_1", created_at=CREATED, **kw)
    values, errors, done = collect(reactivex.from_iterable(parsed(*chunks)).pipe(pipeline))
    assert (errors, done) == ([], True)
    return dumps(values, wall_clock=False)


# -- decode_sse / parse_chunks / parse_events ------------------------------------------------------


def test_decode_sse_marbles() -> None:
    lookup = {
        "a": b"data: he",
        "b": b"llo\n\nevent: e\r\n",
        "c": b"data: x\r\n\r\ndata: [DONE]\n\n",
        "h": SSEMessage("hello"),
        "x": SSEMessage("x", event="e"),
        "d": SSEMessage("[DONE]"),
    }
    with marbles_testing(timespan=1.0) as (start, cold, _hot, exp):
        source = cold("-a-b-c-a-|", lookup)
        assert start(source.pipe(rxo.decode_sse())) == exp("---h-(x,d,|)", lookup)


def test_parse_chunks() -> None:
    first = chunk({"role": "assistant", "content": "Hi"})
    results = run_hot(
        rxo.parse_chunks(),
        [
            (210, SSEMessage(json.dumps(first))),
            (220, SSEMessage("[DONE]")),  # passed on, for split_by_item()
            (230, json.dumps(chunk({}, "stop"))),  # a raw data string is accepted too
            (235, "[DONE]"),  # as a string too: it becomes the message
            (240, SSEMessage("not json")),
            (250, SSEMessage(json.dumps(first))),
        ],
    )
    assert results[0] == (210, "N", first)
    assert results[1] == (220, "N", SSEMessage("[DONE]"))
    assert results[2] == (230, "N", chunk({}, "stop"))
    assert results[3] == (235, "N", SSEMessage("[DONE]"))
    time, kind, exc = results[4]
    assert (time, kind) == (240, "E")
    assert isinstance(exc, ChunkDecodeError)
    assert exc.data == "not json"
    assert len(results) == 5


def test_parse_events() -> None:
    created = {
        "type": "response.created",
        "sequence_number": 0,
        "response": {
            "id": "resp_1",
            "object": "response",
            "created_at": 1,
            "status": "in_progress",
            "model": "m",
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        },
    }
    unknown = {"type": "response.brand_new_thing", "sequence_number": 1, "x": [1, 2]}
    results = run_hot(
        rxo.parse_events(),
        [
            (210, SSEMessage(json.dumps(created))),
            (220, SSEMessage(json.dumps(unknown))),
            (230, SSEMessage("[DONE]")),
            (240, SSEMessage("{broken")),
        ],
    )
    assert results[:2] == [(210, "N", created), (220, "N", unknown)]
    assert results[2][:2] == (240, "E")
    assert isinstance(results[2][2], ChunkDecodeError)


def test_parse_events_unknown_type_is_kept_not_raised() -> None:
    values, errors, _ = collect(
        reactivex.of(SSEMessage('{"type":"keepalive_v2","sequence_number":3}')).pipe(
            rxo.parse_events()
        )
    )
    assert errors == []
    assert isinstance(values[0], UnknownEvent)
    assert values[0].raw == {"type": "keepalive_v2", "sequence_number": 3}


# -- split_by_item ---------------------------------------------------------------------------------


def test_split_by_item_operator() -> None:
    a, b, c = parsed(chunk({"content": "Hi"}), chunk({"content": "!"}), chunk({}, "stop"))
    results = run_hot(rxo.split_by_item(ids=Ids()), [(210, a), (220, b), (230, c)])
    assert results == [
        (210, "N", StreamStarted("test-model", CREATED, "chatcmpl-1")),
        (210, "N", ItemStarted("message", "msg_1", 0)),
        (210, "N", TextDelta("msg_1", 0, "Hi")),
        (220, "N", TextDelta("msg_1", 0, "!")),
        (230, "N", ItemFinished("message", "msg_1", 0)),
        (300, "N", StreamFinished("completed")),
        (300, "C"),
    ]


def test_split_by_item_upstream_error_becomes_failed_finish() -> None:
    scheduler = TestScheduler()
    boom = ConnectionResetError("reset by peer")
    xs = scheduler.create_hot_observable(
        on_next(210, parsed(chunk({"content": "so far"}))[0]), on_error(250, boom)
    )
    results = record(scheduler.start(lambda: xs.pipe(rxo.split_by_item(ids=Ids()))).messages)
    assert results == [
        (210, "N", StreamStarted("test-model", CREATED, "chatcmpl-1")),
        (210, "N", ItemStarted("message", "msg_1", 0)),
        (210, "N", TextDelta("msg_1", 0, "so far")),
        (250, "N", ItemFinished("message", "msg_1", 0, "incomplete")),
        (
            250,
            "N",
            StreamFinished("failed", error_code="server_error", error_message="reset by peer"),
        ),
        (250, "C"),
    ]


def test_split_by_item_completes_at_stream_finished() -> None:
    # an error object in a chunk ends the stream at once; the source is let go
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(
        on_next(210, parsed(chunk(choices=[], error={"message": "overloaded"}))[0]),
        on_next(220, parsed(chunk({"content": "late"}))[0]),
        on_completed(300),
    )
    results = scheduler.start(lambda: xs.pipe(rxo.split_by_item(ids=Ids())))
    assert record(results.messages)[-2:] == [
        (210, "N", StreamFinished("failed", error_code=None, error_message="overloaded")),
        (210, "C"),
    ]
    assert xs.subscriptions[0].unsubscribe == 210


# -- collect_reasoning / accumulate_text / join_tool_args ------------------------------------------

PASS = StreamStarted("m", 1)  # a value the item stages do not own: passed through unchanged


def test_collect_reasoning_raw_text() -> None:
    results = run_hot(
        rxo.collect_reasoning(),
        [
            (205, PASS),
            (210, ItemStarted("reasoning", "rs_a", 3)),
            (220, ReasoningDelta("rs_a", 3, "Think")),
            (230, ReasoningDelta("rs_a", 3, "ing.")),
            (240, ItemFinished("reasoning", "rs_a", 3)),
            (250, TextDelta("msg_b", 4, "not mine")),
        ],
    )
    assert results == [
        (205, "N", PASS),
        (210, "N", {"type": "response.output_item.added", "sequence_number": 0, "output_index": 3,
                    "item": {"id": "rs_a", "type": "reasoning", "summary": [], "content": [],
                             "status": "in_progress"}}),
        (220, "N", {"type": "response.content_part.added", "sequence_number": 0, "item_id": "rs_a",
                    "output_index": 3, "content_index": 0,
                    "part": {"type": "reasoning_text", "text": ""}}),
        (220, "N", {"type": "response.reasoning_text.delta", "sequence_number": 0,
                    "item_id": "rs_a", "output_index": 3, "content_index": 0, "delta": "Think"}),
        (230, "N", {"type": "response.reasoning_text.delta", "sequence_number": 0,
                    "item_id": "rs_a", "output_index": 3, "content_index": 0, "delta": "ing."}),
        (240, "N", {"type": "response.reasoning_text.done", "sequence_number": 0, "item_id": "rs_a",
                    "output_index": 3, "content_index": 0, "text": "Thinking."}),
        (240, "N", {"type": "response.content_part.done", "sequence_number": 0, "item_id": "rs_a",
                    "output_index": 3, "content_index": 0,
                    "part": {"type": "reasoning_text", "text": "Thinking."}}),
        (240, "N", {"type": "response.output_item.done", "sequence_number": 0, "output_index": 3,
                    "item": {"id": "rs_a", "type": "reasoning", "summary": [],
                             "content": [{"type": "reasoning_text", "text": "Thinking."}],
                             "status": "completed"}}),
        (250, "N", TextDelta("msg_b", 4, "not mine")),
        (300, "C"),
    ]  # fmt: skip


def test_collect_reasoning_as_summary() -> None:
    results = run_hot(
        rxo.collect_reasoning(as_summary=True),
        [
            (210, ItemStarted("reasoning", "rs_a", 0)),
            (220, ReasoningDelta("rs_a", 0, "Sum")),
            (230, ReasoningDelta("rs_a", 0, "mary")),
            (240, ItemFinished("reasoning", "rs_a", 0, "incomplete")),
        ],
    )
    assert [r[2]["type"] for r in results if r[1] == "N"] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    assert results[1][2]["part"] == {"type": "summary_text", "text": ""}
    assert results[1][2]["summary_index"] == 0
    assert results[4][2]["text"] == "Summary"
    assert results[5][2]["part"] == {"type": "summary_text", "text": "Summary"}
    assert results[6][2]["item"] == {
        "id": "rs_a",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "Summary"}],
        "content": [],
        "status": "incomplete",
    }


def test_collect_reasoning_empty_item() -> None:
    results = run_hot(
        rxo.collect_reasoning(),
        [(210, ItemStarted("reasoning", "rs_a", 0)), (220, ItemFinished("reasoning", "rs_a", 0))],
    )
    assert [r[2] for r in results if r[1] == "N"][-1]["item"] == {
        "id": "rs_a", "type": "reasoning", "summary": [], "content": [], "status": "completed"
    }  # fmt: skip


def test_accumulate_text_parts() -> None:
    results = run_hot(
        rxo.accumulate_text(),
        [
            (210, ItemStarted("message", "msg_a", 1)),
            (220, TextDelta("msg_a", 1, "He")),
            (230, TextDelta("msg_a", 1, "y")),
            (240, RefusalDelta("msg_a", 1, "No.")),
            (250, TextDelta("msg_a", 1, "!")),
            (260, ItemFinished("message", "msg_a", 1)),
            (270, ReasoningDelta("rs_x", 0, "not mine")),
        ],
    )
    text_part = {"type": "output_text", "annotations": [], "logprobs": []}
    ev = {"sequence_number": 0, "item_id": "msg_a", "output_index": 1}
    assert results == [
        (210, "N", {"type": "response.output_item.added", "sequence_number": 0, "output_index": 1,
                    "item": {"id": "msg_a", "type": "message", "status": "in_progress",
                             "content": [], "role": "assistant"}}),
        (220, "N", {"type": "response.content_part.added", **ev, "content_index": 0,
                    "part": {**text_part, "text": ""}}),
        (220, "N", {"type": "response.output_text.delta", **ev, "content_index": 0, "delta": "He",
                    "logprobs": []}),
        (230, "N", {"type": "response.output_text.delta", **ev, "content_index": 0, "delta": "y",
                    "logprobs": []}),
        (240, "N", {"type": "response.output_text.done", **ev, "content_index": 0, "text": "Hey",
                    "logprobs": []}),
        (240, "N", {"type": "response.content_part.done", **ev, "content_index": 0,
                    "part": {**text_part, "text": "Hey"}}),
        (240, "N", {"type": "response.content_part.added", **ev, "content_index": 1,
                    "part": {"type": "refusal", "refusal": ""}}),
        (240, "N", {"type": "response.refusal.delta", **ev, "content_index": 1, "delta": "No."}),
        (250, "N", {"type": "response.refusal.done", **ev, "content_index": 1, "refusal": "No."}),
        (250, "N", {"type": "response.content_part.done", **ev, "content_index": 1,
                    "part": {"type": "refusal", "refusal": "No."}}),
        (250, "N", {"type": "response.content_part.added", **ev, "content_index": 2,
                    "part": {**text_part, "text": ""}}),
        (250, "N", {"type": "response.output_text.delta", **ev, "content_index": 2, "delta": "!",
                    "logprobs": []}),
        (260, "N", {"type": "response.output_text.done", **ev, "content_index": 2, "text": "!",
                    "logprobs": []}),
        (260, "N", {"type": "response.content_part.done", **ev, "content_index": 2,
                    "part": {**text_part, "text": "!"}}),
        (260, "N", {"type": "response.output_item.done", "sequence_number": 0, "output_index": 1,
                    "item": {"id": "msg_a", "type": "message", "status": "completed",
                             "content": [{**text_part, "text": "Hey"},
                                         {"type": "refusal", "refusal": "No."},
                                         {**text_part, "text": "!"}],
                             "role": "assistant"}}),
        (270, "N", ReasoningDelta("rs_x", 0, "not mine")),
        (300, "C"),
    ]  # fmt: skip


def test_accumulate_text_logprobs() -> None:
    lp = [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105],
           "top_logprobs": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105]}]}]  # fmt: skip
    results = run_hot(
        rxo.accumulate_text(),
        [
            (210, ItemStarted("message", "m", 0)),
            (220, TextDelta("m", 0, "Hi", lp)),
            (230, ItemFinished("message", "m", 0)),
        ],
    )
    # as OpenAI sends them: ``bytes`` on the delta and .done events too (the SDK's delta Logprob
    # does not declare it; it is kept as an extra), never replaced by an empty list
    assert results[2][2]["logprobs"] == lp  # output_text.delta
    assert results[3][2]["logprobs"] == lp  # output_text.done
    assert results[4][2]["part"]["logprobs"] == lp  # content_part.done
    assert results[5][2]["item"]["content"][0]["logprobs"] == lp  # output_item.done


def test_join_tool_args() -> None:
    results = run_hot(
        rxo.join_tool_args(),
        [
            (210, ItemStarted("function_call", "fc_a", 2, "call_a", "get_weather")),
            (220, ToolCallDelta("fc_a", 2, '{"city":')),
            (230, ToolCallDelta("fc_a", 2, '"Paris"}')),
            (240, ItemFinished("function_call", "fc_a", 2)),
            (250, PASS),
        ],
    )
    ev = {"sequence_number": 0, "item_id": "fc_a", "output_index": 2}
    item = {"id": "fc_a", "type": "function_call", "call_id": "call_a", "name": "get_weather"}
    assert results == [
        (210, "N", {"type": "response.output_item.added", "sequence_number": 0, "output_index": 2,
                    "item": {**item, "status": "in_progress", "arguments": ""}}),
        (220, "N", {"type": "response.function_call_arguments.delta", **ev, "delta": '{"city":'}),
        (230, "N", {"type": "response.function_call_arguments.delta", **ev, "delta": '"Paris"}'}),
        (240, "N", {"type": "response.function_call_arguments.done", **ev,
                    "arguments": '{"city":"Paris"}'}),
        (240, "N", {"type": "response.output_item.done", "sequence_number": 0, "output_index": 2,
                    "item": {**item, "status": "completed", "arguments": '{"city":"Paris"}'}}),
        (250, "N", PASS),
        (300, "C"),
    ]  # fmt: skip
    # key order aside, the items carry exactly these fields
    assert set(results[0][2]["item"]) == {"id", "type", "call_id", "name", "status", "arguments"}


# -- assemble --------------------------------------------------------------------------------------


def _message_events(output_index: int) -> list[Any]:
    msg = ResponseOutputMessage(id="msg_a", content=[], role="assistant", status="in_progress")
    done = ResponseOutputMessage(
        id="msg_a",
        content=[ResponseOutputText(annotations=[], text="Hi", logprobs=[])],
        role="assistant",
        status="completed",
    )
    return [
        ResponseOutputItemAddedEvent(output_index=output_index, item=msg),
        ResponseContentPartAddedEvent(
            item_id="msg_a",
            output_index=output_index,
            content_index=0,
            part=ResponseOutputText(annotations=[], text="", logprobs=[]),
        ),
        ResponseTextDeltaEvent(
            item_id="msg_a", output_index=output_index, content_index=0, delta="Hi", logprobs=[]
        ),
        ResponseTextDoneEvent(
            item_id="msg_a", output_index=output_index, content_index=0, text="Hi", logprobs=[]
        ),
        ResponseContentPartDoneEvent(
            item_id="msg_a",
            output_index=output_index,
            content_index=0,
            part=ResponseOutputText(annotations=[], text="Hi", logprobs=[]),
        ),
        ResponseOutputItemDoneEvent(output_index=output_index, item=done),
    ]


def test_assemble_numbers_and_terminates() -> None:
    usage = ResponseUsage.model_validate(USAGE)
    values = [
        (210, StreamStarted("up-model", 1_650_000_000, "chatcmpl-9")),
        *[(220 + i, e) for i, e in enumerate(_message_events(7))],  # output_index 7 -> 0
        (240, StreamFinished("completed", usage=usage)),
        (250, TextDelta("late", 0, "ignored after the end")),
    ]
    results = run_hot(rxo.assemble(response_id="resp_z"), values)
    events = [r[2] for r in results if r[1] == "N"]
    assert [(e["type"], e["sequence_number"]) for e in events] == [
        ("response.created", 0),
        ("response.in_progress", 1),
        ("response.output_item.added", 2),
        ("response.content_part.added", 3),
        ("response.output_text.delta", 4),
        ("response.output_text.done", 5),
        ("response.content_part.done", 6),
        ("response.output_item.done", 7),
        ("response.completed", 8),
    ]
    assert [e.get("output_index") for e in events[2:8]] == [0] * 6
    assert results[-1] == (240, "C")
    created, terminal = events[0]["response"], events[-1]["response"]
    assert (created["id"], created["model"], created["created_at"]) == (
        "resp_z",
        "up-model",
        1_650_000_000,
    )
    assert (created["status"], created["output"], created["usage"]) == ("in_progress", [], None)
    assert terminal["status"] == "completed"
    assert isinstance(terminal["completed_at"], int)
    assert terminal["usage"] == USAGE
    assert terminal["output"] == [
        {
            "id": "msg_a",
            "type": "message",
            "status": "completed",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Hi"}],
            "role": "assistant",
        }
    ]
    check_stream(events)


def test_assemble_options_override_upstream() -> None:
    values = [(210, StreamStarted("up", 5, "x")), (220, StreamFinished("completed"))]
    results = run_hot(
        rxo.assemble(
            response_id="resp_o",
            model="my-model",
            created_at=42,
            echo={"instructions": "Be brief.", "temperature": 0.5},
        ),
        values,
    )
    for _, _, event in results[:-1]:
        r = event["response"]
        assert (r["id"], r["model"], r["created_at"]) == ("resp_o", "my-model", 42)
        assert (r["instructions"], r["temperature"]) == ("Be brief.", 0.5)


def test_assemble_incomplete() -> None:
    results = run_hot(
        rxo.assemble(response_id="r"),
        [
            (210, StreamStarted("m", 1)),
            (220, StreamFinished("incomplete", incomplete_reason="max_output_tokens")),
        ],
    )
    terminal = results[-2][2]
    assert terminal["type"] == "response.incomplete"
    assert terminal["sequence_number"] == 2
    assert terminal["response"]["status"] == "incomplete"
    assert terminal["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert terminal["response"]["completed_at"] is None


def test_assemble_failed_with_a_schema_code() -> None:
    results = run_hot(
        rxo.assemble(response_id="r"),
        [
            (210, StreamStarted("m", 1)),
            (
                220,
                StreamFinished(
                    "failed", error_code="rate_limit_exceeded", error_message="slow down"
                ),
            ),
        ],
    )
    error, failed = results[-3][2], results[-2][2]
    assert error == {
        "type": "error",
        "sequence_number": 2,
        "code": "rate_limit_exceeded",
        "message": "slow down",
        "param": None,
    }
    assert failed["type"] == "response.failed"
    assert failed["sequence_number"] == 3
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": "rate_limit_exceeded", "message": "slow down"}


def test_assemble_failed_with_a_provider_code() -> None:
    # response.error.code is a closed list: other codes go into the message
    results = run_hot(
        rxo.assemble(response_id="r"),
        [(210, StreamFinished("failed", error_code="502", error_message="Provider disconnected"))],
    )
    events = [r[2] for r in results if r[1] == "N"]
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]
    assert events[2]["code"] == "502"
    assert events[3]["response"]["error"] == {
        "code": "server_error",
        "message": "502: Provider disconnected",
    }
    check_stream(events)


def test_assemble_upstream_error_closes_open_items_and_fails() -> None:
    scheduler = TestScheduler()
    events = _message_events(0)[:3]  # item and part opened, one delta, never closed
    xs = scheduler.create_hot_observable(
        on_next(210, StreamStarted("m", 1)),
        *[on_next(220 + i, e) for i, e in enumerate(events)],
        on_error(250, UpstreamStatusError(429, "Too Many Requests")),
    )
    results = record(scheduler.start(lambda: xs.pipe(rxo.assemble(response_id="r"))).messages)
    out = [r[2] for r in results if r[1] == "N"]
    # the open part is closed too, so the stream stays well-formed
    assert [e["type"] for e in out] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "error",
        "response.failed",
    ]
    assert results[-1] == (250, "C")
    assert out[5]["text"] == "Hi"
    assert out[6]["part"] == {
        "type": "output_text",
        "annotations": [],
        "logprobs": [],
        "text": "Hi",
    }
    closed = out[7]["item"]
    assert closed["status"] == "incomplete"
    assert closed["content"][0]["text"] == "Hi"  # the text that arrived is kept
    assert out[8]["code"] == "rate_limit_exceeded"
    assert out[9]["response"]["output"] == [closed]
    check_stream(out)


def test_assemble_source_ends_without_stream_finished() -> None:
    results = run_hot(rxo.assemble(response_id="r"), [(210, StreamStarted("m", 1))])
    out = [r[2] for r in results if r[1] == "N"]
    assert [e["type"] for e in out][-2:] == ["error", "response.failed"]
    assert out[-1]["response"]["error"]["message"] == "the stream ended without a terminal signal"


def test_assemble_without_join_tool_args_raises_pipeline_error() -> None:
    pipeline = reactivex.compose(
        rxo.split_by_item(ids=Ids()),
        rxo.collect_reasoning(),
        rxo.accumulate_text(),
        rxo.assemble(response_id="r"),
    )
    values, errors, done = collect(reactivex.from_iterable(parsed(*STREAM)).pipe(pipeline))
    assert not done
    (error,) = errors
    assert isinstance(error, PipelineError)
    assert "join_tool_args()" in str(error)
    # everything before the tool call was emitted normally
    assert [to_dict(v)["type"] for v in values] == EXPECTED_TYPES[:16]


@pytest.mark.parametrize(
    ("missing", "owner"),
    [("collect_reasoning", "collect_reasoning()"), ("accumulate_text", "accumulate_text()")],
)
def test_assemble_names_the_missing_stage(missing: str, owner: str) -> None:
    stages = [rxo.split_by_item(ids=Ids())]
    stages += [
        getattr(rxo, n)()
        for n in ("collect_reasoning", "accumulate_text", "join_tool_args")
        if n != missing
    ]
    stages.append(rxo.assemble(response_id="r"))
    _, errors, _ = collect(
        reactivex.from_iterable(parsed(*STREAM)).pipe(reactivex.compose(*stages))
    )
    assert isinstance(errors[0], PipelineError)
    assert owner in str(errors[0])


def test_assemble_rejects_non_events() -> None:
    _, errors, _ = collect(reactivex.of(StreamStarted("m", 1), "a string").pipe(rxo.assemble()))
    assert isinstance(errors[0], PipelineError)


# -- the whole conversion, written out -------------------------------------------------------------


@pytest.mark.parametrize("composed", [False, True], ids=["fused", "composed"])
def test_chat_to_responses_events(composed: bool) -> None:
    events = convert(STREAM, composed=composed)
    assert [e["type"] for e in events] == EXPECTED_TYPES
    assert [e["sequence_number"] for e in events] == list(range(len(EXPECTED_TYPES)))
    assert events[4]["delta"] + events[5]["delta"] == "Thinking."
    assert [events[11]["delta"], events[12]["delta"]] == ["Hel", "lo"]
    assert [events[17]["delta"], events[18]["delta"]] == ['{"city":', '"Paris"}']
    assert [events[i]["item"] for i in (8, 15, 20)] == [REASONING_ITEM, MESSAGE_ITEM, CALL_ITEM]
    terminal = events[-1]["response"]
    assert terminal["output"] == [REASONING_ITEM, MESSAGE_ITEM, CALL_ITEM]
    assert terminal["usage"] == USAGE
    assert (terminal["id"], terminal["created_at"], terminal["model"]) == (
        "resp_1",
        CREATED,
        "test-model",
    )
    check_stream(events)


# -- per-subscription state ------------------------------------------------------------------------


def _signals() -> list[Any]:
    return [
        StreamStarted("m", 1),
        ItemStarted("reasoning", "rs_a", 0),
        ReasoningDelta("rs_a", 0, "r"),
        ItemFinished("reasoning", "rs_a", 0),
        ItemStarted("message", "msg_a", 1),
        TextDelta("msg_a", 1, "a"),
        TextDelta("msg_a", 1, "b"),
        ItemFinished("message", "msg_a", 1),
        ItemStarted("function_call", "fc_a", 2, "call_a", "f"),
        ToolCallDelta("fc_a", 2, "{}"),
        ItemFinished("function_call", "fc_a", 2),
        StreamFinished("completed"),
    ]


def _item_events() -> list[Any]:
    out: list[Any] = []
    pipeline = reactivex.compose(
        rxo.collect_reasoning(), rxo.accumulate_text(), rxo.join_tool_args()
    )
    reactivex.from_iterable(_signals()).pipe(pipeline).subscribe(out.append)
    return out


def _fixed_ids(prefix: str) -> str:
    return f"{prefix}_fixed"  # stateless, so two subscriptions get the same ids


STATEFUL = {
    "decode_sse": (rxo.decode_sse, lambda: [b"data: a", b"b\n\nda", b"ta: c\n\n"]),
    "parse_chunks": (rxo.parse_chunks, lambda: [SSEMessage(json.dumps(c)) for c in STREAM]),
    "split_by_item": (lambda: rxo.split_by_item(ids=_fixed_ids), lambda: parsed(*STREAM)),
    "collect_reasoning": (rxo.collect_reasoning, _signals),
    "accumulate_text": (rxo.accumulate_text, _signals),
    "join_tool_args": (rxo.join_tool_args, _signals),
    "assemble": (lambda: rxo.assemble(response_id="r", created_at=1), _item_events),
    "final_response": (rxo.final_response, lambda: _chat_events_objects()),
    "chat_to_responses": (
        lambda: chat_to_responses(ids=_fixed_ids, response_id="r", created_at=1),
        lambda: parsed(*STREAM),
    ),
    "chat_to_responses_composed": (
        lambda: chat_to_responses_composed(ids=_fixed_ids, response_id="r", created_at=1),
        lambda: parsed(*STREAM),
    ),
}


def _chat_events_objects() -> list[Any]:
    out: list[Any] = []
    reactivex.from_iterable(parsed(*STREAM)).pipe(
        chat_to_responses(ids=Ids(), response_id="r", created_at=1)
    ).subscribe(out.append)
    return out


def _strip_clock(values: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    out = []
    for v in values:
        if len(v) == 3 and isinstance(v[2], dict):
            d = v[2]
            if isinstance(d.get("response"), dict):
                d["response"].pop("completed_at", None)
            d.pop("completed_at", None)
        out.append(v)
    return out


@pytest.mark.parametrize("name", list(STATEFUL))
def test_two_interleaved_subscriptions_are_independent(name: str) -> None:
    make_operator, make_values = STATEFUL[name]
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        *[on_next(10 * (i + 1), v) for i, v in enumerate(make_values())],
        on_completed(10 * (len(make_values()) + 1)),
    )
    # one operator instance, two subscriptions running at the same time (their values interleave)
    observable = xs.pipe(make_operator())
    first, second = scheduler.create_observer(), scheduler.create_observer()
    scheduler.schedule_absolute(200, lambda *_: observable.subscribe(first))
    scheduler.schedule_absolute(205, lambda *_: observable.subscribe(second))
    scheduler.start()
    a = _strip_clock(record(first.messages))
    b = _strip_clock(record(second.messages))
    assert a, name
    assert a[-1][1] == "C"
    assert [v[1:] for v in a] == [v[1:] for v in b]
    assert [v[0] + 5 for v in a] == [v[0] for v in b]


# -- user stages between the operators -------------------------------------------------------------


def _redact(signal: Any) -> Any:
    if isinstance(signal, TextDelta):
        return replace(signal, text=signal.text.replace("secret", "******"))
    return signal


def test_redactor_between_stages() -> None:
    chunks = [
        chunk({"content": "my secret"}),
        chunk({"content": " is "}),
        chunk({"content": "secret!"}),
        chunk({}, "stop"),
    ]
    pipeline = reactivex.compose(
        rxo.split_by_item(ids=Ids()),
        ops.map(_redact),
        rxo.collect_reasoning(),
        rxo.accumulate_text(),
        rxo.join_tool_args(),
        rxo.assemble(response_id="r", created_at=1),
    )
    events, errors, _ = collect(reactivex.from_iterable(parsed(*chunks)).pipe(pipeline))
    assert errors == []
    d = dumps(events)
    assert [e["delta"] for e in d if e["type"] == "response.output_text.delta"] == [
        "my ******",
        " is ",
        "******!",
    ]
    (done,) = [e for e in d if e["type"] == "response.output_text.done"]
    assert done["text"] == "my ****** is ******!"
    (part,) = [e for e in d if e["type"] == "response.content_part.done"]
    assert part["part"]["text"] == "my ****** is ******!"
    final = get_final_response(reactivex.from_iterable(events))
    assert final.output[0].content[0].text == "my ****** is ******!"  # type: ignore[union-attr]
    assert "secret" not in json.dumps(d)
    check_stream(d)


def test_filter_dropping_reasoning_between_stages() -> None:
    pipeline = reactivex.compose(
        rxo.split_by_item(ids=Ids()),
        ops.filter(lambda s: getattr(s, "kind", None) != "reasoning"),
        rxo.collect_reasoning(),
        rxo.accumulate_text(),
        rxo.join_tool_args(),
        rxo.assemble(response_id="r", created_at=CREATED),
    )
    events, errors, _ = collect(reactivex.from_iterable(parsed(*STREAM)).pipe(pipeline))
    assert errors == []
    d = dumps(events, wall_clock=False)
    assert "reasoning" not in json.dumps([e["type"] for e in d])
    added = [
        (e["output_index"], e["item"]["type"])
        for e in d
        if e["type"] == "response.output_item.added"
    ]
    assert added == [(0, "message"), (1, "function_call")]  # dense: no gap where reasoning was
    assert {e["output_index"] for e in d if "output_index" in e} == {0, 1}
    assert d[-1]["response"]["output"] == [MESSAGE_ITEM, CALL_ITEM]
    check_stream(d)
    final = get_final_response(reactivex.from_iterable(events))
    assert [i.type for i in final.output] == ["message", "function_call"]


def test_user_stage_that_swallows_item_finished_is_closed_by_assemble() -> None:
    # a stage that drops an ItemFinished: assemble closes the item as incomplete, stream stays valid
    pipeline = reactivex.compose(
        rxo.split_by_item(ids=Ids()),
        ops.filter(lambda s: not (isinstance(s, ItemFinished) and s.kind == "function_call")),
        rxo.collect_reasoning(),
        rxo.accumulate_text(),
        rxo.join_tool_args(),
        rxo.assemble(response_id="r", created_at=1),
    )
    events, errors, _ = collect(reactivex.from_iterable(parsed(*STREAM)).pipe(pipeline))
    assert errors == []
    d = dumps(events)
    call = d[-1]["response"]["output"][2]
    assert call["status"] == "incomplete"
    assert call["arguments"] == '{"city":"Paris"}'
    # the stream still completed (the upstream said so); the stranded item is closed well-formed
    assert [e["type"] for e in d[-3:]] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert d[-3]["arguments"] == '{"city":"Paris"}'
    check_stream(d)


def test_error_raised_by_a_user_stage_closes_open_parts_at_dense_indexes() -> None:
    # Reasoning filtered out (the message moves from output_index 1 to 0), then a user stage
    # raises in the middle of the message: assemble closes the open part and item at index 0.
    def explode(signal: Any) -> Any:
        if isinstance(signal, TextDelta) and signal.text == "lo":
            raise RuntimeError("redactor crashed")
        return signal

    pipeline = reactivex.compose(
        rxo.split_by_item(ids=Ids()),
        ops.filter(lambda s: getattr(s, "kind", None) != "reasoning"),
        ops.map(explode),
        rxo.collect_reasoning(),
        rxo.accumulate_text(),
        rxo.join_tool_args(),
        rxo.assemble(response_id="r", created_at=1),
    )
    events, errors, done = collect(reactivex.from_iterable(parsed(*STREAM)).pipe(pipeline))
    assert (errors, done) == ([], True)
    d = dumps(events)
    assert [(e["type"], e.get("output_index")) for e in d[2:]] == [
        ("response.output_item.added", 0),
        ("response.content_part.added", 0),
        ("response.output_text.delta", 0),
        ("response.output_text.done", 0),
        ("response.content_part.done", 0),
        ("response.output_item.done", 0),
        ("error", None),
        ("response.failed", None),
    ]
    assert d[-1]["response"]["output"] == [
        {
            "id": "msg_1",
            "type": "message",
            "status": "incomplete",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Hel"}],
            "role": "assistant",
        }
    ]
    assert d[-1]["response"]["error"] == {"code": "server_error", "message": "redactor crashed"}
    check_stream(d)


def test_assemble_closes_open_reasoning_summary_and_refusal_parts() -> None:
    # every kind of part a stage can leave open, closed by assemble after an upstream error
    signals = [
        StreamStarted("m", 1),
        ItemStarted("reasoning", "rs_a", 0),
        ReasoningDelta("rs_a", 0, "why"),
    ]
    summary: list[Any] = []
    reactivex.from_iterable(signals).pipe(rxo.collect_reasoning(as_summary=True)).subscribe(
        summary.append
    )
    message = [
        ItemStarted("message", "msg_a", 1),
        RefusalDelta("msg_a", 1, "no"),
    ]
    refusal: list[Any] = []
    reactivex.from_iterable(message).pipe(rxo.accumulate_text()).subscribe(refusal.append)
    source = reactivex.concat(
        reactivex.from_iterable(summary + refusal), reactivex.throw(RuntimeError("cut"))
    )
    values, errors, _ = collect(source.pipe(rxo.assemble(response_id="r", created_at=1)))
    assert errors == []
    d = dumps(values)
    check_stream(d)
    assert [e["type"] for e in d[-8:]] == [
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.refusal.done",
        "response.content_part.done",
        "response.output_item.done",
        "error",
        "response.failed",
    ]
    assert d[-1]["response"]["output"][0]["summary"] == [{"type": "summary_text", "text": "why"}]
    assert d[-1]["response"]["output"][1]["content"] == [{"type": "refusal", "refusal": "no"}]


# -- final_response --------------------------------------------------------------------------------


def _events_for(chunks: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    reactivex.from_iterable(parsed(*chunks)).pipe(
        chat_to_responses(ids=Ids(), response_id="resp_1", created_at=CREATED)
    ).subscribe(out.append)
    return out


def _final(source: reactivex.Observable[Any]) -> dict[str, Any]:
    values, errors, done = collect(source.pipe(rxo.final_response()))
    assert (errors, done, len(values)) == ([], True, 1)
    return to_dict(values[0])


def test_final_response_emits_once_at_completion() -> None:
    events = _events_for(STREAM)
    results = run_hot(rxo.final_response(), [(210 + i, e) for i, e in enumerate(events)], end=400)
    assert [r[:2] for r in results] == [(400, "N"), (400, "C")]
    assert results[0][2] == to_dict(events[-1].response)


def test_encode_sse_operator_timing() -> None:
    events = _events_for(STREAM)[:2]
    results = run_hot(rxo.encode_sse(), [(210, events[0]), (220, events[1])])
    assert [r[:2] for r in results] == [(210, "N"), (220, "N"), (300, "C")]
    assert results[0][2].startswith(b"event: response.created\ndata: {")
    assert results[1][2].startswith(b"event: response.in_progress\ndata: {")
    assert all(r[2].endswith(b"}\n\n") for r in results[:2])


def test_final_response_completed_equals_terminal() -> None:
    events = _events_for(STREAM)
    final = _final(reactivex.from_iterable(events))
    assert final == to_dict(events[-1].response)
    assert final["status"] == "completed"
    assert final["output"] == [REASONING_ITEM, MESSAGE_ITEM, CALL_ITEM]


def test_final_response_incomplete() -> None:
    events = _events_for([chunk({"content": "Rivers are"}), chunk({}, "length")])
    final = _final(reactivex.from_iterable(events))
    assert final == to_dict(events[-1].response)
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["status"] == "incomplete"
    assert final["output"][0]["content"][0]["text"] == "Rivers are"


def test_final_response_failed() -> None:
    events = _events_for([chunk({"content": "Part"}), chunk(choices=[], error={"message": "boom"})])
    final = _final(reactivex.from_iterable(events))
    assert final == to_dict(events[-1].response)
    assert final["status"] == "failed"
    assert final["error"] == {"code": "server_error", "message": "boom"}
    assert final["output"][0]["content"][0]["text"] == "Part"


def test_final_response_cut_stream() -> None:
    # the bytes stop after two text deltas: no item.done, no terminal event
    events = _events_for(STREAM)
    cut = events[:13]
    assert to_dict(cut[-1])["type"] == "response.output_text.delta"
    final = _final(reactivex.from_iterable(cut))
    assert final["status"] == "in_progress"
    assert final["output"] == [
        REASONING_ITEM,
        {
            "id": "msg_1",
            "type": "message",
            "status": "in_progress",
            "content": [
                {"type": "output_text", "annotations": [], "logprobs": [], "text": "Hello"}
            ],
            "role": "assistant",
        },
    ]
    assert final["usage"] is None


def test_final_response_erroring_source() -> None:
    events = _events_for(STREAM)[:12]
    source = reactivex.concat(
        reactivex.from_iterable(events), reactivex.throw(UpstreamStatusError(429, "slow down"))
    )
    final = _final(source)
    assert final["status"] == "failed"
    assert final["error"]["code"] == "rate_limit_exceeded"
    assert "slow down" in final["error"]["message"]
    assert final["output"][1]["content"][0]["text"] == "Hel"


def test_final_response_error_after_terminal_keeps_terminal_status() -> None:
    events = _events_for(STREAM)
    source = reactivex.concat(reactivex.from_iterable(events), reactivex.throw(RuntimeError("x")))
    final = _final(source)
    assert final["status"] == "completed"
    assert final["error"] is None


def test_final_response_with_logprobs_dumps_cleanly() -> None:
    # The fold keeps logprobs as models (dicts in a model list dump with serializer warnings,
    # which this module turns into errors).
    lp = {
        "content": [
            {"token": "Hi", "bytes": [72, 105], "logprob": -0.25, "top_logprobs": []},
        ],
        "refusal": None,
    }
    chunks = [
        chunk(choices=[{"index": 0, "delta": {"content": "Hi"}, "logprobs": lp}]),
        chunk({}, "stop"),
    ]
    events = _events_for(chunks)
    expected = [{"token": "Hi", "bytes": [72, 105], "logprob": -0.25, "top_logprobs": []}]
    # cut right after the delta: the part's logprobs are built from the delta event
    assert to_dict(events[4])["type"] == "response.output_text.delta"
    final = _final(reactivex.from_iterable(events[:5]))
    assert final["output"][0]["content"][0]["logprobs"] == expected
    # cut after output_text.done: replaced by the .done event's logprobs
    assert to_dict(events[5])["type"] == "response.output_text.done"
    final = _final(reactivex.from_iterable(events[:6]))
    assert final["output"][0]["content"][0]["logprobs"] == expected


def test_final_response_with_an_output_index_gap_keeps_streamed_text() -> None:
    # A resumed (starting_after) or out-of-order stream: item 1 arrives, item 0 never does.
    from rxresponses.types.events import parse_event

    created = {
        "type": "response.created",
        "sequence_number": 0,
        "response": {"id": "r", "object": "response", "created_at": 1, "status": "in_progress",
                     "model": "m", "output": [], "parallel_tool_calls": True,
                     "tool_choice": "auto", "tools": []},
    }  # fmt: skip
    msg = {"id": "msg_b", "type": "message", "status": "in_progress", "content": [],
           "role": "assistant"}  # fmt: skip
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
    ids = {"item_id": "msg_b", "output_index": 1, "content_index": 0}
    events = [
        created,
        {"type": "response.output_item.added", "sequence_number": 5, "output_index": 1,
         "item": msg},
        {"type": "response.content_part.added", "sequence_number": 6, **ids, "part": part},
        {"type": "response.output_text.delta", "sequence_number": 7, **ids, "delta": "abc",
         "logprobs": []},
    ]  # fmt: skip
    final = _final(reactivex.from_iterable([parse_event(e) for e in events]))
    assert final["output"] == [{**msg, "content": [{**part, "text": "abc"}]}]


def test_final_response_of_nothing() -> None:
    final = _final(reactivex.empty())
    assert (final["status"], final["output"]) == ("in_progress", [])


def test_final_response_replaces_with_done_values() -> None:
    # .done events are authoritative: a delta stream that disagrees is replaced
    events = [e for e in _events_for(STREAM)]
    cut = events[:-1]  # no terminal: the fold of the events is what counts
    doctored = []
    for e in cut:
        d = to_dict(e)
        if d["type"] == "response.output_text.delta":
            d["delta"] = "X"
        doctored.append(d)
    from rxresponses.types.events import parse_event

    final = _final(reactivex.from_iterable([parse_event(d) for d in doctored]))
    assert final["output"][1]["content"][0]["text"] == "Hello"


# -- bridges ---------------------------------------------------------------------------------------


def _source(chunks: list[dict[str, Any]] = STREAM) -> reactivex.Observable[Any]:
    return reactivex.from_iterable(parsed(*chunks)).pipe(
        chat_to_responses(ids=Ids(), response_id="resp_1", created_at=CREATED)
    )


def test_iterate() -> None:
    events = list(iterate(_source()))
    assert [to_dict(e)["type"] for e in events] == EXPECTED_TYPES


def test_iterate_raises_the_error_at_the_end() -> None:
    source = reactivex.concat(reactivex.of(1, 2), reactivex.throw(ValueError("bad")))
    it = iterate(source)
    assert [next(it), next(it)] == [1, 2]
    with pytest.raises(ValueError, match="bad"):
        next(it)


def test_iterate_early_exit() -> None:
    it = iterate(reactivex.range(0, 1_000_000))
    assert next(it) == 0
    it.close()  # disposes the subscription


def test_get_final_response() -> None:
    final = get_final_response(_source())
    assert final.status == "completed"
    assert to_dict(final)["output"] == [REASONING_ITEM, MESSAGE_ITEM, CALL_ITEM]


def test_get_final_response_incomplete_is_returned_not_raised() -> None:
    final = get_final_response(_source([chunk({"content": "x"}), chunk({}, "length")]))
    assert final.status == "incomplete"


@pytest.mark.anyio
async def test_aiterate() -> None:
    events = [to_dict(e)["type"] async for e in aiterate(_source())]
    assert events == EXPECTED_TYPES


@pytest.mark.anyio
async def test_aiterate_raises_the_error() -> None:
    source = reactivex.concat(reactivex.of("a"), reactivex.throw(KeyError("k")))
    agen = aiterate(source)
    assert await agen.__anext__() == "a"
    with pytest.raises(KeyError):
        await agen.__anext__()


@pytest.mark.anyio
async def test_aget_final_response_over_an_async_source() -> None:
    from rxresponses.sources import from_bytes

    async def body() -> Any:
        for c in STREAM:
            yield b"data: " + json.dumps(c).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"

    source = from_bytes(body()).pipe(
        rxo.decode_sse(),
        rxo.parse_chunks(),
        chat_to_responses(ids=Ids(), response_id="resp_1", created_at=CREATED),
    )
    final = await aget_final_response(source)
    assert final.status == "completed"
    assert to_dict(final)["output"] == [REASONING_ITEM, MESSAGE_ITEM, CALL_ITEM]
    assert to_dict(final)["usage"] == USAGE


def test_encode_sse_of_the_conversion_parses_back() -> None:
    events = _events_for(STREAM)
    body = b"".join(encode_event(e) for e in events)
    values, errors, _ = collect(reactivex.of(body).pipe(rxo.decode_sse(), rxo.parse_events()))
    assert errors == []
    assert dumps(values) == dumps(events)


def test_iterate_leaves_time_based_operators_their_own_timers() -> None:
    # A paced source (10 ms per event) under buffer_with_time(50 ms): the buffers must close
    # while the source is still emitting, not all at the end (which is what happens when the
    # timers share the thread that runs the source's read loop).
    from rxresponses.data import demo_events

    buffers = list(iterate(demo_events(delay=0.01).pipe(ops.buffer_with_time(0.05))))
    assert sum(len(b) for b in buffers) == 127
    assert len(buffers) >= 5


@pytest.mark.parametrize("make", [rxo.assemble, chat_to_responses])
def test_invalid_echo_fails_when_the_pipeline_is_built(make) -> None:
    # A bad echoed field must not produce a stream that fails before response.created.
    with pytest.raises(pydantic.ValidationError):
        make(echo={"temperature": "hot"})


def test_a_fault_while_building_the_terminal_event_still_ends_the_stream(monkeypatch) -> None:
    # If building the final response raises, the stream must still end with exactly one
    # well-formed terminal event (error + response.failed), numbered without a gap.
    from rxresponses.operators import _assemble

    def broken(self, signal):
        raise RuntimeError("boom")

    monkeypatch.setattr(_assemble.Assembler, "_terminal", broken)
    events = [to_dict(e) for e in iterate(_source())]
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert "boom" in events[-1]["response"]["error"]["message"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert (
        sum(
            e["type"].startswith("response.")
            and e["type"] in ("response.completed", "response.incomplete", "response.failed")
            for e in events
        )
        == 1
    )

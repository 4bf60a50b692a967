"""Demand: where only the final Response is read, the item stages emit each item whole.

``assemble() | final_response()`` (fused) reads each item from its ``output_item.done``; when
nothing between an item stage and it reads the events inside an item, the driver calls the
stage's ``emit_items_only()``, and the stage builds no part, delta or text ``.done`` events
(and sends ``ItemPlaced`` where ``output_item.added`` would be).
These tests pin down the stages' output in that mode (without Rx), which stages the driver
asks, and that the Response is the same as where every event is built: on the recordings, and
where a stream is cut, fails between stages, or a stage of the user's own drops a signal.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as ops

from rxresponses import chat_sse_to_responses, from_bytes, from_file, iterate, parse_chunks
from rxresponses import operators as rxo
from rxresponses.errors import ChunkDecodeError
from rxresponses.operators._accumulate_text import TextStage
from rxresponses.operators._collect_reasoning import ReasoningStage
from rxresponses.operators._core import NOTHING, Driver, StagedObservable, stage_operator
from rxresponses.operators._join_tool_args import ToolCallStage
from rxresponses.pipelines import chat_to_responses
from rxresponses.types._base import to_dict
from rxresponses.types.signals import (
    ItemFinished,
    ItemStarted,
    ReasoningDelta,
    RefusalDelta,
    StreamFinished,
    TextDelta,
    ToolCallDelta,
)
from tests._util import chunk
from tests.conftest import CHAT_FIXTURES, fixture_params
from tests.fuzz.generators import CATEGORIES, generate
from tests.test_properties import PROPERTY, body_of, odd_streams


def _body(*chunks: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)


def _dicts(values: Any) -> list[dict[str, Any]]:
    return [to_dict(v) if hasattr(v, "model_dump") else {"signal": repr(v)} for v in values]


def _kinds(values: Any) -> list[str]:
    return [getattr(v, "type", type(v).__name__) for v in values]


# -- the stages, without Rx -------------------------------------------------------------------


def test_text_stage_emits_each_message_whole() -> None:
    stage = TextStage()
    stage.emit_items_only()
    out: list[Any] = []
    out += stage.handle(ItemStarted("message", "msg_1", 0)) or []
    out += stage.handle(TextDelta("msg_1", 0, "Hel")) or []
    assert stage.handle_delta(TextDelta("msg_1", 0, "lo")) is NOTHING  # the fast path
    out += stage.handle(ItemFinished("message", "msg_1", 0)) or []
    assert _dicts(out) == [
        {"signal": "ItemPlaced(0)"},  # its place, where output_item.added would be
        {
            "type": "response.output_item.done",
            "sequence_number": 0,
            "output_index": 0,
            "item": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}
                ],
            },
        },
    ]


def test_text_stage_keeps_refusals_and_logprobs_in_the_whole_message() -> None:
    stage = TextStage()
    stage.emit_items_only()
    logprob = {"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": []}
    values = [
        ItemStarted("message", "msg_1", 0),
        TextDelta("msg_1", 0, "Hi", [logprob]),
        TextDelta("msg_1", 0, "!"),
        RefusalDelta("msg_1", 0, "No."),
        ItemFinished("message", "msg_1", 0),
    ]
    out = [e for v in values for e in stage.handle(v) or []]
    assert _kinds(out) == ["ItemPlaced", "response.output_item.done"]
    assert to_dict(out[1])["item"]["content"] == [
        {"type": "output_text", "text": "Hi!", "annotations": [], "logprobs": [logprob]},
        {"type": "refusal", "refusal": "No."},
    ]


@pytest.mark.parametrize("as_summary", [False, True])
def test_reasoning_stage_emits_each_item_whole(as_summary: bool) -> None:
    stage = ReasoningStage(as_summary=as_summary)
    stage.emit_items_only()
    out: list[Any] = []
    out += stage.handle(ItemStarted("reasoning", "rs_1", 0)) or []
    out += stage.handle(ReasoningDelta("rs_1", 0, "Let me ")) or []
    assert stage.handle_delta(ReasoningDelta("rs_1", 0, "think")) is NOTHING
    out += stage.handle(ItemFinished("reasoning", "rs_1", 0)) or []
    assert _kinds(out) == ["ItemPlaced", "response.output_item.done"]
    item = to_dict(out[1])["item"]
    text = [{"type": "summary_text" if as_summary else "reasoning_text", "text": "Let me think"}]
    assert (item["summary"], item.get("content")) == ((text, []) if as_summary else ([], text))
    assert item["status"] == "completed"


def test_tool_call_stage_emits_each_call_whole() -> None:
    stage = ToolCallStage()
    stage.emit_items_only()
    out: list[Any] = []
    out += stage.handle(ItemStarted("function_call", "fc_1", 0, call_id="call_1", name="f")) or []
    out += stage.handle(ToolCallDelta("fc_1", 0, '{"a":')) or []
    assert stage.handle_delta(ToolCallDelta("fc_1", 0, " 1}")) is NOTHING
    out += stage.handle(ItemFinished("function_call", "fc_1", 0)) or []
    assert _kinds(out) == ["ItemPlaced", "response.output_item.done"]
    assert to_dict(out[1])["item"] == {
        "id": "fc_1",
        "type": "function_call",
        "call_id": "call_1",
        "name": "f",
        "arguments": '{"a": 1}',
        "status": "completed",
    }


_OPEN_ITEMS: list[tuple[Callable[[], Any], list[Any], str]] = [
    (TextStage, [ItemStarted("message", "m", 0), TextDelta("m", 0, "cut")], "content"),
    (ReasoningStage, [ItemStarted("reasoning", "r", 0), ReasoningDelta("r", 0, "cut")], "content"),
    (
        ToolCallStage,
        [ItemStarted("function_call", "f", 0, call_id="c", name="f"), ToolCallDelta("f", 0, "cut")],
        "arguments",
    ),
]


@pytest.mark.parametrize("end", ["stream_finished", "finish", "fail"])
@pytest.mark.parametrize(("factory", "values", "field"), _OPEN_ITEMS)
def test_a_stage_emitting_whole_items_closes_what_is_left_open(
    factory: Callable[[], Any], values: list[Any], field: str, end: str
) -> None:
    """Nobody after it can close an item it emitted no part of: when the stream ends with the
    item open (a stage of the user's own dropped its ItemFinished, or the stream failed
    between stages), it closes it itself, cut short, the text kept."""
    stage = factory()
    stage.emit_items_only()
    for value in values:
        stage.handle(value)
    finished = StreamFinished("completed")
    if end == "stream_finished":
        out = stage.handle(finished)
        assert out is not None
        assert out[-1] is finished
        out = out[:-1]
    elif end == "finish":
        out = stage.finish()
    else:
        out = stage.fail(ChunkDecodeError("bad", "x"))
    assert [e.type for e in out] == ["response.output_item.done"]
    item = to_dict(out[0])["item"]
    assert item["status"] == "incomplete"
    assert "cut" in json.dumps(item[field])
    assert stage.finish() == []  # closed once
    assert stage.handle(finished) is None  # nothing open: passed on unchanged


# -- which stages the driver asks -------------------------------------------------------------


def _stages(observable: Any) -> list[Any]:
    assert isinstance(observable, StagedObservable)
    return Driver([factory() for factory in observable.factories], _Sink())._stages


class _Sink:
    def on_next(self, value: Any) -> None: ...
    def on_error(self, error: Exception) -> None: ...
    def on_completed(self) -> None: ...


def _whole(stages: list[Any]) -> dict[str, bool]:
    """Stage name -> whether it was asked to emit whole items only."""
    return {type(s).__name__: not s._events for s in stages if hasattr(s, "emit_items_only")}


class Spy:
    """A stage of the user's own: it reads every value (no ``handles``)."""

    name = "spy()"
    seen: list[str] = []

    def handle(self, value: Any) -> None:
        Spy.seen.append(getattr(value, "type", type(value).__name__))

    def finish(self) -> list[Any]:
        return []

    def fail(self, exc: Exception) -> None:
        return None


class SignalsOnly:
    """A stage of the user's own that acts on signals only: events pass it unseen."""

    name = "signals_only()"
    handles = frozenset({TextDelta})

    def handle(self, value: Any) -> None:
        return None

    def finish(self) -> list[Any]:
        return []

    def fail(self, exc: Exception) -> None:
        return None


def test_the_driver_asks_for_whole_items_only_where_nothing_after_reads_inside_them() -> None:
    source = from_bytes([b""])
    # Only the Response is read: every item stage emits whole items.
    final = source.pipe(chat_sse_to_responses(), rxo.final_response())
    assert _whole(_stages(final)) == {
        "ReasoningStage": True,
        "TextStage": True,
        "ToolCallStage": True,
    }
    # The events are the output: every event is built.
    assert set(_whole(_stages(source.pipe(chat_sse_to_responses()))).values()) == {False}

    def chain(user_stage: Any) -> Any:
        return source.pipe(
            rxo.decode_sse(),
            rxo.parse_chunks(),
            rxo.split_by_item(),
            rxo.collect_reasoning(),
            rxo.accumulate_text(),
            stage_operator(user_stage),
            rxo.join_tool_args(),
            rxo.assemble(),
            rxo.final_response(),
        )

    # A stage of the user's own reads the events of the stages before it; not of those after.
    assert _whole(_stages(chain(Spy))) == {
        "ReasoningStage": False,
        "TextStage": False,
        "ToolCallStage": True,
    }
    # One whose ``handles`` names signals only never sees an event.
    assert set(_whole(_stages(chain(SignalsOnly))).values()) == {True}


def test_a_stage_of_the_users_own_still_sees_every_event_before_it() -> None:
    Spy.seen = []
    body = _body(chunk({"content": "Hi"}), chunk({"content": " there"}), chunk(None, "stop"))
    pipeline = from_bytes([body]).pipe(
        rxo.decode_sse(),
        rxo.parse_chunks(),
        rxo.split_by_item(),
        rxo.accumulate_text(),
        stage_operator(Spy),
        rxo.assemble(),
        rxo.final_response(),
    )
    (response,) = iterate(pipeline)
    assert response.output_text == "Hi there"
    events = [t for t in Spy.seen if t.startswith("response.")]
    assert events == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]


# -- the same Response ------------------------------------------------------------------------


def _counter_ids() -> Callable[[str], str]:
    counter = itertools.count()
    return lambda prefix: f"{prefix}_{next(counter)}"


def _without_clock(response: Any) -> dict[str, Any]:
    out = to_dict(response)
    out.pop("completed_at", None)  # the wall clock
    return out


@pytest.mark.parametrize("path", fixture_params(CHAT_FIXTURES))
def test_the_response_read_alone_is_the_terminal_events_on_recordings(path: Path) -> None:
    """Whole items only (nothing but the Response read) gives exactly the ``response`` of the
    terminal event of the stream where every event is built."""

    def pipeline() -> Any:
        return chat_to_responses(ids=_counter_ids(), response_id="resp_test", created_at=1)

    events = list(iterate(from_file(path).pipe(parse_chunks(), pipeline())))
    (response,) = iterate(from_file(path).pipe(parse_chunks(), pipeline(), rxo.final_response()))
    assert _without_clock(response) == _without_clock(events[-1].response)


class DropItemFinished:
    """A stage of the user's own, before the item stages: it drops every ItemFinished."""

    name = "drop_item_finished()"

    def handle(self, value: Any) -> list[Any] | None:
        return [] if isinstance(value, ItemFinished) else None

    def finish(self) -> list[Any]:
        return []

    def fail(self, exc: Exception) -> None:
        return None


class FailAtThirdDelta:
    """A stage of the user's own, before the item stages: the stream's data fails at the third
    delta (an RxResponsesError: the stream fails from here, as if the upstream had)."""

    name = "fail_at_third_delta()"

    def __init__(self) -> None:
        self.deltas = 0

    def handle(self, value: Any) -> None:
        if isinstance(value, TextDelta | ReasoningDelta | ToolCallDelta):
            self.deltas += 1
            if self.deltas == 3:
                raise ChunkDecodeError("cut by the test", "x")
        return None

    def finish(self) -> list[Any]:
        return []

    def fail(self, exc: Exception) -> None:
        return None


_STREAMS = {
    "text": _body(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hi"}),
        chunk({"content": " there"}),
        chunk({"content": "!"}),
        chunk({"content": " More"}),
        chunk(None, "stop"),
    ),
    "reasoning_then_text": _body(
        chunk({"reasoning_content": "Think"}),
        chunk({"reasoning_content": "ing"}),
        chunk({"content": "Ans"}),
        chunk({"content": "wer"}),
        chunk(None, "stop"),
    ),
    "tool_calls": _body(
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c0", "type": "function", "function": {"name": "f"}},
                    {"index": 1, "id": "c1", "type": "function", "function": {"name": "g"}},
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"b"'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        chunk(None, "tool_calls"),
    ),
}


def _final_after(user_stage: Any, body: bytes, *hop: Any) -> dict[str, Any]:
    """The Response of ``body`` through the operators piped one by one, with ``user_stage``
    between the splitter and the item stages, and ``hop`` (an Rx hop: every event is built)
    before ``final_response()``."""
    pipeline = from_bytes([body]).pipe(
        rxo.decode_sse(),
        rxo.parse_chunks(),
        rxo.split_by_item(ids=_counter_ids()),
        stage_operator(user_stage),
        rxo.collect_reasoning(),
        rxo.accumulate_text(),
        rxo.join_tool_args(),
        rxo.assemble(response_id="resp_1", created_at=1),
        *hop,
        rxo.final_response(),
    )
    (response,) = iterate(pipeline)
    return _without_clock(response)


@pytest.mark.parametrize("user_stage", [DropItemFinished, FailAtThirdDelta])
@pytest.mark.parametrize("stream", sorted(_STREAMS))
def test_the_response_is_the_same_where_items_are_left_open(user_stage: Any, stream: str) -> None:
    """A stage of the user's own before the item stages drops the signals that close items, or
    fails the stream mid-item: the Response read alone (whole items only) is the one folded
    from every event (after an Rx hop, where every event is built): the items cut short, the
    text that arrived kept."""

    alone = _final_after(user_stage, _STREAMS[stream])
    assert alone == _final_after(user_stage, _STREAMS[stream], ops.map(lambda e: e))
    assert alone["status"] == ("failed" if user_stage is FailAtThirdDelta else "completed")
    assert alone["output"][-1]["status"] == "incomplete"
    assert _KEPT[stream] in json.dumps(alone["output"])


#: What arrived before each stream was cut, as it appears in the Response's JSON.
_KEPT = {"text": '"text": "Hi there', "reasoning_then_text": "Think", "tool_calls": '{\\"a\\"'}


def _final_and_terminal(pieces: list[bytes], **options: Any) -> tuple[Any, Any]:
    """The Response read alone, and the terminal event's ``response`` where every event is
    built (``None`` for a stream that failed with an error instead)."""

    def pipeline() -> Any:
        return chat_sse_to_responses(
            ids=_counter_ids(), response_id="resp_p", created_at=1, **options
        )

    finals: list[Any] = []
    events: list[Any] = []
    errors: list[Exception] = []
    from_bytes(pieces).pipe(pipeline(), rxo.final_response()).subscribe(
        finals.append, errors.append
    )
    from_bytes(pieces).pipe(pipeline()).subscribe(events.append, errors.append)
    if errors:
        return [type(e).__name__ for e in errors], None
    return _without_clock(finals[-1]), _without_clock(events[-1].response)


@PROPERTY
@given(stream=odd_streams(), cut=st.integers(min_value=1, max_value=64))
def test_the_response_read_alone_is_the_terminal_events_on_odd_streams(
    stream: list[dict[str, Any]], cut: int
) -> None:
    body = body_of(stream, "\n")
    pieces = [body[k : k + cut] for k in range(0, len(body), cut)]
    alone, terminal = _final_and_terminal(pieces)
    assert alone == terminal


@pytest.mark.parametrize("category", sorted(CATEGORIES))
@pytest.mark.parametrize("index", range(20))
def test_the_response_read_alone_is_the_terminal_events_on_fuzz_inputs(
    category: str, index: int
) -> None:
    inp = generate(category, 11, index)
    alone, terminal = _final_and_terminal(
        list(inp.pieces), max_line_bytes=inp.max_line_bytes, **inp.options
    )
    assert alone == terminal


class Renumber:
    """A stage of the user's own, before the item stages: it gives the items falling output
    indexes (10, 9, 8...), so that the order items start in is not the order of their indexes."""

    name = "renumber()"

    def handle(self, value: Any) -> list[Any] | None:
        index = getattr(value, "output_index", None)
        if index is None:
            return None
        return [replace(value, output_index=10 - index)]

    def finish(self) -> list[Any]:
        return []

    def fail(self, exc: Exception) -> None:
        return None


@pytest.mark.parametrize("stream", sorted(_STREAMS))
def test_items_keep_the_order_they_started_in(stream: str) -> None:
    """The Response read alone places the items as their output_item.added events would
    (dense, in the order the items started), not by their indexes."""

    alone = _final_after(Renumber, _STREAMS[stream])
    assert alone == _final_after(Renumber, _STREAMS[stream], ops.map(lambda e: e))
    assert [item["id"] for item in alone["output"]] == _STARTED[stream]


#: The items of each stream, in the order they start.
_STARTED = {
    "text": ["msg_0"],
    "reasoning_then_text": ["rs_0", "msg_1"],
    "tool_calls": ["fc_0", "fc_1"],
}

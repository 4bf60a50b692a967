"""The stages without Rx, and the one driver's rules.

Each stage is a plain state machine (``handle`` / ``finish`` / ``fail``): these tests drive them
value by value and write the expected output out. The driver tests use a list as the observer.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.scheduler import CurrentThreadScheduler

from rxresponses import (
    chat_sse_to_responses,
    chat_to_responses,
    from_bytes,
    from_file,
    get_final_response,
    iterate,
)
from rxresponses import operators as rxo
from rxresponses.errors import ChunkDecodeError, PipelineError, SSELineTooLongError, StageError
from rxresponses.operators._accumulate_text import TextStage
from rxresponses.operators._collect_reasoning import ReasoningStage
from rxresponses.operators._core import (
    NOTHING,
    Driver,
    Fragments,
    IterableSource,
    StagedObservable,
    delta_maker,
    stage_operator,
    text_event_maker,
)
from rxresponses.operators._final import FinalStage, ResponseAccumulator
from rxresponses.operators._join_tool_args import ToolCallStage
from rxresponses.operators._parse import ChatSplitStage, ChunkParser, SSEDecodeStage
from rxresponses.operators._split_by_item import ChunkSplitter
from rxresponses.sse import SSEMessage
from rxresponses.types._base import to_dict
from rxresponses.types.chat import parse_chunk
from rxresponses.types.events import ResponseReasoningTextDeltaEvent, ResponseTextDeltaEvent
from rxresponses.types.registry import event_type
from rxresponses.types.signals import (
    ItemFinished,
    ItemStarted,
    ReasoningDelta,
    StreamFinished,
    StreamStarted,
    TextDelta,
    ToolCallDelta,
)
from tests._util import Ids, chunk


class Sink:
    """An observer that keeps what it gets."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.errors: list[Exception] = []
        self.completed = 0

    def on_next(self, value: Any) -> None:
        self.values.append(value)

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)

    def on_completed(self) -> None:
        self.completed += 1


class Double:
    name = "double()"

    def handle(self, value: int) -> list[int]:
        return [value, value]

    def finish(self) -> list[int]:
        return [-1]

    def fail(self, exc: Exception) -> None:
        return None


class Boom:
    name = "boom()"

    def handle(self, value: Any) -> list[Any] | None:
        if value == 3:
            raise KeyError("three")
        return None

    def finish(self) -> list[Any]:
        return []

    def fail(self, exc: Exception) -> None:
        return None


class EndAt:
    """Ends the stream at ``stop``; on failure, says so and ends."""

    def __init__(self, stop: int) -> None:
        self.stop = stop
        self.ended = False

    def handle(self, value: int) -> list[Any]:
        if value == self.stop:
            self.ended = True
            return ["end"]
        return [value]

    def finish(self) -> list[Any]:
        return ["finished"]

    def fail(self, exc: Exception) -> list[Any]:
        self.ended = True
        return [f"failed: {exc}"]


def test_driver_feeds_left_to_right_and_finishes_in_order() -> None:
    sink = Sink()
    driver = Driver([Double(), Double()], sink)
    driver.on_next(1)
    driver.on_completed()
    assert sink.values == [1, 1, 1, 1, -1, -1, -1]  # the first finish's -1 is doubled
    assert (sink.errors, sink.completed) == ([], 1)


def test_driver_a_stage_that_ends_completes_what_follows_and_ignores_the_rest() -> None:
    sink = Sink()
    driver = Driver([EndAt(2), Double()], sink)
    for value in (1, 2, 3):
        driver.on_next(value)
    driver.on_completed()
    assert sink.values == [1, 1, "end", "end", -1]
    assert sink.completed == 1


def test_driver_a_stage_that_ends_while_earlier_ones_finish_completes_once() -> None:
    class PassOn:
        def handle(self, value: Any) -> None:
            return None

        def finish(self) -> list[Any]:
            return ["late"]  # reaches a stage that has ended: dropped

        def fail(self, exc: Exception) -> None:
            return None

    sink = Sink()
    driver = Driver([Double(), PassOn(), EndAt(-1)], sink)
    driver.on_next(1)
    driver.on_completed()  # Double's finish gives -1, which ends EndAt before PassOn finishes
    assert sink.values == [1, 1, "end"]
    assert (sink.errors, sink.completed) == ([], 1)


def test_driver_an_upstream_error_reaches_the_first_stage_that_ends_the_stream() -> None:
    sink = Sink()
    driver = Driver([Double(), EndAt(99), Double()], sink)
    driver.on_next(1)
    driver.on_error(ValueError("cut"))
    assert sink.values == [1, 1, 1, 1, "failed: cut", "failed: cut", -1]
    assert (sink.errors, sink.completed) == ([], 1)


def test_driver_an_error_no_stage_ends_reaches_on_error() -> None:
    sink = Sink()
    driver = Driver([Double()], sink)
    error = ValueError("cut")
    driver.on_error(error)
    assert sink.errors == [error]
    assert sink.completed == 0


def test_driver_a_stage_that_raises_is_a_stage_error_naming_it_and_the_value() -> None:
    sink = Sink()
    driver = Driver([Boom(), EndAt(99)], sink)
    for value in (1, 3, 4):
        driver.on_next(value)
    driver.on_completed()
    assert sink.values == [1]
    (error,) = sink.errors
    assert isinstance(error, StageError)
    assert isinstance(error, PipelineError)
    assert (error.operator, error.element) == ("boom()", 3)
    assert str(error) == "boom() raised KeyError on int 3: 'three'"
    assert sink.completed == 0


def test_driver_a_data_fault_raised_by_a_stage_fails_the_stream_from_there() -> None:
    class Undecodable:
        def handle(self, value: Any) -> None:
            raise ChunkDecodeError("undecodable chunk", "{")

        def finish(self) -> list[Any]:
            return []

        def fail(self, exc: Exception) -> None:
            return None

    sink = Sink()
    driver = Driver([Undecodable(), EndAt(99)], sink)
    driver.on_next(1)
    assert sink.values == ["failed: undecodable chunk: '{'"]
    assert (sink.errors, sink.completed) == ([], 1)


def test_adjacent_shells_fuse_into_one_subscription() -> None:
    source = reactivex.from_iterable([1, 2])
    staged = source.pipe(stage_operator(Double), stage_operator(Double))
    assert isinstance(staged, StagedObservable)
    assert staged.source is source
    assert len(staged.factories) == 2
    assert list(iterate(staged)) == [1, 1, 1, 1, 2, 2, 2, 2, -1, -1, -1]


def test_sse_decode_stage() -> None:
    stage = SSEDecodeStage()
    assert stage.handle(b"data: a\n\nda") == [SSEMessage("a")]
    done = stage.handle(b"ta: b\n\ndata: [DONE]\n\ndata: c\n\n")
    assert done == [SSEMessage("b"), SSEMessage("[DONE]")]  # [DONE] last, nothing after it
    assert stage.ended
    assert SSEDecodeStage().handle(SSEMessage("x")) == [SSEMessage("x")]  # already decoded
    with pytest.raises(TypeError, match="takes bytes or SSEMessage"):
        SSEDecodeStage().handle("data: x\n\n")  # type: ignore[arg-type]
    with pytest.raises(SSELineTooLongError):
        SSEDecodeStage(max_line_bytes=8).handle(b"data: 0123456789")
    cut = SSEDecodeStage()
    assert cut.handle(b"data: a\n\ndata: b\n") == [SSEMessage("a")]
    assert cut.fail(ValueError("cut")) == [SSEMessage("b")]  # what was framed is kept
    assert not cut.ended  # the error goes on


def test_chunk_parser_stage() -> None:
    stage = ChunkParser()
    assert stage.handle(SSEMessage("[DONE]")) == [SSEMessage("[DONE]")]  # for the splitter
    (parsed,) = stage.handle(json.dumps(chunk({"content": "Hi"})))
    assert parsed.choices[0].delta.content == "Hi"
    with pytest.raises(ChunkDecodeError):
        stage.handle(SSEMessage("{not json"))
    with pytest.raises(TypeError, match="SSEMessage, str or bytes"):
        stage.handle(42)  # type: ignore[arg-type]


def _body(*chunks: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)


def test_chat_split_stage_equals_the_three_stages_apart() -> None:
    body = (
        _body(
            chunk({"role": "assistant", "content": "He"}),
            chunk({"content": "llo"}),
            chunk(None, "stop"),
        )
        + b"data: [DONE]\n\n"
    )
    ids_a, ids_b = Ids(), Ids()
    fused = ChatSplitStage(ChunkSplitter(ids=ids_a), SSEDecodeStage()._decoder)
    together = fused.handle(body[:50]) + fused.handle(body[50:])
    assert fused.ended
    decode, parse, split = SSEDecodeStage(), ChunkParser(), ChunkSplitter(ids=ids_b)
    apart = [s for m in decode.handle(body) for c in parse.handle(m) for s in split.handle(c)]
    assert decode.ended
    apart += split.finish()
    assert together == apart
    assert [type(s).__name__ for s in together] == [
        "StreamStarted",
        "ItemStarted",
        "TextDelta",
        "TextDelta",
        "ItemFinished",
        "StreamFinished",
    ]


def test_text_stage() -> None:
    stage = TextStage()
    added = stage.handle(ItemStarted("message", "msg_1", 0))
    first = stage.handle(TextDelta("msg_1", 0, "He"))
    second = stage.handle(TextDelta("msg_1", 0, "y"))
    done = stage.handle(ItemFinished("message", "msg_1", 0))
    assert stage.handle(ToolCallDelta("fc_1", 1, "{}")) is None  # not its own: passed on
    assert added is not None
    assert first is not None
    assert second is not None
    assert done is not None
    assert [e.type for e in added + first + second + done] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert to_dict(done[0])["text"] == "Hey"
    assert to_dict(done[-1])["item"]["content"][0]["text"] == "Hey"


def test_tool_call_stage() -> None:
    stage = ToolCallStage()
    out = stage.handle(ItemStarted("function_call", "fc_1", 0, "call_1", "get"))
    out = (out or []) + (stage.handle(ToolCallDelta("fc_1", 0, '{"a":')) or [])
    out += stage.handle(ToolCallDelta("fc_1", 0, "1}")) or []
    out += stage.handle(ItemFinished("function_call", "fc_1", 0)) or []
    assert [(e.type, getattr(e, "delta", None)) for e in out] == [
        ("response.output_item.added", None),
        ("response.function_call_arguments.delta", '{"a":'),
        ("response.function_call_arguments.delta", "1}"),
        ("response.function_call_arguments.done", None),
        ("response.output_item.done", None),
    ]
    assert out[-1].item.arguments == '{"a":1}'
    assert stage.handle(StreamFinished("completed")) is None


def test_final_stage_folds_and_tells_a_failure_in_the_response() -> None:
    events = list(
        iterate(
            reactivex.from_iterable(
                [
                    parse_chunk(json.dumps(c))
                    for c in (chunk({"content": "Hi"}), chunk(None, "stop"))
                ]
            ).pipe(rxo.split_by_item(ids=Ids()), rxo.accumulate_text(), rxo.assemble())
        )
    )
    stage = FinalStage()
    for event in events[:4]:  # cut before the end
        assert not stage.handle(event)  # held: nothing until the end
    (response,) = stage.fail(ConnectionResetError("reset"))
    assert stage.ended
    assert response.status == "failed"
    assert response.error is not None
    assert response.error.message == "reset"
    whole = FinalStage()
    for event in events:
        whole.handle(event)
    (final,) = whole.finish()
    assert (final.status, final.output_text) == ("completed", "Hi")


def test_every_source_works_with_the_bytes_pipelines(tmp_path: Any) -> None:
    # from_file() yields SSEMessage, from_bytes() / from_httpx() bytes: the pipelines take both.
    path = tmp_path / "chat.sse"
    body = _body(chunk({"content": "Hi"}), chunk(None, "stop"))
    path.write_bytes(body)
    for source in (from_file(path), from_bytes([body])):
        for pipeline in (
            chat_sse_to_responses(),
            reactivex.compose(rxo.decode_sse(), rxo.parse_chunks(), chat_to_responses()),
        ):
            response = get_final_response(source.pipe(pipeline))
            assert (response.status, response.output_text) == ("completed", "Hi")


@pytest.mark.parametrize("fused", [True, False])
def test_an_sdk_chunk_object_is_a_typed_error_not_a_failed_response(fused: bool) -> None:
    class SdkChunk:  # what openai's client yields: not an rxresponses ChatCompletionChunk
        id = "x"
        choices: list[Any] = []

    pipeline = chat_to_responses() if fused else rxo.split_by_item()
    with pytest.raises(StageError, match="ChatCompletionChunk") as info:
        list(iterate(reactivex.of(SdkChunk()).pipe(pipeline)))
    assert isinstance(info.value.element, SdkChunk)
    assert info.value.operator in ("chat_to_responses()", "split_by_item()")


def test_a_bytes_pipeline_fed_text_is_a_typed_error() -> None:
    with pytest.raises(StageError, match="decode_sse"):
        list(iterate(reactivex.of("data: {}\n\n").pipe(chat_sse_to_responses())))


# -- the driver's fast path ---------------------------------------------------------------------


class Upper:
    """A stage of the user's own with a fast path: deltas in upper case."""

    name = "upper()"
    delta_types = frozenset({TextDelta})

    def __init__(self) -> None:
        self.fast = 0

    def handle_delta(self, value: TextDelta) -> Any:
        if value.text == "skip":
            return None  # not on the fast path: handle() takes it
        self.fast += 1
        return NOTHING if value.text == "drop" else replace(value, text=value.text.upper())

    def handle(self, value: Any) -> list[Any] | None:
        if isinstance(value, TextDelta):
            return [replace(value, text=f"<{value.text}>")]
        return None

    def finish(self) -> list[Any]:
        return []

    def fail(self, exc: Exception) -> None:
        return None


def test_driver_tries_a_stage_fast_path_first() -> None:
    sink = Sink()
    upper = Upper()
    driver = Driver([upper], sink)
    for text in ("a", "skip", "drop", "b"):
        driver.on_next(TextDelta("msg_1", 0, text))
    driver.on_next("other")  # not a delta type: handle(), which passes it on
    driver.on_completed()
    assert [getattr(v, "text", v) for v in sink.values] == ["A", "<skip>", "B", "other"]
    assert upper.fast == 3
    assert sink.completed == 1


def test_driver_a_fast_path_that_raises_is_a_stage_error() -> None:
    class Broken(Upper):
        def handle_delta(self, value: TextDelta) -> Any:
            raise ValueError("broken")

    sink = Sink()
    driver = Driver([Broken()], sink)
    delta = TextDelta("msg_1", 0, "a")
    driver.on_next(delta)
    driver.on_next(delta)
    (error,) = sink.errors
    assert isinstance(error, StageError)
    assert (error.operator, error.element) == ("upper()", delta)
    assert sink.values == []


def _item_signals(stage_kind: str) -> list[Any]:
    if stage_kind == "text":
        return [ItemStarted("message", "msg_1", 0)] + [
            TextDelta("msg_1", 0, t, lp) for t, lp in (("a", None), ("b", None), ("c", [])) * 2
        ]
    if stage_kind == "reasoning":
        return [ItemStarted("reasoning", "rs_1", 0)] + [
            ReasoningDelta("rs_1", 0, t) for t in ("a", "b", "c")
        ]
    return [ItemStarted("function_call", "fc_1", 0, "call_1", "f")] + [
        ToolCallDelta("fc_1", 0, t) for t in ('{"a"', ": 1", "}")
    ]


@pytest.mark.parametrize(
    ("stage_kind", "make"),
    [("text", TextStage), ("reasoning", ReasoningStage), ("tools", ToolCallStage)],
)
def test_a_stage_fast_path_gives_what_handle_gives(stage_kind: str, make: Any) -> None:
    """handle_delta() is handle() minus the lookups: the same events, the same final item."""
    signals = _item_signals(stage_kind)
    signals.append(ItemFinished(signals[0].kind, signals[0].item_id, 0))
    slow, fast = make(), make()
    by_handle = [e for s in signals for e in (slow.handle(s) or [])]
    by_fast: list[Any] = []
    taken = 0
    for signal in signals:
        one = fast.handle_delta(signal) if type(signal) in fast.delta_types else None
        if one is None:
            by_fast.extend(fast.handle(signal) or [])
        else:
            taken += 1
            by_fast.append(one)
    assert [to_dict(e) for e in by_fast] == [to_dict(e) for e in by_handle]
    assert taken >= 2  # the first delta opens the part; the next ones take the fast path


def test_delta_events_take_their_type_from_the_event_class() -> None:
    fragments = Fragments()
    make = delta_maker(
        ResponseReasoningTextDeltaEvent,
        fragments,
        {"item_id": "rs_1", "output_index": 0, "content_index": 0},
    )
    event = make("x")
    assert event.type == "response.reasoning_text.delta"
    assert event_type(ResponseReasoningTextDeltaEvent) == "response.reasoning_text.delta"
    assert to_dict(event) == to_dict(
        ResponseReasoningTextDeltaEvent(item_id="rs_1", output_index=0, content_index=0, delta="x")
    )
    assert fragments.join() == "x"
    with pytest.raises(TypeError, match="delta_maker"):
        delta_maker(ResponseReasoningTextDeltaEvent, fragments, {"item_id": "rs_1"})


def test_delta_events_of_one_part_share_nothing_mutable() -> None:
    """The events one part's builder makes differ only in their text, and share no list, dict
    or set a user could change (each its own ``logprobs``, fields and set of fields)."""
    make = text_event_maker(
        ResponseTextDeltaEvent,
        {"item_id": "msg_1", "output_index": 0, "content_index": 0, "logprobs": []},
    )
    first, second = make("a"), make("b")
    assert to_dict(first) == to_dict(
        ResponseTextDeltaEvent(
            item_id="msg_1", output_index=0, content_index=0, delta="a", logprobs=[]
        )
    )
    assert to_dict(second)["delta"] == "b"
    assert first.logprobs is not second.logprobs
    assert first.__dict__ is not second.__dict__
    assert first.model_fields_set is not second.model_fields_set
    first.logprobs.append("changed")  # type: ignore[arg-type]
    assert second.logprobs == []
    assert make("c").logprobs == []


def test_assemble_then_final_response_fuse_and_give_the_same_response() -> None:
    body = _body(chunk({"content": "Hi"}), chunk({"content": " there"}), chunk(None, "stop"))

    def final(*hop: Any) -> dict[str, Any]:
        pipeline = chat_sse_to_responses(ids=Ids(), response_id="resp_1", created_at=1)
        (response,) = iterate(from_bytes([body]).pipe(pipeline, *hop, rxo.final_response()))
        out = to_dict(response)
        out.pop("completed_at")
        return out

    fused = final()
    assert fused == final(ops.map(lambda e: e))  # an Rx hop: nothing fuses across it
    assert (fused["status"], fused["output"][0]["content"][0]["text"]) == ("completed", "Hi there")
    staged = from_bytes([body]).pipe(chat_sse_to_responses(), rxo.final_response())
    assert isinstance(staged, StagedObservable)
    stages = Driver([factory() for factory in staged.factories], Sink())._stages
    assert [type(s).__name__ for s in stages] == [
        "ChatSplitStage",
        "ReasoningStage",
        "TextStage",
        "ToolCallStage",
        "AssembledResponse",
    ]


def test_fused_assemble_folds_only_what_the_response_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fused, assemble() | final_response() builds no created / in_progress event and holds the
    events of a short stream: at the end, the output_item.done of the closed message undoes
    its earlier events, so only it is folded. A long stream (past the events it holds) folds
    as it goes, and both give what the unfused chain gives."""
    applied: list[str] = []
    handle = ResponseAccumulator.handle

    def spy(self: ResponseAccumulator, event: Any) -> None:
        applied.append(event.type)
        handle(self, event)

    def final(body: bytes, *hop: Any) -> dict[str, Any]:
        pipeline = chat_sse_to_responses(ids=Ids(), response_id="resp_1", created_at=1)
        (response,) = iterate(from_bytes([body]).pipe(pipeline, *hop, rxo.final_response()))
        out = to_dict(response)
        out.pop("completed_at")
        return out

    short = _body(chunk({"content": "Hi"}), chunk({"content": " there"}), chunk(None, "stop"))
    words = [f"w{i} " for i in range(100)]
    long = _body(*(chunk({"content": w}) for w in words), chunk(None, "stop"))
    monkeypatch.setattr(ResponseAccumulator, "handle", spy)
    fused = final(short)
    assert applied == ["response.output_item.done"]
    assert fused == final(short, ops.map(lambda e: e))
    applied.clear()
    fused = final(long)
    assert fused["output"][0]["content"][0]["text"] == "".join(words)
    assert fused == final(long, ops.map(lambda e: e))


def test_fused_assemble_folds_events_it_did_not_build_without_changing_them() -> None:
    # Item events from elsewhere (here: a converted stream, moved to output_index 3) reach the
    # fused assemble() | final_response(), which folds the deltas without emitting them: they
    # are renumbered densely in the fold, and the events the caller holds stay as they were.
    body = _body(chunk({"content": "Hi"}), chunk({"content": " there"}), chunk(None, "stop"))
    pipeline = chat_sse_to_responses(ids=Ids(), response_id="resp_1", created_at=1)
    converted = iterate(from_bytes([body]).pipe(pipeline))
    moved = [
        e.model_copy(update={"output_index": 3}, deep=True)
        for e in converted
        if getattr(e, "output_index", None) is not None
    ]
    before = [to_dict(e) for e in moved]
    values: list[Any] = [StreamStarted("m", 1), *moved, StreamFinished("completed")]

    def final(*hop: Any) -> dict[str, Any]:
        assemble = rxo.assemble(ids=Ids(), response_id="resp_2", created_at=1)
        source = reactivex.from_iterable(values)
        (response,) = iterate(source.pipe(assemble, *hop, rxo.final_response()))
        out = to_dict(response)
        out.pop("completed_at")
        return out

    fused = final()
    assert [to_dict(e) for e in moved] == before
    assert [e.sequence_number for e in moved] == [2, 3, 4, 5, 6, 7, 8]
    assert fused == final(ops.map(lambda e: e))  # an Rx hop: nothing fuses across it
    assert fused["output"][0]["content"][0]["text"] == "Hi there"
    assert len(fused["output"]) == 1


def _order_of_a_subscription(pipeline: Any, *, hop: bool) -> list[str]:
    """What a subscription's callbacks see, in order, when each schedules work on the current
    thread's trampoline: the values' types (or the Response), ``completed``, and the work."""
    source = from_bytes([_body(chunk({"content": "Hi"}), chunk(None, "stop"))]).pipe(pipeline)
    if hop:  # an Rx hop: Rx's own subscribe runs the chain
        source = source.pipe(ops.map(lambda value: value))
    order: list[str] = []
    scheduler = CurrentThreadScheduler.singleton()

    def on_next(value: Any) -> None:
        name = str(getattr(value, "type", None) or type(value).__name__)
        order.append(name)
        scheduler.schedule(lambda _s, _t: order.append("work after " + name))

    source.subscribe(on_next, on_completed=lambda: order.append("completed"))
    return order


def test_a_staged_source_subscribed_on_this_thread_keeps_rx_order() -> None:
    """Subscribed directly (one scheduled action runs the chain and the source's loop), the
    work the callbacks schedule on this thread runs after the loop, as through Rx's own
    subscribe; values a stage emits on subscribe come first, with their work before the loop."""
    final = chat_sse_to_responses(ids=Ids()), rxo.final_response()
    staged = from_bytes([b""]).pipe(*final)
    assert isinstance(staged, StagedObservable)
    assert _order_of_a_subscription(reactivex.compose(*final), hop=False) == [
        "Response",
        "completed",
        "work after Response",
    ]
    assert _order_of_a_subscription(reactivex.compose(*final), hop=True) == [
        "Response",
        "completed",
        "work after Response",
    ]
    started = reactivex.compose(
        rxo.decode_sse(),
        rxo.parse_chunks(),
        rxo.split_by_item(ids=Ids()),
        rxo.accumulate_text(),
        rxo.assemble(ids=Ids(), start_immediately=True),
    )
    events = [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    expected = [
        "response.created",
        "response.in_progress",
        "work after response.created",
        "work after response.in_progress",
        *events,
        "completed",
        *("work after " + event for event in events),
    ]
    assert _order_of_a_subscription(started, hop=False) == expected
    assert _order_of_a_subscription(started, hop=True) == expected


def test_a_staged_source_disposed_on_subscribe_is_never_iterated() -> None:
    """A stage that fails on subscribe ends the stream before the source is read."""
    iterated: list[bool] = []

    def pieces() -> Any:
        iterated.append(True)
        yield _body(chunk({"content": "Hi"}))

    class Broken:
        def start(self) -> list[Any]:
            raise ValueError("no")

        def handle(self, value: Any) -> None:
            return None

        def finish(self) -> list[Any]:
            return []

        def fail(self, exc: Exception) -> None:
            return None

    errors: list[Exception] = []
    from_bytes(pieces()).pipe(stage_operator(Broken)).subscribe(on_error=errors.append)
    assert [type(e) for e in errors] == [StageError]
    assert iterated == []


def test_a_sync_source_is_iterated_by_the_driver_and_closed_when_disposed() -> None:
    closed: list[bool] = []

    def pieces() -> Any:
        try:
            yield _body(chunk({"content": "Hi"}))
            yield _body(chunk(None, "stop"))
        finally:
            closed.append(True)

    staged = from_bytes(pieces()).pipe(chat_sse_to_responses(), rxo.final_response())
    assert isinstance(staged, StagedObservable)
    assert isinstance(staged.source, IterableSource)
    (response,) = iterate(staged)
    assert (response.status, response.output_text) == ("completed", "Hi")
    assert closed == [True]

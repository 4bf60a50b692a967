"""The stages without Rx, and the one driver's rules.

Each stage is a plain state machine (``handle`` / ``finish`` / ``fail``): these tests drive them
value by value and write the expected output out. The driver tests use a list as the observer.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import reactivex

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
from rxresponses.operators._core import Driver, StagedObservable, stage_operator
from rxresponses.operators._final import FinalStage
from rxresponses.operators._join_tool_args import ToolCallStage
from rxresponses.operators._parse import ChatSplitStage, ChunkParser, SSEDecodeStage
from rxresponses.operators._split_by_item import ChunkSplitter
from rxresponses.sse import SSEMessage
from rxresponses.types._base import to_dict
from rxresponses.types.chat import parse_chunk
from rxresponses.types.signals import (
    ItemFinished,
    ItemStarted,
    StreamFinished,
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

"""``chat_sse_to_responses()``: SSE bytes -> typed Responses events with per-item lanes.

:func:`fused_chat_sse_to_responses` drives the *same* state machines as the operators
(:class:`ChunkSplitter`, :class:`ReasoningStage`, :class:`TextStage`, :class:`ToolCallStage`,
:class:`Assembler`) back to back inside one subscription, folding ``decode_sse() |
parse_chunks()`` in, with their semantics (``[DONE]`` completes; a decoder error, an undecodable
chunk or an upstream error fails the stream after what was framed before it; an exception from
an item stage reaches the assembler as an upstream error; a
:class:`~rxresponses.errors.PipelineError` from the assembler goes to ``on_error``). It reads
the common chunk shapes without building a ``ChatCompletionChunk``
(:class:`~rxresponses.types.chat.FastChunkReader`; the tests hold the events equal to the typed
path). Each signal goes straight to the item stage that owns it, and that stage's events to the
assembler. The operators' driver (:mod:`rxresponses.operators._core`) runs the same chain for
every other composition; this module adds the lanes below on top.

The fast lane: most chunks of a long stream are one more fragment of the item the previous
chunk fed. After a fast-read chunk that gave exactly one delta signal, :class:`_Run` asks the
stages for a *lane* for that item (:meth:`TextStage.lane`, :meth:`ReasoningStage.lane`,
:meth:`ToolCallStage.lane`, with :meth:`ChunkSplitter.arguments_lane` for tool-call arguments):
a closure that appends the fragment and builds its delta event, which goes to
:meth:`Assembler.forward_delta`. The next chunk of the same shape for the same item (content
only, reasoning only, or arguments only for the same tool-call index) takes the lane and skips
the splitter and the dispatch; anything else (another shape, a chunk read the slow way, an
error, the end) closes every lane and takes the full path. A stage offers no lane where the
full path would do more than append (a part to open, ``<think>`` tags still undecided,
logprobs). The tests hold the events equal to the typed path, lanes switching included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reactivex import Observable, abc

from ..errors import ChunkDecodeError, PipelineError, StageError
from ..sse import DEFAULT_MAX_LINE_BYTES, SSEDecoder, SSEMessage
from ..types.aliases import IdFactory
from ..types.chat import ChatCompletionChunk, FastChunkReader, FastDelta, parse_chunk
from ..types.signals import (
    ItemFinished,
    ItemStarted,
    ReasoningDelta,
    RefusalDelta,
    StreamFinished,
    TextDelta,
    ToolCallDelta,
)
from ._accumulate_text import TextStage
from ._assemble import Assembler, check_echo
from ._collect_reasoning import ReasoningStage
from ._core import random_ids, stage_operator
from ._join_tool_args import ToolCallStage
from ._split_by_item import ChunkSplitter

__all__ = ["ChatSSEStage", "fused_chat_sse_to_responses"]

_Handler = Callable[[Any], "list[Any] | None"]


class _Run:
    """One subscription's state: the splitter, the item stages and the assembler, driven back to
    back; what they produce goes to ``observer``."""

    def __init__(self, observer: abc.ObserverBase[Any], options: dict[str, Any]) -> None:
        o = options
        self.splitter = ChunkSplitter(
            choice_index=o["choice_index"], think_tags=o["think_tags"], ids=o["ids"]
        )
        self.asm = Assembler(
            response_id=o["response_id"],
            model=o["model"],
            created_at=o["created_at"],
            echo=o["echo"],
            ids=o["ids"],
            owns_input=True,  # the item stages built every event it gets, for it alone
        )
        self.observer = observer
        self.split_done = False
        self.reasoning = ReasoningStage(as_summary=o["reasoning_as_summary"])
        self.text = TextStage()
        self.tools = ToolCallStage()
        reasoning, text, tools = self.reasoning.handle, self.text.handle, self.tools.handle
        # The stage that owns each signal; the composed chain's other stages pass it through.
        self._by_type: dict[type, _Handler] = {
            TextDelta: text,
            RefusalDelta: text,
            ReasoningDelta: reasoning,
            ToolCallDelta: tools,
        }
        self._by_kind: dict[str, _Handler] = {
            "message": text,
            "reasoning": reasoning,
            "function_call": tools,
        }
        # The fast lane (see the module docstring): "text", "reasoning" or a tool-call index ->
        # a function of the next string for that item.
        self._lanes: dict[str | int, Callable[[str], None]] = {}

    @property
    def done(self) -> bool:
        return self.split_done or self.asm.ended

    def chunk(self, chunk: ChatCompletionChunk) -> None:
        self._lanes.clear()
        self._split(self.splitter.handle, chunk)

    def fast(self, fields: FastDelta) -> None:
        """:meth:`chunk` for a chunk :class:`FastChunkReader` read (the splitter has started)."""
        lanes = self._lanes
        if lanes:
            content, reasoning, tool = fields
            lane = None
            text: str | None = None
            if tool is None:
                if content and not reasoning:
                    lane, text = lanes.get("text"), content
                elif reasoning and not content:
                    lane, text = lanes.get("reasoning"), reasoning
            elif not content and not reasoning and tool[1] is None and tool[2] is None:
                lane, text = lanes.get(tool[0]) if tool[0] is not None else None, tool[3]
            if lane is not None:
                if text:
                    lane(text)
                return
        signals = self._split(self.splitter.handle_fast, fields)
        if len(signals) == 1 and not self.done:
            self._open_lane(signals[0], fields)
        else:
            lanes.clear()

    def _split(self, handle: Callable[[Any], list[Any]], value: Any) -> list[Any]:
        if self.done:
            return []
        try:
            signals = handle(value)
        except Exception as exc:  # a chunk the splitter cannot read fails the stream
            signals = self.splitter.fail(exc)
        self._after_split(signals)
        return signals

    def error(self, exc: Exception) -> None:
        self._lanes.clear()
        if not self.done:
            self._after_split(self.splitter.fail(exc))

    def completed(self, *, done: bool = False) -> None:
        self._lanes.clear()
        if not self.done:
            self._after_split(self.splitter.finish(done=done))

    def _open_lane(self, signal: Any, fields: FastDelta) -> None:
        """After a fast chunk that gave exactly one delta signal: keep a lane for the next
        delta of the same kind for the same item (the other lanes stay right: such a chunk
        changes nothing but that item's text)."""
        kind = type(signal)
        key: str | int
        arguments: Callable[[str], str] | None = None
        make: Callable[[str], Any] | None = None
        if kind is TextDelta and self.splitter.text_passes_whole():
            key, make = "text", self.text.lane(signal.item_id)
        elif kind is ReasoningDelta:
            key, make = "reasoning", self.reasoning.lane(signal.item_id)
        elif kind is ToolCallDelta and fields[2] is not None and fields[2][0] is not None:
            key = fields[2][0]
            arguments = self.splitter.arguments_lane(key, signal.item_id)
            if arguments is not None:
                make = self.tools.lane(signal.item_id)
        if make is None:
            self._lanes.clear()
        elif arguments is None:
            self._lanes[key] = self._delta_lane(make)
        else:
            self._lanes[key] = self._arguments_lane(arguments, make)

    def _delta_lane(self, make: Callable[[str], Any]) -> Callable[[str], None]:
        asm = self.asm
        on_next = self.observer.on_next
        forward: Callable[[Any], Any] | None = None

        def lane(text: str) -> None:
            nonlocal forward
            try:
                event = make(text)
                if forward is not None:
                    event = forward(event)
                else:  # the lane's first delta takes the full path, which then offers a shortcut
                    index = event.output_index
                    event = asm.forward_delta(event)
                    forward = asm.delta_forwarder(index, event)
            except Exception as exc:  # as on the full path: the assembler fails the stream
                self._lanes.clear()
                self._flush(asm.fail(exc))
                self.observer.on_completed()
                return
            on_next(event)

        return lane

    def _arguments_lane(
        self, arguments: Callable[[str], str], make: Callable[[str], Any]
    ) -> Callable[[str], None]:
        delta = self._delta_lane(make)

        def lane(fragment: str) -> None:
            new = arguments(fragment)
            if new:
                delta(new)

        return lane

    def _after_split(self, signals: list[Any]) -> None:
        if signals and isinstance(signals[-1], StreamFinished):
            self.split_done = True
        asm = self.asm
        to_asm = asm.handle
        by_type, by_kind = self._by_type, self._by_kind
        out: list[Any] = []
        try:
            for signal in signals:
                kind = type(signal)
                stage = by_type.get(kind)
                if stage is None and (kind is ItemStarted or kind is ItemFinished):
                    stage = by_kind.get(signal.kind)
                res = None if stage is None else stage(signal)
                if res is None:
                    out.extend(to_asm(signal))
                else:
                    for value in res:
                        out.extend(to_asm(value))
                if asm.ended:
                    break
        except PipelineError as exc:
            self._flush(out)
            asm.ended = True
            self.observer.on_error(exc)
            return
        except Exception as exc:  # an item stage failed: the assembler closes the stream
            out.extend(asm.fail(exc))
        self._flush(out)
        if asm.ended:
            self.observer.on_completed()

    def _flush(self, out: list[Any]) -> None:
        on_next = self.observer.on_next
        for value in out:
            on_next(value)


def _options(
    response_id: str | None,
    model: str | None,
    created_at: int | None,
    echo: Mapping[str, Any] | None,
    choice_index: int,
    think_tags: bool,
    reasoning_as_summary: bool,
    ids: IdFactory,
) -> dict[str, Any]:
    check_echo(echo)  # invalid echoed fields raise now, not mid-stream
    return {
        "response_id": response_id,
        "model": model,
        "created_at": created_at,
        "echo": echo,
        "choice_index": choice_index,
        "think_tags": think_tags,
        "reasoning_as_summary": reasoning_as_summary,
        "ids": ids,
    }


class _Collect(abc.ObserverBase[Any]):
    """What :class:`_Run` delivers to, when it runs as a stage: the values of one input."""

    def __init__(self) -> None:
        self.out: list[Any] = []  # never replaced: the lanes hold its append
        self.on_next = self.out.append  # type: ignore[method-assign,assignment]  # no call per value
        self.completed = False
        self.error: Exception | None = None

    def on_next(self, value: Any) -> None:  # replaced per instance by out.append
        self.out.append(value)

    def on_completed(self) -> None:
        self.completed = True

    def on_error(self, error: Exception) -> None:
        self.error = error


class ChatSSEStage:
    """``decode_sse() | parse_chunks() | chat_to_responses()`` with lanes, as one stage of the
    driver (so a ``final_response()`` piped after it joins the same subscription).

    A :class:`~rxresponses.errors.PipelineError` (a mis-wired pipeline, a value of the wrong type)
    ends it with ``error`` set, which the driver delivers to the subscriber after the values.
    """

    name = "chat_sse_to_responses()"

    def __init__(self, max_line_bytes: int, options: dict[str, Any]) -> None:
        self._sink = _Collect()
        self._run = _Run(self._sink, options)
        self._fast = FastChunkReader(options["choice_index"]).read
        self._decoder = SSEDecoder(max_line_bytes=max_line_bytes)
        self._stopped = False  # decode_sse() finished, or parse_chunks() failed
        self.ended = False
        self.error: Exception | None = None

    def handle(self, piece: bytes | SSEMessage) -> list[Any]:
        out = self._sink.out
        out.clear()  # the driver has sent the previous input's values on
        if not self._stopped:
            self._on_next(piece)
        return self._result()

    def finish(self) -> list[Any]:
        self._sink.out.clear()
        self._end(None)
        return self._result()

    def fail(self, exc: Exception) -> list[Any]:
        self._sink.out.clear()
        self._end(exc)
        return self._result()

    def _result(self) -> list[Any]:
        sink = self._sink
        if sink.completed or sink.error is not None:
            self.ended = True
            self.error = sink.error
        return sink.out

    def _emit(self, datas: list[str]) -> None:
        run = self._run
        splitter = run.splitter
        fast = self._fast
        for data in datas:
            if data == "[DONE]":
                self._stopped = True
                run.completed(done=True)
                return
            fields = fast(data) if splitter.started else None
            if fields is not None:
                run.fast(fields)
                continue
            try:
                chunk = parse_chunk(data)
            except ChunkDecodeError as exc:
                self._stopped = True
                run.error(exc)
                return
            run.chunk(chunk)

    def _on_next(self, piece: bytes | SSEMessage) -> None:
        if type(piece) is not bytes:
            if isinstance(piece, SSEMessage):  # already decoded (from_file())
                self._emit([piece.data])
                return
            if not isinstance(piece, bytes | bytearray | memoryview):
                self._stopped = True  # a programming error: the subscriber's on_error
                self._run.asm.ended = True
                message = f"decode_sse() takes bytes or SSEMessage, got {type(piece).__name__}"
                self._sink.on_error(StageError(self.name, piece, TypeError(message)))
                return
            piece = bytes(piece)
        try:
            datas = self._decoder.feed_data(piece)
        except Exception as exc:
            self._stopped = True
            self._run.error(exc)
            return
        self._emit(datas)

    def _end(self, exc: Exception | None) -> None:
        if self._stopped:
            return
        # What was fully framed before the end is still delivered.
        self._emit([m.data for m in self._decoder.flush()])
        if not self._stopped:
            self._stopped = True
            if exc is None:
                self._run.completed()
            else:
                self._run.error(exc)


def fused_chat_sse_to_responses(
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    response_id: str | None = None,
    model: str | None = None,
    created_at: int | None = None,
    echo: Mapping[str, Any] | None = None,
    choice_index: int = 0,
    think_tags: bool = True,
    reasoning_as_summary: bool = False,
    ids: IdFactory = random_ids,
) -> Callable[[Observable[bytes]], Observable[Any]]:
    """``decode_sse() | parse_chunks() | chat_to_responses()`` as one stage of the driver (see
    the module docstring and :class:`ChatSSEStage`)."""
    options = _options(
        response_id, model, created_at, echo, choice_index, think_tags, reasoning_as_summary, ids
    )
    return stage_operator(lambda: ChatSSEStage(max_line_bytes, options))

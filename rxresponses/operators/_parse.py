"""The stages at the edge: SSE bytes -> messages, messages -> Chat chunks or Responses events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from reactivex import Observable

from ..errors import ChunkDecodeError, RxResponsesError
from ..sse import DEFAULT_MAX_LINE_BYTES, SSEDecoder, SSEMessage
from ..types.chat import ChatCompletionChunk, FastChunkReader, FastDelta, parse_chunk
from ..types.events import ResponseStreamEvent, parse_event
from ..types.signals import Signal
from ._core import stage_operator
from ._split_by_item import ChunkSplitter

__all__ = [
    "ChatSplitStage",
    "DONE",
    "ChunkParser",
    "EventParser",
    "SSEDecodeStage",
    "decode_sse",
    "parse_chunks",
    "parse_events",
]

Message = SSEMessage | str | bytes

#: The ``data: [DONE]`` message: :func:`decode_sse` emits it last, :func:`parse_chunks` passes
#: it on, and :func:`split_by_item` ends the stream at it, saying so when no ``finish_reason``
#: came before it (rather than reporting a cut connection).
DONE: Final = SSEMessage("[DONE]")


def _message_data(value: Message) -> str | bytes:
    if isinstance(value, SSEMessage):
        return value.data
    if isinstance(value, str | bytes):
        return value
    raise TypeError(f"expected an SSEMessage, str or bytes, got {type(value).__name__}")


def _check_bytes(value: object) -> None:
    raise TypeError(f"decode_sse() takes bytes or SSEMessage values, got {type(value).__name__}")


class SSEDecodeStage:
    """The stage of :func:`decode_sse`: bytes -> :class:`SSEMessage`; ends at ``data: [DONE]``,
    which is its last value (so the stages after it can tell a finished stream from a cut one).

    What was fully framed before the input ends or fails is still emitted. Messages that are
    already decoded (``from_file()`` yields them) pass as they are, so every source fits.
    """

    name = "decode_sse()"

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._decoder = SSEDecoder(max_line_bytes=max_line_bytes)
        self.ended = False

    def handle(self, chunk: bytes | SSEMessage) -> list[SSEMessage]:
        if isinstance(chunk, SSEMessage):  # already decoded (from_file()): as it is
            return self._until_done([chunk])
        if not isinstance(chunk, bytes):
            if not isinstance(chunk, bytearray | memoryview):
                _check_bytes(chunk)
            chunk = bytes(chunk)
        return self._until_done(self._decoder.feed(chunk))

    def finish(self) -> list[SSEMessage]:
        return self._until_done(self._decoder.flush())

    def fail(self, exc: Exception) -> list[SSEMessage]:
        return self.finish()

    def fuse(self, stage: object) -> ChatSplitStage | None:
        """Followed by ``parse_chunks() | split_by_item()`` (fused): one stage from bytes."""
        if isinstance(stage, ChatSplitStage) and stage.decoder is None:
            return ChatSplitStage(stage.splitter, self._decoder)
        return None

    def _until_done(self, messages: list[SSEMessage]) -> list[SSEMessage]:
        for k, message in enumerate(messages):
            if message.data == "[DONE]":
                self.ended = True
                return messages[: k + 1]
        return messages


class ChunkParser:
    """The stage of :func:`parse_chunks`: messages -> :class:`ChatCompletionChunk`; the
    ``[DONE]`` message passes on (as :data:`DONE` when it came as a string or bytes)."""

    name = "parse_chunks()"

    def fuse(self, stage: object) -> ChatSplitStage | None:
        """Followed by ``split_by_item()``'s stage: one stage that skips building most chunks."""
        if isinstance(stage, ChunkSplitter) and not stage.started:
            return ChatSplitStage(stage)
        return None

    def handle(self, value: Message) -> list[ChatCompletionChunk | SSEMessage]:
        data = _message_data(value)
        if data == "[DONE]" or data == b"[DONE]":
            return [value if isinstance(value, SSEMessage) else DONE]
        return [parse_chunk(data)]  # ChunkDecodeError fails the stream

    def finish(self) -> list[ChatCompletionChunk | SSEMessage]:
        return []

    def fail(self, exc: Exception) -> None:
        return None


class ChatSplitStage:
    """``[decode_sse() |] parse_chunks() | split_by_item()`` as one stage: the fast path these
    stages offer when they are adjacent in a chain (the driver fuses them).

    Same values and the same ending rules as the three apart (``[DONE]`` ends the stream; a
    decoder error, an undecodable chunk or a failing input fail it through the splitter, after
    what was framed before), but the common chunk shapes are read by
    :class:`~rxresponses.types.chat.FastChunkReader` without building a
    :class:`ChatCompletionChunk` (``tests/test_fastpath.py`` holds the two paths equal).
    """

    fresh_output = True

    def __init__(self, splitter: ChunkSplitter, decoder: SSEDecoder | None = None) -> None:
        self.splitter = splitter
        self.decoder = decoder
        self.name = "parse_chunks() | split_by_item()"
        if decoder is not None:
            self.name = "decode_sse() | " + self.name
        reader = self._reader = FastChunkReader(splitter.choice_index)
        self._run = reader.read_run
        self._read_new = reader.read_new
        self._read_end = reader.read_end
        #: ``[DONE]`` came, or the splitter ended the stream.
        self.ended = False

    def handle(self, value: Any) -> list[Signal]:
        out = self._handle(value)
        self.ended = self.ended or self.splitter.ended
        return out

    def _handle(self, value: Any) -> list[Signal]:
        decoder = self.decoder
        if decoder is None:
            return self._split([_message_data(value)])
        if isinstance(value, SSEMessage):  # already decoded (from_file()): as it is
            return self._split([value.data])
        if not isinstance(value, bytes):
            if not isinstance(value, bytearray | memoryview):
                _check_bytes(value)
            value = bytes(value)
        try:
            datas = decoder.feed_data(value)
        except RxResponsesError as exc:
            return self._end(self.splitter.fail(exc))
        return self._split(datas)

    def finish(self) -> list[Signal]:
        out = self._flushed()
        if not self.ended:
            out.extend(self.splitter.finish())
        self.ended = True
        return out

    def fail(self, exc: Exception) -> list[Signal]:
        out = self._flushed()
        if not self.ended:
            out.extend(self.splitter.fail(exc))
        self.ended = True
        return out

    def _flushed(self) -> list[Signal]:
        if self.decoder is None or self.ended:
            return []
        out = self._split([m.data for m in self.decoder.flush()])
        self.ended = self.ended or self.splitter.ended
        return out

    def _end(self, signals: list[Signal]) -> list[Signal]:
        self.ended = True
        return signals

    def _split(self, datas: list[Any]) -> list[Signal]:
        splitter = self.splitter
        run = self._run
        read_new = self._read_new
        handle_fast = splitter.handle_fast
        out: list[Signal] = []
        k, n = 0, len(datas)
        while k < n:
            if splitter.ended:
                break
            if splitter.started:
                # A run of chunks that each add a string to one slot (most of a stream): read
                # and split in one call each; the same signals as chunk by chunk below.
                slot, index, texts = run(datas, k)
                if texts:
                    k += len(texts)
                    signals = splitter.handle_run(slot, index, texts)
                    if signals is not None:
                        out += signals
                        continue
                    for text in texts:
                        if splitter.ended:
                            break
                        fields: FastDelta = (
                            (text, None, None)
                            if slot == 0
                            else (None, text, None)
                            if slot == 1
                            else (None, None, (index, None, None, text))
                        )
                        try:
                            out += handle_fast(fields)
                        except Exception as exc:  # as below
                            out += splitter.fail(exc)
                    continue
            data = datas[k]
            k += 1
            if data == "[DONE]" or data == b"[DONE]":
                out.extend(splitter.finish(done=True))
                return self._end(out)
            if type(data) is str:
                read = read_new(data)  # no template reads it (run() said so)
                if read is not None:
                    fields = read
                    try:
                        if not splitter.started:
                            out += splitter.start_fast(self._reader.top or {})
                        out += handle_fast(fields)
                    except Exception as exc:  # as handle(): a chunk it cannot read fails it
                        out += splitter.fail(exc)
                    continue
                end = self._read_end(data) if splitter.started else None
                if end is not None:  # the finish or usage chunk
                    try:
                        out += splitter.handle_end(*end)
                    except Exception as exc:  # as above
                        out += splitter.fail(exc)
                    continue
            try:
                chunk = parse_chunk(data)
            except ChunkDecodeError as exc:
                out.extend(splitter.fail(exc))
                return self._end(out)
            out.extend(splitter.handle(chunk))
        return out


class EventParser:
    """The stage of :func:`parse_events`: messages -> typed Responses events."""

    name = "parse_events()"

    def handle(self, value: Message) -> list[ResponseStreamEvent]:
        data = _message_data(value)
        if data == "[DONE]" or data == b"[DONE]":
            return []
        try:
            return [parse_event(data)]
        except Exception as exc:
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
            raise ChunkDecodeError(f"undecodable event ({exc})", text) from exc

    def finish(self) -> list[ResponseStreamEvent]:
        return []

    def fail(self, exc: Exception) -> None:
        return None


def decode_sse(
    *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Callable[[Observable[bytes]], Observable[SSEMessage]]:
    """Implementation of :func:`rxresponses.operators.decode_sse`."""
    return stage_operator(lambda: SSEDecodeStage(max_line_bytes=max_line_bytes))


def parse_chunks() -> Callable[[Observable[Message]], Observable[ChatCompletionChunk | SSEMessage]]:
    """Implementation of :func:`rxresponses.operators.parse_chunks`."""
    return stage_operator(ChunkParser)


def parse_events() -> Callable[[Observable[Message]], Observable[ResponseStreamEvent]]:
    """Implementation of :func:`rxresponses.operators.parse_events`."""
    return stage_operator(EventParser)

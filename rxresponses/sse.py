"""Server-sent events: an incremental decoder over bytes and an encoder.

The decoder follows the WHATWG ``text/event-stream`` rules that matter for LLM streams:

* lines end at CR, LF or CRLF, and nowhere else (U+2028 inside a JSON string is *not* a line
  break; ``str.splitlines()`` gets this wrong);
* a UTF-8 BOM at the very start is dropped;
* bytes may be split anywhere, inside a CRLF pair or inside a multi-byte UTF-8 character: lines are
  only decoded once complete;
* several ``data:`` lines join with ``\\n``; ``event``, ``id`` and ``retry`` are kept; comment lines
  (``: OPENROUTER PROCESSING``) and unknown fields are ignored;
* a blank line dispatches the message; a message whose data is empty is not dispatched.

``data: [DONE]`` is delivered as a message (:attr:`SSEMessage.is_done`); the
:func:`~rxresponses.operators.decode_sse` operator emits it as its last value and completes.
:meth:`SSEDecoder.feed_data` returns only the messages' ``data`` (the fused Chat pipeline needs
nothing else), with the common one-``data:``-line frame decoded inline.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Final

from reactivex import Observable
from reactivex import operators as ops

from .errors import SSELineTooLongError
from .types._base import WireModel, to_json
from .types.events import ResponseTextDeltaEvent

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "SSEDecoder",
    "SSEMessage",
    "encode_event",
    "encode_event_data",
    "encode_message",
    "encode_sse",
]

#: Default bound on one SSE line (16 MiB): enough for base64 images, small enough to bound memory.
DEFAULT_MAX_LINE_BYTES: Final = 16 * 1024 * 1024

_BOM: Final = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SSEMessage:
    """One dispatched server-sent event.

    Attributes:
        data: The data lines joined with ``\\n``.
        event: The ``event:`` field, or ``None`` when the frame had none.
        id: The ``id:`` field, or ``None``.
        retry: The ``retry:`` field in milliseconds, or ``None``.
    """

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    @property
    def is_done(self) -> bool:
        """True for the ``data: [DONE]`` sentinel that ends OpenAI-style streams."""
        return self.data == "[DONE]"


#: Whether a line of text is a ``data: `` line (:meth:`SSEDecoder.feed_data`'s frame shortcut).
_IS_DATA = operator.methodcaller("startswith", "data: ")


class SSEDecoder:
    """Incremental ``text/event-stream`` decoder: feed bytes, get complete messages.

    Example:
        >>> d = SSEDecoder()
        >>> d.feed(b"data: he") + d.feed(b"llo\\n\\n")
        [SSEMessage(data='hello', event=None, id=None, retry=None)]

    Args:
        max_line_bytes: Largest line accepted; a longer one raises
            :class:`~rxresponses.errors.SSELineTooLongError` so memory stays bounded.
    """

    __slots__ = ("_data", "_event", "_id", "_max", "_partial", "_retry", "_skip_lf", "_started")

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._max = max_line_bytes
        self._partial = bytearray()  # an unterminated line
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF completes a CRLF
        self._started = False  # BOM handling happens once
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None

    @property
    def pending(self) -> bool:
        """True when bytes of an unfinished message are buffered (a cut stream leaves some)."""
        return bool(self._partial) or bool(self._data)

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        """Decode one chunk of bytes; return the messages it completes, in order."""
        out: list[SSEMessage] = []
        limit = self._max
        for line in self._lines(chunk):
            if len(line) > limit:
                raise SSELineTooLongError(limit)
            self._line(line, out)
        return out

    def feed_data(self, chunk: bytes) -> list[str]:
        """Like :meth:`feed`, but return only the ``data`` of each message (no
        :class:`SSEMessage` per message: the fused Chat pipeline reads nothing else)."""
        if not self._started:  # the BOM, as _lines() takes it: then the frames may be read
            started = self._start(chunk)
            if started is None:
                return []
            chunk = started
        if not self._data and not self._skip_lf and b"\n\n" in chunk and b"\r" not in chunk:
            return self._frames(chunk)
        out: list[str] = []
        data = self._data
        limit = self._max
        for line in self._lines(chunk):
            if len(line) > limit:
                raise SSELineTooLongError(limit)
            # The hot path of an LLM stream, inline: a ``data:`` line, then a blank line.
            if line.startswith(b"data: "):
                data.append(line[6:].decode("utf-8", "replace"))
            elif not line and len(data) == 1:
                self._event = None
                if data[0]:
                    out.append(data[0])
                data.clear()
            else:
                messages: list[SSEMessage] = []
                self._line(line, messages)
                out.extend(m.data for m in messages)
        return out

    def _frames(self, chunk: bytes) -> list[str]:
        """:meth:`feed_data` for LF-only bytes that end at least one message, when no message is
        under way: split into frames on blank lines at once. A frame of one ``data: `` line (the
        usual one) is its data; any other goes through the line machinery, line by line, then
        its blank line. What follows the last blank line is fed as :meth:`feed_data` would."""
        if self._partial:
            buf = bytes(self._partial) + chunk
            self._partial.clear()
        else:
            buf = chunk
        end = buf.rindex(b"\n\n")
        tail = buf[end + 2 :]
        limit = self._max
        lines = tail.split(b"\n")
        rest = lines.pop()
        if len(rest) > limit:
            raise SSELineTooLongError(limit)
        simple = self._data_frames(buf, end)
        out: list[str] = [] if simple is None else simple
        frames = buf[:end].split(b"\n\n") if simple is None else []
        for frame in frames:
            if len(frame) > limit or not frame.startswith(b"data: ") or b"\n" in frame:
                messages: list[SSEMessage] = []
                for line in frame.split(b"\n"):
                    if len(line) > limit:
                        raise SSELineTooLongError(limit)
                    self._line(line, messages)
                self._line(b"", messages)
                out.extend(m.data for m in messages)
            elif len(frame) > 6:  # a lone empty ``data:`` line dispatches nothing
                out.append(frame[6:].decode("utf-8", "replace"))
        self._event = None  # each frame ended with a blank line
        messages = []
        for line in lines:
            if len(line) > limit:
                raise SSELineTooLongError(limit)
            self._line(line, messages)
        out.extend(m.data for m in messages)
        self._partial += rest
        return out

    def _data_frames(self, buf: bytes, end: int) -> list[str] | None:
        """The data of the frames in ``buf[:end]`` when each is one ``data: `` line of valid
        UTF-8 within the line limit (what an LLM stream sends), decoded at once; else ``None``."""
        try:
            text = buf[:end].decode()
        except UnicodeDecodeError:
            return None
        lines = text.split("\n")
        frames = lines[::2]
        if (
            not len(lines) % 2
            or any(lines[1::2])
            or not all(map(_IS_DATA, frames))
            # characters count bytes when the text is ASCII; else a character has up to 4
            or max(map(len, frames)) * (1 if len(text) == end else 4) > self._max
        ):
            return None
        return [frame[6:] for frame in frames if len(frame) > 6]

    def _start(self, chunk: bytes) -> bytes | None:
        """The stream's first bytes without a leading UTF-8 BOM, or ``None`` while what came so
        far could still be the start of one (kept until more arrives)."""
        self._partial += chunk
        if len(self._partial) < len(_BOM) and _BOM.startswith(bytes(self._partial)):
            return None  # could still be a BOM: wait for more
        self._started = True
        chunk = bytes(self._partial)
        self._partial.clear()
        return chunk[len(_BOM) :] if chunk.startswith(_BOM) else chunk

    def _lines(self, chunk: bytes) -> list[bytes]:
        """The complete lines ``chunk`` ends (the unterminated rest is kept for later)."""
        if not chunk:
            return []
        if not self._started:
            started = self._start(chunk)
            if started is None:
                return []
            chunk = started
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        has_cr = b"\r" in chunk
        if not has_cr and b"\n" not in chunk:
            self._partial += chunk
            if len(self._partial) > self._max:
                self._partial.clear()
                raise SSELineTooLongError(self._max)
            return []
        if self._partial:
            buf = bytes(self._partial) + chunk
            self._partial.clear()
        else:
            buf = chunk
        if has_cr:
            if buf.endswith(b"\r"):
                self._skip_lf = True
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        rest = lines.pop()
        if len(rest) > self._max:
            raise SSELineTooLongError(self._max)
        self._partial += rest
        return lines

    def flush(self) -> list[SSEMessage]:
        """End of input: dispatch a message whose last line ended but whose blank line never came.

        An unterminated final line is discarded, as the SSE specification says: it may be cut.
        """
        self._partial.clear()
        out: list[SSEMessage] = []
        self._line(b"", out)
        return out

    def _line(self, line: bytes, out: list[SSEMessage]) -> None:
        if not line:
            if self._data:
                data = "\n".join(self._data)
                self._data.clear()
                if data:  # a lone empty ``data:`` line dispatches nothing (WHATWG)
                    out.append(SSEMessage(data, self._event, self._id, self._retry))
            self._event = None
            return
        if line.startswith(b"data:"):  # the hot path
            value = line[6:] if line[5:6] == b" " else line[5:]
            self._data.append(value.decode("utf-8", "replace"))
            return
        if line[0] == 0x3A:  # ":" comment
            return
        name, sep, raw = line.partition(b":")
        if sep and raw[:1] == b" ":
            raw = raw[1:]
        value_s = raw.decode("utf-8", "replace")
        if name == b"data":  # "data" with no colon
            self._data.append(value_s)
        elif name == b"event":
            self._event = value_s
        elif name == b"id":
            if "\x00" not in value_s:
                self._id = value_s
        elif name == b"retry" and value_s.isascii() and value_s.isdigit():
            self._retry = int(value_s)


def encode_message(message: SSEMessage) -> bytes:
    """Encode one :class:`SSEMessage` as an SSE frame (multi-line data becomes several lines)."""
    parts: list[str] = []
    if message.event is not None:
        parts.append(f"event: {message.event}\n")
    if message.id is not None:
        parts.append(f"id: {message.id}\n")
    if message.retry is not None:
        parts.append(f"retry: {message.retry}\n")
    for line in message.data.split("\n"):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def encode_event(event: WireModel) -> bytes:
    """Encode a typed event as ``event: <type>`` + ``data: <json>`` + blank line.

    The JSON is one line (JSON escapes newlines inside strings), so one ``data:`` line carries it.
    """
    return encode_event_data(event)[0]


def encode_event_data(event: WireModel) -> tuple[bytes, str]:
    """:func:`encode_event`'s frame and the event's JSON (:func:`~rxresponses.types._base.to_json`)
    in one call, for a caller that keeps the JSON too (the server's event log)."""
    if type(event) is ResponseTextDeltaEvent:
        done = _text_delta_frame(event)
        if done is not None:
            return done
    kind = getattr(event, "type", None)
    data = to_json(event)
    if kind is None:
        return f"data: {data}\n\n".encode(), data
    return f"event: {kind}\ndata: {data}\n\n".encode(), data


#: Every field of ``response.output_text.delta``: the template below writes them all.
_TEXT_DELTA_FIELDS: Final = frozenset(ResponseTextDeltaEvent.model_fields)
_TEXT_DELTA: Final = "response.output_text.delta"


def _text_delta_frame(event: ResponseTextDeltaEvent) -> tuple[bytes, str] | None:
    """The frame of a text delta as ``to_json`` would write it, by string formatting (the
    per-token event: pydantic's serializer costs more than all of this), or ``None`` when the event
    is not of the one shape the template writes: every field set and of its exact declared type,
    ``logprobs`` empty, no extra field. Then :func:`encode_event_data` serializes it as usual.

    Strings are escaped by :func:`json.encoder.encode_basestring` (what ``json.dumps`` uses with
    ``ensure_ascii=False``), which escapes what pydantic's serializer escapes: ``"``, ``\\``, and
    the control characters U+0000-U+001F (``\\n``, ``\\r``, ``\\t``, ``\\b``, ``\\f``, the rest
    as ``\\u00xx``), and nothing else. Text pydantic cannot serialize (a lone surrogate fails
    the strict UTF-8 encoding here) goes to the usual path, which raises what it always raised.
    ``tests/test_sse_encode.py`` holds the two equal.
    """
    seq = event.sequence_number
    item_id = event.item_id
    output_index = event.output_index
    content_index = event.content_index
    delta = event.delta
    logprobs = event.logprobs
    if (
        type(seq) is not int
        or type(output_index) is not int
        or type(content_index) is not int
        or type(item_id) is not str
        or type(delta) is not str
        or type(logprobs) is not list
        or logprobs
        or event.type != _TEXT_DELTA
        or event.model_extra
        or event.model_fields_set != _TEXT_DELTA_FIELDS
    ):
        return None
    data = (
        f'{{"type":"{_TEXT_DELTA}","sequence_number":{seq},"item_id":{encode_basestring(item_id)},'
        f'"output_index":{output_index},"content_index":{content_index},'
        f'"delta":{encode_basestring(delta)},"logprobs":[]}}'
    )
    try:
        frame = f"event: {_TEXT_DELTA}\ndata: {data}\n\n".encode()
    except UnicodeEncodeError:
        return None
    return frame, data


def encode_sse() -> Callable[[Observable[WireModel]], Observable[bytes]]:
    """Encode typed events as SSE frames (``event: <type>`` + ``data: <json>``).

    .. code-block:: text

        ResponseCreatedEvent --------- ResponseCompletedEvent --|
        [                    encode_sse()                     ]
        b"event: response.created\\ndata: {...}\\n\\n" --- ... --|
    """

    def _encode(source: Observable[WireModel]) -> Observable[bytes]:
        return source.pipe(ops.map(encode_event))

    return _encode

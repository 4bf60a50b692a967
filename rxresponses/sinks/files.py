"""Write events to files: SSE bytes (a ``text/event-stream`` body) and JSON Lines.

Both writers are Rx observers, so they plug in wherever an observer does::

    events.subscribe(SSEWriter(fh))          # the end of a pipeline
    events.pipe(ops.do(JSONLWriter(fh)))     # a tap in the middle of one

Every event is serialized through :func:`rxresponses.types.to_json`, so the JSONL line of an event
is exactly the JSON its SSE ``data:`` line carries. The writers never close the file they were
given (you own it); they flush after each event by default, so ``tail -f`` sees events live.
"""

from __future__ import annotations

import io
from typing import IO, Any

from reactivex import abc

from ..sse import encode_event
from ..types._base import to_json

__all__ = ["JSONLWriter", "SSEWriter", "jsonl_writer", "sse_writer"]


class _Writer(abc.ObserverBase[Any]):
    """Shared plumbing: text or binary file, flush policy, error handling."""

    def __init__(self, fh: IO[bytes] | IO[str], *, flush: bool = True) -> None:
        self._fh = fh
        self._text = isinstance(fh, io.TextIOBase)
        self._flush = flush
        #: Events written so far.
        self.count = 0
        #: The exception the stream ended with, if any (nothing is written for it).
        self.error: Exception | None = None

    def _encode(self, event: Any) -> bytes:
        raise NotImplementedError

    def _write(self, data: bytes) -> None:
        fh: Any = self._fh  # IO[bytes] or IO[str], told apart at construction
        fh.write(data.decode("utf-8") if self._text else data)
        if self._flush:
            self._fh.flush()

    def on_next(self, value: Any) -> None:
        """Write one event."""
        self._write(self._encode(value))
        self.count += 1

    def on_error(self, error: Exception) -> None:
        """Remember the error and flush; the events written so far stay valid."""
        self.error = error
        self._fh.flush()

    def on_completed(self) -> None:
        """Flush."""
        self._fh.flush()


class SSEWriter(_Writer):
    """Writes each event as an SSE frame: ``event: <type>``, ``data: <json>``, a blank line.

    The output is what a Responses API server sends (no ``[DONE]`` sentinel: the Responses API
    ends with its terminal event). Frames are written as UTF-8 bytes to a binary file; a text file
    (``io.TextIOBase``: ``sys.stdout``, ``io.StringIO``) gets the decoded text.

    Args:
        fh: The file to write to. It is not closed.
        flush: Flush after every event (default), so a reader sees events as they happen.
    """

    def _encode(self, event: Any) -> bytes:
        return encode_event(event)


class JSONLWriter(_Writer):
    """Writes each event as one line of JSON (the payload of its SSE ``data:`` line).

    The file reads back with ``rxresponses replay`` / :func:`rxresponses.from_file` (``.jsonl``).

    Args:
        fh: The file to write to, binary (UTF-8 bytes) or text. It is not closed.
        flush: Flush after every event (default).
    """

    def _encode(self, event: Any) -> bytes:
        return to_json(event).encode("utf-8") + b"\n"


def sse_writer(fh: IO[bytes] | IO[str], *, flush: bool = True) -> SSEWriter:
    """An observer writing events as SSE frames to ``fh`` (see :class:`SSEWriter`)."""
    return SSEWriter(fh, flush=flush)


def jsonl_writer(fh: IO[bytes] | IO[str], *, flush: bool = True) -> JSONLWriter:
    """An observer writing events as JSON Lines to ``fh`` (see :class:`JSONLWriter`)."""
    return JSONLWriter(fh, flush=flush)

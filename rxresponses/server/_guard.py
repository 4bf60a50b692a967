"""A deadline for request heads, in front of uvicorn's HTTP protocol (slowloris).

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but gives a new connection
unlimited time to send its request line and headers, so clients that drip their headers one byte
at a time hold connections (and file descriptors) forever. :class:`HeaderTimeoutProtocol` wraps
the protocol uvicorn would use (``http="auto"``) and closes a connection whose first request head
(up to the blank line) has not arrived within ``client_header_timeout`` seconds of connecting.

It is plain composition through uvicorn's documented ``http`` setting (given as the class itself,
which every uvicorn release takes; only newer ones take an import string): every
``asyncio.Protocol`` call is passed on unchanged, nothing of uvicorn is subclassed or patched.
What it does not cover: a client that sends one complete request and then drips the head of the
next one on the same connection (the keep-alive timer of uvicorn is cancelled by any byte);
``--max-client-connections`` still bounds those.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Final

__all__ = ["HEADER_TIMEOUT_ENV", "PROTOCOL", "HeaderTimeoutProtocol"]

#: Where the deadline comes from (set by ``rxresponses serve`` for every worker).
HEADER_TIMEOUT_ENV: Final = "RXRESPONSES_CLIENT_HEADER_TIMEOUT"
_DEFAULT_TIMEOUT: Final = 10.0
_END_OF_HEAD: Final = b"\r\n\r\n"


def _timeout() -> float:
    try:
        value = float(os.environ.get(HEADER_TIMEOUT_ENV, "") or _DEFAULT_TIMEOUT)
    except ValueError:
        return _DEFAULT_TIMEOUT
    return value if value > 0 else _DEFAULT_TIMEOUT


class HeaderTimeoutProtocol(asyncio.Protocol):
    """uvicorn's HTTP protocol, plus: the first request head must arrive within the deadline.

    Args:
        **kwargs: What uvicorn passes to its protocol class (``config``, ``server_state``...),
            handed on as they are.
    """

    def __init__(self, **kwargs: Any) -> None:
        from uvicorn.config import HTTP_PROTOCOLS
        from uvicorn.importer import import_from_string

        self._inner: asyncio.Protocol = import_from_string(HTTP_PROTOCOLS["auto"])(**kwargs)
        self._loop = kwargs.get("_loop") or asyncio.get_event_loop()
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._timer = self._loop.call_later(_timeout(), self._expire)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            window = self._tail + data
            if _END_OF_HEAD in window:
                self._timer.cancel()
                self._timer = None
                self._tail = b""
            else:
                self._tail = window[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _expire(self) -> None:
        self._timer = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


#: The value of uvicorn's ``http`` setting that selects this protocol.
PROTOCOL: Final[type[asyncio.Protocol]] = HeaderTimeoutProtocol

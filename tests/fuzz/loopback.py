"""A raw HTTP/1.1 server on 127.0.0.1 that a test controls byte by byte.

:class:`LoopbackServer` runs an asyncio server on its own thread and hands every request to a
handler coroutine with a :class:`Conn`, which writes the status line, headers and body exactly as
told: chunked, with a ``content-length``, or delimited by closing the connection; it can stop in
the middle of a frame or of a UTF-8 sequence, stall, or stream until the client goes away. The
server counts connections (open now, and in total), bytes sent, and keeps every request it read,
so tests can assert what the upstream received and that the client released its connections.

Used by ``tests/test_hardening_*.py`` and ``tests/fuzz/load.py``. Every wait has a timeout and
:meth:`LoopbackServer.stop` closes every connection and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

__all__ = ["Conn", "Handler", "LoopbackServer", "Request", "wait_until"]

Framing = Literal["chunked", "length", "close"]


@dataclass
class Request:
    """One request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Conn:
    """The server side of one connection, for a handler to write a response on."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    bytes_sent: int = 0
    framing: Framing = "chunked"
    peer_closed: asyncio.Event = field(default_factory=asyncio.Event)
    #: The connection may carry another request after this one: the client did not ask to close
    #: and the server was made with ``reuse=True``. When False, :meth:`head` says
    #: ``connection: close``, so a client never sends its next request on a connection the server
    #: is about to close (an unannounced close races that request).
    keep_alive: bool = False
    _watcher: asyncio.Task[None] | None = None

    async def head(
        self,
        status: int = 200,
        headers: dict[str, str] | None = None,
        *,
        framing: Framing = "chunked",
        length: int | None = None,
    ) -> None:
        """Send the status line and headers. ``framing`` decides how the body is delimited."""
        reason = {200: "OK", 401: "Unauthorized", 429: "Too Many Requests"}.get(status, "Status")
        lines = [f"HTTP/1.1 {status} {reason}"]
        for name, value in (headers or {"content-type": "text/event-stream"}).items():
            lines.append(f"{name}: {value}")
        self.framing = framing
        if framing == "chunked":
            lines.append("transfer-encoding: chunked")
        elif framing == "length":
            lines.append(f"content-length: {length}")
        if not self.keep_alive or framing == "close":
            lines.append("connection: close")
        await self.raw(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def raw(self, data: bytes) -> None:
        """Write bytes as they are (no framing) and wait until the socket took them."""
        self.writer.write(data)
        self.bytes_sent += len(data)
        await self.writer.drain()

    async def send(self, data: bytes) -> None:
        """Write one piece of body (as one chunk when the framing is ``chunked``)."""
        if not data:
            return
        if self.framing == "chunked":
            await self.raw(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            await self.raw(data)

    async def end(self) -> None:
        """End the body properly (the last chunk for ``chunked``; nothing otherwise)."""
        if self.framing == "chunked":
            await self.raw(b"0\r\n\r\n")

    def watch_peer(self) -> None:
        """Start noticing when the client closes its side (sets :attr:`peer_closed`)."""
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        try:
            while await self.reader.read(65536):
                pass
        except (ConnectionError, OSError):
            pass
        self.peer_closed.set()

    async def stall(self, seconds: float) -> bool:
        """Send nothing until the client closes (True) or ``seconds`` pass (False)."""
        self.watch_peer()
        try:
            await asyncio.wait_for(self.peer_closed.wait(), seconds)
        except TimeoutError:
            return False
        return True


#: A handler answers one request; returning ``True`` keeps the connection for the next one (on a
#: server made with ``reuse=True``; other servers close every connection after its response).
Handler = Callable[[Request, Conn], Awaitable[bool | None]]


class LoopbackServer:
    """An HTTP/1.1 server on ``127.0.0.1`` (a free port) running ``handler`` on its own thread.

    Example:
        >>> async def hello(request, conn):
        ...     await conn.head(200, {"content-type": "text/plain"}, framing="length", length=2)
        ...     await conn.send(b"hi")
        >>> with LoopbackServer(hello) as server:
        ...     httpx.get(server.url).text
        'hi'

    Args:
        handler: Answers each request.
        backlog: The listening socket's backlog.
        reuse: Keep-alive as a real upstream does it: a response does not say
            ``connection: close`` (unless the client asked), and the connection carries the next
            request when the handler returns ``True``; when it returns anything else the
            connection closes unannounced, the race a client must survive. Without ``reuse``
            (the default) every response says ``connection: close`` and its connection closes
            after it, so tests that do not study reuse never meet that race.
    """

    def __init__(self, handler: Handler, *, backlog: int = 1024, reuse: bool = False) -> None:
        self.handler = handler
        self._backlog = backlog
        self.reuse = reuse
        self.requests: list[Request] = []
        self.connections_total = 0
        self.open_connections = 0
        self.bytes_sent = 0
        self.handler_errors: list[BaseException] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = threading.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(target=self._run, name="loopback-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("loopback server did not start within 10 s")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if thread.is_alive():  # pragma: no cover - a bug in a handler
            raise RuntimeError("loopback server thread did not stop within 10 s")
        self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=self._backlog)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()
            loop.run_forever()
        finally:
            # A connection accepted while _shutdown ran has a task that had not yet registered
            # itself: cancel every task still pending (as asyncio.run does), so none is destroyed
            # pending with its socket open after the loop closed.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self._server is not None:
            await asyncio.wait_for(self._server.wait_closed(), 5)

    # -- connections ------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections_total += 1
        self.open_connections += 1
        conn = Conn(reader, writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                conn.keep_alive = (
                    self.reuse and request.headers.get("connection", "").lower() != "close"
                )
                keep = await self.handler(request, conn)
                if not (keep and conn.keep_alive):
                    break
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass  # the client went away: that is what many tests do
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a bug in a test's handler: keep it for the test to see
            self.handler_errors.append(exc)
        finally:
            self.bytes_sent += conn.bytes_sent
            if conn._watcher is not None:
                conn._watcher.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)
            self.open_connections -= 1
            self._tasks.discard(task)


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    return Request(method, path, headers, body)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)

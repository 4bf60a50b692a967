"""A lean HTTP/1.1 transport for httpx: the upstream's streamed body with few layers per chunk.

Real model servers send one token per TCP segment, so the proxy's cost per token is dominated
by what runs for every network read. With httpx's default transport that is httpcore, h11 and
anyio, about 40% of the server's CPU on a paced stream (tests/benchmarks/proxy_bench.py).
:class:`LeanTransport` is an ``httpx.AsyncBaseTransport``, so the server keeps httpx's API (the
client, its requests, responses, timeouts and exceptions); for plain ``http://`` URLs it speaks
HTTP/1.1 itself over an ``asyncio.Protocol``: a network read is appended to a buffer, the waiting
reader is woken, and every complete chunk of a ``chunked`` body in the buffer is handed on in one
piece. Anything else (``https://``, and whatever a proxy mount of httpx takes) goes to httpx's own
transport.

What it keeps of httpx's behaviour: connections are pooled and reused (keep-alive) up to
``max_connections`` in use (a request beyond waits up to the ``pool`` timeout, then
:class:`httpx.PoolTimeout`); ``connect`` and ``read`` timeouts raise
:class:`httpx.ConnectTimeout` / :class:`httpx.ReadTimeout`; a refused connection
:class:`httpx.ConnectError`; a body cut short, or a malformed answer,
:class:`httpx.RemoteProtocolError`; a reset :class:`httpx.ReadError`. Reading is paused while
256 KiB wait unread (TCP backpressure to the upstream). A connection goes back to the pool only
when its body was read to the end; closing a response earlier closes the connection.

The response carries the body iterator in ``extensions["rxresponses.body"]`` too, so the server
can read it without httpx's wrappers (:mod:`._upstream` does; closing the response still closes
the body).
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import time
from collections.abc import AsyncIterator
from typing import Final, cast

import httpx

__all__ = ["BODY_EXTENSION", "LeanTransport"]

#: The response extension that holds the body iterator.
BODY_EXTENSION: Final = "rxresponses.body"
#: Most unread bytes buffered before reading from the socket pauses.
_HIGH_WATER: Final = 256 * 1024
#: Most bytes handed on in one piece.
_PIECE: Final = 64 * 1024
#: Longest response head accepted (status line and headers).
_MAX_HEAD: Final = 64 * 1024
#: Longest chunk-size line accepted (with extensions).
_MAX_SIZE_LINE: Final = 4096
#: Seconds an idle pooled connection is kept (httpx's default keep-alive expiry).
_KEEPALIVE_EXPIRY: Final = 5.0


class _Connection(asyncio.Protocol):
    """One TCP connection: a buffer the socket fills and one reader that waits on it."""

    def __init__(self, key: tuple[str, int]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: Exception | None = None
        self.closed = False
        self.idle_since = 0.0
        #: Taken from the idle pool (not opened for this request).
        self.reused = False
        #: Bytes received since the connection was opened or taken from the pool.
        self.received = 0
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._timeout = 0.0
        self._wait_began = 0.0

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not subclasses of asyncio.Transport: no isinstance check)
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        self.buffer += data
        if len(self.buffer) >= _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.eof = True
        if exc is not None and self.error is None:
            self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the reader's side -----------------------------------------------------------------------

    async def wait(self, timeout: float | None) -> None:
        """Wait until more bytes, the end or an error arrived (:class:`httpx.ReadTimeout`).

        One timer per connection, not one per wait: it fires at the earliest moment the wait
        under way can have timed out, and sets itself again if that wait began later.
        """
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        if timeout is not None:
            self._timeout = timeout
            self._wait_began = loop.time()
            if self._timer is None:
                self._timer = loop.call_at(self._wait_began + timeout, self._check_timeout)
        try:
            await waiter
        finally:
            self._waiter = None

    def _check_timeout(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        loop = asyncio.get_running_loop()
        due = self._wait_began + self._timeout
        if loop.time() >= due:
            waiter.set_exception(
                httpx.ReadTimeout(f"no data from the upstream within {self._timeout:g} s")
            )
        else:
            self._timer = loop.call_at(due, self._check_timeout)

    def take(self, n: int) -> bytes:
        data = bytes(self.buffer[:n])
        self.consume(n)
        return data

    def consume(self, n: int) -> None:
        """Drop the first ``n`` bytes of the buffer (read); resume reading below half the mark."""
        if n:
            del self.buffer[:n]
        if self._paused and len(self.buffer) < _HIGH_WATER // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def broken(self) -> httpx.TransportError:
        """The error for a connection that ended before the answer did."""
        if isinstance(self.error, ConnectionResetError | BrokenPipeError):
            return httpx.ReadError(str(self.error) or "connection reset by the upstream")
        return httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        )

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.close()

    @property
    def reusable(self) -> bool:
        return not self.closed and not self.eof and not self.buffer and self.error is None

    def dropped(self) -> bool:
        """Whether the idle socket is readable: the upstream closed it (or sent unasked bytes).

        The event loop notices that only on its next turn; a poll sees it as soon as the kernel
        does (urllib3 and httpcore check the same way before they reuse a connection).
        """
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)


class _Body(httpx.AsyncByteStream):
    """The body of one response: content-length, chunked, or delimited by the connection's end."""

    def __init__(
        self,
        transport: LeanTransport,
        conn: _Connection,
        *,
        length: int | None,
        chunked: bool,
        keep_alive: bool,
        read_timeout: float | None,
    ) -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        self._remaining = length  # content-length: bytes still to come
        self._chunked = chunked
        self._chunk_left = 0  # chunked: data bytes left in the current chunk
        self._state = "size"  # chunked: size / data / crlf / trailer / done
        self._keep_alive = keep_alive
        self._timeout = read_timeout
        self._done = length == 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        while True:
            conn = self._conn
            if conn is None or self._done:
                if not self._done:  # closed before the end
                    raise StopAsyncIteration
                await self.aclose()
                raise StopAsyncIteration
            piece = self._parse(conn)
            if piece:
                return piece
            if self._done:
                continue
            if conn.eof:
                if self._remaining is None and not self._chunked:
                    self._done = True  # delimited by the connection's end
                    self._keep_alive = False
                    continue
                raise conn.broken()
            await conn.wait(self._timeout)

    def _parse(self, conn: _Connection) -> bytes:
        """What the buffer holds of the body now (``b""``: nothing yet, or the end)."""
        buffer = conn.buffer
        if not buffer:
            return b""
        if not self._chunked:
            if self._remaining is None:
                return conn.take(_PIECE)
            data = conn.take(min(self._remaining, _PIECE))
            self._remaining -= len(data)
            if self._remaining == 0:
                self._done = True
            return data
        # Parsed at an offset and consumed once at the end (not a copy and a deletion per
        # size line, data and CRLF): the common read is one chunk of one frame.
        out: list[bytearray] = []
        size = 0
        pos = 0
        length = len(buffer)
        state = self._state
        try:
            while pos < length and size < _PIECE:
                if state == "data":
                    n = min(self._chunk_left, _PIECE - size, length - pos)
                    out.append(buffer[pos : pos + n])
                    pos += n
                    size += n
                    self._chunk_left -= n
                    if self._chunk_left == 0:
                        state = "crlf"
                elif state == "size":
                    end = buffer.find(b"\r\n", pos)
                    if end < 0:
                        if length - pos > _MAX_SIZE_LINE:
                            raise httpx.RemoteProtocolError("chunk size line too long")
                        break
                    line = bytes(buffer[pos:end])
                    pos = end + 2
                    try:
                        self._chunk_left = int(line.split(b";", 1)[0].strip(), 16)
                    except ValueError:
                        raise httpx.RemoteProtocolError(
                            f"bad chunk size line {line[:40]!r}"
                        ) from None
                    if self._chunk_left < 0:
                        raise httpx.RemoteProtocolError("bad chunk size")
                    state = "data" if self._chunk_left else "trailer"
                elif state == "crlf":
                    if length - pos < 2:
                        break
                    if buffer[pos : pos + 2] != b"\r\n":
                        raise httpx.RemoteProtocolError("chunk data not followed by CRLF")
                    pos += 2
                    state = "size"
                else:  # trailer: header lines up to an empty line
                    end = buffer.find(b"\r\n", pos)
                    if end < 0:
                        if length - pos > _MAX_HEAD:
                            raise httpx.RemoteProtocolError("trailer too long")
                        break
                    blank = end == pos
                    pos = end + 2
                    if blank:
                        state = "done"
                        self._done = True
                        break
        finally:
            self._state = state
            conn.consume(pos)
        return bytes(out[0]) if len(out) == 1 else b"".join(out)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._keep_alive and conn.reusable:
            self._transport._release(conn)
        else:
            conn.close()
            self._transport._release(None)


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 for ``http://`` URLs, httpx's own transport for the rest (see the module doc).

    Args:
        max_connections: Most connections in use at once (waits beyond, up to the pool timeout).
        max_keepalive_connections: Most idle connections kept for reuse.
        fallback: The transport for other URLs (default: ``httpx.AsyncHTTPTransport`` with the
            same limits).
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        fallback: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._max = max_connections
        self._max_idle = max_keepalive_connections
        self._fallback = fallback or httpx.AsyncHTTPTransport(
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_keepalive_connections,
            )
        )
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._in_use = 0
        self._waiters: list[asyncio.Future[None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http" or not url.host:
            return await self._fallback.handle_async_request(request)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        try:
            content = request.content
        except httpx.RequestNotRead:
            content = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        key = (url.host, url.port or 80)
        await self._acquire(timeouts.get("pool"))
        pooled = True
        while True:
            try:
                conn = await self._connection(key, timeouts.get("connect"), pooled=pooled)
            except BaseException:
                self._release(None)
                raise
            try:
                return await self._exchange(conn, request, content, timeouts.get("read"))
            except (httpx.RemoteProtocolError, httpx.ReadError):
                conn.close()
                if conn.reused and conn.received == 0:
                    # The upstream closed the idle connection as the request went out: it
                    # answered nothing, so it did not take the request. Once more, on a new
                    # connection (what browsers and Go's http.Transport do in this race).
                    pooled = False
                    continue
                self._release(None)
                raise
            except BaseException:
                conn.close()
                self._release(None)
                raise

    # -- the pool --------------------------------------------------------------------------------

    async def _acquire(self, timeout: float | None) -> None:
        if self._in_use < self._max:
            self._in_use += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter  # the slot is handed over by _release
        except TimeoutError:
            raise httpx.PoolTimeout("no upstream connection free within the pool timeout") from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release(None)  # handed over, but nobody will use it
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _release(self, conn: _Connection | None) -> None:
        """Give back a slot, and ``conn`` to the idle pool (when given)."""
        if conn is not None:
            idle = self._idle.setdefault(conn.key, [])
            if sum(len(v) for v in self._idle.values()) < self._max_idle:
                conn.idle_since = time.monotonic()
                idle.append(conn)
            else:
                conn.close()
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to it
                return
        self._in_use -= 1

    async def _connection(
        self, key: tuple[str, int], timeout: float | None, *, pooled: bool = True
    ) -> _Connection:
        idle = self._idle.get(key) if pooled else None
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.reusable and now - conn.idle_since < _KEEPALIVE_EXPIRY and not conn.dropped():
                conn.reused = True
                conn.received = 0
                return conn
            conn.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(lambda: _Connection(key), *key)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {key[0]}:{key[1]} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None
        return conn

    # -- one request -----------------------------------------------------------------------------

    async def _exchange(
        self,
        conn: _Connection,
        request: httpx.Request,
        content: bytes,
        read_timeout: float | None,
    ) -> httpx.Response:
        target = request.url.raw_path.decode("ascii")
        lines = [f"{request.method} {target} HTTP/1.1".encode()]
        lines += [name + b": " + value for name, value in request.headers.raw]
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        if conn.transport is None:  # pragma: no cover - create_connection sets it
            raise httpx.ConnectError("the connection is not open")
        conn.transport.write(head + content)
        while True:
            status, reason, headers, http10 = await self._head(conn, read_timeout)
            if not 100 <= status < 200:
                break
        names = {name.lower(): value for name, value in headers}
        connection = names.get(b"connection", b"").lower()
        keep_alive = b"close" not in connection and not http10
        chunked = names.get(b"transfer-encoding", b"").lower().rstrip().endswith(b"chunked")
        length: int | None = None
        if request.method == "HEAD" or status in (204, 304):
            length = 0
        elif not chunked and b"content-length" in names:
            try:
                length = int(names[b"content-length"])
            except ValueError:
                raise httpx.RemoteProtocolError("bad content-length") from None
        elif not chunked:
            keep_alive = False  # delimited by the end of the connection
        body = _Body(
            self,
            conn,
            length=length,
            chunked=chunked,
            keep_alive=keep_alive,
            read_timeout=read_timeout,
        )
        return httpx.Response(
            status,
            headers=headers,
            stream=body,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": reason,
                BODY_EXTENSION: body,
            },
        )

    async def _head(
        self, conn: _Connection, timeout: float | None
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], bool]:
        while True:
            end = conn.buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(conn.buffer) > _MAX_HEAD:
                raise httpx.RemoteProtocolError("response head too long")
            if conn.eof:
                if conn.error is not None and not conn.buffer:
                    raise conn.broken()
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            await conn.wait(timeout)
        head = conn.take(end + 4)
        status_line, *header_lines = head[:-4].split(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise httpx.RemoteProtocolError(f"bad status line {status_line[:60]!r}")
        headers: list[tuple[bytes, bytes]] = []
        for line in header_lines:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise httpx.RemoteProtocolError(f"bad header line {line[:60]!r}")
            headers.append((name, value.strip()))
        reason = parts[2] if len(parts) > 2 else b""
        return int(parts[1]), reason, headers, parts[0] == b"HTTP/1.0"

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        await self._fallback.aclose()

"""The server's lean HTTP/1.1 transport (``rxresponses.server._http11``) under httpx's API.

Real HTTP on 127.0.0.1 against a server that writes every byte as told
(:class:`tests.fuzz.loopback.LoopbackServer`): bodies framed every way and split anywhere, the
connection reused when a body was read to its end and closed when it was not, and each failure
raised as the httpx exception httpx's own transport raises for it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Awaitable, Callable

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxresponses.server._http11 import BODY_EXTENSION, LeanTransport, _Body, _Connection
from tests.fuzz.loopback import Conn, LoopbackServer, Request

BODY = b"data: one\n\ndata: two\n\ndata: [DONE]\n\n"


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 20))


def client(**limits: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=LeanTransport(**limits), timeout=httpx.Timeout(5.0, read=0.5, pool=0.3)
    )


async def read_all(c: httpx.AsyncClient, url: str) -> tuple[int, bytes]:
    async with c.stream("POST", url, content=b'{"x": 1}') as response:
        return response.status_code, b"".join([part async for part in response.aiter_raw()])


async def chunked_in_pieces(request: Request, conn: Conn) -> bool:
    """The body as chunks whose size lines, data and CRLFs arrive split in odd places."""
    await conn.head()
    wire = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (BODY[:7], BODY[7:20], BODY[20:]))
    wire += b"0\r\n\r\n"
    for cut in (1, 2, 3, 9, 10, 11, 25, 40, len(wire)):
        await conn.raw(wire[:cut])
        wire = wire[cut:]
        await asyncio.sleep(0.005)
    return True


def test_chunked_body_split_anywhere_and_the_connection_reused() -> None:
    async def main() -> None:
        with LoopbackServer(chunked_in_pieces, reuse=True) as server:
            async with client() as c:
                for _ in range(3):
                    assert await read_all(c, server.url + "/v1/chat/completions") == (200, BODY)
            assert server.connections_total == 1
            assert server.requests[0].body == b'{"x": 1}'
            assert server.requests[0].headers["content-length"] == "8"

    run(main)


def test_the_test_upstream_announces_every_close_unless_made_for_reuse() -> None:
    """The harness itself: a server made without ``reuse`` says ``connection: close`` on every
    response, so a client (httpx's own pool here, which retries nothing) never sends a request
    on a connection the server is closing; one made with ``reuse`` keeps the connection."""

    async def handler(request: Request, conn: Conn) -> bool:
        await conn.head(framing="length", length=len(BODY))
        await conn.send(BODY)
        return True

    for reuse, connections, header in ((False, 3, "close"), (True, 1, None)):
        with LoopbackServer(handler, reuse=reuse) as server, httpx.Client() as c:
            answers = [c.post(server.url + "/x", content=b"{}") for _ in range(3)]
        assert [a.content for a in answers] == [BODY] * 3
        assert {a.headers.get("connection") for a in answers} == {header}
        assert server.connections_total == connections


@pytest.mark.parametrize("framing", ["length", "close"])
def test_content_length_and_close_delimited_bodies(framing: str) -> None:
    async def handler(request: Request, conn: Conn) -> bool:
        await conn.head(framing=framing, length=len(BODY))  # type: ignore[arg-type]
        await conn.send(BODY[:10])
        await asyncio.sleep(0.01)
        await conn.send(BODY[10:])
        return framing == "length"  # "close": the body ends when the connection does

    async def main() -> None:
        with LoopbackServer(handler, reuse=True) as server:
            async with client() as c:
                for _ in range(2):
                    assert await read_all(c, server.url + "/x") == (200, BODY)
            # a body delimited by the end of the connection cannot leave it reusable
            assert server.connections_total == (1 if framing == "length" else 2)

    run(main)


def test_a_body_cut_mid_chunk_is_a_remote_protocol_error() -> None:
    async def handler(request: Request, conn: Conn) -> None:
        await conn.head()
        await conn.raw(b"20\r\ndata: only part")

    async def main() -> None:
        with LoopbackServer(handler) as server:
            async with client() as c:
                with pytest.raises(httpx.RemoteProtocolError):
                    await read_all(c, server.url + "/x")

    run(main)


def keep_alive_then(second: Callable[[Conn], Awaitable[None]]) -> Callable[..., Awaitable[bool]]:
    """A handler that answers a connection's first request in full (keep-alive), then meets
    the next request on that connection with ``second`` and closes it."""
    # The connections themselves, not their id(): a closed one's id can come back for a new one.
    answered: list[Conn] = []

    async def handler(request: Request, conn: Conn) -> bool:
        if any(c is conn for c in answered):
            await second(conn)
            return False
        answered.append(conn)
        await conn.head(framing="length", length=len(BODY))
        await conn.send(BODY)
        return True

    return handler


def test_a_reused_connection_the_upstream_closed_unanswered_is_retried_once_on_a_new_one() -> None:
    """The upstream closes an idle keep-alive connection just as the next request goes out on
    it (the request arrives, no answer): the request goes again on a new connection, so the
    caller never sees the race. Deterministic here: the server reads the request, then closes."""

    async def nothing(conn: Conn) -> None:
        return None

    async def main() -> None:
        with LoopbackServer(keep_alive_then(nothing), reuse=True) as server:
            async with client() as c:
                assert await read_all(c, server.url + "/x") == (200, BODY)
                assert await read_all(c, server.url + "/x") == (200, BODY)
            assert server.connections_total == 2
            assert len(server.requests) == 3  # the second request: once unanswered, once answered

    run(main)


def test_a_reused_connection_the_upstream_reset_unanswered_is_retried_once_on_a_new_one() -> None:
    """The same race when the upstream closes with the request still unread: the kernel
    answers with a reset (ECONNRESET, httpx.ReadError), not an end of stream; the request
    goes again on a new connection too. Deterministic: SO_LINGER 0 makes the close a reset."""

    async def reset(conn: Conn) -> None:
        sock = conn.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    async def main() -> None:
        with LoopbackServer(keep_alive_then(reset), reuse=True) as server:
            async with client() as c:
                assert await read_all(c, server.url + "/x") == (200, BODY)
                assert await read_all(c, server.url + "/x") == (200, BODY)
            assert server.connections_total == 2
            assert len(server.requests) == 3

    run(main)


def test_no_retry_once_the_upstream_answered_anything_or_on_a_new_connection() -> None:
    async def half_a_head(conn: Conn) -> None:
        await conn.raw(b"HTTP/1.1 200 OK\r\ncontent-")

    async def nothing_ever(request: Request, conn: Conn) -> None:
        return None

    async def main() -> None:
        with LoopbackServer(keep_alive_then(half_a_head), reuse=True) as server:
            async with client() as c:
                assert await read_all(c, server.url + "/x") == (200, BODY)
                with pytest.raises(httpx.RemoteProtocolError):
                    await read_all(c, server.url + "/x")
            assert (server.connections_total, len(server.requests)) == (1, 2)
        with LoopbackServer(nothing_ever) as server:
            async with client() as c:
                with pytest.raises(httpx.RemoteProtocolError):
                    await read_all(c, server.url + "/x")
            assert (server.connections_total, len(server.requests)) == (1, 1)

    run(main)


def test_a_silent_upstream_is_a_read_timeout() -> None:
    async def handler(request: Request, conn: Conn) -> None:
        await conn.head()
        await conn.send(b"data: first\n\n")
        await conn.stall(5)

    async def main() -> None:
        with LoopbackServer(handler) as server:
            async with client() as c:
                started = asyncio.get_running_loop().time()
                with pytest.raises(httpx.ReadTimeout):
                    await read_all(c, server.url + "/x")
                assert asyncio.get_running_loop().time() - started < 3.0

    run(main)


def test_a_refused_connection_is_a_connect_error() -> None:
    async def main() -> None:
        with LoopbackServer(chunked_in_pieces) as server:
            url = server.url
        async with client() as c:  # the server is gone: nothing listens on its port
            with pytest.raises(httpx.ConnectError):
                await read_all(c, url + "/x")

    run(main)


def test_a_response_closed_early_closes_its_connection_and_frees_its_slot() -> None:
    async def handler(request: Request, conn: Conn) -> bool:
        await conn.head()
        await conn.send(b"data: first\n\n")
        return not await conn.stall(5)  # True only when the client did not close

    async def main() -> None:
        with LoopbackServer(handler, reuse=True) as server:
            async with client(max_connections=1) as c:
                for _ in range(2):  # the second needs the slot the first gave back
                    async with c.stream("POST", server.url + "/x", content=b"{}") as response:
                        body = response.extensions[BODY_EXTENSION]
                        assert await body.__anext__() == b"data: first\n\n"
                for _ in range(300):  # (the loop must run for the sockets to close)
                    if server.open_connections == 0:
                        break
                    await asyncio.sleep(0.01)
                assert server.open_connections == 0
            assert server.connections_total == 2

    run(main)


def test_beyond_max_connections_a_request_waits_then_gets_a_pool_timeout() -> None:
    async def handler(request: Request, conn: Conn) -> None:
        await conn.head()
        await conn.stall(5)

    async def main() -> None:
        with LoopbackServer(handler) as server:
            async with (
                client(max_connections=1) as c,
                c.stream("POST", server.url + "/x", content=b"{}"),
            ):
                with pytest.raises(httpx.PoolTimeout):
                    await read_all(c, server.url + "/x")

    run(main)


def test_other_schemes_go_to_the_fallback_transport() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=b"ok")

    async def main() -> None:
        transport = LeanTransport(fallback=httpx.MockTransport(answer))
        async with httpx.AsyncClient(transport=transport) as c:
            response = await c.get("https://upstream.example/v1/models")
        assert (response.status_code, response.content) == (200, b"ok")

    run(main)
    assert seen == ["https://upstream.example/v1/models"]


@pytest.mark.parametrize("upstream_client", ["lean", "httpx"])
def test_serve_ends_a_stream_whose_last_read_holds_more_than_its_buffer(
    upstream_client: str,
) -> None:
    # 400 deltas and [DONE] in one write (one read of the proxy: under 64 KiB), which convert to
    # more than the 64 KiB a stream holds for its client: the terminal event must still go out.
    from rxresponses.server import ServerConfig, create_app
    from rxresponses.server.testing import BackgroundServer

    def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        data = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
        return b"data: " + json.dumps({**data, "choices": [choice]}).encode() + b"\n\n"

    rest = b"".join(chunk({"content": f"w{i} "}) for i in range(400)) + chunk({}, "stop")
    rest += b"data: [DONE]\n\n"
    assert 40_000 < len(rest) < 64 * 1024

    async def handler(request: Request, conn: Conn) -> bool:
        await conn.head()
        await conn.send(chunk({"role": "assistant", "content": ""}))
        await asyncio.sleep(0.3)
        await conn.send(rest)
        await conn.end()
        return True

    with LoopbackServer(handler, reuse=True) as up:
        config = ServerConfig(upstream=up.url + "/v1", upstream_client=upstream_client)  # type: ignore[arg-type]
        with BackgroundServer(create_app(config)) as proxy:
            body = {"model": "m", "input": "hi", "stream": True}
            response = httpx.post(proxy.url + "/v1/responses", json=body, timeout=10)
    frames = [f for f in response.text.split("\n\n") if f.startswith("event: ")]
    assert frames[-1].startswith("event: response.completed")
    deltas = [f for f in frames if f.startswith("event: response.output_text.delta")]
    assert len(deltas) == 400


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=300), max_size=6),
    extension=st.sampled_from([b"", b";name=value", b" "]),
    trailer=st.sampled_from([b"", b"X-Checksum: 1\r\n"]),
    cuts=st.lists(st.integers(min_value=1, max_value=64), max_size=40),
)
def test_a_chunked_body_parses_the_same_however_its_reads_are_cut(
    chunks: list[bytes], extension: bytes, trailer: bytes, cuts: list[int]
) -> None:
    # The parser alone (no socket): the bytes of each read appended, then everything parsed.
    wire = b"".join(b"%x%s\r\n%s\r\n" % (len(c), extension, c) for c in chunks)
    wire += b"0\r\n" + trailer + b"\r\n"
    conn = _Connection(("upstream", 80))
    body = _Body(None, conn, length=None, chunked=True, keep_alive=True, read_timeout=None)  # type: ignore[arg-type]
    pieces: list[bytes] = []
    rest = wire
    for cut in [*cuts, len(wire)]:
        conn.buffer += rest[:cut]
        rest = rest[cut:]
        while piece := body._parse(conn):
            pieces.append(piece)
    assert b"".join(pieces) == b"".join(chunks)
    assert body._done
    assert not conn.buffer

"""Hardening: upstream faults on real loopback HTTP end in the documented terminal events.

Each test runs a :class:`~tests.fuzz.loopback.LoopbackServer` on 127.0.0.1 that misbehaves on
purpose (closes mid-frame, inside a UTF-8 sequence, stalls, answers 429/500 with JSON or HTML, sends
a JSON body or a 50 MB line) and reads it with ``from_httpx`` (sync) and ``from_httpx_async``
through ``chat_sse_to_responses()``. The documented outcome, checked every time:

* the stream is well-formed (``tests/grammar.py``) and ends in ``error`` + ``response.failed``,
  never an exception, within the configured timeout;
* the text that arrived before the fault is in the failed response's output (and nothing else:
  no U+FFFD from a cut UTF-8 sequence);
* the error names the fault (status code, timeout, broken connection, line limit).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any, Literal

import httpx
import pytest
import reactivex

from rxresponses import (
    aiterate,
    chat_sse_to_responses,
    final_response,
    from_httpx,
    from_httpx_async,
    iterate,
)
from rxresponses.types._base import to_dict
from rxresponses.types.response import Response

from .fuzz.loopback import Conn, Handler, LoopbackServer, Request, wait_until
from .grammar import check_stream

Mode = Literal["sync", "async"]
MODES: list[Mode] = ["sync", "async"]

PATH = "/v1/chat/completions"
REQUEST = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
#: The text the upstream sends before every fault, in three chunks ("ö" is two bytes in UTF-8).
BEFORE = ["Hello", ", wö", "rld"]


def chunk(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 1_750_000_000,
        "model": "fault-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def frame(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


PREFIX = b"".join(frame(chunk(text)) for text in BEFORE)


# -- running the client side ----------------------------------------------------------------------


class Outcome:
    """What a client run produced: the events (dumped), the final Response, the time it took."""

    def __init__(self, events: list[Any], seconds: float) -> None:
        self.events = [to_dict(e) for e in events]
        self.seconds = seconds
        responses: list[Response] = []
        reactivex.from_iterable(events).pipe(final_response()).subscribe(responses.append)
        self.response = responses[0]

    @property
    def text(self) -> str:
        return "".join(
            part.text
            for item in self.response.output
            if item.type == "message"
            for part in item.content
            if part.type == "output_text"
        )

    @property
    def error_message(self) -> str:
        assert self.response.error is not None
        return self.response.error.message

    def assert_failed(self, *, kept: str, code: str = "server_error", says: str = "") -> None:
        """Well-formed, ``error`` + ``response.failed``, with ``kept`` as the output text."""
        check_stream(self.events)
        assert [e["type"] for e in self.events[-2:]] == ["error", "response.failed"]
        assert self.events[-2]["code"] == code
        assert self.response.status == "failed"
        assert self.response.error is not None
        assert self.response.error.code == code
        assert says.lower() in self.error_message.lower(), self.error_message
        assert self.text == kept
        assert "\ufffd" not in json.dumps(self.events, ensure_ascii=False)


def run(
    server: LoopbackServer,
    mode: Mode,
    *,
    timeout: float = 5.0,
    max_line_bytes: int | None = None,
    path: str = PATH,
) -> Outcome:
    """POST to the server with ``from_httpx`` or ``from_httpx_async`` and convert the stream."""
    options: dict[str, Any] = {}
    if max_line_bytes is not None:
        options["max_line_bytes"] = max_line_bytes
    url = server.url + path
    began = time.monotonic()
    if mode == "sync":
        with httpx.Client(timeout=timeout) as client:
            source = from_httpx(client, "POST", url, json=REQUEST)
            events = list(iterate(source.pipe(chat_sse_to_responses(**options))))
        return Outcome(events, time.monotonic() - began)

    async def main() -> list[Any]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            source = from_httpx_async(client, "POST", url, json=REQUEST)
            pipeline = source.pipe(chat_sse_to_responses(**options))
            return [e async for e in aiterate(pipeline)]

    async def bounded() -> list[Any]:
        tasks_before = asyncio.all_tasks()
        events = await asyncio.wait_for(main(), timeout * 4 + 5)
        await asyncio.sleep(0)
        leftover = asyncio.all_tasks() - tasks_before
        assert not leftover, leftover
        return events

    events = asyncio.run(bounded())
    return Outcome(events, time.monotonic() - began)


@pytest.fixture(autouse=True)
def _no_thread_left() -> Any:
    """Every test leaves as many threads as it found (iterate() workers, servers)."""
    before = threading.active_count()
    yield
    assert wait_until(lambda: threading.active_count() <= before, 5), threading.enumerate()


@pytest.fixture
def serve() -> Any:
    """``serve(handler)`` starts a loopback server that the test's end stops."""
    servers: list[LoopbackServer] = []

    def start(handler: Handler) -> LoopbackServer:
        server = LoopbackServer(handler).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
        assert server.handler_errors == []


def assert_released(server: LoopbackServer) -> None:
    """The client closed its connection (within 5 s)."""
    assert wait_until(lambda: server.open_connections == 0, 5), server.open_connections


# -- closed mid-stream ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("framing", ["chunked", "length", "close"])
def test_closed_mid_frame(serve: Callable[[Handler], LoopbackServer], mode: Mode, framing: str):
    cut = frame(chunk(" and more"))[:25]  # b'data: {"id": "chatcmpl-fa'

    async def handler(request: Request, conn: Conn) -> None:
        body = PREFIX + cut
        # "length" promises more bytes than it sends; "close" ends the body by closing (a cut
        # that HTTP cannot tell from a normal end: the SSE decoder drops the unterminated line).
        await conn.head(framing=framing, length=len(body) + 1000)  # type: ignore[arg-type]
        await conn.send(body)

    server = serve(handler)
    outcome = run(server, mode)
    says = "ended before a finish_reason" if framing == "close" else "upstream connection"
    outcome.assert_failed(kept="".join(BEFORE), says=says)
    assert_released(server)


@pytest.mark.parametrize("mode", MODES)
def test_closed_inside_a_utf8_sequence(serve: Callable[[Handler], LoopbackServer], mode: Mode):
    whole = frame(chunk(" café"))
    cut = whole[: whole.index("é".encode()) + 1]  # the first of the two bytes of "é"

    async def handler(request: Request, conn: Conn) -> None:
        await conn.head()
        await conn.send(PREFIX + cut)

    server = serve(handler)
    outcome = run(server, mode)
    outcome.assert_failed(kept="".join(BEFORE), says="upstream connection")
    assert_released(server)


@pytest.mark.parametrize("mode", MODES)
def test_utf8_sequences_split_across_reads_arrive_whole(
    serve: Callable[[Handler], LoopbackServer], mode: Mode
):
    # Not a fault: every multi-byte character is split between two TCP writes (with a pause, so
    # the client reads them separately). The decoder must join them; nothing is replaced.
    text = ["né", "😀 ", "日本", "\u2028x"]
    body = b"".join(frame(chunk(t)) for t in text) + frame(chunk(finish="stop"))
    body += b"data: [DONE]\n\n"

    async def handler(request: Request, conn: Conn) -> None:
        await conn.head()
        start = 0
        for i in range(1, len(body)):
            if body[i] & 0xC0 == 0x80 and body[i - 1] >= 0xC0:  # right after a lead byte
                await conn.send(body[start:i])
                await asyncio.sleep(0.005)
                start = i
        await conn.send(body[start:])
        await conn.end()

    server = serve(handler)
    outcome = run(server, mode)
    check_stream(outcome.events)
    assert outcome.response.status == "completed"
    assert outcome.text == "".join(text)


# -- stalled --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_stalled_past_the_read_timeout(serve: Callable[[Handler], LoopbackServer], mode: Mode):
    closed: list[bool] = []

    async def handler(request: Request, conn: Conn) -> None:
        await conn.head()
        await conn.send(PREFIX)
        closed.append(await conn.stall(10))  # until the client gives up (or 10 s)

    server = serve(handler)
    outcome = run(server, mode, timeout=0.5)
    outcome.assert_failed(kept="".join(BEFORE), says="timed out")
    assert 0.45 <= outcome.seconds < 3.0, outcome.seconds
    assert_released(server)
    assert closed == [True]  # the server saw the client close, long before its 10 s


# -- error statuses -------------------------------------------------------------------------------

_JSON_ERROR = {
    "error": {
        "message": "Rate limit reached for requests",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
_HTML = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><center>"
    "<h1>Internal Server Error</h1></center><hr><center>nginx</center></body></html>"
)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("status", "content_type", "body", "code", "says"),
    [
        (500, "application/json", json.dumps(_JSON_ERROR), "server_error", "Rate limit reached"),
        (429, "application/json", json.dumps(_JSON_ERROR), "rate_limit_exceeded", "Rate limit"),
        (500, "text/html", _HTML, "server_error", "Internal Server Error"),
        (429, "text/html", _HTML, "rate_limit_exceeded", "Internal Server Error"),
    ],
    ids=["500-json", "429-json", "500-html", "429-html"],
)
def test_error_status(
    serve: Callable[[Handler], LoopbackServer],
    mode: Mode,
    status: int,
    content_type: str,
    body: str,
    code: str,
    says: str,
):
    async def handler(request: Request, conn: Conn) -> None:
        data = body.encode()
        headers = {"content-type": content_type, "retry-after": "1"}
        await conn.head(status, headers, framing="length", length=len(data))
        await conn.send(data)

    server = serve(handler)
    outcome = run(server, mode)
    outcome.assert_failed(kept="", code=code, says=says)
    assert f"HTTP {status}" in outcome.error_message
    assert outcome.response.output == []
    assert_released(server)


@pytest.mark.parametrize("mode", MODES)
def test_connection_refused(mode: Mode):
    with LoopbackServer(_unused_handler) as server:
        url_server = server
    # The server is stopped: its port now refuses connections.
    outcome = run(url_server, mode, timeout=2)
    outcome.assert_failed(kept="", says="upstream connection failed")
    assert outcome.seconds < 2


async def _unused_handler(request: Request, conn: Conn) -> None:  # pragma: no cover
    raise AssertionError("no request expected")


@pytest.mark.parametrize("mode", MODES)
def test_empty_200_body(serve: Callable[[Handler], LoopbackServer], mode: Mode):
    async def handler(request: Request, conn: Conn) -> None:
        await conn.head(framing="length", length=0)

    outcome = run(serve(handler), mode)
    outcome.assert_failed(kept="", says="ended before a finish_reason")


# -- not an event stream --------------------------------------------------------------------------

_COMPLETION = {
    "id": "chatcmpl-json",
    "object": "chat.completion",
    "created": 1_750_000_000,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "A whole answer, not streamed."},
            "finish_reason": "stop",
        }
    ],
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "payload",
    [_COMPLETION, _JSON_ERROR],
    ids=["chat.completion", "json-error"],
)
@pytest.mark.parametrize("pretty", [False, True], ids=["one-line", "indented"])
def test_json_instead_of_an_event_stream(
    serve: Callable[[Handler], LoopbackServer], mode: Mode, payload: Any, pretty: bool
):
    # A 200 with ``application/json`` (a server that ignored "stream": true, or a proxy that
    # answers errors with 200): the sources see the content type and fail the stream with what
    # the body says, instead of decoding it as an event stream that never finishes.
    data = json.dumps(payload, indent=2 if pretty else None).encode()

    async def handler(request: Request, conn: Conn) -> None:
        await conn.head(
            200, {"content-type": "application/json"}, framing="length", length=len(data)
        )
        await conn.send(data)

    outcome = run(serve(handler), mode)
    if "error" in payload:  # the body's own message and code reach the client
        outcome.assert_failed(kept="", code="rate_limit_exceeded", says="Rate limit reached")
    else:
        outcome.assert_failed(kept="", says='ignore "stream": true')


@pytest.mark.parametrize("mode", MODES)
def test_json_error_message_reaches_the_client(
    serve: Callable[[Handler], LoopbackServer], mode: Mode
):
    data = json.dumps(_JSON_ERROR).encode()

    async def handler(request: Request, conn: Conn) -> None:
        await conn.head(
            200, {"content-type": "application/json"}, framing="length", length=len(data)
        )
        await conn.send(data)

    outcome = run(serve(handler), mode)
    outcome.assert_failed(
        kept="", code="rate_limit_exceeded", says="Rate limit reached for requests"
    )


# -- memory stays bounded -------------------------------------------------------------------------

LIMIT = 1024 * 1024  # max_line_bytes for the memory tests: 1 MiB
HUGE = 50 * 1024 * 1024  # what the server offers: one 50 MB line with no newline
BLOCK = b"a" * (64 * 1024)


WARMUP = "/warmup"


async def _complete(conn: Conn) -> None:
    """A short, complete stream: what the warm-up request gets."""
    body = PREFIX + frame(chunk(finish="stop")) + b"data: [DONE]\n\n"
    await conn.head(framing="length", length=len(body))
    await conn.send(body)


def _measure(server: LoopbackServer, mode: Mode, **options: Any) -> tuple[Outcome, int]:
    """Run once against ``WARMUP`` (so lazy imports and pools are not counted), then measure the
    peak of Python allocations (tracemalloc) during a second run."""
    assert run(server, mode, path=WARMUP).response.status == "completed"
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        outcome = run(server, mode, **options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return outcome, peak


@pytest.mark.parametrize("mode", MODES)
def test_a_50_mb_line_is_cut_at_the_line_limit(
    serve: Callable[[Handler], LoopbackServer], mode: Mode
):
    async def handler(request: Request, conn: Conn) -> None:
        if request.path == WARMUP:
            return await _complete(conn)
        await conn.head()
        await conn.send(PREFIX + b'data: {"choices":[{"index":0,"delta":{"content":"')
        conn.watch_peer()
        sent = 0
        while sent < HUGE and not conn.peer_closed.is_set():
            await conn.send(BLOCK)
            sent += len(BLOCK)
        await conn.end()

    server = serve(handler)
    outcome, peak = _measure(server, mode, max_line_bytes=LIMIT)
    outcome.assert_failed(kept="".join(BEFORE), says=f"longer than {LIMIT} bytes")
    assert peak < 2 * LIMIT + 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
    assert_released(server)
    # The client hung up soon after the limit: it did not download the other 49 MB.
    assert server.bytes_sent < 16 * LIMIT, server.bytes_sent
    assert outcome.seconds < 5


@pytest.mark.parametrize("mode", MODES)
def test_a_huge_error_body_is_not_read_whole(
    serve: Callable[[Handler], LoopbackServer], mode: Mode
):
    size = 20 * 1024 * 1024

    async def handler(request: Request, conn: Conn) -> None:
        if request.path == WARMUP:
            return await _complete(conn)
        await conn.head(500, {"content-type": "text/html"}, framing="length", length=size)
        conn.watch_peer()
        sent = 0
        while sent < size and not conn.peer_closed.is_set():
            await conn.send(BLOCK)
            sent += len(BLOCK)

    server = serve(handler)
    outcome, peak = _measure(server, mode)
    outcome.assert_failed(kept="", says="HTTP 500")
    assert peak < 4 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"

"""Hardening: ``rxresponses serve`` keeps bounded resources under many, slow, vanishing or stalled
clients and endless or silent upstreams (issue 17, resource points).

Real HTTP on 127.0.0.1: the proxy runs under uvicorn in a thread (``BackgroundServer``) or as a
process (the slices of ``tests/fuzz/attack_load.py``), in front of a raw loopback upstream this
test controls byte by byte. Timing bounds are generous (a shared machine): the harness prints the
real figures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import reactivex
from reactivex.subject import Subject

from rxresponses import operators as rxo
from rxresponses.scripted import ScriptedTurn, chat_chunks, chat_sse

from .fuzz import attack_load
from .fuzz.loopback import Conn, LoopbackServer, Request, wait_until

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

from rxresponses.server import ServerConfig, create_app  # noqa: E402
from rxresponses.server._guard import HeaderTimeoutProtocol  # noqa: E402
from rxresponses.server.testing import BackgroundServer  # noqa: E402

BODY = {"model": "limit-model", "input": "hello", "stream": True}


def frame(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-limits",
        "object": "chat.completion.chunk",
        "created": 1_750_000_000,
        "model": "upstream-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


class Sent:
    """Bytes the upstream handlers sent so far (LoopbackServer counts only closed connections)."""

    def __init__(self) -> None:
        self.bytes = 0


def endless(sent: Sent, pause: float = 0.0) -> Any:
    """1 KiB text deltas, as fast as the proxy reads them (or every ``pause`` s), for 30 s."""

    async def handler(request: Request, conn: Conn) -> None:
        await conn.head()
        conn.watch_peer()
        data = frame({"content": "x" * 1000})
        deadline = time.monotonic() + 30
        while not conn.peer_closed.is_set() and time.monotonic() < deadline:
            await conn.send(data)
            sent.bytes += len(data)
            await asyncio.sleep(pause)

    return handler


def silent_then_answer(before_head: bool, seconds: float) -> Any:
    async def handler(request: Request, conn: Conn) -> None:
        if before_head and await conn.stall(seconds):
            return
        await conn.head()
        await conn.send(frame({"role": "assistant", "content": ""}))
        if not before_head and await conn.stall(seconds):
            return
        await conn.send(frame({"content": "after the silence"}))
        await conn.send(frame({}, "stop") + b"data: [DONE]\n\n")
        await conn.end()

    return handler


def sse_types(body: bytes) -> list[str]:
    return [
        json.loads(line[6:])["type"] for line in body.split(b"\n") if line.startswith(b"data: ")
    ]


def sse_events(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in body.split(b"\n") if line.startswith(b"data: ")]


@pytest.fixture
def proxy_for() -> Iterator[Any]:
    """``proxy_for(upstream, **config)``: a proxy in a thread in front of a loopback upstream."""
    started: list[Any] = []

    def make(upstream: LoopbackServer, **config: Any) -> BackgroundServer:
        cfg = ServerConfig(upstream=upstream.url + "/v1", upstream_timeout=30, **config)
        server = BackgroundServer(create_app(cfg)).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


# -- A: a bounded number of streams in flight -----------------------------------------------------


def test_requests_beyond_the_limit_get_429_at_once_and_slots_come_back(proxy_for):
    sent = Sent()
    with LoopbackServer(endless(sent, pause=0.05)) as upstream:
        proxy = proxy_for(upstream, max_concurrent_streams=2)
        url = proxy.url + "/v1/responses"
        with httpx.Client(timeout=10) as client:
            streams = [client.stream("POST", url, json=BODY) for _ in range(2)]
            responses = [s.__enter__() for s in streams]
            assert [r.status_code for r in responses] == [200, 200]
            began = time.monotonic()
            refused = client.post(url, json=BODY)
            assert time.monotonic() - began < 1.0
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "1"
            error = refused.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["code"] == "too_many_requests"
            assert "at most 2" in error["message"]
            assert client.get(proxy.url + "/health").status_code == 200
            # The clients leave: their slots and upstream connections are released.
            for s in streams:
                s.__exit__(None, None, None)
            assert wait_until(lambda: upstream.open_connections == 0, 5)
            with client.stream("POST", url, json=BODY) as again:
                assert again.status_code == 200


def test_churn_slice():
    """100 clients connecting and dropping mid-stream for 3 s through a real server process."""
    ok, line = attack_load.churn(100, 3.0, health_bound=3.0)
    print("\n" + line)
    assert ok, line
    figures = dict(part.split("=", 1) for part in line.split() if "=" in part)
    assert figures["5xx"] == "0"
    assert figures["hangs"] == "0"
    assert int(figures["upstream_conns_after"]) <= 5
    assert int(figures["fd_after"]) <= int(figures["fd_base"]) + 5


# -- B: backpressure, caps ------------------------------------------------------------------------


def test_a_stalled_client_stops_the_upstream_reads(proxy_for):
    sent = Sent()
    with LoopbackServer(endless(sent)) as upstream:
        proxy = proxy_for(upstream)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", proxy.port))
        body = json.dumps(BODY).encode()
        sock.sendall(
            b"POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )
        try:
            # Buffers fill (the kernel's, 64 KiB in the proxy), then the upstream is not read.
            assert wait_until(lambda: sent.bytes > 0, 5)
            time.sleep(2.0)
            plateau = sent.bytes
            time.sleep(2.0)
            assert sent.bytes - plateau < 256 * 1024, (plateau, sent.bytes)
            assert sent.bytes < 64 * 1024 * 1024
        finally:
            sock.close()
        # The client is gone: the upstream request is closed.
        assert wait_until(lambda: upstream.open_connections == 0, 5)


@pytest.mark.parametrize("stream", [True, False])
def test_max_stream_bytes_ends_the_stream_failed_and_closes_the_upstream(proxy_for, stream):
    sent = Sent()
    with LoopbackServer(endless(sent)) as upstream:
        proxy = proxy_for(upstream, max_stream_bytes=300_000)
        response = httpx.post(
            proxy.url + "/v1/responses", json={**BODY, "stream": stream}, timeout=20
        )
        assert response.status_code == 200
        if stream:
            events = sse_events(response.content)
            assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
            assert events[-2]["code"] == "stream_limit_exceeded"
            assert "max_stream_bytes" in events[-2]["message"]
            assert [e["sequence_number"] for e in events] == list(range(len(events)))
            failed = events[-1]["response"]
        else:
            failed = response.json()
        assert failed["status"] == "failed"
        assert "300000 bytes" in failed["error"]["message"]
        # Every frame whose bytes came within the cap is kept, however the proxy's reads fell
        # (a read that crossed the cap used to be dropped whole: 197 of 247 frames kept, once).
        frame_bytes = len(frame({"content": "x" * 1000}))
        text = failed["output"][0]["content"][0]["text"]
        assert text == "x" * 1000 * (300_000 // frame_bytes)
        assert wait_until(lambda: upstream.open_connections == 0, 5)


@pytest.mark.parametrize("stream", [True, False])
def test_max_stream_seconds_ends_the_response_failed(proxy_for, stream):
    sent = Sent()
    with LoopbackServer(endless(sent, pause=0.1)) as upstream:
        proxy = proxy_for(upstream, max_stream_seconds=1.0)
        began = time.monotonic()
        response = httpx.post(
            proxy.url + "/v1/responses", json={**BODY, "stream": stream}, timeout=20
        )
        assert time.monotonic() - began < 5
        assert response.status_code == 200
        if stream:
            events = sse_events(response.content)
            assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
            final = events[-1]["response"]
        else:
            final = response.json()
        assert final["status"] == "failed"
        assert "max_stream_seconds" in final["error"]["message"]
        assert final["output"][0]["content"][0]["text"].startswith("x" * 1000)
        assert wait_until(lambda: upstream.open_connections == 0, 5)


# -- C: slow clients -----------------------------------------------------------------------------


def test_a_body_that_does_not_arrive_gets_408_and_the_connection_closes(proxy_for):
    with LoopbackServer(silent_then_answer(False, 0)) as upstream:
        proxy = proxy_for(upstream, client_body_timeout=0.5)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b'content-length: 100\r\n\r\n{"model":'
            )
            began = time.monotonic()
            answer = b""
            while chunk := sock.recv(65536):  # ends when the server closes the connection
                answer += chunk
            assert time.monotonic() - began < 5
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408")
        assert json.loads(body)["error"]["code"] == "request_timeout"


def test_a_connection_that_drips_its_headers_is_closed(monkeypatch):
    from rxresponses.server._guard import HEADER_TIMEOUT_ENV, PROTOCOL

    monkeypatch.setenv(HEADER_TIMEOUT_ENV, "0.5")
    with BackgroundServer(create_app(ServerConfig()), http=PROTOCOL) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            began = time.monotonic()
            closed = False
            for byte in b"GET /health HTTP/1.1\r\nhost: x\r\n":
                try:
                    sock.sendall(bytes([byte]))
                    time.sleep(0.1)
                except OSError:
                    closed = True
                    break
                if time.monotonic() - began > 3:
                    break
            if not closed:
                sock.settimeout(3)
                closed = sock.recv(100) == b""
            assert closed
            assert time.monotonic() - began < 3
        # A client that sends its request at once is served through the same protocol.
        assert httpx.get(proxy.url + "/health", timeout=5).json() == {"status": "ok"}
        with httpx.Client(timeout=5) as client:  # keep-alive: heads after the first one pass
            for _ in range(3):
                assert client.get(proxy.url + "/health").status_code == 200
                time.sleep(0.3)


def test_slowloris_slice():
    """Header and body drips, through a server process: all closed by the 5 s deadlines."""
    ok, line = attack_load.slowloris(60, 7.0)
    print("\n" + line)
    assert ok, line


# -- D/E: what a user notices ---------------------------------------------------------------------


@pytest.mark.parametrize("before_head", [True, False])
def test_created_at_once_and_keepalives_while_the_upstream_is_silent(proxy_for, before_head):
    with LoopbackServer(silent_then_answer(before_head, 2.0)) as upstream:
        proxy = proxy_for(upstream, keepalive_seconds=0.5)
        began = time.monotonic()
        first_event = None
        body = b""
        with httpx.stream("POST", proxy.url + "/v1/responses", json=BODY, timeout=10) as r:
            for chunk in r.iter_raw():
                body += chunk
                if first_event is None and b"response.in_progress" in body:
                    first_event = time.monotonic() - began
        assert first_event is not None
        assert first_event < 1.0
        assert body.count(b": keep-alive\n\n") >= 2
        types = sse_types(body)
        assert types[:2] == ["response.created", "response.in_progress"]
        assert types[-1] == "response.completed"
        events = sse_events(body)
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        created, completed = events[0]["response"], events[-1]["response"]
        assert created["model"] == completed["model"] == "limit-model"
        assert created["created_at"] == completed["created_at"]


def test_the_openai_sdk_reads_a_stream_with_keepalive_comments(proxy_for):
    with LoopbackServer(silent_then_answer(False, 1.5)) as upstream:
        proxy = proxy_for(upstream, keepalive_seconds=0.3)
        client = openai.OpenAI(base_url=proxy.url + "/v1", api_key="test", max_retries=0)
        events = list(client.responses.create(model="limit-model", input="hi", stream=True))
        assert [e.type for e in events][:2] == ["response.created", "response.in_progress"]
        assert events[-1].type == "response.completed"
        assert events[-1].response.output_text == "after the silence"


def test_a_failed_stream_is_logged_with_its_reason(proxy_for, caplog):
    async def fails(request: Request, conn: Conn) -> None:
        await conn.head()
        await conn.send(frame({"content": "partial"}))
        await conn.send(b'data: {"error": {"message": "model crashed: CUDA out of memory"}}\n\n')
        await conn.end()

    with LoopbackServer(fails) as upstream:
        proxy = proxy_for(upstream)
        with caplog.at_level(logging.INFO, logger="rxresponses.server"):
            response = httpx.post(proxy.url + "/v1/responses", json=BODY, timeout=10)
            assert sse_types(response.content)[-1] == "response.failed"
            assert wait_until(lambda: any("status=failed" in r.message for r in caplog.records), 5)
    line = next(r for r in caplog.records if "status=failed" in r.getMessage())
    assert line.levelno == logging.WARNING
    assert "reason=" in line.getMessage()
    assert "CUDA out of memory" in line.getMessage()


def _chat_pipeline(start_immediately: bool) -> Any:
    return reactivex.compose(
        rxo.decode_sse(),
        rxo.parse_chunks(),
        rxo.split_by_item(),
        rxo.collect_reasoning(),
        rxo.accumulate_text(),
        rxo.join_tool_args(),
        rxo.assemble(
            response_id="resp_1",
            model="the-model",
            created_at=1_700_000_000,
            start_immediately=start_immediately,
        ),
    )


def test_assemble_start_immediately_emits_the_lifecycle_on_subscribe():
    turn = ScriptedTurn(text="Hello there", reasoning="think")
    data = b"".join(chat_sse(chat_chunks(turn)))
    runs: dict[bool, list[Any]] = {}
    for start in (False, True):
        subject: Subject[bytes] = Subject()
        events: list[Any] = []
        subject.pipe(_chat_pipeline(start)).subscribe(events.append)
        before = [e.type for e in events]
        assert before == (["response.created", "response.in_progress"] if start else [])
        subject.on_next(data)
        subject.on_completed()
        runs[start] = events
    early, usual = runs[True], runs[False]
    assert [e.type for e in early] == [e.type for e in usual]
    assert [e.sequence_number for e in early] == list(range(len(early)))
    final_early, final_usual = early[-1].response, usual[-1].response
    assert final_early.model == final_usual.model == "the-model"
    assert final_early.created_at == final_usual.created_at == 1_700_000_000
    assert final_early.output_text == final_usual.output_text == "Hello there"
    assert early[0].response.model == "the-model"
    assert early[0].response.created_at == 1_700_000_000


def test_no_thread_is_left_behind():
    # The proxies of this module ran in threads that the fixtures stopped.
    assert wait_until(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("uvicorn-")], 5
    )


# -- the options ----------------------------------------------------------------------------------


def test_limit_options_make_a_config_and_travel_through_the_environment():
    import argparse

    from rxresponses.server import add_arguments, config_from_args, uvicorn_limits

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            *("--max-concurrent-streams", "8", "--max-stream-seconds", "90"),
            *("--max-stream-bytes", "1000", "--keepalive-seconds", "0"),
            *("--client-body-timeout", "7", "--client-header-timeout", "3"),
            *("--max-client-connections", "50"),
        ]
    )
    config = config_from_args(args)
    assert config == ServerConfig(
        max_concurrent_streams=8,
        max_stream_seconds=90,
        max_stream_bytes=1000,
        keepalive_seconds=0,
        client_body_timeout=7,
        client_header_timeout=3,
        store="sqlite:///rxresponses.sqlite3",  # serve stores by default
    )
    assert ServerConfig.from_env(config.to_env()) == config
    assert config.pool_size == 8 + 16  # a connection for every request that can be in flight
    assert ServerConfig(max_connections=5).pool_size == 5
    defaults = config_from_args(parser.parse_args([]))
    assert (defaults.max_concurrent_streams, defaults.max_stream_bytes) == (64, 32 * 2**20)
    assert (defaults.keepalive_seconds, defaults.client_body_timeout) == (15, 60)
    assert uvicorn_limits(50) == {
        "http": HeaderTimeoutProtocol,  # the class: uvicorn 0.22 takes no import string here
        "limit_concurrency": 50,
        "timeout_keep_alive": 5,
        "backlog": 2048,
    }


@pytest.mark.parametrize(
    "field", ["max_concurrent_streams", "client_body_timeout", "client_header_timeout"]
)
def test_limits_must_be_positive(field):
    from rxresponses.server import ConfigError

    with pytest.raises(ConfigError, match=field):
        ServerConfig(**{field: 0})


def test_a_stalled_client_is_let_go_at_max_stream_seconds(proxy_for):
    sent = Sent()
    with LoopbackServer(endless(sent)) as upstream:
        proxy = proxy_for(upstream, max_stream_seconds=1.0)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", proxy.port))
        body = json.dumps(BODY).encode()
        sock.sendall(
            b"POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )
        try:
            assert wait_until(lambda: upstream.open_connections == 1, 5)
            began = time.monotonic()
            # The deadline closes the upstream request at once, although the client reads nothing.
            assert wait_until(lambda: upstream.open_connections == 0, 5)
            assert time.monotonic() - began < 4
        finally:
            sock.close()

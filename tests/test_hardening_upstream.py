"""Hardening: what ``rxresponses serve`` sends to and takes from a hostile upstream (issue 17).

Real loopback HTTP: the server runs under uvicorn on 127.0.0.1 (in a thread, or as the real
command for the slices of ``tests/fuzz/attack_upstream.py``), in front of a fake upstream this
test controls byte by byte (:class:`tests.fuzz.loopback.LoopbackServer`).

* A model id reaches the upstream as exactly one percent-encoded path segment under ``/models/``;
  nothing a client sends selects another upstream path or a query.
* Upstream connections are handed back to the pool after each finished stream (300 sequential
  streams use one or two connections, whether the body ends with ``[DONE]`` or 1 ms later), and
  a pool of 2 serves 40 streams in a row.
* ``--upstream-deadline`` ends a dripping or comment-only upstream's stream with ``error`` +
  ``response.failed`` carrying what arrived.
* Compressed bodies are inflated at most 64 KiB at a time; a gzip bomb does not grow memory.
* Upstream error bodies are reduced to ``message`` (bounded, masked, no traceback), ``type``,
  ``param`` and ``code``; nested 100,000 deep they are a generic error, never a crash.
* Secrets in every encoding stay out of client bytes and of every log line (see also
  ``test_hardening_secrets.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rxresponses.server import ServerConfig, create_app
from rxresponses.server._upstream import Redactor, _Inflater, clean_error_body
from rxresponses.server.testing import BackgroundServer

from .fuzz import attack_upstream as attack
from .fuzz.loopback import Conn, LoopbackServer, Request, wait_until

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    return attack.chunk(content, finish)


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def _raw_get(port: int, target: str) -> int:
    status, _ = attack.raw_get(port, target)
    return status


# -- 1. paths -------------------------------------------------------------------------------------


async def _model_list(request: Request, conn: Conn) -> None:
    body = b'{"id": "x", "object": "model"}'
    await conn.head(200, {"content-type": "application/json"}, framing="length", length=len(body))
    await conn.send(body)


def test_a_model_request_cut_before_any_answer_is_sent_once_more() -> None:
    """A GET that fails before any answer (a pooled connection the upstream had closed) is
    idempotent: the server sends it once more instead of answering 502."""
    calls: list[str] = []

    async def first_cut(request: Request, conn: Conn) -> None:
        calls.append(request.path)
        if len(calls) == 1:
            return  # the connection closes without a byte of answer
        await _model_list(request, conn)

    with (
        LoopbackServer(first_cut) as up,
        BackgroundServer(create_app(ServerConfig(upstream=up.url + "/v1"))) as proxy,
    ):
        assert _raw_get(proxy.port, "/v1/models/x") == 200
    assert calls == ["/v1/models/x", "/v1/models/x"]


@pytest.fixture(scope="module")
def recording() -> Iterator[tuple[LoopbackServer, BackgroundServer]]:
    with (
        LoopbackServer(_model_list) as up,
        BackgroundServer(create_app(ServerConfig(upstream=up.url + "/v1"))) as proxy,
    ):
        yield up, proxy


@pytest.mark.parametrize(
    ("target", "upstream_path"),
    [
        ("..%2F..%2Fadmin", "/v1/models/..%2F..%2Fadmin"),
        ("..%2f..%2fadmin%3Fx%3D1", "/v1/models/..%2F..%2Fadmin%3Fx%3D1"),
        ("a%2Fb", "/v1/models/a%2Fb"),
        ("a/b", "/v1/models/a%2Fb"),
        ("a/../../admin", "/v1/models/a%2F..%2F..%2Fadmin"),
        ("..%5C..%5Cadmin", "/v1/models/..%5C..%5Cadmin"),
        ("x%3Fkey%3Dv", "/v1/models/x%3Fkey%3Dv"),
        ("x%23frag", "/v1/models/x%23frag"),
        ("x?query=1", "/v1/models/x"),
        ("a%00b", "/v1/models/a%00b"),
        ("%C3%A9t%C3%A9", "/v1/models/%C3%A9t%C3%A9"),
        ("%252F", "/v1/models/%252F"),
        ("sp%20ace", "/v1/models/sp%20ace"),
        ("semi%3Bcolon=1", "/v1/models/semi%3Bcolon%3D1"),
        ("%2E%2E%2Fadmin", "/v1/models/..%2Fadmin"),
        ("%2E%2E%2F", "/v1/models/..%2F"),
        (".hidden", "/v1/models/.hidden"),
        ("~tilde-dash_dot.x", "/v1/models/~tilde-dash_dot.x"),
        ("gpt-4o", "/v1/models/gpt-4o"),
    ],
)
def test_a_model_id_is_one_encoded_path_segment(
    recording: tuple[LoopbackServer, BackgroundServer], target: str, upstream_path: str
) -> None:
    up, proxy = recording
    before = len(up.requests)
    assert _raw_get(proxy.port, "/v1/models/" + target) == 200
    assert [r.path for r in up.requests[before:]] == [upstream_path]


@pytest.mark.parametrize("target", ["..", "%2E%2E", ".", "%2E", "...", "%2e%2E"])
def test_dot_only_model_ids_are_refused_without_asking_the_upstream(
    recording: tuple[LoopbackServer, BackgroundServer], target: str
) -> None:
    up, proxy = recording
    before = len(up.requests)
    status, data = attack.raw_get(proxy.port, "/v1/models/" + target)
    assert status == 404
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "model_not_found"
    assert up.requests[before:] == []


def test_httpx_keeps_the_encoded_segment_as_sent() -> None:
    # What the server hands httpx: the segment must come out on the wire unchanged.
    url = httpx.URL("http://h/v1/models/" + "..%2F..%2Fadmin%3Fq%23f%00")
    assert url.raw_path == b"/v1/models/..%2F..%2Fadmin%3Fq%23f%00"


def test_the_chat_request_goes_to_one_path_whatever_the_model(
    recording: tuple[LoopbackServer, BackgroundServer],
) -> None:
    async def chat(request: Request, conn: Conn) -> None:
        await conn.head()
        await conn.send(_chunk("hi") + _chunk(None, "stop") + b"data: [DONE]\n\n")
        await conn.end()

    with (
        LoopbackServer(chat) as up,
        BackgroundServer(create_app(ServerConfig(upstream=up.url + "/v1"))) as proxy,
        httpx.Client(timeout=20) as client,
    ):
        for model in ("../../admin", "x?y=1#z", "..", "a/b"):
            body = {"model": model, "input": "hi"}
            assert client.post(proxy.url + "/v1/responses", json=body).status_code == 200
        assert [r.path for r in up.requests] == ["/v1/chat/completions"] * 4


def test_path_tricks_slice_of_the_attack_run(tmp_path: Path) -> None:
    figures = attack.run_abuse("path-tricks", tmp_path)
    assert figures.problems == []
    assert (figures.five_xx, figures.hangs, figures.extra["escapes"]) == (0, 0, 0)


# -- 3. connections are handed back ---------------------------------------------------------------


def test_a_small_pool_serves_many_streams_in_a_row() -> None:
    figures = attack.Figures("pool")
    with LoopbackServer(attack.reuse_upstream(False), reuse=True) as up:
        config = ServerConfig(upstream=up.url + "/v1", max_connections=2, upstream_timeout=3)
        with BackgroundServer(create_app(config)) as proxy:
            attack.run_reuse(proxy.url, 40, figures)
    assert (figures.requests, figures.five_xx, figures.hangs, figures.problems) == (40, 0, 0, [])


def test_a_client_that_leaves_still_closes_the_upstream_connection() -> None:
    async def endless(request: Request, conn: Conn) -> bool:
        await conn.head()
        conn.watch_peer()
        for _ in range(5000):  # at most 10 s
            if conn.peer_closed.is_set():
                break
            await conn.send(_chunk("tick "))
            await asyncio.sleep(0.002)
        return True

    with (
        LoopbackServer(endless, reuse=True) as up,
        BackgroundServer(create_app(ServerConfig(upstream=up.url + "/v1"))) as proxy,
    ):
        body = {"model": "m", "input": "hi", "stream": True}
        with httpx.stream("POST", proxy.url + "/v1/responses", json=body, timeout=20) as r:
            for line in r.iter_lines():
                if "output_text.delta" in line:
                    break
        assert wait_until(lambda: up.open_connections == 0, 5)


def test_an_upstream_that_never_ends_its_body_after_done_is_closed_within_a_second() -> None:
    async def upstream(request: Request, conn: Conn) -> bool:
        await conn.head()
        await conn.send(_chunk("Hello") + _chunk(None, "stop") + b"data: [DONE]\n\n")
        await conn.stall(20)  # no last chunk: the body never ends
        return True

    with (
        LoopbackServer(upstream, reuse=True) as up,
        BackgroundServer(create_app(ServerConfig(upstream=up.url + "/v1"))) as proxy,
        httpx.Client(timeout=10) as client,
    ):
        for stream in (True, False):
            started = time.monotonic()
            body = {"model": "m", "input": "hi", "stream": stream}
            answer = client.post(proxy.url + "/v1/responses", json=body)
            assert time.monotonic() - started < 3  # the answer did not wait for the drain
            assert "completed" in answer.text
            # The drain gives up after 1 s (64 KiB) and closes the connection.
            assert wait_until(lambda: up.open_connections == 0, 5)


@pytest.mark.parametrize("name", ["conn-reuse-same-write", "conn-reuse-after"])
def test_sequential_streams_reuse_upstream_connections(tmp_path: Path, name: str) -> None:
    # 300 + 20 sequential streams through the real command: the body ends in the same write as
    # ``data: [DONE]``, or 1 ms later. Before the fix, each stream left its connection open.
    figures = attack.run_abuse(name, tmp_path, streams=300)
    assert figures.problems == []
    assert (figures.requests, figures.five_xx, figures.hangs) == (320, 0, 0)
    assert figures.extra["upstream_conns"] <= 3  # not one per stream
    assert figures.extra["open_now"] <= 3
    assert figures.extra["last20_max_ms"] < 5000  # none waited for a pool slot


# -- 4. slow and hostile upstreams ----------------------------------------------------------------


@pytest.mark.parametrize("drip", ["comments", "bytes", "silence"])
def test_the_upstream_deadline_ends_a_dripping_stream(drip: str) -> None:
    async def upstream(request: Request, conn: Conn) -> None:
        await conn.head()
        await conn.send(_chunk("Hello"))
        frame = _chunk(" more")
        for i in range(200):  # 20 s at most
            if drip != "silence":
                await conn.send(b": keepalive\n\n" if drip == "comments" else frame[i : i + 1])
            await asyncio.sleep(0.1)

    with LoopbackServer(upstream) as up:
        config = ServerConfig(upstream=up.url + "/v1", upstream_deadline=1.0)
        with BackgroundServer(create_app(config)) as proxy, httpx.Client(timeout=10) as client:
            body = {"model": "m", "input": "hi", "stream": True}
            events = _events(client.post(proxy.url + "/v1/responses", json=body).text)
            answer = client.post(proxy.url + "/v1/responses", json={**body, "stream": False})
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert "--upstream-deadline" in events[-2]["message"]
    failed = events[-1]["response"]
    assert failed["output"][0]["content"][0]["text"] == "Hello"  # what arrived is kept
    assert answer.status_code == 200
    assert answer.json()["status"] == "failed"
    assert "--upstream-deadline" in answer.json()["error"]["message"]


def test_upstream_deadline_option_and_environment() -> None:
    from rxresponses.server import add_arguments, config_from_args
    from rxresponses.server.config import ConfigError

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert config_from_args(parser.parse_args([])).upstream_deadline == 3600.0
    config = config_from_args(parser.parse_args(["--upstream-deadline", "0"]))
    assert config.upstream_deadline == 0.0
    assert ServerConfig.from_env({"RXRESPONSES_UPSTREAM_DEADLINE": "90"}).upstream_deadline == 90
    assert ServerConfig.from_env(ServerConfig(upstream_deadline=12.5).to_env()).upstream_deadline
    with pytest.raises(ConfigError):
        ServerConfig(upstream_deadline=-1)


def _bomb(prefix: bytes, size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"x" * (1 << 20)
    parts = [compressor.compress(prefix)]
    parts += [compressor.compress(block) for _ in range(size >> 20)]
    return b"".join([*parts, compressor.flush()])


def test_inflation_is_bounded_per_step() -> None:
    bomb = _bomb(b"", 64 << 20)
    inflater = _Inflater("gzip")
    inflater.feed(bomb[:65536])  # one network read
    sizes = []
    while piece := inflater.read():
        sizes.append(len(piece))
    assert max(sizes) == 64 * 1024
    assert sum(sizes) > 32 << 20  # all of that read's content came out, a piece at a time
    with pytest.raises(Exception, match="Content-Encoding"):
        _Inflater("br")


def test_a_gzip_bomb_error_body_is_read_to_64_kib_of_decoded_text() -> None:
    bomb = _bomb(b'{"error": {"message": "', 64 << 20)

    async def upstream(request: Request, conn: Conn) -> None:
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        await conn.head(400, headers, framing="length", length=len(bomb))
        await conn.send(bomb)

    with (
        LoopbackServer(upstream) as up,
        BackgroundServer(create_app(ServerConfig(upstream=up.url + "/v1"))) as proxy,
        httpx.Client(timeout=20) as client,
    ):
        answer = client.post(proxy.url + "/v1/responses", json={"model": "m", "input": "x"})
    assert answer.status_code == 400
    error = answer.json()["error"]  # the JSON was cut at 64 KiB: a short excerpt of the text
    assert (
        error["message"] == 'upstream returned HTTP 400: {"error": {"message": "' + "x" * 176 + "…"
    )
    assert error["code"] == "upstream_error"


def test_gzip_bomb_slices_of_the_attack_run(tmp_path: Path) -> None:
    for name in ("gzip-bomb-error", "gzip-bomb-sse"):
        figures = attack.run_abuse(name, tmp_path)  # 128 MiB inflated, through the real command
        assert figures.problems == []
        assert (figures.five_xx, figures.hangs) == (0, 0)
        assert figures.peak_rss_mb < 160, figures.line()  # about 50 idle; the SSE line limit 16


# -- 5. error bodies ------------------------------------------------------------------------------


def test_an_error_body_keeps_message_type_param_code_only() -> None:
    body = {
        "error": {
            "message": "model not loaded\nTraceback (most recent call last):\n  File "
            '"/srv/app/server.py", line 12\nKeyError',
            "type": "invalid_request_error",
            "param": "model",
            "code": 404,
            "stack": "/srv/app/server.py:12",
        },
        "debug": {"path": "/etc/secret"},
    }
    assert clean_error_body(404, json.dumps(body), Redactor()) == {
        "error": {
            "message": "model not loaded",
            "type": "invalid_request_error",
            "param": "model",
            "code": "404",
        }
    }
    long = clean_error_body(500, json.dumps({"error": {"message": "x" * 5000}}), Redactor())
    assert len(long["error"]["message"]) == 1000
    assert long["error"]["type"] == "server_error"
    assert clean_error_body(404, '{"error": "model \\"m\\" not found"}', Redactor()) == {
        "error": {
            "message": 'model "m" not found',
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'Traceback (most recent call last):\n  File "/srv/app.py", line 3, in <module>\n'
            "ValueError: boom",
            "upstream returned HTTP 500",
        ),
        (
            "<html>\n<body><h1>Internal Server Error</h1>\n<pre>/srv/app.py line 3</pre>",
            "upstream returned HTTP 500: Internal Server Error",
        ),
        (
            "overloaded, try later\nat /srv/app.py:3",
            "upstream returned HTTP 500: overloaded, try later",
        ),
        ("[" * 100_000, "upstream returned HTTP 500: " + "[" * 199 + "…"),
        ('{"error": ' * 50_000 + "1" + "}" * 50_000, None),
    ],
)
def test_a_non_json_error_body_becomes_a_short_generic_message(
    body: str, message: str | None
) -> None:
    error = clean_error_body(500, body, Redactor())["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "server_error",
        "upstream_error",
        None,
    )
    if message is not None:
        assert error["message"] == message
    assert "\n" not in error["message"]
    assert len(error["message"]) <= 230


def test_error_bodies_reach_the_client_cleaned_streamed_or_not() -> None:
    bodies = {
        "internals": json.dumps(
            {
                "error": {"message": "bad model", "type": "invalid", "code": "bad", "trace": "/x"},
                "traceback": "File /srv/app.py",
            }
        ).encode(),
        "nested": b"[" * 100_000,
    }

    async def upstream(request: Request, conn: Conn) -> None:
        model = json.loads(request.body)["model"] if request.body else "nested"
        body = bodies[model]
        await conn.head(
            422, {"content-type": "application/json"}, framing="length", length=len(body)
        )
        await conn.send(body)

    with (
        LoopbackServer(upstream) as up,
        BackgroundServer(create_app(ServerConfig(upstream=up.url + "/v1"))) as proxy,
        httpx.Client(timeout=20) as client,
    ):
        url = proxy.url + "/v1/responses"
        answer = client.post(url, json={"model": "internals", "input": "x"})
        assert answer.status_code == 422
        assert answer.json() == {
            "error": {"message": "bad model", "type": "invalid", "param": None, "code": "bad"}
        }
        events = _events(
            client.post(url, json={"model": "internals", "input": "x", "stream": True}).text
        )
        assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
        assert "bad model" in events[-2]["message"]
        assert "/srv" not in events[-2]["message"]
        nested = client.post(url, json={"model": "nested", "input": "x"})
        assert nested.status_code == 422
        assert nested.json()["error"]["code"] == "upstream_error"
        events = _events(
            client.post(url, json={"model": "nested", "input": "x", "stream": True}).text
        )
        assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
        models = client.get(proxy.url + "/v1/models/m")
        assert models.status_code == 422
        assert models.json()["error"]["message"].startswith("upstream returned HTTP 422")


def test_nested_error_slice_of_the_attack_run(tmp_path: Path) -> None:
    figures = attack.run_abuse("nested-error", tmp_path)
    assert figures.problems == []
    assert (figures.five_xx, figures.hangs) == (0, 0)


def test_middleware_added_to_the_app_sees_every_frame_of_a_stream() -> None:
    """The server sends a stream's body frames past Starlette's own send wrappers (they only
    watch for the response start); middleware a user adds to the app (a byte counter here, as
    metrics middleware does; GZip rewrites bodies) still sees every frame."""
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    counted: list[int] = []

    class CountBodyBytes:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            async def counting(message: Message) -> None:
                if message["type"] == "http.response.body":
                    counted.append(len(message.get("body", b"")))
                await send(message)

            await self.app(scope, receive, counting)

    async def chat(request: Request, conn: Conn) -> None:
        await conn.head()
        await conn.send(b"".join(_chunk(f"word{i} ") for i in range(40)))
        await conn.send(_chunk(None, "stop") + b"data: [DONE]\n\n")
        await conn.end()

    with LoopbackServer(chat) as up:
        app = create_app(ServerConfig(upstream=up.url + "/v1"))
        app.add_middleware(CountBodyBytes)
        with BackgroundServer(app) as proxy, httpx.Client(timeout=20) as client:
            body = {"model": "m", "input": "hi", "stream": True}
            response = client.post(proxy.url + "/v1/responses", json=body)
    events = _events(response.text)
    assert events[-1]["type"] == "response.completed"
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "".join(f"word{i} " for i in range(40))
    assert sum(counted) == len(response.content)

"""Hardening: secrets and limits of a real ``rxresponses serve`` process.

``tests/test_server_*.py`` check these in-process (``caplog``, ASGI). Here the real command runs
(``rxresponses serve --log-level debug``, access log on, every logger at DEBUG), in front of a
loopback upstream that echoes the ``Authorization`` header it gets into its error bodies, and
everything the process prints and answers is searched for the keys:

* the client's key (``Bearer sk-test-SECRET123``, forwarded) and a configured key
  (``--api-key-env``) reach the upstream, and never the process's stdout/stderr nor any response
  body, for 401 (JSON), 500 (HTML), a stream cut mid-frame, a success, streaming or not, and
  ``/v1/models``;
* the keys and the upstream URL's credentials are masked in every encoding an upstream may echo
  them in (JSON ``\\u`` escapes, percent-encoding, HTML references, base64/Basic), in bodies,
  headers logged by httpcore at DEBUG, a successful model list and mid-stream error chunks (the
  ``key-echo`` slice of ``tests/fuzz/attack_upstream.py``);
* the default bind is 127.0.0.1 only (read from the kernel's socket table);
* the request size limit holds over real HTTP for a declared length, a chunked body and a gzip
  bomb, without the process's memory growing by the bomb's size.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from rxresponses.server import ServerConfig, create_app
from rxresponses.server._upstream import Redactor
from rxresponses.server.testing import BackgroundServer

from .fuzz import attack_upstream as attack
from .fuzz.attack_upstream import ServeProcess
from .fuzz.loopback import Conn, LoopbackServer, Request

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-test-SECRET123"
CONFIGURED = "sk-test-CONFIGURED-456"
KEY_ENV = "RXR_HARDENING_UPSTREAM_KEY"
HEADERS = {"authorization": f"Bearer {SECRET}"}


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    data = {"id": "c", "object": "chat.completion.chunk", "created": 1_750_000_000, "model": "m"}
    data["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    return b"data: " + json.dumps(data).encode() + b"\n\n"


async def echoing_upstream(request: Request, conn: Conn) -> None:
    """Fails or answers by model name; every error body echoes the Authorization header."""
    auth = request.headers.get("authorization", "")
    model = json.loads(request.body).get("model") if request.body else "models"
    if model in ("status-401", "models"):
        body = json.dumps(
            {"error": {"message": f"Incorrect API key provided: {auth}", "code": "invalid_key"}}
        ).encode()
        await conn.head(
            401, {"content-type": "application/json"}, framing="length", length=len(body)
        )
        await conn.send(body)
    elif model == "status-500":
        body = f"<html><body><h1>500</h1><pre>request had {auth}</pre></body></html>".encode()
        await conn.head(500, {"content-type": "text/html"}, framing="length", length=len(body))
        await conn.send(body)
    elif model == "cut":
        await conn.head()
        await conn.send(_chunk("Hello") + _chunk(" wor")[:20])  # then close mid-frame
    else:
        await conn.head()
        await conn.send(_chunk("Hello") + _chunk(None, "stop") + b"data: [DONE]\n\n")
        await conn.end()


def start_serve(
    tmp: Path, name: str, *args: str, env: dict[str, str] | None = None
) -> ServeProcess:
    """``rxresponses serve`` with *every* logger at DEBUG (the fuzz harness's launcher), run in
    ``tmp`` (its own store) with its output in ``tmp/<name>.log``."""
    return attack.start_serve(tmp, name, *args, env=env, all_debug=True, cwd=tmp)


def stop_checked(server: ServeProcess) -> str:
    """Stop the process; return everything it printed, after checking it for the keys."""
    output = server.stop()
    assert SECRET not in output
    assert CONFIGURED not in output
    return output


@pytest.fixture(scope="module")
def upstream() -> Iterator[LoopbackServer]:
    with LoopbackServer(echoing_upstream) as server:
        yield server
    assert server.handler_errors == []


@pytest.fixture(scope="module")
def forwarding(upstream: LoopbackServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("serve")
    # httpx's own transport (httpcore logs the headers at DEBUG: those lines are checked); the
    # keyed server reads its upstream with the lean transport (the default), which logs none.
    server = start_serve(
        tmp,
        "forwarding",
        *("--upstream", upstream.url + "/v1", "--log-level", "debug"),
        *("--upstream-client", "httpx"),
    )
    yield server
    stop_checked(server)


@pytest.fixture(scope="module")
def keyed(upstream: LoopbackServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("serve")
    server = start_serve(
        tmp,
        "keyed",
        *("--upstream", upstream.url + "/v1", "--log-level", "debug", "--api-key-env", KEY_ENV),
        env={KEY_ENV: CONFIGURED},
    )
    yield server
    stop_checked(server)


def test_keys_never_reach_the_logs_nor_the_bodies(
    upstream: LoopbackServer, forwarding: ServeProcess, keyed: ServeProcess
) -> None:
    bodies: list[str] = []
    with httpx.Client(timeout=20, headers=HEADERS) as client:
        for server in (forwarding, keyed):
            for model in ("status-401", "status-500", "cut", "ok"):
                for stream in (True, False):
                    body = {"model": model, "input": "hi", "stream": stream}
                    response = client.post(server.url + "/v1/responses", json=body)
                    bodies.append(f"{response.status_code} {response.headers} {response.text}")
            response = client.get(server.url + "/v1/models")
            bodies.append(f"{response.status_code} {response.headers} {response.text}")
    time.sleep(0.2)  # let the last log lines reach the files
    logs = forwarding.output() + keyed.output()  # (and once more, whole, when they stop)

    received = [r.headers.get("authorization") for r in upstream.requests]
    assert f"Bearer {SECRET}" in received  # forwarded by the forwarding proxy
    assert f"Bearer {CONFIGURED}" in received  # the configured key, by the keyed one
    assert "Incorrect API key provided: ***" in "".join(bodies)  # the echo was there, redacted
    assert "request had ***" in "".join(bodies)
    assert "DEBUG:    send_request_headers" in logs  # httpcore's debug lines: all at DEBUG
    for secret in (SECRET, CONFIGURED):
        leaks = [b for b in bodies if secret in b]
        assert leaks == [], leaks[:1]
        assert secret not in logs, logs[logs.index(secret) - 300 : logs.index(secret) + 100]
    # The outcomes themselves are the documented ones.
    joined = "\n".join(bodies)
    assert joined.count("response.failed") >= 6  # 401, 500 and cut, streamed, for both
    assert '"status":"completed"' in joined


def test_a_key_echoed_in_a_mid_stream_error_chunk_is_redacted() -> None:
    from rxresponses.server import ServerConfig, create_app
    from rxresponses.server.testing import BackgroundServer

    async def error_chunk(request: Request, conn: Conn) -> None:
        auth = request.headers.get("authorization", "")
        error = {"error": {"message": f"Invalid key {auth}", "code": 401}}
        body = _chunk("Hello") + b"data: " + json.dumps(error).encode() + b"\n\n"
        await conn.head(framing="length", length=len(body))
        await conn.send(body)

    with (
        LoopbackServer(error_chunk) as up,
        BackgroundServer(create_app(ServerConfig(upstream=up.url + "/v1"))) as proxy,
        httpx.Client(timeout=20, headers=HEADERS) as client,
    ):
        for stream in (True, False):
            body = {"model": "m", "input": "hi", "stream": stream}
            text = client.post(proxy.url + "/v1/responses", json=body).text
            assert "Invalid key" in text
            assert SECRET not in text


# -- every encoding, URL credentials, the attack run's key-echo slice ---------------------------

KEY = "sk-live-ABCdef123456"


@pytest.mark.parametrize(
    "echoed",
    [
        "sk-live-ABCdef123456",
        "\\u0073\\u006b-live-ABCdef123456",
        "\\u0073\\u006B\\u002d\\u006c\\u0069\\u0076\\u0065\\u002d\\u0041\\u0042\\u0043"
        "\\u0064\\u0065\\u0066\\u0031\\u0032\\u0033\\u0034\\u0035\\u0036",
        "sk%2Dlive%2dABCdef123456",
        "%73%6B%2D%6C%69%76%65%2D%41%42%43%64%65%66%31%32%33%34%35%36",
        "s&#107;-live-ABC&#x64;ef123456",
        "c2stbGl2ZS1BQkNkZWYxMjM0NTY",  # base64
        "s\\u006b%2dlive-ABCdef123456",  # mixed
    ],
)
def test_the_redactor_masks_every_encoding(echoed: str) -> None:
    redact = Redactor([KEY])
    assert redact(f"key was <{echoed}>!") == "key was <***>!"


def test_the_redactor_masks_json_by_value() -> None:
    redact = Redactor([KEY, "user-name:pass-word"])
    body = b'{"data": [{"id": "m", "owned_by": "\\u0073k-live-ABCdef123456"}], "\\/": "x"}'
    assert json.loads(redact.json_bytes(body)) == {
        "data": [{"id": "m", "owned_by": "***"}],
        "/": "x",
    }
    basic = base64.b64encode(b"user-name:pass-word").decode()
    assert redact(f"Authorization: Basic {basic}") == "Authorization: Basic ***"
    assert redact("short and unrelated text stays") == "short and unrelated text stays"


@pytest.mark.parametrize("client", ["httpx", "lean"])
def test_url_credentials_are_sent_as_basic_and_never_logged(
    caplog: pytest.LogCaptureFixture, client: Literal["httpx", "lean"]
) -> None:
    user, password = "proxy-user", "proxy-password-1"
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()

    async def echo(request: Request, conn: Conn) -> None:
        auth = request.headers.get("authorization", "")
        body = json.dumps({"error": {"message": f"bad {auth}", "code": "x"}}).encode()
        headers = {"content-type": "application/json", "x-echo": auth}
        await conn.head(401, headers, framing="length", length=len(body))
        await conn.send(body)

    caplog.set_level(logging.DEBUG)
    with LoopbackServer(echo) as up:
        upstream = up.url.replace("//", f"//{user}:{password}@") + "/v1"
        with (
            BackgroundServer(
                create_app(ServerConfig(upstream=upstream, upstream_client=client))
            ) as proxy,
            httpx.Client(timeout=20) as client,
        ):
            texts = [
                client.post(
                    proxy.url + "/v1/responses", json={"model": "m", "input": "x", "stream": s}
                ).text
                for s in (True, False)
            ]
            texts.append(client.get(proxy.url + "/v1/models").text)
    assert [r.headers["authorization"] for r in up.requests] == [f"Basic {basic}"] * 3
    assert ["bad ***" in text for text in texts] == [True, True, True]
    assert "HTTP Request: POST http://127.0.0.1" in caplog.text  # httpx's line, no credentials
    if client == "httpx":
        assert "x-echo" in caplog.text  # httpcore logged the echoing header, masked
    for secret in (password, f"{user}:{password}", basic):
        assert all(secret not in text for text in texts)
        assert secret not in caplog.text
        assert all(secret not in str(r.args) for r in caplog.records)


def test_key_echo_slice_of_the_attack_run(tmp_path: Path) -> None:
    figures = attack.run_abuse("key-echo", tmp_path)
    assert figures.problems == []
    assert (figures.five_xx, figures.hangs, figures.extra["leaks"]) == (0, 0, 0)
    assert figures.extra["masked"] > 100  # the echoes were there, and masked


# -- bind and limits -------------------------------------------------------------------------------


def _listening_addresses(port: int) -> list[str]:
    """The local addresses of listening TCP sockets on ``port`` (Linux ``/proc/net/tcp*``)."""
    found: list[str] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.append(address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_default_bind_is_loopback_only(forwarding: ServeProcess) -> None:
    # forwarding was started without --host.
    assert _listening_addresses(forwarding.port) == ["0100007F"]  # 127.0.0.1, and nothing else


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_request_size_limit_over_real_http(forwarding: ServeProcess) -> None:
    limit = 8 * 1024 * 1024  # the default --max-body-bytes
    url = forwarding.url + "/v1/responses"
    before = _peak_rss_kib(forwarding.proc.pid)

    declared = json.dumps({"model": "m", "input": "x" * (limit + 10)}).encode()
    response = httpx.post(url, content=declared, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"

    def chunked() -> Iterator[bytes]:  # no content-length: the limit is counted while reading
        yield b'{"model": "m", "input": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = httpx.post(url, content=chunked(), timeout=30)
    assert response.status_code == 413

    bomb = gzip.compress(b'{"model": "m", "input": "' + b"x" * (64 * 1024 * 1024) + b'"}')
    assert len(bomb) < 200_000
    headers = {"content-encoding": "gzip", "content-type": "application/json"}
    response = httpx.post(url, content=bomb, headers=headers, timeout=30)
    assert response.status_code == 413

    grown_mib = (_peak_rss_kib(forwarding.proc.pid) - before) / 1024
    assert grown_mib < 2 * limit / 2**20 + 16, f"peak RSS grew by {grown_mib:.0f} MiB"
    # And the server still answers.
    ok = httpx.post(url, json={"model": "ok", "input": "hi"}, headers=HEADERS, timeout=20)
    assert ok.json()["status"] == "completed"

"""Attack run: hostile upstreams against a real ``rxresponses serve`` (issue 17, upstream side).

Usage (from the repository root)::

    .venv/bin/python tests/fuzz/attack_upstream.py            # full run (about 2 minutes)
    .venv/bin/python tests/fuzz/attack_upstream.py --quick    # about 30 s
    .venv/bin/python tests/fuzz/attack_upstream.py --only conn-reuse-same-write
    .venv/bin/python tests/fuzz/attack_upstream.py --server-path /tmp/old  # another checkout

Each abuse starts a fresh ``rxresponses serve`` process on 127.0.0.1 (so its peak RSS, VmHWM from
``/proc/PID/status``, is that abuse's) in front of a fake upstream on 127.0.0.1 that this process
controls byte by byte (:class:`tests.fuzz.loopback.LoopbackServer`), and prints one line::

    abuse=<name> requests=<N> 5xx=<N> hangs=<N> peak_rss_mb=<MiB> <more key=value figures>

The abuses:

* ``path-tricks``: model ids with encoded slashes, dots, backslashes, ``?``, ``#``, NUL,
  non-ASCII... sent raw to ``GET /v1/models/{id}``; ``escapes`` counts upstream requests whose
  path+query is not exactly ``/v1/models/<the id as one percent-encoded segment>``.
* ``key-echo``: an upstream that echoes the keys (the configured one, the client's, the URL
  credentials and their Basic form) in every encoding (raw, JSON ``\\u`` escapes, ``\\/``,
  percent-encoded, base64, HTML references) in error bodies, a model list, a response header and a
  mid-stream error chunk; the server logs everything at DEBUG. ``leaks`` counts (secret, encoding)
  pairs found in any byte a client got or any log line.
* ``gzip-bomb-error`` / ``gzip-bomb-sse``: a gzip error body, and a gzip SSE body (one endless
  ``data:`` line), each inflating to 1 GiB (128 MiB with ``--quick``).
* ``dripping`` / ``comment-only``: an upstream that sends a first delta, then one byte every
  0.2 s, or ``: keepalive`` comments, forever; the server runs with ``--upstream-deadline 2``
  (1 with ``--quick``).
* ``nested-error``: error bodies of 100,000 ``[`` (and ``{"error":`` nested 50,000 deep).
* ``conn-reuse-same-write`` / ``conn-reuse-after``: 1,000 sequential streams (100 with
  ``--quick``) whose chunked body ends in the same write as ``data: [DONE]``, or 1 ms later; then
  20 more, timed. ``upstream_conns`` is how many connections the upstream accepted in all.

Exits 1 if any abuse saw a 5xx, a hang, a leak or an escape. :func:`run_abuse` is what the pytest
slice (``tests/test_hardening_upstream.py``) calls.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

if __package__ in (None, ""):  # run as a script: make ``tests.fuzz`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.loopback import Conn, LoopbackServer, Request

__all__ = ["ABUSES", "Figures", "ServeProcess", "run_abuse", "secret_forms", "start_serve"]

ROOT = Path(__file__).resolve().parents[2]
HANG_SECONDS = 10.0
CLIENT_KEY = "sk-client-KEY-0123456789"
CONFIGURED_KEY = "sk-configured-KEY-9876543210"
URL_USER = "proxy-user-name"
URL_PASSWORD = "proxy-pass-word-42"
KEY_ENV = "RXR_ATTACK_UPSTREAM_KEY"

#: ``rxresponses serve`` with every logger at DEBUG on the command's own handler (httpx,
#: httpcore, h11, asyncio... all print), as in tests/test_hardening_secrets.py.
_SERVE_ALL_DEBUG = """
import logging.config, sys
apply = logging.config.dictConfig
def dict_config(config):
    config = dict(config, root={"handlers": ["default"], "level": "DEBUG"})
    apply(config)
logging.config.dictConfig = dict_config
from rxresponses.cli import main
sys.exit(main(["serve", *sys.argv[1:]]))
"""
_SERVE = "import sys; from rxresponses.cli import main; sys.exit(main(['serve', *sys.argv[1:]]))"


@dataclass
class Figures:
    """What one abuse measured (printed as one line)."""

    abuse: str
    requests: int = 0
    five_xx: int = 0
    hangs: int = 0
    peak_rss_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.five_xx or self.hangs or self.problems)

    def line(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.extra.items())
        return (
            f"abuse={self.abuse} requests={self.requests} 5xx={self.five_xx} hangs={self.hangs} "
            f"peak_rss_mb={self.peak_rss_mb:.1f} {extra}"
        ).rstrip()

    def count(self, status: int) -> None:
        self.requests += 1
        if status >= 500:
            self.five_xx += 1


# -- the server process ---------------------------------------------------------------------------


@dataclass
class ServeProcess:
    """A running ``rxresponses serve``; everything it prints goes to ``log``."""

    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def ws_url(self) -> str:
        """The WebSocket mode address of ``/v1/responses``."""
        return self.url.replace("http://", "ws://") + "/v1/responses"

    def output(self) -> str:
        return self.log.read_text("utf-8", "replace")

    def peak_rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.output()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(
    logdir: Path,
    name: str,
    *args: str,
    env: dict[str, str] | None = None,
    all_debug: bool = False,
    server_path: str | None = None,
    cwd: Path | None = None,
) -> ServeProcess:
    """Start ``rxresponses serve --port <free> *args``; return once ``/health`` answers. It runs
    in ``cwd`` (default: a new temporary folder, so its default store is its own).

    The free port is found by binding port 0 and closing it, so another process may take it
    before the server binds it: a server that exits with "address already in use" is started
    again on another port (three tries)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RXRESPONSES_")}
    environ.update(env or {}, PYTHONUNBUFFERED="1")
    if server_path:
        environ["PYTHONPATH"] = server_path + os.pathsep + environ.get("PYTHONPATH", "")
    code = _SERVE_ALL_DEBUG if all_debug else _SERVE
    log = logdir / f"{name}.log"
    folder = cwd or Path(tempfile.mkdtemp(prefix="rxresponses-serve-"))  # its own store
    for attempt in range(3):
        port = _free_port()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-c", code, "--port", str(port), *args],
                cwd=folder,
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    return ServeProcess(url, port, proc, log)
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                break
            time.sleep(0.05)
        output = log.read_text(errors="replace")
        if "address already in use" not in output.lower() or attempt == 2:
            raise RuntimeError(f"rxresponses serve did not start: {output[-2000:]}")
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def _serving(ctx: _Context, name: str, *args: str, **options: Any) -> Iterator[ServeProcess]:
    server = start_serve(ctx.logdir, name, *args, server_path=ctx.server_path, **options)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class _Context:
    logdir: Path
    quick: bool
    server_path: str | None = None
    streams: int | None = None


# -- upstream pieces ------------------------------------------------------------------------------


def chunk(content: str | None, finish: str | None = None) -> bytes:
    """One Chat SSE frame."""
    delta = {} if content is None else {"content": content}
    data = {"id": "c", "object": "chat.completion.chunk", "created": 1_750_000_000, "model": "m"}
    data["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    return b"data: " + json.dumps(data).encode() + b"\n\n"


_BOMBS: dict[tuple[str, int], bytes] = {}


def gzip_bomb(prefix: bytes, size: int, fill: bytes = b"x") -> bytes:
    """``prefix`` then ``fill`` up to ``size`` bytes, gzip-compressed (about 1 MiB per GiB)."""
    key = (prefix.decode() + fill.decode(), size)
    if key not in _BOMBS:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        parts = [compressor.compress(prefix)]
        block = fill * (1 << 20)
        for _ in range(size >> 20):
            parts.append(compressor.compress(block))
        parts.append(compressor.flush())
        _BOMBS[key] = b"".join(parts)
    return _BOMBS[key]


async def _send_all(conn: Conn, status: int, body: bytes, headers: dict[str, str]) -> None:
    await conn.head(status, headers, framing="length", length=len(body))
    for start in range(0, len(body), 65536):
        await conn.send(body[start : start + 65536])


def _raw_count(port: int, target: str, figures: Figures) -> int:
    """:func:`raw_get`, counted (a timeout is a hang, status 0)."""
    try:
        status, _ = raw_get(port, target)
    except OSError:  # socket.timeout is TimeoutError, an OSError
        figures.requests += 1
        figures.hangs += 1
        return 0
    figures.count(status)
    return status


def _sse_get(
    client: httpx.Client, url: str, body: dict[str, Any], figures: Figures, **kw: Any
) -> str:
    """POST a request; the whole answer as text ('' on a hang, counted)."""
    try:
        response = client.post(url + "/v1/responses", json=body, timeout=HANG_SECONDS, **kw)
    except httpx.TimeoutException:
        figures.requests += 1
        figures.hangs += 1
        return ""
    figures.count(response.status_code)
    return f"{response.status_code} {response.headers} {response.text}"


# -- path tricks ----------------------------------------------------------------------------------

#: (what the client puts after /v1/models/, the id the server sees once the path is decoded)
PATH_TRICKS: list[str] = [
    "..%2F..%2Fadmin",
    "..%2f..%2fadmin%3Fx%3D1",
    "a%2Fb",
    "a/b",
    "a/../../admin",
    "..%5C..%5Cadmin",
    "a%5Cb",
    "x%3Fkey%3Dv",
    "x%23frag",
    "x?query=1",
    "x#frag",
    "a%00b",
    "%C3%A9t%C3%A9",
    "%E2%80%AEevil",
    "%252F%252E%252E",
    "sp%20ace",
    "semi%3Bcolon=1",
    "~tilde-dash_dot.x",
    "%2E%2E%2Fadmin",
    ".hidden",
    "...",
    "..",
    "%2E%2E",
    ".",
    "%2E",
    "%2E%2E%2F",
    "%FF%FE",
    "gpt-4o",
]


def _expected_path(raw: str) -> str | None:
    """The exact path+query the upstream must get for ``GET /v1/models/{raw}`` (None: nothing)."""
    from urllib.parse import unquote

    target = raw.split("?", 1)[0]  # the client's own query (a "#" is part of the path here)
    model_id = unquote(target, errors="replace")
    if not model_id.strip("."):
        return None
    return "/v1/models/" + quote(model_id.encode(), safe="")


def raw_get(port: int, target: str, headers: str = "") -> tuple[int, bytes]:
    """``GET target`` written byte by byte on a socket (no client-side normalisation)."""
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_SECONDS) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{headers}\r\n".encode()
        )
        data = b""
        while block := sock.recv(65536):
            data += block
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


async def _recording_upstream(request: Request, conn: Conn) -> None:
    body = json.dumps({"id": "x", "object": "model"}).encode()
    await conn.head(200, {"content-type": "application/json"}, framing="length", length=len(body))
    await conn.send(body)


def abuse_path_tricks(ctx: _Context) -> Figures:
    figures = Figures("path-tricks")
    escapes = rejected = 0
    with (
        LoopbackServer(_recording_upstream) as up,
        _serving(ctx, "path-tricks", "--upstream", up.url + "/v1") as server,
    ):
        for raw in PATH_TRICKS:
            before = len(up.requests)
            try:
                status, _ = raw_get(server.port, "/v1/models/" + raw)
            except TimeoutError:
                figures.requests += 1
                figures.hangs += 1
                continue
            figures.count(status)
            received = [r.path for r in up.requests[before:]]
            expected = _expected_path(raw)
            if expected is None:
                rejected += 1
                if received or status != 404:
                    escapes += 1
                    figures.problems.append(f"{raw!r}: {status} upstream got {received}")
            elif received != [expected]:
                escapes += 1
                figures.problems.append(f"{raw!r}: upstream got {received}, not {expected!r}")
        # The Chat request goes to one fixed path, whatever the model name says.
        with httpx.Client(timeout=HANG_SECONDS) as client:
            before = len(up.requests)
            for model in ("../../admin", "x?y=1#z", "..", "a/b"):
                body = {"model": model, "input": "hi"}
                _sse_get(client, server.url, body, figures)
            for r in up.requests[before:]:
                if r.path != "/v1/chat/completions":
                    escapes += 1
                    figures.problems.append(f"chat request went to {r.path!r}")
        figures.peak_rss_mb = server.peak_rss_mb()
    figures.extra = {"escapes": escapes, "rejected": rejected}
    return figures


# -- key echo -------------------------------------------------------------------------------------


def secret_forms(secret: str) -> dict[str, str]:
    """``secret`` in every encoding a hostile upstream might echo it in (name -> text)."""
    forms = {
        "raw": secret,
        "json-u-all": "".join(f"\\u{ord(c):04x}" for c in secret),
        "json-u-first": f"\\u{ord(secret[0]):04X}" + secret[1:],
        "json-u-mixed": "".join(f"\\u{ord(c):04x}" if i % 2 else c for i, c in enumerate(secret)),
        "percent-all": "".join(f"%{b:02X}" for b in secret.encode()),
        "percent-dash": secret.replace("-", "%2d"),
        "html-ref": "".join(f"&#{ord(c)};" for c in secret),
        "base64": base64.b64encode(secret.encode()).decode(),
        "base64-url": base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
    }
    if "/" in secret:
        forms["json-slash"] = secret.replace("/", "\\/")
    return forms


def all_secrets() -> dict[str, str]:
    """Every secret of the key-echo abuse (name -> value)."""
    basic = base64.b64encode(f"{URL_USER}:{URL_PASSWORD}".encode()).decode()
    return {
        "client": CLIENT_KEY,
        "configured": CONFIGURED_KEY,
        "url-password": URL_PASSWORD,
        "url-userinfo": f"{URL_USER}:{URL_PASSWORD}",
        "basic": basic,
    }


def find_leaks(text: str) -> list[str]:
    """The (secret, encoding) pairs found in ``text``."""
    found = []
    for name, secret in all_secrets().items():
        for encoding, form in secret_forms(secret).items():
            if form in text:
                found.append(f"{name}/{encoding}")
    return found


def _echo_payload(auth: str) -> str:
    """What the request's Authorization header was in every encoding; and when it is the URL's
    Basic credentials (the keyed server), every secret that server knows, in every encoding."""
    values = [auth, CLIENT_KEY]
    if auth.startswith("Basic "):
        values += all_secrets().values()
    return " | ".join(form for value in values for form in secret_forms(value).values())


async def echoing_upstream(request: Request, conn: Conn) -> None:
    """Echoes every secret in every encoding, in whatever the model name asks for."""
    auth = request.headers.get("authorization", "")
    echo = _echo_payload(auth)
    # A JSON string can hold the echo verbatim only if its backslashes are escaped; the raw
    # escapes are written into the JSON text itself too, unescaped, as a hostile server would.
    echo_json = echo.replace("\\", "\\\\")
    raw_escaped = "".join(f"\\u{ord(c):04x}" for c in auth)
    header = {
        "content-type": "application/json",
        "x-echo": base64.b64encode(auth.encode()).decode(),
    }
    header["x-echo-raw"] = auth
    model = json.loads(request.body).get("model") if request.body else request.path
    if request.method == "GET" and request.path == "/v1/models":
        body = (
            '{"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "'
            + echo_json
            + '", "note": "'
            + raw_escaped
            + '"}]}'
        ).encode()
        await _send_all(conn, 200, body, header)
    elif request.method == "GET":
        body = ('{"error": {"message": "no model ' + echo_json + '", "code": "x"}}').encode()
        await _send_all(conn, 404, body, header)
    elif model == "json-401":
        body = (
            '{"error": {"message": "Incorrect API key provided: '
            + echo_json
            + " "
            + raw_escaped
            + '", "type": "auth", "code": "invalid_api_key", "param": "'
            + raw_escaped
            + '"}, "debug": "'
            + echo_json
            + '"}'
        ).encode()
        await _send_all(conn, 401, body, header)
    elif model == "html-400":
        body = f"<html><body><pre>request had {echo}</pre></body></html>".encode()
        await _send_all(conn, 400, body, {**header, "content-type": "text/html"})
    elif model == "mid-stream":
        error = '{"error": {"message": "Invalid key ' + echo_json + '", "code": "401"}}'
        body = chunk("Hello") + b"data: " + error.encode() + b"\n\n"
        await _send_all(conn, 200, body, {**header, "content-type": "text/event-stream"})
    else:
        body = chunk("Hello") + chunk(None, "stop") + b"data: [DONE]\n\n"
        await _send_all(conn, 200, body, {**header, "content-type": "text/event-stream"})


def abuse_key_echo(ctx: _Context) -> Figures:
    figures = Figures("key-echo")
    bodies: list[str] = []
    logs = ""
    peak = 0.0
    credentials = f"{URL_USER}:{URL_PASSWORD}@"
    with LoopbackServer(echoing_upstream) as up:
        setups = [
            ("key-echo-keyed", up.url.replace("//", "//" + credentials) + "/v1", True),
            ("key-echo-forwarding", up.url + "/v1", False),
        ]
        for name, upstream, keyed in setups:
            args = ["--upstream", upstream, "--log-level", "debug"]
            env = {KEY_ENV: CONFIGURED_KEY} if keyed else {}
            if keyed:
                args += ["--api-key-env", KEY_ENV]
            with (
                _serving(ctx, name, *args, env=env, all_debug=True) as server,
                httpx.Client(headers={"authorization": f"Bearer {CLIENT_KEY}"}) as client,
            ):
                for model in ("json-401", "html-400", "mid-stream", "ok"):
                    for stream in (True, False):
                        body = {"model": model, "input": "hi", "stream": stream}
                        bodies.append(_sse_get(client, server.url, body, figures))
                for path in ("/v1/models", "/v1/models/some-model"):
                    response = client.get(server.url + path, timeout=HANG_SECONDS)
                    figures.count(response.status_code)
                    bodies.append(f"{response.status_code} {response.headers} {response.text}")
                peak = max(peak, server.peak_rss_mb())
                time.sleep(0.2)
            logs += server.output()
    leaks = sorted(set(find_leaks("\n".join(bodies)) + find_leaks(logs)))
    echoed = "\n".join(bodies).count("***")
    if leaks:
        figures.problems.append(f"leaked: {leaks}")
    if "DEBUG:" not in logs or "HTTP Request:" not in logs:
        figures.problems.append("the server did not log at DEBUG: nothing was checked")
    figures.peak_rss_mb = peak
    figures.extra = {"leaks": len(leaks), "masked": echoed, "log_lines": logs.count("\n")}
    return figures


# -- bombs ----------------------------------------------------------------------------------------


def _bomb_size(ctx: _Context) -> int:
    return (128 if ctx.quick else 1024) << 20


def abuse_gzip_bomb_error(ctx: _Context) -> Figures:
    figures = Figures("gzip-bomb-error")
    bomb = gzip_bomb(b'{"error": {"message": "', _bomb_size(ctx))

    async def upstream(request: Request, conn: Conn) -> None:
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        await _send_all(conn, 400, bomb, headers)

    with (
        LoopbackServer(upstream) as up,
        _serving(ctx, "gzip-bomb-error", "--upstream", up.url + "/v1") as server,
        httpx.Client() as client,
    ):
        for stream in (False, True, False, True):
            text = _sse_get(
                client, server.url, {"model": "m", "input": "x", "stream": stream}, figures
            )
            if text and "upstream returned HTTP 400" not in text:
                figures.problems.append(f"unexpected answer {text[:200]!r}")
        _raw_count(server.port, "/v1/models/m", figures)
        figures.peak_rss_mb = server.peak_rss_mb()
    figures.extra = {"inflated_mib": _bomb_size(ctx) >> 20, "compressed_kib": len(bomb) >> 10}
    return figures


def abuse_gzip_bomb_sse(ctx: _Context) -> Figures:
    figures = Figures("gzip-bomb-sse")
    bomb = gzip_bomb(chunk("Hello") + b'data: {"x": "', _bomb_size(ctx))

    async def upstream(request: Request, conn: Conn) -> None:
        headers = {"content-type": "text/event-stream", "content-encoding": "gzip"}
        await _send_all(conn, 200, bomb, headers)

    with (
        LoopbackServer(upstream) as up,
        _serving(ctx, "gzip-bomb-sse", "--upstream", up.url + "/v1") as server,
        httpx.Client() as client,
    ):
        for stream in (True, False):
            text = _sse_get(
                client, server.url, {"model": "m", "input": "x", "stream": stream}, figures
            )
            if text and "failed" not in text:
                figures.problems.append(f"not failed: {text[:300]!r}")
        figures.peak_rss_mb = server.peak_rss_mb()
    figures.extra = {"inflated_mib": _bomb_size(ctx) >> 20, "compressed_kib": len(bomb) >> 10}
    return figures


# -- slow upstreams -------------------------------------------------------------------------------


def _slow_abuse(ctx: _Context, name: str, drip: Callable[[Conn], Any]) -> Figures:
    figures = Figures(name)

    async def upstream(request: Request, conn: Conn) -> None:
        await conn.head()
        await conn.send(chunk("Hello"))
        await drip(conn)

    deadline = 1.0 if ctx.quick else 2.0
    slowest = 0.0
    with (
        LoopbackServer(upstream) as up,
        _serving(
            ctx, name, "--upstream", up.url + "/v1", "--upstream-deadline", str(deadline)
        ) as server,
        httpx.Client() as client,
    ):
        for stream in (True, False):
            started = time.monotonic()
            text = _sse_get(
                client, server.url, {"model": "m", "input": "x", "stream": stream}, figures
            )
            slowest = max(slowest, time.monotonic() - started)
            if text and not ("failed" in text and "Hello" in text and "upstream-deadline" in text):
                figures.problems.append(f"{name} stream={stream}: {text[-400:]!r}")
        figures.peak_rss_mb = server.peak_rss_mb()
    figures.extra = {"deadline_s": deadline, "slowest_s": round(slowest, 2)}
    return figures


async def _drip_bytes(conn: Conn) -> None:
    frame = chunk(" more")
    while True:
        for i in range(len(frame)):
            await conn.send(frame[i : i + 1])
            await asyncio.sleep(0.2)


async def _drip_comments(conn: Conn) -> None:
    while True:
        await conn.send(b": keepalive\n\n")
        await asyncio.sleep(0.05)


def abuse_dripping(ctx: _Context) -> Figures:
    return _slow_abuse(ctx, "dripping", _drip_bytes)


def abuse_comment_only(ctx: _Context) -> Figures:
    return _slow_abuse(ctx, "comment-only", _drip_comments)


# -- nested error bodies --------------------------------------------------------------------------


def abuse_nested_error(ctx: _Context) -> Figures:
    figures = Figures("nested-error")
    bodies = {
        "brackets": b"[" * 100_000,
        "objects": b'{"error": ' * 50_000 + b"1" + b"}" * 50_000,
        "error-list": b'{"error": {"message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
    }

    async def upstream(request: Request, conn: Conn) -> None:
        kind = json.loads(request.body)["model"] if request.body else "brackets"
        await _send_all(conn, 422, bodies[kind], {"content-type": "application/json"})

    with (
        LoopbackServer(upstream) as up,
        _serving(ctx, "nested-error", "--upstream", up.url + "/v1") as server,
        httpx.Client() as client,
    ):
        for kind in bodies:
            for stream in (True, False):
                body = {"model": kind, "input": "x", "stream": stream}
                text = _sse_get(client, server.url, body, figures)
                if text and "HTTP 422" not in text:
                    figures.problems.append(f"{kind}: {text[:200]!r}")
        status = _raw_count(server.port, "/v1/models/m", figures)
        if status != 422:
            figures.problems.append(f"models: {status}")
        figures.peak_rss_mb = server.peak_rss_mb()
        if "Traceback" in server.output():
            figures.problems.append("a traceback was logged")
    return figures


# -- connection reuse -----------------------------------------------------------------------------


def reuse_upstream(same_write: bool) -> Callable[[Request, Conn], Any]:
    """A keep-alive upstream whose chunked body ends with ``[DONE]`` (same write, or 1 ms later)."""

    async def upstream(request: Request, conn: Conn) -> bool:
        await conn.head()
        frames = chunk("Hello") + chunk(" world") + chunk(None, "stop") + b"data: [DONE]\n\n"
        if same_write:
            await conn.raw(b"%x\r\n%s\r\n0\r\n\r\n" % (len(frames), frames))
        else:
            await conn.send(frames)
            await asyncio.sleep(0.001)
            await conn.end()
        return True

    return upstream


def run_reuse(url: str, streams: int, figures: Figures) -> list[float]:
    """``streams`` sequential streams; the seconds each took."""
    took: list[float] = []
    body = {"model": "m", "input": "hi", "stream": True}
    with httpx.Client() as client:
        for _ in range(streams):
            started = time.monotonic()
            text = _sse_get(client, url, body, figures)
            took.append(time.monotonic() - started)
            if text and "response.completed" not in text:
                figures.problems.append(f"not completed: {text[-300:]!r}")
                break
            if not text:
                break
    return took


def _reuse_abuse(ctx: _Context, name: str, same_write: bool) -> Figures:
    figures = Figures(name)
    streams = ctx.streams or (100 if ctx.quick else 1000)
    with (
        LoopbackServer(reuse_upstream(same_write), reuse=True) as up,
        _serving(ctx, name, "--upstream", up.url + "/v1", "--no-access-log") as server,
    ):
        run_reuse(server.url, streams, figures)
        after = run_reuse(server.url, 20, figures)
        time.sleep(0.2)
        figures.peak_rss_mb = server.peak_rss_mb()
        figures.extra = {
            "upstream_conns": up.connections_total,
            "open_now": up.open_connections,
            "last20_max_ms": round(max(after, default=0) * 1000, 1),
        }
        if up.connections_total > 10:
            figures.problems.append(f"{up.connections_total} upstream connections were opened")
    return figures


def abuse_reuse_same_write(ctx: _Context) -> Figures:
    return _reuse_abuse(ctx, "conn-reuse-same-write", True)


def abuse_reuse_after(ctx: _Context) -> Figures:
    return _reuse_abuse(ctx, "conn-reuse-after", False)


ABUSES: dict[str, Callable[[_Context], Figures]] = {
    "path-tricks": abuse_path_tricks,
    "key-echo": abuse_key_echo,
    "gzip-bomb-error": abuse_gzip_bomb_error,
    "gzip-bomb-sse": abuse_gzip_bomb_sse,
    "dripping": abuse_dripping,
    "comment-only": abuse_comment_only,
    "nested-error": abuse_nested_error,
    "conn-reuse-same-write": abuse_reuse_same_write,
    "conn-reuse-after": abuse_reuse_after,
}


def run_abuse(
    name: str,
    logdir: Path,
    *,
    quick: bool = True,
    server_path: str | None = None,
    streams: int | None = None,
) -> Figures:
    """Run one abuse (a key of :data:`ABUSES`) and return its figures.

    ``streams`` overrides the number of streams of the ``conn-reuse-*`` abuses.
    """
    return ABUSES[name](_Context(logdir, quick, server_path, streams))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (about 30 s)")
    parser.add_argument("--only", action="append", choices=sorted(ABUSES), help="run only these")
    parser.add_argument(
        "--server-path", help="run the server from this checkout (compare before/after)"
    )
    parser.add_argument("--verbose", action="store_true", help="print each problem found")
    args = parser.parse_args(argv)
    failed = False
    with tempfile.TemporaryDirectory(prefix="attack-upstream-") as tmp:
        for name in args.only or list(ABUSES):
            started = time.monotonic()
            try:
                figures = run_abuse(name, Path(tmp), quick=args.quick, server_path=args.server_path)
            except Exception as exc:  # e.g. an older server without an option: say so, go on
                print(f"abuse={name} error={type(exc).__name__}: {str(exc)[-300:]!r}", flush=True)
                failed = True
                continue
            figures.extra["seconds"] = round(time.monotonic() - started, 1)
            if figures.problems:
                figures.extra["problems"] = len(figures.problems)
            print(figures.line(), flush=True)
            if args.verbose:
                for problem in figures.problems[:10]:
                    print(f"    {problem[:500]}")
            failed |= not figures.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

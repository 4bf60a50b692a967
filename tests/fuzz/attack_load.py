"""Attack harness (issue 17, resources): what keeps ``rxresponses serve`` alive under many, slow,
vanishing or stalled clients and endless upstreams.

Usage (from the repository root)::

    .venv/bin/python tests/fuzz/attack_load.py            # full run, about 3 min
    .venv/bin/python tests/fuzz/attack_load.py --quick    # about 30 s
    .venv/bin/python tests/fuzz/attack_load.py --only churn,stalled

Every abuse starts a fresh ``python -m rxresponses serve --upstream ...`` process on 127.0.0.1 (so
its peak RSS, ``VmHWM`` from ``/proc/PID/status``, belongs to that abuse alone) in front of a fake
Chat upstream (a raw asyncio HTTP server in its own process, :mod:`tests.fuzz.loopback`), attacks
it with raw asyncio sockets, and prints one line::

    abuse=<name> requests=<N> 5xx=<N> hangs=<N> peak_rss_mb=<MiB> <figures...>

The abuses:

* ``churn``: 300 clients open a stream, read until its first text delta, drop the connection, and
  start again, for 30 s, while ``/health`` is probed every 0.2 s; then the server's open file
  descriptors and the upstream's open connections must come back near their baseline within 10 s.
  Requests beyond ``--max-concurrent-streams`` are answered 429 at once (counted, not a 5xx).
* ``slowloris``: 1,200 connections, half dripping their headers, half their body (one byte every
  2 s); the server runs with ``--client-header-timeout 5 --client-body-timeout 5``. All must be
  closed by the server; figures: when, and ``/health`` during the attack.
* ``stalled``: 20 clients send a request and read nothing for 45 s, against an upstream that
  streams as fast as it can. The upstream must stop being read (backpressure): figures are the
  upstream bytes sent per stream and their growth over the last 10 s.
* ``endless_text`` / ``endless_tools``: one client reads everything of an endless upstream (1 KiB
  text deltas / a new tool call per chunk); the stream must end ``response.failed`` at
  ``--max-stream-bytes`` (default 64 MiB) with bounded memory.
* ``silent``: the upstream says nothing for 4 s (before its headers, or after them); the client
  must get ``response.created`` at once, and keep-alive comments (``--keepalive-seconds 1``).

A "hang" is a request with no complete answer within its deadline (10 s for anything expected to
answer). The script exits 1 when any 5xx or hang is seen, or a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``tests.fuzz`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.loopback import Conn, LoopbackServer, Request

__all__ = [
    "Proxy",
    "Upstream",
    "churn",
    "endless",
    "silent",
    "slowloris",
    "stalled",
]

ROOT = Path(__file__).resolve().parents[2]
HANG_SECONDS = 10.0
REQUEST_BODY = json.dumps({"model": "attack-model", "input": "hello", "stream": True}).encode()


# -- the fake upstream (its own process) ----------------------------------------------------------


def _frame(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-attack",
        "object": "chat.completion.chunk",
        "created": 1_750_000_000,
        "model": "attack-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


_TEXT_1K = _frame({"content": "x" * 1000})


def _tool_frame(k: int) -> bytes:
    call = {
        "index": k,
        "id": f"call_{k}",
        "type": "function",
        "function": {"name": "f", "arguments": '{"a":"' + "y" * 1000 + '"}'},
    }
    return _frame({"tool_calls": [call]})


class _Counters:
    def __init__(self) -> None:
        self.bytes_sent = 0


def _handler(kind: str, counters: _Counters) -> Callable[[Request, Conn], Awaitable[bool | None]]:
    """The upstream behaviours the abuses need (see the module docstring)."""

    async def send(conn: Conn, data: bytes) -> None:
        await conn.send(data)
        counters.bytes_sent += len(data) + 8

    async def handler(request: Request, conn: Conn) -> bool | None:
        if request.path.endswith("/models"):
            body = b'{"object":"list","data":[]}'
            await conn.head(
                200, {"content-type": "application/json"}, framing="length", length=len(body)
            )
            await conn.raw(body)
            return True
        if kind == "silent_head" and await conn.stall(4.0):
            return None
        await conn.head()
        conn.watch_peer()
        await send(conn, _frame({"role": "assistant", "content": ""}))
        deadline = time.monotonic() + 120
        if kind in ("silent_head", "silent_body"):
            if kind == "silent_body" and await conn.stall(4.0):
                return None
            await send(conn, _frame({"content": "after the silence"}))
            await send(conn, _frame({}, "stop") + b"data: [DONE]\n\n")
            await conn.end()
            return None
        k = 0
        while not conn.peer_closed.is_set() and time.monotonic() < deadline:
            if kind == "paced":  # churn: 20 chunks/s per stream, a fast model
                await send(conn, _frame({"content": f"tick {k} "}))
                await asyncio.sleep(0.05)
            elif kind == "tools":
                await send(conn, _tool_frame(k))
            else:  # "fast": 1 KiB text deltas as fast as the reader takes them
                await send(conn, _TEXT_1K)
            k += 1
        return None

    return handler


def _upstream_main(kind: str, port_q: Any, stats: Any, stop: Any) -> None:
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # writes to reset peers: expected
    counters = _Counters()
    with LoopbackServer(_handler(kind, counters), backlog=4096, reuse=True) as server:
        port_q.put(server.port)
        while not stop.wait(0.05):
            stats[0] = server.open_connections
            stats[1] = counters.bytes_sent
            stats[2] = server.connections_total


class Upstream:
    """The fake upstream in a child process; :attr:`open_connections`, :attr:`bytes_sent` live."""

    def __init__(self, kind: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._port_q = ctx.Queue()
        self._stats = ctx.Array("q", 3)
        self._stop = ctx.Event()
        self._proc = ctx.Process(
            target=_upstream_main, args=(kind, self._port_q, self._stats, self._stop), daemon=True
        )
        self.url = ""

    def __enter__(self) -> Upstream:
        self._proc.start()
        self.url = f"http://127.0.0.1:{self._port_q.get(timeout=30)}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._proc.join(15)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)

    @property
    def open_connections(self) -> int:
        return int(self._stats[0])

    @property
    def bytes_sent(self) -> int:
        return int(self._stats[1])

    @property
    def connections_total(self) -> int:
        return int(self._stats[2])


# -- the proxy (its own process) ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Proxy:
    """``python -m rxresponses serve --upstream ... <options>`` on a free port."""

    def __init__(self, upstream_url: str, *options: str) -> None:
        self.port = _free_port()
        self.options = options
        self.upstream_url = upstream_url
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Proxy:
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "rxresponses", "serve"),
                *("--upstream", self.upstream_url + "/v1", "--port", str(self.port)),
                *("--log-level", "error", "--no-access-log", *self.options),
            ],
            cwd=tempfile.mkdtemp(prefix="rxresponses-serve-"),  # its own store, as in a new folder
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the proxy exited with {self.proc.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as s,
            ):
                s.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return self
            time.sleep(0.05)
        raise TimeoutError("the proxy did not become healthy")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def status(self, key: str) -> int:
        """A ``/proc/PID/status`` figure in kB (``VmHWM``, ``VmRSS``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    @property
    def peak_rss_mb(self) -> float:
        return self.status("VmHWM") / 1024

    @property
    def rss_mb(self) -> float:
        return self.status("VmRSS") / 1024

    @property
    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    @property
    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- clients (raw asyncio sockets: cheap, and they can misbehave) ---------------------------------


def _post(body: bytes = REQUEST_BODY, path: str = "/v1/responses") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Tally:
    """Answers by status, hangs, and free-form figures of one abuse."""

    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    hangs: int = 0
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def status(self, code: int) -> None:
        self.statuses[code] = self.statuses.get(code, 0) + 1

    @property
    def errors_5xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)

    def line(self, name: str, proxy: Proxy | float) -> str:
        """The harness line; ``proxy`` gives the peak RSS (or is it, in MiB)."""
        rss = proxy.peak_rss_mb if isinstance(proxy, Proxy) else proxy
        extra = " ".join(f"{k}={v}" for k, v in self.figures.items())
        return (
            f"abuse={name} requests={self.requests} 5xx={self.errors_5xx} hangs={self.hangs} "
            f"peak_rss_mb={rss:.1f} {extra}"
        ).rstrip()

    @property
    def ok(self) -> bool:
        return self.errors_5xx == 0 and self.hangs == 0 and not self.problems


async def _status_line(reader: asyncio.StreamReader) -> int:
    line = await reader.readline()
    parts = line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0


def _probe_main(port: int, interval: float, stop: Any, out: Any) -> None:
    """``GET /health`` on a new connection every ``interval`` s until ``stop``; results to ``out``.

    A process of its own, so the latencies are the server's, not the attacking clients' loop's.
    """
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    failures = 0
    while not stop.wait(interval):
        began = time.monotonic()
        status = 0
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=HANG_SECONDS) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                head = sock.recv(64)
                parts = head.split()
                status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
                while sock.recv(65536):
                    pass
        except OSError:
            failures += 1
        else:
            statuses[status] = statuses.get(status, 0) + 1
            if status != 200:
                failures += 1
        latencies.append(time.monotonic() - began)
    out.put((latencies, statuses, failures))


class HealthProbe:
    """``GET /health`` on a new connection every ``interval`` s (in a child process)."""

    def __init__(self, port: int, interval: float = 0.2) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._out = ctx.Queue()
        self._proc = ctx.Process(
            target=_probe_main, args=(port, interval, self._stop, self._out), daemon=True
        )
        self.latencies: list[float] = []
        self.failures = 0
        self.statuses: dict[int, int] = {}

    def start(self) -> HealthProbe:
        self._proc.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.latencies, self.statuses, self.failures = self._out.get(timeout=HANG_SECONDS + 5)
        self._proc.join(5)

    @property
    def worst_ms(self) -> float:
        return max(self.latencies, default=0.0) * 1000

    def over(self, seconds: float) -> int:
        return sum(1 for v in self.latencies if v > seconds)


# -- abuses ---------------------------------------------------------------------------------------


async def _churn_client(port: int, until: float, tally: Tally, pause: float) -> None:
    while time.monotonic() < until:
        tally.requests += 1
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(HANG_SECONDS):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(_post())
                status = await _status_line(reader)
                tally.status(status)
                if status == 200:
                    seen = b""
                    while b"output_text.delta" not in seen:
                        data = await reader.read(65536)
                        if not data:
                            break
                        seen = seen[-64:] + data
                else:
                    await reader.read()
                    await asyncio.sleep(pause)  # a refused client comes back
        except TimeoutError:
            tally.hangs += 1
        except OSError:
            tally.status(-1)
        finally:
            if writer is not None:
                writer.transport.abort()  # drop mid-stream


def churn(
    clients: int = 300,
    seconds: float = 30.0,
    *options: str,
    health_bound: float = 1.0,
    retry_pause: float = 0.05,
) -> tuple[bool, str]:
    """300 clients connecting and dropping mid-stream; /health (within ``health_bound`` s at
    every probe), fds and upstream connections (near their baseline within 10 s after).

    A client refused with 429 comes back after ``retry_pause`` s: 0.05 ignores ``Retry-After``
    (abusive), 1.0 honours it (as the OpenAI SDKs do)."""
    tally = Tally()
    with Upstream("paced") as upstream, Proxy(upstream.url, *options) as proxy:
        fd_base = proxy.fds
        up_base = upstream.open_connections

        async def attack() -> HealthProbe:
            probe = HealthProbe(proxy.port).start()
            until = time.monotonic() + seconds
            peak_fd = peak_up = 0

            async def sample() -> None:
                nonlocal peak_fd, peak_up
                while True:
                    peak_fd = max(peak_fd, proxy.fds)
                    peak_up = max(peak_up, upstream.open_connections)
                    await asyncio.sleep(0.2)

            sampler = asyncio.get_running_loop().create_task(sample())
            cpu_start = proxy.cpu_seconds
            await asyncio.gather(
                *(_churn_client(proxy.port, until, tally, retry_pause) for _ in range(clients))
            )
            tally.figures["cpu_during"] = f"{(proxy.cpu_seconds - cpu_start) / seconds:.0%}"
            # After the churn: /health keeps being probed while the server settles.
            cpu0, t0 = proxy.cpu_seconds, time.monotonic()
            settled = None
            while time.monotonic() - t0 < 10:
                if proxy.fds <= fd_base + 5 and upstream.open_connections <= up_base + 5:
                    settled = time.monotonic() - t0
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(max(0.0, 2 - (time.monotonic() - t0)))
            cpu_after = (proxy.cpu_seconds - cpu0) / (time.monotonic() - t0)
            probe.stop()
            sampler.cancel()
            tally.figures.update(
                fd_base=fd_base,
                fd_peak=peak_fd,
                fd_after=proxy.fds,
                upstream_conns_peak=peak_up,
                upstream_conns_after=upstream.open_connections,
                settled_s="never" if settled is None else f"{settled:.1f}",
                cpu_after=f"{cpu_after:.0%}",
            )
            if settled is None:
                tally.problems.append("fds/connections not back near baseline within 10 s")
            return probe

        probe = asyncio.run(attack())
        tally.figures.update(
            clients=clients,
            seconds=seconds,
            ok200=tally.statuses.get(200, 0),
            refused429=tally.statuses.get(429, 0),
            health_probes=len(probe.latencies),
            health_max_ms=f"{probe.worst_ms:.0f}",
            health_over_bound=probe.over(health_bound),
            health_failed=probe.failures,
            upstream_requests=upstream.connections_total,
        )
        if probe.over(health_bound) or probe.failures:
            tally.problems.append(f"/health slower than {health_bound} s or failed")
        name = "churn" if retry_pause < 1 else "churn_polite"
        return tally.ok, tally.line(name, proxy)


async def _drip(port: int, head: bytes, body_length: int, hold: float, closed: list[float]) -> None:
    """Send ``head`` a byte every 2 s (or whole, then the body a byte every 2 s)."""
    began = time.monotonic()
    with contextlib.suppress(OSError):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        pieces = [head[i : i + 1] for i in range(len(head))] if not body_length else [head]
        pieces += [b"{"] + [b" "] * (body_length - 1) if body_length else []
        eof = asyncio.get_running_loop().create_task(reader.read())
        try:
            for i, piece in enumerate(pieces):
                writer.write(piece)
                if i == 0 and body_length:
                    continue
                done, _ = await asyncio.wait({eof}, timeout=2.0)
                if done or time.monotonic() - began > hold:
                    break
            if not eof.done():
                await asyncio.wait({eof}, timeout=max(0.0, hold - (time.monotonic() - began)))
            if eof.done():
                closed.append(time.monotonic() - began)
        finally:
            eof.cancel()
            writer.transport.abort()


def slowloris(connections: int = 1200, hold: float = 20.0, *options: str) -> tuple[bool, str]:
    """Half the connections drip their headers, half their body."""
    tally = Tally()
    with (
        Upstream("fast") as upstream,
        Proxy(
            upstream.url, "--client-body-timeout", "5", "--client-header-timeout", "5", *options
        ) as proxy,
    ):

        async def attack() -> tuple[list[float], list[float], HealthProbe, int]:
            probe = HealthProbe(proxy.port, 0.5).start()
            head_closed: list[float] = []
            body_closed: list[float] = []
            head = _post().split(b"\r\n\r\n")[0] + b"\r\n\r\n"
            body_head = _post(b"{" + b" " * 9999).split(b"\r\n\r\n")[0] + b"\r\n\r\n"
            peak_fd = 0

            async def sample() -> None:
                nonlocal peak_fd
                while True:
                    peak_fd = max(peak_fd, proxy.fds)
                    await asyncio.sleep(0.2)

            sampler = asyncio.get_running_loop().create_task(sample())
            tasks = []
            for i in range(connections):
                if i % 2:
                    tasks.append(_drip(proxy.port, body_head, 10_000, hold, body_closed))
                else:
                    tasks.append(_drip(proxy.port, head, 0, hold, head_closed))
                if i % 100 == 99:
                    await asyncio.sleep(0.05)  # let the backlog drain
            await asyncio.gather(*tasks)
            probe.stop()
            sampler.cancel()
            return head_closed, body_closed, probe, peak_fd

        head_closed, body_closed, probe, peak_fd = asyncio.run(attack())
        tally.requests = connections
        tally.figures.update(
            connections=connections,
            hold_s=hold,
            fd_peak=peak_fd,
            header_drips_closed=f"{len(head_closed)}/{connections // 2}",
            body_drips_closed=f"{len(body_closed)}/{connections - connections // 2}",
            body_closed_after_s=f"{max(body_closed, default=0):.1f}",
            health_max_ms=f"{probe.worst_ms:.0f}",
            health_non200=probe.failures,
            health_statuses=",".join(f"{k}:{v}" for k, v in sorted(probe.statuses.items())),
        )
        if len(body_closed) < connections // 2 - 5:
            tally.problems.append("body drips were not closed by the body timeout")
        if len(head_closed) < connections // 2 - 5:
            tally.problems.append("header drips were not closed by the header timeout")
        # /health answering 503 while more than --max-client-connections are held is the
        # documented behaviour (uvicorn's limit_concurrency), not a hang; it is reported.
        return tally.ok, tally.line("slowloris", proxy)


async def _stall_client(port: int, hold: float, tally: Tally) -> None:
    tally.requests += 1
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, _post())
        await asyncio.sleep(hold)  # read nothing
    finally:
        sock.close()


def stalled(clients: int = 20, hold: float = 45.0, *options: str) -> tuple[bool, str]:
    """Clients that read nothing, against an upstream streaming as fast as it can."""
    tally = Tally()
    with Upstream("fast") as upstream, Proxy(upstream.url, *options) as proxy:
        samples: list[tuple[float, int]] = []

        async def attack() -> None:
            async def sample() -> None:
                while True:
                    samples.append((time.monotonic(), upstream.bytes_sent))
                    await asyncio.sleep(0.5)

            sampler = asyncio.get_running_loop().create_task(sample())
            await asyncio.gather(*(_stall_client(proxy.port, hold, tally) for _ in range(clients)))
            sampler.cancel()

        asyncio.run(attack())
        end_t, end_b = samples[-1]
        before = [b for t, b in samples if t <= end_t - min(10.0, hold / 3)]
        growth = end_b - (before[-1] if before else 0)
        tally.figures.update(
            clients=clients,
            hold_s=hold,
            upstream_mb=f"{end_b / 2**20:.1f}",
            per_stream_kb=f"{end_b / clients / 1024:.0f}",
            last_10s_growth_kb=f"{growth / 1024:.0f}",
        )
        if growth > clients * 256 * 1024:
            tally.problems.append("the upstream kept being read for a stalled client")
        return tally.ok, tally.line("stalled", proxy)


async def _read_all(port: int, timeout: float) -> tuple[int, set[bytes], float]:
    """One streaming request read to its end: status, which ``MARKS`` were seen, seconds."""
    began = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    seen: set[bytes] = set()
    try:
        async with asyncio.timeout(timeout):
            writer.write(_post())
            status = await _status_line(reader)
            tail = b""
            while data := await reader.read(2**20):
                window = tail + data
                seen.update(mark for mark in _MARKS if mark in window)
                tail = window[-256:]
                if tail.endswith(b"0\r\n\r\n"):
                    break
    finally:
        writer.transport.abort()
    return status, seen, time.monotonic() - began


_MARKS = (b"event: response.failed", b"max_stream_bytes", b"event: response.completed")


def endless(kind: str = "fast", *options: str, timeout: float = 120.0) -> tuple[bool, str]:
    """A reading client against an endless upstream: the stream must end at the size cap."""
    name = "endless_tools" if kind == "tools" else "endless_text"
    tally = Tally(requests=1)
    with Upstream(kind) as upstream, Proxy(upstream.url, *options) as proxy:
        try:
            status, seen, seconds = asyncio.run(_read_all(proxy.port, timeout))
        except TimeoutError:
            tally.hangs += 1
            return False, tally.line(name, proxy)
        tally.status(status)
        ended_failed = {b"event: response.failed", b"max_stream_bytes"} <= seen
        tally.figures.update(
            upstream_mb=f"{upstream.bytes_sent / 2**20:.1f}",
            seconds=f"{seconds:.1f}",
            ended="failed:max_stream_bytes" if ended_failed else "OTHER",
            rss_per_upstream_mb=f"{proxy.peak_rss_mb / max(1, upstream.bytes_sent / 2**20):.2f}",
        )
        if not ended_failed:
            tally.problems.append("the stream did not end response.failed at max_stream_bytes")
            tally.figures["seen"] = repr(sorted(seen))
        return tally.ok, tally.line(name, proxy)


async def _first_event(port: int) -> tuple[float, float, int, int]:
    """Seconds to ``response.created``, to the whole stream, keep-alive comments seen, status."""
    began = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    first = -1.0
    body = b""
    try:
        async with asyncio.timeout(HANG_SECONDS + 5):
            writer.write(_post())
            status = await _status_line(reader)
            while data := await reader.read(65536):
                body += data
                if first < 0 and b"response.created" in body:
                    first = time.monotonic() - began
                if b"event: response.completed" in body and body.endswith(b"0\r\n\r\n"):
                    break
    finally:
        writer.transport.abort()
    return first, time.monotonic() - began, body.count(b": keep-alive"), status


def silent(*options: str) -> tuple[bool, str]:
    """A 4 s silent upstream (before its headers, then after them): time to the first event."""
    tally = Tally()
    figures: dict[str, str] = {}
    peak_rss = 0.0
    for kind in ("silent_head", "silent_body"):
        with (
            Upstream(kind) as upstream,
            Proxy(upstream.url, "--keepalive-seconds", "1", *options) as proxy,
        ):
            tally.requests += 1
            try:
                first, total, comments, status = asyncio.run(_first_event(proxy.port))
            except TimeoutError:
                tally.hangs += 1
                continue
            tally.status(status)
            short = kind.removeprefix("silent_")
            figures[f"{short}_first_event_ms"] = f"{first * 1000:.0f}"
            figures[f"{short}_total_s"] = f"{total:.1f}"
            figures[f"{short}_keepalives"] = str(comments)
            if not 0 <= first < 1.0:
                tally.problems.append(f"{kind}: response.created after {first:.2f} s")
            if comments < 2:
                tally.problems.append(f"{kind}: {comments} keep-alive comments in 4 s")
            peak_rss = max(peak_rss, proxy.peak_rss_mb)
    tally.figures.update(figures)
    return tally.ok, tally.line("silent", peak_rss)


# -- the run --------------------------------------------------------------------------------------


def scenarios(quick: bool) -> dict[str, Callable[[], tuple[bool, str]]]:
    cap = ("--max-stream-bytes", str(8 * 2**20)) if quick else ()
    return {
        "churn": lambda: churn(150, 5.0) if quick else churn(300, 30.0),
        "churn_polite": lambda: (
            churn(150, 5.0, retry_pause=1.0) if quick else churn(300, 30.0, retry_pause=1.0)
        ),
        "slowloris": lambda: slowloris(300, 8.0) if quick else slowloris(1200, 20.0),
        "stalled": lambda: stalled(5, 8.0) if quick else stalled(20, 45.0),
        "endless_text": lambda: endless("fast", *cap),
        "endless_tools": lambda: endless("tools", *cap),
        "silent": lambda: silent(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about 30 s)")
    parser.add_argument("--only", default="", help="comma-separated abuses to run")
    args = parser.parse_args(argv)
    chosen = scenarios(args.quick)
    if args.only:
        names = args.only.split(",")
        unknown = [n for n in names if n not in chosen]
        if unknown:
            parser.error(f"unknown abuse(s): {', '.join(unknown)}; known: {', '.join(chosen)}")
        chosen = {n: chosen[n] for n in names}
    all_ok = True
    for name, run in chosen.items():
        began = time.monotonic()
        try:
            ok, line = run()
        except Exception as exc:  # a broken harness run is a failure, reported on its line
            ok, line = False, f"abuse={name} ERROR {type(exc).__name__}: {exc}"
        all_ok &= ok
        print(f"{line} run_s={time.monotonic() - began:.0f}{'' if ok else ' FAILED'}", flush=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    threading.current_thread().name = "attack_load"
    sys.exit(main())

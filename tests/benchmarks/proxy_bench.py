"""The proxy's cost per streamed token: ``rxresponses serve`` against the upstream read directly
and against LiteLLM's proxy, on the same fake Chat upstream, in one run (issue 13).

    python tests/benchmarks/proxy_bench.py                  # ~6 min: 3 rounds, every target
    python tests/benchmarks/proxy_bench.py --quick          # ~1 min: 1 round, smaller streams
    python tests/benchmarks/proxy_bench.py --baseline-python /path/to/other/venv/bin/python \\
        --baseline-src /path/to/other/checkout              # "before" and "after" in one run
    python tests/benchmarks/proxy_bench.py --litellm-python /path/to/venv/bin/python

One process tree on 127.0.0.1: this process (the client), a fake Chat upstream (a raw asyncio
HTTP/1.1 server, a child process running this file with ``--upstream-process``) and one server
process per target, all started once and kept for the whole run:

* ``direct``: the client reads the upstream's Chat stream itself (the floor; its CPU column is
  the upstream's own cost);
* ``serve``: ``rxresponses serve --store none`` of this checkout (the proxy alone);
* ``serve+sqlite``: the same with the default store (every response and its event log stored in a
  SQLite file);
* ``base``: ``rxresponses serve --store none`` run by ``--baseline-python`` (with
  ``--baseline-src`` first on its path), e.g. the main branch, for before/after ratios;
* ``serve-w2``: ``--workers 2`` (with ``--workers``);
* ``litellm``: LiteLLM's proxy (``pip install -e '.[bench-proxy]'``, ``litellm[proxy]==1.83.0``)
  answering ``/v1/responses`` over a ``custom_openai/`` (Chat Completions) model on the same
  upstream; skipped, saying so, when no interpreter with ``litellm.proxy`` is found.

Scenarios: 1, 50 and 200 concurrent streams, each either as fast as possible (the upstream writes
chunk after chunk) or paced (one chunk per TCP write every ``--interval-ms``, 20 ms by default:
50 tokens/s per stream, as a model sends them; each stream starts at its own phase). Every round
runs every scenario against every target, in an order that rotates, so the noise of a shared
machine falls on all of them alike; the table shows medians over the rounds.

What is measured, per scenario and target:

* chunks/s: content deltas received by the client per second of the scenario's wall time;
* server CPU per chunk: user + system CPU time of the server process and its children (from
  ``/proc``), divided by the chunks; for ``direct``, the upstream's;
* latency per delta: the upstream writes ``{k:04d}@{CLOCK_MONOTONIC ns};`` as the content of
  chunk k just before the write; the client timestamps the network read that completes the delta
  carrying it. ``added`` is that latency minus ``direct``'s (percentiles of the same round);
* time to first event (the first SSE frame of the answer) and to the first delta, from the moment
  the request was written;
* a check of every stream: the deltas are chunks 0..n-1 in order, their text equals what the
  upstream sent (SHA-256, from the upstream's record), the terminal event's text equals the
  deltas, ``sequence_number`` is 0, 1, 2... and there is exactly one terminal event, last.

One client implementation for every target (:class:`_Stream`: an ``asyncio.Protocol`` that only
appends each network read with its arrival time; everything is decoded and checked after the
scenario), so the client costs the same whatever it reads.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------------------------
# The fake upstream (runs in a child process: python proxy_bench.py --upstream-process PORTFILE)
# ------------------------------------------------------------------------------------------------

_CHUNK_HEAD = (
    b'{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1750000000,'
    b'"model":"bench","choices":[{"index":0,"delta":'
)
_CHUNK_TAIL = b',"logprobs":null,"finish_reason":null}]}'


def _frame(payload: bytes) -> bytes:
    """One SSE frame as one HTTP chunk (chunked transfer encoding)."""
    data = b"data: " + payload + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def _delta(content: str) -> bytes:
    return _frame(_CHUNK_HEAD + json.dumps({"content": content}).encode() + _CHUNK_TAIL)


_FINISH = _frame(
    b'{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1750000000,'
    b'"model":"bench","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}'
)
_END = _frame(b"[DONE]") + b"0\r\n\r\n"


class _Upstream:
    """A Chat Completions server: the last user message says ``"<id> <chunks> <interval_ms>"``."""

    def __init__(self) -> None:
        self.digests: dict[str, str] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                close = headers.get("connection", "").lower() == "close"
                if method == "POST" and path.endswith("/chat/completions"):
                    await self._stream(body, writer)
                elif path.endswith("/digests"):
                    data = json.dumps(self.digests).encode()
                    self.digests = {}
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        b"content-length: %d\r\n\r\n%s" % (len(data), data)
                    )
                else:  # only the Chat Completions route is served
                    data = b'{"error":{"message":"no such route","type":"not_found"}}'
                    writer.write(
                        b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n"
                        b"content-length: %d\r\n\r\n%s" % (len(data), data)
                    )
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _stream(self, body: bytes, writer: asyncio.StreamWriter) -> None:
        request = json.loads(body)
        last = request["messages"][-1]["content"]
        if isinstance(last, list):  # content parts
            last = "".join(part.get("text", "") for part in last)
        stream_id, n_text, interval_text = str(last).split()
        n, interval = int(n_text), float(interval_text) / 1000
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + _delta("")
        )
        await writer.drain()
        if interval:  # streams do not tick in step: each starts at its own phase
            await asyncio.sleep(random.Random(stream_id).uniform(0, interval))
        digest = hashlib.sha256()
        for k in range(n):
            token = f"{k:04d}@{time.monotonic_ns()};"
            writer.write(_delta(token))  # one chunk, one write
            digest.update(token.encode())
            await writer.drain()
            await asyncio.sleep(interval)  # 0: still yield, as a real server interleaves streams
        writer.write(_FINISH + _END)
        await writer.drain()
        self.digests[stream_id] = digest.hexdigest()


async def _serve_upstream(port_file: str) -> None:
    upstream = _Upstream()
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0, backlog=2048)
    port = server.sockets[0].getsockname()[1]
    Path(port_file).write_text(str(port))
    async with server:
        await server.serve_forever()


# ------------------------------------------------------------------------------------------------
# The client: one implementation for every target
# ------------------------------------------------------------------------------------------------


class _Stream(asyncio.Protocol):
    """One request on its own connection; keeps every read with its arrival time, nothing else."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.pieces: list[tuple[int, bytes]] = []
        self.sent_ns = 0
        self.done = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.sent_ns = time.monotonic_ns()
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.pieces.append((time.monotonic_ns(), data))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def _request(port: int, path: str, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    return (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer sk-bench-unused\r\naccept: text/event-stream\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


async def _run_streams(
    port: int, path: str, payloads: list[dict[str, Any]], timeout: float
) -> tuple[list[_Stream], float]:
    loop = asyncio.get_running_loop()
    streams = [_Stream(_request(port, path, p)) for p in payloads]
    began = time.monotonic()

    async def one(stream: _Stream) -> None:
        for attempt in range(20):  # a full accept backlog refuses a connection now and then
            try:
                await loop.create_connection(lambda: stream, "127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.05 * (attempt + 1))
        else:
            stream.done.set_result(None)
            return
        await stream.done

    try:
        await asyncio.wait_for(asyncio.gather(*(one(s) for s in streams)), timeout)
    except TimeoutError:
        for stream in streams:
            if stream.transport is not None:
                stream.transport.abort()
    return streams, time.monotonic() - began


# -- decoding what was read, after the scenario ---------------------------------------------------

_STAMP = re.compile(rb'"(?:delta|content)": ?"(\d{4})@(\d+);"')
_TERMINAL = frozenset({"response.completed", "response.failed", "response.incomplete"})


@dataclass
class _Checked:
    """What one stream showed once decoded."""

    latencies_ns: list[int] = field(default_factory=list)
    first_event_ns: int | None = None
    first_delta_ns: int | None = None
    deltas: int = 0
    problem: str | None = None
    no_sequence_numbers: bool = False


def _dechunk(stream: _Stream) -> tuple[int, bytes, list[tuple[int, int]]]:
    """The status, the decoded body, and ``(body offset reached, arrival ns)`` per read."""
    raw = bytearray()
    marks: list[tuple[int, int]] = []  # raw offset reached -> arrival
    for arrived, data in stream.pieces:
        raw += data
        marks.append((len(raw), arrived))
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        return 0, b"", []
    head = raw[:head_end].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    chunked = any(
        h.lower().startswith("transfer-encoding:") and "chunked" in h.lower() for h in head
    )
    pos = head_end + 4
    body = bytearray()
    spans: list[tuple[int, int]] = []  # (raw start of the data, body start)
    if not chunked:
        spans.append((pos, 0))
        body += raw[pos:]
    else:
        while pos < len(raw):
            line_end = raw.find(b"\r\n", pos)
            if line_end < 0:
                break
            size = int(raw[pos:line_end].split(b";")[0] or b"0", 16)
            if size == 0:
                break
            start = line_end + 2
            spans.append((start, len(body)))
            body += raw[start : start + size]
            pos = start + size + 2
    # Map each read's end (a raw offset) to a body offset.
    body_marks: list[tuple[int, int]] = []
    raw_starts = [s for s, _ in spans]
    for raw_end, arrived in marks:
        i = bisect.bisect_right(raw_starts, raw_end) - 1
        if i < 0:
            body_marks.append((0, arrived))
            continue
        start, body_start = spans[i]
        span_len = (spans[i + 1][1] if i + 1 < len(spans) else len(body)) - body_start
        body_marks.append((body_start + min(raw_end - start, span_len), arrived))
    return status, bytes(body), body_marks


def _check(stream: _Stream, chunks: int, chat: bool, digest: str | None) -> _Checked:
    out = _Checked()
    if not stream.pieces:
        out.problem = "no answer"
        return out
    status, body, marks = _dechunk(stream)
    if status != 200:
        out.problem = f"HTTP {status}: {body[:200]!r}"
        return out
    ends = [end for end, _ in marks]

    def arrival(offset: int) -> int:
        i = bisect.bisect_left(ends, offset)
        return marks[min(i, len(marks) - 1)][1]

    ks: list[int] = []
    for match in _STAMP.finditer(body):
        ks.append(int(match[1]))
        out.latencies_ns.append(arrival(match.end()) - int(match[2]))
    out.deltas = len(ks)
    first = body.find(b"\n\n")
    if first >= 0:
        out.first_event_ns = arrival(first + 2) - stream.sent_ns
    if ks:
        out.first_delta_ns = arrival(_STAMP.search(body).end()) - stream.sent_ns  # type: ignore[union-attr]
    text_parts: list[str] = []
    terminal: list[str] = []
    final_text: str | None = None
    sequence: list[int] = []
    for frame in re.split(rb"\r\n\r\n|\n\n|\r\r", body):
        data = b"\n".join(
            line[5:].lstrip(b" ") for line in frame.splitlines() if line.startswith(b"data:")
        )
        if not data or data == b"[DONE]":
            continue
        event = json.loads(data)
        if chat:
            for choice in event.get("choices") or ():
                content = (choice.get("delta") or {}).get("content")
                if content:
                    text_parts.append(content)
                if choice.get("finish_reason"):
                    terminal.append("finish")
            continue
        kind = event.get("type", "")
        if "sequence_number" in event:
            sequence.append(event["sequence_number"])
        else:
            out.no_sequence_numbers = True
        if kind == "response.output_text.delta":
            text_parts.append(event["delta"])
        if kind in _TERMINAL:
            terminal.append(kind)
            final_text = "".join(
                part.get("text", "")
                for item in event["response"].get("output") or ()
                if item.get("type") == "message"
                for part in item.get("content") or ()
            )
    text = "".join(text_parts)
    if ks != list(range(chunks)):
        out.problem = f"chunks lost or reordered ({len(ks)} of {chunks})"
    elif len(terminal) != 1:
        out.problem = f"{len(terminal)} terminal events"
    elif not chat and terminal[0] != "response.completed":
        out.problem = f"ended {terminal[0]}"
    elif not chat and final_text != text:
        out.problem = "the terminal event's text differs from the deltas"
    elif digest is not None and hashlib.sha256(text.encode()).hexdigest() != digest:
        out.problem = "the text differs from what the upstream sent"
    elif sequence and sequence != list(range(len(sequence))):
        out.problem = "sequence numbers not 0, 1, 2..."
    return out


# ------------------------------------------------------------------------------------------------
# Targets and processes
# ------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tree_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (Linux ``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            total += stats[current][1]
        todo += [child for child, (parent, _) in stats.items() if parent == current]
    return total


def _http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@dataclass
class Target:
    """One thing the client reads: a server process (or the upstream itself)."""

    name: str
    port: int
    path: str
    chat: bool
    process: subprocess.Popen[bytes] | None = None
    cpu_pid: int = 0
    note: str = ""

    def cpu(self) -> float:
        return _tree_cpu(self.cpu_pid)


def _start(
    name: str,
    argv: list[str],
    port: int,
    env: dict[str, str] | None = None,
    health: str = "/health",
) -> Target:
    workdir = tempfile.mkdtemp(prefix=f"proxybench-{name}-")
    log = open(Path(workdir) / "server.log", "wb")  # noqa: SIM115 - kept open for the process
    process = subprocess.Popen(
        argv,
        cwd=workdir,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (Path(workdir) / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
        try:
            if _http_get(port, health)[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        raise TimeoutError(f"{name} did not answer {health} within 90 s (log in {workdir})")
    return Target(name, port, "/v1/responses", False, process, process.pid, note=workdir)


def _serve_argv(python: str, upstream: str, port: int, *extra: str) -> list[str]:
    return [
        *(python, "-m", "rxresponses", "serve", "--upstream", upstream),
        *("--port", str(port), "--log-level", "warning", "--no-access-log"),
        *("--max-concurrent-streams", "256", "--keepalive-seconds", "15"),
        *extra,
    ]


def _litellm_python(given: str | None) -> str | None:
    candidates = [given] if given else [sys.executable]
    for python in candidates:
        if python and (shutil.which(python) or Path(python).exists()):
            probe = subprocess.run(
                [python, "-c", "import litellm.proxy.proxy_server"],
                capture_output=True,
                timeout=120,
                env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
            )
            if probe.returncode == 0:
                return python
    return None


def _start_litellm(python: str, upstream: str) -> Target:
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="proxybench-litellm-config-")
    config = Path(workdir) / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: custom_openai/bench\n"
        f"      api_base: {upstream}\n"
        "      api_key: sk-bench-unused\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
        "  telemetry: false\n"
    )
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download at start
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "DISABLE_SCHEMA_UPDATE": "True",
    }
    argv = [
        *(python, "-m", "litellm.proxy.proxy_cli", "--config", str(config)),
        *("--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"),
    ]
    return _start("litellm", argv, port, env, health="/health/liveliness")


# ------------------------------------------------------------------------------------------------
# Scenarios
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    streams: int
    chunks: int
    interval_ms: float

    @property
    def label(self) -> str:
        pace = f"paced {self.interval_ms:g} ms" if self.interval_ms else "as fast as possible"
        return f"{self.streams} stream{'s' if self.streams > 1 else ''}, {pace}"


@dataclass
class Sample:
    """One scenario against one target in one round."""

    chunks_per_s: float
    cpu_us_per_chunk: float
    upstream_cpu_us_per_chunk: float
    latencies_ms: list[float]
    first_event_ms: float
    first_delta_ms: float
    problems: list[str]
    no_sequence_numbers: int

    def pct(self, p: float) -> float:
        values = self.latencies_ms
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def _one_sample(
    target: Target, upstream: Target, scenario: Scenario, tag: str, timeout: float
) -> Sample:
    payloads = []
    for i in range(scenario.streams):
        prompt = f"{tag}-{i} {scenario.chunks} {scenario.interval_ms:g}"
        if target.chat:
            messages = [{"role": "user", "content": prompt}]
            payloads.append({"model": "bench", "stream": True, "messages": messages})
        else:
            payloads.append({"model": "bench", "stream": True, "input": prompt, "store": False})
    cpu0, up0 = target.cpu(), upstream.cpu()
    streams, seconds = await _run_streams(target.port, target.path, payloads, timeout)
    cpu, up = target.cpu() - cpu0, upstream.cpu() - up0
    status, data = await asyncio.to_thread(_http_get, upstream.port, "/digests")
    digests = json.loads(data) if status == 200 else {}
    checked = [
        _check(s, scenario.chunks, target.chat, digests.get(f"{tag}-{i}"))
        for i, s in enumerate(streams)
    ]
    chunks = sum(c.deltas for c in checked)
    latencies = sorted(ns / 1e6 for c in checked for ns in c.latencies_ns)
    firsts = [c.first_event_ns / 1e6 for c in checked if c.first_event_ns is not None]
    first_deltas = [c.first_delta_ns / 1e6 for c in checked if c.first_delta_ns is not None]
    return Sample(
        chunks_per_s=chunks / seconds if seconds else 0.0,
        cpu_us_per_chunk=(up if target is upstream else cpu) / max(chunks, 1) * 1e6,
        upstream_cpu_us_per_chunk=up / max(chunks, 1) * 1e6,
        latencies_ms=latencies,
        first_event_ms=statistics.median(firsts) if firsts else float("nan"),
        first_delta_ms=statistics.median(first_deltas) if first_deltas else float("nan"),
        problems=[f"stream {i}: {c.problem}" for i, c in enumerate(checked) if c.problem],
        no_sequence_numbers=sum(c.no_sequence_numbers for c in checked),
    )


# Where a sampled stack's time goes: the innermost frame whose file (as py-spy prints it,
# "func (path:line)") is in one of these places; frames of the event loop, of h11 (which both
# uvicorn and httpcore use) and of the start-up code are looked through to the caller.
_PLACES: tuple[tuple[str, str], ...] = (
    ("(rxresponses/operators/", "conversion (operators)"),
    ("(rxresponses/types/", "conversion (event models)"),
    ("(rxresponses/sse", "SSE encode/decode"),
    ("(rxresponses/server/_upstream", "server: upstream body"),
    ("(rxresponses/", "server glue (rxresponses)"),
    ("(reactivex/", "RxPY"),
    ("(httpx_aiohttp/", "upstream HTTP client"),
    ("(aiohttp/", "upstream HTTP client"),
    ("(httpx/", "upstream HTTP client"),
    ("(httpcore/", "upstream HTTP client"),
    ("(anyio/", "anyio"),
    ("(starlette/", "server HTTP (starlette/uvicorn)"),
    ("(uvicorn/", "server HTTP (starlette/uvicorn)"),
    ("(json/", "JSON"),
    ("(pydantic", "pydantic"),
)
_LOOK_THROUGH: tuple[str, ...] = (
    "(asyncio/",
    "(selectors",
    "(h11/",
    "(<frozen",
    "(runpy",
    "(contextlib",
    "(uvicorn/main.py",
    "(uvicorn/server.py",
    "(uvicorn/_compat.py",
    "(rxresponses/cli.py",
    "(rxresponses/__main__.py",
    "(rxresponses/server/__init__.py",
)


def _profile_summary(collapsed: Path) -> str:
    """py-spy's collapsed stacks, summed by place (see ``_PLACES``)."""
    totals: dict[str, int] = {}
    all_samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        all_samples += count
        place = "event loop (select, callbacks, socket calls)"
        for frame in reversed(stack.split(";")):
            if frame.startswith("process ") or any(needle in frame for needle in _LOOK_THROUGH):
                continue
            place = next((name for needle, name in _PLACES if needle in frame), "other")
            break
        totals[place] = totals.get(place, 0) + count
    lines = [f"profile ({all_samples} samples):"]
    for place, count in sorted(totals.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {place:<44} {count / max(all_samples, 1):6.1%}")
    return "\n".join(lines)


def _median(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def _report(
    scenarios: list[Scenario], targets: list[Target], results: dict[tuple[int, str], list[Sample]]
) -> tuple[str, dict[str, Any]]:
    lines: list[str] = []
    summary: dict[str, Any] = {}
    header = (
        "| target | chunks/s | server CPU us/chunk | upstream CPU us/chunk | latency p50 / p99 ms "
        "| added p50 / p99 ms | first event ms | first delta ms | check |"
    )
    for index, scenario in enumerate(scenarios):
        lines += ["", f"### {scenario.label} ({scenario.chunks} chunks per stream)", ""]
        lines += [header, "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        direct = results.get((index, "direct"), [])
        rows: dict[str, dict[str, float]] = {}
        for target in targets:
            samples = results.get((index, target.name), [])
            if not samples:
                continue
            added50 = [s.pct(50) - d.pct(50) for s, d in zip(samples, direct, strict=False)]
            added99 = [s.pct(99) - d.pct(99) for s, d in zip(samples, direct, strict=False)]
            row = {
                "chunks_per_s": _median([s.chunks_per_s for s in samples]),
                "cpu_us": _median([s.cpu_us_per_chunk for s in samples]),
                "upstream_cpu_us": _median([s.upstream_cpu_us_per_chunk for s in samples]),
                "p50": _median([s.pct(50) for s in samples]),
                "p99": _median([s.pct(99) for s in samples]),
                "added_p50": _median(added50),
                "added_p99": _median(added99),
                "first_event_ms": _median([s.first_event_ms for s in samples]),
                "first_delta_ms": _median([s.first_delta_ms for s in samples]),
            }
            rows[target.name] = row
            problems = [p for s in samples for p in s.problems]
            no_seq = sum(s.no_sequence_numbers for s in samples)
            check = "ok" if not problems else f"{len(problems)} FAILED: {problems[0]}"
            if no_seq and not target.chat:
                check += f"; {no_seq} streams without sequence numbers"
            added = (
                "-"
                if target.name == "direct"
                else f"{row['added_p50']:.1f} / {row['added_p99']:.1f}"
            )
            lines.append(
                f"| {target.name} | {row['chunks_per_s']:,.0f} | {row['cpu_us']:,.0f} | "
                f"{row['upstream_cpu_us']:,.0f} | {row['p50']:.1f} / {row['p99']:.1f} | {added} | "
                f"{row['first_event_ms']:.1f} | {row['first_delta_ms']:.1f} | {check} |"
            )
        summary[scenario.label] = rows
        ratios = []
        serve = rows.get("serve")
        for other in ("base", "litellm"):
            if serve and other in rows and serve["cpu_us"]:
                cpu_ratio = rows[other]["cpu_us"] / serve["cpu_us"]
                ratios.append(
                    f"CPU per chunk {other} / serve {cpu_ratio:.2f}x, "
                    f"throughput serve / {other} "
                    f"{serve['chunks_per_s'] / max(rows[other]['chunks_per_s'], 1e-9):.2f}x"
                )
        if ratios:
            lines += ["", "ratios (medians of the rounds): " + "; ".join(ratios)]
    return "\n".join(lines), summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream-process", metavar="PORTFILE", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 round, shorter streams")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="paced: ms between chunks")
    parser.add_argument("--fast-chunks", type=int, default=400, help="chunks per unpaced stream")
    parser.add_argument("--paced-chunks", type=int, default=150, help="chunks per paced stream")
    parser.add_argument(
        "--streams", default="1,50,200", help="concurrent streams per scenario (default 1,50,200)"
    )
    parser.add_argument(
        "--pacing",
        choices=("both", "unpaced", "paced"),
        default="both",
        help="which scenarios: unpaced, paced or both (default)",
    )
    parser.add_argument(
        "--targets",
        default="direct,serve,serve+sqlite,base,litellm",
        help="which targets (default: all that can start; also serve-w2)",
    )
    parser.add_argument("--baseline-python", help="interpreter of the 'base' serve (default: none)")
    parser.add_argument("--baseline-src", help="checkout put first on the base's PYTHONPATH")
    parser.add_argument("--litellm-python", help="interpreter with litellm[proxy] installed")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:ITEM,...",
        help="one more 'serve --store none' target; each ITEM is a serve option (--opt=value) or "
        "an environment variable (VAR=value), e.g. httpx:--upstream-client=httpx or "
        "fast:PYTHONPATH=/dir/with/uvloop (repeatable)",
    )
    parser.add_argument("--workers", type=int, default=2, help="workers of serve-w2 (default 2)")
    parser.add_argument("--timeout", type=float, default=180.0, help="bound on one sample, s")
    parser.add_argument("--json", metavar="PATH", help="write the medians as JSON")
    parser.add_argument(
        "--profile",
        metavar="TARGET",
        help="sample TARGET's server with py-spy during the run (pip install py-spy; adds load)",
    )
    args = parser.parse_args(argv)
    if args.upstream_process:
        asyncio.run(_serve_upstream(args.upstream_process))
        return 0
    if args.quick:
        args.rounds, args.fast_chunks, args.paced_chunks = 1, 200, 60
    wanted = args.targets.split(",")
    counts = [int(n) for n in args.streams.split(",")]
    scenarios = [
        Scenario(n, chunks, interval)
        for interval, chunks in ((0.0, args.fast_chunks), (args.interval_ms, args.paced_chunks))
        if args.pacing == "both" or (args.pacing == "paced") == bool(interval)
        for n in counts
    ]
    # A single unpaced stream is short whatever its length: give it more chunks.
    scenarios = [
        Scenario(s.streams, s.chunks * 5, 0.0) if s.streams == 1 and not s.interval_ms else s
        for s in scenarios
    ]

    children: list[subprocess.Popen[bytes]] = []
    port_file = Path(tempfile.mkdtemp(prefix="proxybench-")) / "port"
    upstream_proc = subprocess.Popen(
        [sys.executable, __file__, "--upstream-process", str(port_file)], start_new_session=True
    )
    children.append(upstream_proc)
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline:
                raise TimeoutError("the fake upstream did not start")
            time.sleep(0.05)
        up_port = int(port_file.read_text())
        up_url = f"http://127.0.0.1:{up_port}/v1"
        upstream = Target("direct", up_port, "/v1/chat/completions", True, None, upstream_proc.pid)
        targets: list[Target] = []
        notes: list[str] = []
        if "direct" in wanted:
            targets.append(upstream)
        if "serve" in wanted:
            port = _free_port()
            argv_ = _serve_argv(sys.executable, up_url, port, "--store", "none")
            targets.append(_start("serve", argv_, port))
        for variant in args.variant:
            name, _, items = variant.partition(":")
            options = [i for i in items.split(",") if i.startswith("--")]
            env = dict(i.split("=", 1) for i in items.split(",") if i and not i.startswith("--"))
            port = _free_port()
            argv_ = _serve_argv(sys.executable, up_url, port, "--store", "none", *options)
            targets.append(_start(name, argv_, port, env))
            notes.append(f"{name}: serve --store none {' '.join(options)} {env}")
        if "serve+sqlite" in wanted:
            port = _free_port()
            targets.append(_start("serve+sqlite", _serve_argv(sys.executable, up_url, port), port))
        if "serve-w2" in wanted:
            port = _free_port()
            argv_ = _serve_argv(sys.executable, up_url, port, "--store", "none")
            argv_ += ["--workers", str(args.workers)]
            targets.append(_start("serve-w2", argv_, port))
        if "base" in wanted:
            if args.baseline_python:
                port = _free_port()
                env = {"PYTHONPATH": args.baseline_src} if args.baseline_src else {}
                argv_ = _serve_argv(args.baseline_python, up_url, port, "--store", "none")
                targets.append(_start("base", argv_, port, env))
                notes.append(f"base: {args.baseline_python} (src {args.baseline_src or '-'})")
            else:
                notes.append("base: skipped (no --baseline-python)")
        if "litellm" in wanted:
            python = _litellm_python(args.litellm_python)
            if python is None:
                notes.append(
                    "litellm: skipped: LiteLLM's proxy is not installed here "
                    "(pip install -e '.[bench-proxy]', or --litellm-python PATH)"
                )
            else:
                targets.append(_start_litellm(python, up_url))
                notes.append(f"litellm: {python}")
        for target in targets:
            if target.process is not None:
                children.append(target.process)
        for note in notes:
            print(note, flush=True)
        print(
            f"{len(targets)} targets, {len(scenarios)} scenarios, {args.rounds} rounds; "
            f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        spy: subprocess.Popen[bytes] | None = None
        collapsed = port_file.parent / "profile.txt"
        if args.profile:
            profiled = next(t for t in targets if t.name == args.profile)
            py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            spy = subprocess.Popen(
                [
                    *(py_spy, "record", "--format", "raw", "--rate", "250", "--subprocesses"),
                    *("--nonblocking", "-p", str(profiled.cpu_pid), "-o", str(collapsed)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        results: dict[tuple[int, str], list[Sample]] = {}
        for round_ in range(args.rounds):
            for index, scenario in enumerate(scenarios):
                shift = (round_ + index) % len(targets)
                order = targets[shift:] + targets[:shift]
                for target in order:
                    tag = f"r{round_}s{index}{target.name}-{os.urandom(3).hex()}"
                    sample = asyncio.run(_one_sample(target, upstream, scenario, tag, args.timeout))
                    results.setdefault((index, target.name), []).append(sample)
                    print(
                        f"round {round_ + 1} {scenario.label:<32} {target.name:<13} "
                        f"{sample.chunks_per_s:>9,.0f} chunks/s {sample.cpu_us_per_chunk:>7,.0f} "
                        f"us/chunk p50 {sample.pct(50):8.1f} p99 {sample.pct(99):8.1f} ms "
                        f"problems {len(sample.problems)}",
                        flush=True,
                    )
        table, summary = _report(scenarios, targets, results)
        print(table)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            if collapsed.exists():
                print(f"\n{args.profile}: " + _profile_summary(collapsed))
                print(f"(the stacks: {collapsed})")
        print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=2))
        # LiteLLM's answers are reported, not judged.
        failed = any(
            s.problems
            for (_, name), samples in results.items()
            if name != "litellm"
            for s in samples
        )
        return 1 if failed else 0
    finally:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        for child in children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(5)


if __name__ == "__main__":
    sys.exit(main())

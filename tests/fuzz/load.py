"""Load run: many concurrent streaming requests through ``rxresponses serve``, nothing lost.

Usage (from the repository root)::

    .venv/bin/python tests/fuzz/load.py                       # 200 streams x 500 chunks
    .venv/bin/python tests/fuzz/load.py --streams 50 --chunks 100 --interval-ms 20

Three processes on 127.0.0.1: a fake Chat upstream (a raw asyncio HTTP server streaming ``chunks``
chunks per request, one TCP write each), the proxy (``python -m rxresponses serve --upstream ...``,
one uvicorn worker), and this client (httpx, asyncio), which opens ``streams`` concurrent
``POST /v1/responses`` with ``stream: true``.

Correctness: for every stream, the chunk numbers in the ``output_text.delta`` events are exactly
0..chunks-1 in order, the deltas join to the ``response.completed`` text, that text's SHA-256
equals the one the upstream computed over the text it sent, and ``tests/grammar.py`` accepts the
whole event stream.

Latency: the upstream writes ``{k:04d}@{time.monotonic_ns()};`` as the content of chunk k, just
before the write. The client takes ``time.monotonic_ns()`` when the network read that carries the
matching ``output_text.delta`` returns (before parsing it) and subtracts. ``CLOCK_MONOTONIC`` is
one clock for all processes of the machine, so the difference is the end-to-end delay of that chunk.
The same client then reads the upstream *directly* (Chat SSE, same streams and chunks) for the
baseline; "added by the proxy" is the difference of the two distributions' percentiles.

:func:`run_load` is also used in-process (threads instead of processes) by the default test
``tests/test_hardening_load.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import random
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):  # run as a script: make ``tests.fuzz`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rxresponses import SSEDecoder
from tests.fuzz.loopback import Conn, LoopbackServer, Request
from tests.grammar import check_stream

__all__ = ["LoadResult", "StreamResult", "fake_upstream", "run_load"]

_TOKEN = re.compile(r"(\d{4})@(\d+);")
ROOT = Path(__file__).resolve().parents[2]


# -- the fake upstream ----------------------------------------------------------------------------


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    data = {
        "id": "chatcmpl-load",
        "object": "chat.completion.chunk",
        "created": 1_750_000_000,
        "model": "load-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def fake_upstream(record: Callable[[str, str, int], None]) -> Callable[[Request, Conn], Any]:
    """A handler streaming the chunks the request asks for (``"stream-<id> <n> <interval_ms>"``
    as the last user message), then calling ``record(stream_id, sha256_of_text, n)``.

    With an interval, each stream starts after a random fraction of it (seeded by the stream id),
    so that concurrent streams do not all send at the same instant.
    """

    async def handler(request: Request, conn: Conn) -> bool:
        body = json.loads(request.body)
        last = body["messages"][-1]["content"]
        if isinstance(last, list):  # content parts
            last = "".join(p.get("text", "") for p in last)
        stream_id, n_text, interval_text = str(last).split()
        n, interval = int(n_text), float(interval_text) / 1000
        await conn.head()
        await conn.send(_chunk({"role": "assistant", "content": ""}))
        if interval:  # streams do not tick in step: start each one at its own phase
            await asyncio.sleep(random.Random(stream_id).uniform(0, interval))
        digest = hashlib.sha256()
        for k in range(n):
            token = f"{k:04d}@{time.monotonic_ns()};"
            await conn.send(_chunk({"content": token}))
            digest.update(token.encode())
            await asyncio.sleep(interval)  # 0: still yield, as a real server interleaves streams
        await conn.send(_chunk({}, "stop"))
        await conn.send(b"data: [DONE]\n\n")
        await conn.end()
        record(stream_id, digest.hexdigest(), n)
        return True  # keep the connection for the proxy's next request

    return handler


# -- the client -----------------------------------------------------------------------------------


@dataclass
class StreamResult:
    """What one client stream saw."""

    stream_id: str
    body: bytearray = field(default_factory=bytearray)
    ks: list[int] = field(default_factory=list)
    latencies_ns: list[int] = field(default_factory=list)
    deltas: list[str] = field(default_factory=list)
    final_text: str | None = None
    status: str | None = None
    problem: str | None = None


# The chunk tokens as they appear in a delta event of the proxy (compact JSON) and in a Chat
# chunk of the upstream (json.dumps). ``.done`` events repeat the text: they do not match.
_DELTA_RAW = re.compile(rb'"delta":"(\d{4})@(\d+);"')
_CHAT_RAW = re.compile(rb'"content": "(\d{4})@(\d+);"')


async def _read_stream(
    client: httpx.AsyncClient, url: str, payload: dict[str, Any], result: StreamResult, chat: bool
) -> None:
    """Read one stream, timestamping every chunk token when the read that completes it returns.

    Only a regex scan runs while streams are in flight, so the client's own work stays small; the
    SSE decoding, JSON parsing and grammar check happen in :func:`_analyse`, after the run.
    """
    pattern = _CHAT_RAW if chat else _DELTA_RAW
    body = result.body
    pos = 0
    async with client.stream("POST", url, json=payload) as response:
        if response.status_code != 200:
            result.problem = f"HTTP {response.status_code}: {(await response.aread())[:300]!r}"
            return
        async for data in response.aiter_raw():
            arrived = time.monotonic_ns()
            body += data
            for match in pattern.finditer(body, pos):
                result.ks.append(int(match[1]))
                result.latencies_ns.append(arrived - int(match[2]))
                pos = match.end()


def _analyse(result: StreamResult, chat: bool) -> None:
    """Decode the stream read by :func:`_read_stream` and check it."""
    if result.problem:
        return
    decoder = SSEDecoder()
    events: list[dict[str, Any]] = []
    for message in decoder.feed(bytes(result.body)) + decoder.flush():
        if message.data == "[DONE]":
            continue
        event = json.loads(message.data)
        delta: str | None
        if chat:
            choices = event.get("choices") or []
            delta = (choices[0].get("delta") or {}).get("content") if choices else None
            if choices and choices[0].get("finish_reason"):
                result.status = "completed"
        else:
            events.append(event)
            delta = event.get("delta") if event["type"].endswith("text.delta") else None
            if event["type"] in ("response.completed", "response.failed"):
                result.status = event["response"]["status"]
                result.final_text = "".join(
                    part.get("text", "")
                    for item in event["response"]["output"]
                    if item["type"] == "message"
                    for part in item["content"]
                )
        if delta:
            result.deltas.append(delta)
    parsed = [int(k) for delta in result.deltas for k, _ in _TOKEN.findall(delta)]
    if parsed != result.ks:
        result.problem = "the deltas differ from the tokens seen on the wire"
    if not chat:
        try:
            check_stream(events)
        except AssertionError as exc:
            result.problem = f"grammar: {exc}"
    result.body = bytearray()  # done with it


@dataclass
class LoadResult:
    """The figures of one run."""

    streams: int
    chunks: int
    seconds: float
    results: list[StreamResult]
    problems: list[str]

    @property
    def latencies_ms(self) -> list[float]:
        return sorted(ns / 1e6 for r in self.results for ns in r.latencies_ns)

    def percentile(self, p: float) -> float:
        values = self.latencies_ms
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]

    def by_position(self, parts: int = 5) -> str:
        """p50/p99 latency of the chunks in each ``1/parts`` of the streams (growth check)."""
        out = []
        for part in range(parts):
            lo, hi = part * self.chunks // parts, (part + 1) * self.chunks // parts
            values = sorted(
                ns / 1e6
                for r in self.results
                for k, ns in zip(r.ks, r.latencies_ns, strict=False)
                if lo <= k < hi
            )
            if values:
                p50 = values[len(values) // 2]
                p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
                out.append(f"chunks {lo}-{hi - 1}: p50 {p50:.1f} p99 {p99:.1f}")
        return "; ".join(out)

    def summary(self) -> str:
        n = sum(len(r.latencies_ns) for r in self.results)
        values = self.latencies_ms
        mean = statistics.fmean(values) if values else float("nan")
        return (
            f"{self.streams} streams x {self.chunks} chunks: {n} chunks in {self.seconds:.2f} s "
            f"({n / self.seconds:.0f} chunks/s); latency ms p50 {self.percentile(50):.2f} "
            f"p90 {self.percentile(90):.2f} p99 {self.percentile(99):.2f} "
            f"max {self.percentile(100):.2f} mean {mean:.2f}; problems {len(self.problems)}"
        )


async def run_load(
    url: str,
    *,
    streams: int,
    chunks: int,
    interval_ms: float = 0.0,
    chat: bool = False,
    expected: Callable[[], dict[str, tuple[str, int]]] | None = None,
    timeout: float = 120.0,
) -> LoadResult:
    """Open ``streams`` concurrent streams against ``url`` (the proxy's ``/v1/responses``, or the
    upstream's ``/v1/chat/completions`` when ``chat``) and check each one.

    Args:
        expected: Returns ``{stream_id: (sha256, chunks)}`` as the upstream recorded them, once
            every stream has ended.
        timeout: Bound on the whole run, in seconds.
    """
    run_tag = os.urandom(4).hex()
    results = [StreamResult(f"stream-{run_tag}-{i}") for i in range(streams)]
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    began = time.monotonic()
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0), limits=limits) as client:

        async def one(result: StreamResult) -> None:
            prompt = f"{result.stream_id} {chunks} {interval_ms}"
            payload: dict[str, Any]
            if chat:
                messages = [{"role": "user", "content": prompt}]
                payload = {"model": "load-model", "stream": True, "messages": messages}
            else:
                payload = {"model": "load-model", "stream": True, "input": prompt}
            try:
                await _read_stream(client, url, payload, result, chat)
            except Exception as exc:
                result.problem = f"{type(exc).__name__}: {exc}"

        await asyncio.wait_for(asyncio.gather(*(one(r) for r in results)), timeout)
    seconds = time.monotonic() - began

    problems: list[str] = []
    sent = expected() if expected is not None else {}
    for r in results:
        _analyse(r, chat)
        text = "".join(r.deltas)
        if r.problem:
            problems.append(f"{r.stream_id}: {r.problem}")
        elif r.status != "completed":
            problems.append(f"{r.stream_id}: status {r.status}")
        elif r.ks != list(range(chunks)):
            problems.append(f"{r.stream_id}: chunks lost or reordered ({len(r.ks)} received)")
        elif not chat and r.final_text != text:
            problems.append(f"{r.stream_id}: completed text differs from the deltas")
        elif expected is not None:
            want = sent.get(r.stream_id)
            got = (hashlib.sha256(text.encode()).hexdigest(), chunks)
            if want != got:
                problems.append(f"{r.stream_id}: text differs from what the upstream sent")
    return LoadResult(streams, chunks, seconds, results, problems)


# -- the dedicated run: three processes -----------------------------------------------------------


def _upstream_process(port_out: Any, records: Any, stop: Any) -> None:
    def record(stream_id: str, digest: str, n: int) -> None:
        records.put((stream_id, digest, n))

    with LoopbackServer(fake_upstream(record), reuse=True) as server:
        port_out.put(server.port)
        stop.wait(600)


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process (Linux ``/proc``); 0 when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_health(url: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the proxy exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError("the proxy did not become healthy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument(
        "--interval-ms", type=float, default=0.0, help="upstream pause between chunks (default 0)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="bound on each phase")
    args = parser.parse_args(argv)

    ctx = multiprocessing.get_context("spawn")
    port_q, records, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    upstream = ctx.Process(target=_upstream_process, args=(port_q, records, stop), daemon=True)
    upstream.start()
    proxy: subprocess.Popen[bytes] | None = None
    try:
        up_port = port_q.get(timeout=20)
        up_url = f"http://127.0.0.1:{up_port}"
        port = _free_port()
        proxy = subprocess.Popen(
            [
                *(sys.executable, "-m", "rxresponses", "serve", "--upstream", up_url + "/v1"),
                *("--port", str(port), "--log-level", "warning", "--no-access-log"),
                # Room for every stream of the run (the default, 64, answers 429 beyond).
                *("--max-concurrent-streams", str(max(64, args.streams))),
            ],
            cwd=tempfile.mkdtemp(prefix="rxresponses-serve-"),  # its own store, as in a new folder
        )
        proxy_url = f"http://127.0.0.1:{port}"
        _wait_for_health(proxy_url, proxy)
        seen: dict[str, tuple[str, int]] = {}

        def expected() -> dict[str, tuple[str, int]]:
            while not records.empty() or len(seen) < args.streams:
                try:
                    stream_id, digest, n = records.get(timeout=10)
                except Exception:
                    break
                seen[stream_id] = (digest, n)
            return seen

        print(f"upstream {up_url} (pid {upstream.pid}), proxy {proxy_url} (pid {proxy.pid})")
        phases = [("direct to the upstream", True), ("through the proxy", False)]
        outcomes: dict[bool, LoadResult] = {}
        for label, chat in phases:
            seen.clear()
            cpu_before = _cpu_seconds(proxy.pid if not chat else upstream.pid)
            client_before = _own_cpu_seconds()
            result = asyncio.run(
                run_load(
                    up_url + "/v1/chat/completions" if chat else proxy_url + "/v1/responses",
                    streams=args.streams,
                    chunks=args.chunks,
                    interval_ms=args.interval_ms,
                    chat=chat,
                    expected=expected,
                    timeout=args.timeout,
                )
            )
            outcomes[chat] = result
            cpu = _cpu_seconds(proxy.pid if not chat else upstream.pid) - cpu_before
            client_cpu = _own_cpu_seconds() - client_before
            who = "upstream" if chat else "proxy"
            print(f"{label}: {result.summary()}")
            print(f"  latency ms by position: {result.by_position()}")
            print(
                f"  {who} process cpu {cpu:.1f} s ({cpu / result.seconds:.0%} of one core), "
                f"{cpu / (args.streams * args.chunks) * 1e6:.0f} us per chunk; client cpu "
                f"{client_cpu:.1f} s (including the checks after the run); load average "
                f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus"
            )
            for problem in result.problems[:10]:
                print(f"  PROBLEM {problem}")
        direct, proxied = outcomes[True], outcomes[False]
        added = {p: proxied.percentile(p) - direct.percentile(p) for p in (50, 90, 99)}
        print(
            "added by the proxy (difference of percentiles), ms: "
            + ", ".join(f"p{p} {v:.2f}" for p, v in added.items())
        )
        ok = not direct.problems and not proxied.problems
        served = sum(r.status == "completed" for r in proxied.results)
        print(
            f"{served}/{args.streams} streams served through the proxy, every chunk in order, "
            f"text equal to the upstream's"
            if ok
            else "FAILED"
        )
        return 0 if ok else 1
    finally:
        if proxy is not None:
            proxy.terminate()
            try:
                proxy.wait(15)
            except subprocess.TimeoutExpired:
                proxy.kill()
                proxy.wait(5)
        stop.set()
        upstream.join(15)
        if upstream.is_alive():
            upstream.kill()
            upstream.join(5)


if __name__ == "__main__":
    sys.exit(main())

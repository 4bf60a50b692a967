"""Per-chunk cost of a stored stream against an unstored one, through real ``rxresponses serve``
processes (issue 14's performance point).

Each configuration is a ``serve`` subprocess in front of the same fake upstream (a raw socket
server in this process that answers every request with the same pre-encoded Chat stream of
``--chunks`` text deltas). The client streams ``--streams`` responses one after another; the
figure is the server process's CPU time (user + system, from ``/proc``) per upstream chunk, and
the wall time per chunk the client saw. Configurations: ``store: false`` (nothing stored), the
default SQLite file + in-process bus, and, with ``--services``, PostgreSQL + Redis started for the
run (tests/services.py).

    python tests/benchmarks/serve_store_bench.py [--chunks 2000] [--streams 10] [--services]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.services import PostgresServer, RedisServer, free_port


def chat_body(chunks: int) -> bytes:
    frames = []
    for i in range(chunks):
        delta = {"content": f"w{i} "} if i else {"role": "assistant", "content": "w0 "}
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        frames.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    end = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    end["choices"] = [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    frames.append(b"data: " + json.dumps(end).encode() + b"\n\ndata: [DONE]\n\n")
    return b"".join(frames)


def fake_upstream(body: bytes) -> int:
    """A socket server answering every request with ``body`` (close-delimited SSE)."""
    server = socket.create_server(("127.0.0.1", 0))
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"

    def handle(conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            headers, rest = data.split(b"\r\n\r\n", 1)
            length = 0
            for line in headers.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while len(rest) < length:
                rest += conn.recv(65536)
            conn.sendall(head + body)

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return int(server.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, args: list[str], upstream: int, chunks: int, streams: int, store: bool):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rxresponses", "serve", "--port", str(port), "--no-access-log",
         "--log-level", "warning", "--upstream", f"http://127.0.0.1:{upstream}/v1", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        body = {"model": "m", "input": "x", "stream": True, "store": store}
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(2):  # imports, first connections, schema
                with client.stream("POST", "/v1/responses", json=body) as r:
                    r.read()
            best_cpu = best_wall = float("inf")
            for _ in range(streams):
                cpu, wall = cpu_seconds(proc.pid), time.perf_counter()
                with client.stream("POST", "/v1/responses", json=body) as r:
                    data = r.read()
                wall = time.perf_counter() - wall
                cpu = cpu_seconds(proc.pid) - cpu
                assert b"event: response.completed" in data[-400_000:], data[-500:]
                best_cpu, best_wall = min(best_cpu, cpu), min(best_wall, wall)
    finally:
        proc.terminate()
        proc.wait()
    return name, best_cpu / chunks * 1e6, best_wall / chunks * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--services", action="store_true", help="also PostgreSQL + Redis")
    options = parser.parse_args()
    upstream = fake_upstream(chat_body(options.chunks))
    folder = tempfile.mkdtemp(prefix="rxresponses-bench-")
    sqlite = f"sqlite:///{folder}/bench.sqlite3"
    runs = [
        ("unstored (store: false)", ["--store", sqlite], False),
        ("SQLite file + in-process bus", ["--store", sqlite], True),
    ]
    services: list[PostgresServer | RedisServer] = []
    if options.services:
        pg, redis = PostgresServer().start(), RedisServer().start()
        services += [pg, redis]
        runs.append(("PostgreSQL + Redis", ["--store", pg.dsn, "--bus", redis.url], True))
    try:
        rows = [measure(n, a, upstream, options.chunks, options.streams, s) for n, a, s in runs]
    finally:
        for service in services:
            service.stop()
    base = rows[0][1]
    print(f"{options.chunks} chunks per stream, best of {options.streams} streams")
    print(f"{'configuration':32} {'server CPU us/chunk':>20} {'ratio':>6} {'wall us/chunk':>14}")
    for name, cpu, wall in rows:
        print(f"{name:32} {cpu:20.1f} {cpu / base:6.2f} {wall:14.1f}")


if __name__ == "__main__":
    main()

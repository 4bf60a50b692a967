"""Per-turn time of an agent loop through ``rxresponses serve``: WebSocket mode against HTTP.

One ``serve`` subprocess (the embedded scripted model, no delay, responses stored in a SQLite file
of its own) and a tool-calling loop of ``--turns`` turns, driven by the official SDK: a user
message (the model calls a tool), the tool's output (the model answers), and again. Modes:

* ``ws``: one ``client.responses.connect()`` socket, ``store: false``, each turn the new item and
  ``previous_response_id`` (the socket's own cache);
* ``http-chained``: ``POST /v1/responses`` streaming, ``store: true``, new item +
  ``previous_response_id`` (the chain read from the store);
* ``http-full``: ``POST /v1/responses`` streaming, ``store: false``, the whole conversation each
  turn (what a stateless client sends).

Prints the median and 90th percentile of a turn's wall time, first event included, per mode.

    python tests/benchmarks/ws_bench.py [--turns 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.test_server_websocket import start_serve

TOOL = {
    "type": "function",
    "name": "read_file",
    "description": "Read a file.",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
}
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def next_input(i: int, last: Any) -> list[dict[str, Any]]:
    """Turn ``i``'s new items: a user message on even turns, the tool output on odd ones."""
    if i % 2 == 0:
        return [{"role": "user", "content": f"Read file {i} and tell me about it."}]
    call = next(o for o in last.output if o.type == "function_call")
    return [{"type": "function_call_output", "call_id": call.call_id, "output": "x" * 2000}]


def ws_loop(client: openai.OpenAI, turns: int) -> list[float]:
    times = []
    with client.responses.connect() as conn:
        last = None
        for i in range(turns):
            started = time.perf_counter()
            conn.response.create(
                model="m",
                tools=[TOOL],
                store=False,
                input=next_input(i, last),  # type: ignore[arg-type]
                **({"previous_response_id": last.id} if last is not None else {}),
            )
            for event in conn:
                if event.type in TERMINAL:
                    last = event.response
                    break
                if event.type == "error" and event.sequence_number is None:
                    raise RuntimeError(event.error.message)
            times.append(time.perf_counter() - started)
    return times


def http_loop(client: openai.OpenAI, turns: int, *, chained: bool) -> list[float]:
    times = []
    last = None
    history: list[Any] = []
    for i in range(turns):
        items = next_input(i, last)
        started = time.perf_counter()
        if chained:
            extra = {"previous_response_id": last.id} if last is not None else {}
            stream = client.responses.create(
                model="m", tools=[TOOL], store=True, stream=True, input=items, **extra
            )
        else:
            history += items
            stream = client.responses.create(
                model="m", tools=[TOOL], store=False, stream=True, input=history
            )
        with stream:
            for event in stream:
                if event.type in TERMINAL:
                    last = event.response
        times.append(time.perf_counter() - started)
        if not chained and last is not None:
            history += [o.model_dump(exclude_none=True) for o in last.output]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = start_serve(Path(folder), "--scripted-delay-ms", "0", "--no-access-log")
        try:
            client = openai.OpenAI(base_url=server.url + "/v1", api_key="bench", max_retries=0)
            modes = {
                "ws": lambda: ws_loop(client, args.turns),
                "http-chained": lambda: http_loop(client, args.turns, chained=True),
                "http-full": lambda: http_loop(client, args.turns, chained=False),
            }
            results: dict[str, list[float]] = {name: [] for name in modes}
            for _ in range(args.rounds):
                for name, run in modes.items():
                    results[name] += run()
        finally:
            server.stop()
    print(f"{args.turns} turns x {args.rounds} rounds, embedded model, no delay")
    for name, times in results.items():
        ms = sorted(t * 1000 for t in times)
        p90 = ms[int(len(ms) * 0.9)]
        print(f"  {name:13} median {statistics.median(ms):6.1f} ms   p90 {p90:6.1f} ms per turn")


if __name__ == "__main__":
    main()

"""How the cost of one stream grows with the number of parallel tool calls (issue 17, point 8).

Run it (from the repository root)::

    python tests/benchmarks/parallel_calls.py            # 16,000 and 32,000 calls
    python tests/benchmarks/parallel_calls.py --calls 4000 8000

Two measurements per count, each the best of a few runs:

* ``fold``: ``final_response()`` over the Responses events of a stream whose calls are all open
  at once (every ``output_item.added`` first, then the argument deltas, then every ``.done``);
* ``end-to-end``: the Chat SSE bytes of a stream with that many calls (each opened by ``index``)
  through ``chat_sse_to_responses()`` and ``final_response()``.

Linear work shows as a ratio of about 2 for twice the calls; the target is at most 2.6.
:func:`measure` is also what ``bench.py`` calls.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

import reactivex

from rxresponses import chat_sse_to_responses, final_response
from rxresponses.types.events import (
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
)
from rxresponses.types.response import ResponseFunctionToolCall

TARGET_RATIO = 2.6


def fold_events(calls: int) -> list[Any]:
    """The Responses events of ``calls`` parallel function calls, all open at once."""
    events: list[Any] = []
    for i in range(calls):
        item = ResponseFunctionToolCall(
            id=f"fc_{i}", call_id=f"call_{i}", name="f", arguments="", status="in_progress"
        )
        events.append(ResponseOutputItemAddedEvent(output_index=i, item=item, sequence_number=0))
    for i in range(calls):
        for piece in ('{"i":', f"{i}}}"):
            events.append(
                ResponseFunctionCallArgumentsDeltaEvent(
                    item_id=f"fc_{i}", output_index=i, delta=piece, sequence_number=0
                )
            )
    for i in range(calls):
        arguments = f'{{"i":{i}}}'
        events.append(
            ResponseFunctionCallArgumentsDoneEvent(
                item_id=f"fc_{i}", output_index=i, arguments=arguments, sequence_number=0
            )
        )
        item = ResponseFunctionToolCall(
            id=f"fc_{i}", call_id=f"call_{i}", name="f", arguments=arguments, status="completed"
        )
        events.append(ResponseOutputItemDoneEvent(output_index=i, item=item, sequence_number=0))
    return events


def chat_body(calls: int) -> list[bytes]:
    """Chat SSE bytes: ``calls`` tool calls opened by index, then their arguments, then finish."""

    def frame(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"

    out = [frame({"role": "assistant", "content": None})]
    for i in range(calls):
        call = {"index": i, "id": f"call_{i}", "type": "function"}
        out.append(frame({"tool_calls": [{**call, "function": {"name": "f", "arguments": ""}}]}))
    for i in range(calls):
        out.append(frame({"tool_calls": [{"index": i, "function": {"arguments": f'{{"i":{i}}}'}}]}))
    out.append(frame({}, "tool_calls"))
    out.append(b"data: [DONE]\n\n")
    return out


def _best(fn: Any, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _fold(events: list[Any], calls: int) -> None:
    result: list[Any] = []
    reactivex.from_iterable(events).pipe(final_response()).subscribe(result.append)
    assert len(result[0].output) == calls


def _end_to_end(pieces: list[bytes], calls: int) -> None:
    result: list[Any] = []
    reactivex.from_iterable(pieces).pipe(chat_sse_to_responses(), final_response()).subscribe(
        result.append
    )
    assert len(result[0].output) == calls, len(result[0].output)


def measure(counts: Sequence[int] = (16_000, 32_000), runs: int = 2) -> list[str]:
    """One line per measurement and a ratio line per doubling; also printed."""
    lines: list[str] = []
    for label, build, run in (("fold", fold_events, _fold), ("end-to-end", chat_body, _end_to_end)):
        times: list[float] = []
        for calls in counts:
            data = build(calls)
            times.append(_best(lambda r=run, d=data, n=calls: r(d, n), runs))
            lines.append(f"parallel calls {label:10} {calls:>6}: {times[-1]:.3f}s")
        for i in range(1, len(counts)):
            a, ta, b, tb = counts[i - 1], times[i - 1], counts[i], times[i]
            ratio = tb / ta
            verdict = "PASS" if ratio <= TARGET_RATIO * (b / a) / 2 else "MISS"
            lines.append(
                f"parallel calls {label:10} {b}/{a}: ratio {ratio:.2f} "
                f"(target <= {TARGET_RATIO * (b / a) / 2:.1f}) {verdict}"
            )
    for line in lines:
        print(line, flush=True)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, nargs="+", default=[16_000, 32_000])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args(argv)
    measure(args.calls, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

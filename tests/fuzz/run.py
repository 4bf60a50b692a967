"""The hardening fuzz run: feed 100,000+ generated inputs through the decoder and the conversion.

Usage (from the repository root)::

    .venv/bin/python tests/fuzz/run.py                      # 100,000 inputs, 2 workers
    .venv/bin/python tests/fuzz/run.py --inputs 5000 --seed 7
    .venv/bin/python tests/fuzz/run.py --replay json_chunks:1:1065   # one input, verbosely

Every input is made by a seeded ``random.Random`` (``tests/fuzz/generators.py``) and checked by
``tests/fuzz/harness.py``. The run prints inputs per category, the outcome histogram (terminal
statuses, typed errors) and the time, and exits 1 if any input broke an invariant, printing the
first failures with the ``--replay`` argument that reproduces each.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``tests.fuzz`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz import harness
from tests.fuzz.generators import CATEGORIES, generate, plan, recordings

#: Inputs per task handed to a worker (small enough to balance two workers, large enough to be
#: cheap to schedule).
BATCH = 500
#: One input in this many also runs through the async source.
ASYNC_EVERY = 20


@dataclass
class Tally:
    """What one batch (or the whole run) counted."""

    inputs: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)
    async_runs: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.inputs.update(other.inputs)
        self.outcomes.update(other.outcomes)
        self.seconds.update(other.seconds)
        self.async_runs += other.async_runs
        self.failures.extend(other.failures)


def run_batch(task: tuple[str, int, int, int]) -> Tally:
    """Check inputs ``start..stop`` of ``category`` for ``seed`` (runs in a worker process)."""
    category, seed, start, stop = task
    tally = Tally()
    began = time.perf_counter()
    for index in range(start, stop):
        inp = generate(category, seed, index)
        use_async = index % ASYNC_EVERY == 0 and category != "sse_bytes"
        try:
            outcome = harness.check(inp, run_async=use_async)
        except Exception as exc:  # FuzzFailure, or a crash of the harness itself
            outcome = "FAILURE"
            if len(tally.failures) < 5:
                tally.failures.append(
                    (f"{category}:{seed}:{index}", f"{type(exc).__name__}: {exc}"[:2000])
                )
        tally.inputs[category] += 1
        tally.outcomes[(category, outcome)] += 1
        tally.async_runs += use_async
    tally.seconds[category] += time.perf_counter() - began
    return tally


def replay(spec: str) -> int:
    category, seed, index = spec.split(":")
    inp = generate(category, int(seed), int(index))
    print(f"category {category}, {len(inp.body)} bytes in {len(inp.pieces)} pieces")
    print(f"max_line_bytes {inp.max_line_bytes}, options {inp.options}, cut {inp.cut}")
    print(f"turn {inp.turn}")
    print(f"body: {inp.body[:4000]!r}")
    try:
        outcome = harness.check(inp, run_async=True)
    except harness.FuzzFailure as exc:
        print(f"FAILURE: {exc}")
        return 1
    finally:
        harness.close()
    print(f"outcome: {outcome}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000, help="total inputs (default 100000)")
    parser.add_argument("--seed", type=int, default=1, help="run seed (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--category", action="append", choices=list(CATEGORIES), help="only these (repeatable)"
    )
    parser.add_argument("--replay", metavar="CATEGORY:SEED:INDEX", help="check one input")
    args = parser.parse_args(argv)
    if args.replay:
        return replay(args.replay)

    counts = plan(args.inputs, args.category or tuple(CATEGORIES))
    tasks = [
        (category, args.seed, start, min(start + BATCH, n))
        for category, n in counts.items()
        for start in range(0, n, BATCH)
    ]
    print(
        f"fuzzing {args.inputs} inputs, seed {args.seed}, {args.workers} worker(s), "
        f"{len(recordings())} recorded streams as mutation seeds"
    )
    total = Tally()
    began = time.perf_counter()
    if args.workers > 1:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(args.workers) as pool:
            for tally in pool.imap_unordered(run_batch, tasks):
                total.add(tally)
    else:
        for task in tasks:
            total.add(run_batch(task))
        harness.close()
    wall = time.perf_counter() - began

    statuses = sorted({outcome for _, outcome in total.outcomes})
    width = max(len(s) for s in [*statuses, "category"]) + 2
    print()
    print(f"{'category':<14}{'inputs':>9}{'cpu s':>9}  outcomes")
    for category in counts:
        hist = ", ".join(
            f"{outcome} {total.outcomes[(category, outcome)]}"
            for outcome in statuses
            if total.outcomes[(category, outcome)]
        )
        print(f"{category:<14}{total.inputs[category]:>9}{total.seconds[category]:>9.1f}  {hist}")
    print()
    overall: Counter[str] = Counter()
    for (_, outcome), n in total.outcomes.items():
        overall[outcome] += n
    print("outcomes overall:")
    for outcome, n in overall.most_common():
        print(f"  {outcome:<{width}}{n:>9}")
    inputs = sum(total.inputs.values())
    print(
        f"\n{inputs} inputs ({total.async_runs} also through the async source) in {wall:.1f} s "
        f"wall, {sum(total.seconds.values()):.1f} s cpu; {inputs / wall:.0f} inputs/s"
    )
    failed = overall["FAILURE"]
    if failed:
        print(f"\n{failed} input(s) broke an invariant; first ones:")
        for spec, message in total.failures[:10]:
            print(f"--- {spec} (replay: python tests/fuzz/run.py --replay {spec})\n{message}")
        return 1
    print("no invariant broken")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The attack run against ``rxresponses serve``: every abuse harness, one table.

Usage (from the repository root)::

    .venv/bin/python tests/fuzz/attack.py            # the full run (a few minutes)
    .venv/bin/python tests/fuzz/attack.py --quick    # a short slice of each harness

It runs the three harnesses, each against real ``rxresponses serve`` processes on 127.0.0.1:

* ``attack_requests.py``: hostile request bodies (deep nesting, lone surrogates, wrong types,
  colliding tool names, bombs, bytes that are not JSON);
* ``attack_upstream.py``: hostile upstreams and path tricks (key echoes in every encoding, gzip
  bombs, dripping and silent upstreams, connection reuse over 1,000 streams);
* ``attack_load.py``: hostile clients (churn, slowloris, stalled readers, endless upstreams).

Each harness prints one line per abuse, ``abuse=NAME requests=N 5xx=N hangs=N peak_rss_mb=X ...``;
this script gathers them into one table and exits 1 if any harness failed, or any abuse saw a 5xx
or a hang.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESSES = ("attack_requests.py", "attack_upstream.py", "attack_load.py")
COLUMNS = ("requests", "5xx", "hangs", "peak_rss_mb")


def parse_line(line: str) -> dict[str, str] | None:
    """The ``key=value`` fields of one ``abuse=...`` line (``None`` for any other line)."""
    if not line.startswith("abuse="):
        return None
    fields: dict[str, str] = {}
    for word in shlex.split(line):
        key, sep, value = word.partition("=")
        if sep:
            fields[key] = value
    return fields


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short slice of each harness")
    args = parser.parse_args(argv)
    rows: list[tuple[str, dict[str, str]]] = []
    failed: list[str] = []
    started = time.perf_counter()
    for name in HARNESSES:
        command = [sys.executable, str(HERE / name), *(["--quick"] if args.quick else [])]
        print(f"== {name}", flush=True)
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        for line in proc.stdout.splitlines():
            print(f"   {line}")
            fields = parse_line(line)
            if fields is not None:
                rows.append((name, fields))
        if proc.returncode != 0:
            failed.append(f"{name} exited {proc.returncode}")
            sys.stdout.write(proc.stderr[-4000:])
    print()
    width = max((len(f["abuse"]) for _, f in rows), default=5)
    print(f"{'abuse':<{width}}  " + "  ".join(f"{c:>11}" for c in COLUMNS) + "  other")
    for _, fields in rows:
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("abuse", *COLUMNS))
        cells = "  ".join(f"{fields.get(c, '-'):>11}" for c in COLUMNS)
        print(f"{fields['abuse']:<{width}}  {cells}  {extra}")
        for column in ("5xx", "hangs"):
            if fields.get(column, "0") not in ("0", "-"):
                failed.append(f"{fields['abuse']}: {column}={fields[column]}")
    total = sum(int(f.get("requests", "0")) for _, f in rows if f.get("requests", "").isdigit())
    print(f"\n{len(rows)} abuses, {total} requests, {time.perf_counter() - started:.0f} s")
    for reason in failed:
        print(f"FAILED: {reason}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

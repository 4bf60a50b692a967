"""What storing a stream costs: per-event time of the server path with and without an event log.

Run it (from the repository root; PostgreSQL and redis-server as for the tests)::

    python tests/benchmarks/store_bench.py            # 11 samples per contender
    python tests/benchmarks/store_bench.py --quick    # 3 samples

The unstored path is what ``rxresponses serve`` does per chunk: Chat Completions SSE bytes
(``text_of_chunks(2000)``: about 2,000 Responses events) arrive as 16 KiB pieces from an async
source, go through ``chat_sse_to_responses()``, and every event is encoded as an SSE frame. The
stored paths do the same and also hand every event (with the JSON already dumped for the frame)
to an :class:`~rxresponses.store.EventLogWriter`, then ``await writer.aclose()`` (the final
flush is timed). Creating the record happens once per response, before the clock starts, and is
printed separately. PostgreSQL runs with ``fsync`` on (a durable setup); Redis without
persistence. Contenders are interleaved; the best sample is the figure (on a shared machine
load only ever adds time), the median is printed beside it. Always exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import text_of_chunks  # noqa: E402

from rxresponses.pipelines import chat_sse_to_responses  # noqa: E402
from rxresponses.sources import from_bytes  # noqa: E402
from rxresponses.store import (  # noqa: E402
    EventBus,
    EventLogWriter,
    InProcessEventBus,
    PostgresStore,
    RedisEventBus,
    SQLiteStore,
    SQLStore,
)
from rxresponses.types._base import to_json  # noqa: E402
from tests.services import PostgresServer, RedisServer, ServiceError  # noqa: E402

TARGET = 1.5


async def _pieces(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece
        await asyncio.sleep(0)  # a network read: the loop runs other tasks between pieces


async def one_pass(
    pieces: list[bytes], store: SQLStore | None, bus: EventBus | None
) -> tuple[float, int, float, float]:
    """Seconds to the last frame, the event count, seconds to create the record, seconds from
    the last frame until the log is written (``aclose``)."""
    writer: EventLogWriter | None = None
    created = 0.0
    if store is not None or bus is not None:
        rid = f"resp_{uuid.uuid4().hex}"
        if store is not None:
            t0 = time.perf_counter()
            await store.create(rid, owner="bench", request={"model": "m", "input": "hi"})
            created = time.perf_counter() - t0
        writer = EventLogWriter(store, rid, bus=bus)
    out: list[bytes] = []
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    count = 0

    def on_next(event: Any) -> None:
        nonlocal count
        data = to_json(event)
        out.append(f"event: {event.type}\ndata: {data}\n\n".encode())
        if writer is not None:
            writer.add(event, data)
        count += 1

    t0 = time.perf_counter()
    from_bytes(_pieces(pieces)).pipe(chat_sse_to_responses()).subscribe(
        on_next=on_next,
        on_error=done.set_exception,
        on_completed=lambda: done.set_result(None),
    )
    await done
    streamed = time.perf_counter() - t0
    flushed = 0.0
    if writer is not None:
        t1 = time.perf_counter()
        await writer.aclose()
        flushed = time.perf_counter() - t1
        if writer.error is not None:
            raise writer.error
    return streamed, count, created, flushed


async def main(samples: int) -> None:
    pieces = text_of_chunks(2000).streams[0]
    tmp = Path(tempfile.mkdtemp(prefix="rxresponses-bench-"))
    contenders: dict[str, Callable[[], Coroutine[Any, Any, tuple[float, int, float, float]]]] = {}
    closers: list[Callable[[], Coroutine[Any, Any, None]]] = []
    services: list[Any] = []

    memory = SQLiteStore(":memory:")
    sqlite = SQLiteStore(tmp / "bench.sqlite3")
    local_bus = InProcessEventBus()
    for s in (memory, sqlite):
        await s.open()
        closers.append(s.close)
    contenders["unstored"] = lambda: one_pass(pieces, None, None)
    contenders["sqlite :memory:"] = lambda: one_pass(pieces, memory, None)
    contenders["sqlite file (WAL)"] = lambda: one_pass(pieces, sqlite, None)
    contenders["sqlite file + in-process bus"] = lambda: one_pass(pieces, sqlite, local_bus)
    try:
        pg = PostgresServer(durable=True).start()
        services.append(pg)
        postgres = PostgresStore(pg.new_database())
        await postgres.open()
        closers.append(postgres.close)
        contenders["postgresql (fsync on)"] = lambda: one_pass(pieces, postgres, None)
        redis_server = RedisServer().start()
        services.append(redis_server)
        redis_bus = RedisEventBus(redis_server.url)
        closers.append(redis_bus.close)
        contenders["postgresql + redis bus"] = lambda: one_pass(pieces, postgres, redis_bus)
    except ServiceError as exc:
        print(f"(PostgreSQL/Redis rows skipped: {exc})")

    times: dict[str, list[float]] = {name: [] for name in contenders}
    creates: dict[str, list[float]] = {name: [] for name in contenders}
    flushes: dict[str, list[float]] = {name: [] for name in contenders}
    events = 0
    try:
        for run in contenders.values():  # warm-up
            await run()
        for _ in range(samples):
            for name, run in contenders.items():
                seconds, events, created, flushed = await run()
                times[name].append(seconds)
                creates[name].append(created)
                flushes[name].append(flushed)
    finally:
        for close in closers:
            await close()
        for service in services:
            service.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    base = min(times["unstored"]) / events
    print(
        f"{events} events per stream; best of {samples} samples (the machine's load only adds"
        " time),\nmedian in brackets\n"
    )
    print(
        f"{'contender':30} {'us/event':>9} {'(median)':>9} {'ratio':>6} {'+us/event':>10}"
        f" {'create ms':>10} {'final flush ms':>15}"
    )
    for name in contenders:
        per = min(times[name]) / events
        median = statistics.median(times[name]) / events
        ratio = per / base
        mark = "" if name == "unstored" else ("  ok" if ratio <= TARGET else "  MISS")
        create = statistics.median(creates[name]) * 1000
        flush = statistics.median(flushes[name]) * 1000
        print(
            f"{name:30} {per * 1e6:9.2f} {f'({median * 1e6:.2f})':>9} {ratio:6.2f}"
            f" {(per - base) * 1e6:10.2f} "
            f"{create:10.2f} {flush:15.2f}{mark}"
        )
    print(
        f"\ntarget: ratio <= {TARGET} (per event, to the last frame the client gets; the final"
        " flush\nruns after the terminal frame was sent and is shown apart)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 samples instead of 11")
    args = parser.parse_args()
    asyncio.run(main(3 if args.quick else 11))

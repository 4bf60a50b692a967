"""Across processes: a late joiner in another process through PostgreSQL + Redis sees every
event once, in order; a worker that dies mid-run leaves a response the next store recovers."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

import pytest

from rxresponses.store import EventLogWriter, PostgresStore, RedisEventBus, SQLiteStore

from ._events import stream

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


async def _child(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.store._child",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _lines(proc: asyncio.subprocess.Process, first: asyncio.Event | None = None) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    while True:
        raw = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not raw:
            break
        lines.append(raw.decode().strip())
        if first is not None:
            first.set()
    await proc.wait()
    return lines


async def test_late_joiner_in_another_process_via_redis(pg_dsn: str, redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    store = PostgresStore(pg_dsn)
    bus = RedisEventBus(redis_url, prefix=prefix)
    await store.open()
    try:
        await store.create("resp_x", owner="anonymous", request={})
        writer = EventLogWriter(store, "resp_x", bus=bus, max_batch=64)
        events = stream("resp_x", 400)
        for event in events[:150]:
            writer.add(event)
        await writer.flush()
        # The joiner starts mid-run: 150 events are logged, 253 are still to come.
        proc = await _child("join", pg_dsn, redis_url, prefix, "resp_x", "-1")
        started = asyncio.Event()
        reading = asyncio.create_task(_lines(proc, started))
        await asyncio.wait_for(started.wait(), 30)
        for i, event in enumerate(events[150:]):
            writer.add(event)
            if i % 5 == 0:
                await asyncio.sleep(0.002)
        await writer.aclose()
        lines = await reading
        assert proc.returncode == 0, await proc.stderr.read() if proc.stderr else b""
        assert lines[-1] == "END"
        got = [json.loads(line) for line in lines[:-1]]
        assert [g["seq"] for g in got] == list(range(403))
        assert [g["type"] for g in got if g["type"] == "response.completed"] == [
            "response.completed"
        ]
        assert "".join(g["delta"] for g in got if g["delta"]) == "".join(
            f"t{i} " for i in range(400)
        )
        # Another process joining after the end with starting_after=N gets N+1..end.
        proc = await _child("join", pg_dsn, redis_url, prefix, "resp_x", "399")
        lines = await _lines(proc)
        assert [json.loads(line)["seq"] for line in lines[:-1]] == [400, 401, 402]
    finally:
        await bus.close()
        await store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_crashed_worker_leaves_a_response_the_next_store_recovers(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'crash.sqlite3'}"
        reopen = SQLiteStore(tmp_path / "crash.sqlite3")
    else:
        url = request.getfixturevalue("pg_dsn")
        reopen = PostgresStore(url)  # type: ignore[assignment]
    proc = await _child("crash", url, "resp_crash", "30")
    lines = await _lines(proc)
    assert lines == ["FLUSHED"]
    assert proc.returncode == 3
    await reopen.open()
    try:
        record = await reopen.get("resp_crash", owner="anonymous")
        assert record is not None
        assert record.status == "in_progress"  # what the dead worker left
        assert await reopen.recover(include_leased=True) == ["resp_crash"]
        record = await reopen.get("resp_crash", owner="anonymous")
        assert record is not None
        assert record.status == "failed"
        log = await reopen.read_events("resp_crash")
        assert [e.sequence_number for e in log] == list(range(33))
        assert [e.type for e in log if e.terminal] == ["response.failed"]
    finally:
        await reopen.close()

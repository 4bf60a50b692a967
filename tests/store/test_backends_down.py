"""A backend that goes away: typed StoreUnavailableError for new work, and a stream already
running goes on (its log stops). Each test stops its own real server mid-test."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from rxresponses.store import (
    EventLogWriter,
    PostgresStore,
    RedisEventBus,
    SQLiteStore,
    StoredEvent,
    StoreUnavailableError,
    owner_key,
)
from tests.services import PostgresServer, RedisServer, ServiceError, unavailable

from ._events import stream

pytestmark = pytest.mark.anyio

OWNER = owner_key("sk-down")


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
    except (ServiceError, OSError) as exc:
        server.stop()
        unavailable("PostgreSQL", str(exc))
    yield server
    server.stop()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
    except (ServiceError, OSError) as exc:
        server.stop()
        unavailable("Redis", str(exc))
    yield server
    server.stop()


async def test_postgres_down_mid_stream(own_postgres: PostgresServer) -> None:
    store = PostgresStore(own_postgres.dsn, timeout=1.0)
    await store.open()
    try:
        await store.create("resp_1", owner=OWNER, request={})
        writer = EventLogWriter(store, "resp_1", max_batch=4)
        events = stream("resp_1", 20)
        for event in events[:8]:
            writer.add(event)
        await writer.flush()
        assert len(await store.read_events("resp_1")) == 8

        own_postgres.pause()
        with pytest.raises(StoreUnavailableError):
            await store.get("resp_1", owner=OWNER)
        with pytest.raises(StoreUnavailableError):
            await store.create("resp_2", owner=OWNER, request={})
        # The running stream is not broken: adding never raises, the writer keeps the error.
        for event in events[8:]:
            writer.add(event)
        await writer.aclose()
        assert isinstance(writer.error, StoreUnavailableError)
        assert writer.terminated

        own_postgres.resume()
        # The pool reconnects by itself (with backoff): the store answers again, same data.
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            try:
                record = await store.get("resp_1", owner=OWNER)
                break
            except StoreUnavailableError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)
        assert record is not None
        assert record.last_sequence_number == 7
    finally:
        await store.close()


async def test_postgres_down_at_open(own_postgres: PostgresServer) -> None:
    own_postgres.pause()
    store = PostgresStore(own_postgres.dsn, timeout=1.0)
    with pytest.raises(StoreUnavailableError):
        await store.open()
    await store.close()


async def test_redis_down_mid_stream(own_redis: RedisServer, tmp_path: Path) -> None:
    bus = RedisEventBus(own_redis.url, timeout=1.0)
    store = SQLiteStore(tmp_path / "s.sqlite3")
    await store.open()
    try:
        await store.create("resp_r", owner=OWNER, request={})
        writer = EventLogWriter(store, "resp_r", bus=bus)
        events = stream("resp_r", 10)
        for event in events[:5]:
            writer.add(event)
        await writer.flush()

        own_redis.stop()
        with pytest.raises(StoreUnavailableError):
            await bus.publish("resp_x", [StoredEvent(0, "response.created", "{}")])
        with pytest.raises(StoreUnavailableError):
            async for _ in bus.tail("resp_r", after=-1, idle_timeout=1):
                pass
        for event in events[5:]:
            writer.add(event)
        await writer.aclose()
        assert isinstance(writer.error, StoreUnavailableError)
        # The store still got the whole log: the bus failing only stops live delivery.
        assert [e.sequence_number for e in await store.read_events("resp_r")] == list(range(13))
    finally:
        await bus.close()
        await store.close()


async def test_sqlite_locked_by_another_process_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    store = SQLiteStore(path, busy_timeout=0.2)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailableError):
            await store.create("resp_l", owner=OWNER, request={})
        other.execute("ROLLBACK")
        await store.create("resp_l", owner=OWNER, request={})
        assert await store.get("resp_l", owner=OWNER) is not None
    finally:
        other.close()
        await store.close()


async def test_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "c.sqlite3")
    await store.open()
    await store.close()
    with pytest.raises(StoreUnavailableError):
        await store.get("resp_1", owner=OWNER)
    await asyncio.sleep(0)

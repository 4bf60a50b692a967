"""Fixtures of the store tests: real PostgreSQL and Redis servers, one store/bus per backend.

The servers start once per session (a few seconds) on 127.0.0.1; each test gets its own
PostgreSQL database and its own Redis key prefix. Outside CI a missing service skips its tests
with the reason; in CI (``CI=true``) it fails them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from rxresponses.store import (
    EventBus,
    InProcessEventBus,
    PostgresStore,
    RedisEventBus,
    SQLiteStore,
    SQLStore,
)
from tests.services import PostgresServer, RedisServer, ServiceError, unavailable


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer | ServiceError]:
    server = PostgresServer()
    try:
        server.start()
    except (ServiceError, OSError) as exc:
        server.stop()
        yield ServiceError(str(exc))
        return
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | ServiceError]:
    server = RedisServer()
    try:
        server.start()
    except (ServiceError, OSError) as exc:
        server.stop()
        yield ServiceError(str(exc))
        return
    yield server
    server.stop()


@pytest.fixture
def pg_dsn(pg_server: PostgresServer | ServiceError) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL server."""
    if isinstance(pg_server, ServiceError):
        unavailable("PostgreSQL", str(pg_server))
    return pg_server.new_database()


@pytest.fixture
def redis_url(redis_server: RedisServer | ServiceError) -> str:
    if isinstance(redis_server, ServiceError):
        unavailable("Redis", str(redis_server))
    return redis_server.url


def make_store(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, **options: object
) -> SQLStore:
    """A store of backend ``kind`` (``memory``, ``sqlite``, ``postgres``), not yet open."""
    if kind == "memory":
        return SQLiteStore(":memory:", **options)  # type: ignore[arg-type]
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "store.sqlite3", **options)  # type: ignore[arg-type]
    return PostgresStore(request.getfixturevalue("pg_dsn"), **options)  # type: ignore[arg-type]


STORE_KINDS = ["memory", "sqlite", "postgres"]


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_factory(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest):
    """Makes stores of this test's backend (all on the same database/file) with options."""
    dsn: list[str] = []

    def factory(**options: object) -> SQLStore:
        if store_kind == "postgres":
            if not dsn:
                dsn.append(request.getfixturevalue("pg_dsn"))
            return PostgresStore(dsn[0], **options)  # type: ignore[arg-type]
        return make_store(store_kind, tmp_path, request, **options)

    return factory


@pytest.fixture
async def store(store_factory) -> AsyncIterator[SQLStore]:
    s = store_factory()
    await s.open()
    yield s
    await s.close()


@pytest.fixture(params=["inprocess", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    if request.param == "inprocess":
        b: EventBus = InProcessEventBus()
    else:
        url = request.getfixturevalue("redis_url")
        b = RedisEventBus(url, prefix=f"test:{uuid.uuid4().hex}:")
    yield b
    await b.close()

"""The scaled-out store: PostgreSQL through psycopg 3's async API and its connection pool.

psycopg 3 is the PostgreSQL adapter the field standardises on (Django, SQLAlchemy 2's default
for PostgreSQL): native asyncio, type hints shipped with it, ``executemany`` in pipeline mode (a
batch of events is one round trip), and the ``psycopg[binary]`` wheel needs no compiler or libpq.
asyncpg is faster on micro-benchmarks but ships no types and its own dialect of placeholders; the
store's cost is dominated by round trips, which batching already removes.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ._base import StoreError, StoreUnavailableError
from ._sql import SQLStore, Tx

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import AsyncConnectionPool

__all__ = ["PostgresStore"]

_PLACEHOLDER = re.compile(r"\?")
#: Key of the advisory lock that serialises schema creation between processes.
_SCHEMA_LOCK = 0x72787265


def _driver() -> Any:
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            'PostgresStore needs psycopg 3: pip install "rxresponses[postgres]"'
        ) from exc
    return psycopg, psycopg_pool


class PostgresStore(SQLStore):
    """Responses stored in PostgreSQL, shared by any number of ``serve`` workers and hosts.

    Args:
        conninfo: A libpq connection string or URL (``postgresql://user@host:5432/db``).
        min_size: Connections the pool keeps open.
        max_size: Connections the pool opens at most.
        timeout: Seconds to wait for a connection before :class:`StoreUnavailableError`.
        retention, max_responses, max_bytes, lease: See :class:`~rxresponses.store.SQLStore`.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 5.0,
        retention: float | None = None,
        max_responses: int | None = None,
        max_bytes: int | None = None,
        lease: float = 30.0,
    ) -> None:
        super().__init__(
            retention=retention, max_responses=max_responses, max_bytes=max_bytes, lease=lease
        )
        self.conninfo = conninfo
        self.min_size = min_size
        self.max_size = max_size
        self.timeout = timeout
        self._pool: AsyncConnectionPool[Any] | None = None

    def __repr__(self) -> str:
        return "PostgresStore(...)"  # the conninfo may hold a password

    async def open(self) -> None:
        """Open the pool and create the tables (idempotent; safe from several processes)."""
        if self._pool is not None:
            return
        psycopg, psycopg_pool = _driver()
        pool = psycopg_pool.AsyncConnectionPool(
            self.conninfo,
            min_size=self.min_size,
            max_size=self.max_size,
            timeout=self.timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(self.timeout))},
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=self.timeout)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            await pool.close()
            raise StoreUnavailableError(f"PostgreSQL store: {exc}") from exc
        self._pool = pool
        async with self._transaction(write=True) as tx:
            await tx.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
            await self._create_schema(tx)

    async def close(self) -> None:
        """Close the pool (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[Tx]:
        psycopg, psycopg_pool = _driver()
        pool = self._pool
        if pool is None:
            raise StoreUnavailableError("the PostgreSQL store is not open")
        try:
            async with pool.connection(timeout=self.timeout) as conn:
                if write:
                    async with conn.transaction():
                        yield _PostgresTx(conn)
                else:
                    yield _PostgresTx(conn)
        except psycopg.IntegrityError as exc:
            raise StoreError(f"PostgreSQL refused the write: {exc}") from exc
        except (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout) as exc:
            raise StoreUnavailableError(f"PostgreSQL store: {exc}") from exc


class _PostgresTx:
    """:class:`~rxresponses.store._sql.Tx` on one pooled connection (``?`` becomes ``%s``)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._conn.cursor() as cur:
            await cur.execute(_PLACEHOLDER.sub("%s", sql), tuple(params))
            return list(await cur.fetchall()) if cur.description is not None else []

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._conn.cursor() as cur:
            await cur.executemany(_PLACEHOLDER.sub("%s", sql), rows)

"""The default store: one SQLite file, WAL mode, stdlib :mod:`sqlite3` on one worker thread."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from ._base import StoreError, StoreUnavailableError
from ._sql import SQLStore, Tx

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")


class SQLiteStore(SQLStore):
    """Responses stored in one SQLite file: zero setup, the default of ``rxresponses serve``.

    The connection lives on one worker thread (every statement runs there, so the event loop never
    blocks on disk); the file is opened in WAL mode with ``synchronous=NORMAL`` (a crash loses no
    committed transaction; a power cut may lose the last few, never corrupts the file), so readers
    in other processes (a second worker, ``sqlite3`` on the command line) never block the writer.
    ``":memory:"`` gives a private in-memory store (tests, library use).

    Args:
        path: The database file (created with its folder), or ``":memory:"``.
        busy_timeout: Seconds to wait for another process's write lock before
            :class:`StoreUnavailableError`.
        retention, max_responses, max_bytes, lease: See :class:`~rxresponses.store.SQLStore`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "rxresponses.sqlite3",
        *,
        busy_timeout: float = 5.0,
        retention: float | None = None,
        max_responses: int | None = None,
        max_bytes: int | None = None,
        lease: float = 30.0,
    ) -> None:
        super().__init__(
            retention=retention, max_responses=max_responses, max_bytes=max_bytes, lease=lease
        )
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        if self._executor is None:
            raise StoreUnavailableError("the SQLite store is not open")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"SQLite refused the write: {exc}") from exc
        except (sqlite3.OperationalError, sqlite3.DatabaseError, sqlite3.ProgrammingError) as exc:
            raise StoreUnavailableError(f"SQLite store {self.path!r}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        return conn

    async def open(self) -> None:
        """Open the file (WAL mode) and create the tables (idempotent)."""
        if self._conn is not None:
            return
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="rxresponses-sqlite")
        try:
            self._conn = await self._call(self._connect)
            async with self._transaction(write=True) as tx:
                await self._create_schema(tx)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the connection and stop the thread (idempotent)."""
        conn, executor = self._conn, self._executor
        self._conn = None
        if executor is None:
            return
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        self._executor = None
        executor.shutdown(wait=False)

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[Tx]:
        async with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreUnavailableError("the SQLite store is not open")
            if write:
                await self._call(conn.execute, "BEGIN IMMEDIATE")
            try:
                yield _SQLiteTx(self, conn)
            except BaseException:
                if write:
                    await self._rollback(conn)
                raise
            if write:
                await self._call(conn.execute, "COMMIT")

    async def _rollback(self, conn: sqlite3.Connection) -> None:
        def rollback() -> None:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

        if self._executor is None:
            return
        # Queued behind any statement still running; finishes even if this task is cancelled.
        future = asyncio.get_running_loop().run_in_executor(self._executor, rollback)
        with suppress(asyncio.CancelledError, sqlite3.Error):
            await asyncio.shield(future)


class _SQLiteTx:
    """:class:`~rxresponses.store._sql.Tx` on the store's thread."""

    def __init__(self, store: SQLiteStore, conn: sqlite3.Connection) -> None:
        self._store = store
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self._conn

        def run() -> list[tuple[Any, ...]]:
            return conn.execute(sql, tuple(params)).fetchall()

        return await self._store._call(run)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        conn = self._conn

        def run() -> None:
            conn.executemany(sql, rows)

        await self._store._call(run)

"""The SQL logic shared by :class:`SQLiteStore` and :class:`PostgresStore`, written once.

A backend only provides :meth:`SQLStore._transaction`: an async context manager yielding a
:class:`Tx` whose ``execute`` / ``executemany`` take ``?`` placeholders, and that maps its driver's
errors to :class:`StoreUnavailableError` / :class:`StoreError`. The schema and every statement are
plain SQL that both SQLite (3.35+, for ``RETURNING``) and PostgreSQL accept.

Three tables: ``rx_responses`` (one row per response: owner hash, status, request, latest
``Response`` snapshot, expiry, lease), ``rx_input_items`` (position, id, JSON) and
``rx_event_batches``: **one row per batch of events** (first and last sequence number, the numbers,
types and wire JSON of its events joined by newlines; compact JSON holds no raw newline). A batch
of 256 deltas is then one short INSERT instead of 256 rows: the per-row work of the drivers
(parameter binding, psycopg's pipeline) was most of the cost of storing a stream. JSON is kept as
text: it is passed through, never queried.
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, Protocol

from ._base import (
    ACTIVE_STATUSES,
    TERMINAL_EVENT_TYPES,
    InputItemsPage,
    InvalidPageError,
    PageOrder,
    RunState,
    StoredEvent,
    StoredResponse,
    StoreFullError,
    StoreStats,
    check_page,
    new_item_id,
    terminal_event_for,
)

__all__ = ["SCHEMA", "SQLStore", "Tx"]

SCHEMA: Final[tuple[str, ...]] = (
    """CREATE TABLE IF NOT EXISTS rx_responses (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION,
        lease_until DOUBLE PRECISION,
        previous_response_id TEXT,
        request TEXT NOT NULL,
        response TEXT,
        last_sequence_number BIGINT NOT NULL DEFAULT -1,
        size BIGINT NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS rx_responses_expires ON rx_responses (expires_at)",
    "CREATE INDEX IF NOT EXISTS rx_responses_status ON rx_responses (status)",
    """CREATE TABLE IF NOT EXISTS rx_input_items (
        response_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        item_id TEXT NOT NULL,
        item TEXT NOT NULL,
        PRIMARY KEY (response_id, position)
    )""",
    """CREATE TABLE IF NOT EXISTS rx_event_batches (
        response_id TEXT NOT NULL,
        first_seq BIGINT NOT NULL,
        last_seq BIGINT NOT NULL,
        seqs TEXT NOT NULL,
        types TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (response_id, first_seq)
    )""",
)

_COLUMNS: Final = (
    "id, owner, status, created_at, expires_at, request, response, previous_response_id, "
    "last_sequence_number"
)
_LIVE: Final = "(expires_at IS NULL OR expires_at > ?)"
_ACTIVE_SQL: Final = "('queued', 'in_progress')"


class Tx(Protocol):
    """One transaction (or, for reads, one connection) of a backend."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; returns its rows (``[]`` for a statement without rows)."""

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each parameter row (one round trip where the driver can)."""


def _batch_row(response_id: str, events: Sequence[StoredEvent]) -> tuple[Any, ...]:
    return (
        response_id,
        events[0].sequence_number,
        events[-1].sequence_number,
        ",".join(str(e.sequence_number) for e in events),
        "\n".join(e.type for e in events),
        "\n".join(e.data for e in events),
    )


def _unbatch(seqs: str, types: str, data: str) -> list[StoredEvent]:
    return [
        StoredEvent(int(s), t, d)
        for s, t, d in zip(seqs.split(","), types.split("\n"), data.split("\n"), strict=True)
    ]


_INSERT_BATCH: Final = (
    "INSERT INTO rx_event_batches (response_id, first_seq, last_seq, seqs, types, data)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


def _seq(event: StoredEvent) -> int:
    return event.sequence_number


def _record(row: tuple[Any, ...]) -> StoredResponse:
    response = json.loads(row[6]) if row[6] is not None else None
    status = str(row[2])
    if isinstance(response, dict) and status == "cancelled":
        response["status"] = status  # a cancel wins over the run's own last word
    return StoredResponse(
        id=row[0],
        owner=row[1],
        status=status,
        created_at=float(row[3]),
        expires_at=None if row[4] is None else float(row[4]),
        request=json.loads(row[5]),
        response=response,
        previous_response_id=row[7],
        last_sequence_number=int(row[8]),
    )


#: Seconds a measured store usage serves the caps before it is measured again.
_USAGE_TTL = 5.0
#: Input items a create serialises on the event loop; more go to a worker thread.
_ITEMS_ON_LOOP = 256


class SQLStore(ABC):
    """A :class:`~rxresponses.store.ResponseStore` over SQL; subclasses bring the connection.

    Args:
        retention: Seconds a response is kept after its creation (``None``: until deleted).
            Expired responses read as unknown at once and leave the tables at
            :meth:`purge_expired` (and when the size cap is reached).
        max_responses: Refuse new responses (:class:`StoreFullError`) past this many stored.
        max_bytes: Refuse new responses past this many bytes of JSON (requests, items, events).
        lease: Seconds a run's lease lasts; its writer renews it (see ``recover``).
    """

    #: Counters for tests and benchmarks (write transactions, events written).
    stats: StoreStats

    def __init__(
        self,
        *,
        retention: float | None = None,
        max_responses: int | None = None,
        max_bytes: int | None = None,
        lease: float = 30.0,
    ) -> None:
        if retention is not None and retention <= 0:
            raise ValueError("retention must be positive seconds (or None)")
        self.retention = retention
        self.max_responses = max_responses
        self.max_bytes = max_bytes
        # (when measured, live responses, their bytes): the caps' view of the store, measured at
        # most every _USAGE_TTL seconds and counted forward by this process's own creates, so a
        # create costs no scan of the whole table.
        self._usage: tuple[float, int, int] | None = None
        self.lease = lease
        self.stats = StoreStats()

    @abstractmethod
    def _transaction(self, *, write: bool) -> AbstractAsyncContextManager[Tx]:
        """A transaction (``write``) or a plain connection for reads."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and create the schema (idempotent)."""

    @abstractmethod
    async def close(self) -> None:
        """Release the connections (idempotent)."""

    async def __aenter__(self) -> SQLStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _create_schema(self, tx: Tx) -> None:
        for statement in SCHEMA:
            await tx.execute(statement)

    def _committed(self, events: int = 0) -> None:
        self.stats.transactions += 1
        self.stats.events_written += events

    # ------------------------------------------------------------------ create / get

    async def create(
        self,
        response_id: str,
        *,
        owner: str,
        request: dict[str, Any],
        input_items: Sequence[dict[str, Any]] = (),
        status: str = "in_progress",
        previous_response_id: str | None = None,
        now: float | None = None,
    ) -> list[dict[str, Any]]:
        """Record a new response (see :meth:`ResponseStore.create`)."""
        now = time.time() if now is None else now
        expires = None if self.retention is None else now + self.retention

        def rows() -> tuple[list[dict[str, Any]], str, list[tuple[str, int, str, str]]]:
            items = [
                item if item.get("id") else {**item, "id": new_item_id(item)}
                for item in input_items
            ]
            item_rows = [
                (response_id, i, str(item["id"]), json.dumps(item, separators=(",", ":")))
                for i, item in enumerate(items)
            ]
            return items, json.dumps(request, separators=(",", ":")), item_rows

        # A request may carry tens of thousands of items (8 MiB): serialised off the event loop.
        if len(input_items) > _ITEMS_ON_LOOP:
            items, request_json, item_rows = await asyncio.to_thread(rows)
        else:
            items, request_json, item_rows = rows()
        size = len(request_json) + sum(len(row[3]) for row in item_rows)
        async with self._transaction(write=True) as tx:
            capped = self.max_responses is not None or self.max_bytes is not None
            if capped and await self._full(tx, now, size):
                await self._purge(tx, now)
                self._usage = None
                if await self._full(tx, now, size):
                    raise StoreFullError(
                        "the response store is full "
                        f"(max_responses={self.max_responses}, max_bytes={self.max_bytes})"
                    )
            await tx.execute(
                "INSERT INTO rx_responses (id, owner, status, created_at, expires_at, lease_until,"
                " previous_response_id, request, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    response_id,
                    owner,
                    status,
                    now,
                    expires,
                    now + self.lease,
                    previous_response_id,
                    request_json,
                    size,
                ),
            )
            if item_rows:
                await tx.executemany(
                    "INSERT INTO rx_input_items (response_id, position, item_id, item)"
                    " VALUES (?, ?, ?, ?)",
                    item_rows,
                )
        self._committed()
        return items

    async def _full(self, tx: Tx, now: float, size: int) -> bool:
        """Whether a new response of ``size`` bytes would pass a cap. Counts it in if not.

        The caps are approximate (other processes' writes, and event logs growing, are seen at
        the next measurement, every :data:`_USAGE_TTL` seconds): a cap bounds a store, it is not
        an exact quota.
        """
        usage = self._usage
        if usage is None or not 0 <= now - usage[0] < _USAGE_TTL:
            rows = await tx.execute(
                f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM rx_responses WHERE {_LIVE}", (now,)
            )
            usage = (now, int(rows[0][0]), int(rows[0][1]))
        measured, count, total = usage
        if self.max_responses is not None and count >= self.max_responses:
            self._usage = usage
            return True
        if self.max_bytes is not None and total + size > self.max_bytes:
            self._usage = usage
            return True
        self._usage = (measured, count + 1, total + size)
        return False

    async def get(self, response_id: str, *, owner: str) -> StoredResponse | None:
        """The response of ``owner`` (see :meth:`ResponseStore.get`)."""
        async with self._transaction(write=False) as tx:
            rows = await tx.execute(
                f"SELECT {_COLUMNS} FROM rx_responses WHERE id = ? AND owner = ? AND {_LIVE}",
                (response_id, owner, time.time()),
            )
        return _record(rows[0]) if rows else None

    async def get_status(self, response_id: str) -> RunState | None:
        """The run state (see :meth:`ResponseStore.get_status`)."""
        async with self._transaction(write=False) as tx:
            rows = await tx.execute(
                "SELECT status, lease_until, last_sequence_number FROM rx_responses"
                f" WHERE id = ? AND {_LIVE}",
                (response_id, time.time()),
            )
        if not rows:
            return None
        status, lease_until, last = rows[0]
        return RunState(str(status), None if lease_until is None else float(lease_until), int(last))

    # ------------------------------------------------------------------ the event log

    async def append_events(
        self,
        response_id: str,
        events: Sequence[StoredEvent],
        *,
        snapshot: dict[str, Any] | None = None,
        status: str | None = None,
        lease: float | None = None,
    ) -> str | None:
        """Append a batch of events in one transaction (see :meth:`ResponseStore.append_events`).

        The events are written as one row. An event whose number is already logged is skipped
        by readers (sequence numbers are the dedupe key; a writer never sends one twice).
        """
        fresh: list[StoredEvent] = []
        for event in sorted(events, key=_seq):
            if not fresh or event.sequence_number > fresh[-1].sequence_number:
                fresh.append(event)
        last = fresh[-1].sequence_number if fresh else -1
        sets = [
            "last_sequence_number = CASE WHEN last_sequence_number > ?"
            " THEN last_sequence_number ELSE ? END",
            "size = size + ?",
        ]
        params: list[Any] = [last, last, sum(len(e.data) for e in fresh)]
        if snapshot is not None:
            sets.append("response = ?")
            params.append(json.dumps(snapshot, separators=(",", ":")))
        if status is not None:
            sets.append("status = CASE WHEN status = 'cancelled' THEN status ELSE ? END")
            params.append(status)
        terminal = status is not None and status not in ACTIVE_STATUSES
        if terminal or any(e.type in TERMINAL_EVENT_TYPES for e in fresh):
            sets.append("lease_until = NULL")
        elif lease is not None:
            sets.append("lease_until = ?")
            params.append(time.time() + lease)
        params.append(response_id)
        async with self._transaction(write=True) as tx:
            rows = await tx.execute(
                f"UPDATE rx_responses SET {', '.join(sets)} WHERE id = ? RETURNING status", params
            )
            if not rows:
                return None
            if fresh:
                await tx.execute(_INSERT_BATCH, _batch_row(response_id, fresh))
        self._committed(len(fresh))
        return str(rows[0][0])

    async def read_events(
        self, response_id: str, *, after: int = -1, limit: int | None = None
    ) -> list[StoredEvent]:
        """The logged events after ``after`` (see :meth:`ResponseStore.read_events`)."""
        sql = (
            "SELECT seqs, types, data FROM rx_event_batches WHERE response_id = ? AND last_seq > ?"
            " ORDER BY first_seq"
        )
        params: list[Any] = [response_id, after]
        if limit is not None:
            sql += " LIMIT ?"  # every batch holds at least one event
            params.append(limit)
        async with self._transaction(write=False) as tx:
            rows = await tx.execute(sql, params)
        events: list[StoredEvent] = []
        last = after
        for row in rows:
            for event in _unbatch(*row):
                if event.sequence_number > last:  # in order, each number once
                    events.append(event)
                    last = event.sequence_number
        return events if limit is None else events[:limit]

    async def finish(
        self, response_id: str, *, status: str, response: dict[str, Any] | None
    ) -> None:
        """Set the final status and ``Response`` (see :meth:`ResponseStore.finish`)."""
        await self.append_events(response_id, (), snapshot=response, status=status)

    # ------------------------------------------------------------------ input items

    async def list_input_items(
        self,
        response_id: str,
        *,
        owner: str,
        after: str | None = None,
        limit: int = 20,
        order: PageOrder = "desc",
    ) -> InputItemsPage | None:
        """A page of input items (see :meth:`ResponseStore.list_input_items`)."""
        after, limit, order = check_page(after, limit, order)
        async with self._transaction(write=False) as tx:
            if not await self._owned(tx, response_id, owner):
                return None
            if after is None:
                bound = -1 if order == "asc" else 2**62
            else:
                found = await tx.execute(
                    "SELECT position FROM rx_input_items WHERE response_id = ? AND item_id = ?"
                    " ORDER BY position LIMIT 1",
                    (response_id, after),
                )
                if not found:
                    raise InvalidPageError("after", f"no input item {after!r} in this response")
                bound = int(found[0][0])
            op, direction = (">", "ASC") if order == "asc" else ("<", "DESC")
            rows = await tx.execute(
                f"SELECT item FROM rx_input_items WHERE response_id = ? AND position {op} ?"
                f" ORDER BY position {direction} LIMIT ?",
                (response_id, bound, limit + 1),
            )
        data = [json.loads(r[0]) for r in rows[:limit]]
        return InputItemsPage(
            data=data,
            first_id=data[0]["id"] if data else None,
            last_id=data[-1]["id"] if data else None,
            has_more=len(rows) > limit,
        )

    async def get_input_items(self, response_id: str, *, owner: str) -> list[dict[str, Any]] | None:
        """All input items in order (see :meth:`ResponseStore.get_input_items`)."""
        async with self._transaction(write=False) as tx:
            if not await self._owned(tx, response_id, owner):
                return None
            rows = await tx.execute(
                "SELECT item FROM rx_input_items WHERE response_id = ? ORDER BY position",
                (response_id,),
            )
        return [json.loads(r[0]) for r in rows]

    async def _owned(self, tx: Tx, response_id: str, owner: str) -> bool:
        rows = await tx.execute(
            f"SELECT 1 FROM rx_responses WHERE id = ? AND owner = ? AND {_LIVE}",
            (response_id, owner, time.time()),
        )
        return bool(rows)

    # ------------------------------------------------------------------ cancel / delete / expiry

    async def mark_cancelled(self, response_id: str, *, owner: str) -> StoredResponse | None:
        """Cancel an active response (see :meth:`ResponseStore.mark_cancelled`)."""
        async with self._transaction(write=True) as tx:
            await tx.execute(
                "UPDATE rx_responses SET status = 'cancelled'"
                f" WHERE id = ? AND owner = ? AND {_LIVE} AND status IN {_ACTIVE_SQL}",
                (response_id, owner, time.time()),
            )
            rows = await tx.execute(
                f"SELECT {_COLUMNS} FROM rx_responses WHERE id = ? AND owner = ? AND {_LIVE}",
                (response_id, owner, time.time()),
            )
        self._committed()
        return _record(rows[0]) if rows else None

    async def delete(self, response_id: str, *, owner: str) -> bool:
        """Delete a response and all it holds (see :meth:`ResponseStore.delete`)."""
        async with self._transaction(write=True) as tx:
            rows = await tx.execute(
                f"DELETE FROM rx_responses WHERE id = ? AND owner = ? AND {_LIVE} RETURNING id",
                (response_id, owner, time.time()),
            )
            if rows:
                await tx.execute("DELETE FROM rx_input_items WHERE response_id = ?", (response_id,))
                await tx.execute(
                    "DELETE FROM rx_event_batches WHERE response_id = ?", (response_id,)
                )
        self._committed()
        return bool(rows)

    async def purge_expired(self, *, now: float | None = None) -> int:
        """Delete expired responses (see :meth:`ResponseStore.purge_expired`)."""
        async with self._transaction(write=True) as tx:
            count = await self._purge(tx, time.time() if now is None else now)
        self._committed()
        return count

    async def _purge(self, tx: Tx, now: float) -> int:
        expired = "SELECT id FROM rx_responses WHERE expires_at IS NOT NULL AND expires_at <= ?"
        await tx.execute(f"DELETE FROM rx_event_batches WHERE response_id IN ({expired})", (now,))
        await tx.execute(f"DELETE FROM rx_input_items WHERE response_id IN ({expired})", (now,))
        rows = await tx.execute(
            "DELETE FROM rx_responses WHERE expires_at IS NOT NULL AND expires_at <= ?"
            " RETURNING id",
            (now,),
        )
        return len(rows)

    # ------------------------------------------------------------------ crash recovery

    async def recover(self, *, include_leased: bool = False, now: float | None = None) -> list[str]:
        """Fail the runs a dead worker left active (see :meth:`ResponseStore.recover`)."""
        now = time.time() if now is None else now
        sql = (
            "SELECT id, response, last_sequence_number FROM rx_responses"
            f" WHERE status IN {_ACTIVE_SQL}"
        )
        params: tuple[Any, ...] = ()
        if not include_leased:
            sql += " AND (lease_until IS NULL OR lease_until < ?)"
            params = (now,)
        async with self._transaction(write=False) as tx:
            stale = await tx.execute(sql, params)
        recovered: list[str] = []
        for response_id, response_json, last in stale:
            snapshot = json.loads(response_json) if response_json else None
            event = terminal_event_for(response_id, int(last) + 1, snapshot)
            final = json.loads(event.data)["response"]
            async with self._transaction(write=True) as tx:
                # Guarded by the status and the log's end: a worker that is alive after all and
                # appended meanwhile keeps its run.
                rows = await tx.execute(
                    "UPDATE rx_responses SET status = 'failed', lease_until = NULL, response = ?,"
                    " last_sequence_number = ?, size = size + ?"
                    f" WHERE id = ? AND status IN {_ACTIVE_SQL} AND last_sequence_number = ?"
                    " RETURNING id",
                    (
                        json.dumps(final, separators=(",", ":")),
                        event.sequence_number,
                        len(event.data),
                        response_id,
                        last,
                    ),
                )
                if rows:
                    await tx.execute(_INSERT_BATCH, _batch_row(response_id, [event]))
            self._committed(1 if rows else 0)
            if rows:
                recovered.append(str(response_id))
        return recovered

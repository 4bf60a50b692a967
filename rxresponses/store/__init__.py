"""Stored responses and live event logs: what lets ``rxresponses serve`` (and you) remember.

A **store** keeps each response's record (owner, status, request, the latest ``Response``), its
input items and its event log; a **bus** carries the events of running responses to live tails in
this or other processes. Sequence numbers order and deduplicate events everywhere, so a reader
that replays the log and then follows the bus sees every event once, in order, ending with
exactly one terminal event.

==========================  ====================================================================
:class:`SQLiteStore`        one file, WAL mode, zero setup (the default); ``":memory:"`` for tests
:class:`PostgresStore`      PostgreSQL via psycopg 3 (``pip install "rxresponses[postgres]"``)
:class:`InProcessEventBus`  live events between tasks of one worker process
:class:`RedisEventBus`      live events across workers and hosts via Redis Streams
                            (``pip install "rxresponses[redis]"``)
:class:`EventLogWriter`     batched writes of one response's events (store + bus)
:func:`read_event_log`      async iterator: replay after N, then tail live, then end
:func:`from_event_log`      the same as an Rx Observable of typed events
:class:`EventLogSink`       an Rx observer writing a stream's events to the log
:func:`log_events`          the same as an operator (a tap)
==========================  ====================================================================

Library use: fan one live response out to a UI in another process::

    # producer process
    store, bus = PostgresStore(dsn), RedisEventBus("redis://127.0.0.1:6379/0")
    await store.open()
    sink = EventLogSink(store, "resp_1", bus=bus, create={"model": "m"})
    events.subscribe(sink)            # any Observable of typed Responses events
    await sink.wait_closed()

    # UI process (joins any time, even after the end)
    from_event_log(store, "resp_1", starting_after=-1, bus=bus).subscribe(ui)

How the server uses it (one request, ``store: true``)::

    store = await open_store(config.store_url)            # SQLite file by default
    bus = open_bus(config.bus_url)                        # in-process by default
    await store.recover(include_leased=single_worker)     # at startup: no run stays in_progress
    owner = owner_key(api_key)                            # never store the key itself
    items = await store.create(rid, owner=owner, request=body, input_items=input_items,
                               status="queued" if background else "in_progress",
                               previous_response_id=body.get("previous_response_id"))
    writer = EventLogWriter(store, rid, bus=bus)          # StoreFullError / Unavailable -> 503
    for event in events: writer.add(event, data=json)     # sync, batched; never per-delta commit
    if writer.cancelled.is_set(): ...                     # cancelled from another worker: stop
    await writer.aclose()                                 # flushes the terminal event

    await store.get(rid, owner=owner)                     # GET /v1/responses/{id}
    read_event_log(store, rid, starting_after=n, bus=bus) # GET ...?stream=true&starting_after=n
    await store.list_input_items(rid, owner=owner, after=a, limit=l, order=o)  # input_items
    await store.mark_cancelled(rid, owner=owner)          # POST /v1/responses/{id}/cancel
    await store.delete(rid, owner=owner)                  # DELETE /v1/responses/{id}
    await store.get_input_items(rid, owner=owner)         # previous_response_id chains
    await store.purge_expired()                           # periodically, with ``retention``

Errors: :class:`StoreFullError` and :class:`StoreUnavailableError` (503 for a new stored request;
a running stream goes on, its log stops), :class:`InvalidPageError` (400, ``param`` names the
argument). A foreign owner's response reads exactly as an unknown one (``None`` / ``False``).
"""

from __future__ import annotations

from ._base import (
    ACTIVE_STATUSES,
    TERMINAL_EVENT_TYPES,
    InputItemsPage,
    InvalidPageError,
    ResponseStore,
    RunState,
    StoredEvent,
    StoredResponse,
    StoreError,
    StoreFullError,
    StoreStats,
    StoreUnavailableError,
    event_from_json,
    owner_key,
    terminal_event_for,
)
from ._bus import EventBus, InProcessEventBus
from ._log import EventLogSink, EventLogWriter, from_event_log, log_events, read_event_log
from ._postgres import PostgresStore
from ._redis import RedisEventBus
from ._sql import SQLStore
from ._sqlite import SQLiteStore

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_EVENT_TYPES",
    "EventBus",
    "EventLogSink",
    "EventLogWriter",
    "InProcessEventBus",
    "InputItemsPage",
    "InvalidPageError",
    "PostgresStore",
    "RedisEventBus",
    "ResponseStore",
    "RunState",
    "SQLStore",
    "SQLiteStore",
    "StoreError",
    "StoreFullError",
    "StoreStats",
    "StoreUnavailableError",
    "StoredEvent",
    "StoredResponse",
    "event_from_json",
    "from_event_log",
    "log_events",
    "open_bus",
    "open_store",
    "owner_key",
    "read_event_log",
    "terminal_event_for",
]


async def open_store(url: str | None = None, **options: object) -> SQLStore:
    """Open the store a URL names, creating its tables.

    ``None`` or ``sqlite:///path/to/file.sqlite3`` (``sqlite://:memory:`` in memory) gives a
    :class:`SQLiteStore` (``None``: ``./rxresponses.sqlite3``); ``postgresql://...`` (or
    ``postgres://``) a :class:`PostgresStore`. ``options`` go to the constructor
    (``retention``, ``max_responses``, ``max_bytes``...).

    Raises:
        ValueError: An unknown scheme.
        StoreUnavailableError: The backend cannot be reached.
    """
    store: SQLStore
    if url is None:
        store = SQLiteStore(**options)  # type: ignore[arg-type]
    elif url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        path = path[1:] if path.startswith("/") and path != "/:memory:" else path.lstrip("/")
        store = SQLiteStore(path or "rxresponses.sqlite3", **options)  # type: ignore[arg-type]
    elif url.startswith(("postgresql://", "postgres://")):
        store = PostgresStore(url, **options)  # type: ignore[arg-type]
    else:
        raise ValueError(f"unknown store URL scheme: {url.split(':', 1)[0]!r}")
    await store.open()
    return store


def open_bus(url: str | None = None, **options: object) -> EventBus:
    """The bus a URL names: ``None`` an :class:`InProcessEventBus`, ``redis://...`` Redis.

    Raises:
        ValueError: An unknown scheme.
    """
    if url is None or url == "memory":
        return InProcessEventBus(**options)  # type: ignore[arg-type]
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisEventBus(url, **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown bus URL scheme: {url.split(':', 1)[0]!r}")

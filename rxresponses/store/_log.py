"""Writing a response's event log (batched) and reading it back (replay, then tail live).

:class:`EventLogWriter` is what a producer (the server, or :class:`EventLogSink`) feeds one event
at a time; it never commits per event. :func:`read_event_log` is what a consumer iterates to get
every event after ``starting_after`` exactly once, in order, ending with one terminal event;
:func:`from_event_log` is the same as an Rx source of typed events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from ..sources import _from_async
from ..types._base import WireModel, to_json
from ..types.events import ResponseStreamEvent, parse_event
from ._base import (
    ACTIVE_STATUSES,
    TERMINAL_EVENT_TYPES,
    ResponseStore,
    StoredEvent,
    StoreError,
    terminal_event_for,
)
from ._bus import EventBus

__all__ = ["EventLogSink", "EventLogWriter", "from_event_log", "log_events", "read_event_log"]

log = logging.getLogger("rxresponses.store")

#: Events carrying the whole ``Response``: the writer keeps the latest as the stored snapshot.
_LIFECYCLE: Final = frozenset(
    {
        "response.created",
        "response.queued",
        "response.in_progress",
        "response.completed",
        "response.incomplete",
        "response.failed",
    }
)
#: Events read from the store per query while replaying.
_PAGE: Final = 1000


class EventLogWriter:
    """Buffers a response's events and writes them in batches to a store (and live to a bus).

    :meth:`add` is synchronous and cheap (the hot path: one call per delta); the store gets one
    transaction per ``max_batch`` events or per ``max_delay`` seconds, whichever comes first, and
    one at the terminal event. The bus gets an event at once when it is idle; events that arrive
    while a publish is in flight (or within ``bus_delay`` after it) go out together in one
    round trip. Lifecycle events update
    the stored ``Response`` snapshot and status in the same transaction as their batch.
    The defaults (512 events, 0.25 s) make a fast 2,000-event stream about four writes and a
    slow one (tens of tokens per second) four writes per second; live readers get the events
    from the bus meanwhile, so the store's lag costs them nothing.

    A backend failure never reaches the producer: the writer logs it, keeps it in :attr:`error`,
    and stops writing to that backend (the stream itself goes on). While the run lasts, the
    writer renews its lease every ``lease / 3`` seconds; when the store reports the response
    cancelled (another worker's ``mark_cancelled``), deleted or failed by recovery,
    :attr:`cancelled` is set: the producer should stop its run and end the stream.

    Must be used on a running asyncio loop. Call :meth:`aclose` at the end (it flushes).

    Args:
        store: Where the log is kept (``None``: live bus only).
        response_id: The response the events belong to (its record must exist in ``store``).
        bus: Where live tails read (``None``: tails poll the store).
        max_batch: A store write starts when this many events wait (it takes all that wait,
            so events that arrive during a slow commit join the next one).
        max_delay: Seconds an event waits before a write starts, at most.
        lease: Seconds of the run's lease (``None``: the store's ``lease``, or 30).
        bus_delay: After a publish, seconds to gather events before the next one (the first
            event of a quiet stream goes out at once; a fast one goes out in small batches
            instead of one round trip per loop turn).
    """

    def __init__(
        self,
        store: ResponseStore | None,
        response_id: str,
        *,
        bus: EventBus | None = None,
        max_batch: int = 512,
        max_delay: float = 0.25,
        lease: float | None = None,
        bus_delay: float = 0.005,
    ) -> None:
        self.store = store
        self.bus_delay = bus_delay
        self.bus = bus
        self.response_id = response_id
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.lease = lease if lease is not None else float(getattr(store, "lease", 30.0))
        #: Set when the store says the run must stop (cancelled, deleted, recovered as failed).
        self.cancelled = asyncio.Event()
        #: The first backend error (the log or the live feed stopped there), or ``None``.
        self.error: Exception | None = None
        #: The status the store last reported.
        self.status: str | None = None
        #: The highest sequence number added.
        self.last_sequence_number = -1
        #: Whether a terminal event was added.
        self.terminated = False
        self._store_buf: list[StoredEvent] = []
        self._bus_buf: list[StoredEvent] = []
        self._snapshot: dict[str, Any] | None = None
        self._snapshot_status: str | None = None
        self._store_task: asyncio.Task[None] | None = None
        self._bus_busy = False
        self._bus_idle = asyncio.Event()
        self._bus_idle.set()
        self._timer: asyncio.TimerHandle | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._last_write = time.monotonic()
        self._store_ok = store is not None
        self._bus_ok = bus is not None
        self._closed = False

    # ------------------------------------------------------------------ producer side

    def add(self, event: WireModel | StoredEvent, data: str | None = None) -> None:
        """Add one event (a typed event, or a :class:`StoredEvent`); never blocks.

        Args:
            event: The event, numbered by the producer (``sequence_number`` 0, 1, 2...).
            data: The event's wire JSON if the caller already has it (saves a dump).
        """
        # The hot path: one call per delta. Plain attribute reads, no task per event.
        if type(event) is StoredEvent:
            stored = event
        else:
            seq = getattr(event, "sequence_number", None)
            if type(seq) is not int:
                raise ValueError("an event needs an integer sequence_number to be logged")
            kind = getattr(event, "type", "")
            stored = StoredEvent(seq, kind, data or to_json(event))  # type: ignore[arg-type]
        seq = stored[0]
        if seq <= self.last_sequence_number:
            return  # already added: sequence numbers are the dedupe key
        if self._closed:
            raise RuntimeError("EventLogWriter.add() after aclose()")
        self.last_sequence_number = seq
        terminal = False
        if stored[1] in _LIFECYCLE:
            terminal = stored[1] in TERMINAL_EVENT_TYPES
            self._lifecycle(stored, terminal)
        if self._bus_ok:
            self._bus_buf.append(stored)
            if not self._bus_busy:
                self._bus_busy = True
                asyncio.get_running_loop().create_task(self._pump_bus())
        if self._store_ok:
            buffer = self._store_buf
            buffer.append(stored)
            if terminal or len(buffer) >= self.max_batch:
                self._kick()
            elif self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self.max_delay, self._kick)
                if self._heartbeat is None:
                    self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    def _lifecycle(self, stored: StoredEvent, terminal: bool) -> None:
        """A lifecycle event: keep its ``Response`` as the snapshot of the next batch."""
        response = json.loads(stored.data).get("response")
        if isinstance(response, dict):
            self._snapshot = response
            self._snapshot_status = str(response.get("status") or "in_progress")
        if terminal:
            self.terminated = True

    def _kick(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._store_task is None or self._store_task.done():
            self._store_task = asyncio.get_running_loop().create_task(self._pump_store())

    async def _pump_store(self) -> None:
        while self._store_buf and self._store_ok and self.store is not None:
            batch, self._store_buf = self._store_buf, []
            snapshot, status = self._snapshot, self._snapshot_status
            self._snapshot = self._snapshot_status = None
            try:
                now = await self.store.append_events(
                    self.response_id, batch, snapshot=snapshot, status=status, lease=self.lease
                )
            except StoreError as exc:
                self._fail("store", exc)
                return
            self._last_write = time.monotonic()
            self._seen_status(now)

    async def _pump_bus(self) -> None:
        self._bus_idle.clear()
        try:
            while self._bus_buf and self._bus_ok and self.bus is not None:
                batch, self._bus_buf = self._bus_buf, []
                try:
                    await self.bus.publish(self.response_id, batch)
                except StoreError as exc:
                    self._fail("bus", exc)
                    return
                if self.bus_delay > 0 and not self.terminated:
                    await asyncio.sleep(self.bus_delay)
        finally:
            self._bus_busy = False
            self._bus_idle.set()

    async def _beat(self) -> None:
        """Renew the lease while the run is quiet (and notice a cancel from another worker)."""
        period = max(self.lease / 3, 0.01)
        while self._store_ok and self.store is not None and not self.terminated:
            await asyncio.sleep(period)
            if time.monotonic() - self._last_write < period or self.terminated:
                continue
            try:
                now = await self.store.append_events(self.response_id, (), lease=self.lease)
            except StoreError as exc:
                self._fail("store", exc)
                return
            self._last_write = time.monotonic()
            self._seen_status(now)

    def _seen_status(self, status: str | None) -> None:
        self.status = status
        if not self.terminated and (status is None or status not in ACTIVE_STATUSES):
            self.cancelled.set()

    def _fail(self, where: str, exc: Exception) -> None:
        log.warning("event log of %s: %s stopped: %s", self.response_id, where, exc)
        if self.error is None:
            self.error = exc
        if where == "store":
            self._store_ok = False
            self._store_buf.clear()
        else:
            self._bus_ok = False
            self._bus_buf.clear()

    async def flush(self) -> None:
        """Write everything buffered now and wait for it."""
        if self._store_buf:
            self._kick()
        if self._store_task is not None:
            await asyncio.shield(self._store_task)
        await self._bus_idle.wait()

    async def aclose(self) -> None:
        """Flush, wait for the backends, stop the lease heartbeat (idempotent)."""
        if self._closed:
            return
        try:
            await self.flush()
        finally:
            self._closed = True
            if self._heartbeat is not None:
                self._heartbeat.cancel()
                self._heartbeat = None


# ---------------------------------------------------------------------- reading


async def read_event_log(
    store: ResponseStore,
    response_id: str,
    *,
    starting_after: int = -1,
    bus: EventBus | None = None,
    idle_timeout: float = 1.0,
    poll_interval: float = 0.1,
) -> AsyncIterator[StoredEvent]:
    """Every event of ``response_id`` after ``starting_after``, once, in order, then live.

    Replays the store's log, then tails the bus (or polls the store without one) until a
    terminal event, which is the last item. Sequence numbers are the dedupe key: an event seen
    in the replay is skipped on the bus; a gap on the bus (trimmed) is filled from the store.
    When nothing arrives for ``idle_timeout`` seconds the run's state is checked: a run whose
    lease lapsed (its worker died) is recovered as ``failed``; a finished run whose log lacks its
    terminal event (deleted, or the store went away mid-run) ends with a synthesized
    ``response.failed``. So the iteration always ends, with exactly one terminal event.

    Not owner-scoped: check the caller's access with ``store.get(id, owner=...)`` first.

    Raises:
        StoreUnavailableError: The store (or bus) cannot be reached.
    """
    last = starting_after
    while True:
        # 1. Replay what the store holds.
        while True:
            page = await store.read_events(response_id, after=last, limit=_PAGE)
            for event in page:
                yield event
                last = event.sequence_number
                if event.terminal:
                    return
            if len(page) < _PAGE:
                break
        # 2. Follow live events.
        progressed = False
        if bus is not None:
            async for event in bus.tail(response_id, after=last, idle_timeout=idle_timeout):
                if event.sequence_number <= last:
                    continue
                if event.sequence_number != last + 1:
                    break  # a gap: the store has (or soon has) the missing events
                yield event
                last = event.sequence_number
                progressed = True
                if event.terminal:
                    return
        else:
            await asyncio.sleep(poll_interval)
        if progressed:
            continue
        # 3. Nothing new: is the run alive?
        state = await store.get_status(response_id)
        lapsed = state is not None and (
            state.lease_until is None or state.lease_until < time.time()
        )
        # A cancelled run whose worker still holds the lease is about to log its own terminal
        # event (it learns of the cancel at its next write): wait for it like for a live run.
        if state is None or (not state.active and lapsed):
            page = await store.read_events(response_id, after=last, limit=_PAGE)
            if page:
                continue  # its last events landed meanwhile: replay them
            yield terminal_event_for(
                response_id,
                last + 1,
                None,
                status="failed" if state is None else state.status,
                message="the response's event log ended without a terminal event",
            )
            return
        if state.active and lapsed:
            await store.recover()
        elif bus is not None:
            await asyncio.sleep(min(poll_interval, idle_timeout))


def from_event_log(
    store: ResponseStore,
    response_id: str,
    *,
    starting_after: int = -1,
    bus: EventBus | None = None,
    idle_timeout: float = 1.0,
) -> Observable[ResponseStreamEvent]:
    """An Observable of a response's typed events: replay after ``starting_after``, then live.

    A UI in another process joins a running response late and sees every event once, in order,
    ending with exactly one terminal event (see :func:`read_event_log`). Runs as an asyncio task
    on the running loop (or an ``AsyncIOScheduler``'s); disposing the subscription cancels it.
    Each subscription reads the log anew (it is cold)::

        from_event_log(store, "resp_123", starting_after=41, bus=RedisEventBus(url)).subscribe(ui)
    """

    def factory() -> AsyncIterator[ResponseStreamEvent]:
        async def events() -> AsyncIterator[ResponseStreamEvent]:
            async for stored in read_event_log(
                store,
                response_id,
                starting_after=starting_after,
                bus=bus,
                idle_timeout=idle_timeout,
            ):
                yield parse_event(stored.data)

        return events()

    return _from_async(factory)


# ---------------------------------------------------------------------- the Rx sink


class EventLogSink(abc.ObserverBase[Any]):
    """An Rx observer that logs a stream's events to a store and/or a live bus.

    ``events.subscribe(EventLogSink(store, "resp_123", bus=bus))`` (the end of a pipeline) or
    ``events.pipe(ops.do(sink))`` (a tap). Events are batched (see :class:`EventLogWriter`).
    A stream that ends (``on_completed`` / ``on_error``) without a terminal event gets a
    ``response.failed`` appended, so readers of the log always see one terminal event.
    Await :meth:`wait_closed` for the last write. Runs on the asyncio loop delivering the events.

    Args:
        store: The store (``None``: bus only). The response record must exist, or pass
            ``create``.
        response_id: The response the events belong to.
        bus: The live bus (``None``: readers poll the store).
        owner: Owner of the record made with ``create``.
        create: A request body: create the record (status ``in_progress``) before the first
            write. ``None``: the record exists already.
        max_batch, max_delay: See :class:`EventLogWriter`.
    """

    def __init__(
        self,
        store: ResponseStore | None,
        response_id: str,
        *,
        bus: EventBus | None = None,
        owner: str = "anonymous",
        create: dict[str, Any] | None = None,
        max_batch: int = 512,
        max_delay: float = 0.25,
    ) -> None:
        self.writer = EventLogWriter(
            store, response_id, bus=bus, max_batch=max_batch, max_delay=max_delay
        )
        self._owner = owner
        self._create = create
        self._created: asyncio.Task[None] | None = None
        self._pending: list[WireModel | StoredEvent] = []
        self._done: asyncio.Future[None] | None = None
        self._snapshot: dict[str, Any] | None = None

    def _loop(self) -> asyncio.AbstractEventLoop:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("EventLogSink needs a running asyncio loop") from None

    def on_next(self, value: Any) -> None:
        """Log one event (buffered)."""
        if self._create is not None and self.writer.store is not None:
            self._pending.append(value)
            if self._created is None:
                self._created = self._loop().create_task(self._create_record())
            return
        self.writer.add(value)

    async def _create_record(self) -> None:
        store = self.writer.store
        assert store is not None
        assert self._create is not None
        try:
            await store.create(self.writer.response_id, owner=self._owner, request=self._create)
        except StoreError as exc:
            self.writer._fail("store", exc)
        self._create = None
        pending, self._pending = self._pending, []
        for value in pending:
            self.writer.add(value)

    def on_error(self, error: Exception) -> None:
        """End the log with ``response.failed`` (if no terminal event came), then flush."""
        self._finish(f"the stream failed: {error}")

    def on_completed(self) -> None:
        """End the log (``response.failed`` if no terminal event came), then flush."""
        self._finish("the stream ended without a terminal event")

    def _finish(self, message: str) -> None:
        loop = self._loop()
        self._done = loop.create_task(self._close(message))

    async def _close(self, message: str) -> None:
        if self._created is not None:
            await self._created
        writer = self.writer
        if not writer.terminated:
            writer.add(
                terminal_event_for(
                    writer.response_id, writer.last_sequence_number + 1, None, message=message
                )
            )
        await writer.aclose()

    async def wait_closed(self) -> None:
        """Wait until the stream ended and its last events were written."""
        while self._done is None:
            await asyncio.sleep(0.01)
        await self._done


def log_events(
    store: ResponseStore | None,
    response_id: str,
    *,
    bus: EventBus | None = None,
    owner: str = "anonymous",
    create: dict[str, Any] | None = None,
) -> Callable[[Observable[Any]], Observable[Any]]:
    """An operator that logs every event passing through (an :class:`EventLogSink` tap).

    Each subscription gets its own sink. The events pass on unchanged.
    """

    def operator(source: Observable[Any]) -> Observable[Any]:
        def factory(_scheduler: abc.SchedulerBase | None) -> Observable[Any]:
            sink = EventLogSink(store, response_id, bus=bus, owner=owner, create=create)
            return source.pipe(ops.do(sink))

        return reactivex.defer(factory)

    return operator

"""Live events: the bus contract (in-process and a real Redis), replay-then-tail without gaps or
duplicates, and the Rx sink/source pair."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import reactivex

from rxresponses.store import (
    EventBus,
    EventLogSink,
    EventLogWriter,
    InProcessEventBus,
    SQLiteStore,
    SQLStore,
    StoredEvent,
    from_event_log,
    log_events,
    owner_key,
    read_event_log,
)
from rxresponses.types._base import to_json

from ._events import stream

pytestmark = pytest.mark.anyio

OWNER = owner_key("sk-test")


def _ev(seq: int, kind: str = "response.output_text.delta") -> StoredEvent:
    return StoredEvent(seq, kind, json.dumps({"type": kind, "sequence_number": seq}))


async def _collect(iterator: Any, timeout: float = 10.0) -> list[StoredEvent]:
    async def run() -> list[StoredEvent]:
        return [event async for event in iterator]

    return await asyncio.wait_for(run(), timeout)


async def test_bus_replays_after_n_and_ends_at_the_terminal_event(bus: EventBus) -> None:
    await bus.publish("r1", [_ev(0), _ev(1), _ev(2)])
    await bus.publish("r1", [_ev(3), _ev(4, "response.completed"), _ev(5)])
    got = await _collect(bus.tail("r1", after=1, idle_timeout=2))
    assert [e.sequence_number for e in got] == [2, 3, 4]
    assert got[-1].type == "response.completed"
    assert got[0] == _ev(2)


async def test_bus_tail_started_before_the_first_publish_sees_live_events(bus: EventBus) -> None:
    tail = asyncio.create_task(_collect(bus.tail("r2", idle_timeout=5)))
    await asyncio.sleep(0.1)
    for seq in range(3):
        await bus.publish("r2", [_ev(seq)])
        await asyncio.sleep(0.01)
    await bus.publish("r2", [_ev(3, "response.failed")])
    got = await tail
    assert [e.sequence_number for e in got] == [0, 1, 2, 3]


async def test_bus_drops_a_sequence_number_it_already_holds(bus: EventBus) -> None:
    await bus.publish("r3", [_ev(0), _ev(1)])
    await bus.publish("r3", [_ev(1), _ev(0), _ev(2, "response.completed")])
    got = await _collect(bus.tail("r3", idle_timeout=2))
    assert [e.sequence_number for e in got] == [0, 1, 2]


async def test_bus_tail_ends_when_idle(bus: EventBus) -> None:
    await bus.publish("r4", [_ev(0)])
    got = await _collect(bus.tail("r4", idle_timeout=0.3), timeout=5)
    assert [e.sequence_number for e in got] == [0]


async def test_late_joiner_sees_every_event_once_in_order(store: SQLStore, bus: EventBus) -> None:
    """A reader joins while the writer is mid-stream (part of the log is in the store, part only
    on the bus, part not yet written): it gets 0..N once each, ending with the terminal event."""
    await store.create("resp_live", owner=OWNER, request={})
    writer = EventLogWriter(store, "resp_live", bus=bus, max_batch=32, max_delay=0.02)
    events = stream("resp_live", 300)
    readers: list[asyncio.Task[list[StoredEvent]]] = []
    for i, event in enumerate(events):
        writer.add(event)
        if i in (0, 77, 150, 299):
            after = -1 if i != 150 else 100
            readers.append(
                asyncio.create_task(
                    _collect(read_event_log(store, "resp_live", starting_after=after, bus=bus))
                )
            )
        if i % 10 == 0:
            await asyncio.sleep(0.003)
    await writer.aclose()
    expected = [to_json(e) for e in events]
    for n, reader in enumerate(readers):
        got = await reader
        start = 101 if n == 2 else 0
        assert [e.sequence_number for e in got] == list(range(start, 303)), n
        assert [e.data for e in got] == expected[start:]
    # A reader after the end replays the log alone (the bus may have forgotten it).
    got = await _collect(read_event_log(store, "resp_live", starting_after=300, bus=bus))
    assert [e.sequence_number for e in got] == [301, 302]
    assert got[-1].type == "response.completed"


async def test_reader_without_a_bus_polls_the_store(store: SQLStore) -> None:
    await store.create("resp_poll", owner=OWNER, request={})
    writer = EventLogWriter(store, "resp_poll", max_delay=0.01)
    events = stream("resp_poll", 20)
    reader = asyncio.create_task(_collect(read_event_log(store, "resp_poll", poll_interval=0.02)))
    for event in events:
        writer.add(event)
        await asyncio.sleep(0.005)
    await writer.aclose()
    got = await reader
    assert [e.sequence_number for e in got] == list(range(23))


async def test_reader_of_a_run_whose_worker_died_ends_with_one_failed_event(
    store_factory,
) -> None:
    store = store_factory(lease=0.3)
    await store.open()
    try:
        await store.create("resp_dead", owner=OWNER, request={})
        await store.append_events("resp_dead", [_ev(0, "response.created"), _ev(1)], lease=0.3)
        # Nobody writes any more: the reader waits for the lease to lapse, recovers the run,
        # and ends with the recovery's response.failed.
        got = await _collect(
            read_event_log(store, "resp_dead", bus=InProcessEventBus(), idle_timeout=0.2)
        )
        assert [e.sequence_number for e in got] == [0, 1, 2]
        assert got[-1].type == "response.failed"
        record = await store.get("resp_dead", owner=OWNER)
        assert record is not None
        assert record.status == "failed"
    finally:
        await store.close()


async def test_reader_of_a_deleted_response_ends_with_one_failed_event(store: SQLStore) -> None:
    await store.create("resp_gone", owner=OWNER, request={})
    await store.append_events("resp_gone", [_ev(0, "response.created")])
    reader = asyncio.create_task(
        _collect(read_event_log(store, "resp_gone", bus=InProcessEventBus(), idle_timeout=0.1))
    )
    await asyncio.sleep(0.05)
    assert await store.delete("resp_gone", owner=OWNER)
    got = await reader
    assert [(e.sequence_number, e.type) for e in got] == [
        (0, "response.created"),
        (1, "response.failed"),
    ]


async def test_rx_sink_then_source_round_trip(store: SQLStore, bus: EventBus) -> None:
    events = stream("resp_rx", 50)
    sink = EventLogSink(store, "resp_rx", bus=bus, owner=OWNER, create={"model": "m"})
    received: list[Any] = []
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    # The reader subscribes first: it sees the whole stream live.
    subscription = from_event_log(store, "resp_rx", bus=bus).subscribe(
        on_next=received.append,
        on_error=done.set_exception,
        on_completed=lambda: done.set_result(None),
    )
    reactivex.from_iterable(events).subscribe(sink)
    await sink.wait_closed()
    await asyncio.wait_for(done, 10)
    subscription.dispose()
    assert [to_json(e) for e in received] == [to_json(e) for e in events]
    assert type(received[-1]).__name__ == "ResponseCompletedEvent"
    record = await store.get("resp_rx", owner=OWNER)
    assert record is not None
    assert record.request == {"model": "m"}
    assert record.status == "completed"


async def test_log_events_operator_passes_events_on_and_closes_a_cut_stream(
    store: SQLStore,
) -> None:
    events = stream("resp_cut", 5, terminal=False)
    await store.create("resp_cut", owner=OWNER, request={})
    seen: list[Any] = []
    reactivex.from_iterable(events).pipe(log_events(store, "resp_cut")).subscribe(seen.append)
    assert seen == events
    deadline = asyncio.get_running_loop().time() + 5
    while asyncio.get_running_loop().time() < deadline:
        logged = await store.read_events("resp_cut")
        if logged and logged[-1].terminal:
            break
        await asyncio.sleep(0.02)
    assert [e.sequence_number for e in logged] == list(range(8))
    assert logged[-1].type == "response.failed"
    assert json.loads(logged[-1].data)["response"]["error"]["code"] == "server_error"


async def test_sink_in_memory_store_replays_for_a_second_subscriber() -> None:
    async with SQLiteStore(":memory:") as store:
        events = stream("resp_m", 3)
        sink = EventLogSink(store, "resp_m", create={})
        reactivex.from_iterable(events).subscribe(sink)
        await sink.wait_closed()
        for _ in range(2):  # cold: each subscription replays
            got: list[Any] = []
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            from_event_log(store, "resp_m").subscribe(
                on_next=got.append, on_completed=lambda d=done: d.set_result(None)
            )
            await asyncio.wait_for(done, 5)
            assert [e.sequence_number for e in got] == [0, 1, 2, 3, 4, 5]


class _ForgetfulBus(InProcessEventBus):
    """An in-process bus that lost events 3..6 (as a trimmed Redis stream would have)."""

    async def tail(self, response_id: str, *, after: int = -1, idle_timeout: float | None = None):
        async for event in super().tail(response_id, after=after, idle_timeout=idle_timeout):
            if 3 <= event.sequence_number <= 6:
                continue
            yield event


async def test_a_gap_on_the_bus_is_filled_from_the_store(store: SQLStore) -> None:
    bus = _ForgetfulBus()
    await store.create("resp_gap", owner=OWNER, request={})
    events = [_ev(i) for i in range(10)] + [_ev(10, "response.completed")]
    await store.append_events("resp_gap", events[:2])
    await bus.publish("resp_gap", events)
    reader = asyncio.create_task(
        _collect(read_event_log(store, "resp_gap", bus=bus, idle_timeout=0.2, poll_interval=0.02))
    )
    await asyncio.sleep(0.1)
    await store.append_events("resp_gap", events[2:])  # the store catches up later
    got = await reader
    assert [e.sequence_number for e in got] == list(range(11))


async def test_a_cancelled_run_ends_with_its_workers_terminal_event(store: SQLStore) -> None:
    """After a cancel the reader waits for the worker (which holds the lease) to log its own
    terminal event, rather than making one up."""
    await store.create("resp_cx", owner=OWNER, request={})
    await store.append_events("resp_cx", [_ev(0, "response.created"), _ev(1)], lease=30)
    reader = asyncio.create_task(
        _collect(read_event_log(store, "resp_cx", bus=InProcessEventBus(), idle_timeout=0.1))
    )
    cancelled = await store.mark_cancelled("resp_cx", owner=OWNER)
    assert cancelled is not None
    assert cancelled.status == "cancelled"
    await asyncio.sleep(0.5)  # several idle periods of the reader
    assert not reader.done()
    assert await store.append_events("resp_cx", [_ev(2, "response.incomplete")]) == "cancelled"
    got = await reader
    assert [(e.sequence_number, e.type) for e in got] == [
        (0, "response.created"),
        (1, "response.output_text.delta"),
        (2, "response.incomplete"),
    ]

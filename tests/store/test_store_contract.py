"""The ResponseStore contract, run against every backend: in-memory SQLite, a SQLite file, and a
real PostgreSQL server started by the tests."""

from __future__ import annotations

import json
import time

import pytest

from rxresponses.store import (
    EventLogWriter,
    InvalidPageError,
    SQLStore,
    StoredEvent,
    StoreFullError,
    owner_key,
)
from rxresponses.types._base import to_json

from ._events import stream

pytestmark = pytest.mark.anyio

ALICE = owner_key("sk-alice")
BOB = owner_key("sk-bob")


def test_owner_key_is_a_hash_not_the_credential() -> None:
    assert ALICE != BOB
    assert "sk-alice" not in ALICE
    assert len(ALICE) == 64
    assert owner_key("sk-alice") == ALICE
    assert owner_key(None) == owner_key("") == "anonymous"


async def test_create_then_get(store: SQLStore) -> None:
    items = await store.create(
        "resp_1",
        owner=ALICE,
        request={"model": "m", "input": "hi", "store": True},
        input_items=[
            {"type": "message", "role": "user", "content": "hi"},
            {"id": "fc_9", "type": "x"},
        ],
        previous_response_id="resp_0",
        now=1000.0,
    )
    assert items[0]["id"].startswith("msg_")
    assert items[1] == {"id": "fc_9", "type": "x"}
    record = await store.get("resp_1", owner=ALICE)
    assert record is not None
    assert record.id == "resp_1"
    assert record.owner == ALICE
    assert record.status == "in_progress"
    assert record.created_at == 1000.0
    assert record.expires_at is None
    assert record.request == {"model": "m", "input": "hi", "store": True}
    assert record.response is None
    assert record.previous_response_id == "resp_0"
    assert record.last_sequence_number == -1
    assert await store.get("resp_unknown", owner=ALICE) is None
    assert await store.get_input_items("resp_1", owner=ALICE) == items


async def test_a_foreign_owner_sees_nothing(store: SQLStore) -> None:
    await store.create("resp_a", owner=ALICE, request={}, input_items=[{"id": "i1", "type": "x"}])
    assert await store.get("resp_a", owner=BOB) is None
    assert await store.list_input_items("resp_a", owner=BOB) is None
    assert await store.get_input_items("resp_a", owner=BOB) is None
    assert await store.mark_cancelled("resp_a", owner=BOB) is None
    assert await store.delete("resp_a", owner=BOB) is False
    # ...and it is all still there for its owner, untouched.
    record = await store.get("resp_a", owner=ALICE)
    assert record is not None
    assert record.status == "in_progress"


async def test_delete_twice(store: SQLStore) -> None:
    await store.create("resp_d", owner=ALICE, request={}, input_items=[{"id": "i", "type": "x"}])
    await store.append_events("resp_d", [StoredEvent(0, "response.created", "{}")])
    assert await store.delete("resp_d", owner=ALICE) is True
    assert await store.delete("resp_d", owner=ALICE) is False
    assert await store.get("resp_d", owner=ALICE) is None
    assert await store.read_events("resp_d") == []
    assert await store.list_input_items("resp_d", owner=ALICE) is None


async def test_events_append_and_read_after(store: SQLStore) -> None:
    await store.create("resp_e", owner=ALICE, request={})
    events = [StoredEvent(i, "response.output_text.delta", f'{{"n":{i}}}') for i in range(5)]
    assert await store.append_events("resp_e", events[:3]) == "in_progress"
    assert await store.append_events("resp_e", events[2:]) == "in_progress"  # 2 again: skipped
    assert await store.read_events("resp_e") == events
    assert await store.read_events("resp_e", after=2) == events[3:]
    assert await store.read_events("resp_e", after=4) == []
    assert await store.read_events("resp_e", after=0, limit=2) == events[1:3]
    assert await store.append_events("resp_nope", events) is None
    record = await store.get("resp_e", owner=ALICE)
    assert record is not None
    assert record.last_sequence_number == 4


async def test_writer_batches_a_thousand_deltas_into_a_handful_of_commits(store: SQLStore) -> None:
    await store.create("resp_b", owner=ALICE, request={})
    before = store.stats.transactions
    writer = EventLogWriter(store, "resp_b")
    events = stream("resp_b", 1000)
    for event in events:
        writer.add(event)
    await writer.aclose()
    commits = store.stats.transactions - before
    assert 1 <= commits <= 6, commits  # 1,002 events: ceil(1002 / 256) = 4 batches
    logged = await store.read_events("resp_b")
    assert [e.sequence_number for e in logged] == list(range(1003))
    assert [e.data for e in logged] == [to_json(e) for e in events]
    record = await store.get("resp_b", owner=ALICE)
    assert record is not None
    assert record.status == "completed"
    assert record.response is not None
    assert record.response["status"] == "completed"
    assert writer.error is None


async def test_writer_flushes_after_max_delay_without_a_terminal_event(store: SQLStore) -> None:
    await store.create("resp_t", owner=ALICE, request={})
    writer = EventLogWriter(store, "resp_t", max_delay=0.02)
    for event in stream("resp_t", 3, terminal=False):
        writer.add(event)
    deadline = time.monotonic() + 5
    while len(await store.read_events("resp_t")) < 5 and time.monotonic() < deadline:
        await _sleep(0.01)
    assert [e.sequence_number for e in await store.read_events("resp_t")] == [0, 1, 2, 3, 4]
    await writer.aclose()


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_input_items_pagination(store: SQLStore) -> None:
    items = [{"id": f"it_{i}", "type": "message", "content": str(i)} for i in range(5)]
    await store.create("resp_p", owner=ALICE, request={}, input_items=items)

    async def ids(**kw: object) -> tuple[list[str], bool, str | None, str | None]:
        page = await store.list_input_items("resp_p", owner=ALICE, **kw)  # type: ignore[arg-type]
        assert page is not None
        return [d["id"] for d in page.data], page.has_more, page.first_id, page.last_id

    assert await ids() == (["it_4", "it_3", "it_2", "it_1", "it_0"], False, "it_4", "it_0")
    assert await ids(limit=2) == (["it_4", "it_3"], True, "it_4", "it_3")
    assert await ids(limit=2, after="it_3") == (["it_2", "it_1"], True, "it_2", "it_1")
    assert await ids(limit=2, after="it_1") == (["it_0"], False, "it_0", "it_0")
    assert await ids(limit=2, after="it_0") == ([], False, None, None)
    assert await ids(order="asc", limit=3) == (["it_0", "it_1", "it_2"], True, "it_0", "it_2")
    assert await ids(order="asc", after="it_2") == (["it_3", "it_4"], False, "it_3", "it_4")
    assert await ids(limit=100) == (["it_4", "it_3", "it_2", "it_1", "it_0"], False, "it_4", "it_0")
    page = await store.list_input_items("resp_p", owner=ALICE, limit=1)
    assert page is not None
    assert page.to_dict() == {
        "object": "list",
        "data": [items[4]],
        "first_id": "it_4",
        "last_id": "it_4",
        "has_more": True,
    }


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": 10**12}, "limit"),
        ({"limit": "5"}, "limit"),
        ({"limit": True}, "limit"),
        ({"order": "up"}, "order"),
        ({"after": "it_unknown"}, "after"),
        ({"after": ""}, "after"),
    ],
)
async def test_input_items_bad_page_arguments(
    store: SQLStore, kwargs: dict[str, object], param: str
) -> None:
    await store.create("resp_q", owner=ALICE, request={}, input_items=[{"id": "it_0", "type": "x"}])
    with pytest.raises(InvalidPageError) as info:
        await store.list_input_items("resp_q", owner=ALICE, **kwargs)  # type: ignore[arg-type]
    assert info.value.param == param


async def test_retention_expires_old_responses(store_factory) -> None:
    store = store_factory(retention=60.0)
    await store.open()
    try:
        now = time.time()
        await store.create("resp_old", owner=ALICE, request={}, now=now - 120)
        await store.append_events("resp_old", [StoredEvent(0, "response.created", "{}")])
        await store.create("resp_new", owner=ALICE, request={}, now=now)
        assert await store.get("resp_old", owner=ALICE) is None  # expired reads as unknown
        assert await store.delete("resp_old", owner=ALICE) is False
        new = await store.get("resp_new", owner=ALICE)
        assert new is not None
        assert new.expires_at == pytest.approx(now + 60)
        assert await store.purge_expired() == 1
        assert await store.read_events("resp_old") == []
        assert await store.purge_expired() == 0
        assert await store.get("resp_new", owner=ALICE) is not None
    finally:
        await store.close()


async def test_size_cap_by_count(store_factory) -> None:
    store = store_factory(max_responses=2)
    await store.open()
    try:
        await store.create("resp_1", owner=ALICE, request={})
        await store.create("resp_2", owner=BOB, request={})
        with pytest.raises(StoreFullError):
            await store.create("resp_3", owner=ALICE, request={})
        assert await store.get("resp_3", owner=ALICE) is None  # nothing half-written
        assert await store.delete("resp_1", owner=ALICE)
        await store.create("resp_3", owner=ALICE, request={})
    finally:
        await store.close()


async def test_size_cap_by_bytes_frees_expired_responses_first(store_factory) -> None:
    store = store_factory(max_bytes=10_000, retention=60.0)
    await store.open()
    try:
        big = {"input": "x" * 6000}
        await store.create("resp_1", owner=ALICE, request=big, now=time.time() - 120)  # expired
        await store.create("resp_2", owner=ALICE, request=big)  # fits: the expired one is purged
        with pytest.raises(StoreFullError):
            await store.create("resp_3", owner=ALICE, request=big)
        await store.create("resp_4", owner=ALICE, request={"input": "small"})
    finally:
        await store.close()


async def test_cancel_reaches_the_writer_and_a_finished_response_stays(store: SQLStore) -> None:
    await store.create("resp_c", owner=ALICE, request={}, status="queued")
    writer = EventLogWriter(store, "resp_c", max_delay=0.01)
    events = stream("resp_c", 3)
    for event in events[:3]:
        writer.add(event)
    await writer.flush()
    record = await store.mark_cancelled("resp_c", owner=ALICE)
    assert record is not None
    assert record.status == "cancelled"
    writer.add(events[3])
    await writer.flush()
    assert writer.cancelled.is_set()
    writer.add(events[-1])  # the run's own terminal event still lands in the log
    await writer.aclose()
    record = await store.get("resp_c", owner=ALICE)
    assert record is not None
    assert record.status == "cancelled"
    assert record.response is not None
    assert record.response["status"] == "cancelled"
    assert (await store.read_events("resp_c"))[-1].type == "response.completed"

    await store.create("resp_f", owner=ALICE, request={})
    await store.finish(
        "resp_f", status="completed", response={"id": "resp_f", "status": "completed"}
    )
    again = await store.mark_cancelled("resp_f", owner=ALICE)
    assert again is not None
    assert again.status == "completed"


async def test_recovery_fails_runs_left_in_progress(store_factory, store_kind: str) -> None:
    first = store_factory()
    await first.open()
    await first.create("resp_r", owner=ALICE, request={})
    writer = EventLogWriter(first, "resp_r")
    for event in stream("resp_r", 5, terminal=False):
        writer.add(event)
    await writer.flush()
    await first.create("resp_done", owner=ALICE, request={})
    await first.finish("resp_done", status="completed", response=None)
    # The worker dies here: no terminal event, the lease still runs.
    if store_kind == "memory":
        second = first  # an in-memory store dies with its process: recover on the same one
    else:
        second = store_factory()
        await second.open()
    try:
        assert await second.recover() == []  # leased: maybe another worker's live run
        assert await second.recover(include_leased=True) == ["resp_r"]
        assert await second.recover(include_leased=True) == []
        record = await second.get("resp_r", owner=ALICE)
        assert record is not None
        assert record.status == "failed"
        assert record.response is not None
        assert record.response["error"]["code"] == "server_error"
        log = await second.read_events("resp_r")
        assert [e.sequence_number for e in log] == list(range(8))
        assert [e.type for e in log if e.terminal] == ["response.failed"]
        terminal = json.loads(log[-1].data)
        assert terminal["sequence_number"] == 7
        assert terminal["response"]["id"] == "resp_r"
        assert terminal["response"]["status"] == "failed"
        done = await second.get("resp_done", owner=ALICE)
        assert done is not None
        assert done.status == "completed"
    finally:
        await writer.aclose()
        await first.close()
        await second.close()


async def test_recovery_takes_runs_whose_lease_lapsed(store_factory) -> None:
    store = store_factory(lease=0.2)
    await store.open()
    try:
        await store.create("resp_l", owner=ALICE, request={})
        assert await store.recover() == []
        await _sleep(0.3)
        assert await store.recover() == ["resp_l"]
    finally:
        await store.close()


async def test_a_quiet_writer_keeps_its_lease_and_notices_a_cancel(store_factory) -> None:
    """No events for longer than the lease: the heartbeat renews it (recovery leaves the run
    alone) and reports a cancel made meanwhile (e.g. by another worker)."""
    store = store_factory(lease=0.3)
    await store.open()
    try:
        await store.create("resp_q", owner=ALICE, request={})
        writer = EventLogWriter(store, "resp_q", max_delay=0.01)
        writer.add(stream("resp_q", 0)[0])
        await _sleep(0.8)
        assert await store.recover() == []
        assert not writer.cancelled.is_set()
        await store.mark_cancelled("resp_q", owner=ALICE)
        deadline = time.monotonic() + 5
        while not writer.cancelled.is_set() and time.monotonic() < deadline:
            await _sleep(0.02)
        assert writer.cancelled.is_set()
        assert writer.status == "cancelled"
        await writer.aclose()
    finally:
        await store.close()

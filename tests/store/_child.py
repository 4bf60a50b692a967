"""Child processes of the cross-process tests (run as ``python -m tests.store._child ...``).

``join DSN REDIS_URL PREFIX RESPONSE_ID AFTER``: read a response's events with
:func:`from_event_log` (PostgreSQL store + Redis bus) and print one JSON line per event
(``seq``, ``type``, ``delta``), then ``END``.

``crash STORE_URL RESPONSE_ID N``: create the response, log ``N`` events through an
:class:`EventLogWriter`, flush, and die without closing anything (``os._exit``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from rxresponses.store import EventLogWriter, RedisEventBus, from_event_log, open_store

from ._events import stream


async def join(dsn: str, redis_url: str, prefix: str, response_id: str, after: int) -> None:
    store = await open_store(dsn)
    bus = RedisEventBus(redis_url, prefix=prefix)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def show(event: object) -> None:
        line = {
            "seq": event.sequence_number,  # type: ignore[attr-defined]
            "type": event.type,  # type: ignore[attr-defined]
            "delta": getattr(event, "delta", None),
        }
        print(json.dumps(line), flush=True)

    from_event_log(store, response_id, starting_after=after, bus=bus).subscribe(
        on_next=show,
        on_error=done.set_exception,
        on_completed=lambda: done.set_result(None),
    )
    await asyncio.wait_for(done, 60)
    print("END", flush=True)
    await bus.close()
    await store.close()


async def crash(url: str, response_id: str, n: int) -> None:
    store = await open_store(url)
    await store.create(response_id, owner="anonymous", request={"model": "m"})
    writer = EventLogWriter(store, response_id)
    for event in stream(response_id, n, terminal=False):
        writer.add(event)
    await writer.flush()
    print("FLUSHED", flush=True)
    os._exit(3)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "join":
        asyncio.run(join(args[0], args[1], args[2], args[3], int(args[4])))
    else:
        asyncio.run(crash(args[0], args[1], int(args[2])))

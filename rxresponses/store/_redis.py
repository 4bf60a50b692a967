"""Live events across processes and hosts: Redis Streams through redis-py's asyncio client.

One stream per response (``<prefix><response id>``). Each publish is one entry holding the events
published together (usually one; those that arrived while the previous round trip was in flight
otherwise), whose id is ``0-<last sequence_number + 1>``: Redis then keeps the entries in
sequence order and refuses an id it already holds (so a retried publish cannot duplicate
events), and a tail resumes after event N by reading after id ``0-<N + 1>`` (an entry it gets
may start at or before N: the tail drops those events). One entry per batch rather than per
event keeps the client's per-command cost (redis-py packs commands in Python) off the hot path.
A publish is one pipelined round trip (``XADD ... MAXLEN ~`` and ``EXPIRE``); a tail is a
blocking ``XREAD``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from ._base import StoredEvent, StoreUnavailableError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisEventBus"]

#: Longest single blocking XREAD (ms); a tail without ``idle_timeout`` loops over them.
_BLOCK_MS = 5_000


def _driver() -> Any:
    try:
        import redis.asyncio
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError('RedisEventBus needs redis-py: pip install "rxresponses[redis]"') from exc
    return redis


class RedisEventBus:
    """An :class:`~rxresponses.store.EventBus` on Redis Streams, shared by workers and hosts.

    Args:
        url: A Redis URL (``redis://127.0.0.1:6379/0``); ignored when ``client`` is given.
        client: A ``redis.asyncio.Redis`` to use (not closed by :meth:`close`).
        prefix: Prefix of the stream keys.
        maxlen: Entries (publishes) kept per stream (approximately, ``MAXLEN ~``); a tail that
            falls further behind reads the rest from the store.
        live_ttl: Seconds a stream lives after its last publish while the response runs (so a
            crashed worker's stream goes away).
        retain: Seconds a stream lives after its terminal event.
        timeout: Socket connect timeout in seconds.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        client: Redis | None = None,
        prefix: str = "rxresponses:events:",
        maxlen: int = 10_000,
        live_ttl: float = 3600.0,
        retain: float = 600.0,
        timeout: float = 5.0,
    ) -> None:
        redis = _driver()
        self._owns_client = client is None
        self._client: Redis = client or redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=timeout
        )
        self.prefix = prefix
        self.maxlen = maxlen
        self.live_ttl = live_ttl
        self.retain = retain

    def __repr__(self) -> str:
        return f"RedisEventBus(prefix={self.prefix!r})"

    def _key(self, response_id: str) -> str:
        return self.prefix + response_id

    async def publish(self, response_id: str, events: Sequence[StoredEvent]) -> None:
        """Publish a batch in one pipelined round trip (see :meth:`EventBus.publish`)."""
        if not events:
            return
        redis = _driver()
        key = self._key(response_id)
        ordered: list[StoredEvent] = []
        for event in sorted(events, key=lambda e: e.sequence_number):
            if not ordered or event.sequence_number > ordered[-1].sequence_number:
                ordered.append(event)
        terminal = any(e.terminal for e in ordered)
        pipe = self._client.pipeline(transaction=False)
        pipe.xadd(
            key,
            {
                "s": ",".join(str(e.sequence_number) for e in ordered),
                "t": "\n".join(e.type for e in ordered),
                "d": "\n".join(e.data for e in ordered),
            },
            id=f"0-{ordered[-1].sequence_number + 1}",
            maxlen=self.maxlen,
            approximate=True,
        )
        pipe.expire(key, int(self.retain if terminal else self.live_ttl))
        try:
            results = await pipe.execute(raise_on_error=False)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailableError(f"Redis event bus: {exc}") from exc
        for result in results:
            if isinstance(result, (redis.ConnectionError, redis.TimeoutError)):
                raise StoreUnavailableError(f"Redis event bus: {result}")
            if isinstance(result, Exception) and "equal or smaller" not in str(result):
                raise StoreUnavailableError(f"Redis event bus refused an event: {result}")

    async def tail(
        self, response_id: str, *, after: int = -1, idle_timeout: float | None = None
    ) -> AsyncIterator[StoredEvent]:
        """Blocking ``XREAD`` after ``0-<after + 1>`` (see :meth:`EventBus.tail`)."""
        redis = _driver()
        key = self._key(response_id)
        last_id = f"0-{after + 1}"
        last = after
        deadline = None if idle_timeout is None else time.monotonic() + idle_timeout
        while True:
            block = _BLOCK_MS
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                block = max(1, min(block, int(left * 1000)))
            try:
                answer = await self._client.xread({key: last_id}, count=1000, block=block)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                raise StoreUnavailableError(f"Redis event bus: {exc}") from exc
            if not answer:
                continue
            streams: list[Any] = list(answer)
            for _stream, entries in streams:
                for entry_id, fields in entries:
                    last_id = _text(entry_id)
                    seqs = _text(fields.get(b"s", b"")).split(",")
                    types = _text(fields.get(b"t", b"")).split("\n")
                    datas = _text(fields.get(b"d", b"")).split("\n")
                    for seq, kind, data in zip(seqs, types, datas, strict=True):
                        event = StoredEvent(int(seq), kind, data)
                        if event.sequence_number <= last:
                            continue
                        last = event.sequence_number
                        yield event
                        if event.terminal:
                            return
            if deadline is not None:
                deadline = time.monotonic() + (idle_timeout or 0.0)

    async def close(self) -> None:
        """Close the client this bus created (idempotent)."""
        if self._owns_client:
            await self._client.aclose()


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)

"""Live events: the :class:`EventBus` protocol and its in-process implementation.

A bus carries the events of running responses from the worker that produces them to tails (a
resumed stream, a UI in another process) while they happen. The store keeps them for good; the bus
only while the response is live and for ``retain`` seconds after its terminal event. Sequence
numbers order and deduplicate everything: a bus drops an event whose number it already carries.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ._base import StoredEvent

__all__ = ["EventBus", "InProcessEventBus"]


@runtime_checkable
class EventBus(Protocol):
    """Carries live events from one producer per response to any number of tails."""

    async def publish(self, response_id: str, events: Sequence[StoredEvent]) -> None:
        """Publish events of ``response_id`` in sequence order (numbers already seen are dropped).

        Raises:
            StoreUnavailableError: The bus backend cannot be reached.
        """

    def tail(
        self, response_id: str, *, after: int = -1, idle_timeout: float | None = None
    ) -> AsyncIterator[StoredEvent]:
        """The events with ``sequence_number > after`` the bus holds, then live ones, in order.

        Ends after a terminal event, or when nothing arrives for ``idle_timeout`` seconds (the
        caller then asks the store whether the run is still alive). A tail may start before the
        first event is published. Events the bus no longer holds (trimmed, expired) are skipped:
        the caller sees a gap in the sequence numbers and reads them from the store.
        """

    async def close(self) -> None:
        """Release connections (idempotent)."""


@dataclass
class _Channel:
    events: list[StoredEvent] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    tails: int = 0
    ended: bool = False


class InProcessEventBus:
    """An :class:`EventBus` for one worker process: tails are tasks on the same event loop.

    Each live response keeps its events in memory until ``retain`` seconds after its terminal
    event (a 2,000-event stream is about 1 MB), so a tail that joins late replays from here
    without touching the store.

    Args:
        retain: Seconds a finished response's events stay after its terminal event.
    """

    def __init__(self, *, retain: float = 60.0) -> None:
        self.retain = retain
        self._channels: dict[str, _Channel] = {}

    def __repr__(self) -> str:
        return f"InProcessEventBus(live={len(self._channels)})"

    def _channel(self, response_id: str) -> _Channel:
        channel = self._channels.get(response_id)
        if channel is None:
            channel = self._channels[response_id] = _Channel()
        return channel

    async def publish(self, response_id: str, events: Sequence[StoredEvent]) -> None:
        """Publish events (see :meth:`EventBus.publish`)."""
        channel = self._channel(response_id)
        for event in events:
            if channel.seqs and event.sequence_number <= channel.seqs[-1]:
                continue
            channel.events.append(event)
            channel.seqs.append(event.sequence_number)
            if event.terminal and not channel.ended:
                channel.ended = True
                asyncio.get_running_loop().call_later(self.retain, self._drop, response_id, channel)
        changed, channel.changed = channel.changed, asyncio.Event()
        changed.set()

    def _drop(self, response_id: str, channel: _Channel) -> None:
        if self._channels.get(response_id) is channel:
            del self._channels[response_id]

    async def tail(
        self, response_id: str, *, after: int = -1, idle_timeout: float | None = None
    ) -> AsyncIterator[StoredEvent]:
        """Replay what is held after ``after``, then follow (see :meth:`EventBus.tail`)."""
        channel = self._channel(response_id)
        channel.tails += 1
        try:
            index = bisect.bisect_right(channel.seqs, after)
            while True:
                while index < len(channel.events):
                    event = channel.events[index]
                    index += 1
                    yield event
                    if event.terminal:
                        return
                try:
                    async with asyncio.timeout(idle_timeout):
                        await channel.changed.wait()
                except TimeoutError:
                    return
        finally:
            channel.tails -= 1
            if not channel.tails and not channel.events:
                self._drop(response_id, channel)

    async def close(self) -> None:
        """Forget every channel."""
        self._channels.clear()

"""Fan one stream out to several sinks with a single upstream subscription.

Every rxresponses source is *cold*: each subscription reads the file or sends the HTTP request
again. To feed a UI, a logger and a file from one stream, multicast it. For the sync sources
(files, ``from_httpx``) the values flow as soon as the source is subscribed, so subscribe every
sink first and connect last: that is ``publish()`` + ``connect()``, which :func:`fan_out` does::

    fan_out(events, TerminalRenderer(), LoggingSink(log), SSEWriter(fh))

``share()`` (``publish()`` + ``ref_count()``) connects at the *first* subscription, so it fits
asynchronous sources (``from_httpx_async``, sources subscribed on a scheduler), where the other
sinks subscribe before the first value arrives.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable

from ..operators._final import final_response
from ..types.events import ResponseStreamEvent
from ..types.response import Response

__all__ = ["afan_out", "fan_out"]

_T = TypeVar("_T")


def fan_out(
    source: Observable[_T],
    *sinks: abc.ObserverBase[_T] | Callable[[_T], Any],
    scheduler: abc.SchedulerBase | None = None,
) -> abc.DisposableBase:
    """Subscribe every sink to one shared subscription of ``source``, then connect it.

    With a sync source this returns after the stream has ended (the sinks ran on this thread);
    with an async source it returns at once, and disposing the result cancels the stream.

    Args:
        source: The stream (cold or hot). It is subscribed exactly once.
        sinks: Observers (``SSEWriter``, ``TerminalRenderer``...) or plain ``on_next`` callables.
        scheduler: Passed to ``connect()`` (for example an ``AsyncIOScheduler``).

    Returns:
        A disposable that unsubscribes every sink and the source.
    """
    connectable = source.pipe(ops.publish())
    subscriptions = [connectable.subscribe(sink) for sink in sinks]
    connection = connectable.connect(scheduler)
    if connection is not None:
        subscriptions.append(connection)
    return CompositeDisposable(*subscriptions)


async def afan_out(
    source: Observable[ResponseStreamEvent],
    *sinks: abc.ObserverBase[ResponseStreamEvent] | Callable[[ResponseStreamEvent], Any],
) -> Response:
    """Feed every sink from one subscription of ``source`` and return the final ``Response``.

    The async :func:`fan_out`: the sinks are subscribed, then the stream is connected on the
    running loop, and the call resolves when the stream ends (to its ``Response``, whatever its
    status; a pipeline error is raised). Cancelling the call disposes the stream, which closes
    the upstream. Meant for async sources (``from_httpx_async``,
    ``rxresponses.responses.create`` with an ``httpx.AsyncClient``): a sync source would run
    inside ``connect()`` and hold the loop.
    """
    loop = asyncio.get_running_loop()
    owner = threading.get_ident()
    done: asyncio.Future[Response] = loop.create_future()

    def settle(action: Callable[[], None]) -> None:
        def run() -> None:
            if not done.done():
                action()

        if threading.get_ident() == owner:
            run()
        else:
            loop.call_soon_threadsafe(run)

    connectable = source.pipe(ops.publish())
    subscriptions = [connectable.subscribe(sink) for sink in sinks]
    subscriptions.append(
        connectable.pipe(final_response()).subscribe(
            lambda response: settle(lambda: done.set_result(response)),
            lambda error: settle(lambda: done.set_exception(error)),
        )
    )
    connection = connectable.connect()
    if connection is not None:
        subscriptions.append(connection)
    try:
        return await done
    finally:
        CompositeDisposable(*subscriptions).dispose()

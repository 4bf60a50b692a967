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

from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable

__all__ = ["fan_out"]

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

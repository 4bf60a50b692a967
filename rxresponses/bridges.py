"""Leave Rx: blocking iteration, ``async for``, and the final ``Response``.

>>> for event in iterate(from_file("chat.sse").pipe(parse_chunks(), chat_to_responses())):
...     print(event.type)

:func:`iterate` runs the pipeline on a worker thread and hands values over through a queue, so a
blocking source (a sync HTTP response) is read while you consume; leaving the loop early
disposes the subscription, which closes the upstream. :func:`aiterate` subscribes on the running
asyncio loop: async sources run there as tasks, and the sync sources of rxresponses (and of
reactivex) are given a new-thread scheduler, so they read on a worker thread and never hold the
loop; breaking out of ``async for`` disposes likewise.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import SingleAssignmentDisposable
from reactivex.scheduler.eventloop import AsyncIOThreadSafeScheduler

from .operators._final import final_response
from .types.events import ResponseStreamEvent
from .types.response import Response

__all__ = ["aget_final_response", "aiterate", "get_final_response", "iterate"]

_T = TypeVar("_T")
_S = TypeVar("_S")
_END = object()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


class _Stopped(Exception):
    """Raised into a running source when the consumer of :func:`iterate` has left."""


class _OffLoopScheduler(AsyncIOThreadSafeScheduler):
    """The scheduler :func:`aiterate` subscribes with: a loop's, but ``schedule()`` (a sync
    source's whole read loop) runs on a new worker thread instead of the loop."""

    def schedule(
        self, action: abc.ScheduledAction[_S], state: _S | None = None
    ) -> abc.DisposableBase:
        disposable = SingleAssignmentDisposable()

        def run() -> None:
            if not disposable.is_disposed:
                disposable.disposable = self.invoke_action(action, state)

        threading.Thread(target=run, name="rxresponses-aiterate", daemon=True).start()
        return disposable


def iterate(source: Observable[_T]) -> Iterator[_T]:
    """Iterate the values of ``source``, blocking; its error, if any, is raised at the end.

    The pipeline runs on a worker thread, subscribed without a scheduler, so time-based operators
    (``debounce``, ``buffer_with_time``...) keep their own timers. Leaving the loop early
    disposes the subscription; a sync source still inside ``subscribe()`` (``from_file``,
    ``from_httpx``) is stopped at its next value (its observer raises), which closes the file or
    the HTTP response instead of draining it.
    """
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    subscription = SingleAssignmentDisposable()
    stopped = threading.Event()

    def on_next(value: Any) -> None:
        if stopped.is_set():
            raise _Stopped
        q.put(value)

    def on_error(error: Exception) -> None:
        if not isinstance(error, _Stopped):
            q.put(_Failure(error))

    def run() -> None:
        try:
            subscription.disposable = source.subscribe(on_next, on_error, lambda: q.put(_END))
        except _Stopped:
            pass  # the consumer left while a sync source was emitting: it has stopped
        except Exception as exc:  # subscribe() itself failed
            q.put(_Failure(exc))

    threading.Thread(target=run, name="rxresponses-iterate", daemon=True).start()
    try:
        while True:
            value = q.get()
            if value is _END:
                return
            if isinstance(value, _Failure):
                raise value.error
            yield value
    finally:
        stopped.set()
        subscription.dispose()


async def aiterate(source: Observable[_T]) -> AsyncIterator[_T]:
    """``async for`` over the values of ``source``; its error, if any, is raised at the end.

    ``source`` is subscribed on the running loop with a scheduler of that loop whose immediate
    actions run on a worker thread: async sources (``from_httpx_async``, ``from_bytes`` over an
    async iterable) run as tasks on the loop as before, while sync sources that honour the
    scheduler (``from_file``, ``from_httpx``, ``from_bytes`` over an iterable,
    ``reactivex.from_iterable``) read on a worker thread, so the loop keeps running while they
    block. Timers (``debounce``...) run on the loop. A source of your own that ignores the
    scheduler runs inside ``subscribe()`` and holds the loop until it ends: give it
    ``subscribe_on(...)``, or use :func:`iterate`.
    """
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[Any] = asyncio.Queue()
    owner = threading.get_ident()

    def put(value: Any) -> None:
        if threading.get_ident() == owner:
            q.put_nowait(value)
        else:
            loop.call_soon_threadsafe(q.put_nowait, value)

    subscription = source.subscribe(
        put, lambda e: put(_Failure(e)), lambda: put(_END), scheduler=_OffLoopScheduler(loop)
    )
    try:
        while True:
            value = await q.get()
            if value is _END:
                return
            if isinstance(value, _Failure):
                raise value.error
            yield value
    finally:
        subscription.dispose()


def get_final_response(source: Observable[ResponseStreamEvent]) -> Response:
    """Run an event pipeline to the end and return its final :class:`Response` (blocking).

    Incomplete and failed streams return their response with that status; nothing is raised for
    them (see :func:`~rxresponses.operators.final_response`).
    """
    for response in iterate(source.pipe(final_response())):
        return response
    raise RuntimeError("final_response() emitted nothing")  # pragma: no cover - it always emits


async def aget_final_response(source: Observable[ResponseStreamEvent]) -> Response:
    """Async :func:`get_final_response`, for pipelines over async sources."""
    async for response in aiterate(source.pipe(final_response())):
        return response
    raise RuntimeError("final_response() emitted nothing")  # pragma: no cover

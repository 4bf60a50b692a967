"""Recordings the project made itself, and the helpers that play them back.

``demo.sse`` is a Chat Completions SSE body written by the project's scripted model (reasoning, a
sentence of text, then two parallel ``get_weather`` tool calls, then usage). It is generated, never
edited by hand::

    python -m rxresponses.scripted > rxresponses/data/demo.sse

and a test checks that regenerating it gives the same bytes. ``rxresponses demo``, the notebooks
and the tests read it through :func:`demo_bytes`, so no network and no key are needed.

>>> from rxresponses import get_final_response
>>> get_final_response(demo_events()).status
'completed'
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from importlib import resources
from typing import Any, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from ..operators import decode_sse
from ..pipelines import chat_to_responses
from ..sse import SSEMessage

__all__ = ["DEMO_FILE", "demo_bytes", "demo_events", "demo_messages", "paced", "sequential_ids"]

_T = TypeVar("_T")

#: The name of the embedded demo recording inside this package.
DEMO_FILE = "demo.sse"


def demo_bytes() -> bytes:
    """The bytes of the embedded demo recording (a Chat Completions SSE body)."""
    return resources.files(__name__).joinpath(DEMO_FILE).read_bytes()


def sequential_ids(start: int = 1) -> Callable[[str], str]:
    """An id factory (for ``chat_to_responses(ids=...)``) that counts: ``msg_000001``...

    Each call returns a new counter, so the same pipeline built twice gives the same ids: useful
    for reproducible output (``rxresponses convert --stable-ids``, notebooks, tests).
    """
    counter = itertools.count(start)

    def make(prefix: str) -> str:
        return f"{prefix}_{next(counter):06d}"

    return make


def paced(
    delay: float,
    *,
    jitter: float = 0.5,
    first: float | None = None,
    seed: int = 0,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Slow a stream down to a model's pace: wait about ``delay`` seconds before each value.

    The wait happens on the thread that delivers the value (the subscribing thread, for the sync
    sources), so a blocking consumer such as the terminal renderer sees values arrive over time.
    Each subscription draws its own seeded jitter, so two runs have the same rhythm.

    .. code-block:: text

        a-b-c-|
        [ paced(0.03) ]
        --a--b--c-|

    Args:
        delay: Mean wait in seconds before each value (``0`` passes values through at once).
        jitter: Relative spread of the waits (``0.5``: uniform in ``delay * [0.5, 1.5]``).
        first: The wait before the first value (time to first token); default ``8 * delay``.
        seed: Seed of the jitter.
    """

    def _paced(source: Observable[_T]) -> Observable[_T]:
        if delay <= 0 and not first:
            return source

        def factory(_scheduler: abc.SchedulerBase | None = None) -> Observable[_T]:
            rng = random.Random(seed)
            count = 0

            def wait(_value: _T) -> None:
                nonlocal count
                if count == 0:
                    seconds = 8 * delay if first is None else first
                else:
                    seconds = delay * (1.0 + jitter * (2.0 * rng.random() - 1.0))
                count += 1
                if seconds > 0:
                    time.sleep(seconds)

            return source.pipe(ops.do_action(on_next=wait))

        return reactivex.defer(factory)

    return _paced


def demo_messages(
    *, delay: float = 0.0, jitter: float = 0.5, seed: int = 0
) -> Observable[SSEMessage]:
    """The SSE messages of the demo recording, optionally :func:`paced` (``delay`` seconds each)."""
    messages: Observable[SSEMessage] = reactivex.defer(lambda _: reactivex.just(demo_bytes())).pipe(
        decode_sse()
    )
    return messages.pipe(paced(delay, jitter=jitter, seed=seed))


def demo_events(
    *, delay: float = 0.0, jitter: float = 0.5, seed: int = 0, stable_ids: bool = True
) -> Observable[Any]:
    """The demo recording converted to typed Responses events by the full operator pipeline.

    Args:
        delay: Seconds to wait before each Chat chunk (see :func:`paced`); ``0`` runs at once.
        jitter: Relative spread of the waits.
        seed: Seed of the jitter.
        stable_ids: Use :func:`sequential_ids` (same ids on every run) instead of random ids.
    """
    from ..operators import parse_chunks

    def factory(_scheduler: abc.SchedulerBase | None = None) -> Observable[Any]:
        options: dict[str, Any] = {"ids": sequential_ids()} if stable_ids else {}
        return demo_messages(delay=delay, jitter=jitter, seed=seed).pipe(
            parse_chunks(), chat_to_responses(**options)
        )

    return reactivex.defer(factory)

"""The one Rx shell every stateful rxresponses operator uses.

A *stage* is a plain object with ``handle(value) -> list | None`` and ``finish() -> list``. ``None``
from ``handle`` means "not mine: pass the value through unchanged". The shell creates one stage per
subscription (so two subscriptions never share state), forwards what it returns, passes the
scheduler on to the source, and sends exceptions raised by the stage to ``on_error``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from reactivex import Observable, abc

from ..types._base import WireModel

__all__ = ["Stage", "delta_maker", "stage_operator"]

_T_in = TypeVar("_T_in", contravariant=True)
_T = TypeVar("_T")


class Stage(Protocol[_T_in]):
    """What :func:`stage_operator` drives."""

    def handle(self, value: _T_in) -> list[Any] | None: ...

    def finish(self) -> list[Any]: ...


def stage_operator(
    factory: Callable[[], Stage[Any]],
) -> Callable[[Observable[Any]], Observable[Any]]:
    """Turn a stage factory into an operator (one stage per subscription)."""

    def _operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            stage = factory()
            on_next_down = observer.on_next

            def on_next(value: Any) -> None:
                try:
                    out = stage.handle(value)
                except Exception as exc:
                    observer.on_error(exc)
                    return
                if out is None:
                    on_next_down(value)
                else:
                    for item in out:
                        on_next_down(item)

            def on_completed() -> None:
                try:
                    out = stage.finish()
                except Exception as exc:
                    observer.on_error(exc)
                    return
                for item in out:
                    on_next_down(item)
                observer.on_completed()

            return source.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _operator


def delta_maker(
    event: type[WireModel], append: Callable[[str], None], fields: dict[str, Any]
) -> Callable[[str], Any]:
    """The function a stage builds once per open part: append a fragment to the part's buffer
    and return its delta event. The stage's ``handle()`` calls it for each delta signal, and
    hands it out as the fused pipeline's fast lane (see :mod:`rxresponses.operators._fused`).

    ``fields`` are the event's fields in declared order, ``delta`` among them (its value is
    replaced); the event is built with :meth:`WireModel.trusted`, ``sequence_number`` 0 until
    the assembler numbers it. A ``logprobs`` field gets a new empty list in every event.
    """
    make = event.trusted
    fresh_logprobs = "logprobs" in fields

    def delta(text: str) -> Any:
        append(text)
        values = fields.copy()
        values["delta"] = text
        if fresh_logprobs:
            values["logprobs"] = []
        return make(values)

    return delta

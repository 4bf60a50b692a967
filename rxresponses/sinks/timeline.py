"""A picture of a stream: when each event arrived, one lane per output item.

>>> timed = list(iterate(events.pipe(timestamped())))                   # doctest: +SKIP
>>> plot_timeline(timed)                                                # doctest: +SKIP

:func:`timestamped` tags each event with the seconds since subscription as it passes;
:func:`plot_timeline` draws them with matplotlib (imported only when you plot; install the
``notebook`` extra): time runs across, each ``output_index`` has its lane (a bar from
``output_item.added`` to ``output_item.done``, a tick per delta), and the response lifecycle has
the top lane.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["TimedEvent", "plot_timeline", "timestamped"]

_T = TypeVar("_T")

_ITEM_COLORS = {
    "reasoning": "#8c8c8c",
    "message": "#1f77b4",
    "function_call": "#ff7f0e",
    "custom_tool_call": "#ff7f0e",
}
_OTHER_COLOR = "#2ca02c"
_LIFECYCLE_MARKERS = {
    "response.created": ("o", "#555555"),
    "response.queued": ("o", "#555555"),
    "response.in_progress": ("o", "#999999"),
    "response.completed": ("D", "#2ca02c"),
    "response.incomplete": ("D", "#d4a017"),
    "response.failed": ("X", "#d62728"),
    "error": ("X", "#d62728"),
}


class TimedEvent(NamedTuple):
    """An event and when it passed, in seconds since the subscription (see :func:`timestamped`)."""

    time: float
    event: Any


def timestamped(
    clock: Callable[[], float] = time.perf_counter,
) -> Callable[[Observable[_T]], Observable[TimedEvent]]:
    """Tag each value with the time it passed, in seconds since subscription.

    The clock starts at each subscription (two subscriptions have their own zero).

    .. code-block:: text

        --a----b--|
        [ timestamped() ]
        --(0.1,a)----(0.3,b)--|

    Args:
        clock: Monotonic seconds (default :func:`time.perf_counter`).
    """

    def _timestamped(source: Observable[_T]) -> Observable[TimedEvent]:
        def factory(_scheduler: abc.SchedulerBase | None = None) -> Observable[TimedEvent]:
            start = clock()
            return source.pipe(ops.map(lambda value: TimedEvent(clock() - start, value)))

        return reactivex.defer(factory)

    return _timestamped


def plot_timeline(
    events_with_times: Iterable[TimedEvent | tuple[float, Any] | Any],
    ax: Axes | None = None,
    *,
    title: str | None = None,
) -> Axes:
    """Draw a timeline of a stream: a lane per ``output_index``, time across.

    Args:
        events_with_times: :class:`TimedEvent` values (or ``(seconds, event)`` pairs), as
            :func:`timestamped` makes them. Plain events are accepted too and placed by their
            position in the stream.
        ax: The matplotlib axes to draw on (default: a new figure).
        title: The axes title (default: the response id and status, when known).

    Returns:
        The axes, for further styling.

    Raises:
        ImportError: matplotlib is not installed (the message names the extra to install).
    """
    try:
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
    except ImportError as exc:
        raise ImportError(
            "plot_timeline() needs matplotlib: pip install 'rxresponses[notebook]'",
            name=exc.name,
        ) from exc

    points: list[tuple[float, Any]] = []
    timed = True
    for n, value in enumerate(events_with_times):
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int | float):
            points.append((float(value[0]), value[1]))
        else:
            timed = False
            points.append((float(n), value))
    if ax is None:
        lanes_guess = 1 + len({getattr(e, "output_index", None) for _, e in points})
        _, ax = plt.subplots(figsize=(10, 1.0 + 0.55 * lanes_guess))

    labels: dict[int, str] = {}
    colors: dict[int, str] = {}
    opened: dict[int, float] = {}
    spans: list[tuple[int, float, float]] = []
    ticks: dict[int, list[float]] = {}
    lifecycle: list[tuple[float, str]] = []
    response_label = ""
    end = points[-1][0] if points else 0.0
    for t, event in points:
        kind = str(getattr(event, "type", ""))
        index = getattr(event, "output_index", None)
        if kind in _LIFECYCLE_MARKERS:
            lifecycle.append((t, kind))
            response = getattr(event, "response", None)
            if response is not None:
                response_label = f"{response.id} ({response.status})"
            continue
        if not isinstance(index, int):
            continue
        item = getattr(event, "item", None)
        if kind == "response.output_item.added" and item is not None:
            item_type = str(getattr(item, "type", "item"))
            name = getattr(item, "name", None)
            labels[index] = f"{index} {item_type}" + (f" {name}" if name else "")
            colors[index] = _ITEM_COLORS.get(item_type, _OTHER_COLOR)
            opened[index] = t
        elif kind == "response.output_item.done":
            spans.append((index, opened.pop(index, t), t))
            if index not in labels and item is not None:
                labels[index] = f"{index} {getattr(item, 'type', 'item')}"
                colors[index] = _ITEM_COLORS.get(str(getattr(item, "type", "")), _OTHER_COLOR)
        elif kind.endswith(".delta"):
            ticks.setdefault(index, []).append(t)
        labels.setdefault(index, f"{index}")
        colors.setdefault(index, _OTHER_COLOR)
    for index, start in opened.items():  # items that never finished: open-ended bars
        spans.append((index, start, end))

    lanes = sorted(labels)
    height = 0.6
    for index, start, stop in spans:
        ax.broken_barh(
            [(start, max(stop - start, 1e-9))],
            (index - height / 2, height),
            facecolors=colors[index],
            alpha=0.18,
            edgecolor=colors[index],
        )
    for index, times in ticks.items():
        ax.scatter(times, [index] * len(times), marker="|", s=120, color=colors[index], lw=1.2)
    for t, kind in lifecycle:
        marker, color = _LIFECYCLE_MARKERS[kind]
        ax.scatter([t], [-1], marker=marker, s=60, color=color, zorder=3)
    ax.set_yticks([-1, *lanes], ["response", *(labels[i] for i in lanes)])
    ax.set_ylim(max(lanes, default=0) + 0.7, -1.7)
    ax.set_xlabel("seconds since subscription" if timed else "event position in the stream")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title if title is not None else response_label)
    handles = [
        Line2D([], [], color=c, marker="|", linestyle="none", markersize=10, label=k)
        for k, c in _ITEM_COLORS.items()
        if k in {t.split(" ")[1] for t in labels.values() if " " in t}
    ]
    handles += [
        Line2D(
            [],
            [],
            color=_LIFECYCLE_MARKERS[k][1],
            marker=_LIFECYCLE_MARKERS[k][0],
            linestyle="none",
            label=k.removeprefix("response."),
        )
        for k in dict.fromkeys(kind for _, kind in lifecycle)
        if k != "response.in_progress"
    ]
    if handles:
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize="small",
            frameon=False,
        )
    figure = ax.get_figure()
    if figure is not None and hasattr(figure, "tight_layout"):
        figure.tight_layout()
    return ax

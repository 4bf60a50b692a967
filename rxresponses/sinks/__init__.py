"""Where typed Responses events go: files, logs, a terminal, a notebook, a plot.

Every sink is an Rx observer (``on_next`` / ``on_error`` / ``on_completed``), so it is the end of
a pipeline or a tap in the middle of one::

    events.subscribe(SSEWriter(fh))
    events.pipe(ops.do(LoggingSink("app.llm")), ...)

=========================  ==================================================================
:class:`SSEWriter`         SSE frames (``event:`` + ``data:``) to a binary (or text) file
:class:`JSONLWriter`       one JSON event per line (the SSE ``data:`` payload)
:class:`LoggingSink`       one structured :mod:`logging` record per event (deltas aggregable)
:class:`TerminalRenderer`  live ANSI rendering and a summary of the final Response
:class:`LiveDisplay`       a notebook output redrawn as the Response builds
:func:`fan_out`            one upstream subscription feeding several sinks
:func:`afan_out`           the same, awaited: resolves to the final ``Response``
:func:`timestamped`        tag events with their arrival time, for :func:`plot_timeline`
=========================  ==================================================================

:mod:`~rxresponses.sinks.notebook` also provides the HTML/Markdown reprs that Jupyter shows for
events and ``Response`` objects; :mod:`~rxresponses.sinks.timeline` imports matplotlib only when
you plot.
"""

from __future__ import annotations

from .fanout import afan_out, fan_out
from .files import JSONLWriter, SSEWriter, jsonl_writer, sse_writer
from .log import LoggingSink, logging_sink
from .notebook import LiveDisplay, events_table
from .terminal import (
    Outcome,
    RichRenderer,
    TerminalRenderer,
    format_summary,
    terminal_renderer,
)
from .timeline import TimedEvent, plot_timeline, timestamped

__all__ = [
    "afan_out",
    "JSONLWriter",
    "LiveDisplay",
    "LoggingSink",
    "Outcome",
    "SSEWriter",
    "RichRenderer",
    "TerminalRenderer",
    "TimedEvent",
    "events_table",
    "fan_out",
    "format_summary",
    "jsonl_writer",
    "logging_sink",
    "plot_timeline",
    "terminal_renderer",
    "sse_writer",
    "timestamped",
]

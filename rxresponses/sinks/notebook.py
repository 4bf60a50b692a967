"""Jupyter display: readable HTML and Markdown for events, output items and ``Response``.

Every rxresponses model has ``_repr_html_`` / ``_repr_markdown_`` (on
:class:`~rxresponses.types._base.WireModel`) that delegate here (this module registers itself with
:func:`~rxresponses.types._base.set_display_hook` when imported, and ``import rxresponses`` imports
it), so evaluating an event or a ``Response`` in a notebook shows:

* a ``Response``: a compact table with its id, status, model, each output item summarised (text
  clipped, tool calls with their arguments) and the token usage;
* an event: its type, sequence number, item, indexes and the delta (or done) text; lifecycle
  events add their response's table;
* an output item: its type, id, and content summarised.

:func:`events_table` shows a list of events as one table, and :class:`LiveDisplay` is an observer
that redraws the Response in one output cell while a stream runs.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from typing import Any

from reactivex import abc

from ..operators._final import ResponseAccumulator
from ..types._base import set_display_hook
from ..types.response import (
    Response,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputRefusal,
    ResponseOutputText,
    ResponseReasoningItem,
)

__all__ = [
    "EventTable",
    "LiveDisplay",
    "event_html",
    "event_markdown",
    "events_table",
    "item_html",
    "item_markdown",
    "repr_html",
    "repr_markdown",
    "response_html",
    "response_markdown",
]

_STATUS_COLORS = {
    "completed": "#1a7f37",
    "incomplete": "#9a6700",
    "failed": "#cf222e",
    "cancelled": "#cf222e",
}
_TEXT_FIELDS = ("delta", "text", "arguments", "refusal", "input", "code", "diff")
_TABLE = 'style="border-collapse:collapse;font-size:90%;text-align:left"'
_CELL = 'style="text-align:left;vertical-align:top;padding:2px 8px"'
_CLIP = 120


# -- dispatch (what WireModel._repr_html_ / _repr_markdown_ call) ----------------------------------


def repr_html(obj: Any) -> str | None:
    """HTML for any rxresponses model, or ``None`` (Jupyter then shows the plain repr)."""
    if isinstance(obj, Response):
        return response_html(obj)
    if _is_event(obj):
        return event_html(obj)
    if _is_item(obj):
        return item_html(obj)
    return None


def repr_markdown(obj: Any) -> str | None:
    """Markdown for any rxresponses model, or ``None``."""
    if isinstance(obj, Response):
        return response_markdown(obj)
    if _is_event(obj):
        return event_markdown(obj)
    if _is_item(obj):
        return item_markdown(obj)
    return None


def _is_event(obj: Any) -> bool:
    return isinstance(getattr(obj, "type", None), str) and hasattr(obj, "sequence_number")


def _is_item(obj: Any) -> bool:
    return isinstance(
        obj, ResponseOutputMessage | ResponseReasoningItem | ResponseFunctionToolCall
    ) or (isinstance(getattr(obj, "type", None), str) and hasattr(obj, "status"))


# -- Response ----------------------------------------------------------------------------------


def response_html(response: Response) -> str:
    """A compact HTML table of a Response: status, model, output items, usage, error."""
    e = html.escape
    status = response.status or "unknown"
    color = _STATUS_COLORS.get(status, "#57606a")
    head = (
        f"<b>Response</b> <code>{e(response.id)}</code> "
        f'<span style="color:{color};font-weight:bold">{e(status)}</span>'
        f" &middot; {e(response.model)}"
    )
    rows = []
    for n, item in enumerate(response.output):
        kind, ident, summary = _item_parts(item)
        style = ' style="color:#6e7781"' if kind == "reasoning" else ""
        rows.append(
            f"<tr><td {_CELL}>{n}</td><td {_CELL}>{e(kind)}</td>"
            f"<td {_CELL}><code>{e(ident)}</code></td>"
            f"<td {_CELL}><span{style}>{e(summary)}</span></td></tr>"
        )
    if not rows:
        rows.append(f'<tr><td {_CELL} colspan="4"><i>no output items</i></td></tr>')
    foot = [f"<b>usage</b> {e(_usage_text(response))}"] if response.usage is not None else []
    if response.error is not None:
        foot.append(
            f'<b>error</b> <span style="color:{_STATUS_COLORS["failed"]}">'
            f"{e(str(response.error.code))}: {e(response.error.message)}</span>"
        )
    if response.incomplete_details is not None and response.incomplete_details.reason:
        foot.append(f"<b>incomplete</b> {e(response.incomplete_details.reason)}")
    foot_html = "".join(f'<tr><td {_CELL} colspan="4">{f}</td></tr>' for f in foot)
    return (
        f'<div class="rxresponses-response"><table {_TABLE}>'
        f'<thead><tr><th {_CELL} colspan="4">{head}</th></tr>'
        f"<tr><th {_CELL}>#</th><th {_CELL}>type</th><th {_CELL}>id</th>"
        f"<th {_CELL}>content</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody><tfoot>{foot_html}</tfoot></table></div>"
    )


def response_markdown(response: Response) -> str:
    """A Markdown table of a Response (the same content as :func:`response_html`)."""
    lines = [
        f"**Response** `{response.id}` **{response.status or 'unknown'}** · {_md(response.model)}",
        "",
        "| # | type | id | content |",
        "|---|------|----|---------|",
    ]
    for n, item in enumerate(response.output):
        kind, ident, summary = _item_parts(item)
        lines.append(f"| {n} | {kind} | `{ident}` | {_md(summary)} |")
    if not response.output:
        lines.append("| | | | *no output items* |")
    lines.append("")
    if response.usage is not None:
        lines.append(f"**usage** {_usage_text(response)}  ")
    if response.error is not None:
        lines.append(f"**error** {_md(response.error.code)}: {_md(response.error.message)}  ")
    if response.incomplete_details is not None and response.incomplete_details.reason:
        lines.append(f"**incomplete** {_md(response.incomplete_details.reason)}  ")
    return "\n".join(lines).rstrip() + "\n"


def _usage_text(response: Response) -> str:
    usage = response.usage
    if usage is None:
        return ""
    out = f"{usage.output_tokens} out"
    if usage.output_tokens_details.reasoning_tokens:
        out += f" ({usage.output_tokens_details.reasoning_tokens} reasoning)"
    cached = usage.input_tokens_details.cached_tokens
    inp = f"{usage.input_tokens} in" + (f" ({cached} cached)" if cached else "")
    return f"{inp} · {out} · {usage.total_tokens} total"


# -- output items ------------------------------------------------------------------------------


def _item_parts(item: Any) -> tuple[str, str, str]:
    """(type, id, one-line summary) of an output item."""
    kind = str(getattr(item, "type", "item"))
    ident = str(getattr(item, "id", None) or "")
    if isinstance(item, ResponseOutputMessage):
        texts = []
        for part in item.content:
            if isinstance(part, ResponseOutputText):
                texts.append(part.text)
            elif isinstance(part, ResponseOutputRefusal):
                texts.append(f"[refusal] {part.refusal}")
        summary = _clip("".join(texts))
    elif isinstance(item, ResponseReasoningItem):
        text = "".join(p.text for p in item.content or []) or "".join(s.text for s in item.summary)
        summary = _clip(text) if text else "(no text)"
    elif isinstance(item, ResponseFunctionToolCall):
        summary = _clip(f"{item.name}({item.arguments})") + f"  [{item.call_id}]"
    else:
        name = getattr(item, "name", None)
        summary = " ".join(str(x) for x in (name, getattr(item, "status", None)) if x)
    return kind, ident, summary


def item_html(item: Any) -> str:
    """One line of HTML for an output item: type, id and content summary."""
    kind, ident, summary = _item_parts(item)
    e = html.escape
    return f"<div><b>{e(kind)}</b> <code>{e(ident)}</code> {e(summary)}</div>"


def item_markdown(item: Any) -> str:
    """One line of Markdown for an output item."""
    kind, ident, summary = _item_parts(item)
    return f"**{kind}** `{ident}` {_md(summary)}\n"


# -- events ------------------------------------------------------------------------------------


def _event_fields(event: Any) -> tuple[str, list[tuple[str, str]], str | None]:
    """(type, [(label, value)...], text payload or None) of an event."""
    kind = str(getattr(event, "type", "?"))
    fields: list[tuple[str, str]] = [("seq", str(getattr(event, "sequence_number", "")))]
    item = getattr(event, "item", None)
    item_id = getattr(event, "item_id", None) or getattr(item, "id", None)
    if item_id is not None:
        fields.append(("item", str(item_id)))
    for label, attr in (
        ("output", "output_index"),
        ("content", "content_index"),
        ("summary", "summary_index"),
    ):
        value = getattr(event, attr, None)
        if value is not None:
            fields.append((label, str(value)))
    if item is not None:
        kind_, _, summary = _item_parts(item)
        fields.append(("item type", kind_))
        if summary:
            fields.append(("item content", summary))
    response = getattr(event, "response", None)
    if isinstance(response, Response):
        fields.append(("response", response.id))
        fields.append(("status", str(response.status)))
    if kind == "error":
        code = getattr(event, "error_code", None)
        fields.append(("error", f"{code}: {getattr(event, 'error_message', '')}"))
    text = None
    for attr in _TEXT_FIELDS:
        value = getattr(event, attr, None)
        if isinstance(value, str):
            text = value
            break
    return kind, fields, text


def event_html(event: Any) -> str:
    """HTML for one event: type, sequence number, item, indexes, delta/done text.

    Lifecycle events (``response.created`` ... ``response.completed``) add their response table.
    """
    e = html.escape
    kind, fields, text = _event_fields(event)
    parts = [f"<b>{e(kind)}</b>"]
    parts += [f'<span style="color:#6e7781">{e(k)}</span> <code>{e(v)}</code>' for k, v in fields]
    if text is not None:
        parts.append(
            '<span style="color:#6e7781">text</span> '
            f'<code style="white-space:pre-wrap">{e(repr(_clip(text, 400, flatten=False)))}</code>'
        )
    out = '<div class="rxresponses-event">' + " &middot; ".join(parts) + "</div>"
    response = getattr(event, "response", None)
    if isinstance(response, Response) and response.output:
        out += response_html(response)
    return out


def event_markdown(event: Any) -> str:
    """Markdown for one event (the same content as :func:`event_html`)."""
    kind, fields, text = _event_fields(event)
    parts = [f"**{kind}**"] + [f"{k} `{v}`" for k, v in fields]
    if text is not None:
        parts.append(f"text `{_clip(text, 400, flatten=False)!r}`")
    out = " · ".join(parts) + "\n"
    response = getattr(event, "response", None)
    if isinstance(response, Response) and response.output:
        out += "\n" + response_markdown(response)
    return out


class EventTable:
    """A list of events displayed as one HTML table (see :func:`events_table`)."""

    def __init__(self, events: Iterable[Any], *, max_rows: int = 200) -> None:
        self.events = list(events)
        self.max_rows = max_rows

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        return f"<EventTable of {len(self.events)} events>"

    def _repr_html_(self) -> str:
        e = html.escape
        header = "".join(f"<th {_CELL}>{h}</th>" for h in ("seq", "type", "output", "item", "text"))
        rows = []
        for event in self.events[: self.max_rows]:
            kind, fields, text = _event_fields(event)
            values = dict(fields)
            shown = "" if text is None else repr(_clip(text, 80, flatten=False))
            if text is None and "status" in values:
                shown = values["status"]
            rows.append(
                f"<tr><td {_CELL}>{e(values.get('seq', ''))}</td><td {_CELL}>{e(kind)}</td>"
                f"<td {_CELL}>{e(values.get('output', ''))}</td>"
                f"<td {_CELL}><code>{e(values.get('item', ''))}</code></td>"
                f"<td {_CELL}><code>{e(shown)}</code></td></tr>"
            )
        more = len(self.events) - self.max_rows
        if more > 0:
            rows.append(f'<tr><td {_CELL} colspan="5"><i>... {more} more events</i></td></tr>')
        return (
            f"<table {_TABLE}><thead><tr>{header}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )


def events_table(events: Iterable[Any], *, max_rows: int = 200) -> EventTable:
    """Display events as one table (sequence number, type, output index, item, text)."""
    return EventTable(events, max_rows=max_rows)


class LiveDisplay(abc.ObserverBase[Any]):
    """An observer that shows the Response being built in one notebook output, redrawn as
    events arrive (at most every ``interval`` seconds, and once more at the end).

    >>> events.subscribe(LiveDisplay())                                   # doctest: +SKIP

    Needs IPython (any Jupyter kernel has it).
    """

    def __init__(self, *, interval: float = 0.1) -> None:
        self.interval = interval
        self._acc = ResponseAccumulator()
        self._handle: Any = None
        self._last = 0.0

    @property
    def response(self) -> Response:
        """The Response folded so far."""
        return self._acc.result()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        from IPython.display import HTML, display

        content = HTML(response_html(self._acc.result()))  # type: ignore[no-untyped-call]
        if self._handle is None:
            self._handle = display(content, display_id=True)  # type: ignore[no-untyped-call]
        else:
            self._handle.update(content)

    def on_next(self, value: Any) -> None:
        """Fold the event and redraw (throttled)."""
        self._acc.handle(value)
        self._draw()

    def on_error(self, error: Exception) -> None:
        """Redraw, with the error."""
        self._draw(force=True)
        from IPython.display import HTML, display

        message = f'<div style="color:#cf222e">stream error: {html.escape(str(error))}</div>'
        display(HTML(message))  # type: ignore[no-untyped-call]

    def on_completed(self) -> None:
        """Draw the final Response."""
        self._draw(force=True)


def _clip(text: str, limit: int = _CLIP, *, flatten: bool = True) -> str:
    flat = " ".join(text.split()) if flatten else text
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


set_display_hook("html", repr_html)
set_display_hook("markdown", repr_markdown)

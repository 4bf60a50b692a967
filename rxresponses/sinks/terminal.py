"""Render a stream of Responses events live in a terminal, then summarise the final Response.

>>> events.subscribe(TerminalRenderer())                                  # doctest: +SKIP

What it shows, as events arrive: a header per output item, reasoning dimmed, message text as it
streams, each tool call with its arguments forming, hosted-tool progress, errors in red; then,
when the stream ends, a summary of the final :class:`~rxresponses.types.response.Response`
(status, output items, usage, error or incomplete reason).

Plain ANSI escapes, no dependency; with the ``rich`` extra installed, :func:`terminal_renderer`
gives a :class:`RichRenderer` on a terminal (same output, written by rich's console). Colours are
used when the stream is a TTY, unless ``NO_COLOR`` is set (or ``TERM=dumb``); ``FORCE_COLOR``
forces them; ``color=True/False`` overrides both. Box characters fall back to ASCII when the
stream's encoding cannot write them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from reactivex import abc

from ..errors import RxResponsesError
from ..operators._final import ResponseAccumulator
from ..types.events import EventKind
from ..types.registry import EVENT_KINDS, TERMINAL_TYPES
from ..types.response import (
    Response,
    ResponseError,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputRefusal,
    ResponseOutputText,
    ResponseReasoningItem,
)

__all__ = [
    "Outcome",
    "RichRenderer",
    "TerminalRenderer",
    "format_summary",
    "terminal_renderer",
    "use_color",
]

#: How a rendered stream ended: ``completed`` / ``incomplete`` (its terminal event), ``failed``
#: (an ``error`` event, ``response.failed`` or an exception), ``cut`` (it ended before any terminal
#: event), ``running`` (not ended yet).
Outcome = Literal["completed", "incomplete", "failed", "cut", "running"]

_RESET = "\x1b[0m"
_STYLES = {
    "dim": "\x1b[2m",
    "bold": "\x1b[1m",
    "red": "\x1b[31m",
    "green": "\x1b[32m",
    "yellow": "\x1b[33m",
    "cyan": "\x1b[36m",
    "magenta": "\x1b[35m",
    "bold_red": "\x1b[1;31m",
}
_UNICODE = {"item": "▸", "rule": "─", "error": "✖", "dot": "·", "more": "…", "start": "●"}
_ASCII = {"item": ">", "rule": "-", "error": "x", "dot": "|", "more": "...", "start": "*"}
_RICH_STYLES = {name: name.replace("_", " ") for name in _STYLES}  # bold_red -> "bold red"
_INDENT = "  "
_TOKENS = re.compile(r"\s+|\S+")

_PART_STYLES = {"refusal": "red", "reasoning_text": "dim", "summary_text": "dim"}


def _display(kind: EventKind) -> tuple[str, str | None, str | None]:
    """Where a delta or ``.done`` event's text shows (the part family, or ``args`` for an item
    field), the field holding the part index, and its style."""
    if kind.part is None:
        return "args", None, "cyan"
    return kind.family or "content", kind.index_field, _PART_STYLES.get(kind.part)


# From the registry (rxresponses.types.registry): delta type -> (the family of the part it
# fills, the attribute holding the part index, style)
_DELTAS: dict[str, tuple[str, str | None, str | None]] = {
    t: _display(k) for t, k in EVENT_KINDS.items() if k.role == "delta"
}
# done type -> (family, index attribute, the attribute with the whole text, style)
_DONES: dict[str, tuple[str, str | None, str, str | None]] = {
    t: (*_display(k)[:2], k.text_field, _display(k)[2])
    for t, k in EVENT_KINDS.items()
    if k.role == "done" and k.text_field is not None
}
_TERMINAL = {t: t.removeprefix("response.") for t in TERMINAL_TYPES}


def use_color(stream: TextIO, color: bool | None = None) -> bool:
    """Whether to write ANSI colours to ``stream``: ``color`` if given, else the environment
    (``NO_COLOR``, ``FORCE_COLOR``, ``TERM=dumb``), else whether ``stream`` is a TTY."""
    if color is not None:
        return color
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


def _glyphs(stream: TextIO) -> dict[str, str]:
    encoding = getattr(stream, "encoding", None)
    if not encoding:  # an in-memory text stream (io.StringIO) holds any str
        return _UNICODE
    try:
        "".join(_UNICODE.values()).encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return _ASCII
    return _UNICODE


@dataclass
class _Item:
    type: str
    output_index: int
    label: str
    shown: set[tuple[str, int]] = field(default_factory=set)  # parts that streamed something
    headed: bool = False  # its header line was written


class TerminalRenderer(abc.ObserverBase[Any]):
    """An observer that renders Responses events live and summarises the final Response.

    Use it as the end of a pipeline (``events.subscribe(TerminalRenderer())``) or as a tap
    (``events.pipe(ops.do(TerminalRenderer()))``). After the stream ends, :attr:`outcome`,
    :attr:`error_message` and :attr:`response` tell how it went (the CLI turns them into its exit
    status).

    Long lines are wrapped at word boundaries to ``width`` columns, and the wrapped lines keep
    the indent of their block. While wrapping, the end of a delta that may be the start of a
    longer word is held until the next delta (or the end of the block) says where the word ends.

    Args:
        stream: Where to write (default: ``sys.stdout`` at construction).
        color: Force colours on or off (default: see :func:`use_color`).
        summary: Print the summary of the final Response when the stream ends.
        reasoning: Show reasoning text (dimmed); ``False`` shows only the reasoning header.
        width: Wrap text at this many columns; ``0`` does not wrap (default: the terminal's
            width when ``stream`` is a TTY, else no wrapping, so a file or pipe gets the text's
            own lines).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        color: bool | None = None,
        summary: bool = True,
        reasoning: bool = True,
        width: int | None = None,
    ) -> None:
        self.stream: TextIO = stream if stream is not None else sys.stdout
        if width is None:
            width = shutil.get_terminal_size().columns if _isatty(self.stream) else 0
        #: The wrapping width in columns (``0``: no wrapping).
        self.width = max(width, len(_INDENT) + 16) if width > 0 else 0
        self.color = use_color(self.stream, color)
        self.summary = summary
        self.reasoning = reasoning
        self._g = _glyphs(self.stream)
        self._acc = ResponseAccumulator()
        self._items: dict[str, _Item] = {}
        self._current: str | None = None
        self._col0 = True
        self._column = 0  # the cursor's column (escapes not counted)
        self._soft_break = False  # the last break was a wrap: drop the spaces that follow
        self._pending: tuple[str, str | None] | None = None  # a word that may go on, its style
        self._gap = ""  # spaces before the next word (dropped if the line breaks there)
        self._sgr: str | None = None  # the SGR escape in effect
        self._terminal: str | None = None
        self._error_event: str | None = None
        self._exception: Exception | None = None
        self._ended = False

    # -- what happened -----------------------------------------------------------------------

    @property
    def outcome(self) -> Outcome:
        """How the stream ended (see :data:`Outcome`)."""
        if self._exception is not None or self._error_event is not None:
            return "failed"
        if self._terminal is not None:
            return "completed" if self._terminal == "completed" else self._terminal  # type: ignore[return-value]
        return "cut" if self._ended else "running"

    @property
    def error_message(self) -> str | None:
        """Why the stream failed (the ``error`` event, ``response.error`` or the exception)."""
        if self._exception is not None:
            return str(self._exception)
        if self._error_event is not None:
            return self._error_event
        if self._terminal == "failed":
            error = self.response.error
            return f"{error.code}: {error.message}" if error is not None else "response failed"
        return None

    @property
    def exception(self) -> Exception | None:
        """The exception the stream ended with (``on_error``), if any."""
        return self._exception

    @property
    def response(self) -> Response:
        """The Response folded from the events so far (failed with the exception's message if
        the stream ended in one before any terminal event)."""
        response = self._acc.result()
        if self._exception is not None and self._acc.terminal is None:
            code = self._exception.code if isinstance(self._exception, RxResponsesError) else None
            response.status = "failed"
            response.error = ResponseError(
                code=code or "server_error", message=str(self._exception)
            )
        return response

    # -- the observer ------------------------------------------------------------------------

    def on_next(self, value: Any) -> None:
        """Render one event."""
        self._acc.handle(value)
        self.handle(value)

    def on_error(self, error: Exception) -> None:
        """Render the exception, then the summary."""
        self._exception = error
        self._ended = True
        self._newline()
        self._write(f"{self._g['error']} stream error: {_one_line(str(error))}\n", "bold_red")
        self._finish()

    def on_completed(self) -> None:
        """End the last line and print the summary."""
        self._ended = True
        self._finish()

    def close(self) -> None:
        """End the current line and reset the colours, without a summary.

        For a stream stopped early (disposed, interrupted): the terminal is left clean.
        Idempotent; :meth:`on_completed` and :meth:`on_error` do it themselves.
        """
        self._newline()
        self._reset()
        self.stream.flush()

    # -- rendering ---------------------------------------------------------------------------

    def handle(self, event: Any) -> None:
        """Render one event (without folding it; :meth:`on_next` does both)."""
        kind = str(getattr(event, "type", ""))
        delta = _DELTAS.get(kind)
        if delta is not None:
            family, index_attr, style = delta
            item_id = str(getattr(event, "item_id", ""))
            text = str(getattr(event, "delta", ""))
            if text:
                self._body(item_id, (family, _index(event, index_attr)), text, style)
            return
        done = _DONES.get(kind)
        if done is not None:
            family, index_attr, attr, style = done
            item_id = str(getattr(event, "item_id", ""))
            view = self._items.get(item_id)
            key = (family, _index(event, index_attr))
            text = str(getattr(event, attr, "") or "")
            if text and (view is None or key not in view.shown):
                self._body(item_id, key, text, style)  # nothing streamed: show the whole text
            return
        if kind == "response.output_item.added":
            self._added(event)
        elif kind == "response.output_item.done":
            self._item_done(event)
        elif kind == "response.content_part.added":
            view = self._items.get(str(event.item_id))
            if view is not None and event.content_index > 0 and self._current == event.item_id:
                self._newline()
        elif kind == "response.reasoning_summary_part.added":
            if event.summary_index > 0 and self._current == event.item_id:
                self._newline()
                self._write("\n")
        elif kind == "response.created" or kind == "response.queued":
            response = event.response
            if kind == "response.created":
                self._newline()
                self._write(
                    f"{self._g['start']} response {response.id} {self._g['dot']} "
                    f"{response.model}\n",
                    "dim",
                )
            else:
                self._write("  (queued)\n", "dim")
        elif kind == "error":
            message = _error_text(event)
            self._error_event = message
            self._newline()
            self._write(f"{self._g['error']} error: {_one_line(message)}\n", "bold_red")
            self._current = None
        elif kind in _TERMINAL:
            self._terminal = _TERMINAL[kind]
            self._newline()
            self._current = None
        elif kind.startswith("response.") and hasattr(event, "output_index"):
            tool_item = getattr(event, "item_id", None)
            if tool_item is not None and kind.split(".")[1].endswith("_call"):
                self._open(str(tool_item))  # hosted tool progress: "searching", "completed"...
                self._newline()
                self._write(f"{_INDENT}{kind.rsplit('.', 1)[-1].replace('_', ' ')}\n", "dim")

    def _added(self, event: Any) -> None:
        item = event.item
        item_id = str(getattr(item, "id", None) or f"#{event.output_index}")
        kind = str(getattr(item, "type", "item"))
        if kind in ("function_call", "custom_tool_call"):
            label = f"tool call {getattr(item, 'name', '')}"
            call_id = getattr(item, "call_id", None)
            if call_id:
                label += f"  {call_id}"
        else:
            label = kind
        self._items[item_id] = _Item(kind, int(event.output_index), label)
        self._current = None
        self._open(item_id)

    def _item_done(self, event: Any) -> None:
        item = event.item
        item_id = str(getattr(item, "id", None) or f"#{event.output_index}")
        view = self._items.get(item_id)
        if isinstance(item, ResponseFunctionToolCall) and item.arguments:
            if view is None or ("args", 0) not in view.shown:
                self._body(item_id, ("args", 0), item.arguments, "cyan")
        elif isinstance(item, ResponseOutputMessage):
            for index, part in enumerate(item.content):
                if view is not None and ("content", index) in view.shown:
                    continue
                if isinstance(part, ResponseOutputText) and part.text:
                    self._body(item_id, ("content", index), part.text, None)
                elif isinstance(part, ResponseOutputRefusal) and part.refusal:
                    self._body(item_id, ("content", index), part.refusal, "red")
        status = getattr(item, "status", None)
        if status == "incomplete":
            self._open(item_id)
            self._newline()
            self._write(f"{_INDENT}(incomplete)\n", "yellow")
        if self._current == item_id:
            self._newline()
            self._current = None

    def _open(self, item_id: str) -> None:
        """Make ``item_id`` the block being written, with a header line if it was not.

        Items whose deltas interleave get a header each time the stream switches between them
        (``▸ message …`` marks a continuation).
        """
        if self._current == item_id:
            return
        view = self._items.get(item_id)
        if view is None:  # a delta for an item we never saw open (a partial recording)
            view = self._items[item_id] = _Item("item", -1, f"item {item_id}")
        self._newline()
        style = "dim" if view.type == "reasoning" else "bold"
        header = f"{self._g['item']} {view.label}"
        if view.headed:
            header += f" {self._g['more']}"
        view.headed = True
        self._write(header + "\n", style)
        self._current = item_id

    def _body(self, item_id: str, key: tuple[str, int], text: str, style: str | None) -> None:
        self._open(item_id)
        view = self._items[item_id]
        view.shown.add(key)
        if view.type == "reasoning" and not self.reasoning:
            return
        for i, segment in enumerate(text.split("\n")):
            if i:
                self._flush_word()
                self._gap = ""
                self._write("\n")
            if segment:
                self._text(segment, style)

    def _text(self, segment: str, style: str | None) -> None:
        """Write one line's worth of text in the current block, wrapped to :attr:`width`."""
        if not self.width:
            if self._col0:
                self._write(_INDENT)
            self._write(segment, style)
            return
        if self._pending is not None and self._pending[1] != style:
            self._flush_word()
        if self._pending is not None:
            segment = self._pending[0] + segment
            self._pending = None
        tokens = _TOKENS.findall(segment)
        if tokens and not tokens[-1].isspace():
            self._pending = (tokens.pop(), style)  # the next delta may continue this word
        for token in tokens:
            self._token(token, style)

    def _flush_word(self) -> None:
        if self._pending is not None:
            word, style = self._pending
            self._pending = None
            self._token(word, style)

    def _token(self, token: str, style: str | None) -> None:
        """Write a word, breaking the line before it if it does not fit; a run of spaces is
        held until the next word shows whether it stays on the line (no trailing spaces)."""
        if token.isspace():
            if not self._soft_break:
                self._gap += token
            return
        if self._col0:
            self._write(_INDENT)
        gap, self._gap = self._gap, ""
        if self._column + len(gap) + len(token) > self.width and self._column > len(_INDENT):
            self._wrap()
        else:
            self._write(gap, style)
        room = self.width - self._column
        while len(token) > room:  # a word longer than the line
            self._write(token[:room], style)
            self._wrap()
            token, room = token[room:], self.width - self._column
        self._write(token, style)

    def _wrap(self) -> None:
        self._write("\n")
        self._write(_INDENT)
        self._soft_break = True

    def _newline(self) -> None:
        self._flush_word()
        self._gap = ""
        if not self._col0:
            self._write("\n")

    def _write(self, text: str, style: str | None = None) -> None:
        if not text:
            return
        self._col0 = text.endswith("\n")
        newline = text.rfind("\n")
        self._column = len(text) - newline - 1 if newline >= 0 else self._column + len(text)
        self._soft_break = False
        self._emit(text, style)

    def _emit(self, text: str, style: str | None) -> None:
        """Put ``text`` on the stream in ``style`` (the cursor bookkeeping is done)."""
        if self.color:
            # Escapes only where the style changes: consecutive deltas share one.
            sgr = _STYLES[style] if style else None
            if sgr != self._sgr:
                text = (_RESET if self._sgr else "") + (sgr or "") + text
                self._sgr = sgr
            if self._sgr is not None and self._col0:  # close styled lines before the break
                text = text[:-1] + _RESET + "\n"
                self._sgr = None
        self.stream.write(text)
        self.stream.flush()

    def _reset(self) -> None:
        if self._sgr is not None:
            self.stream.write(_RESET)
            self._sgr = None

    def _finish(self) -> None:
        self._newline()
        self._reset()
        self._current = None
        if self.summary:
            self._emit_summary(format_summary(self.response, color=self.color, glyphs=self._g))
        self.stream.flush()

    def _emit_summary(self, text: str) -> None:
        self.stream.write(text)


class RichRenderer(TerminalRenderer):
    """The :class:`TerminalRenderer` drawn through `rich <https://rich.readthedocs.io>`_.

    Needs the ``rich`` extra (``pip install 'rxresponses[rich]'``). What it shows is the same as
    the plain renderer's (same blocks, same wrapping at the block indent, same summary); rich's
    console writes the styles, in the colours the terminal supports (256 colours, truecolor, the
    legacy Windows console), and measures the width. :func:`terminal_renderer` picks it when rich
    is installed and the stream is a terminal.

    Raises:
        ImportError: rich is not installed (the message names the extra).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        color: bool | None = None,
        summary: bool = True,
        reasoning: bool = True,
        width: int | None = None,
    ) -> None:
        try:
            from rich.console import Console
        except ImportError as exc:
            raise ImportError(
                "RichRenderer needs rich: pip install 'rxresponses[rich]'", name=exc.name
            ) from exc
        stream = stream if stream is not None else sys.stdout
        color = use_color(stream, color)
        console = Console(
            file=stream,
            force_terminal=color,
            color_system="auto" if color else None,
            highlight=False,
            markup=False,
            emoji=False,
            soft_wrap=True,
        )
        if width is None and _isatty(stream):
            width = console.width
        super().__init__(stream, color=color, summary=summary, reasoning=reasoning, width=width)
        self._console = console

    def _emit(self, text: str, style: str | None) -> None:
        rich_style = _RICH_STYLES[style] if style else None
        self._console.print(text, style=rich_style, end="")
        self.stream.flush()

    def _emit_summary(self, text: str) -> None:
        from rich.text import Text

        self._console.print(Text.from_ansi(text), end="")


def terminal_renderer(
    stream: TextIO | None = None,
    *,
    color: bool | None = None,
    summary: bool = True,
    reasoning: bool = True,
    width: int | None = None,
) -> TerminalRenderer:
    """A renderer for ``stream``: a :class:`RichRenderer` when rich is installed and ``stream``
    is a terminal, else the plain :class:`TerminalRenderer` (no dependency). The arguments are
    :class:`TerminalRenderer`'s."""
    stream = stream if stream is not None else sys.stdout
    options: dict[str, Any] = {
        "color": color,
        "summary": summary,
        "reasoning": reasoning,
        "width": width,
    }
    if _isatty(stream) and importlib.util.find_spec("rich") is not None:
        return RichRenderer(stream, **options)
    return TerminalRenderer(stream, **options)


def format_summary(
    response: Response, *, color: bool = False, glyphs: dict[str, str] | None = None
) -> str:
    """A few lines summarising a Response: status, model, each output item, usage, error.

    Example (no colour)::

        ──────────────────────────────────────────────────────────────
        response  resp_000005  completed  · rxresponses-demo
        output    0 reasoning      "The user wants the weather in Paris and i…" (236 chars)
                  1 message        "Let me check the current weather in both …" (104 chars)
                  2 function_call  get_weather {"city": "Paris", "unit": "celsius"}  call_…
        usage     42 in · 108 out (58 reasoning) · 150 total
    """
    g = glyphs or _UNICODE

    def paint(text: str, style: str) -> str:
        return f"{_STYLES[style]}{text}{_RESET}" if color else text

    width = min(shutil.get_terminal_size((80, 24)).columns, 80)
    status = response.status or "unknown"
    status_style = {"completed": "green", "incomplete": "yellow", "failed": "red"}.get(
        status, "yellow"
    )
    lines = [
        paint(g["rule"] * width, "dim"),
        f"{'response':<10}{response.id or '(no id)'}  {paint(status, status_style)}"
        f"  {g['dot']} {response.model or '(unknown model)'}",
    ]
    if not response.output:
        lines.append(f"{'output':<10}(no items)")
    for n, item in enumerate(response.output):
        head = "output" if n == 0 else ""
        kind = str(getattr(item, "type", "item"))
        lines.append(f"{head:<10}{n} {kind:<14} {_describe(item, g['more'])}")
    if status == "in_progress":
        lines.append(f"{'note':<10}" + paint("the stream ended before a terminal event", "yellow"))
    if response.incomplete_details is not None and response.incomplete_details.reason:
        lines.append(f"{'reason':<10}" + paint(response.incomplete_details.reason, "yellow"))
    if response.error is not None:
        message = _one_line(f"{response.error.code}: {response.error.message}")
        lines.append(f"{'error':<10}" + paint(message, "red"))
    usage = response.usage
    if usage is not None:
        parts = [f"{usage.input_tokens} in"]
        cached = usage.input_tokens_details.cached_tokens
        if cached:
            parts[0] += f" ({cached} cached)"
        out = f"{usage.output_tokens} out"
        reasoning = usage.output_tokens_details.reasoning_tokens
        if reasoning:
            out += f" ({reasoning} reasoning)"
        parts += [out, f"{usage.total_tokens} total"]
        lines.append(f"{'usage':<10}" + f" {g['dot']} ".join(parts))
    return "\n".join(lines) + "\n"


def _describe(item: Any, more: str) -> str:
    if isinstance(item, ResponseOutputMessage):
        texts = [
            p.text if isinstance(p, ResponseOutputText) else f"[refusal] {p.refusal}"
            for p in item.content
            if isinstance(p, ResponseOutputText | ResponseOutputRefusal)
        ]
        return _quote("".join(texts), more)
    if isinstance(item, ResponseReasoningItem):
        text = "".join(p.text for p in item.content or []) or "".join(s.text for s in item.summary)
        return _quote(text, more) if text else "(no text)"
    if isinstance(item, ResponseFunctionToolCall):
        return _clip(f"{item.name} {item.arguments}  {item.call_id}", 64, more)
    name = getattr(item, "name", None)
    status = getattr(item, "status", None)
    return " ".join(str(x) for x in (name, status) if x) or "-"


def _quote(text: str, more: str, limit: int = 42) -> str:
    flat = _one_line(text)
    shown = flat if len(flat) <= limit else flat[:limit] + more
    return f'"{shown}" ({len(text)} chars)'


def _clip(text: str, limit: int, more: str) -> str:
    flat = _one_line(text)
    return flat if len(flat) <= limit else flat[:limit] + more


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _index(event: Any, attr: str | None) -> int:
    return int(getattr(event, attr, 0) or 0) if attr else 0


def _error_text(event: Any) -> str:
    code = getattr(event, "error_code", None) or getattr(event, "code", None)
    message = getattr(event, "error_message", None) or getattr(event, "message", "") or ""
    return f"{code}: {message}" if code else str(message)

"""Reasoning signals -> ``reasoning`` item events.

:class:`ReasoningStage` is the state machine; :func:`collect_reasoning` its operator shell.
Two shapes, chosen with ``as_summary``:

* ``False`` (default): raw chain of thought, as a ``reasoning_text`` content part
  (``content_part.added`` -> ``reasoning_text.delta``* -> ``reasoning_text.done`` ->
  ``content_part.done``), the shape open-weight servers use;
* ``True``: the same text as reasoning *summary* part 0 (``reasoning_summary_part.added`` ->
  ``reasoning_summary_text.delta``* -> ``.done`` -> ``reasoning_summary_part.done``), for clients
  such as the Codex CLI that show summaries and hide raw reasoning.

The raw text events are named as OpenAI names them (``response.reasoning_text.delta`` /
``.done``) unless ``event_names="open-responses"`` asks for the Open Responses specification's
``response.reasoning.delta`` / ``.done``; the choice is made once, when the stage is built.

When nothing after it reads the events inside an item (only the final Response is wanted), it
emits each reasoning item whole, at its ``output_item.done`` (see ``emit_items_only()``
in :mod:`rxresponses.operators._core`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable

from ..types._base import WireModel
from ..types.aliases import ReasoningEventNames
from ..types.events import (
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseReasoningDeltaEvent,
    ResponseReasoningDoneEvent,
    ResponseReasoningSummaryPartAddedEvent,
    ResponseReasoningSummaryPartDoneEvent,
    ResponseReasoningSummaryTextDeltaEvent,
    ResponseReasoningSummaryTextDoneEvent,
    ResponseReasoningTextDeltaEvent,
    ResponseReasoningTextDoneEvent,
)
from ..types.response import Content as ReasoningContent
from ..types.response import ResponseReasoningItem
from ..types.response import Summary as ReasoningSummary
from ..types.signals import ItemFinished, ItemStarted, ReasoningDelta, StreamFinished
from ._core import Fragments, ItemPlaced, ItemStage, delta_maker, fragment_appender, stage_operator

__all__ = ["ReasoningStage", "check_event_names", "collect_reasoning"]


class _Reasoning:
    __slots__ = ("delta", "fragments", "output_index")

    def __init__(
        self,
        item_id: str,
        output_index: int,
        *,
        as_summary: bool,
        spec_names: bool = False,
        events: bool = True,
    ) -> None:
        self.output_index = output_index
        self.fragments = Fragments()
        #: Append a fragment; return its delta event (or NOTHING, without ``events``).
        self.delta: Callable[[str], Any]
        if not events:
            self.delta = fragment_appender(self.fragments)
            return
        event: type[WireModel]
        fields: dict[str, Any] = {"item_id": item_id, "output_index": output_index}
        if as_summary:
            event = ResponseReasoningSummaryTextDeltaEvent
            fields["summary_index"] = 0
        else:
            event = ResponseReasoningDeltaEvent if spec_names else ResponseReasoningTextDeltaEvent
            fields["content_index"] = 0
        self.delta = delta_maker(event, self.fragments, fields)


def check_event_names(event_names: str) -> None:
    """Raise ``ValueError`` unless ``event_names`` is ``"openai"`` or ``"open-responses"``."""
    if event_names not in ("openai", "open-responses"):
        raise ValueError(f"event_names must be 'openai' or 'open-responses', not {event_names!r}")


class ReasoningStage(ItemStage):
    """Turns ``reasoning`` signals into reasoning events; passes everything else through."""

    #: What it emits, it built (see :class:`~rxresponses.operators._core.Driver`).
    fresh_output = True
    #: The signals it acts on; the driver passes everything else on without calling it.
    handles = frozenset({ReasoningDelta, ItemStarted, ItemFinished})
    #: The signals :meth:`handle_delta` takes (the driver's fast path).
    delta_types = frozenset({ReasoningDelta})
    name = "collect_reasoning()"
    kind = "reasoning"

    def __init__(
        self, *, as_summary: bool = False, event_names: ReasoningEventNames = "openai"
    ) -> None:
        check_event_names(event_names)
        self._summary = as_summary
        self._spec_names = event_names == "open-responses"
        self._done: type[ResponseReasoningTextDoneEvent] | type[ResponseReasoningDoneEvent] = (
            ResponseReasoningDoneEvent if self._spec_names else ResponseReasoningTextDoneEvent
        )
        self._items: dict[str, _Reasoning] = {}
        # The item of the last delta and its delta builder (see handle_delta); any other
        # signal resets them.
        self._last_id: str | None = None
        self._last_delta: Callable[[str], Any] | None = None

    def handle_delta(self, value: ReasoningDelta) -> Any:
        """The delta event of a :class:`ReasoningDelta` for the item of the previous one (its
        part is open); else ``None`` (then :meth:`handle` takes it)."""
        if value.item_id == self._last_id:
            return self._last_delta(value.text)  # type: ignore[misc]
        return None

    def handle(self, value: Any) -> list[Any] | None:
        self._last_id = None
        if isinstance(value, ReasoningDelta):
            item = self._items[value.item_id]
            out: list[Any] = []
            if not self._events:
                item.delta(value.text)
                self._last_id, self._last_delta = value.item_id, item.delta
                return out
            if not item.fragments:  # the first delta opens the part
                oi = item.output_index
                if self._summary:
                    out.append(
                        ResponseReasoningSummaryPartAddedEvent.build(
                            item_id=value.item_id,
                            output_index=oi,
                            summary_index=0,
                            part=ReasoningSummary.build(text=""),
                        )
                    )
                else:
                    out.append(
                        ResponseContentPartAddedEvent.build(
                            item_id=value.item_id,
                            output_index=oi,
                            content_index=0,
                            part=ReasoningContent.build(text=""),
                        )
                    )
            out.append(item.delta(value.text))
            self._last_id, self._last_delta = value.item_id, item.delta
            return out
        if isinstance(value, ItemStarted) and value.kind == "reasoning":
            self._items[value.item_id] = _Reasoning(
                value.item_id,
                value.output_index,
                as_summary=self._summary,
                spec_names=self._spec_names,
                events=self._events,
            )
            if not self._events:
                return [ItemPlaced(value.output_index)]
            added = ResponseReasoningItem.build(
                id=value.item_id, summary=[], content=[], status="in_progress"
            )
            return [ResponseOutputItemAddedEvent.build(output_index=value.output_index, item=added)]
        if isinstance(value, ItemFinished) and value.kind == "reasoning":
            state = self._items.pop(value.item_id, None)
            if state is None:
                return []
            return self._close(value, state)
        if isinstance(value, StreamFinished) and self._items:  # (emitting whole items only)
            return [*self._close_open(), value]
        return None

    def _close(self, value: ItemFinished, state: _Reasoning) -> list[Any]:
        out: list[Any] = []
        oi = state.output_index
        summary: list[ReasoningSummary] = []
        content: list[ReasoningContent] = []
        if state.fragments:
            text = state.fragments.join()
            if not self._events:  # the item whole, no event inside it
                if self._summary:
                    summary.append(ReasoningSummary.build(text=text))
                else:
                    content.append(ReasoningContent.build(text=text))
            elif self._summary:
                summary.append(ReasoningSummary.build(text=text))
                out.append(
                    ResponseReasoningSummaryTextDoneEvent.build(
                        item_id=value.item_id, output_index=oi, summary_index=0, text=text
                    )
                )
                out.append(
                    ResponseReasoningSummaryPartDoneEvent.build(
                        item_id=value.item_id,
                        output_index=oi,
                        summary_index=0,
                        part=ReasoningSummary.build(text=text),
                    )
                )
            else:
                content.append(ReasoningContent.build(text=text))
                out.append(
                    self._done.build(
                        item_id=value.item_id, output_index=oi, content_index=0, text=text
                    )
                )
                out.append(
                    ResponseContentPartDoneEvent.build(
                        item_id=value.item_id,
                        output_index=oi,
                        content_index=0,
                        part=ReasoningContent.build(text=text),
                    )
                )
        item = ResponseReasoningItem.build(
            id=value.item_id,
            summary=summary,
            content=content,
            encrypted_content=value.encrypted_content,  # OpenRouter's reasoning.encrypted
            status=value.status,
        )
        out.append(ResponseOutputItemDoneEvent.build(output_index=oi, item=item))
        return out


def collect_reasoning(
    *, as_summary: bool = False, event_names: ReasoningEventNames = "openai"
) -> Callable[[Observable[Any]], Observable[Any]]:
    """Implementation of :func:`rxresponses.operators.collect_reasoning`."""
    ReasoningStage(as_summary=as_summary, event_names=event_names)  # a bad name fails now
    return stage_operator(lambda: ReasoningStage(as_summary=as_summary, event_names=event_names))

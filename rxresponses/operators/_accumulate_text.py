"""Message signals -> ``message`` item events (``output_text`` and ``refusal`` parts).

:class:`TextStage` is the state machine; :func:`accumulate_text` its operator shell. Text is kept
as :class:`~rxresponses.operators._core.Fragments` per part and joined once, when the part
closes: no per-delta work grows with the stream. When nothing after it reads the events inside
a message (only the final Response is wanted), it emits each message whole, at its
``output_item.done`` (see ``emit_items_only()`` in :mod:`rxresponses.operators._core`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable

from ..types._base import WireModel
from ..types._compat import shallow_copy
from ..types.events import (
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputTextAnnotationAddedEvent,
    ResponseRefusalDeltaEvent,
    ResponseRefusalDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
)
from ..types.response import ResponseOutputMessage, ResponseOutputRefusal, ResponseOutputText
from ..types.signals import ItemFinished, ItemStarted, RefusalDelta, StreamFinished, TextDelta
from ._core import (
    _BLOCK,
    NOTHING,
    Fragments,
    ItemPlaced,
    ItemStage,
    stage_operator,
    text_event_maker,
)
from ._split_by_item import url_annotations

__all__ = ["TextStage", "accumulate_text"]


def _no_event(text: str) -> Any:
    """A part's ``make`` when the stage emits whole messages only: no delta event."""
    return NOTHING


class _Part:
    __slots__ = ("fragments", "kind", "logprobs", "make")

    def __init__(
        self, kind: str, item_id: str, output_index: int, content_index: int, events: bool
    ) -> None:
        self.kind = kind  # "output_text" | "refusal"
        self.fragments = Fragments()
        self.logprobs: list[dict[str, Any]] = []
        if not events:
            self.make: Callable[[str], Any] = _no_event
            return
        event: type[WireModel] = (
            ResponseTextDeltaEvent if kind == "output_text" else ResponseRefusalDeltaEvent
        )
        fields: dict[str, Any] = {
            "item_id": item_id,
            "output_index": output_index,
            "content_index": content_index,
        }
        if kind == "output_text":
            fields["logprobs"] = []
        # The delta event of a fragment without logprobs (the per-token path: see
        # TextStage.handle_delta, which appends the fragment itself).
        self.make = text_event_maker(event, fields)


class _Message:
    __slots__ = ("item_id", "open", "output_index", "parts")

    def __init__(self, item_id: str, output_index: int) -> None:
        self.item_id = item_id
        self.output_index = output_index
        self.parts: list[ResponseOutputText | ResponseOutputRefusal] = []
        self.open: _Part | None = None


class TextStage(ItemStage):
    """Turns ``message`` signals into message events; passes everything else through."""

    #: What it emits, it built (see :class:`~rxresponses.operators._core.Driver`).
    fresh_output = True
    #: The signals it acts on; the driver passes everything else on without calling it.
    handles = frozenset({TextDelta, RefusalDelta, ItemStarted, ItemFinished})
    #: The signals :meth:`handle_delta` takes (the driver's fast path).
    delta_types = frozenset({TextDelta})
    name = "accumulate_text()"
    kind = "message"

    def __init__(self) -> None:
        self._items: dict[str, _Message] = {}
        # The item of the last delta, and its open part's fragments (the list that
        # Fragments.append() appends to) and delta event builder (see handle_delta); any other
        # signal resets _last_id.
        self._last_id: str | None = None
        self._last_part: _Part | None = None
        self._last_tail: list[str] = []
        self._last_make: Callable[[str], Any] | None = None

    def handle_delta(self, value: TextDelta) -> Any:
        """The ``output_text.delta`` event of a :class:`TextDelta` for the item and open
        ``output_text`` part of the previous one, without logprobs; else ``None`` (then
        :meth:`handle` takes it). What ``part.delta(text)`` does, inline."""
        if value.item_id == self._last_id and not value.logprobs:
            text = value.text
            tail = self._last_tail
            tail.append(text)  # Fragments.append()
            if len(tail) >= _BLOCK:
                self._last_part.fragments._settle()  # type: ignore[union-attr]
            return self._last_make(text)  # type: ignore[misc]
        return None

    def handle(self, value: Any) -> list[Any] | None:
        """The events of one signal (``None``: not a message's, passed on)."""
        self._last_id = None
        if isinstance(value, TextDelta):
            return self._delta(value.item_id, "output_text", value.text, value.logprobs)
        if isinstance(value, RefusalDelta):
            return self._delta(value.item_id, "refusal", value.text, None)
        if isinstance(value, ItemStarted) and value.kind == "message":
            self._items[value.item_id] = _Message(value.item_id, value.output_index)
            if not self._events:
                return [ItemPlaced(value.output_index)]
            item = ResponseOutputMessage.build(
                id=value.item_id, content=[], role="assistant", status="in_progress"
            )
            return [ResponseOutputItemAddedEvent.build(output_index=value.output_index, item=item)]
        if isinstance(value, ItemFinished) and value.kind == "message":
            msg = self._items.pop(value.item_id, None)
            if msg is None:
                return []
            out = self._close_part(msg, value)
            item = ResponseOutputMessage.build(
                id=msg.item_id, content=msg.parts, role="assistant", status=value.status
            )
            out.append(ResponseOutputItemDoneEvent.build(output_index=msg.output_index, item=item))
            return out
        if isinstance(value, StreamFinished) and self._items:  # (emitting whole messages only)
            return [*self._close_open(), value]
        return None

    def _delta(
        self, item_id: str, kind: str, text: str, logprobs: list[dict[str, Any]] | None
    ) -> list[Any]:
        msg = self._items[item_id]
        out: list[Any] = []
        part = msg.open
        if part is None or part.kind != kind:
            if part is not None:
                out = self._close_part(msg)
            part = msg.open = _Part(kind, item_id, msg.output_index, len(msg.parts), self._events)
            if self._events:
                new: ResponseOutputText | ResponseOutputRefusal = (
                    ResponseOutputText.build(annotations=[], text="", logprobs=[])
                    if kind == "output_text"
                    else ResponseOutputRefusal.build(refusal="")
                )
                out.append(
                    ResponseContentPartAddedEvent.build(
                        item_id=item_id,
                        output_index=msg.output_index,
                        content_index=len(msg.parts),
                        part=new,
                    )
                )
        part.fragments.append(text)
        # Logprobs (output_text only) go out as OpenAI sends them, ``bytes`` included, on the
        # delta and on the ``.done`` event as well as on the finished part.
        if logprobs:
            part.logprobs.extend(logprobs)
            if not self._events:
                return out
            out.append(
                ResponseTextDeltaEvent(
                    item_id=item_id,
                    output_index=msg.output_index,
                    content_index=len(msg.parts),
                    delta=text,
                    logprobs=logprobs,
                )
            )
        else:
            one = part.make(text)  # every field given, already typed (see trusted())
            if one is not NOTHING:
                out.append(one)
            if kind == "output_text":  # the next delta of this part takes the fast path
                self._last_id, self._last_part = item_id, part
                self._last_tail, self._last_make = part.fragments._tail, part.make
        return out

    def _close_part(self, msg: _Message, finished: ItemFinished | None = None) -> list[Any]:
        """Close the open part; when the message ends (``finished``), its citations become
        ``annotation.added`` events before ``output_text.done`` and the part's annotations.
        (Emitting whole messages only: the part is kept for the message, no event.)"""
        part = msg.open
        if part is None:
            return []
        msg.open = None
        index = len(msg.parts)
        text = part.fragments.join()
        events = self._events
        out: list[Any] = []
        final: ResponseOutputText | ResponseOutputRefusal
        ids = {"item_id": msg.item_id, "output_index": msg.output_index, "content_index": index}
        if part.kind == "output_text":
            annotations: list[Any] = []
            if finished is not None and (finished.sources or finished.citations):
                annotations = url_annotations(text, finished.sources, finished.citations)
                if events:
                    out.extend(
                        ResponseOutputTextAnnotationAddedEvent.build(
                            **ids, annotation_index=k, annotation=annotation
                        )
                        for k, annotation in enumerate(annotations)
                    )
            # Logprobs arrive as dicts, which validation turns into Logprob models; without
            # them, every value already has its declared type.
            validated = bool(part.logprobs)
            if events:
                make_done = ResponseTextDoneEvent if validated else ResponseTextDoneEvent.build
                out.append(make_done(**ids, text=text, logprobs=list(part.logprobs)))
            make_part = ResponseOutputText if validated else ResponseOutputText.build
            final = make_part(annotations=annotations, text=text, logprobs=part.logprobs or [])
        else:
            if events:
                out.append(ResponseRefusalDoneEvent.build(**ids, refusal=text))
            final = ResponseOutputRefusal.build(refusal=text)
        msg.parts.append(final)
        if events:
            out.append(ResponseContentPartDoneEvent.build(**ids, part=shallow_copy(final)))
        return out


def accumulate_text() -> Callable[[Observable[Any]], Observable[Any]]:
    """Implementation of :func:`rxresponses.operators.accumulate_text`."""
    return stage_operator(TextStage)

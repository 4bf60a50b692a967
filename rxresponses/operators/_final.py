"""Fold typed Responses events into the final :class:`~rxresponses.types.Response`.

:class:`ResponseAccumulator` applies *every* event, the way a careful accumulator does
(openai-node's ``ResponseAccumulator``, not openai-python's, which only reads
``response.completed``):

* lifecycle events (``created``, ``queued``, ``in_progress``, and the terminal ``completed`` /
  ``incomplete`` / ``failed``) replace the response fields; a terminal event's non-empty ``output``
  is authoritative and replaces the items folded so far;
* ``output_item.added`` / ``.done`` place the item at its ``output_index`` (``.done`` replaces);
* ``content_part.added`` / ``.done``, ``reasoning_summary_part.added`` / ``.done`` place parts;
* deltas append (kept as :class:`Fragments`, joined once: no per-delta cost that grows), and every
  ``*.done`` replaces what the deltas built (replace-on-done);
* hosted-tool status events set the item's ``status``; ``annotation.added`` places annotations;
* ``error`` is remembered; unknown events are ignored.

The result for a stream that never reached a terminal event is what arrived, with the status the
last lifecycle event gave (``in_progress`` for a cut stream). :func:`final_response` additionally
marks a stream that ended in an exception as ``failed`` with the exception's message.

The fold is copy-on-write: it keeps references to what the events carry, never mutates them, and
copies only what it must change, as shallowly as it can; :meth:`ResponseAccumulator.result` makes
the one deep copy (see :class:`ResponseAccumulator`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel
from reactivex import Observable

from ..errors import RxResponsesError
from ..types._compat import deep_copy, deep_copy_with, replace_value, set_field
from ..types._compat import shallow_copy as _shallow
from ..types.events import ResponseTextDeltaEvent
from ..types.registry import EVENT_KINDS, LIFECYCLE_TYPES, TERMINAL_TYPES, event_type
from ..types.response import Logprob, Response, ResponseError
from ._core import _BLOCK, Fragments, stage_operator

__all__ = ["FinalStage", "Fragments", "ResponseAccumulator", "final_response"]

_LIFECYCLE = LIFECYCLE_TYPES
#: ``response.output_text.delta``, the most frequent event by far (resolved once, here).
_TEXT_DELTA = event_type(ResponseTextDeltaEvent)
_TERMINAL = TERMINAL_TYPES
_STATUS_SUFFIXES = {
    "in_progress": "in_progress",
    "searching": "searching",
    "interpreting": "interpreting",
    "generating": "generating",
    "completed": "completed",
    "failed": "failed",
}
# From the registry (see rxresponses.types.registry), for the kinds whose text the fold keeps
# (``family`` set): delta type -> (buffer family, the field that holds the part index, or None:
# index 0). ``response.output_text.delta``, the most frequent event by far, is tested before.
_DELTAS: dict[str, tuple[str, str | None]] = {
    t: (k.family, k.index_field)
    for t, k in EVENT_KINDS.items()
    if k.role == "delta" and k.family is not None and t != _TEXT_DELTA
}
# part-level text .done type -> (buffer family, the field that holds the part index, the part
# attribute the event carries): the text replaces what the deltas built.
_PART_DONES: dict[str, tuple[str, str, str]] = {}
# item-level .done type -> (buffer family and item attribute, the attribute the event carries)
_ITEM_DONES: dict[str, tuple[str, str]] = {}
for _type, _kind in EVENT_KINDS.items():
    if _kind.role != "done" or _kind.family is None or _kind.text_field is None:
        continue
    if _kind.index_field is not None:
        _PART_DONES[_type] = (_kind.family, _kind.index_field, _kind.text_field)
    else:
        _ITEM_DONES[_type] = (_kind.family, _kind.text_field)


def _copy(model: Any) -> Any:
    """``model.model_copy(deep=True)`` (see :func:`~rxresponses.types._compat.deep_copy`)."""
    return deep_copy(model)


def _copy_item(item: Any) -> Any:
    """A deep copy of an item, each of its parts (``content``, ``summary``) copied on its own.

    The fold placed every part by itself (a part placed in two slots is in two slots, not one
    part twice): the copies keep them apart, as the copies made when they were placed did.
    """
    memo: dict[int, Any] = {}
    for attr in ("content", "summary"):
        parts = _attr(item, attr)
        if type(parts) is list and id(parts) not in memo:
            memo[id(parts)] = [_copy(part) for part in parts]
    return deep_copy(item, memo)


def _attr(item: Any, attr: str) -> Any:
    """``getattr(item, attr, None)`` for an item's ``content`` or ``summary``, without the cost
    of pydantic raising (and ``getattr`` catching) an ``AttributeError`` for a model that has
    no such field, nor such an extra: most of the cost of a short stream's :meth:`result`
    (a message has no ``summary``, a function call neither)."""
    cls = type(item)
    plain = _PLAIN_ATTRS.get((cls, attr))
    if plain is None:
        # A model's declared field, or anything its class defines (a property...), or a value
        # that is not a model: getattr finds it at no extra cost. Else only an extra can hold it.
        plain = _PLAIN_ATTRS[cls, attr] = (
            not issubclass(cls, BaseModel) or attr in cls.model_fields or hasattr(cls, attr)
        )
    if plain:
        return getattr(item, attr, None)
    extra = item.model_extra
    return extra.get(attr) if extra else None


#: Per (item class, attribute): whether :func:`_attr` reads it with ``getattr``.
_PLAIN_ATTRS: dict[tuple[type, str], bool] = {}


def _logprobs(entries: list[Any]) -> list[Logprob]:
    # The part's ``logprobs`` holds models: a dict put there would dump with a serializer warning.
    # Models are borrowed like every other value of an event (never mutated, copied by result()).
    return [Logprob.model_validate(lp) if isinstance(lp, dict) else lp for lp in entries]


class ResponseAccumulator:
    """Folds events into a :class:`Response`. ``handle(event)`` for each, then :meth:`result`.

    **Copy-on-write.** The fold copies nothing when it places an event's item, part or response:
    it *borrows* them (keeps a reference). The events were handed to users before or after the
    fold (loggers, notebooks keep them), so the invariant is:

    * an object the fold did not create (an event's ``item``, ``part``, ``response``, the lists
      and values inside them) is **never mutated** by the fold;
    * before it mutates one, the fold takes **ownership**: it replaces it, in the one place of
      its own graph that refers to it, by a shallow copy (:func:`_shallow`: a model with its own
      ``__dict__``, extras and set of fields; a list with its own slots), and mutates that. A
      copy is as shallow as the mutation allows: setting a slot of a borrowed item's ``content``
      copies the item and the list, while the parts in it stay borrowed until one of them is
      itself mutated (``output_text.done`` setting its ``text``...);
    * ``_owned`` maps the ``id`` of every object the fold created to the object (which keeps it
      alive, so its ``id`` cannot be reused by a borrowed object). Each owned object is referred
      to from at most one place of the fold's graph (``_output``, an owned item or an owned
      part), and none leaves the accumulator: :meth:`result` returns a deep copy.

    :meth:`result` makes the one deep copy of a fold: a new object graph on every call, which the
    caller may mutate without changing any event, the accumulator, or a later result.
    """

    def __init__(self) -> None:
        self._response: Response | None = None
        self._output: list[Any] = []  # always the fold's own list; its items may be borrowed
        self._owned: dict[int, Any] = {}  # id -> object, for every object the fold created
        # (output_index, family, index) -> fragments not yet joined
        self._buffers: dict[tuple[int, str, int], Fragments] = {}
        # output_index -> the keys of the buffers opened for it: output_item.done drops them
        # without scanning every open buffer (thousands, with parallel tool calls).
        self._keys_of: dict[int, list[tuple[int, str, int]]] = {}
        # The key and fragments of the last delta: the next delta is almost always for the same
        # part. Valid across consecutive deltas only (any other event resets it, since it may
        # drop buffers).
        self._last_key: tuple[int, str, int] | None = None
        self._last: Fragments = Fragments()
        self._last_tail: list[str] = self._last._tail
        self.terminal: str | None = None
        self.error: ResponseError | None = None

    # -- folding ------------------------------------------------------------------------------

    def handle(self, event: Any) -> None:
        """Apply one event."""
        try:
            kind: str = event.type
        except AttributeError:  # not an event
            return
        if kind == _TEXT_DELTA:  # the per-token hot path
            key = (event.output_index, "content", event.content_index)
            if key == self._last_key:  # the same part as the last delta: Fragments.append()
                tail = self._last_tail
                tail.append(event.delta)
                if len(tail) >= _BLOCK:
                    self._last._settle()
            else:
                self._fragments(key).append(event.delta)
            if event.logprobs:
                self._delta_logprobs(event)
            return
        delta = _DELTAS.get(kind)
        if delta is not None:
            family, sub = delta
            key = (event.output_index, family, 0 if sub is None else getattr(event, sub))
            fragments = self._last if key == self._last_key else self._fragments(key)
            fragments.append(event.delta)
            return
        self._last_key = None
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, event, kind)
        elif kind == "error":
            code = getattr(event, "error_code", None) or "server_error"
            message = getattr(event, "error_message", None) or ""
            self.error = ResponseError(code=code, message=message)
        elif kind.startswith("response.") and hasattr(event, "output_index"):
            self._on_status(event, kind)

    def handle_all(self, events: Sequence[Any]) -> None:
        """:meth:`handle` each of ``events``, in order, minus those a later one of them undoes.

        ``output_item.done`` places its item whole and drops the text the deltas built for its
        ``output_index``: whatever an earlier event did to that index (the item placed by
        ``output_item.added``, its parts, their deltas and ``.done`` events, statuses,
        annotations) is undone by it, so those events are not applied. Lifecycle, terminal and
        ``error`` events, and events without an ``output_index``, are always applied.
        """
        last_done: dict[int, int] = {}
        for i, event in enumerate(events):
            if getattr(event, "type", None) == _ITEM_DONE:
                index = getattr(event, "output_index", None)
                if index is not None:
                    last_done[index] = i
        handle = self.handle
        if not last_done:
            for event in events:
                handle(event)
            return
        for i, event in enumerate(events):
            index = getattr(event, "output_index", None)
            if (
                index is None
                or last_done.get(index, -1) <= i
                or getattr(event, "type", None) in _APPLIED_ALWAYS
            ):
                handle(event)

    def begin(self, response: Response, *, owned: bool = False) -> None:
        """What folding a ``response.created`` or ``.in_progress`` event carrying ``response``
        does (for :class:`~rxresponses.operators._assemble.AssembledResponse`, which builds no
        such event, since nobody sees it). ``owned``: the caller built ``response`` for this
        fold alone (see :meth:`result`'s ``last``)."""
        self._last_key = None
        self._response = response
        if owned:
            self._adopt(response)

    def _fragments(self, key: tuple[int, str, int]) -> Fragments:
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = Fragments()
            self._keys_of.setdefault(key[0], []).append(key)
        self._last_key = key
        self._last = buf
        self._last_tail = buf._tail
        return buf

    def _delta_logprobs(self, event: Any) -> None:
        index, sub = event.output_index, event.content_index
        part = self._part(index, sub)
        if part is not None and getattr(part, "logprobs", None) is not None:
            part = self._own_part(index, sub)
            self._own_attr(part, "logprobs", part.logprobs).extend(_logprobs(event.logprobs))

    def _on_lifecycle(self, event: Any, kind: str) -> None:
        response = event.response
        self._response = response
        if kind in _TERMINAL:
            self.terminal = kind
            if response.output:
                # The terminal output is authoritative: borrowed, in a list of our own. Nothing
                # owned is reachable any more.
                self._output = list(response.output)
                self._buffers.clear()
                self._keys_of.clear()
                self._owned.clear()

    def _on_item(self, event: Any, kind: str) -> None:
        index = event.output_index
        self._place(index, event.item)
        if kind == "response.output_item.done":
            for key in self._keys_of.pop(index, ()):
                self._buffers.pop(key, None)

    def _on_content_part(self, event: Any, kind: str) -> None:
        self._set_part(event.output_index, "content", event.content_index, event.part)
        if kind == "response.content_part.done":
            self._buffers.pop((event.output_index, "content", event.content_index), None)

    def _on_summary_part(self, event: Any, kind: str) -> None:
        self._set_part(event.output_index, "summary", event.summary_index, event.part)
        if kind == "response.reasoning_summary_part.done":
            self._buffers.pop((event.output_index, "summary", event.summary_index), None)

    def _on_part_done(self, event: Any, kind: str) -> None:
        family, sub_field, attr = _PART_DONES[kind]
        index, sub = event.output_index, getattr(event, sub_field)
        self._buffers.pop((index, family, sub), None)
        part = self._own_part(index, sub, family)
        if part is not None:
            setattr(part, attr, getattr(event, attr))
            if kind == "response.output_text.done" and event.logprobs:
                part.logprobs = self._adopt(_logprobs(event.logprobs))

    def _on_item_done(self, event: Any, kind: str) -> None:
        family, attr = _ITEM_DONES[kind]
        index = event.output_index
        self._buffers.pop((index, family, 0), None)
        if self._item(index) is not None:
            setattr(self._own_item(index), family, getattr(event, attr))

    def _on_status(self, event: Any, kind: str) -> None:
        # hosted-tool status events: response.web_search_call.searching...
        suffix = kind.rsplit(".", 1)[-1]
        if kind.split(".")[1].endswith("_call") and suffix in _STATUS_SUFFIXES:
            index = event.output_index
            if self._item(index) is not None:
                self._own_item(index).status = _STATUS_SUFFIXES[suffix]

    def _on_annotation(self, event: Any, kind: str) -> None:
        index, sub = event.output_index, event.content_index
        part = self._part(index, sub)
        if part is not None and event.annotation is not None:
            annotations = part.annotations
            annotations = self._own_attr(self._own_part(index, sub), "annotations", annotations)
            while len(annotations) <= event.annotation_index:
                annotations.append(None)
            annotations[event.annotation_index] = event.annotation

    # -- the fold's graph ---------------------------------------------------------------------

    def _adopt(self, value: Any) -> Any:
        """Mark ``value``, which the fold just created, as owned; return it."""
        self._owned[id(value)] = value
        return value

    def _place(self, index: int, item: Any) -> None:
        output = self._output
        while len(output) <= index:
            output.append(None)
        output[index] = item

    def _item(self, index: int) -> Any:
        if 0 <= index < len(self._output):
            return self._output[index]
        return None

    def _own_item(self, index: int) -> Any:
        """The item at ``index`` (there is one), owned: copied and put in its place if borrowed."""
        item = self._output[index]
        if id(item) not in self._owned:
            item = self._output[index] = self._adopt(_shallow(item))
        return item

    def _own_attr(self, owner: Any, attr: str, value: Any) -> Any:
        """``value``, the container ``owner.attr`` (``owner`` is owned), owned: if borrowed, a
        copy put in its place, where ``value`` was (a field or an extra; the set of fields set,
        which decides what is dumped, stays as it was)."""
        if id(value) in self._owned:
            return value
        mine = self._adopt(_shallow(value))
        replace_value(owner, attr, mine)
        return mine

    # ``family`` is ``"content"`` or ``"summary"``: the item attribute that holds the parts.

    def _set_part(self, index: int, family: str, sub: int, part: Any) -> None:
        if self._item(index) is None:
            return
        item = self._own_item(index)
        parts = getattr(item, family, None)
        if parts is None:
            parts = self._adopt([])
            setattr(item, family, parts)
        else:
            parts = self._own_attr(item, family, parts)
        while len(parts) <= sub:
            parts.append(None)
        parts[sub] = part

    def _part(self, index: int, sub: int, family: str = "content") -> Any:
        """The part at ``sub`` of the item at ``index``, or ``None`` (borrowed or owned: read
        only)."""
        item = self._item(index)
        parts = getattr(item, family, None)
        if parts and 0 <= sub < len(parts):
            return parts[sub]
        return None

    def _own_part(self, index: int, sub: int, family: str = "content") -> Any:
        """What :meth:`_part` returns, owned (with its item and the item's list of parts)."""
        part = self._part(index, sub, family)
        if part is None or id(part) in self._owned:
            return part
        mine = _shallow(part)
        if mine is part:  # immutable (a string in an unmodelled item's content): as it is
            return part
        item = self._own_item(index)
        parts = self._own_attr(item, family, getattr(item, family))
        parts[sub] = self._adopt(mine)
        return mine

    # -- results ------------------------------------------------------------------------------

    def result(self, *, share: bool = False, last: bool = False) -> Response:
        """The response folded so far (a new object graph, shared with nothing: the caller may
        mutate it, and the accumulator can go on).

        ``share=True`` (for the last result of a fold whose events are emitted, as
        :func:`~rxresponses.operators.assemble` builds its terminal event): a new
        :class:`Response` and ``output`` list, whose items and other values are the ones the
        events carried, not copies. Setting the response's own fields is safe; mutating what it
        shares changes those events too. ``last=True`` with it: the fold ends here, so a
        response the fold owns (given to :meth:`begin` as ``owned``, and not replaced by an
        event's) is that response itself, not a copy of it.
        """
        if share and not self._buffers:
            output = [item for item in self._output if item is not None]
            if not any(None in (_attr(item, attr) or ()) for item in output for attr in _PARTS):
                base = self._response
                if base is None:
                    base = Response(id="", created_at=0, model="", status="in_progress", output=[])
                response: Response = base if last and id(base) in self._owned else _shallow(base)
                set_field(response, "output", output)
                return response
        # Copy by position (gaps included: a resumed or out-of-order stream may lack an index),
        # so the buffers keyed by output_index land on their own item; drop the gaps after.
        placed = [None if item is None else _copy_item(item) for item in self._output]
        for (index, family, sub), fragments in self._buffers.items():
            text = fragments.join()
            item = placed[index] if index < len(placed) else None
            if item is None:
                continue
            if family in ("content", "summary"):
                parts = getattr(item, family, None)
                part = parts[sub] if parts and sub < len(parts) else None
                if part is None:
                    continue
                if getattr(part, "type", None) == "refusal":
                    part.refusal = (part.refusal or "") + text
                else:
                    part.text = (part.text or "") + text
            else:
                setattr(item, family, (getattr(item, family, None) or "") + text)
        output = [item for item in placed if item is not None]
        for item in output:
            for attr in ("content", "summary"):
                parts = _attr(item, attr)
                if isinstance(parts, list) and None in parts:
                    setattr(item, attr, [p for p in parts if p is not None])
        base = self._response
        if base is None:
            base = Response(id="", created_at=0, model="", status="in_progress", output=[])
        response = deep_copy_with(base, {"output": output})
        if self.terminal is None and self.error is not None and response.status == "in_progress":
            response.status = "failed"
            response.error = _copy(self.error)
        return response


_PARTS = ("content", "summary")
_ITEM_DONE = "response.output_item.done"
#: What :meth:`ResponseAccumulator.handle_all` applies whatever comes after it.
_APPLIED_ALWAYS = frozenset({*_LIFECYCLE, *_TERMINAL, "error"})
_Handler = Callable[[ResponseAccumulator, Any, str], None]
#: The events other than deltas that :meth:`ResponseAccumulator.handle` applies (besides
#: ``error`` and the hosted-tool status events), by type.
_HANDLERS: dict[str, _Handler] = {
    **dict.fromkeys(_LIFECYCLE | _TERMINAL, ResponseAccumulator._on_lifecycle),
    "response.output_item.added": ResponseAccumulator._on_item,
    "response.output_item.done": ResponseAccumulator._on_item,
    "response.content_part.added": ResponseAccumulator._on_content_part,
    "response.content_part.done": ResponseAccumulator._on_content_part,
    "response.reasoning_summary_part.added": ResponseAccumulator._on_summary_part,
    "response.reasoning_summary_part.done": ResponseAccumulator._on_summary_part,
    **dict.fromkeys(_PART_DONES, ResponseAccumulator._on_part_done),
    **dict.fromkeys(_ITEM_DONES, ResponseAccumulator._on_item_done),
    "response.output_text.annotation.added": ResponseAccumulator._on_annotation,
}


#: Events :class:`FinalStage` holds before folding them (see there).
_HOLD = 64


class FinalStage:
    """The stage of :func:`final_response`: folds every event, emits the ``Response`` at the end.

    The fold is lazy for the first :data:`_HOLD` events: a terminal event with output replaces
    everything folded before it (see :class:`ResponseAccumulator`), so the events of a short
    stream are only held, and the fold starts from its terminal event. A longer stream folds
    what it held, then each event as it comes; memory stays bounded either way.
    """

    name = "final_response()"

    def __init__(self) -> None:
        # Made when the first event is folded (fused with assemble(), this stage never folds).
        self._acc: ResponseAccumulator | None = None
        self._held: list[Any] | None = []  # None once the stream proved long: fold as they come
        self.ended = False

    @property
    def fresh(self) -> bool:
        """True until it takes its first value."""
        return self._held == [] and not self.ended

    def handle(self, event: Any) -> tuple[()]:
        held = self._held
        if held is None:
            self._acc.handle(event)  # type: ignore[union-attr]  # made when held was folded
            return ()
        held.append(event)
        if len(held) >= _HOLD:
            acc = self._acc = ResponseAccumulator()
            for value in held:
                acc.handle(value)
            self._held = None
        return ()

    def _settle(self) -> ResponseAccumulator:
        held, self._held = self._held, None
        acc = self._acc
        if acc is None:
            acc = self._acc = ResponseAccumulator()
        if not held:
            return acc
        start = 0
        for i in range(len(held) - 1, -1, -1):
            event = held[i]
            if getattr(event, "type", None) in _TERMINAL and event.response.output:
                acc, start = ResponseAccumulator(), i  # what came before cannot matter
                self._acc = acc
                break
        for i in range(start, len(held)):
            acc.handle(held[i])
        return acc

    def finish(self) -> list[Response]:
        self.ended = True
        return [self._settle().result()]

    def fail(self, exc: Exception) -> list[Response]:
        folded = self._settle()
        response = folded.result()
        if folded.terminal is None:
            code = exc.code if isinstance(exc, RxResponsesError) else "server_error"
            response.status = "failed"
            response.error = ResponseError(code=code, message=str(exc))
        self.ended = True  # the error is told in the response: the stream completes
        return [response]


def final_response() -> Callable[[Observable[Any]], Observable[Response]]:
    """Implementation of :func:`rxresponses.operators.final_response`."""
    return stage_operator(FinalStage)

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
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from reactivex import Observable, abc

from ..errors import RxResponsesError
from ..types.response import Logprob, Response, ResponseError

__all__ = ["Fragments", "ResponseAccumulator", "final_response"]

#: Fragments joined into one string at a time, when they are small (see :class:`Fragments`).
_BLOCK = 256
_SMALL = 32


class Fragments:
    """Streamed text kept for one join at the end.

    A plain list holds a string object and a list slot per delta: ~60 bytes for a one-character
    token, several times the text. Every :data:`_BLOCK` fragments, small ones (under
    :data:`_SMALL` characters on average) are joined into one string, so memory stays about a
    byte per character; large ones are kept as they are, since the same string objects are held
    by the other stages that buffer the stream (a copy would cost more than their overhead).
    Each character is copied at most twice (into its block, and by :meth:`join`): linear work.
    """

    __slots__ = ("_blocks", "_tail")

    def __init__(self) -> None:
        self._blocks: list[str] = []
        self._tail: list[str] = []

    def append(self, text: str) -> None:
        tail = self._tail
        tail.append(text)
        if len(tail) >= _BLOCK:
            if sum(map(len, tail)) < _BLOCK * _SMALL:
                self._blocks.append("".join(tail))
            else:
                self._blocks.extend(tail)
            tail.clear()

    def join(self) -> str:
        """All the text so far."""
        if not self._blocks:
            return "".join(self._tail)
        return "".join(self._blocks + self._tail)

    def __bool__(self) -> bool:
        return bool(self._tail) or bool(self._blocks)


_LIFECYCLE = frozenset({"response.created", "response.queued", "response.in_progress"})
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_STATUS_SUFFIXES = {
    "in_progress": "in_progress",
    "searching": "searching",
    "interpreting": "interpreting",
    "generating": "generating",
    "completed": "completed",
    "failed": "failed",
}
# delta type -> (buffer family, the attribute the matching .done event carries)
_ITEM_DELTAS = {
    "response.function_call_arguments.delta": "arguments",
    "response.custom_tool_call_input.delta": "input",
    "response.mcp_call_arguments.delta": "arguments",
    "response.code_interpreter_call_code.delta": "code",
}
_ITEM_DONES = {
    "response.function_call_arguments.done": ("arguments", "arguments"),
    "response.custom_tool_call_input.done": ("input", "input"),
    "response.mcp_call_arguments.done": ("arguments", "arguments"),
    "response.code_interpreter_call_code.done": ("code", "code"),
}


def _copy(model: Any) -> Any:
    """``model.model_copy(deep=True)``, done structurally (see :func:`_deep`)."""
    return _deep(model, {})


_ATOMS = frozenset({str, int, float, bool, type(None)})
_new = object.__new__
_setattr = object.__setattr__


def _deep(value: Any, memo: dict[int, Any]) -> Any:
    """A deep copy of what models hold (models, lists, dicts, scalars), equal to what
    :func:`copy.deepcopy` makes (shared references stay shared, through ``memo``), without its
    generic dispatch: the accumulator copies every item it places, and deepcopy was the biggest
    per-stream cost. Anything else goes to :func:`copy.deepcopy`. The originals are alive
    throughout (the caller holds the root), so ``id`` keys cannot be reused mid-copy."""
    cls = type(value)
    if cls in _ATOMS:
        return value
    done = memo.get(id(value))
    if done is not None:
        return done
    out: Any
    atoms = _ATOMS
    if cls is list:
        out = memo[id(value)] = []
        out.extend(v if type(v) in atoms else _deep(v, memo) for v in value)
    elif cls is dict:
        out = memo[id(value)] = {}
        for k, v in value.items():
            if type(k) not in atoms:
                k = _deep(k, memo)
            out[k] = v if type(v) in atoms else _deep(v, memo)
    elif (
        isinstance(value, BaseModel)
        and cls.__deepcopy__ is BaseModel.__deepcopy__
        and getattr(value, "__pydantic_private__", None) is None
    ):
        # What BaseModel.__deepcopy__ does, field by field.
        out = memo[id(value)] = _new(cls)
        _setattr(out, "__dict__", _deep(value.__dict__, memo))
        _setattr(out, "__pydantic_extra__", _deep(value.__pydantic_extra__, memo))
        _setattr(out, "__pydantic_fields_set__", set(value.__pydantic_fields_set__))
        _setattr(out, "__pydantic_private__", None)
    else:
        return copy.deepcopy(value, memo)
    return out


def _logprobs(entries: list[Any]) -> list[Logprob]:
    # The part's ``logprobs`` holds models: a dict put there would dump with a serializer warning.
    return [Logprob.model_validate(lp) if isinstance(lp, dict) else _copy(lp) for lp in entries]


class ResponseAccumulator:
    """Folds events into a :class:`Response`. ``handle(event)`` for each, then :meth:`result`."""

    def __init__(self) -> None:
        self._response: Response | None = None
        self._output: list[Any] = []
        # (output_index, family, index) -> fragments not yet joined
        self._buffers: dict[tuple[int, str, int], Fragments] = {}
        self.terminal: str | None = None
        self.error: ResponseError | None = None

    # -- folding ------------------------------------------------------------------------------

    def handle(self, event: Any) -> None:
        """Apply one event."""
        kind: str = getattr(event, "type", "")
        if kind == "response.output_text.delta" or kind == "response.reasoning_text.delta":
            self._buffer(event.output_index, "content", event.content_index).append(event.delta)
            if kind == "response.output_text.delta" and event.logprobs:
                part = self._part(event.output_index, event.content_index)
                if part is not None and getattr(part, "logprobs", None) is not None:
                    part.logprobs.extend(_logprobs(event.logprobs))
            return
        if kind == "response.refusal.delta":
            self._buffer(event.output_index, "content", event.content_index).append(event.delta)
            return
        if kind == "response.reasoning_summary_text.delta":
            self._buffer(event.output_index, "summary", event.summary_index).append(event.delta)
            return
        if kind in _ITEM_DELTAS:
            self._buffer(event.output_index, _ITEM_DELTAS[kind], 0).append(event.delta)
            return
        if kind in _LIFECYCLE or kind in _TERMINAL:
            self._lifecycle(event, kind)
            return
        if kind == "response.output_item.added" or kind == "response.output_item.done":
            index = event.output_index
            self._place(index, _copy(event.item))
            for key in [k for k in self._buffers if k[0] == index]:
                if kind == "response.output_item.done":
                    del self._buffers[key]
            return
        if kind in ("response.content_part.added", "response.content_part.done"):
            self._set_part(event.output_index, "content", event.content_index, _copy(event.part))
            if kind.endswith(".done"):
                self._buffers.pop((event.output_index, "content", event.content_index), None)
            return
        if kind in (
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_part.done",
        ):
            self._set_part(event.output_index, "summary", event.summary_index, _copy(event.part))
            if kind.endswith(".done"):
                self._buffers.pop((event.output_index, "summary", event.summary_index), None)
            return
        if kind in ("response.output_text.done", "response.reasoning_text.done"):
            self._buffers.pop((event.output_index, "content", event.content_index), None)
            part = self._part(event.output_index, event.content_index)
            if part is not None:
                part.text = event.text
                if kind == "response.output_text.done" and event.logprobs:
                    part.logprobs = _logprobs(event.logprobs)
            return
        if kind == "response.refusal.done":
            self._buffers.pop((event.output_index, "content", event.content_index), None)
            part = self._part(event.output_index, event.content_index)
            if part is not None:
                part.refusal = event.refusal
            return
        if kind == "response.reasoning_summary_text.done":
            self._buffers.pop((event.output_index, "summary", event.summary_index), None)
            part = self._part(event.output_index, event.summary_index, "summary")
            if part is not None:
                part.text = event.text
            return
        if kind in _ITEM_DONES:
            family, attr = _ITEM_DONES[kind]
            self._buffers.pop((event.output_index, family, 0), None)
            item = self._item(event.output_index)
            if item is not None:
                setattr(item, family, getattr(event, attr))
            return
        if kind == "response.output_text.annotation.added":
            part = self._part(event.output_index, event.content_index)
            if part is not None and event.annotation is not None:
                annotations = part.annotations
                while len(annotations) <= event.annotation_index:
                    annotations.append(None)
                annotations[event.annotation_index] = event.annotation
            return
        if kind == "error":
            code = getattr(event, "error_code", None) or "server_error"
            message = getattr(event, "error_message", None) or ""
            self.error = ResponseError(code=code, message=message)
            return
        if kind.startswith("response.") and hasattr(event, "output_index"):
            suffix = kind.rsplit(".", 1)[-1]
            if kind.split(".")[1].endswith("_call") and suffix in _STATUS_SUFFIXES:
                item = self._item(event.output_index)
                if item is not None:
                    item.status = _STATUS_SUFFIXES[suffix]

    def _lifecycle(self, event: Any, kind: str) -> None:
        response = event.response
        self._response = response.model_copy()
        if kind in _TERMINAL:
            self.terminal = kind
            if response.output:
                self._output = [_copy(item) for item in response.output]
                self._buffers.clear()

    def _buffer(self, index: int, family: str, sub: int) -> Fragments:
        key = (index, family, sub)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = Fragments()
        return buf

    def _place(self, index: int, item: Any) -> None:
        output = self._output
        while len(output) <= index:
            output.append(None)
        output[index] = item

    def _item(self, index: int) -> Any:
        if 0 <= index < len(self._output):
            return self._output[index]
        return None

    def _set_part(self, index: int, family: str, sub: int, part: Any) -> None:
        item = self._item(index)
        if item is None:
            return
        attr = "summary" if family == "summary" else "content"
        parts = getattr(item, attr, None)
        if parts is None:
            parts = []
            setattr(item, attr, parts)
        while len(parts) <= sub:
            parts.append(None)
        parts[sub] = part

    def _part(self, index: int, sub: int, family: str = "content") -> Any:
        item = self._item(index)
        parts = getattr(item, "summary" if family == "summary" else "content", None)
        if parts and 0 <= sub < len(parts):
            return parts[sub]
        return None

    # -- results ------------------------------------------------------------------------------

    def result(self) -> Response:
        """The response folded so far (a new object; the accumulator can go on)."""
        # Copy by position (gaps included: a resumed or out-of-order stream may lack an index),
        # so the buffers keyed by output_index land on their own item; drop the gaps after.
        placed = [None if item is None else _copy(item) for item in self._output]
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
                parts = getattr(item, attr, None)
                if isinstance(parts, list) and None in parts:
                    setattr(item, attr, [p for p in parts if p is not None])
        base = self._response
        if base is None:
            base = Response(id="", created_at=0, model="", status="in_progress", output=[])
        response = base.model_copy(update={"output": output})
        response.__pydantic_fields_set__.add("output")
        if self.terminal is None and self.error is not None and response.status == "in_progress":
            response.status = "failed"
            response.error = self.error
        return response


def final_response() -> Callable[[Observable[Any]], Observable[Response]]:
    """Implementation of :func:`rxresponses.operators.final_response`."""

    def _final(source: Observable[Any]) -> Observable[Response]:
        def subscribe(
            observer: abc.ObserverBase[Response], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            acc = ResponseAccumulator()

            def on_next(event: Any) -> None:
                acc.handle(event)

            def on_error(exc: Exception) -> None:
                response = acc.result()
                if acc.terminal is None:
                    code = exc.code if isinstance(exc, RxResponsesError) else "server_error"
                    response.status = "failed"
                    response.error = ResponseError(code=code, message=str(exc))
                observer.on_next(response)
                observer.on_completed()

            def on_completed() -> None:
                observer.on_next(acc.result())
                observer.on_completed()

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _final

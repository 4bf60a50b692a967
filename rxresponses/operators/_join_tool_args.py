"""Function-call signals -> ``function_call`` item events.

:class:`ToolCallStage` is the state machine; :func:`join_tool_args` its operator shell. Argument
fragments are streamed as ``function_call_arguments.delta`` as they arrive and joined once, into
``function_call_arguments.done`` and the finished item. When nothing after it reads the events
inside an item (only the final Response is wanted), it emits each call whole, at its
``output_item.done`` (see ``emit_items_only()`` in :mod:`rxresponses.operators._core`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable

from ..types.events import (
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
)
from ..types.response import ResponseFunctionToolCall
from ..types.signals import ItemFinished, ItemStarted, StreamFinished, ToolCallDelta
from ._core import (
    NOTHING,
    Fragments,
    ItemPlaced,
    ItemStage,
    delta_maker,
    fragment_appender,
    stage_operator,
)

__all__ = ["ToolCallStage", "join_tool_args"]


class _Call:
    __slots__ = ("call_id", "delta", "fragments", "name", "output_index")

    def __init__(
        self, item_id: str, output_index: int, call_id: str, name: str, events: bool
    ) -> None:
        self.output_index = output_index
        self.call_id = call_id
        self.name = name
        self.fragments = Fragments()
        fields = {"item_id": item_id, "output_index": output_index}
        #: Append a fragment; return its delta event (or NOTHING, without ``events``).
        self.delta = (
            delta_maker(ResponseFunctionCallArgumentsDeltaEvent, self.fragments, fields)
            if events
            else fragment_appender(self.fragments)
        )


class ToolCallStage(ItemStage):
    """Turns ``function_call`` signals into function-call events; passes the rest through."""

    #: What it emits, it built (see :class:`~rxresponses.operators._core.Driver`).
    fresh_output = True
    #: The signals it acts on; the driver passes everything else on without calling it.
    handles = frozenset({ToolCallDelta, ItemStarted, ItemFinished})
    #: The signals :meth:`handle_delta` takes (the driver's fast path).
    delta_types = frozenset({ToolCallDelta})
    name = "join_tool_args()"
    kind = "function_call"

    def __init__(self) -> None:
        self._items: dict[str, _Call] = {}

    def handle_delta(self, value: ToolCallDelta) -> Any:
        """The ``function_call_arguments.delta`` event of a :class:`ToolCallDelta` for an open
        call; else ``None`` (then :meth:`handle` takes it)."""
        call = self._items.get(value.item_id)
        return None if call is None else call.delta(value.arguments)

    def handle(self, value: Any) -> list[Any] | None:
        if isinstance(value, ToolCallDelta):
            one = self._items[value.item_id].delta(value.arguments)
            return [] if one is NOTHING else [one]
        if isinstance(value, ItemStarted) and value.kind == "function_call":
            call = _Call(
                value.item_id,
                value.output_index,
                value.call_id or "",
                value.name or "",
                self._events,
            )
            self._items[value.item_id] = call
            if not self._events:
                return [ItemPlaced(value.output_index)]
            item = ResponseFunctionToolCall.build(
                id=value.item_id,
                call_id=call.call_id,
                name=call.name,
                arguments="",
                status="in_progress",
            )
            return [ResponseOutputItemAddedEvent.build(output_index=value.output_index, item=item)]
        if isinstance(value, ItemFinished) and value.kind == "function_call":
            done = self._items.pop(value.item_id, None)
            if done is None:
                return []
            arguments = done.fragments.join()
            item = ResponseFunctionToolCall.build(
                id=value.item_id,
                call_id=done.call_id,
                name=done.name,
                arguments=arguments,
                status=value.status,
            )
            item_done = ResponseOutputItemDoneEvent.build(output_index=done.output_index, item=item)
            if not self._events:
                return [item_done]
            return [
                ResponseFunctionCallArgumentsDoneEvent.build(
                    item_id=value.item_id, output_index=done.output_index, arguments=arguments
                ),
                item_done,
            ]
        if isinstance(value, StreamFinished) and self._items:  # (emitting whole calls only)
            return [*self._close_open(), value]
        return None


def join_tool_args() -> Callable[[Observable[Any]], Observable[Any]]:
    """Implementation of :func:`rxresponses.operators.join_tool_args`."""
    return stage_operator(ToolCallStage)

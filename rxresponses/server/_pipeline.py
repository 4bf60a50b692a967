"""The server's conversion pipeline: Chat SSE bytes -> typed Responses events.

It is :func:`rxresponses.chat_sse_to_responses` with one stage of the server's own inserted before
``assemble()``: :func:`restore_tool_names`. The request translation sent some tools upstream under
another shape (a tool grouped in a ``namespace`` tool as the function ``crm__lookup``; a
``custom`` free-form tool as a function with one ``input`` argument); this stage turns their calls
back into what the client offered (``name="lookup", namespace="crm"``; a ``custom_tool_call``
item). Because it runs before ``assemble()``, the final ``Response`` and the terminal event carry
the restored items too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import reactivex
from reactivex import Observable

from .. import operators as rxo
from ..operators._core import stage_operator
from ..types.events import (
    ResponseCustomToolCallInputDeltaEvent,
    ResponseCustomToolCallInputDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseStreamEvent,
)
from ..types.response import ResponseCustomToolCall, ResponseFunctionToolCall
from ..types.signals import StreamFinished
from ._request import ToolName, Translation

__all__ = ["ToolNameStage", "restore_tool_names", "server_pipeline"]


class ToolNameStage:
    """The state machine of :func:`restore_tool_names` (one per subscription).

    * A call of a namespaced function: ``name`` and ``namespace`` restored on the
      ``output_item.added`` / ``.done`` items; the argument events pass unchanged.
    * A call of a custom tool: the items become ``custom_tool_call`` items; the argument deltas
      (JSON text of ``{"input": ...}``) are held back, and ``function_call_arguments.done``
      becomes ``custom_tool_call_input.delta`` (the whole input) + ``custom_tool_call_input.done``.
      Arguments that are not that JSON object are taken as the input itself.
    """

    name = "restore_tool_names()"

    def __init__(self, names: Mapping[str, ToolName]) -> None:
        self._names = names
        self._custom: dict[str, ToolName] = {}  # item id -> tool, for open custom calls

    def handle(self, event: Any) -> list[Any]:
        if isinstance(event, ResponseOutputItemAddedEvent | ResponseOutputItemDoneEvent):
            item = event.item
            if isinstance(item, ResponseFunctionToolCall):
                tool = self._names.get(item.name)
                if tool is not None:  # a new event: the one received is left as it was
                    restored = self._item(item, tool, added=event.type.endswith(".added"))
                    return [event.model_copy(update={"item": restored})]
            return [event]
        if isinstance(event, ResponseFunctionCallArgumentsDeltaEvent):
            return [] if event.item_id in self._custom else [event]
        if isinstance(event, ResponseFunctionCallArgumentsDoneEvent):
            if event.item_id not in self._custom:
                return [event]
            text = custom_input(event.arguments)
            out: list[Any] = []
            if text:
                out.append(
                    ResponseCustomToolCallInputDeltaEvent(
                        item_id=event.item_id, output_index=event.output_index, delta=text
                    )
                )
            out.append(
                ResponseCustomToolCallInputDoneEvent(
                    item_id=event.item_id, output_index=event.output_index, input=text
                )
            )
            return out
        return [event]

    def finish(self) -> list[Any]:
        return []

    def fail(self, exc: Exception) -> None:
        return None

    def _item(self, item: ResponseFunctionToolCall, tool: ToolName, *, added: bool) -> Any:
        if not tool.custom:
            return item.model_copy(update={"name": tool.name, "namespace": tool.namespace})
        item_id = item.id or ""
        if added:
            self._custom[item_id] = tool
        else:
            self._custom.pop(item_id, None)
        return ResponseCustomToolCall(
            id=item.id,
            call_id=item.call_id,
            name=tool.name,
            namespace=tool.namespace,
            input="" if added else custom_input(item.arguments),
            status=item.status,
        )


def custom_input(arguments: str) -> str:
    """The free-form input of a custom tool call sent as ``{"input": "..."}`` arguments."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    value = parsed.get("input") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else arguments


def restore_tool_names(
    names: Mapping[str, ToolName],
) -> Callable[[Observable[Any]], Observable[Any]]:
    """Give calls of flattened namespace tools and of custom tools their Responses shape back.

    .. code-block:: text

        item.added(fc crm__lookup) - arguments.delta - arguments.done - item.done(fc crm__lookup) -|
        [              restore_tool_names({"crm__lookup": ToolName("lookup", "crm")})           ]
        item.added(fc lookup, namespace=crm) - arguments.delta - arguments.done - item.done(...) --|

    Args:
        names: Chat function name -> the Responses tool (see :class:`ToolNameStage`).
    """

    return stage_operator(lambda: ToolNameStage(names))


def redact_errors(redact: Callable[[str], str]) -> Callable[[Observable[Any]], Observable[Any]]:
    """Mask secrets in the error message that ends a stream.

    The message can quote what the upstream sent, and upstreams echo keys (``Invalid key
    sk-...``), inside a 200 stream as in an error body: the message goes through ``redact``
    before it becomes the ``error`` event and ``response.error``.
    """

    return stage_operator(lambda: _RedactStage(redact))


class _RedactStage:
    name = "redact_errors()"

    def __init__(self, redact: Callable[[str], str]) -> None:
        self._redact = redact

    def handle(self, value: Any) -> list[Any] | None:
        if isinstance(value, StreamFinished) and value.error_message:
            return [replace(value, error_message=self._redact(value.error_message))]
        return None

    def finish(self) -> list[Any]:
        return []

    def fail(self, exc: Exception) -> None:
        return None


def server_pipeline(
    translation: Translation,
    *,
    response_id: str,
    created_at: int,
    redact: Callable[[str], str] | None = None,
    start_immediately: bool = False,
) -> Callable[[Observable[bytes]], Observable[ResponseStreamEvent]]:
    """Chat SSE bytes -> Responses events for one request.

    Args:
        translation: The translated request (model, echo, summary mode, tool names).
        response_id: The ``resp_...`` id (logged with the request).
        created_at: Unix time the request arrived.
        redact: Masks secrets in the stream's error message (see :func:`redact_errors`).
        start_immediately: ``response.created`` and ``response.in_progress`` on subscribe, before
            the upstream answers (see :func:`rxresponses.operators.assemble`).
    """
    stages: list[Callable[[Observable[Any]], Observable[Any]]] = [
        rxo.decode_sse(),
        rxo.parse_chunks(),
        rxo.split_by_item(),
        *([redact_errors(redact)] if redact is not None else []),
        rxo.collect_reasoning(as_summary=translation.reasoning_as_summary),
        rxo.accumulate_text(),
        rxo.join_tool_args(),
    ]
    if translation.tool_names:
        stages.append(restore_tool_names(translation.tool_names))
    stages.append(
        rxo.assemble(
            response_id=response_id,
            model=translation.model,
            created_at=created_at,
            echo=translation.response_fields or translation.echo,
            start_immediately=start_immediately,
        )
    )
    return reactivex.compose(*stages)

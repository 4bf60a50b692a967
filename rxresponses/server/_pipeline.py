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

from collections.abc import Callable

from reactivex import Observable

from ..translate import (
    ToolNameStage,
    custom_input,
    redact_errors,
    restore_tool_names,
    translation_pipeline,
)
from ..types.aliases import ReasoningEventNames
from ..types.events import ResponseStreamEvent
from ._request import Translation

__all__ = [
    "ToolNameStage",
    "custom_input",
    "redact_errors",
    "restore_tool_names",
    "server_pipeline",
]


def server_pipeline(
    translation: Translation,
    *,
    response_id: str,
    created_at: int,
    redact: Callable[[str], str] | None = None,
    start_immediately: bool = False,
    reasoning_events: ReasoningEventNames = "openai",
) -> Callable[[Observable[bytes]], Observable[ResponseStreamEvent]]:
    """Chat SSE bytes -> Responses events for one request (see
    :func:`rxresponses.translate.translation_pipeline`, the same pipeline the client uses)."""
    return translation_pipeline(
        translation,
        response_id=response_id,
        created_at=created_at,
        redact=redact,
        start_immediately=start_immediately,
        reasoning_events=reasoning_events,
    )

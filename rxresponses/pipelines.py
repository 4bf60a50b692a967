"""Ready-made compositions of the operators.

``chat_to_responses()`` is the whole Chat -> Responses conversion as one operator; the others add
the SSE decoding in front. Each runs in one subscription: ``chat_to_responses()`` is the chain of
the operators' stages (``chat_to_responses_composed()`` spells it out: copy it and insert your
own stage wherever you need it; it stays one subscription), ``chat_sse_to_responses()`` the
same stages with per-item lanes (:mod:`rxresponses.operators._fused`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import reactivex
from reactivex import Observable

from . import operators as rxo
from .operators._core import random_ids
from .operators._fused import fused_chat_sse_to_responses
from .sse import DEFAULT_MAX_LINE_BYTES, SSEMessage
from .types.aliases import IdFactory
from .types.chat import ChatCompletionChunk
from .types.events import ResponseStreamEvent

__all__ = [
    "chat_sse_to_responses",
    "chat_to_responses",
    "chat_to_responses_composed",
    "responses_sse_to_events",
]


def chat_to_responses(
    *,
    response_id: str | None = None,
    model: str | None = None,
    created_at: int | None = None,
    echo: Mapping[str, Any] | None = None,
    choice_index: int = 0,
    think_tags: bool = True,
    reasoning_as_summary: bool = False,
    ids: IdFactory = random_ids,
) -> Callable[[Observable[ChatCompletionChunk | SSEMessage]], Observable[ResponseStreamEvent]]:
    """Chat chunks -> typed Responses events, ending in exactly one terminal event.

    The composition ``split_by_item() | collect_reasoning() | accumulate_text() |
    join_tool_args() | assemble()``: one chain of stages run by the driver in one subscription,
    which also takes in a ``parse_chunks()`` (or ``decode_sse() | parse_chunks()``) piped right
    before it, reading the common chunk shapes without building a ``ChatCompletionChunk`` (see
    :mod:`rxresponses.operators._core`). See the operators for the arguments.
    """
    return chat_to_responses_composed(
        response_id=response_id,
        model=model,
        created_at=created_at,
        echo=echo,
        choice_index=choice_index,
        think_tags=think_tags,
        reasoning_as_summary=reasoning_as_summary,
        ids=ids,
    )


def chat_to_responses_composed(
    *,
    response_id: str | None = None,
    model: str | None = None,
    created_at: int | None = None,
    echo: Mapping[str, Any] | None = None,
    choice_index: int = 0,
    think_tags: bool = True,
    reasoning_as_summary: bool = False,
    ids: IdFactory = random_ids,
) -> Callable[[Observable[ChatCompletionChunk | SSEMessage]], Observable[ResponseStreamEvent]]:
    """:func:`chat_to_responses` spelled out as the composition of the public operators.

    A template to copy when you insert your own stages; the tests hold its output equal to
    :func:`chat_to_responses`.
    """
    return reactivex.compose(
        rxo.split_by_item(choice_index=choice_index, think_tags=think_tags, ids=ids),
        rxo.collect_reasoning(as_summary=reasoning_as_summary),
        rxo.accumulate_text(),
        rxo.join_tool_args(),
        rxo.assemble(
            response_id=response_id, model=model, created_at=created_at, echo=echo, ids=ids
        ),
    )


def chat_sse_to_responses(
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    response_id: str | None = None,
    model: str | None = None,
    created_at: int | None = None,
    echo: Mapping[str, Any] | None = None,
    choice_index: int = 0,
    think_tags: bool = True,
    reasoning_as_summary: bool = False,
    ids: IdFactory = random_ids,
) -> Callable[[Observable[bytes]], Observable[ResponseStreamEvent]]:
    """Chat Completions SSE bytes -> typed Responses events (``decode_sse`` + ``parse_chunks``
    + :func:`chat_to_responses`, whose arguments are the others; ``max_line_bytes`` goes to
    ``decode_sse``).

    Produces the same events as that composition, run in one subscription that also reads the
    common chunk shapes without validating a ``ChatCompletionChunk`` (see
    :mod:`rxresponses.operators._fused`).
    """
    return fused_chat_sse_to_responses(
        max_line_bytes=max_line_bytes,
        response_id=response_id,
        model=model,
        created_at=created_at,
        echo=echo,
        choice_index=choice_index,
        think_tags=think_tags,
        reasoning_as_summary=reasoning_as_summary,
        ids=ids,
    )


def responses_sse_to_events(
    *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Callable[[Observable[bytes]], Observable[ResponseStreamEvent]]:
    """Responses SSE bytes -> typed Responses events (``decode_sse`` + ``parse_events``)."""
    return reactivex.compose(rxo.decode_sse(max_line_bytes=max_line_bytes), rxo.parse_events())

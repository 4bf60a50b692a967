"""Ready-made compositions of the operators.

``chat_to_responses()`` is the whole Chat -> Responses conversion as one operator; the others add
the SSE decoding in front. Each is the chain of the operators' stages, run by the one driver
(:mod:`rxresponses.operators._core`) in one subscription: ``chat_to_responses_composed()``
spells it out (copy it and insert your own stage wherever you need it; it stays one
subscription), and ``chat_sse_to_responses()`` is the same chain after ``decode_sse() |
parse_chunks()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import reactivex
from reactivex import Observable

from . import operators as rxo
from .operators._accumulate_text import TextStage
from .operators._assemble import Assembler, check_echo
from .operators._collect_reasoning import ReasoningStage, check_event_names
from .operators._core import Stage, random_ids, stage_chain
from .operators._join_tool_args import ToolCallStage
from .operators._parse import ChatSplitStage
from .operators._split_by_item import ChunkSplitter
from .sse import DEFAULT_MAX_LINE_BYTES, SSEDecoder, SSEMessage
from .types.aliases import IdFactory, ReasoningEventNames
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
    reasoning_events: ReasoningEventNames = "openai",
) -> Callable[[Observable[ChatCompletionChunk | SSEMessage]], Observable[ResponseStreamEvent]]:
    """Chat chunks -> typed Responses events, ending in exactly one terminal event.

    The composition ``split_by_item() | collect_reasoning() | accumulate_text() |
    join_tool_args() | assemble()``: one chain of stages run by the driver in one subscription,
    which also takes in a ``parse_chunks()`` (or ``decode_sse() | parse_chunks()``) piped right
    before it, reading the common chunk shapes without building a ``ChatCompletionChunk`` (see
    :mod:`rxresponses.operators._core`). See the operators for the arguments.
    """
    check_echo(echo)  # invalid echoed fields raise now, not mid-stream
    splitter, stages = _chat_stages(
        response_id,
        model,
        created_at,
        echo,
        choice_index,
        think_tags,
        reasoning_as_summary,
        ids,
        reasoning_events,
    )
    return stage_chain(splitter, *stages)


def _chat_stages(
    response_id: str | None,
    model: str | None,
    created_at: int | None,
    echo: Mapping[str, Any] | None,
    choice_index: int,
    think_tags: bool,
    reasoning_as_summary: bool,
    ids: IdFactory,
    reasoning_events: ReasoningEventNames,
) -> tuple[Callable[[], ChunkSplitter], tuple[Callable[[], Stage[Any, Any]], ...]]:
    """The stages of ``split_by_item() | collect_reasoning() | accumulate_text() |
    join_tool_args() | assemble()``, as one shell takes them (:func:`stage_chain`): the
    splitter's factory apart (:func:`chat_sse_to_responses` fuses it with the SSE decoder),
    then the others'. Bad options raise here, when the pipeline is built, not when a stream
    starts."""
    check_event_names(reasoning_events)

    def splitter() -> ChunkSplitter:
        return ChunkSplitter(choice_index=choice_index, think_tags=think_tags, ids=ids)

    return splitter, (
        lambda: ReasoningStage(as_summary=reasoning_as_summary, event_names=reasoning_events),
        TextStage,
        ToolCallStage,
        lambda: Assembler(
            response_id=response_id,
            model=model,
            created_at=created_at,
            echo=echo,
            ids=ids,
            reasoning_events=reasoning_events,
        ),
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
    reasoning_events: ReasoningEventNames = "openai",
) -> Callable[[Observable[ChatCompletionChunk | SSEMessage]], Observable[ResponseStreamEvent]]:
    """:func:`chat_to_responses` spelled out as the composition of the public operators.

    A template to copy when you insert your own stages; the tests hold its output equal to
    :func:`chat_to_responses`.
    """
    return reactivex.compose(
        rxo.split_by_item(choice_index=choice_index, think_tags=think_tags, ids=ids),
        rxo.collect_reasoning(as_summary=reasoning_as_summary, event_names=reasoning_events),
        rxo.accumulate_text(),
        rxo.join_tool_args(),
        rxo.assemble(
            response_id=response_id,
            model=model,
            created_at=created_at,
            echo=echo,
            ids=ids,
            reasoning_events=reasoning_events,
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
    reasoning_events: ReasoningEventNames = "openai",
) -> Callable[[Observable[bytes]], Observable[ResponseStreamEvent]]:
    """Chat Completions SSE bytes -> typed Responses events (``decode_sse`` + ``parse_chunks``
    + :func:`chat_to_responses`, whose arguments are the others; ``max_line_bytes`` goes to
    ``decode_sse``).

    One chain of stages run by the driver (where ``decode_sse``, ``parse_chunks`` and
    ``split_by_item`` fuse into one stage that reads the common chunk shapes without validating
    a ``ChatCompletionChunk``); a ``final_response()`` piped after it joins the same
    subscription, and so does a source such as ``from_bytes()``. ``reasoning_events=
    "open-responses"`` names the raw reasoning text events ``response.reasoning.delta`` /
    ``.done`` (the Open Responses specification's names) instead of OpenAI's
    ``response.reasoning_text.delta`` / ``.done``.
    """
    check_echo(echo)  # invalid echoed fields raise now, not mid-stream
    splitter, stages = _chat_stages(
        response_id,
        model,
        created_at,
        echo,
        choice_index,
        think_tags,
        reasoning_as_summary,
        ids,
        reasoning_events,
    )
    # decode_sse() | parse_chunks() | split_by_item() as the one stage the driver would fuse
    # them into (ChatSplitStage), made so at once: a short stream paid for the fusing.
    return stage_chain(
        lambda: ChatSplitStage(splitter(), SSEDecoder(max_line_bytes=max_line_bytes)),
        *stages,
    )


def responses_sse_to_events(
    *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Callable[[Observable[bytes]], Observable[ResponseStreamEvent]]:
    """Responses SSE bytes -> typed Responses events (``decode_sse`` + ``parse_events``)."""
    return reactivex.compose(rxo.decode_sse(max_line_bytes=max_line_bytes), rxo.parse_events())

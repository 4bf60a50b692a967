"""rxresponses: streaming LLM output as typed OpenAI Responses API events, with RxPY.

Quick tour::

    from rxresponses import from_file, parse_chunks, chat_to_responses, get_final_response

    events = from_file("chat.sse").pipe(parse_chunks(), chat_to_responses())
    response = get_final_response(events)

The operators live in :mod:`rxresponses.operators`, the models in :mod:`rxresponses.types`.
"""

from __future__ import annotations

from . import responses
from .bridges import aget_final_response, aiterate, get_final_response, iterate
from .errors import (
    ChunkDecodeError,
    PipelineError,
    RxResponsesError,
    SSEDecodeError,
    SSELineTooLongError,
    StageError,
    UpstreamError,
    UpstreamStatusError,
)
from .operators import (
    accumulate_text,
    assemble,
    collect_reasoning,
    decode_sse,
    encode_sse,
    final_response,
    join_tool_args,
    parse_chunks,
    parse_events,
    split_by_item,
)
from .operators._final import ResponseAccumulator
from .pipelines import chat_sse_to_responses, chat_to_responses, responses_sse_to_events
from .responses import ResponseFailedError
from .sinks import notebook as _notebook  # noqa: F401  (registers the display of every model)
from .sources import from_bytes, from_file, from_httpx, from_httpx_async, from_openai_chunks
from .sse import SSEDecoder, SSEMessage, encode_event
from .types import Response, ResponseStreamEvent, parse_event

__version__ = "0.1.0"

__all__ = [
    "ChunkDecodeError",
    "PipelineError",
    "Response",
    "ResponseFailedError",
    "ResponseAccumulator",
    "ResponseStreamEvent",
    "RxResponsesError",
    "SSEDecodeError",
    "SSEDecoder",
    "SSELineTooLongError",
    "StageError",
    "SSEMessage",
    "UpstreamError",
    "UpstreamStatusError",
    "__version__",
    "accumulate_text",
    "aget_final_response",
    "aiterate",
    "assemble",
    "chat_sse_to_responses",
    "chat_to_responses",
    "collect_reasoning",
    "decode_sse",
    "encode_event",
    "encode_sse",
    "final_response",
    "from_bytes",
    "from_file",
    "from_httpx",
    "from_httpx_async",
    "from_openai_chunks",
    "get_final_response",
    "iterate",
    "join_tool_args",
    "parse_chunks",
    "parse_event",
    "parse_events",
    "responses",
    "responses_sse_to_events",
    "split_by_item",
]

"""The contenders of the benchmark: each turns the SSE bytes of one Chat Completions stream into a
final result, starting from the same pieces of bytes.

* :class:`Limit` (``limit``): frame the bytes on blank lines and ``orjson.loads`` every ``data:``
  payload; no validation, no conversion. Nothing that parses every chunk can beat it.
* :class:`RxFull` (``rxresponses``): the product's full path,
  ``from_bytes(pieces).pipe(chat_sse_to_responses(), final_response())``: SSE decoding, typed
  chunk models, item signals, typed Responses events, the folded final ``Response``.
* :class:`OpenAIState` (``openai``): what ``client.chat.completions.stream(...)`` does per chunk in
  openai-python, minus the HTTP client: the SDK's own SSE decoder
  (``openai._streaming.SSEDecoder.iter_bytes``), ``sse.json()`` (stdlib ``json.loads``), the
  ``[DONE]`` / ``error`` checks of ``Stream.__stream__``,
  ``construct_type(type_=ChatCompletionChunk, value=data)`` (what ``Stream`` does through
  ``_process_response_data`` when strict response validation is off, the default: no
  validation, models built with ``construct``), the
  ``object == "chat.completion.chunk"`` filter of ``ChatCompletionStream``, then
  ``ChatCompletionStreamState.handle_chunk`` (its events are iterated) and
  ``get_final_completion()``. It produces Chat events and a ``ChatCompletion``, not Responses
  events: a reference for "what the official SDK costs per chunk", not a like-for-like converter.
* :class:`LiteLLMIterator` (``litellm``): LiteLLM's Chat -> Responses streaming converter,
  ``LiteLLMCompletionStreamingIterator``, driven through ``async for`` (its ``__anext__`` is the
  path LiteLLM's proxy and ``litellm.aresponses`` use; the sync ``__next__`` skips the reasoning
  item's done events). It needs a ``litellm.CustomStreamWrapper``; of that it only reads
  ``logging_obj`` and ``__anext__``, so we hand it :class:`_ChunkFeed`, which does what
  ``CustomStreamWrapper`` does for an OpenAI-compatible provider, reduced to the minimum: split
  the SSE bytes (same framing as the limit), ``orjson.loads`` each payload, build a litellm
  ``ModelResponseStream(**payload)`` and, as ``CustomStreamWrapper.model_response_creator`` does,
  give a ``choices: []`` chunk (the usage chunk) one empty ``StreamingChoices``. That conversion
  is inside the timing. A real ``CustomStreamWrapper`` (logging, cost tracking, per-chunk provider
  dispatch) would only add cost, so the figure is LiteLLM's best case.

All four contenders run one stream per call to :meth:`Contender.run_stream` and return a
:class:`Result` used to check that the work was really done (text, reasoning, arguments).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "Contender",
    "LiteLLMIterator",
    "Limit",
    "OpenAIState",
    "Result",
    "RxComposed",
    "RxFull",
    "available_contenders",
    "rx_result",
]


@dataclass
class Result:
    """What a contender ended with, reduced to what the workloads check."""

    text: str = ""
    reasoning: str = ""
    arguments: list[str] = field(default_factory=list)
    chunks: int = 0


def _payloads(pieces: Iterable[bytes]) -> Iterable[bytes]:
    """The ``data:`` payloads of an SSE body given in pieces (blank-line framing, ``data: ``
    prefix; ``[DONE]`` excluded). The minimal framing the limit and the LiteLLM feed share."""
    rest = b""
    for piece in pieces:
        frames = (rest + piece).split(b"\n\n")
        rest = frames.pop()
        for frame in frames:
            if frame.startswith(b"data: ") and frame != b"data: [DONE]":
                yield frame[6:]
    if rest.startswith(b"data: ") and rest.strip() != b"data: [DONE]":
        yield rest[6:]


class Contender:
    """One benchmarked implementation."""

    name: str = ""
    label: str = ""

    def run_stream(self, pieces: Sequence[bytes]) -> Result:
        raise NotImplementedError

    def run_all(self, streams: Sequence[Sequence[bytes]]) -> Result:
        """Run every stream (one pass over a workload); return the last stream's result."""
        result = Result()
        for pieces in streams:
            result = self.run_stream(pieces)
        return result


class Limit(Contender):
    """Split the SSE bytes and ``orjson.loads`` each payload: the parse limit."""

    name = "limit"
    label = "limit (split + orjson.loads)"

    def run_stream(self, pieces: Sequence[bytes]) -> Result:
        loads = orjson.loads
        n = 0
        rest = b""
        for piece in pieces:
            frames = (rest + piece).split(b"\n\n")
            rest = frames.pop()
            for frame in frames:
                if frame.startswith(b"data: ") and frame != b"data: [DONE]":
                    loads(frame[6:])
                    n += 1
        return Result(chunks=n)


def rx_result(response: Any) -> Result:
    """What the checks compare, read off an rxresponses ``Response``."""
    result = Result()
    for item in response.output:
        kind = getattr(item, "type", None)
        if kind == "message":
            result.text += "".join(getattr(p, "text", "") or "" for p in item.content)
        elif kind == "reasoning":
            result.reasoning += "".join(p.text for p in item.content or [])
            result.reasoning += "".join(p.text for p in item.summary or [])
        elif kind == "function_call":
            result.arguments.append(item.arguments)
    return result


class RxFull(Contender):
    """rxresponses: SSE bytes -> typed Responses events -> final ``Response``."""

    name = "rxresponses"
    label = "rxresponses full path"

    def __init__(self) -> None:
        from rxresponses import chat_sse_to_responses, final_response, from_bytes

        self._from_bytes = from_bytes
        self._pipeline = chat_sse_to_responses
        self._final = final_response

    def final(self, pieces: Iterable[bytes]) -> Any:
        """Run the pipeline over one stream; return its final ``Response``."""
        out: list[Any] = []
        errors: list[Exception] = []
        self._from_bytes(pieces).pipe(self._pipeline(), self._final()).subscribe(
            out.append, errors.append
        )
        if errors:
            raise errors[0]
        return out[0]

    def run_stream(self, pieces: Sequence[bytes]) -> Result:
        return rx_result(self.final(pieces))


class RxEvents(RxFull):
    """rxresponses with every event built and delivered: ``from_bytes(pieces).pipe(
    chat_sse_to_responses())`` to a subscriber that looks at each event (what a server, a UI
    or a logger sees). The result is the terminal event's ``response``.

    ``final_response()`` after the pipeline reads only the Response, so the item stages emit
    each item whole (see ``emit_items_only()`` in ``rxresponses/operators/_core.py``) and no
    per-token event is built: :class:`RxFull` measures that path, this one the path where
    every event is wanted."""

    name = "rx_events"
    label = "rxresponses, every event"

    def final(self, pieces: Iterable[bytes]) -> Any:
        """Run the pipeline over one stream; return the terminal event's ``Response``."""
        last: list[Any] = [None]
        errors: list[Exception] = []

        def keep(event: Any) -> None:
            last[0] = event

        self._from_bytes(pieces).pipe(self._pipeline()).subscribe(keep, errors.append)
        if errors:
            raise errors[0]
        return last[0].response


class RxComposed(RxFull):
    """rxresponses with ``chat_to_responses_composed()`` (one subscription per operator), when
    the installed version has it: shows what fusing the stages saves."""

    name = "rx_composed"
    label = "rxresponses, composed operators"

    def __init__(self) -> None:
        super().__init__()
        import reactivex

        from rxresponses import operators as rxo
        from rxresponses.pipelines import chat_to_responses_composed

        def pipeline() -> Any:
            return reactivex.compose(
                rxo.decode_sse(), rxo.parse_chunks(), chat_to_responses_composed()
            )

        self._pipeline = pipeline


class RxUserStage(RxFull):
    """rxresponses with a stage of the user's own (one that passes every value on) inserted
    between ``split_by_item()`` and the item operators: the chain a user writes to redact or
    filter signals. The issue's target: at least 70% of the built-in pipeline's throughput."""

    name = "rx_user_stage"
    label = "rxresponses, one user stage inserted"

    def __init__(self) -> None:
        super().__init__()
        from rxresponses import operators as rxo
        from rxresponses.operators import stage_operator

        class PassOn:
            """A user's stage that changes nothing."""

            def handle(self, value: Any) -> None:
                return None

            def finish(self) -> list[Any]:
                return []

            def fail(self, exc: Exception) -> None:
                return None

        def pipeline() -> Any:
            def chain(source: Any) -> Any:
                return source.pipe(
                    rxo.decode_sse(),
                    rxo.parse_chunks(),
                    rxo.split_by_item(),
                    stage_operator(PassOn),
                    rxo.collect_reasoning(),
                    rxo.accumulate_text(),
                    rxo.join_tool_args(),
                    rxo.assemble(),
                )

            return chain

        self._pipeline = pipeline


class OpenAIState(Contender):
    """openai-python: its SSE decoder, ``construct_type`` and ``ChatCompletionStreamState``."""

    name = "openai"
    label = "openai ChatCompletionStreamState"

    def __init__(self) -> None:
        from openai._models import construct_type
        from openai._streaming import SSEDecoder
        from openai._utils import is_mapping
        from openai.lib.streaming.chat import ChatCompletionStreamState
        from openai.types.chat import ChatCompletionChunk

        self._decoder = SSEDecoder
        self._construct = construct_type
        self._is_mapping = is_mapping
        self._state = ChatCompletionStreamState
        self._chunk = ChatCompletionChunk

    def run_stream(self, pieces: Sequence[bytes]) -> Result:
        construct, chunk_type, is_mapping = self._construct, self._chunk, self._is_mapping
        state = self._state()
        n = 0
        for sse in self._decoder().iter_bytes(iter(pieces)):
            if sse.data.startswith("[DONE]"):  # Stream.__stream__
                break
            data = sse.json()
            if is_mapping(data) and data.get("error"):
                raise RuntimeError(f"stream error: {data['error']}")
            chunk = construct(type_=chunk_type, value=data)
            n += 1
            if chunk.object != "chat.completion.chunk":  # ChatCompletionStream's weak check
                continue
            for _event in state.handle_chunk(chunk):
                pass
        completion = state.get_final_completion()
        message = completion.choices[0].message
        return Result(
            text=message.content or "",
            reasoning=getattr(message, "reasoning_content", None) or "",
            arguments=[tc.function.arguments for tc in message.tool_calls or []],
            chunks=n,
        )


class _ChunkFeed:
    """The part of ``litellm.CustomStreamWrapper`` that ``LiteLLMCompletionStreamingIterator``
    uses: ``logging_obj`` and ``__anext__`` returning ``ModelResponseStream`` chunks."""

    def __init__(self, pieces: Sequence[bytes], model_response_stream: Any, choice: Any) -> None:
        self._payloads = iter(_payloads(pieces))
        self._mrs = model_response_stream
        self._choice = choice
        self.logging_obj = None
        self.chunks = 0

    def __aiter__(self) -> _ChunkFeed:
        return self

    async def __anext__(self) -> Any:
        payload = next(self._payloads, None)
        if payload is None:
            raise StopAsyncIteration
        self.chunks += 1
        chunk = self._mrs(**orjson.loads(payload))
        if not chunk.choices:  # CustomStreamWrapper.model_response_creator does the same
            chunk.choices = [self._choice(finish_reason=None)]
        return chunk


class LiteLLMIterator(Contender):
    """LiteLLM's ``LiteLLMCompletionStreamingIterator`` over litellm chunk objects."""

    name = "litellm"
    label = "LiteLLM streaming iterator"

    def __init__(self) -> None:
        # Do not fetch the model price map from GitHub at import time.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        from litellm.responses.litellm_completion_transformation.streaming_iterator import (
            LiteLLMCompletionStreamingIterator,
        )
        from litellm.types.utils import ModelResponseStream, StreamingChoices

        self._iterator = LiteLLMCompletionStreamingIterator
        self._mrs = ModelResponseStream
        self._choice = StreamingChoices
        self._loop = asyncio.new_event_loop()

    async def _one(self, pieces: Sequence[bytes]) -> Result:
        feed = _ChunkFeed(pieces, self._mrs, self._choice)
        iterator = self._iterator(
            model="bench-model",
            litellm_custom_stream_wrapper=feed,  # type: ignore[arg-type]
            request_input="benchmark",
            responses_api_request={},
        )
        last: Any = None
        events: AsyncIterator[Any] = iterator
        async for event in events:
            last = event
        result = Result(chunks=feed.chunks)
        for item in getattr(getattr(last, "response", None), "output", None) or []:
            kind = getattr(item, "type", None)
            if kind == "message":
                result.text += "".join(getattr(p, "text", "") or "" for p in item.content or [])
            elif kind == "reasoning":
                result.reasoning += "".join(getattr(p, "text", "") for p in item.content or [])
            elif kind == "function_call":
                result.arguments.append(item.arguments)
        return result

    async def _many(self, streams: Sequence[Sequence[bytes]]) -> Result:
        result = Result()
        for pieces in streams:
            result = await self._one(pieces)
        return result

    def run_stream(self, pieces: Sequence[bytes]) -> Result:
        return self._loop.run_until_complete(self._one(pieces))

    def run_all(self, streams: Sequence[Sequence[bytes]]) -> Result:
        # One event loop turn for the whole workload: no per-stream loop overhead.
        return self._loop.run_until_complete(self._many(streams))


def available_contenders(
    *, composed: bool = False, openai: bool = True
) -> tuple[list[Contender], dict[str, str]]:
    """Instantiate every contender whose package is installed; the others with the reason."""
    out: list[Contender] = [Limit(), RxFull(), RxEvents()]
    missing: dict[str, str] = {}
    try:
        out.append(RxUserStage())
    except ImportError as exc:  # an installed version without stage_operator
        missing["rx_user_stage"] = str(exc)
    if composed:
        try:
            out.append(RxComposed())
        except ImportError as exc:
            missing["rx_composed"] = str(exc)
    peers: list[type[Contender]] = [OpenAIState] if openai else []
    if not openai:
        missing["openai"] = "left out by --quick (no target depends on it)"
    for cls in (*peers, LiteLLMIterator):
        try:
            out.append(cls())
        except ImportError as exc:
            missing[cls.name] = f"not installed ({exc.name}): pip install -e '.[bench]'"
    return out, missing

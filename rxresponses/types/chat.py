"""Chat Completions ``chat.completion.chunk`` models, lenient for what real providers send.

Field names follow ``openai.types.chat.ChatCompletionChunk``. Where providers disagree with the
typed schema, these models accept the wire (PROTOCOL.md section 6):

* ``object`` may be ``""`` (Azure content-filter chunks), missing (Moonshot) or
  ``"chat.completion.done"`` (Perplexity): any string, default ``"chat.completion.chunk"``;
* ``choices`` may be empty (usage and moderation chunks);
* a tool call may come without ``index`` (Mistral, Gemini, Ollama): ``index`` is optional;
* ``content`` may be a list of blocks (Mistral thinking blocks) instead of a string;
* reasoning arrives as ``reasoning_content`` (DeepSeek, Qwen, Z.ai, vLLM), ``reasoning``
  (OpenRouter, Groq, Ollama) or ``reasoning_details`` (OpenRouter);
* usage may sit under ``x_groq.usage`` (Groq); see :attr:`ChatCompletionChunk.effective_usage`;
* a chunk may carry an ``error`` object instead of choices (OpenRouter, mid-stream).

Unknown fields are kept as extras, so nothing a provider adds is lost.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..errors import ChunkDecodeError
from ._base import WIRE, WireModel

__all__ = [
    "ChatCompletionChunk",
    "ChoiceDelta",
    "ChoiceDeltaFunctionCall",
    "ChoiceDeltaToolCall",
    "ChoiceLogprobs",
    "ChunkChoice",
    "CompletionUsage",
    "TokenLogprob",
    "TopLogprob",
    "parse_chunk",
]


class ChoiceDeltaFunctionCall(WireModel):
    """The ``function`` of a streamed tool call: name once, arguments in fragments."""

    name: str | None = None
    arguments: str | None = None


class ChoiceDeltaToolCall(WireModel):
    """One streamed tool-call fragment. ``index`` is optional: some providers omit it."""

    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: ChoiceDeltaFunctionCall | None = None


class ChoiceDelta(WireModel):
    """What one chunk adds to a choice's message."""

    role: str | None = None
    content: str | list[Any] | None = None
    refusal: str | None = None
    tool_calls: list[ChoiceDeltaToolCall] | None = None
    function_call: ChoiceDeltaFunctionCall | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    reasoning_details: list[dict[str, Any]] | None = None


class TopLogprob(WireModel):
    """An alternative token and its log probability."""

    token: str = ""
    bytes: list[int] | None = None
    logprob: float = 0.0


class TokenLogprob(WireModel):
    """Log probability of one generated token."""

    token: str = ""
    bytes: list[int] | None = None
    logprob: float = 0.0
    top_logprobs: list[TopLogprob] = []


class ChoiceLogprobs(WireModel):
    """Log probabilities of the tokens a chunk adds (content or refusal)."""

    content: list[TokenLogprob] | None = None
    refusal: list[TokenLogprob] | None = None


class ChunkChoice(WireModel):
    """One choice in a chunk. ``n > 1`` requests interleave choices by ``index``."""

    index: int = 0
    delta: ChoiceDelta = ChoiceDelta()
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class CompletionUsage(WireModel):
    """Token usage of a Chat completion (details kept as plain dicts: providers vary)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: dict[str, Any] | None = None
    completion_tokens_details: dict[str, Any] | None = None


class ChatCompletionChunk(WireModel):
    """One ``chat.completion.chunk`` of a streamed Chat Completion."""

    id: str = ""
    object: str = "chat.completion.chunk"
    created: int | float = 0
    model: str = ""
    choices: list[ChunkChoice] = []
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    error: dict[str, Any] | None = None

    @property
    def effective_usage(self) -> CompletionUsage | None:
        """``usage``, or Groq's ``x_groq.usage`` when the top-level field is absent."""
        if self.usage is not None:
            return self.usage
        extra = self.__pydantic_extra__
        x_groq = extra.get("x_groq") if extra else None
        if isinstance(x_groq, dict) and isinstance(x_groq.get("usage"), dict):
            return CompletionUsage.model_validate(x_groq["usage"], context=WIRE)
        return None


def parse_chunk(data: str | bytes) -> ChatCompletionChunk:
    """Parse one SSE ``data`` payload into a :class:`ChatCompletionChunk`.

    Raises:
        ChunkDecodeError: the payload is not JSON, or not a JSON object of chunk shape.
    """
    try:
        return ChatCompletionChunk.model_validate_json(data, context=WIRE)
    except ValidationError as exc:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        first = exc.errors()[0]
        raise ChunkDecodeError(
            f"undecodable chunk ({first['type']}: {first['msg']})", text
        ) from None

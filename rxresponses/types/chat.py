"""Chat Completions ``chat.completion.chunk`` models, lenient for what real providers send.

Field names follow ``openai.types.chat.ChatCompletionChunk``. Where providers disagree with the
typed schema, these models accept the wire as real servers send it:

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

:class:`FastChunkReader` is a shortcut for the fused SSE pipeline only: it reads the few chunk
shapes that make up almost all of a stream (one choice adding ``content``, ``reasoning_content`` or
one tool-call fragment) from plain JSON, and declines everything else, which then goes through
:func:`parse_chunk`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

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
    "FastChunkReader",
    "FastDelta",
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
        extra = self.model_extra
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


# -- the fast path ------------------------------------------------------------------------------
#
# Validating a chunk with pydantic costs about as much as everything else the pipeline does with
# it. Nearly every chunk of a stream has one of three shapes, so the fused SSE pipeline reads those
# from plain JSON (orjson when installed) and hands the splitter just the fields it uses. The rule
# that keeps it equivalent: accept a chunk only when every field the model declares has the type
# the model would accept *unchanged*; anything else (other shapes, coercible or wrong types,
# JSON that stdlib ``json`` reads but pydantic does not) returns ``None``, and the caller parses the
# chunk with :func:`parse_chunk` as usual. ``tests/test_fastpath.py`` holds the two paths equal.


def _reject_constant(name: str) -> Any:
    raise ValueError(name)  # NaN / Infinity: not JSON, pydantic refuses them


_json_decode: Callable[[str], Any] = json.JSONDecoder(parse_constant=_reject_constant).decode


def _json_loads(data: str) -> Any:
    if "\\ud" in data or "\\uD" in data:
        return None  # may be a lone surrogate, which json reads and pydantic refuses
    return _json_decode(data)


try:
    import orjson

    _loads: Callable[[str], Any] = orjson.loads
except ImportError:  # pragma: no cover - orjson is an optional accelerator
    _loads = _json_loads

#: ``(content, reasoning, tool)`` of a chunk :class:`FastChunkReader` recognized; ``tool`` is
#: ``(index, id, function.name, function.arguments)`` of its single tool-call fragment.
FastDelta: TypeAlias = tuple[
    str | None, str | None, tuple[int | None, str | None, str | None, str | None] | None
]
#: ``(finish_reason, usage)`` of a chunk :meth:`FastChunkReader.read_end` recognized: the
#: converted choice's non-empty ``finish_reason`` (``None``: the chunk has no choices) and the
#: ``usage`` object, its fields of the types :class:`CompletionUsage` keeps unchanged (``None``:
#: no usage).
FastEnd: TypeAlias = tuple[str | None, dict[str, Any] | None]

_OPT_STR = (str, type(None))
_NUMBER = (int, float)
# Delta fields the splitter reads as strings, and the ones a fast chunk must leave null.
_DELTA_STR = frozenset({"content", "reasoning_content", "reasoning", "role"})
_DELTA_OTHER = frozenset({"refusal", "function_call", "reasoning_details", "annotations"})
_USAGE_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
_USAGE_DETAILS = ("prompt_tokens_details", "completion_tokens_details")


class FastChunkReader:
    """Reads the fields of a chunk of one of the common shapes, or declines (``None``: then use
    :func:`parse_chunk`). One per stream.

    Recognized: one choice numbered ``choice_index``, with no ``finish_reason`` or ``logprobs``,
    whose delta adds string ``content`` and/or ``reasoning_content`` / ``reasoning``, and at most
    one tool-call fragment; no ``usage``, ``error``, ``x_groq``, ``citations`` or
    ``search_results`` (nor ``annotations`` in the delta). ``reasoning`` is
    ``reasoning_content or reasoning``, as the splitter reads it. Unknown fields are extras, which
    the splitter does not read. A stream repeats the chunk's top level and the choice around the
    delta: once checked, an equal one (``==``, under which the checked types stay valid for the
    model) is not checked again.

    Most chunks of a stream are byte for byte the previous one with another string in one place
    (the token text). After reading a chunk whose delta is one non-empty string (content,
    reasoning, or one tool call's arguments), the reader keeps its JSON text minus that string's
    token as a *template*, once a probe string put in its place reads back in the same slot. A
    later chunk that starts with the template's prefix and ends with its suffix is the same
    chunk with another string token between them: only that token is parsed (and must be a
    non-empty JSON string; anything else reads the whole chunk). The tests hold the fields equal
    to the whole reading.
    """

    __slots__ = ("_choice", "_learned", "_rest", "_templates", "_top")

    @property
    def top(self) -> dict[str, Any] | None:
        """The top level (minus ``choices``) of the last chunk :meth:`read_new` read: what
        the splitter starts a stream with (``model``, ``created``, ``id``), already checked."""
        return self._top

    def __init__(self, choice_index: int = 0) -> None:
        self._choice = choice_index
        self._top: dict[str, Any] | None = None  # the last top level checked (minus choices)
        self._rest: dict[str, Any] | None = None  # the last choice checked (minus delta)
        self._templates: list[_Template] = []  # most recently learned first
        # Chunks learned from since a template was last used: a server whose chunks differ in
        # more than their text (a per-chunk nonce...) never matches one, and stops paying.
        self._learned = 0

    def read(self, data: str) -> FastDelta | None:
        """The fields of ``data``, one chunk's JSON text, or ``None`` (see the class docstring)."""
        slot, index, texts = self.read_run((data,), 0)
        if not texts:
            return self.read_new(data)
        if slot == 0:
            return texts[0], None, None
        if slot == 1:
            return None, texts[0], None
        return None, None, (index, None, None, texts[0])

    def read_run(self, datas: Sequence[Any], start: int) -> tuple[int, int | None, list[str]]:
        """:meth:`read` for ``datas[start]`` and the chunks after it, as long as each is the
        template the first one matches with a string in its slot: ``(slot, tool-call index,
        the strings)``. No strings (``[]``): no template reads ``datas[start]``; then
        :meth:`read_new` does.

        A long stream is mostly runs of such chunks (one message's tokens, one tool call's
        fragments): a run is read in one call. A chunk that matches a template reads as that
        template says, whichever template it is (its probe showed where any string token
        reads), so the run goes on with the template of its first chunk.
        """
        data = datas[start]
        if type(data) is not str:
            return _NO_RUN
        for template in self._templates:
            # prefix ends with the string token's opening quote, suffix starts with its closing
            prefix, suffix, slot, index = template
            if data.startswith(prefix) and data.endswith(suffix):
                break
        else:
            return _NO_RUN
        low, cut = len(prefix), len(suffix)
        texts: list[str] = []
        append = texts.append
        k, n = start, len(datas)
        while True:
            end = len(data) - cut
            if end <= low:  # "" is not text (`reasoning_content or reasoning`)
                break
            text = data[low:end]
            if "\\" in text or '"' in text or not text.isprintable():
                # Not a plain string token (a plain one, with no escape, quote or control
                # character, reads as what is between its quotes): let JSON read it.
                try:
                    text = _loads(data[low - 1 : end + 1])
                except Exception:
                    break
                if type(text) is not str or not text:
                    break
            append(text)
            k += 1
            if k == n:
                break
            data = datas[k]
            if type(data) is not str or not data.startswith(prefix) or not data.endswith(suffix):
                break
        if not texts:
            return _NO_RUN
        if self._learned:
            self._learned = 0
        return slot, index, texts

    def read_new(self, data: str) -> FastDelta | None:
        """:meth:`read` for a chunk no template reads: the whole JSON text is read (and may
        become a template)."""
        fields = self._read(data)
        if fields is not None and self._learned < _TEMPLATES * 2:
            self._learned += 1
            self._learn(data, fields)
        return fields

    def read_end(self, data: str) -> FastEnd | None:
        """The fields of a chunk that ends the converted choice or reports usage, or ``None``
        (then use :func:`parse_chunk`): what :meth:`read_new` declines at the end of nearly
        every stream. Recognized: the checks of the class docstring on the top level, except
        that ``usage`` may be set; and either no choices, or one choice numbered
        ``choice_index`` with no ``logprobs``, a non-empty string ``finish_reason``, and a
        delta that adds nothing (every field null, except a string ``role`` and an empty
        ``content``). ``usage``: an object whose counts are ints and whose details are objects
        or null (other fields are extras, kept as they are)."""
        obj = _object(data)
        if obj is None:
            return None
        choices = obj.pop("choices", None)
        usage = obj.pop("usage", None)
        if type(choices) is not list or not _fast_top(obj):
            return None
        reason: str | None = None
        if choices:
            if len(choices) != 1:
                return None
            choice = choices[0]
            if type(choice) is not dict:
                return None
            reason = choice.get("finish_reason")
            index = choice.get("index", 0)
            delta = choice.get("delta", {})
            if (
                type(reason) is not str
                or not reason
                or type(index) is not int
                or index != self._choice
                or choice.get("logprobs") is not None
                or type(delta) is not dict
            ):
                return None
            for key, value in delta.items():
                if value is None or (key == "role" and type(value) is str):
                    continue
                if key == "content" and value == "":
                    continue
                return None
        if usage is not None:
            if type(usage) is not dict:
                return None
            get = usage.get
            for key in _USAGE_COUNTS:
                if type(get(key, 0)) is not int:
                    return None
            for key in _USAGE_DETAILS:
                if type(get(key)) not in (dict, type(None)):
                    return None
        elif not choices:
            return None
        return reason, usage

    def _learn(self, data: str, fields: FastDelta) -> None:
        """Keep ``data`` minus its one string as a template, if the string's token is found and
        a probe string put in its place reads back in the same slot, alone (then any string in
        that place does: JSON reads a string token the same wherever it stands)."""
        content, reasoning, tool = fields
        index: int | None = None
        if tool is None:
            if content and reasoning is None:
                slot, text = 0, content
            elif reasoning and content is None:
                slot, text = 1, reasoning
            else:
                return
        elif (
            content is None
            and reasoning is None
            and type(tool[0]) is int
            and tool[1] is None
            and tool[2] is None
            and tool[3]
        ):
            slot, text, index = 2, tool[3], tool[0]
        else:
            return
        for ascii_only in (False, True):  # the two ways servers write non-ASCII text
            token = json.dumps(text, ensure_ascii=ascii_only)
            if data.count(token) == 1:
                break
        else:
            return
        start = data.index(token)
        prefix, suffix = data[:start], data[start + len(token) :]
        probe = self._read(prefix + _PROBE_TOKEN + suffix)
        if slot == 0:
            expected: FastDelta = (_PROBE, None, None)
        elif slot == 1:
            expected = (None, _PROBE, None)
        else:
            expected = (None, None, (index, None, None, _PROBE))
        if probe == expected:  # the token's quotes go with the prefix and the suffix
            self._templates.insert(0, (prefix + '"', '"' + suffix, slot, index))
            del self._templates[_TEMPLATES:]

    def _read(self, data: str) -> FastDelta | None:
        obj = _object(data)
        if obj is None:
            return None
        choices = obj.pop("choices", None)
        if type(choices) is not list or len(choices) != 1:
            return None
        if obj != self._top:
            if not _fast_top(obj):
                return None
            self._top = obj
        choice = choices[0]
        if type(choice) is not dict:
            return None
        delta = choice.pop("delta", None)
        if type(delta) is not dict:
            return None
        if choice != self._rest:
            index = choice.get("index", 0)
            if (
                type(index) is not int
                or index != self._choice
                or choice.get("finish_reason") is not None
                or choice.get("logprobs") is not None
            ):
                return None
            self._rest = choice
        if len(delta) == 1:  # the usual token chunks: a string of content, or one fragment
            content = delta.get("content")
            if type(content) is str:
                return content, None, None
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if type(reasoning) is str:
                return None, reasoning, None
            tool_calls = delta.get("tool_calls")
            if type(tool_calls) is list and len(tool_calls) == 1:
                tc = tool_calls[0]
                if type(tc) is dict and len(tc) == 2:  # {"index": i, "function": {"arguments"}}
                    fn, index = tc.get("function"), tc.get("index")
                    if type(index) is int and type(fn) is dict and len(fn) == 1:
                        arguments = fn.get("arguments")
                        if type(arguments) is str:
                            return None, None, (index, None, None, arguments)
        tool = None
        for key, value in delta.items():
            if value is None:  # null is valid for every field of a delta
                continue
            if key in _DELTA_STR:
                if type(value) is not str:
                    return None
            elif key == "tool_calls":
                tool = _fast_tool(value)
                if tool is None:
                    return None
            elif key in _DELTA_OTHER:
                return None
        get = delta.get
        return get("content"), get("reasoning_content") or get("reasoning"), tool


#: A chunk's JSON text around its one string: (prefix up to the string's opening quote, suffix
#: from its closing quote, both quotes included; slot: 0 content, 1 reasoning, 2 tool-call
#: arguments; tool-call index).
_Template: TypeAlias = tuple[str, str, int, int | None]
_TEMPLATES = 4  # templates kept per stream: a few parallel tool calls interleave
_PROBE = "\x00rxresponses probe\x00"
_PROBE_TOKEN = json.dumps(_PROBE)
#: :meth:`FastChunkReader.read_run`'s "no run" (its list is never appended to).
_NO_RUN: tuple[int, int | None, list[str]] = (0, None, [])


def _object(data: str) -> dict[str, Any] | None:
    """``data`` read as a JSON object, or ``None`` (not JSON, or not an object)."""
    try:
        obj = _loads(data)
    except Exception:
        return None
    return obj if type(obj) is dict else None


def _fast_top(obj: dict[str, Any]) -> bool:
    get = obj.get
    return not (
        "x_groq" in obj
        or "citations" in obj  # Perplexity's sources: the splitter reads them
        or "search_results" in obj
        or get("usage") is not None
        or get("error") is not None
        or type(get("id", "")) is not str
        or type(get("object", "")) is not str
        or type(get("model", "")) is not str
        or type(get("created", 0)) not in _NUMBER
        or type(get("system_fingerprint")) not in _OPT_STR
        or type(get("service_tier")) not in _OPT_STR
    )


def _fast_tool(
    tool_calls: Any,
) -> tuple[int | None, str | None, str | None, str | None] | None:
    if type(tool_calls) is not list or len(tool_calls) != 1:
        return None
    tc = tool_calls[0]
    if type(tc) is not dict:
        return None
    fn = tc.get("function")
    if fn is None:
        name = arguments = None
    elif type(fn) is dict:
        name, arguments = fn.get("name"), fn.get("arguments")
    else:
        return None
    index, upstream_id = tc.get("index"), tc.get("id")
    if (
        type(index) not in (int, type(None))
        or type(upstream_id) not in _OPT_STR
        or type(tc.get("type")) not in _OPT_STR
        or type(name) not in _OPT_STR
        or type(arguments) not in _OPT_STR
    ):
        return None
    return index, upstream_id, name, arguments

"""A deterministic scripted Chat Completions "model": the project's own test and demo data.

It writes ``chat.completion.chunk`` streams that follow the real wire schema, the way OpenAI and
the open-weight servers send them (first chunk with ``role``, content in small fragments,
``reasoning_content`` for reasoning, tool calls by ``index`` with ``id`` and ``name`` on the first
fragment, a finish chunk with ``delta: {}``, a ``choices: []`` usage chunk, ``data: [DONE]``).

It serves three purposes:

* the embedded demo recording, ``rxresponses/data/demo.sse``, is written by
  ``python -m rxresponses.scripted > rxresponses/data/demo.sse`` (see :func:`demo_turn`);
* the embedded default upstream of ``rxresponses serve`` answers any request with
  :func:`turn_for_request` (a tool call when tools are offered, an answer after a tool result);
* tests and benchmarks generate streams of any size with :func:`chat_chunks`.

Same inputs, same bytes: fragment sizes come from a seeded ``random.Random``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ScriptedToolCall",
    "ScriptedTurn",
    "chat_chunks",
    "chat_sse",
    "demo_turn",
    "turn_for_request",
]


@dataclass(frozen=True)
class ScriptedToolCall:
    """One tool call the scripted model makes."""

    name: str
    arguments: str
    call_id: str = ""


@dataclass(frozen=True)
class ScriptedTurn:
    """What the scripted model says in one turn, in this order: reasoning, text, tool calls."""

    reasoning: str = ""
    text: str = ""
    tool_calls: Sequence[ScriptedToolCall] = field(default_factory=tuple)
    #: ``None`` picks ``tool_calls`` when there are tool calls, else ``stop``.
    finish_reason: str | None = None


def _fragments(text: str, rng: random.Random, sizes: tuple[int, int]) -> Iterator[str]:
    i = 0
    while i < len(text):
        n = rng.randint(*sizes)
        yield text[i : i + n]
        i += n


def chat_chunks(
    turn: ScriptedTurn,
    *,
    model: str = "rxresponses-scripted",
    completion_id: str = "chatcmpl-scripted",
    created: int = 1_750_000_000,
    seed: int = 0,
    fragment_chars: tuple[int, int] = (1, 6),
    prompt_tokens: int = 42,
    include_usage: bool = True,
) -> Iterator[dict[str, Any]]:
    """The chunks of ``turn`` as JSON-ready dicts, in wire order."""
    rng = random.Random(seed)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_scripted",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            "usage": None,
        }

    completion_tokens = 0
    yield chunk({"role": "assistant", "content": None if turn.reasoning else ""})
    if turn.reasoning:
        for piece in _fragments(turn.reasoning, rng, fragment_chars):
            completion_tokens += 1
            yield chunk({"reasoning_content": piece, "content": None})
    reasoning_tokens = completion_tokens
    for piece in _fragments(turn.text, rng, fragment_chars):
        completion_tokens += 1
        yield chunk({"content": piece})
    for index, call in enumerate(turn.tool_calls):
        call_id = call.call_id or f"call_scripted_{index}"
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
        )
        for piece in _fragments(call.arguments, rng, (1, 8)):
            completion_tokens += 1
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    finish = turn.finish_reason or ("tool_calls" if turn.tool_calls else "stop")
    yield chunk({}, finish)
    if include_usage:
        yield {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_scripted",
            "choices": [],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
            },
        }


def chat_sse(chunks: Iterator[dict[str, Any]] | Sequence[dict[str, Any]]) -> Iterator[bytes]:
    """Frame chunks as a Chat Completions SSE body (one frame per chunk, then ``[DONE]``)."""
    for c in chunks:
        yield (
            b"data: " + json.dumps(c, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
        )
    yield b"data: [DONE]\n\n"


def demo_turn() -> ScriptedTurn:
    """The turn behind ``rxresponses/data/demo.sse``: reasoning, text and two tool calls."""
    return ScriptedTurn(
        reasoning=(
            "The user wants the weather in Paris and in Tokyo before deciding where to fly. "
            "I should say what I am about to do, then call get_weather once per city, in "
            "parallel, and compare the answers when they come back."
        ),
        text=(
            "Let me check the current weather in both cities for you. I'll look up Paris and "
            "Tokyo at the same time."
        ),
        tool_calls=(
            ScriptedToolCall("get_weather", json.dumps({"city": "Paris", "unit": "celsius"})),
            ScriptedToolCall("get_weather", json.dumps({"city": "Tokyo", "unit": "celsius"})),
        ),
    )


def _example_arguments(parameters: Any) -> str:
    """Arguments that satisfy a JSON schema's required properties, deterministically.

    Any value is taken: what is not shaped like a schema (a client's mistake) is ignored.
    """
    schema_of: Any = parameters if isinstance(parameters, dict) else {}
    props = schema_of.get("properties")
    props = props if isinstance(props, dict) else {}
    required = schema_of.get("required")
    required = required if isinstance(required, list) else list(props)
    args: dict[str, Any] = {}
    for name in required:
        if not isinstance(name, str):
            continue
        schema = props.get(name)
        schema = schema if isinstance(schema, dict) else {}
        kind = schema.get("type")
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            args[name] = enum[0]
        elif kind in ("integer", "number"):
            args[name] = 1
        elif kind == "boolean":
            args[name] = True
        elif kind == "array":
            args[name] = []
        elif kind == "object":
            args[name] = {}
        else:
            args[name] = "Paris" if "city" in name or "location" in name else f"example {name}"
    return json.dumps(args)


def turn_for_request(request: Mapping[str, Any]) -> ScriptedTurn:
    """What the scripted model answers to a Chat Completions request.

    * the last message is a tool result: reasoning, then an answer that quotes it;
    * tools are offered: reasoning, a sentence, then a call to the first function tool;
    * otherwise: reasoning, then an answer that echoes the last user message.

    ``max_tokens`` / ``max_completion_tokens`` below the answer's length cut it with
    ``finish_reason: "length"``, as a real server does.
    """
    messages = list(request.get("messages") or [])
    last = messages[-1] if messages else {}
    tools = [t for t in request.get("tools") or [] if t.get("type") == "function"]

    def text_of(message: Mapping[str, Any]) -> str:
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return ""

    if last.get("role") == "tool":
        result = text_of(last)[:200]
        turn = ScriptedTurn(
            reasoning="The tool answered. I will summarise its result for the user.",
            text=f"The tool returned: {result}",
        )
    elif tools and request.get("tool_choice") != "none":
        fn = tools[0].get("function") or {}
        turn = ScriptedTurn(
            reasoning=f"The user's request needs the {fn.get('name', 'tool')} tool.",
            text="Let me look that up.",
            tool_calls=(
                ScriptedToolCall(
                    str(fn.get("name", "tool")), _example_arguments(fn.get("parameters"))
                ),
            ),
        )
    else:
        user = next((text_of(m) for m in reversed(messages) if m.get("role") == "user"), "")
        turn = ScriptedTurn(
            reasoning="A plain question. I will answer briefly and say what I am.",
            text=(
                "Hello! I am the scripted model built into rxresponses, answering without any "
                f"network. You said: {user[:200]}"
            ),
        )
    limit = request.get("max_completion_tokens") or request.get("max_tokens")
    if isinstance(limit, int) and limit < len(turn.text):
        turn = ScriptedTurn(reasoning="", text=turn.text[:limit], finish_reason="length")
    return turn


if __name__ == "__main__":  # pragma: no cover - the documented generator of data/demo.sse
    import sys

    for frame in chat_sse(chat_chunks(demo_turn(), model="rxresponses-demo")):
        sys.stdout.buffer.write(frame)

"""Seeded input generators for the hardening fuzz run (``tests/fuzz/run.py``).

Every generator is a plain function of a ``random.Random``: the same seed gives the same input, so a
failure is replayed from its ``category:seed:index`` alone. They are fast on purpose (100,000 inputs
in a few minutes); hypothesis drives a small slice of the same checks in the default test run.

Categories (each returns a :class:`FuzzInput`):

* ``sse_bytes``: byte soup made of SSE tokens (field names, colons, CR/LF/CRLF, BOM, comments,
  ``[DONE]``), valid and invalid UTF-8, NUL and random bytes, fed to :class:`SSEDecoder` alone.
* ``raw_bytes``: the same soup through the whole Chat -> Responses conversion.
* ``json_chunks``: streams of random dicts near the ``chat.completion.chunk`` schema (wrong types,
  missing fields, nulls, huge and non-finite numbers, unicode, nested junk, tool calls with odd
  indexes and ids, error objects, ``[DONE]`` in odd places), framed in varied SSE.
* ``valid_cut``: streams of :func:`rxresponses.scripted.chat_chunks` for random turns, cut at a
  random byte (or not at all): the conversion must keep what arrived, and only what arrived.
* ``mutated``: valid scripted streams, or the recorded provider streams when present, with frames
  dropped, repeated, swapped, truncated, byte-flipped, or junk inserted.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rxresponses.scripted import ScriptedToolCall, ScriptedTurn, chat_chunks, chat_sse

__all__ = [
    "CATEGORIES",
    "FuzzInput",
    "generate",
    "plan",
    "random_turn",
    "recordings",
    "split_bytes",
]

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "chat"


@dataclass
class FuzzInput:
    """One generated input and what is known about it."""

    category: str
    body: bytes
    #: How the body reaches the decoder (the byte pieces of one "network" read each).
    pieces: list[bytes]
    #: For ``valid_cut``: the turn that was streamed, and whether the body is complete.
    turn: ScriptedTurn | None = None
    cut: bool = False
    #: ``max_line_bytes`` for this run (small for some inputs, to exercise the limit).
    max_line_bytes: int = 16 * 1024 * 1024
    #: Options of the conversion (``think_tags``, ``reasoning_as_summary``, ``choice_index``).
    options: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


# -- byte soup ------------------------------------------------------------------------------------

_SSE_TOKENS: tuple[bytes, ...] = (
    b"data:",
    b"data: ",
    b"data",
    b"event:",
    b"event: message",
    b"id:",
    b"id: 7",
    b"id: \x00",
    b"retry:",
    b"retry: 1000",
    b"retry: \xc2\xb2",  # U+00B2 SUPERSCRIPT TWO: str.isdigit() says yes, int() says no
    b"retry: \xd9\xa3",  # ARABIC-INDIC DIGIT THREE
    b":",
    b": OPENROUTER PROCESSING",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"\r\n\r\n",
    b"\xef\xbb\xbf",
    b"[DONE]",
    b"data: [DONE]\n\n",
    b"{",
    b"}",
    b'"',
    b"\\",
    b"\xe2\x80\xa8",  # U+2028 LINE SEPARATOR: not an SSE line break
    b"\xc2\x85",  # U+0085 NEXT LINE: not an SSE line break
    b"\xf0\x9f\x98\x80",  # an emoji, 4 bytes
    b"\xf0\x9f",  # half of it
    b"\xff\xfe",
    b"\x00",
    b" ",
    b"\t",
)


def _byte_soup(rng: random.Random, max_tokens: int = 60) -> bytes:
    parts: list[bytes] = []
    for _ in range(rng.randint(0, max_tokens)):
        r = rng.random()
        if r < 0.6:
            parts.append(rng.choice(_SSE_TOKENS))
        elif r < 0.8:
            parts.append(rng.randbytes(rng.randint(1, 12)))
        elif r < 0.9:
            parts.append(
                b"data: " + _junk_json_text(rng).encode("utf-8", "surrogatepass") + b"\n\n"
            )
        else:
            parts.append(b"data: " + json.dumps(_chunk(rng, _ChunkState())).encode() + b"\n\n")
    return b"".join(parts)


def split_bytes(rng: random.Random, body: bytes) -> list[bytes]:
    """Cut ``body`` into pieces the way a network might: anywhere, 1 byte to all of it."""
    if not body:
        return [b""] if rng.random() < 0.5 else []
    mode = rng.random()
    if mode < 0.25:
        return [body]
    if mode < 0.35 and len(body) <= 400:  # byte by byte (short bodies only: it is slow)
        return [body[i : i + 1] for i in range(len(body))]
    cuts = sorted(rng.sample(range(1, len(body) + 1), k=min(len(body), rng.randint(1, 24))))
    pieces: list[bytes] = []
    start = 0
    for cut in cuts:
        pieces.append(body[start:cut])
        start = cut
    if start < len(body):
        pieces.append(body[start:])
    if rng.random() < 0.1:  # empty reads in between
        pieces.insert(rng.randint(0, len(pieces)), b"")
    return pieces


# -- junk values and near-schema chunks -----------------------------------------------------------

_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "hello",
    "Bonjour, ça va ?",
    "日本語のテキスト",
    "emoji 😀🎉",
    "line\u2028separator",
    "next\x85line",
    "tab\tand\nnewline",
    "nul\x00char",
    "<think>",
    "</think>",
    "<think>a thought</think>the answer",
    "<thi",
    "nk>",
    '{"city": "Paris"}',
    '{"ci',
    'ty": "Tokyo"}',
    "[DONE]",
    "data: [DONE]\n\n",
    "\r\n\r\n",
    "\ufeff",
    "\U0010ffff",
    "x" * 300,
)

_HUGE: tuple[int | float, ...] = (
    0,
    -1,
    1,
    2**31,
    2**63,
    -(2**63) - 1,
    10**30,
    1e308,
    -1e-308,
    0.5,
)

_FINISH = ("stop", "length", "tool_calls", "content_filter", "function_call", "", "weird", None)


def _junk(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if r < 0.15:
        return None
    if r < 0.25:
        return rng.random() < 0.5
    if r < 0.4:
        return rng.choice(_HUGE)
    if r < 0.65:
        return _text(rng)
    if depth >= 3:
        return rng.randint(-5, 5)
    if r < 0.8:
        return [_junk(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {_text(rng)[:12]: _junk(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _text(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.6:
        return rng.choice(_STRINGS)
    if r < 0.8:
        return "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(rng.randint(0, 10)))
    # any code point but surrogates (JSON text must be valid UTF-8)
    chars = []
    for _ in range(rng.randint(0, 8)):
        cp = rng.randint(0, 0x10FFFF)
        if 0xD800 <= cp <= 0xDFFF:
            cp = 0xFFFD
        chars.append(chr(cp))
    return "".join(chars)


def _junk_json_text(rng: random.Random) -> str:
    """Data that is not a chunk: not JSON, truncated JSON, JSON of the wrong type, NaN..."""
    options: list[Callable[[], str]] = [
        lambda: _text(rng),
        lambda: json.dumps(_junk(rng)),
        lambda: json.dumps(_chunk(rng, _ChunkState()))[: rng.randint(0, 60)],
        lambda: rng.choice(["NaN", "Infinity", "-Infinity", "1e400", "[]", "{}", "null", "true"]),
        lambda: '{"created": 1e400, "choices": []}',
        lambda: '{"choices": [{"index": 0, "delta": {"content": "\\ud800"}}]}',  # lone surrogate
        lambda: '{"choices": [{"index": 0, "delta": {"content": "a"}}], "choices": 5}',
        lambda: "{" * rng.randint(1, 300) + "}" * rng.randint(0, 300),  # deep nesting
        lambda: '{"a":' * 200 + "1" + "}" * 200,
    ]
    return rng.choice(options)()


@dataclass
class _ChunkState:
    """What a near-valid stream has said so far (to make plausible next chunks)."""

    tool_ids: list[str] = field(default_factory=list)
    #: Scales every "put junk here" probability: 0 gives schema-valid chunks.
    junk: float = 1.0


def _bad(rng: random.Random, state: _ChunkState, p: float) -> bool:
    """True with probability ``p`` scaled by the stream's junk level."""
    return rng.random() < p * state.junk


def _maybe(rng: random.Random, state: _ChunkState, p: float, value: Callable[[], Any]) -> Any:
    """``value()``, or (probability ``p`` times the junk level) a junk value in its place."""
    return _junk(rng) if _bad(rng, state, p) else value()


def _tool_call(rng: random.Random, state: _ChunkState) -> dict[str, Any]:
    tc: dict[str, Any] = {}
    r = rng.random()
    if r < 0.7:
        tc["index"] = rng.choice([0, 0, 1, 1, 2, 3, -1, 7, 2**40])
    elif r < 0.8:
        tc["index"] = None
    elif _bad(rng, state, 0.3):
        tc["index"] = _junk(rng)
    if rng.random() < 0.5:
        if state.tool_ids and rng.random() < 0.5:
            tc["id"] = rng.choice(state.tool_ids)
        else:
            new = rng.choice(["call_a", "call_b", "", "call_" + _text(rng)[:5]])
            state.tool_ids.append(new)
            tc["id"] = new
    if rng.random() < 0.4:
        tc["type"] = rng.choice(["function", "custom", "", None])
    if rng.random() < 0.9:
        fn: dict[str, Any] = {}
        if rng.random() < 0.4:
            fn["name"] = _maybe(
                rng, state, 0.1, lambda: rng.choice(["get_weather", "search", "", "ñ😀"])
            )
        if rng.random() < 0.9:
            fn["arguments"] = _maybe(
                rng, state, 0.1, lambda: rng.choice(['{"ci', 'ty": "Paris"}', "{}", "", _text(rng)])
            )
        tc["function"] = _junk(rng) if _bad(rng, state, 0.05) else fn
    return tc


def _delta(rng: random.Random, state: _ChunkState) -> dict[str, Any]:
    d: dict[str, Any] = {}
    kind = rng.random()
    if rng.random() < 0.2:
        d["role"] = _maybe(rng, state, 0.2, lambda: "assistant")
    if kind < 0.4:
        d["content"] = _maybe(rng, state, 0.1, lambda: _text(rng))
    elif kind < 0.5:
        d["content"] = [
            rng.choice(
                [
                    {"type": "text", "text": _text(rng)},
                    {"type": "thinking", "thinking": _text(rng)},
                    {"type": "thinking", "thinking": [{"type": "text", "text": _text(rng)}]},
                    {"type": "thinking", "thinking": [_junk(rng)]},
                    {"type": _text(rng)},
                    _text(rng),
                    _junk(rng),
                ]
            )
            for _ in range(rng.randint(0, 3))
        ]
    elif kind < 0.6:
        field_name = rng.choice(["reasoning_content", "reasoning"])
        d[field_name] = _maybe(rng, state, 0.1, lambda: _text(rng))
    elif kind < 0.65:
        d["reasoning_details"] = [
            rng.choice(
                [
                    {"type": "reasoning.text", "text": _junk(rng)},
                    {"type": "reasoning.summary", "summary": _text(rng)},
                    {"type": "reasoning.encrypted", "data": "abc"},
                    _junk(rng),
                ]
            )
            for _ in range(rng.randint(0, 3))
        ]
    elif kind < 0.7:
        d["refusal"] = _maybe(rng, state, 0.1, lambda: _text(rng))
    elif kind < 0.9:
        d["tool_calls"] = _maybe(
            rng, state, 0.05, lambda: [_tool_call(rng, state) for _ in range(rng.randint(0, 3))]
        )
    elif kind < 0.95:
        d["function_call"] = _maybe(
            rng, state, 0.2, lambda: {"name": rng.choice(["f", None]), "arguments": _text(rng)}
        )
    if _bad(rng, state, 0.05):
        d[_text(rng)[:8]] = _junk(rng)
    return d


def _logprobs(rng: random.Random, state: _ChunkState) -> Any:
    def entry() -> dict[str, Any]:
        return {
            "token": _maybe(rng, state, 0.1, lambda: _text(rng)),
            "logprob": _maybe(rng, state, 0.2, lambda: -rng.random() * 10),
            "bytes": _maybe(rng, state, 0.3, lambda: [rng.randint(0, 255) for _ in range(3)]),
            "top_logprobs": _maybe(rng, state, 0.2, lambda: [{"token": "a", "logprob": -0.1}]),
        }

    return {"content": [entry() for _ in range(rng.randint(0, 3))], "refusal": None}


def _usage(rng: random.Random, state: _ChunkState) -> Any:
    return {
        "prompt_tokens": _maybe(rng, state, 0.15, lambda: rng.randint(0, 1000)),
        "completion_tokens": _maybe(rng, state, 0.15, lambda: rng.randint(0, 1000)),
        "total_tokens": _maybe(rng, state, 0.15, lambda: rng.randint(0, 2000)),
        "prompt_tokens_details": _maybe(
            rng, state, 0.3, lambda: {"cached_tokens": rng.randint(0, 9)}
        ),
        "completion_tokens_details": _maybe(
            rng, state, 0.3, lambda: {"reasoning_tokens": rng.randint(0, 9)}
        ),
    }


def _chunk(rng: random.Random, state: _ChunkState) -> dict[str, Any]:
    c: dict[str, Any] = {}
    for key, make in (
        ("id", lambda: "chatcmpl-fuzz"),
        ("object", lambda: rng.choice(["chat.completion.chunk", "", "chat.completion.done"])),
        ("created", lambda: rng.choice([1_750_000_000, 0, 1.5, 10**20])),
        ("model", lambda: rng.choice(["fuzz-model", "", "モデル"])),
    ):
        if rng.random() < 0.85:
            c[key] = _maybe(rng, state, 0.05, make)
    r = rng.random()
    if r < 0.85:
        choices: list[Any] = []
        for _ in range(rng.choice([0, 1, 1, 1, 1, 2])):
            choice: dict[str, Any] = {
                "index": _junk(rng)
                if _bad(rng, state, 0.03)
                else rng.choice([0, 0, 0, 0, 1, 2, -1])
            }
            if rng.random() < 0.95:
                choice["delta"] = _junk(rng) if _bad(rng, state, 0.03) else _delta(rng, state)
            if rng.random() < 0.15:
                choice["finish_reason"] = rng.choice(_FINISH)
            if rng.random() < 0.1:
                choice["logprobs"] = _junk(rng) if _bad(rng, state, 0.1) else _logprobs(rng, state)
            choices.append(_junk(rng) if _bad(rng, state, 0.02) else choice)
        c["choices"] = choices
    elif _bad(rng, state, 0.3):
        c["choices"] = _junk(rng)
    if rng.random() < 0.1:
        c["usage"] = _junk(rng) if _bad(rng, state, 0.1) else _usage(rng, state)
    if rng.random() < 0.03:
        c["x_groq"] = _junk(rng) if _bad(rng, state, 0.3) else {"usage": _usage(rng, state)}
    if _bad(rng, state, 0.04):
        c["error"] = rng.choice(
            [
                {"message": "Provider returned error", "code": 502},
                {"message": _junk(rng), "code": _junk(rng)},
                {"code": "rate_limit_exceeded"},
                {},
                {"message": "", "metadata": {"raw": _text(rng)}},
            ]
        )
    if _bad(rng, state, 0.05):
        c[_text(rng)[:10]] = _junk(rng)
    return c


def _frame(rng: random.Random, data: str, crlf: bool) -> bytes:
    nl = "\r\n" if crlf else "\n"
    r = rng.random()
    if r < 0.8:
        text = f"data: {data}{nl}{nl}"
    elif r < 0.85:
        text = f"data:{data}{nl}{nl}"
    elif r < 0.9:
        text = f"event: message{nl}id: {rng.randint(0, 99)}{nl}data: {data}{nl}{nl}"
    elif r < 0.95:  # JSON split over several data lines (joined with \n: still valid JSON)
        mid = len(data) // 2
        cut = data.find(",", mid)
        if cut < 0:
            cut = mid
        text = f"data: {data[:cut]}{nl}data: {data[cut:]}{nl}{nl}"
    else:
        text = f": keep-alive{nl}data: {data}{nl}{nl}"
    return text.encode("utf-8", "surrogatepass")


def _json_chunks(rng: random.Random) -> bytes:
    state = _ChunkState(junk=rng.choice([0.0, 0.0, 0.1, 0.3, 1.0, 1.0]))
    crlf = rng.random() < 0.15
    frames: list[bytes] = []
    for _ in range(rng.randint(0, 25)):
        r = rng.random()
        if r < 0.9 or not _bad(rng, state, 1.0):
            frames.append(_frame(rng, json.dumps(_chunk(rng, state), ensure_ascii=False), crlf))
        elif r < 0.93:
            frames.append(_frame(rng, _junk_json_text(rng), crlf))
        elif r < 0.97:
            frames.append(b"data: [DONE]\n\n")  # [DONE] in an odd place
        else:
            frames.append(rng.choice(_SSE_TOKENS))
    if rng.random() < 0.6:  # most streams end with a finish reason (and maybe usage)
        finish = {"index": 0, "delta": {}, "finish_reason": rng.choice(_FINISH[:5])}
        frames.append(_frame(rng, json.dumps({"choices": [finish]}), crlf))
    if rng.random() < 0.7:
        frames.append(b"data: [DONE]\n\n")
    if rng.random() < 0.05:
        frames.append(_byte_soup(rng, 8))
    return b"".join(frames)


# -- valid streams, cut ---------------------------------------------------------------------------

# No "<" here: a "<think>" in the text would (rightly) move it to reasoning, and the check that the
# streamed text is a prefix of the turn's text would not hold. The other categories have tags.
_TURN_CHARS = "abcdefghij ,.!?\n\t\"'{}[]:éçñ日本😀🎉\u2028\u0085\\/"


def _turn_text(rng: random.Random, longest: int) -> str:
    n = rng.randint(0, longest)
    return "".join(rng.choice(_TURN_CHARS) for _ in range(n))


def random_turn(rng: random.Random) -> ScriptedTurn:
    """A random scripted turn: reasoning, text, tool calls, finish reason all optional."""
    calls = tuple(
        ScriptedToolCall(
            rng.choice(["get_weather", "search", "f"]),
            json.dumps({"q": _turn_text(rng, 20), "n": rng.randint(0, 9)}, ensure_ascii=False),
            rng.choice(["", f"call_{i}"]),
        )
        for i in range(rng.choice([0, 0, 0, 1, 2, 3]))
    )
    return ScriptedTurn(
        reasoning=_turn_text(rng, 80) if rng.random() < 0.5 else "",
        text=_turn_text(rng, 200) if rng.random() < 0.85 else "",
        tool_calls=calls,
        finish_reason=rng.choice([None, None, None, None, "length", "content_filter", "stop"]),
    )


def _valid_cut(rng: random.Random) -> FuzzInput:
    turn = random_turn(rng)
    chunks = list(
        chat_chunks(
            turn,
            seed=rng.randint(0, 2**32),
            fragment_chars=rng.choice([(1, 1), (1, 6), (3, 30)]),
            include_usage=rng.random() < 0.7,
        )
    )
    frames = list(chat_sse(chunks))
    # Where each chunk's data line ends (just past its first "\n"): the chunk counts as arrived
    # when the body reaches that offset.
    ends: list[tuple[int, dict[str, Any]]] = []
    offset = 0
    for frame, chunk in zip(frames, chunks, strict=False):
        ends.append((offset + len(frame) - 1, chunk))
        offset += len(frame)
    body = b"".join(frames)
    cut = rng.random() < 0.8
    if cut:
        body = body[: rng.randint(0, len(body) - 1)]
    return FuzzInput(
        "valid_cut", body, split_bytes(rng, body), turn=turn, cut=cut, notes={"frames": ends}
    )


# -- mutated valid streams and recordings ---------------------------------------------------------

_RECORDINGS: list[bytes] | None = None


def recordings() -> list[bytes]:
    """The recorded Chat streams in ``../shared/fixtures/chat`` (empty when absent), cached."""
    global _RECORDINGS
    if _RECORDINGS is None:
        _RECORDINGS = (
            [p.read_bytes() for p in sorted(FIXTURES.glob("*.sse"))] if FIXTURES.is_dir() else []
        )
    return _RECORDINGS


def _mutated(rng: random.Random) -> FuzzInput:
    recs = recordings()
    if recs and rng.random() < 0.5:
        body = rng.choice(recs)
        source = "recording"
    else:
        body = b"".join(chat_sse(chat_chunks(random_turn(rng), seed=rng.randint(0, 999))))
        source = "scripted"
    frames: list[bytes] = [f + b"\n\n" for f in body.split(b"\n\n") if f]
    for _ in range(rng.randint(1, 4)):
        if not frames:
            break
        i = rng.randrange(len(frames))
        op = rng.randint(0, 7)
        if op == 0:
            del frames[i]
        elif op == 1:
            frames.insert(i, frames[i])
        elif op == 2:
            j = rng.randrange(len(frames))
            frames[i], frames[j] = frames[j], frames[i]
        elif op == 3:
            frames[i] = frames[i][: rng.randint(0, len(frames[i]))]
        elif op == 4 and frames[i]:
            b = bytearray(frames[i])
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            frames[i] = bytes(b)
        elif op == 5:
            frames.insert(i, b"data: " + json.dumps(_chunk(rng, _ChunkState())).encode() + b"\n\n")
        elif op == 6:
            frames.insert(i, b"data: [DONE]\n\n")
        else:
            frames.insert(i, _byte_soup(rng, 6))
    mutated = b"".join(frames)
    return FuzzInput("mutated", mutated, split_bytes(rng, mutated), notes={"source": source})


# -- entry point ----------------------------------------------------------------------------------


def _sse_bytes(rng: random.Random) -> FuzzInput:
    body = _byte_soup(rng)
    small = rng.random() < 0.2
    return FuzzInput(
        "sse_bytes",
        body,
        split_bytes(rng, body),
        max_line_bytes=rng.randint(1, 64) if small else 16 * 1024 * 1024,
    )


def _raw_bytes(rng: random.Random) -> FuzzInput:
    body = _byte_soup(rng) if rng.random() < 0.8 else rng.randbytes(rng.randint(0, 300))
    small = rng.random() < 0.1
    return FuzzInput(
        "raw_bytes",
        body,
        split_bytes(rng, body),
        max_line_bytes=rng.randint(1, 200) if small else 16 * 1024 * 1024,
    )


def _json(rng: random.Random) -> FuzzInput:
    body = _json_chunks(rng)
    return FuzzInput("json_chunks", body, split_bytes(rng, body))


_GENERATORS: dict[str, Callable[[random.Random], FuzzInput]] = {
    "sse_bytes": _sse_bytes,
    "raw_bytes": _raw_bytes,
    "json_chunks": _json,
    "valid_cut": _valid_cut,
    "mutated": _mutated,
}

#: The categories and their share of a run.
CATEGORIES: dict[str, float] = {
    "sse_bytes": 0.15,
    "raw_bytes": 0.15,
    "json_chunks": 0.35,
    "valid_cut": 0.20,
    "mutated": 0.15,
}


def _options(rng: random.Random, category: str) -> dict[str, Any]:
    """Non-default conversion options for about a third of the inputs."""
    options: dict[str, Any] = {}
    if rng.random() < 0.15:
        options["reasoning_as_summary"] = True
    if category == "valid_cut":  # the other options change what the text is
        return options
    if rng.random() < 0.15:
        options["think_tags"] = False
    if rng.random() < 0.05:
        options["choice_index"] = rng.choice([1, 2])
    return options


def generate(category: str, seed: int, index: int) -> FuzzInput:
    """The input number ``index`` of ``category`` for run ``seed`` (deterministic)."""
    rng = random.Random(f"{seed}:{category}:{index}")
    inp = _GENERATORS[category](rng)
    if category != "sse_bytes":
        inp.options = _options(rng, category)
    return inp


def plan(total: int, categories: Sequence[str] = tuple(CATEGORIES)) -> dict[str, int]:
    """How many inputs of each category a run of ``total`` inputs makes."""
    shares = {c: CATEGORIES[c] for c in categories}
    scale = sum(shares.values())
    counts = {c: int(total * s / scale) for c, s in shares.items()}
    first = next(iter(counts))
    counts[first] += total - sum(counts.values())
    return counts

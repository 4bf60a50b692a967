"""Deterministic benchmark workloads: Chat Completions SSE bodies that follow the real chunk schema.

Every workload is built from :func:`rxresponses.scripted.chat_chunks` (the project's generator of
real-schema ``chat.completion.chunk`` dicts: ``role`` first chunk, small content fragments,
``reasoning_content``, tool calls by ``index`` with ``id``/``name`` on their first fragment, a
``delta: {}`` finish chunk, a ``choices: []`` usage chunk, ``data: [DONE]``), framed exactly as
:func:`rxresponses.scripted.chat_sse` frames them and cut into pieces of :data:`PIECE_SIZE`
bytes, the way a socket hands a body over. Same arguments, same bytes.

``chat_chunks`` draws one ``rng.randint(lo, hi)`` per fragment from ``random.Random(seed)``;
:func:`_lengths` replays those draws so that a text of the returned length splits into exactly
the requested number of fragments. If the generator ever draws differently, the counts become
approximate; :class:`Workload` always reports the counts that were actually generated.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from rxresponses.scripted import ScriptedToolCall, ScriptedTurn, chat_chunks

__all__ = [
    "PIECE_SIZE",
    "Expected",
    "Workload",
    "batch_frames",
    "build_workloads",
    "lazy_text_stream",
    "many_small",
    "reasoning",
    "split_pieces",
    "text",
    "text_of_chunks",
    "tools",
]

#: Bytes per ``from_bytes`` piece: a typical TCP read (httpx hands over up to 64 KiB).
PIECE_SIZE = 16 * 1024

_SENTENCE = (
    "the model streams tokens as small fragments and every fragment becomes one chunk on the "
    "wire while the client folds them into a message ; latency matters , so does throughput ."
)
_WORDS: tuple[str, ...] = (
    *_SENTENCE.split(),
    *("café", "naïve", "déjà-vu", "東京", "Zürich", '"quoted"', "path\\to\\file"),
    *("tab\tseparated", "new\nline"),
)


#: Only ASCII words, for the memory measurement: CPython stores a string with one character above
#: U+00FF at 2 or 4 bytes per character, which would measure the text, not the pipeline.
_ASCII_WORDS = tuple(w for w in _WORDS if w.isascii())


def _prose(n_chars: int, seed: int, *, ascii_only: bool = False) -> str:
    """``n_chars`` characters of word salad (ASCII with some accents, CJK, quotes, escapes)."""
    rng = random.Random(seed ^ 0x5EED)
    words = _ASCII_WORDS if ascii_only else _WORDS
    parts: list[str] = []
    size = 0
    while size <= n_chars:
        word = rng.choice(words)
        parts.append(word)
        size += len(word) + 1
    return " ".join(parts)[:n_chars]


def _lengths(counts: Sequence[int], sizes: tuple[int, int], seed: int) -> list[int]:
    """Text lengths that ``chat_chunks`` (same seed) splits into exactly ``counts`` fragments."""
    rng = random.Random(seed)
    return [sum(rng.randint(*sizes) for _ in range(n)) for n in counts]


def _frames(chunks: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """What ``rxresponses.scripted.chat_sse`` yields, byte for byte, ten times faster (orjson
    writes the same compact, non-ASCII-preserving JSON as its ``json.dumps``)."""
    for c in chunks:
        yield b"data: " + orjson.dumps(c) + b"\n\n"
    yield b"data: [DONE]\n\n"


def _frame(chunks: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(_frames(chunks))


def split_pieces(body: bytes, size: int = PIECE_SIZE) -> list[bytes]:
    """``body`` cut into ``size``-byte pieces."""
    return [body[i : i + size] for i in range(0, len(body), size)]


@dataclass(frozen=True)
class Expected:
    """What a correct conversion of the workload ends with (used to check every contender)."""

    text: str = ""
    reasoning: str = ""
    arguments: tuple[str, ...] = ()


@dataclass
class Workload:
    """One benchmark input: one or more SSE bodies, each already cut into pieces.

    Attributes:
        name: ``text``, ``tools``, ``reasoning``, ``many_small``...
        streams: Per stream, the pieces of its SSE body (``b"".join`` gives the body).
        chunks: Number of ``chat.completion.chunk`` payloads in all streams (``[DONE]`` excluded):
            the unit of every chunks/s figure.
        expected: What one stream converts to (the last stream for ``many_small``).
        last_stream_chunks: Chunks in the last stream (what the limit's check counts).
        description: One line for the table.
    """

    name: str
    streams: list[list[bytes]]
    chunks: int
    expected: Expected
    description: str = ""
    body_bytes: int = field(default=0)
    last_stream_chunks: int = field(default=0)

    def __post_init__(self) -> None:
        self.body_bytes = sum(len(p) for s in self.streams for p in s)
        self.last_stream_chunks = b"".join(self.streams[-1]).count(b"data: {")


def text_of_chunks(
    n_content: int, *, seed: int = 1, sizes: tuple[int, int] = (1, 6), ascii_only: bool = False
) -> Workload:
    """One assistant message of ``n_content`` content chunks, then finish and a usage chunk."""
    (length,) = _lengths([n_content], sizes, seed)
    message = _prose(length, seed, ascii_only=ascii_only)
    chunks = list(chat_chunks(ScriptedTurn(text=message), seed=seed, fragment_chars=sizes))
    body = _frame(chunks)
    return Workload(
        name=f"text_{n_content}",
        streams=[split_pieces(body)],
        chunks=len(chunks),
        expected=Expected(text=message),
        description=f"1 message, {n_content} content chunks of {sizes[0]}-{sizes[1]} chars",
    )


def text(n_content: int = 4_000) -> Workload:
    """``text``: one assistant message of ~4,000 chunks of 1-6 characters, finish, usage."""
    w = text_of_chunks(n_content)
    w.name = "text"
    return w


def _arguments(index: int, target: int = 2_048) -> str:
    """Deterministic JSON arguments of about ``target`` bytes."""
    rng = random.Random(1000 + index)
    items: list[dict[str, Any]] = []
    doc: dict[str, Any] = {
        "query": f'search number {index}: hotels near the "old town" with free cancellation',
        "filters": {
            "max_price": 250.0,
            "currency": "EUR",
            "stars": [3, 4, 5],
            "pets": index % 2 == 0,
        },
        "items": items,
    }
    while len(json.dumps(doc)) < target:
        items.append(
            {
                "id": rng.randrange(10**6),
                "name": " ".join(rng.choice(_WORDS[:30]) for _ in range(3)),
                "tags": [rng.choice(("a", "bb", "ccc", "dddd")) for _ in range(3)],
                "score": round(rng.random(), 4),
            }
        )
    return json.dumps(doc)


def tools(n_calls: int = 3, *, seed: int = 2) -> Workload:
    """``tools``: ``n_calls`` parallel tool calls, ~2 KB of JSON arguments each, in 1-8 character
    fragments, interleaved by ``index`` (a seeded random merge that keeps each call's order; each
    call's first fragment carries its ``id``, ``type`` and ``name``)."""
    calls = tuple(
        ScriptedToolCall(name=f"search_{i}", arguments=_arguments(i)) for i in range(n_calls)
    )
    chunks = list(chat_chunks(ScriptedTurn(tool_calls=calls), seed=seed))
    head: list[dict[str, Any]] = []
    queues: list[list[dict[str, Any]]] = [[] for _ in range(n_calls)]
    tail: list[dict[str, Any]] = []
    for c in chunks:
        choices = c["choices"]
        tcs = choices[0]["delta"].get("tool_calls") if choices else None
        if tcs:
            queues[tcs[0]["index"]].append(c)
        elif any(queues):
            tail.append(c)
        else:
            head.append(c)
    rng = random.Random(seed)
    merged: list[dict[str, Any]] = list(head)
    cursors = [0] * n_calls
    while True:
        live = [i for i in range(n_calls) if cursors[i] < len(queues[i])]
        if not live:
            break
        i = rng.choice(live)
        merged.append(queues[i][cursors[i]])
        cursors[i] += 1
    merged.extend(tail)
    body = _frame(merged)
    return Workload(
        name="tools",
        streams=[split_pieces(body)],
        chunks=len(merged),
        expected=Expected(arguments=tuple(c.arguments for c in calls)),
        description=(
            f"{n_calls} parallel calls, ~{len(calls[0].arguments)} B JSON args each, 1-8 char "
            "fragments interleaved by index"
        ),
    )


def reasoning(n_reasoning: int = 2_000, n_content: int = 2_000, *, seed: int = 3) -> Workload:
    """``reasoning``: ``n_reasoning`` ``reasoning_content`` chunks, then ``n_content`` content
    chunks (1-6 characters each), finish, usage."""
    r_len, t_len = _lengths([n_reasoning, n_content], (1, 6), seed)
    thought, answer = _prose(r_len, seed), _prose(t_len, seed + 1)
    chunks = list(chat_chunks(ScriptedTurn(reasoning=thought, text=answer), seed=seed))
    body = _frame(chunks)
    return Workload(
        name="reasoning",
        streams=[split_pieces(body)],
        chunks=len(chunks),
        expected=Expected(text=answer, reasoning=thought),
        description=f"{n_reasoning} reasoning_content chunks, then {n_content} content chunks",
    )


def many_small(n_streams: int = 200, chunks_per_stream: int = 20) -> Workload:
    """``many_small``: ``n_streams`` streams of ``chunks_per_stream`` chunks each (role chunk,
    content chunks, finish, usage): the per-stream setup and teardown cost."""
    n_content = chunks_per_stream - 3
    streams: list[list[bytes]] = []
    total = 0
    message = ""
    for seed in range(n_streams):
        (length,) = _lengths([n_content], (1, 6), seed)
        message = _prose(length, seed)
        chunks = list(chat_chunks(ScriptedTurn(text=message), seed=seed))
        total += len(chunks)
        streams.append(split_pieces(_frame(chunks)))
    return Workload(
        name="many_small",
        streams=streams,
        chunks=total,
        expected=Expected(text=message),
        description=f"{n_streams} streams x {chunks_per_stream} chunks (per-stream overhead)",
    )


def build_workloads() -> list[Workload]:
    """The four workloads of the main table, in table order."""
    return [text(), tools(), reasoning(), many_small()]


def batch_frames(frames: Iterable[bytes], size: int = PIECE_SIZE) -> Iterator[bytes]:
    """Join SSE frames into pieces of about ``size`` bytes, lazily."""
    batch: list[bytes] = []
    n = 0
    for frame in frames:
        batch.append(frame)
        n += len(frame)
        if n >= size:
            yield b"".join(batch)
            batch.clear()
            n = 0
    if batch:
        yield b"".join(batch)


def lazy_text_stream(
    text_bytes: int, *, sizes: tuple[int, int], seed: int = 7
) -> tuple[str, Iterator[bytes]]:
    """A text stream of ``text_bytes`` ASCII characters of content, and its SSE body generated
    lazily, frame by frame (for the memory measurement)."""
    message = _prose(text_bytes, seed, ascii_only=True)
    chunks = chat_chunks(ScriptedTurn(text=message), seed=seed, fragment_chars=sizes)
    return message, _frames(chunks)

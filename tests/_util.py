"""Small helpers shared by the conformance, operator and property tests (not the code under test).

Nothing here computes an expected value from rxresponses: fixtures are read with ``json`` and a
minimal SSE reader written for the tests.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rxresponses.types._base import to_dict


class Ids:
    """Deterministic id factory: ``<prefix>_<n>``, ``n`` counting from 1 per prefix."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)

    def __call__(self, prefix: str) -> str:
        self.counts[prefix] += 1
        return f"{prefix}_{self.counts[prefix]}"


def dumps(events: Iterable[Any], *, wall_clock: bool = True) -> list[dict[str, Any]]:
    """``to_dict`` every event; ``wall_clock=False`` drops ``response.completed_at`` (the clock)."""
    out = []
    for e in events:
        d = to_dict(e) if isinstance(e, BaseModel) else e
        if not wall_clock and isinstance(d.get("response"), dict):
            d["response"].pop("completed_at", None)
        out.append(d)
    return out


def sse_data(path: Path) -> list[str]:
    """The ``data`` of every SSE frame of a recorded file, by a plain reader written for tests.

    Handles what the recordings contain: LF/CRLF line ends, ``event:``/``data:`` fields,
    ``:`` comments, blank-line frame ends. ``[DONE]`` is kept.
    """
    text = path.read_bytes().decode("utf-8")
    frames: list[str] = []
    data: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line == "":
            if data:
                frames.append("\n".join(data))
                data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        frames.append("\n".join(data))
    return frames


def sse_json(path: Path) -> list[dict[str, Any]]:
    """The JSON payloads of a recorded file (``[DONE]`` left out)."""
    return [json.loads(d) for d in sse_data(path) if d != "[DONE]"]


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    *,
    index: int = 0,
    choices: list[dict[str, Any]] | None = None,
    model: str = "test-model",
    created: int = 1_700_000_000,
    **extra: Any,
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` dict."""
    if choices is None:
        choices = [{"index": index, "delta": delta or {}, "finish_reason": finish}]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
        **extra,
    }


def sse_body(chunks: Iterable[dict[str, Any]], *, done: bool = True) -> bytes:
    """Frame chunk dicts as a Chat Completions SSE body."""
    body = b"".join(
        b"data: " + json.dumps(c, ensure_ascii=False).encode() + b"\n\n" for c in chunks
    )
    return body + (b"data: [DONE]\n\n" if done else b"")

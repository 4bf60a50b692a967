"""Hardening: a seeded slice of the fuzz run, properties under hypothesis, and the bugs it found.

The full run (100,000+ inputs, several minutes) is ``python tests/fuzz/run.py``; see
``tests/fuzz/harness.py`` for what is checked per input. Here a few hundred inputs of every
category run in a few seconds, with the same checks.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxresponses import SSEDecoder, chat_sse_to_responses, from_bytes
from rxresponses.scripted import chat_chunks, chat_sse
from rxresponses.types._base import to_dict

from .fuzz import harness
from .fuzz.generators import CATEGORIES, FuzzInput, generate, random_turn
from .grammar import check_stream

SEED = 20_250_707
PER_CATEGORY = 120


@pytest.fixture(scope="module", autouse=True)
def _close_fuzz_loop() -> Any:
    yield
    harness.close()


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_seeded_fuzz_slice(category: str) -> None:
    outcomes: dict[str, int] = {}
    for index in range(PER_CATEGORY):
        inp = generate(category, SEED, index)
        try:
            outcome = harness.check(inp, run_async=index % 10 == 0)
        except harness.FuzzFailure as exc:
            pytest.fail(f"{category}:{SEED}:{index}: {exc}\ninput: {inp.body[:400]!r}")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert sum(outcomes.values()) == PER_CATEGORY
    if category != "sse_bytes":  # only terminal statuses (or typed errors) come out
        assert set(outcomes) <= {"completed", "incomplete", "failed"} | {
            k for k in outcomes if k.startswith("typed_error:")
        }


# -- properties, under hypothesis ---------------------------------------------------------------

_SSE_ALPHABET = st.sampled_from(
    [
        *(b"data:", b"data: ", b"event: x", b"id: 1", b"retry: 5", b":c", b"\n", b"\r", b"\r\n"),
        *(b"\xef\xbb\xbf", b"{}", b"[DONE]", b"\xe2\x80\xa8", b"\xf0\x9f", b"\x98\x80", b"a"),
    ]
)


@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    tokens=st.lists(st.one_of(_SSE_ALPHABET, st.binary(max_size=6)), max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_decoder_agrees_with_reference_at_any_split(tokens: list[bytes], cuts: list[int]) -> None:
    body = b"".join(tokens)
    points = sorted({c for c in cuts if c <= len(body)} | {0, len(body)})
    pieces = [body[a:b] for a, b in itertools.pairwise(points)]
    harness.check_decoder(FuzzInput("sse_bytes", body, pieces))


@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(seed=st.integers(min_value=0, max_value=2**32), cut=st.floats(0, 1), data=st.data())
def test_valid_stream_cut_anywhere_keeps_what_arrived(seed: int, cut: float, data: Any) -> None:
    rng = random.Random(seed)
    turn = random_turn(rng)
    chunks = list(chat_chunks(turn, seed=seed))
    frames = list(chat_sse(chunks))
    ends, offset = [], 0
    for frame, chunk in zip(frames, chunks, strict=False):
        ends.append((offset + len(frame) - 1, chunk))
        offset += len(frame)
    whole = b"".join(frames)
    body = whole[: int(cut * len(whole))]
    sizes = data.draw(st.lists(st.integers(1, 64), min_size=1, max_size=20))
    pieces, start = [], 0
    while start < len(body):
        size = sizes[len(pieces) % len(sizes)]
        pieces.append(body[start : start + size])
        start += size
    inp = FuzzInput(
        "valid_cut", body, pieces, turn=turn, cut=len(body) < len(whole), notes={"frames": ends}
    )
    harness.check(inp)


# -- bugs the fuzz run found ----------------------------------------------------------------------


def _convert(body: bytes) -> tuple[list[dict[str, Any]], list[BaseException], int]:
    events: list[Any] = []
    errors: list[BaseException] = []
    done = [0]

    def on_completed() -> None:
        done[0] += 1

    from_bytes([body]).pipe(chat_sse_to_responses()).subscribe(
        events.append, errors.append, on_completed
    )
    return [to_dict(e) for e in events], errors, done[0]


@pytest.mark.parametrize("message", [{"detail": "x"}, 12, True, ["a"], None, ""])
def test_error_chunk_with_a_non_string_message_still_ends_in_failed(message: object) -> None:
    # Found by the fuzz run: {"error": {"message": {...}}} made ResponseErrorEvent(message=dict)
    # raise inside assemble after it had marked the stream ended, so the subscriber saw
    # on_completed() with no terminal event at all (and the text that arrived was lost).
    chunk = {"choices": [{"index": 0, "delta": {"content": "partial"}}]}
    error = {"error": {"message": message, "code": 502}}
    body = b"".join(chat_sse([chunk, error]))
    events, errors, completions = _convert(body)
    assert (errors, completions) == ([], 1)
    check_stream(events)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    failed = events[-1]["response"]
    assert failed["output"][0]["content"][0]["text"] == "partial"
    assert isinstance(events[-2]["message"], str)
    assert isinstance(failed["error"]["message"], str)


def test_sse_retry_accepts_ascii_digits_only() -> None:
    # Found by the fuzz run: "retry: ²" passed str.isdigit() and int() raised ValueError out of
    # SSEDecoder.feed (untyped); "retry: ٣" (Arabic-Indic three) was read as 3.
    for value in ("\u00b2", "\u0663", "1\u00b2"):
        decoder = SSEDecoder()
        frame = f"retry: {value}\ndata: x\n\n".encode()
        assert decoder.feed(frame)[0].retry is None
    assert SSEDecoder().feed(b"retry: 250\ndata: x\n\n")[0].retry == 250


def test_fuzz_inputs_are_reproducible() -> None:
    for category in CATEGORIES:
        a, b = generate(category, 7, 3), generate(category, 7, 3)
        assert (a.body, a.pieces) == (b.body, b.pieces)


class _TickingClock:
    """Stands in for the ``time`` module: every call is one second later."""

    def __init__(self) -> None:
        self.now = 1_800_000_000

    def time(self) -> float:
        self.now += 1
        return float(self.now)


@pytest.mark.parametrize("created", [0, None])
def test_created_at_is_stable_when_the_upstream_gives_none(
    monkeypatch: pytest.MonkeyPatch, created: int | None
) -> None:
    # Found by the fuzz run (json_chunks:3:800): with no usable upstream "created", assemble()
    # called time.time() for every lifecycle event, so response.created and response.in_progress
    # carried different created_at values whenever a second boundary fell between them.
    from rxresponses.operators import _assemble

    monkeypatch.setattr(_assemble, "time", _TickingClock())
    chunk: dict[str, Any] = {"choices": [{"index": 0, "delta": {"content": "hi"}}]}
    if created is not None:
        chunk["created"] = created
    finish = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    events, errors, _ = _convert(b"".join(chat_sse([chunk, finish])))
    assert errors == []
    stamps = {e["response"]["created_at"] for e in events if "response" in e}
    assert len(stamps) == 1, stamps
    check_stream(events)

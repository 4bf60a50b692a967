"""The Responses side: recorded Responses streams parsed into typed events and folded.

For every file in ``RESPONSES_FIXTURES``: ``from_file(p).pipe(parse_events())`` parses every frame
(back to the same JSON), the fold (``final_response()``) equals the terminal event's ``response``
on ``output``, ``status`` and ``usage``, each message's text is its deltas joined, the grammar
holds (with the leniency real servers need), and a stream cut in half folds to what arrived.
Expected values come from the recordings, read with ``json``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import reactivex

from rxresponses import from_file, iterate
from rxresponses.errors import ChunkDecodeError
from rxresponses.operators import final_response, parse_events
from rxresponses.types._base import to_dict
from tests._util import sse_data, sse_json
from tests.conftest import RESPONSES_FIXTURES, fixture_params
from tests.grammar import TERMINAL_TYPES, check_stream

pytestmark = [pytest.mark.fixtures, pytest.mark.filterwarnings("error::UserWarning")]

#: Recordings that cannot be parsed whole, and why (everything else must parse without error).
BROKEN = {
    # vercel/ai hand-made fixture: the response.created JSON is truncated (no closing braces)
    "openai__parallel-tool-call-wrapper.1.sse": "truncated JSON in the first frame",
}
#: Where a recording departs from the grammar: the check_stream flags it needs, or None to skip.
GRAMMAR = {
    # vercel/ai hand-made: no sequence_number, custom_tool_call_input.delta without .done
    "openai__openai-custom-tool.1.sse": None,
    # vercel/ai: output_text.done text is not its deltas joined (edited by hand)
    "openai__openai-shell-container.1.sse": None,
    # a resumed stream (starting_after=0): begins at response.queued, sequence 1
    "pydantic-ai__test_background_mode_streaming_starting_after_vcr.1.sse": None,
    # a 2025-03 stream: no sequence_number at all
    "pydantic-ai__test_openai_responses_stream.0.sse": {"strict_sequence": False},
    "pydantic-ai__test_openai_responses_stream.1.sse": {"strict_sequence": False},
    # OpenRouter renames the item ids in response.completed
    "pydantic-ai__test_openai_responses_raw_cot_stream_openrouter.0.sse": {"strict_output": False},
    # vercel/ai: an item's fingerprint differs between output_item.done and response.completed
    "openai__programmatic-tool-calling.1.sse": {"strict_output": False},
}
#: Recordings whose output_text.done is not its deltas joined (hand-edited fixtures).
DELTA_MISMATCH = {"openai__openai-shell-container.1.sse"}

PARAMS = fixture_params([p for p in RESPONSES_FIXTURES if p.name not in BROKEN])
ALL = fixture_params(RESPONSES_FIXTURES)


def parse(path: Path) -> tuple[list[Any], Exception | None]:
    events: list[Any] = []
    try:
        for e in iterate(from_file(path).pipe(parse_events())):
            events.append(e)
    except Exception as exc:
        return events, exc
    return events, None


def fold(events: list[Any]) -> dict[str, Any]:
    out: list[Any] = []
    reactivex.from_iterable(events).pipe(final_response()).subscribe(out.append)
    (response,) = out
    return to_dict(response)


def terminal_of(raw: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((e for e in reversed(raw) if e["type"] in TERMINAL_TYPES), None)


# -- parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL)
def test_parse_never_raises(path: Path) -> None:
    events, error = parse(path)
    if path.name in BROKEN:
        # a broken frame ends the stream with the typed error, not a raw exception
        assert isinstance(error, ChunkDecodeError)
        return
    assert error is None
    raw = sse_json(path)
    assert len(events) == len(raw)
    # faithful: every parsed event dumps back to the JSON object that was received
    assert [to_dict(e) for e in events] == raw


# -- the fold --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PARAMS)
def test_fold_equals_terminal(path: Path) -> None:
    events, _ = parse(path)
    raw = sse_json(path)
    terminal = terminal_of(raw)
    folded = fold(events)
    if terminal is None:  # pragma: no cover - every recording here ends in a terminal event
        pytest.skip("no terminal event")
    expected = terminal["response"]
    assert folded["status"] == expected["status"]
    assert folded["output"] == expected["output"]
    if "usage" in expected:
        assert folded["usage"] == expected["usage"]
    assert folded["id"] == expected["id"]


@pytest.mark.parametrize("path", PARAMS)
def test_message_text_is_its_deltas(path: Path) -> None:
    raw = sse_json(path)
    deltas: dict[tuple[str, int], list[str]] = defaultdict(list)
    dones: dict[tuple[str, int], str] = {}
    for e in raw:
        if e["type"] == "response.output_text.delta":
            deltas[(e["item_id"], e["content_index"])].append(e["delta"])
        elif e["type"] == "response.output_text.done":
            dones[(e["item_id"], e["content_index"])] = e["text"]
    if path.name not in DELTA_MISMATCH:
        for key, text in dones.items():
            assert "".join(deltas[key]) == text, key
    # the folded messages carry the .done text (replace-on-done), part by part
    folded = fold(parse(path)[0])
    terminal = terminal_of(raw)
    renamed = terminal is not None and GRAMMAR.get(path.name) == {"strict_output": False}
    for item in folded["output"]:
        if item["type"] != "message" or renamed:
            continue
        for index, part in enumerate(item["content"]):
            if part["type"] == "output_text" and (item["id"], index) in dones:
                assert part["text"] == dones[(item["id"], index)]


@pytest.mark.parametrize("path", PARAMS)
def test_folded_text_without_terminal_output_is_built_from_events(path: Path) -> None:
    # Drop the terminal event: the fold must rebuild the output from the item events alone.
    raw = sse_json(path)
    events, _ = parse(path)
    cut = [e for e, d in zip(events, raw, strict=True) if d["type"] not in TERMINAL_TYPES]
    folded = fold(cut)
    done = {}
    for d in raw:
        if d["type"] == "response.output_item.done":
            done[d["output_index"]] = d["item"]
    assert folded["output"] == [done[i] for i in sorted(done)]


@pytest.mark.parametrize("path", PARAMS)
def test_grammar_of_recordings(path: Path) -> None:
    flags = GRAMMAR.get(path.name, {})
    if flags is None:
        pytest.skip(f"{path.name} departs from the grammar (see GRAMMAR)")
    check_stream(sse_json(path), **flags)


def test_grammar_exceptions_really_are_exceptions(fixtures_dir: Path) -> None:
    # each entry of GRAMMAR is needed: the strict check rejects the recording
    for name in GRAMMAR:
        with pytest.raises(AssertionError):
            check_stream(sse_json(fixtures_dir / "responses" / name))


# -- the constructed canonical streams -------------------------------------------------------------

CANONICAL = [
    "plain_text",
    "function_call",
    "reasoning_summary_then_text",
    "parallel_function_calls",
    "incomplete_max_output_tokens",
    "refusal",
    "failed_with_error_event",
]


@pytest.mark.parametrize("name", CANONICAL)
def test_canonical_stream(fixtures_dir: Path, name: str) -> None:
    path = fixtures_dir / "responses" / f"{name}.sse"
    expected = json.loads((fixtures_dir / "responses" / f"{name}.expected.json").read_text())
    events, error = parse(path)
    assert error is None
    dumped = [to_dict(e) for e in events]
    assert [e["type"] for e in dumped] == expected["event_types"]
    assert len(dumped) == expected["num_events"]
    terminal = {k: v for k, v in dumped[-1].items() if k != "sequence_number"}
    assert terminal == expected["terminal_event"]
    assert fold(events) == expected["terminal_event"]["response"]
    check_stream(dumped)
    if expected.get("final_output_text") is not None:
        text = "".join(
            p["text"]
            for i in fold(events)["output"]
            if i["type"] == "message"
            for p in i["content"]
            if p["type"] == "output_text"
        )
        assert text == expected["final_output_text"]


def test_canonical_incomplete_and_failed_fold_with_their_status(fixtures_dir: Path) -> None:
    incomplete = fold(parse(fixtures_dir / "responses" / "incomplete_max_output_tokens.sse")[0])
    assert incomplete["status"] == "incomplete"
    assert incomplete["incomplete_details"] == {"reason": "max_output_tokens"}
    assert incomplete["output"][0]["status"] == "incomplete"
    failed = fold(parse(fixtures_dir / "responses" / "failed_with_error_event.sse")[0])
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "code": "server_error",
        "message": "The server had an error while processing your request.",
    }


# -- cut streams -----------------------------------------------------------------------------------


def test_cut_plain_text_folds_to_what_arrived(fixtures_dir: Path) -> None:
    # created, in_progress, item.added, part.added and the deltas "Hello", "!", " How", " can"
    body = (fixtures_dir / "responses" / "plain_text.sse").read_bytes()
    frames = body.split(b"\n\n")
    cut = b"\n\n".join(frames[:8]) + b"\n\n"
    events = list(iterate(reactivex.of(cut).pipe(_decode(), parse_events())))
    assert len(events) == 8
    folded = fold(events)
    assert folded["status"] == "in_progress"
    assert folded["usage"] is None
    assert folded["output"] == [
        {
            "id": "msg_canon_plain",
            "type": "message",
            "status": "in_progress",
            "content": [
                {"type": "output_text", "annotations": [], "logprobs": [], "text": "Hello! How can"}
            ],
            "role": "assistant",
        }
    ]


def test_cut_in_the_middle_of_a_frame(fixtures_dir: Path) -> None:
    # the bytes stop inside a JSON payload: the partial frame is dropped, the rest folds
    body = (fixtures_dir / "responses" / "plain_text.sse").read_bytes()
    at = body.index(b'"delta":" How"')
    events = list(iterate(reactivex.of(body[:at]).pipe(_decode(), parse_events())))
    assert [to_dict(e)["type"] for e in events][-1] == "response.output_text.delta"
    text = fold(events)["output"][0]["content"][0]["text"]
    assert text == "Hello!"


@pytest.mark.parametrize("path", PARAMS)
def test_first_half_folds_to_what_arrived(path: Path) -> None:
    raw = sse_json(path)
    events, _ = parse(path)
    half = len(events) // 2
    folded = fold(events[:half])
    statuses = [d["response"]["status"] for d in raw[:half] if "response" in d]
    assert folded["status"] == (statuses[-1] if statuses else "in_progress")
    assert folded["status"] in ("in_progress", "queued")
    # every item that was added is there, in output_index order, with the id it was added with
    added = {
        d["output_index"]: d["item"]["id"]
        for d in raw[:half]
        if d["type"] == "response.output_item.added"
    }
    assert [i.get("id") for i in folded["output"]] == [added[k] for k in sorted(added)]
    # an item that finished in the first half is exactly its output_item.done
    for d in raw[:half]:
        if d["type"] == "response.output_item.done":
            assert folded["output"][sorted(added).index(d["output_index"])] == d["item"]
    # text parts still streaming hold the deltas that arrived
    deltas: dict[tuple[str, int], str] = defaultdict(str)
    finished: set[tuple[str, int]] = set()
    for d in raw[:half]:
        key = (d.get("item_id", ""), d.get("content_index", -1))
        if d["type"] == "response.output_text.delta":
            deltas[key] += d["delta"]
        elif d["type"] in ("response.output_text.done", "response.output_item.done"):
            finished.add(key)
            if d["type"] == "response.output_item.done":
                finished |= {k for k in deltas if k[0] == d["item"]["id"]}
    for (item_id, index), text in deltas.items():
        if (item_id, index) in finished:
            continue
        item = next(i for i in folded["output"] if i.get("id") == item_id)
        assert item["content"][index]["text"] == text


def _decode() -> Any:
    from rxresponses.operators import decode_sse

    return decode_sse()


def test_recorded_streams_exist(fixtures_dir: Path) -> None:
    assert len(RESPONSES_FIXTURES) >= 40
    assert all(sse_data(p) for p in RESPONSES_FIXTURES)

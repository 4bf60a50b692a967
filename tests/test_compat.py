"""The pydantic internals of rxresponses (``rxresponses.types._compat``) and their fallback.

The fast path relies on pydantic's instance layout; ``_compat`` checks it at import and falls
back to the public API when it changed. These tests force the fallback (with the fast
implementations made to fail, so nothing can still reach them) and hold its conversions equal,
event for event, to the fast path's.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import reactivex

from rxresponses import operators as rxo
from rxresponses.operators._final import ResponseAccumulator
from rxresponses.pipelines import chat_sse_to_responses, chat_to_responses
from rxresponses.scripted import ScriptedToolCall, ScriptedTurn, chat_chunks, chat_sse
from rxresponses.sources import from_bytes
from rxresponses.types import _compat
from rxresponses.types._base import to_dict
from rxresponses.types.events import ResponseTextDeltaEvent
from rxresponses.types.response import Response, ResponseOutputMessage, ResponseOutputText
from tests._util import Ids, dumps
from tests.conftest import CHAT_FIXTURES, fixture_params

DEMO = Path(__file__).resolve().parents[1] / "rxresponses" / "data" / "demo.sse"


def _fails(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a pydantic internal was used while the fallback is on")


@pytest.fixture
def fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The public-API fallback, as if the import-time check had failed."""
    monkeypatch.setattr(_compat, "FAST", False)
    for name in ("_make_fast", "_deep", "_deep_model"):
        monkeypatch.setattr(_compat, name, _fails)


def _convert(body: bytes, *, typed: bool = False) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The events of a Chat SSE body (in pieces) and the final response folded from them."""
    options: dict[str, Any] = {"ids": Ids(), "response_id": "resp_test", "created_at": 1}
    pipeline = (
        reactivex.compose(rxo.decode_sse(), rxo.parse_chunks(), chat_to_responses(**options))
        if typed
        else chat_sse_to_responses(**options)
    )
    pieces = [body[i : i + 97] for i in range(0, len(body), 97)] or [b""]
    events: list[Any] = []
    errors: list[Exception] = []
    from_bytes(pieces).pipe(pipeline).subscribe(events.append, errors.append)
    assert errors == []
    accumulator = ResponseAccumulator()
    for event in events:
        accumulator.handle(event)
    final = to_dict(accumulator.result())
    final.pop("completed_at", None)
    return dumps(events, wall_clock=False), final


def _bodies() -> list[bytes]:
    turns = [
        ScriptedTurn(text="Hello, world! " * 20),
        ScriptedTurn(reasoning="Let me think. " * 10, text="Answer: 42."),
        ScriptedTurn(
            reasoning="two calls",
            tool_calls=(
                ScriptedToolCall("get_weather", '{"city": "Paris"}'),
                ScriptedToolCall("get_weather", '{"city": "Tokyo", "unit": "c"}'),
            ),
        ),
        ScriptedTurn(text="cut short", finish_reason="length"),
    ]
    return [DEMO.read_bytes()] + [b"".join(chat_sse(chat_chunks(t, seed=1))) for t in turns]


def test_the_internals_are_usable_on_this_pydantic() -> None:
    """On the pydantic versions rxresponses declares, the fast path is the one in use."""
    assert _compat.internals_usable() is True
    assert _compat.FAST is True


def test_a_changed_internal_turns_the_fast_path_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_compat, "_set_dict", _compat._missing_slot)
    assert _compat.internals_usable() is False
    previous = _compat.use_fast_path(True)
    try:
        assert _compat.FAST is False  # asked for, but the check fails
    finally:
        monkeypatch.undo()
        _compat.use_fast_path(previous)
    assert _compat.FAST is True


def test_a_check_that_raises_means_unusable(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> bool:
        raise TypeError("BaseModel changed")

    monkeypatch.setattr(_compat, "_check", broken)
    assert _compat.internals_usable() is False


@pytest.mark.parametrize("index", range(5))
def test_fallback_converts_like_the_fast_path(index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    body = _bodies()[index]
    fast_events, fast_final = _convert(body)
    typed_events, typed_final = _convert(body, typed=True)
    monkeypatch.setattr(_compat, "FAST", False)
    for name in ("_make_fast", "_deep", "_deep_model"):
        monkeypatch.setattr(_compat, name, _fails)
    assert _convert(body) == (fast_events, fast_final)
    assert _convert(body, typed=True) == (typed_events, typed_final)
    ending = "response.incomplete" if index == 4 else "response.completed"  # 4: cut short
    assert fast_events[-1]["type"] == ending


@pytest.mark.fixtures
@pytest.mark.parametrize("path", fixture_params(CHAT_FIXTURES))
def test_fallback_converts_recordings_like_the_fast_path(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = path.read_bytes()
    expected = _convert(body)
    monkeypatch.setattr(_compat, "FAST", False)
    for name in ("_make_fast", "_deep", "_deep_model"):
        monkeypatch.setattr(_compat, name, _fails)
    assert _convert(body) == expected


def test_fallback_build_and_trusted(fallback: None) -> None:
    part = ResponseOutputText.build(text="hi")
    assert to_dict(part) == {"type": "output_text", "text": "hi", "annotations": [], "logprobs": []}
    event = ResponseTextDeltaEvent.trusted(
        {
            "type": "response.output_text.delta",
            "sequence_number": 3,
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "delta": "x",
            "logprobs": [],
        }
    )
    assert to_dict(event) == {
        "type": "response.output_text.delta",
        "sequence_number": 3,
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "x",
        "logprobs": [],
    }


def test_fallback_copies_keep_what_was_sent(fallback: None) -> None:
    """A model parsed off the wire keeps its extras and its set of fields through every copy."""
    wire = Response.model_validate(
        {
            "id": "resp_1",
            "created_at": 1,
            "model": "m",
            "status": "completed",
            "output": [{"type": "message", "id": "msg_1", "role": "assistant", "content": []}],
            "billing": {"payer": "developer"},
        },
        context={"rxresponses_wire": True},
    )
    expected = {
        "id": "resp_1",
        "created_at": 1,
        "model": "m",
        "status": "completed",
        "output": [{"type": "message", "id": "msg_1", "role": "assistant", "content": []}],
        "billing": {"payer": "developer"},
    }
    deep = _compat.deep_copy(wire)
    assert to_dict(deep) == expected
    assert deep.model_extra is not None
    assert deep.model_extra["billing"] is not wire.billing
    assert deep.output[0] is not wire.output[0]
    shallow = _compat.shallow_copy(wire)
    assert to_dict(shallow) == expected
    assert shallow.output is wire.output
    updated = _compat.deep_copy_with(wire, {"status": "failed"})
    assert to_dict(updated) == {**expected, "status": "failed"}
    assert updated.output[0] is not wire.output[0]


def test_fallback_writes(fallback: None) -> None:
    message = ResponseOutputMessage.model_validate(
        {"type": "message", "id": "msg_1", "role": "assistant", "content": [], "note": [1]},
        context={"rxresponses_wire": True},
    )
    _compat.replace_value(message, "note", [2])
    _compat.replace_value(message, "status", "completed")  # not sent: stays out of the dump
    assert to_dict(message) == {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "content": [],
        "note": [2],
    }
    _compat.set_field(message, "status", "incomplete")
    assert to_dict(message)["status"] == "incomplete"


def test_fast_and_fallback_copies_are_equal() -> None:
    events, _final = _convert(DEMO.read_bytes(), typed=True)
    response = Response.model_validate(events[-1]["response"], context={"rxresponses_wire": True})
    fast = _compat.deep_copy(response)
    previous = _compat.use_fast_path(False)
    try:
        public = _compat.deep_copy(response)
    finally:
        _compat.use_fast_path(previous)
    assert fast == public == copy.deepcopy(response)
    assert to_dict(fast) == to_dict(public) == events[-1]["response"]

"""``chat_to_responses()`` (fused stages) emits exactly what the composed operators emit."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from rxresponses import from_file, iterate, parse_chunks
from rxresponses.pipelines import chat_to_responses, chat_to_responses_composed
from rxresponses.types._base import to_dict
from tests.conftest import CHAT_FIXTURES, fixture_params


def _counter_ids():
    counter = itertools.count()
    return lambda prefix: f"{prefix}_{next(counter)}"


def _events(path: Path, op) -> list[dict]:
    pipeline = op(ids=_counter_ids(), response_id="resp_test", created_at=1)
    events = [to_dict(e) for e in iterate(from_file(path).pipe(parse_chunks(), pipeline))]
    for event in events:  # completed_at is the wall clock
        event.get("response", {}).pop("completed_at", None)
    return events


@pytest.mark.parametrize("path", fixture_params(CHAT_FIXTURES))
def test_fused_equals_composed_on_recordings(path: Path) -> None:
    assert _events(path, chat_to_responses) == _events(path, chat_to_responses_composed)


def test_fused_equals_composed_on_embedded_demo() -> None:
    demo = Path(__file__).resolve().parents[1] / "rxresponses" / "data" / "demo.sse"
    fused = _events(demo, chat_to_responses)
    assert fused == _events(demo, chat_to_responses_composed)
    assert [e["type"] for e in fused][-1] == "response.completed"

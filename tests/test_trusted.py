"""The per-token events built with ``WireModel.trusted()`` equal validated construction."""

from __future__ import annotations

import pydantic
import pytest
from openai.types.responses import ResponseStreamEvent as SDKEvent

from rxresponses.operators._accumulate_text import TextStage
from rxresponses.operators._collect_reasoning import ReasoningStage
from rxresponses.operators._join_tool_args import ToolCallStage
from rxresponses.types import (
    ItemStarted,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    to_dict,
)

SDK = pydantic.TypeAdapter(SDKEvent)


def _deltas(stage, started, delta):
    stage.handle(started)
    return [e for e in stage.handle(delta) if e.type.endswith(".delta")]


CASES = [
    (TextStage(), ItemStarted("message", "msg_1", 3), TextDelta("msg_1", 3, "Hel")),
    (TextStage(), ItemStarted("message", "msg_1", 0), RefusalDelta("msg_1", 0, "No")),
    (ReasoningStage(), ItemStarted("reasoning", "rs_1", 1), ReasoningDelta("rs_1", 1, "hm")),
    (
        ReasoningStage(as_summary=True),
        ItemStarted("reasoning", "rs_1", 1),
        ReasoningDelta("rs_1", 1, "hm"),
    ),
    (
        ToolCallStage(),
        ItemStarted("function_call", "fc_1", 2, "call_1", "f"),
        ToolCallDelta("fc_1", 2, '{"a'),
    ),
]


@pytest.mark.parametrize(("stage", "started", "delta"), CASES)
def test_trusted_delta_equals_validated_construction(stage, started, delta) -> None:
    (event,) = _deltas(stage, started, delta)
    dumped = to_dict(event)
    # Every declared field is present, and validating the dump rebuilds an equal event.
    assert set(dumped) == set(type(event).model_fields)
    assert to_dict(type(event).model_validate(dumped)) == dumped
    assert type(event).model_validate(dumped) == event
    # The official schema accepts it, field for field.
    assert SDK.validate_python(dumped).model_dump(mode="json") == dumped
    # Assignment (what assemble() does to number events) behaves as on any model.
    event.sequence_number = 7
    assert to_dict(event)["sequence_number"] == 7

"""One registry of event kinds: the tables every consumer reads come from the event classes.

The registry is derived from the ``event_kind`` each class declares; these tests pin what it holds
(written out) and that the consumers (the fold, the assembler, the terminal renderer, the logging
sink) agree with it, ``apply_patch_call_operation_diff`` included.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest

from rxresponses.operators import _assemble, _final
from rxresponses.operators._final import ResponseAccumulator
from rxresponses.sinks import log, terminal
from rxresponses.sinks.log import LoggingSink
from rxresponses.sinks.terminal import TerminalRenderer
from rxresponses.types import registry
from rxresponses.types.events import (
    ResponseApplyPatchCallOperationDiffDeltaEvent,
    ResponseApplyPatchCallOperationDiffDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    parse_event,
)

DELTAS = {
    "response.output_text.delta",
    "response.refusal.delta",
    "response.reasoning_text.delta",
    "response.reasoning.delta",  # the Open Responses name of the same event
    "response.reasoning_summary_text.delta",
    "response.function_call_arguments.delta",
    "response.custom_tool_call_input.delta",
    "response.mcp_call_arguments.delta",
    "response.code_interpreter_call_code.delta",
    "response.apply_patch_call_operation_diff.delta",
}


def test_the_registry_holds_the_kinds_the_protocol_defines() -> None:
    assert {
        "response.completed",
        "response.incomplete",
        "response.failed",
    } == registry.TERMINAL_TYPES
    assert {
        "response.created",
        "response.queued",
        "response.in_progress",
    } == registry.LIFECYCLE_TYPES
    assert registry.DELTA_TYPES == DELTAS
    assert {t.removesuffix(".delta") + ".done" for t in DELTAS} == registry.DONE_TYPES
    assert {cls.model_fields["type"].default for cls in registry.DELTA_CLASSES} == DELTAS
    text = registry.kind_of("response.refusal.done")
    assert text is not None
    assert (text.family, text.index_field, text.text_field, text.part) == (
        "content",
        "content_index",
        "refusal",
        "refusal",
    )
    assert registry.kind_of("response.web_search_call.searching") is None


def test_every_consumer_reads_the_same_tables() -> None:
    assert log.DELTA_EVENT_TYPES == registry.DELTA_TYPES
    assert set(terminal._DELTAS) == registry.DELTA_TYPES
    assert set(terminal._DONES) == registry.DONE_TYPES
    assert set(terminal._TERMINAL) == registry.TERMINAL_TYPES
    assert _assemble._DELTA_EVENTS == registry.DELTA_CLASSES
    assert _final._TERMINAL == registry.TERMINAL_TYPES
    # The fold keeps the text of every delta but the apply_patch diff (see the next test).
    folded = set(_final._DELTAS) | {"response.output_text.delta"}
    assert folded == DELTAS - {"response.apply_patch_call_operation_diff.delta"}


def _apply_patch_events() -> list[Any]:
    item = {
        "type": "apply_patch_call",
        "id": "apc_1",
        "call_id": "call_1",
        "status": "in_progress",
        "operation": {"type": "update_file", "path": "a.py", "diff": ""},
    }
    done_item = {**item, "status": "completed", "operation": {**item["operation"], "diff": "+x"}}
    return [
        ResponseOutputItemAddedEvent.model_validate({"output_index": 0, "item": item}),
        ResponseApplyPatchCallOperationDiffDeltaEvent(item_id="apc_1", output_index=0, delta="+x"),
        ResponseApplyPatchCallOperationDiffDoneEvent(item_id="apc_1", output_index=0, diff="+x"),
        ResponseOutputItemDoneEvent.model_validate({"output_index": 0, "item": done_item}),
    ]


def test_apply_patch_diff_is_a_delta_everywhere_and_the_item_carries_it() -> None:
    acc = ResponseAccumulator()
    for event in _apply_patch_events()[:3]:
        acc.handle(event)
    (item,) = acc.result().output
    assert not hasattr(item, "diff")  # the diff lives in the item's operation, not a new field
    for event in _apply_patch_events()[3:]:
        acc.handle(event)
    (item,) = acc.result().output
    assert item.operation == {"type": "update_file", "path": "a.py", "diff": "+x"}


def test_terminal_shows_a_diff_that_came_whole(caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    renderer = TerminalRenderer(out, color=False, summary=False)
    events = _apply_patch_events()
    for event in (events[0], events[2], events[3]):  # no delta: the .done has the text
        renderer.on_next(event)
    assert "+x" in out.getvalue()

    caplog.set_level(logging.DEBUG, "rxresponses.test")
    sink = LoggingSink("rxresponses.test", aggregate_deltas=True)
    for event in events:
        sink.on_next(event)
    done = [r for r in caplog.records if getattr(r, "event_type", "") == events[2].type]
    assert [getattr(r, "text", None) for r in done] == ["+x"]


def test_a_parsed_unknown_done_event_has_no_kind() -> None:
    event = parse_event('{"type": "response.future_thing.done", "text": "t"}')
    assert registry.kind_of(event.type) is None

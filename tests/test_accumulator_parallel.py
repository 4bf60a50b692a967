"""final_response() with many parallel tool calls (issue 17, point 8): the right result.

The timing (linear: 16,000 vs 32,000 calls) is printed by tests/benchmarks/parallel_calls.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import reactivex

from rxresponses import final_response
from rxresponses.types.events import (
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseOutputItemAddedEvent,
)
from rxresponses.types.response import ResponseFunctionToolCall

sys.path.insert(0, str(Path(__file__).parent / "benchmarks"))
import parallel_calls


def fold(events: list[Any]) -> Any:
    result: list[Any] = []
    reactivex.from_iterable(events).pipe(final_response()).subscribe(result.append)
    return result[0]


def test_every_parallel_call_keeps_its_arguments() -> None:
    response = fold(parallel_calls.fold_events(3_000))
    assert len(response.output) == 3_000
    assert [item.arguments for item in response.output[:3]] == ['{"i":0}', '{"i":1}', '{"i":2}']
    assert response.output[2_999].arguments == '{"i":2999}'


def test_a_done_item_drops_only_its_own_buffers() -> None:
    """Item 0 is done (its deltas are replaced by the item); item 1 is still streaming."""
    events = parallel_calls.fold_events(2)
    done_0 = [e for e in events if e.output_index == 0]
    events = [e for e in events if e.output_index == 1 and e.type.endswith(("added", "delta"))]
    events += done_0
    events.append(
        ResponseFunctionCallArgumentsDeltaEvent(
            item_id="fc_1", output_index=1, delta="+", sequence_number=0
        )
    )
    response = fold(
        [
            ResponseOutputItemAddedEvent(
                output_index=0,
                item=ResponseFunctionToolCall(id="fc_0", call_id="call_0", name="f", arguments=""),
                sequence_number=0,
            ),
            *events,
        ]
    )
    assert response.output[0].arguments == '{"i":0}'
    assert response.output[1].arguments == '{"i":1}+'

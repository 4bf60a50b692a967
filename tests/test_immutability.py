"""Events are values: an event is never changed after it was handed to a subscriber.

Fan-out to several sinks is a headline use of the library, so two ``assemble()`` branches of one
``publish()`` must not renumber each other's events, and a sink that keeps events must find them
as they were when it got them.
"""

from __future__ import annotations

import json
from typing import Any

import reactivex
from reactivex import operators as ops

from rxresponses import operators as rxo
from rxresponses.server._pipeline import restore_tool_names
from rxresponses.server._request import ToolName
from rxresponses.types.chat import parse_chunk
from rxresponses.types.events import ResponseOutputItemAddedEvent
from tests._util import Ids, chunk


class Keeper:
    """A sink that keeps every event with the sequence number it had when it arrived."""

    def __init__(self) -> None:
        self.kept: list[tuple[Any, int, int | None]] = []

    def __call__(self, event: Any) -> None:
        self.kept.append((event, event.sequence_number, getattr(event, "output_index", None)))

    def numbers_now(self) -> list[int]:
        return [event.sequence_number for event, _, _ in self.kept]

    def numbers_then(self) -> list[int]:
        return [seq for _, seq, _ in self.kept]

    def indexes_now(self) -> list[int | None]:
        return [getattr(event, "output_index", None) for event, _, _ in self.kept]

    def indexes_then(self) -> list[int | None]:
        return [index for _, _, index in self.kept]


def _chunks() -> list[Any]:
    return [
        parse_chunk(json.dumps(c))
        for c in (
            chunk({"role": "assistant", "reasoning_content": "hm"}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f"}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
            chunk(None, "tool_calls"),
        )
    ]


def _item_events() -> reactivex.Observable[Any]:
    """The item operators' events (not yet numbered), shared by ``publish()``."""
    return reactivex.from_iterable(_chunks()).pipe(
        rxo.split_by_item(ids=Ids()),
        rxo.collect_reasoning(),
        rxo.accumulate_text(),
        rxo.join_tool_args(),
    )


def _item_id(event: Any) -> Any:
    return getattr(event, "item_id", None) or getattr(getattr(event, "item", None), "id", None)


def test_two_assemble_branches_of_one_publish_number_their_own_events() -> None:
    shared = _item_events().pipe(ops.publish())
    first, second = Keeper(), Keeper()
    shared.pipe(rxo.assemble(response_id="resp_1", ids=Ids())).subscribe(first)
    # The second branch leaves the reasoning item out: its numbers differ from the first's.
    shared.pipe(
        ops.filter(lambda e: _item_id(e) != "rs_1"), rxo.assemble(response_id="resp_2", ids=Ids())
    ).subscribe(second)
    shared.connect()

    # 2 lifecycle + reasoning (added, part added, delta, text done, part done, item done)
    # + message (added, part added, 2 deltas, text done, part done, item done)
    # + function call (added, delta, arguments done, item done) + completed
    n = 2 + 6 + 7 + 4 + 1
    assert first.numbers_then() == list(range(n))
    assert second.numbers_then() == list(range(n - 6))
    assert first.numbers_now() == list(range(n))  # not renumbered by the other branch
    assert second.numbers_now() == list(range(n - 6))
    assert (
        first.indexes_now()
        == first.indexes_then()
        == [None, None] + [0] * 6 + [1] * 7 + [2] * 4 + [None]
    )
    assert (
        second.indexes_now() == second.indexes_then() == [None, None] + [0] * 7 + [1] * 4 + [None]
    )
    assert [e.type for e, _, _ in first.kept][-1] == "response.completed"


def test_sinks_of_one_assembled_stream_keep_events_as_they_got_them() -> None:
    events = _item_events().pipe(rxo.assemble(ids=Ids()), ops.publish())
    first, second = Keeper(), Keeper()
    events.subscribe(first)
    events.pipe(rxo.final_response()).subscribe()
    events.subscribe(second)
    events.connect()
    assert first.numbers_now() == first.numbers_then() == list(range(20))
    assert second.numbers_now() == second.numbers_then() == list(range(20))


def test_a_dropped_item_renumbers_a_copy_not_the_event_a_sink_kept() -> None:
    # A tap before assemble() keeps the item events; assemble() (after a filter that drops the
    # reasoning item) gives the message dense output_index 0: the kept events still say 1.
    tap = Keeper()
    kept: list[Any] = []
    _item_events().pipe(
        ops.do_action(lambda e: kept.append((e, getattr(e, "output_index", None)))),
        ops.filter(lambda e: _item_id(e) != "rs_1"),
        rxo.assemble(ids=Ids()),
    ).subscribe(tap)
    message = [e for e, _, _ in tap.kept if _item_id(e) == "msg_1"]
    assert {e.output_index for e in message} == {0}  # renumbered densely...
    message_before = [e for e, _ in kept if _item_id(e) == "msg_1"]
    assert {e.output_index for e in message_before} == {1}  # ...on copies
    assert [index for _, index in kept] == [getattr(e, "output_index", None) for e, _ in kept]
    assert tap.numbers_now() == tap.numbers_then() == list(range(len(tap.kept)))


def test_restore_tool_names_leaves_the_event_it_got_unchanged() -> None:
    events = reactivex.from_iterable(_chunks()).pipe(
        rxo.split_by_item(ids=Ids()),
        rxo.collect_reasoning(),
        rxo.accumulate_text(),
        rxo.join_tool_args(),
        ops.publish(),
    )
    raw: list[Any] = []
    restored: list[Any] = []
    events.pipe(ops.filter(lambda e: isinstance(e, ResponseOutputItemAddedEvent))).subscribe(
        raw.append
    )
    events.pipe(
        restore_tool_names({"f": ToolName("lookup", "crm")}),
        ops.filter(lambda e: isinstance(e, ResponseOutputItemAddedEvent)),
    ).subscribe(restored.append)
    events.connect()
    assert [e.item.type for e in raw] == ["reasoning", "message", "function_call"]
    assert raw[2].item.name == "f"
    assert getattr(raw[2].item, "namespace", None) is None
    assert restored[2].item.name == "lookup"
    assert restored[2].item.namespace == "crm"

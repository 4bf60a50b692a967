"""The grammar checker (tests/grammar.py) itself: it accepts a canonical stream and rejects each
kind of violation with a message that names the rule."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.grammar import check_stream

MSG = {
    "id": "msg_1",
    "type": "message",
    "status": "in_progress",
    "content": [],
    "role": "assistant",
}
TEXT_PART = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
DONE_PART = {**TEXT_PART, "text": "Hi!"}
MSG_DONE = {**MSG, "status": "completed", "content": [DONE_PART]}
FC = {
    "id": "fc_1",
    "type": "function_call",
    "status": "in_progress",
    "arguments": "",
    "call_id": "call_1",
    "name": "f",
}
FC_DONE = {**FC, "status": "completed", "arguments": "{}"}


def response(status: str, output: list[Any]) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "status": status,
        "output": output,
    }


def stream() -> list[dict[str, Any]]:
    ev: list[dict[str, Any]] = [
        {"type": "response.created", "response": response("in_progress", [])},
        {"type": "response.in_progress", "response": response("in_progress", [])},
        {"type": "response.output_item.added", "output_index": 0, "item": MSG},
        {"type": "response.content_part.added", "item_id": "msg_1", "output_index": 0,
         "content_index": 0, "part": TEXT_PART},
        {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
         "content_index": 0, "delta": "Hi"},
        {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
         "content_index": 0, "delta": "!"},
        {"type": "response.output_text.done", "item_id": "msg_1", "output_index": 0,
         "content_index": 0, "text": "Hi!"},
        {"type": "response.content_part.done", "item_id": "msg_1", "output_index": 0,
         "content_index": 0, "part": DONE_PART},
        {"type": "response.output_item.done", "output_index": 0, "item": MSG_DONE},
        {"type": "response.output_item.added", "output_index": 1, "item": FC},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1,
         "delta": "{}"},
        {"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 1,
         "arguments": "{}"},
        {"type": "response.output_item.done", "output_index": 1, "item": FC_DONE},
        {"type": "response.completed", "response": response("completed", [MSG_DONE, FC_DONE])},
    ]  # fmt: skip
    for i, e in enumerate(ev):
        e["sequence_number"] = i
    return copy.deepcopy(ev)


def renumber(ev: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for i, e in enumerate(ev):
        e["sequence_number"] = i
    return ev


def test_accepts_the_canonical_stream() -> None:
    check_stream(stream())


def test_accepts_overlapping_items() -> None:
    # parallel tool calls: both open, fragments interleaved, closed in any order
    fc2 = {**FC, "id": "fc_2", "call_id": "call_2"}
    fc2_done = {**fc2, "status": "completed", "arguments": "[]"}
    ev = [
        *stream()[:2],
        {"type": "response.output_item.added", "output_index": 0, "item": FC},
        {"type": "response.output_item.added", "output_index": 1, "item": fc2},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_2", "output_index": 1,
         "delta": "[]"},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 0,
         "delta": "{}"},
        {"type": "response.function_call_arguments.done", "item_id": "fc_2", "output_index": 1,
         "arguments": "[]"},
        {"type": "response.output_item.done", "output_index": 1, "item": fc2_done},
        {"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 0,
         "arguments": "{}"},
        {"type": "response.output_item.done", "output_index": 0, "item": FC_DONE},
        {"type": "response.completed", "response": response("completed", [FC_DONE, fc2_done])},
    ]  # fmt: skip
    check_stream(renumber(ev))


def test_accepts_error_then_failed() -> None:
    ev = [
        *stream()[:2],
        {"type": "error", "code": "server_error", "message": "x", "param": None},
        {"type": "response.failed", "response": response("failed", [])},
    ]
    check_stream(renumber(ev))


def test_lenient_sequence() -> None:
    ev = stream()
    for e in ev:
        del e["sequence_number"]
    with pytest.raises(AssertionError, match="sequence_number None, expected 0"):
        check_stream(ev)
    check_stream(ev, strict_sequence=False)


def _set(index: int, **fields: Any) -> Callable[[list[dict[str, Any]]], None]:
    def mutate(ev: list[dict[str, Any]]) -> None:
        ev[index].update(fields)

    return mutate


def _delete(index: int) -> Callable[[list[dict[str, Any]]], None]:
    def mutate(ev: list[dict[str, Any]]) -> None:
        del ev[index]
        renumber(ev)

    return mutate


def _swap(i: int, j: int) -> Callable[[list[dict[str, Any]]], None]:
    def mutate(ev: list[dict[str, Any]]) -> None:
        ev[i], ev[j] = ev[j], ev[i]
        renumber(ev)

    return mutate


def _insert(index: int, event: dict[str, Any]) -> Callable[[list[dict[str, Any]]], None]:
    def mutate(ev: list[dict[str, Any]]) -> None:
        ev.insert(index, copy.deepcopy(event))
        renumber(ev)

    return mutate


def _terminal(**fields: Any) -> Callable[[list[dict[str, Any]]], None]:
    def mutate(ev: list[dict[str, Any]]) -> None:
        ev[-1]["response"].update(fields)

    return mutate


MUTATIONS = {
    "sequence gap": (_set(5, sequence_number=6), "sequence_number 6, expected 5"),
    "created not first": (_swap(0, 1), "first event must be response.created"),
    "no in_progress": (_delete(1), "expected response.in_progress"),
    "output_index skips": (_set(9, output_index=2), "output_index 2, expected 1"),
    "output_index shared by two ids": (
        _set(9, output_index=0),
        "output_index 0, expected 1",
    ),
    "item id reused": (
        _set(9, item={**FC, "id": "msg_1"}),
        "already used by output_index 0",
    ),
    "item_id mismatch": (_set(4, item_id="msg_X"), "item_id 'msg_X' != id 'msg_1'"),
    "event before item added": (_swap(2, 3), "before its output_item.added"),
    "event after item done": (_swap(8, 7), "content parts \\[0\\] still open"),
    "delta before part added": (_swap(3, 4), "content_index 0 before its part was added"),
    "deltas do not join to done": (_set(6, text="Hi?"), "!= concatenated deltas 'Hi!'"),
    "part done text differs": (
        _set(7, part={**TEXT_PART, "text": "Ho"}),
        "part text 'Ho' != 'Hi!'",
    ),
    "delta after done": (
        lambda ev: (ev[6].update(text="Hi"), _swap(5, 6)(ev)),
        "delta after the .done event",
    ),
    "item done text differs": (
        _set(8, item={**MSG_DONE, "content": [{**TEXT_PART, "text": "Ho"}]}),
        "content\\[0\\].text 'Ho' != 'Hi!'",
    ),
    "item id changes at done": (
        _set(8, item={**MSG_DONE, "id": "msg_2"}),
        "item id/type 'msg_2'/'message' != 'msg_1'/'message'",
    ),
    "arguments do not join": (_set(11, arguments="{ }"), "!= concatenated deltas '{}'"),
    "function call without arguments.done": (
        lambda ev: (_delete(11)(ev), _delete(10)(ev)),
        "function_call item closed without response.function_call_arguments.done",
    ),
    "item left open": (_delete(12), "items \\[1\\] still open"),
    "no terminal": (_delete(13), "last event must be"),
    "two terminals": (
        _insert(13, {"type": "response.completed", "response": response("completed", [])}),
        "terminal event before the end",
    ),
    "error before completed": (
        _insert(13, {"type": "error", "code": "x", "message": "y"}),
        "error event may only come right before response.failed",
    ),
    "terminal status mismatch": (_terminal(status="incomplete"), "does not match the event type"),
    "terminal output differs": (_terminal(output=[FC_DONE, MSG_DONE]), "differs from the output"),
    "response id changes": (_terminal(id="resp_2"), "response.id 'resp_2' != 'resp_1'"),
    "created_at changes": (_terminal(created_at=2), "response.created_at 2 != 1"),
    "created with output": (
        lambda ev: ev[0]["response"].update(output=[MSG]),
        "response.created with output",
    ),
    "lifecycle event later": (
        _insert(5, {"type": "response.in_progress", "response": response("in_progress", [])}),
        "lifecycle event after the stream started",
    ),
    "content index skips": (
        lambda ev: [e.update(content_index=1) for e in ev[3:8]],
        "content_index 1, expected 0",
    ),
    "delta not a string": (_set(4, delta=None), "delta None is not a string"),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_rejects(name: str) -> None:
    mutate, message = MUTATIONS[name]
    ev = stream()
    mutate(ev)
    with pytest.raises(AssertionError, match=message):
        check_stream(ev)


def test_rejects_empty_and_non_events() -> None:
    with pytest.raises(AssertionError, match="empty stream"):
        check_stream([])
    with pytest.raises(AssertionError, match="not an event dict"):
        check_stream([{"no": "type"}])


def test_messages_name_the_event() -> None:
    ev = stream()
    ev[6]["text"] = "wrong"
    with pytest.raises(AssertionError) as info:
        check_stream(ev)
    assert str(info.value).startswith("event #6 ('response.output_text.done', seq 6): ")


def test_encrypted_content_may_change_at_the_terminal_event() -> None:
    rs = {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "A"}
    ev = [
        *stream()[:2],
        {"type": "response.output_item.added", "output_index": 0, "item": rs},
        {"type": "response.output_item.done", "output_index": 0, "item": rs},
        {"type": "response.completed",
         "response": response("completed", [{**rs, "encrypted_content": "B"}])},
    ]  # fmt: skip
    check_stream(renumber(ev))

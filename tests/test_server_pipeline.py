"""The server's pipeline (rxresponses.server._pipeline): tool names mapped back, custom tool calls.

Unit tests without a server: scripted Chat bytes -> server_pipeline -> typed events, and the
events checked against the official SDK's types (the oracle).
"""

from __future__ import annotations

import json

import pydantic
import pytest
import reactivex
from openai.types.responses import ResponseStreamEvent as SDKEvent

from rxresponses import from_bytes, get_final_response, iterate
from rxresponses.scripted import ScriptedToolCall, ScriptedTurn, chat_chunks, chat_sse
from rxresponses.server._pipeline import ToolNameStage, custom_input, server_pipeline
from rxresponses.server._request import ToolName, translate_request
from rxresponses.types._base import to_dict
from rxresponses.types.events import (
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
)
from rxresponses.types.response import ResponseFunctionToolCall

SDK_EVENT = pydantic.TypeAdapter(SDKEvent)

REQUEST = {
    "model": "m",
    "input": "go",
    "reasoning": {"summary": "auto"},
    "tools": [
        {
            "type": "namespace",
            "name": "crm",
            "description": "The CRM.",
            "tools": [{"type": "function", "name": "lookup", "parameters": None, "strict": None}],
        },
        {"type": "custom", "name": "apply_patch"},
        {"type": "function", "name": "plain", "parameters": None, "strict": None},
    ],
}


def run(turn: ScriptedTurn):
    translation = translate_request(REQUEST)
    source = from_bytes(list(chat_sse(chat_chunks(turn))))
    events = list(
        iterate(source.pipe(server_pipeline(translation, response_id="resp_1", created_at=1)))
    )
    final = get_final_response(reactivex.from_iterable(events))
    return events, final


def test_namespaced_custom_and_plain_calls_come_back_in_their_responses_shape():
    patch = "*** Begin Patch\n*** Update File: a.py\n-x\n+y\n*** End Patch"
    turn = ScriptedTurn(
        reasoning="Three calls.",
        tool_calls=(
            ScriptedToolCall("crm__lookup", '{"id": 7}'),
            ScriptedToolCall("apply_patch", json.dumps({"input": patch})),
            ScriptedToolCall("plain", "{}"),
        ),
    )
    events, final = run(turn)
    for event in events:
        SDK_EVENT.validate_python(to_dict(event))  # every event is valid for the official SDK
    assert [e.sequence_number for e in events] == list(range(len(events)))
    types = [e.type for e in events]
    assert types.count("response.custom_tool_call_input.delta") == 1
    assert types.count("response.custom_tool_call_input.done") == 1
    assert types.count("response.function_call_arguments.done") == 2
    assert types[-1] == "response.completed"

    done_items = [to_dict(e.item) for e in events if e.type == "response.output_item.done"]
    assert done_items[0]["type"] == "reasoning"
    assert done_items[1] == {
        "id": done_items[1]["id"],
        "type": "function_call",
        "status": "completed",
        "arguments": '{"id": 7}',
        "call_id": "call_scripted_0",
        "name": "lookup",
        "namespace": "crm",
    }
    assert done_items[2] == {
        "id": done_items[2]["id"],
        "type": "custom_tool_call",
        "call_id": "call_scripted_1",
        "name": "apply_patch",
        "input": patch,
        "status": "completed",
    }
    assert done_items[3]["name"] == "plain"
    assert "namespace" not in done_items[3]

    custom_id = done_items[2]["id"]
    assert not any(
        e.type.startswith("response.function_call_arguments") and e.item_id == custom_id
        for e in events
    )
    input_done = next(e for e in events if e.type == "response.custom_tool_call_input.done")
    assert (input_done.item_id, input_done.input) == (custom_id, patch)

    # the final Response (and response.completed) carry the restored items
    completed = to_dict(events[-1].response)["output"]
    assert [to_dict(i) for i in final.output] == completed == done_items


def test_reasoning_summary_mode():
    events, _ = run(ScriptedTurn(reasoning="Thinking.", text="Hi."))
    summary = [e for e in events if e.type.startswith("response.reasoning_summary")]
    assert summary
    assert {e.summary_index for e in summary} == {0}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [('{"input": "abc"}', "abc"), ("raw text", "raw text"), ('{"other": 1}', '{"other": 1}')],
)
def test_custom_input(arguments, expected):
    assert custom_input(arguments) == expected


def test_stage_passes_unknown_calls_through_unchanged():
    stage = ToolNameStage({"crm__lookup": ToolName("lookup", "crm")})
    item = ResponseFunctionToolCall(id="fc_1", call_id="c", name="other", status="in_progress")
    added = ResponseOutputItemAddedEvent(output_index=0, item=item)
    delta = ResponseFunctionCallArgumentsDeltaEvent(item_id="fc_1", output_index=0, delta="{}")
    done = ResponseFunctionCallArgumentsDoneEvent(item_id="fc_1", output_index=0, arguments="{}")
    finished = ResponseOutputItemDoneEvent(output_index=0, item=item)
    for event in (added, delta, done, finished):
        assert stage.handle(event) == [event]
    assert added.item is item


def test_the_feed_delivers_like_a_subject_to_its_one_subscriber() -> None:
    from reactivex import operators as ops

    from rxresponses.server.app import _Feed

    feed = _Feed()
    feed.on_next(b"before")  # nobody subscribed yet: dropped, as a Subject drops it
    got: list[object] = []
    subscription = feed.observable.pipe(ops.map(bytes.upper)).subscribe(
        got.append, lambda e: got.append(f"error {e}"), lambda: got.append("done")
    )
    feed.on_next(b"a")
    feed.on_next(b"b")
    feed.on_completed()
    feed.on_next(b"after")  # ended: ignored
    feed.on_error(ValueError("late"))
    assert got == [b"A", b"B", "done"]
    subscription.dispose()

    failed = _Feed()
    out: list[object] = []
    sub = failed.observable.subscribe(out.append, lambda e: out.append(f"error {e}"))
    failed.on_next(b"x")
    failed.on_error(ValueError("cut"))
    failed.on_next(b"y")
    assert out == [b"x", "error cut"]
    sub.dispose()

    disposed = _Feed()
    seen: list[bytes] = []
    disposed.observable.subscribe(seen.append).dispose()
    disposed.on_next(b"z")  # the subscriber left: nothing is delivered
    assert seen == []


def test_text_passes_the_servers_own_stages_whole_and_an_upstream_error_is_masked() -> None:
    # The tool-name and redaction stages act on a few event and signal types; the deltas pass
    # them by. Cut the stream after a restored call and some text, with an upstream error that
    # quotes a key: every character that came is kept, the call has its name back, the key is
    # masked, and the stream ends once, failed.
    translation = translate_request(REQUEST)
    turn = ScriptedTurn(
        text="Looking it up now, one moment.",
        tool_calls=(ScriptedToolCall("crm__lookup", '{"id": 7}'),),
    )
    chunks = [
        c for c in chat_chunks(turn) if not c["choices"] or not c["choices"][0]["finish_reason"]
    ]
    chunks = [c for c in chunks if c["choices"]]  # no usage chunk: the stream is cut
    error = {"error": {"message": "Incorrect API key provided: sk-live-0123456789", "code": "x"}}
    body = [*list(chat_sse(chunks))[:-1], b"data: " + json.dumps(error).encode() + b"\n\n"]
    events = list(
        iterate(
            from_bytes(body).pipe(
                server_pipeline(
                    translation,
                    response_id="resp_1",
                    created_at=1,
                    redact=lambda text: text.replace("sk-live-0123456789", "***"),
                )
            )
        )
    )
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Looking it up now, one moment."
    added = [e.item for e in events if e.type == "response.output_item.added"]
    assert [(i.type, getattr(i, "name", None), getattr(i, "namespace", None)) for i in added] == [
        ("message", None, None),
        ("function_call", "lookup", "crm"),
    ]
    arguments = "".join(
        e.delta for e in events if e.type == "response.function_call_arguments.delta"
    )
    assert arguments == '{"id": 7}'
    terminal = [e for e in events if e.type in ("response.completed", "response.failed")]
    assert [e.type for e in terminal] == ["response.failed"]
    assert events[-1] is terminal[0]
    assert terminal[0].response.error.message == "x: Incorrect API key provided: ***"
    assert "sk-live" not in json.dumps([to_dict(e) for e in events])

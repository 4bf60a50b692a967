"""Reasoning text events under either name: OpenAI's ``response.reasoning_text.delta`` / ``.done``
(written by default) and the Open Responses specification's ``response.reasoning.delta`` /
``.done`` (written on request). Both are parsed and folded.
"""

from __future__ import annotations

from typing import Any

import pytest
import reactivex

from rxresponses import operators as rxo
from rxresponses.bridges import get_final_response, iterate
from rxresponses.errors import UpstreamError
from rxresponses.pipelines import (
    chat_sse_to_responses,
    chat_to_responses,
    chat_to_responses_composed,
    responses_sse_to_events,
)
from rxresponses.sources import from_bytes
from rxresponses.types._base import to_dict
from rxresponses.types.events import ResponseReasoningDeltaEvent, ResponseReasoningDoneEvent
from tests._util import Ids, chunk, sse_body

CHUNKS = [
    chunk({"role": "assistant", "reasoning_content": "Let me "}),
    chunk({"reasoning_content": "think."}),
    chunk({"content": "Hi"}),
    chunk({}, "stop"),
]
SPEC = {"response.reasoning.delta", "response.reasoning.done"}
OPENAI = {"response.reasoning_text.delta", "response.reasoning_text.done"}


def _types(events: list[Any]) -> list[str]:
    return [e.type for e in events]


def _run(names: Any, *, fused: bool) -> list[Any]:
    body = [sse_body(CHUNKS)]
    if fused:
        op = chat_sse_to_responses(response_id="resp_1", ids=Ids(), reasoning_events=names)
        return list(iterate(from_bytes(body).pipe(op)))
    op = chat_to_responses_composed(response_id="resp_1", ids=Ids(), reasoning_events=names)
    return list(iterate(from_bytes(body).pipe(rxo.decode_sse(), rxo.parse_chunks(), op)))


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_openai_names_by_default_and_the_spec_names_on_request(fused: bool) -> None:
    default = _run("openai", fused=fused)
    spec = _run("open-responses", fused=fused)
    assert set(_types(default)) >= OPENAI
    assert not SPEC & set(_types(default))
    assert set(_types(spec)) >= SPEC
    assert not OPENAI & set(_types(spec))
    # Nothing else differs: the same events, numbered alike, the same final Response.
    renamed = {
        "response.reasoning.delta": "response.reasoning_text.delta",
        "response.reasoning.done": "response.reasoning_text.done",
    }
    spec_dicts = [to_dict(e) for e in spec]
    for d in spec_dicts:
        d["type"] = renamed.get(d["type"], d["type"])
    default_dicts = [to_dict(e) for e in default]
    for d in spec_dicts + default_dicts:
        if isinstance(d.get("response"), dict):
            d["response"].pop("completed_at", None)
    assert spec_dicts == default_dicts
    delta = next(e for e in spec if e.type == "response.reasoning.delta")
    assert isinstance(delta, ResponseReasoningDeltaEvent)
    assert (delta.output_index, delta.content_index, delta.delta) == (0, 0, "Let me ")


def test_chat_to_responses_takes_the_option_too() -> None:
    source = reactivex.from_iterable([sse_body(CHUNKS)])
    events = list(
        iterate(
            source.pipe(
                rxo.decode_sse(),
                rxo.parse_chunks(),
                chat_to_responses(reasoning_events="open-responses"),
            )
        )
    )
    assert set(_types(events)) >= SPEC


SPEC_STREAM = b"".join(
    b"event: " + t.encode() + b"\ndata: " + d + b"\n\n"
    for t, d in [
        (
            "response.created",
            b'{"type":"response.created","sequence_number":0,"response":{"id":"resp_9",'
            b'"object":"response","created_at":1,"model":"m","status":"in_progress","output":[]}}',
        ),
        (
            "response.output_item.added",
            b'{"type":"response.output_item.added","sequence_number":1,"output_index":0,'
            b'"item":{"id":"rs_1","type":"reasoning","summary":[],"content":[]}}',
        ),
        (
            "response.content_part.added",
            b'{"type":"response.content_part.added","sequence_number":2,"item_id":"rs_1",'
            b'"output_index":0,"content_index":0,"part":{"type":"reasoning_text","text":""}}',
        ),
        (
            "response.reasoning.delta",
            b'{"type":"response.reasoning.delta","sequence_number":3,"item_id":"rs_1",'
            b'"output_index":0,"content_index":0,"delta":"Two and "}',
        ),
        (
            "response.reasoning.delta",
            b'{"type":"response.reasoning.delta","sequence_number":4,"item_id":"rs_1",'
            b'"output_index":0,"content_index":0,"delta":"two"}',
        ),
    ]
)


def test_a_stream_with_the_spec_names_parses_and_folds() -> None:
    events = list(iterate(from_bytes([SPEC_STREAM]).pipe(responses_sse_to_events())))
    assert [type(e) for e in events[3:]] == [ResponseReasoningDeltaEvent] * 2
    final = get_final_response(from_bytes([SPEC_STREAM]).pipe(responses_sse_to_events()))
    assert final.output[0].content is not None
    assert final.output[0].content[0].text == "Two and two"
    done = (
        b'event: response.reasoning.done\ndata: {"type":"response.reasoning.done",'
        b'"sequence_number":5,"item_id":"rs_1","output_index":0,"content_index":0,'
        b'"text":"Two and two make four"}\n\n'
    )
    events = list(iterate(from_bytes([SPEC_STREAM + done]).pipe(responses_sse_to_events())))
    assert isinstance(events[-1], ResponseReasoningDoneEvent)
    final = get_final_response(from_bytes([SPEC_STREAM + done]).pipe(responses_sse_to_events()))
    assert final.output[0].content is not None
    assert final.output[0].content[0].text == "Two and two make four"  # .done replaces


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_a_cut_stream_closes_its_reasoning_part_with_the_chosen_name(fused: bool) -> None:
    body = sse_body(CHUNKS[:2], done=False)
    source = reactivex.concat(
        reactivex.from_iterable([body]), reactivex.throw(UpstreamError("cut"))
    )
    if fused:
        op = chat_sse_to_responses(reasoning_events="open-responses")
        events = list(iterate(source.pipe(op)))
    else:
        composed = chat_to_responses_composed(reasoning_events="open-responses")
        events = list(iterate(source.pipe(rxo.decode_sse(), rxo.parse_chunks(), composed)))
    types = _types(events)
    assert types[-1] == "response.failed"
    assert "response.reasoning.done" in types
    assert not OPENAI & set(types)
    done = events[types.index("response.reasoning.done")]
    assert done.text == "Let me think."


def test_an_unknown_name_is_refused_when_the_pipeline_is_built() -> None:
    with pytest.raises(ValueError, match="open-responses"):
        rxo.collect_reasoning(event_names="spec")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="open-responses"):
        chat_sse_to_responses(reasoning_events="spec")  # type: ignore[arg-type]

"""Properties (hypothesis) of the Chat -> Responses conversion and the SSE decoding.

* The same upstream bytes, split at arbitrary boundaries (inside UTF-8 characters, inside CRLF
  pairs, inside ``<think>`` tags), give exactly the same events.
* The same content, fragmented into chunks differently (tags cut at any position), gives the same
  final response, whose text and reasoning are the generated ones.
* For every item the concatenated deltas equal its ``.done`` value and the final object's; the
  sequence numbers run 0..N-1; the grammar holds.

Streams are generated here (random text with non-ASCII characters, line separators, ``<`` and
tag fragments; reasoning as a ``<think>`` prefix or as ``reasoning_content``; tool calls;
several finish reasons). ``completed_at`` (the wall clock) is left out of comparisons.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from typing import Any

import hypothesis.strategies as st
import openai.types.responses as sdk_types
import pydantic
from hypothesis import HealthCheck, assume, given, settings

from rxresponses.pipelines import chat_sse_to_responses
from rxresponses.sources import from_bytes
from rxresponses.sse import SSEDecoder
from tests._util import Ids, chunk, dumps
from tests.grammar import check_stream

SDK_EVENT = pydantic.TypeAdapter(sdk_types.ResponseStreamEvent)

PROPERTY = settings(
    max_examples=int(os.environ.get("RXR_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TRICKY = [
    *list("<>/thinkTHINK \n\r\t"),
    "\u2028",
    "\u2029",
    "\x85",
    "é",
    "日",
    "🤖",
    "𝄞",
    '"',
    "\\",
]
TEXT = st.text(
    alphabet=st.one_of(st.sampled_from(TRICKY), st.characters(blacklist_categories=("Cs",))),
    max_size=40,
)


@dataclass
class Turn:
    reasoning: str
    reasoning_mode: str  # "think" | "field" | "none"
    answer: str
    calls: list[tuple[str, str]]
    finish: str | None
    usage: bool
    refusal: str = ""

    @property
    def content(self) -> str:
        if self.reasoning_mode == "think":
            return f"<think>{self.reasoning}</think>{self.answer}"
        return self.answer

    @property
    def expected_text(self) -> str:
        # after </think>, whitespace before the answer is dropped
        return self.answer.lstrip() if self.reasoning_mode == "think" else self.answer

    @property
    def expected_reasoning(self) -> str:
        return self.reasoning if self.reasoning_mode != "none" else ""


@st.composite
def turns(draw: st.DrawFn) -> Turn:
    mode = draw(st.sampled_from(["think", "field", "none"]))
    reasoning = draw(TEXT)
    answer = draw(TEXT)
    assume("</think>" not in reasoning)
    assume(not answer.lstrip().startswith("<think>"))
    if mode == "think":
        # "<think>x</think>" followed by an answer that is only whitespace, or a reasoning cut at
        # the end: keep the generated expectations simple and exact.
        assume(reasoning)
    calls = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["get_weather", "lookup", "f"]),
                TEXT.map(lambda t: json.dumps({"q": t}, ensure_ascii=False)),
            ),
            max_size=2,
        )
    )
    finish = draw(st.sampled_from(["stop", "length", "content_filter", None]))
    if calls and finish == "stop":
        finish = "tool_calls"
    refusal = draw(TEXT) if draw(st.integers(0, 4)) == 0 else ""
    return Turn(reasoning, mode, answer, calls, finish, draw(st.booleans()), refusal)


def cuts(draw: st.DrawFn, text: str, max_cuts: int = 8) -> list[str]:
    """``text`` split at random positions (any position, so tags are cut everywhere)."""
    if not text:
        return []
    points = sorted(set(draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=max_cuts))))
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if text[a:b]]


def chunks_for(turn: Turn, draw: st.DrawFn) -> list[dict[str, Any]]:
    out = [chunk({"role": "assistant", "content": ""})]
    if turn.reasoning_mode == "field":
        out += [
            chunk({"reasoning_content": p, "content": None}) for p in cuts(draw, turn.reasoning)
        ]
    out += [chunk({"content": p}) for p in cuts(draw, turn.content)]
    out += [chunk({"refusal": p}) for p in cuts(draw, turn.refusal)]
    for index, (name, arguments) in enumerate(turn.calls):
        pieces = cuts(draw, arguments, 4) or [""]
        out.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": f"call_{index}",
                            "type": "function",
                            "function": {"name": name, "arguments": pieces[0]},
                        }
                    ]
                }
            )
        )
        out += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]})
            for p in pieces[1:]
        ]
    if turn.finish is not None:
        out.append(chunk({}, turn.finish))
    if turn.usage:
        out.append(
            chunk(choices=[], usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
        )
    return out


def body_of(chunks: list[dict[str, Any]], eol: str) -> bytes:
    text = (
        "".join(f"data: {json.dumps(c, ensure_ascii=False)}{eol}{eol}" for c in chunks)
        + f"data: [DONE]{eol}{eol}"
    )
    return text.encode("utf-8")


def convert(pieces: list[bytes]) -> list[dict[str, Any]]:
    values: list[Any] = []
    errors: list[Exception] = []
    from_bytes(pieces).pipe(
        chat_sse_to_responses(ids=Ids(), response_id="resp_p", created_at=1)
    ).subscribe(values.append, errors.append)
    assert errors == []
    return dumps(values, wall_clock=False)


def split_bytes(draw: st.DrawFn, body: bytes) -> list[bytes]:
    points = sorted(set(draw(st.lists(st.integers(1, len(body) - 1), max_size=30))))
    bounds = [0, *points, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]


# -- properties -----------------------------------------------------------------------------------


@PROPERTY
@given(data=st.data(), turn=turns(), eol=st.sampled_from(["\n", "\r\n", "\r"]))
def test_byte_boundaries_do_not_change_the_events(
    data: st.DataObject, turn: Turn, eol: str
) -> None:
    body = body_of(chunks_for(turn, data.draw), eol)
    whole = convert([body])
    assert convert(split_bytes(data.draw, body)) == whole
    # one byte at a time: every UTF-8 sequence and every CRLF pair cut
    assert convert([body[i : i + 1] for i in range(len(body))]) == whole


@PROPERTY
@given(data=st.data(), turn=turns())
def test_fragmentation_does_not_change_the_result(data: st.DataObject, turn: Turn) -> None:
    first = convert([body_of(chunks_for(turn, data.draw), "\n")])
    second = convert([body_of(chunks_for(turn, data.draw), "\n")])
    a, b = first[-1]["response"], second[-1]["response"]
    assert a["output"] == b["output"]
    assert (a["status"], a["usage"]) == (b["status"], b["usage"])
    assert [e["type"] for e in first if "delta" not in e["type"]] == [
        e["type"] for e in second if "delta" not in e["type"]
    ]
    # ...and the result holds what was generated
    output = a["output"]
    text = "".join(
        p["text"]
        for i in output
        if i["type"] == "message"
        for p in i["content"]
        if p["type"] == "output_text"
    )
    reasoning = "".join(p["text"] for i in output if i["type"] == "reasoning" for p in i["content"])
    assert text == turn.expected_text
    refusal = "".join(
        p["refusal"]
        for i in output
        if i["type"] == "message"
        for p in i["content"]
        if p["type"] == "refusal"
    )
    assert refusal == turn.refusal
    assert reasoning == turn.expected_reasoning
    calls = [(i["name"], i["arguments"]) for i in output if i["type"] == "function_call"]
    assert calls == turn.calls
    expected_status = {
        "stop": "completed",
        "tool_calls": "completed",
        "length": "incomplete",
        "content_filter": "incomplete",
        None: "failed",
    }[turn.finish]
    assert a["status"] == expected_status
    if turn.usage:
        assert a["usage"]["input_tokens"] == 3
        assert a["usage"]["output_tokens"] == 4


@PROPERTY
@given(data=st.data(), turn=turns())
def test_deltas_join_to_done_and_sequence_is_dense(data: st.DataObject, turn: Turn) -> None:
    events = convert([body_of(chunks_for(turn, data.draw), "\n")])
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    check_stream(events)
    # deltas per (item, part) joined == the .done value == the final object's
    joined: dict[tuple[str, int], str] = {}
    for e in events:
        if e["type"].endswith(".delta"):
            key = (e["item_id"], e.get("content_index", 0))
            joined[key] = joined.get(key, "") + e["delta"]
    final = {i["id"]: i for i in events[-1]["response"]["output"]}
    for (item_id, index), text in joined.items():
        item = final[item_id]
        if item["type"] == "function_call":
            assert item["arguments"] == text
        else:
            part = item["content"][index]
            assert part.get("text", part.get("refusal")) == text


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_sse_decoder_boundaries_on_random_frames(data: st.DataObject) -> None:
    # random frames (data lines with any text, comments, event names), random line ends, random
    # byte splits: the decoder yields the same messages as for the whole body
    frames = data.draw(
        st.lists(
            st.tuples(
                st.lists(
                    TEXT.map(lambda t: t.replace("\r", "").replace("\n", "")),
                    min_size=1,
                    max_size=3,
                ),
                st.one_of(st.none(), st.sampled_from(["e", "response.created", "ü"])),
                st.booleans(),
            ),
            max_size=6,
        )
    )
    eol = data.draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = ""
    for lines, event, comment in frames:
        if comment:
            text += f": keep-alive ✓{eol}"
        if event is not None:
            text += f"event: {event}{eol}"
        text += "".join(f"data: {line}{eol}" for line in lines) + eol
    body = text.encode()
    assume(len(body) > 1)

    def decode(pieces: list[bytes]) -> list[Any]:
        d = SSEDecoder()
        out = []
        for p in pieces:
            out += d.feed(p)
        return out + d.flush()

    whole = decode([body])
    expected = [
        ("\n".join(lines), event)
        for lines, event, _ in frames
        if "\n".join(lines)  # empty data dispatches nothing
    ]
    assert [(m.data, m.event) for m in whole] == expected
    assert decode(split_bytes(data.draw, body)) == whole


def test_property_generator_reaches_the_interesting_cases() -> None:
    # a cheap guard that the strategies really produce tags cut inside and multi-byte text
    body = body_of(
        [chunk({"content": "<thi"}), chunk({"content": "nk>é</th"}), chunk({"content": "ink>ok"})],
        "\r\n",
    )
    events = convert([body[i : i + 1] for i in range(len(body))])
    out = events[-1]["response"]["output"]
    assert [i["type"] for i in out] == ["reasoning", "message"]
    assert out[0]["content"][0]["text"] == "é"
    assert out[1]["content"][0]["text"] == "ok"


# -- any chunk sequence, however odd, gives a well-formed stream ---------------------------------


@st.composite
def odd_deltas(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            ["content", "refusal", "reasoning_content", "reasoning", "details", "tool", "empty"]
        )
    )
    text = draw(TEXT)
    if kind == "details":
        return {"reasoning_details": [{"type": "reasoning.text", "text": text}]}
    if kind == "tool":
        call: dict[str, Any] = {}
        if draw(st.booleans()):
            call["index"] = draw(st.integers(0, 2))
        if draw(st.booleans()):
            call["id"] = draw(st.sampled_from(["call_a", "call_b", "call_c"]))
        fn: dict[str, Any] = {"arguments": text}
        if draw(st.booleans()):
            fn["name"] = draw(st.sampled_from(["f", "g"]))
        call["function"] = fn
        return {"tool_calls": [call]}
    if kind == "empty":
        return {}
    return {kind: text}


@st.composite
def odd_streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = [chunk(d) for d in draw(st.lists(odd_deltas(), max_size=12))]
    ending = draw(
        st.sampled_from(["stop", "length", "tool_calls", "content_filter", "error", None])
    )
    if ending == "error":
        out.append(chunk(choices=[], error={"code": 500, "message": "upstream broke"}))
    elif ending is not None:
        out.append(chunk({}, ending))
    if draw(st.booleans()):
        out.append(
            chunk(choices=[], usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})
        )
    return out


@PROPERTY
@given(chunks=odd_streams())
def test_any_chunk_sequence_gives_a_well_formed_stream(chunks: list[dict[str, Any]]) -> None:
    events = convert([body_of(chunks, "\n")])
    check_stream(events)
    for event in events:
        SDK_EVENT.validate_python(event)

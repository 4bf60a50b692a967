"""redact_text(): secrets masked in streamed text wherever the deltas split them."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st

from rxresponses import get_final_response
from rxresponses import operators as rxo
from rxresponses.operators._redact_text import RedactStage
from rxresponses.types.chat import parse_chunk
from rxresponses.types.signals import (
    ItemFinished,
    ItemStarted,
    ReasoningDelta,
    RefusalDelta,
    StreamFinished,
    TextDelta,
    ToolCallDelta,
)

SECRET = "sk-live-1234"


def run(stage: RedactStage, values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        result = stage.handle(value)
        out.extend([value] if result is None else result)
    out.extend(stage.finish())
    return out


def text_of(values: list[Any], item_id: str = "msg_1") -> str:
    return "".join(v.text for v in values if isinstance(v, TextDelta) and v.item_id == item_id)


def test_a_secret_split_over_deltas_is_masked_and_only_its_possible_start_waits() -> None:
    out = run(
        RedactStage([SECRET]),
        [
            ItemStarted("message", "msg_1", 0),
            TextDelta("msg_1", 0, "key: sk-li"),
            TextDelta("msg_1", 0, "ve-12"),
            TextDelta("msg_1", 0, "34, ok"),
            ItemFinished("message", "msg_1", 0),
        ],
    )
    assert out == [
        ItemStarted("message", "msg_1", 0),
        TextDelta("msg_1", 0, "key: "),
        TextDelta("msg_1", 0, "[redacted], ok"),
        ItemFinished("message", "msg_1", 0),
    ]


def test_a_possible_start_that_does_not_become_a_secret_goes_on_before_the_item_ends() -> None:
    out = run(
        RedactStage([SECRET], replacement="***"),
        [
            TextDelta("msg_1", 0, "see sk-"),
            TextDelta("msg_1", 0, "li"),
            TextDelta("msg_1", 0, "st sk-live"),
            ItemFinished("message", "msg_1", 0),
            StreamFinished("completed"),
        ],
    )
    assert out == [
        TextDelta("msg_1", 0, "see "),
        TextDelta("msg_1", 0, "sk-list "),
        TextDelta("msg_1", 0, "sk-live"),  # held to the item's end, never a whole secret
        ItemFinished("message", "msg_1", 0),
        StreamFinished("completed"),
    ]


def test_text_without_a_secret_passes_unchanged_with_its_logprobs() -> None:
    logprobs = [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}]
    delta = TextDelta("msg_1", 0, "Hi", logprobs)
    out = run(RedactStage([SECRET]), [delta])
    assert out == [delta]
    assert out[0] is delta
    masked = run(RedactStage(["Hi"]), [TextDelta("msg_1", 0, "Hi there", logprobs)])
    assert masked == [TextDelta("msg_1", 0, "[redacted] there", None)]


def test_parts_and_items_are_kept_apart_and_tool_arguments_left_alone() -> None:
    out = run(
        RedactStage(["abc"]),
        [
            ReasoningDelta("rs_1", 0, "a"),
            TextDelta("msg_1", 1, "b"),  # another item: "a" + "b" is no start of a secret
            RefusalDelta("msg_1", 1, "ab"),
            ToolCallDelta("fc_1", 2, '{"x": "abc"}'),
            ReasoningDelta("rs_1", 0, "bc"),
            ItemFinished("reasoning", "rs_1", 0),
            RefusalDelta("msg_1", 1, "c!"),
        ],
    )
    assert out == [
        TextDelta("msg_1", 1, "b"),
        ToolCallDelta("fc_1", 2, '{"x": "abc"}'),
        ReasoningDelta("rs_1", 0, "[redacted]"),
        ItemFinished("reasoning", "rs_1", 0),
        RefusalDelta("msg_1", 1, "[redacted]!"),
    ]


def test_leftmost_then_longest_like_one_pass_over_the_whole_text() -> None:
    secrets = ["abcd", "dxyz", "ab", "abcdef"]
    text = "zabcdxyz abcdeg ab"
    out = run(RedactStage(secrets, "#"), [TextDelta("m", 0, c) for c in text])
    assert text_of(out, "m") == "z#xyz #eg #"


def test_bad_arguments_are_refused_when_the_pipeline_is_built() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        rxo.redact_text([])
    with pytest.raises(ValueError, match="no empty one"):
        rxo.redact_text(["x", ""])


@pytest.mark.parametrize("cut", range(len(SECRET) + 1))
def test_every_cut_of_the_secret_is_masked_in_the_final_response(cut: int) -> None:
    text = f"Your key is {SECRET}."
    at = len("Your key is ") + cut
    chunks = [
        {"id": "c", "model": "m", "created": 0, "choices": [{"index": 0, "delta": delta}]}
        for delta in ({"role": "assistant"}, {"content": text[:at]}, {"content": text[at:]})
    ] + [
        {
            "id": "c",
            "model": "m",
            "created": 0,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
    ]
    events = reactivex.from_iterable([parse_chunk(json.dumps(c)) for c in chunks]).pipe(
        rxo.split_by_item(),
        rxo.redact_text([SECRET]),
        rxo.accumulate_text(),
        rxo.assemble(),
    )
    seen: list[Any] = []
    response = get_final_response(events.pipe(reactivex.operators.do_action(seen.append)))
    streamed = "".join(e.delta for e in seen if e.type == "response.output_text.delta")
    assert streamed == "Your key is [redacted]."
    assert response.output_text == "Your key is [redacted]."
    assert all(SECRET not in str(e) for e in seen)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["sk-1", "sk-12", "2x", "aa"]), min_size=1, max_size=3),
    st.text(alphabet="sk-12xa ", max_size=40),
    st.lists(st.integers(min_value=0, max_value=40), max_size=8),
)
def test_any_split_gives_the_one_pass_result(
    secrets: list[str], text: str, cuts: list[int]
) -> None:
    bounds = sorted({0, len(text), *(min(c, len(text)) for c in cuts)})
    deltas = [TextDelta("m", 0, text[a:b]) for a, b in itertools.pairwise(bounds)]
    out = run(RedactStage(secrets, "<>"), [*deltas, ItemFinished("message", "m", 0)])
    ordered = sorted(set(secrets), key=len, reverse=True)
    expected = re.sub("|".join(map(re.escape, ordered)), "<>", text)
    assert text_of(out, "m") == expected
    assert isinstance(out[-1], ItemFinished)

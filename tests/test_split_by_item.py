"""ChunkSplitter, driven chunk by chunk without Rx: every provider quirk, one test each.

Expected signals are written out by hand. Ids come from a deterministic factory
(``msg_1``, ``rs_1``, ``fc_1``, ``call_1``... numbered per prefix).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from rxresponses.operators._split_by_item import ChunkSplitter, ThinkTagSplitter
from rxresponses.sse import SSEMessage
from rxresponses.types._base import to_dict
from rxresponses.types.chat import parse_chunk
from rxresponses.types.signals import (
    CitedSource,
    ItemFinished,
    ItemStarted,
    ReasoningDelta,
    RefusalDelta,
    Signal,
    StreamFinished,
    StreamStarted,
    TextDelta,
    ToolCallDelta,
    UrlCitation,
)

MODEL = "test-model"
CREATED = 1_700_000_000
CID = "chatcmpl-1"
START = StreamStarted(MODEL, CREATED, CID)


class Ids:
    """Deterministic id factory: ``<prefix>_<n>``, n counting from 1 per prefix."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)

    def __call__(self, prefix: str) -> str:
        self.counts[prefix] += 1
        return f"{prefix}_{self.counts[prefix]}"


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    *,
    index: int = 0,
    choices: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    if choices is None:
        choices = [{"index": index, "delta": delta or {}, "finish_reason": finish}]
    return {
        "id": CID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": choices,
        **extra,
    }


def usage_chunk(usage: dict[str, Any]) -> dict[str, Any]:
    return chunk(choices=[], usage=usage)


def split(chunks: list[dict[str, Any]], *, finish: bool = True, **kw: Any) -> list[Signal]:
    s = ChunkSplitter(ids=Ids(), **kw)
    out: list[Signal] = []
    for c in chunks:
        out += s.handle(parse_chunk(json.dumps(c)))
    if finish:
        out += s.finish()
    return out


def tool(
    index: int | None = None,
    id: str | None = None,
    name: str | None = None,
    arguments: str | None = None,
) -> dict[str, Any]:
    tc: dict[str, Any] = {}
    if index is not None:
        tc["index"] = index
    if id is not None:
        tc["id"] = id
        tc["type"] = "function"
    fn: dict[str, Any] = {}
    if name is not None:
        fn["name"] = name
    if arguments is not None:
        fn["arguments"] = arguments
    if fn:
        tc["function"] = fn
    return tc


def tools(*calls: dict[str, Any]) -> dict[str, Any]:
    return {"tool_calls": list(calls)}


def joined(signals: list[Signal], cls: type, attr: str = "text") -> dict[str, str]:
    out: dict[str, str] = defaultdict(str)
    for s in signals:
        if isinstance(s, cls):
            out[s.item_id] += getattr(s, attr)  # type: ignore[attr-defined]
    return dict(out)


COMPLETED = StreamFinished("completed")
USAGE_20_5 = {
    "prompt_tokens": 20,
    "completion_tokens": 5,
    "total_tokens": 25,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 2},
}
USAGE_20_5_MAPPED = {
    "input_tokens": 20,
    "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
    "output_tokens": 5,
    "output_tokens_details": {"reasoning_tokens": 2},
    "total_tokens": 25,
}


# -- text, refusal --


def test_text() -> None:
    signals = split(
        [
            chunk({"role": "assistant", "content": "", "refusal": None}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop"),
        ]
    )
    assert signals == [
        START,
        ItemStarted("message", "msg_1", 0),
        TextDelta("msg_1", 0, "Hel"),
        TextDelta("msg_1", 0, "lo"),
        ItemFinished("message", "msg_1", 0),
        COMPLETED,
    ]


def test_refusal() -> None:
    signals = split(
        [
            chunk({"role": "assistant", "content": None, "refusal": ""}),
            chunk({"refusal": "I can't"}),
            chunk({"refusal": " help."}),
            chunk({}, "stop"),
        ]
    )
    assert signals == [
        START,
        ItemStarted("message", "msg_1", 0),
        RefusalDelta("msg_1", 0, "I can't"),
        RefusalDelta("msg_1", 0, " help."),
        ItemFinished("message", "msg_1", 0),
        COMPLETED,
    ]


def test_text_logprobs_mapped_to_responses_shape() -> None:
    lp = {
        "content": [
            {
                "token": "Hi",
                "bytes": [72, 105],
                "logprob": -0.5,
                "top_logprobs": [{"token": "Hi", "bytes": [72, 105], "logprob": -0.5}],
            }
        ],
        "refusal": None,
    }
    signals = split(
        [
            chunk(choices=[{"index": 0, "delta": {"content": "Hi"}, "logprobs": lp}]),
            chunk({}, "stop"),
        ]
    )
    assert signals[2] == TextDelta(
        "msg_1",
        0,
        "Hi",
        [
            {
                "token": "Hi",
                "logprob": -0.5,
                "bytes": [72, 105],
                "top_logprobs": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105]}],
            }
        ],
    )


def test_role_repeated_on_every_delta_is_ignored() -> None:
    signals = split(
        [
            chunk({"role": "assistant", "content": "a"}),
            chunk({"role": "assistant", "content": "b"}),
            chunk({"role": "assistant"}, "stop"),
        ]
    )
    assert joined(signals, TextDelta) == {"msg_1": "ab"}


# -- reasoning --


@pytest.mark.parametrize(
    ("field", "first", "second"),
    [
        ("reasoning_content", "Let me ", "think."),
        ("reasoning", "Let me ", "think."),
        (
            "reasoning_details",
            [{"type": "reasoning.text", "text": "Let me ", "index": 0, "format": "unknown"}],
            [{"type": "reasoning.text", "text": "think.", "index": 0, "format": "unknown"}],
        ),
    ],
)
def test_reasoning_from_each_field(field: str, first: Any, second: Any) -> None:
    signals = split(
        [
            chunk({"role": "assistant", "content": None, field: first}),
            chunk({"content": None, field: second}),
            chunk({"content": "Answer"}),
            chunk({}, "stop"),
        ]
    )
    assert signals == [
        START,
        ItemStarted("reasoning", "rs_1", 0),
        ReasoningDelta("rs_1", 0, "Let me "),
        ReasoningDelta("rs_1", 0, "think."),
        ItemFinished("reasoning", "rs_1", 0),
        ItemStarted("message", "msg_1", 1),
        TextDelta("msg_1", 1, "Answer"),
        ItemFinished("message", "msg_1", 1),
        COMPLETED,
    ]


def test_reasoning_in_two_fields_counts_once() -> None:
    # OpenRouter sends the same text in ``reasoning`` and ``reasoning_details``
    detail = [{"type": "reasoning.text", "text": "Hmm.", "index": 0}]
    signals = split(
        [
            chunk({"reasoning": "Hmm.", "reasoning_details": detail}),
            chunk({"reasoning_content": "Ok", "reasoning": "Ok"}),
            chunk({}, "stop"),
        ]
    )
    assert joined(signals, ReasoningDelta) == {"rs_1": "Hmm.Ok"}


def test_reasoning_details_summary_and_encrypted() -> None:
    signals = split(
        [
            chunk(
                {
                    "reasoning_details": [
                        {"type": "reasoning.summary", "summary": "Sum."},
                        {"type": "reasoning.encrypted", "data": "xyz"},
                    ]
                }
            ),
            chunk({}, "stop"),
        ]
    )
    assert joined(signals, ReasoningDelta) == {"rs_1": "Sum."}
    assert ItemFinished("reasoning", "rs_1", 0, encrypted_content="xyz") in signals


def test_citations_ride_on_the_message_end() -> None:
    sources = ["https://a.example/1", "https://b.example/2"]
    results = [{"title": "B", "url": sources[1], "date": "2026-01-01"}]
    citation = {"url": "https://c.example", "title": "C", "start_index": 0, "end_index": 2}
    signals = split(
        [
            chunk({"content": "Hi[2]"}, citations=sources[:1]),
            chunk({"content": "."}, citations=sources, search_results=results),
            chunk({"annotations": [{"type": "url_citation", "url_citation": citation}]}),
            chunk({}, "stop"),  # no citations here: the last list seen stays
        ]
    )
    assert signals[-2] == ItemFinished(
        "message",
        "msg_1",
        0,
        sources=(CitedSource(sources[0], sources[0]), CitedSource(sources[1], "B")),
        citations=(UrlCitation("https://c.example", "C", 0, 2),),
    )


def test_empty_reasoning_opens_nothing() -> None:
    signals = split([chunk({"reasoning_content": "", "content": None}), chunk({}, "stop")])
    assert signals == [START, COMPLETED]


# -- <think> tags --

THINK = "<think>I should greet.</think>\n\nHello there!"


def test_think_tags_whole() -> None:
    signals = split([chunk({"content": THINK}), chunk({}, "stop")])
    assert signals == [
        START,
        ItemStarted("reasoning", "rs_1", 0),
        ReasoningDelta("rs_1", 0, "I should greet."),
        ItemFinished("reasoning", "rs_1", 0),
        ItemStarted("message", "msg_1", 1),
        TextDelta("msg_1", 1, "Hello there!"),
        ItemFinished("message", "msg_1", 1),
        COMPLETED,
    ]


def _think_result(pieces: list[str], **kw: Any) -> tuple[dict[str, str], dict[str, str], list[Any]]:
    signals = split([chunk({"content": p}) for p in pieces] + [chunk({}, "stop")], **kw)
    shape = [
        (type(s).__name__, getattr(s, "kind", None))
        for s in signals
        if isinstance(s, ItemStarted | ItemFinished)
    ]
    return joined(signals, ReasoningDelta), joined(signals, TextDelta), shape


EXPECTED_THINK = (
    {"rs_1": "I should greet."},
    {"msg_1": "Hello there!"},
    [
        ("ItemStarted", "reasoning"),
        ("ItemFinished", "reasoning"),
        ("ItemStarted", "message"),
        ("ItemFinished", "message"),
    ],
)


@pytest.mark.parametrize("cut", range(len(THINK) + 1))
def test_think_tags_split_in_two_at_every_position(cut: int) -> None:
    assert _think_result([THINK[:cut], THINK[cut:]]) == EXPECTED_THINK


def test_think_tags_split_in_three_everywhere() -> None:
    for i in range(len(THINK) + 1):
        for j in range(i, len(THINK) + 1):
            assert _think_result([THINK[:i], THINK[i:j], THINK[j:]]) == EXPECTED_THINK, (i, j)


def test_think_tags_one_character_per_chunk() -> None:
    assert _think_result(list(THINK)) == EXPECTED_THINK


def test_think_tag_after_leading_whitespace() -> None:
    assert _think_result(["\n  <thi", "nk>I should greet.</think>Hello there!"]) == EXPECTED_THINK


def test_think_tag_not_at_start_is_text() -> None:
    text = "Hi <think>not reasoning</think> ok"
    assert _think_result([text[:5], text[5:]]) == (
        {},
        {"msg_1": text},
        [
            ("ItemStarted", "message"),
            ("ItemFinished", "message"),
        ],
    )


def test_think_tags_disabled() -> None:
    assert _think_result([THINK], think_tags=False) == (
        {},
        {"msg_1": THINK},
        [("ItemStarted", "message"), ("ItemFinished", "message")],
    )


def test_similar_tag_is_text() -> None:
    text = "<thinking>x</thinking> y"
    assert _think_result([text[:3], text[3:]])[1] == {"msg_1": text}


def test_unclosed_think_at_end_is_reasoning() -> None:
    signals = split([chunk({"content": "<think>still thin"}), chunk({"content": "king </th"})])
    assert joined(signals, ReasoningDelta) == {"rs_1": "still thinking </th"}
    assert joined(signals, TextDelta) == {}
    assert signals[-1].status == "failed"  # type: ignore[union-attr]  # no finish_reason


def test_partial_open_tag_at_end_is_text() -> None:
    signals = split([chunk({"content": " <thi"}), chunk({}, "stop")])
    assert joined(signals, TextDelta) == {"msg_1": " <thi"}


def test_think_then_reasoning_field_then_text() -> None:
    # reasoning from a tag and from reasoning_content go to the same open reasoning item
    signals = split(
        [
            chunk({"content": "<think>a"}),
            chunk({"reasoning_content": "b"}),
            chunk({"content": "c</think>d"}),
            chunk({}, "stop"),
        ]
    )
    assert joined(signals, ReasoningDelta) == {"rs_1": "abc"}
    assert joined(signals, TextDelta) == {"msg_1": "d"}


def test_think_tag_splitter_unit() -> None:
    t = ThinkTagSplitter()
    assert t.feed("  <th") == []
    assert t.feed("ink>ab</") == [(True, "ab")]
    assert t.feed("think>  ") == []
    assert t.feed(" x") == [(False, "x")]
    assert t.feed(" y") == [(False, " y")]
    assert t.flush() == []


# -- content as a list of blocks (Mistral) --


def test_content_as_list_of_blocks() -> None:
    signals = split(
        [
            chunk(
                {
                    "role": "assistant",
                    "content": [{"type": "thinking", "thinking": [{"type": "text", "text": "Hm"}]}],
                }
            ),
            chunk(
                {"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "m."}]}]}
            ),
            chunk({"content": [{"type": "text", "text": "Hi"}, "!"]}),
            chunk({}, "stop"),
        ]
    )
    assert signals == [
        START,
        ItemStarted("reasoning", "rs_1", 0),
        ReasoningDelta("rs_1", 0, "Hm"),
        ReasoningDelta("rs_1", 0, "m."),
        ItemFinished("reasoning", "rs_1", 0),
        ItemStarted("message", "msg_1", 1),
        TextDelta("msg_1", 1, "Hi"),
        TextDelta("msg_1", 1, "!"),
        ItemFinished("message", "msg_1", 1),
        COMPLETED,
    ]


# -- usage --


def _usage(signals: list[Signal]) -> Any:
    final = signals[-1]
    assert isinstance(final, StreamFinished)
    return None if final.usage is None else to_dict(final.usage)


def test_usage_on_separate_chunk() -> None:
    signals = split([chunk({"content": "x"}), chunk({}, "stop"), usage_chunk(USAGE_20_5)])
    assert _usage(signals) == USAGE_20_5_MAPPED


def test_usage_on_finish_chunk() -> None:
    # DeepSeek: usage on the finish chunk, cache hits in prompt_cache_hit_tokens
    deepseek = {
        "prompt_tokens": 13,
        "completion_tokens": 7,
        "total_tokens": 20,
        "prompt_cache_hit_tokens": 8,
        "prompt_cache_miss_tokens": 5,
        "completion_tokens_details": {"reasoning_tokens": 3},
    }
    signals = split([chunk({"content": "x"}), chunk({}, "stop", usage=deepseek)])
    assert _usage(signals) == {
        "input_tokens": 13,
        "input_tokens_details": {"cached_tokens": 8, "cache_write_tokens": 0},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 20,
    }


def test_usage_under_x_groq() -> None:
    groq = {
        "id": "req_1",
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    }
    signals = split([chunk({"content": "x"}), chunk({}, "stop", x_groq=groq)])
    assert _usage(signals) == {
        "input_tokens": 9,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 11,
    }


def test_usage_last_non_null_wins() -> None:
    # Perplexity-style cumulative usage on every chunk; OpenAI's ``usage: null`` on others
    first = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    signals = split(
        [
            chunk({"content": "x"}, usage=first),
            chunk({"content": "y"}, usage=None),
            chunk({}, "stop", usage=None),
            usage_chunk(USAGE_20_5),
            chunk(choices=[], usage=None),  # a trailing moderation-style chunk
        ]
    )
    assert _usage(signals) == USAGE_20_5_MAPPED


def test_usage_total_missing_is_computed() -> None:
    signals = split([chunk({}, "stop"), usage_chunk({"prompt_tokens": 3, "completion_tokens": 4})])
    assert _usage(signals)["total_tokens"] == 7


def test_usage_xai_reasoning_beside_completion_is_counted_in_output() -> None:
    # xAI: total = prompt + completion + reasoning (12 + 2 + 340 = 354)
    xai = {
        "prompt_tokens": 12,
        "completion_tokens": 2,
        "total_tokens": 354,
        "completion_tokens_details": {"reasoning_tokens": 340},
    }
    signals = split([chunk({"content": "x"}), chunk({}, "stop"), usage_chunk(xai)])
    assert _usage(signals) == {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 342,
        "output_tokens_details": {"reasoning_tokens": 340},
        "total_tokens": 354,
    }


def test_no_usage() -> None:
    assert _usage(split([chunk({"content": "x"}), chunk({}, "stop")])) is None


# -- terminal status --


def test_finish_length_is_incomplete_max_output_tokens() -> None:
    signals = split(
        [chunk({"content": "Rivers are"}), chunk({}, "length"), usage_chunk(USAGE_20_5)]
    )
    assert signals[1:] == [
        ItemStarted("message", "msg_1", 0),
        TextDelta("msg_1", 0, "Rivers are"),
        ItemFinished("message", "msg_1", 0, "incomplete"),
        StreamFinished(
            "incomplete", incomplete_reason="max_output_tokens", usage=signals[-1].usage
        ),  # type: ignore[union-attr]
    ]
    assert _usage(signals) == USAGE_20_5_MAPPED


def test_finish_length_inside_reasoning() -> None:
    signals = split([chunk({"reasoning_content": "thinking a lot"}), chunk({}, "length")])
    assert signals[1:] == [
        ItemStarted("reasoning", "rs_1", 0),
        ReasoningDelta("rs_1", 0, "thinking a lot"),
        ItemFinished("reasoning", "rs_1", 0, "incomplete"),
        StreamFinished("incomplete", incomplete_reason="max_output_tokens"),
    ]


def test_finish_content_filter() -> None:
    signals = split([chunk({"content": "Some"}), chunk({}, "content_filter")])
    assert signals[1:] == [
        ItemStarted("message", "msg_1", 0),
        TextDelta("msg_1", 0, "Some"),
        ItemFinished("message", "msg_1", 0, "incomplete"),
        StreamFinished("incomplete", incomplete_reason="content_filter"),
    ]


@pytest.mark.parametrize("reason", ["stop", "tool_calls", "function_call"])
def test_finish_reasons_that_complete(reason: str) -> None:
    assert split([chunk({}, reason)])[-1] == COMPLETED


def test_error_in_chunk_fails_and_keeps_text() -> None:
    # OpenRouter: ``{"error": {"code": 502, "message": ...}}`` mid-stream, no choices
    signals = split(
        [
            chunk({"content": "Partial"}),
            chunk(choices=[], error={"code": 502, "message": "Provider disconnected"}),
            chunk({"content": "ignored after the error"}),
        ]
    )
    assert signals == [
        START,
        ItemStarted("message", "msg_1", 0),
        TextDelta("msg_1", 0, "Partial"),
        ItemFinished("message", "msg_1", 0, "incomplete"),
        StreamFinished("failed", error_code="502", error_message="Provider disconnected"),
    ]


def test_no_finish_reason_fails() -> None:
    signals = split([chunk({"content": "cut"})])
    assert signals[-2:] == [
        ItemFinished("message", "msg_1", 0, "incomplete"),
        StreamFinished(
            "failed",
            error_code="server_error",
            error_message="upstream stream ended before a finish_reason",
        ),
    ]


def test_done_without_finish_reason_says_so() -> None:
    # The [DONE] message (parse_chunks() passes it on) ends the stream: without a finish_reason
    # the failure says the upstream ended it so, not that the connection was cut.
    s = ChunkSplitter(ids=Ids())
    signals = s.handle(parse_chunk(json.dumps(chunk({"content": "half"}))))
    signals += s.handle(SSEMessage("[DONE]"))
    assert signals[-2:] == [
        ItemFinished("message", "msg_1", 0, "incomplete"),
        StreamFinished(
            "failed",
            error_code="server_error",
            error_message="upstream sent [DONE] without a finish_reason for choice 0",
        ),
    ]
    assert s.ended
    assert s.handle(parse_chunk(json.dumps(chunk({}, "stop")))) == []  # nothing after [DONE]


def test_done_after_a_finish_reason_completes() -> None:
    s = ChunkSplitter(ids=Ids(), choice_index=1)
    s.handle(parse_chunk(json.dumps(chunk({"content": "x"}, "stop", index=1))))
    assert s.handle(SSEMessage("[DONE]"))[-1] == StreamFinished("completed")


def test_done_without_finish_reason_of_the_chosen_choice_names_it() -> None:
    s = ChunkSplitter(ids=Ids(), choice_index=1)
    s.handle(parse_chunk(json.dumps(chunk({"content": "x"}, "stop", index=0))))
    last = s.handle(SSEMessage("[DONE]"))[-1]
    assert last == StreamFinished(
        "failed",
        error_code="server_error",
        error_message="upstream sent [DONE] without a finish_reason for choice 1",
    )


def test_empty_stream_fails() -> None:
    signals = split([])
    assert signals == [
        StreamStarted(model="", created_at=0),
        StreamFinished(
            "failed",
            error_code="server_error",
            error_message="upstream stream ended before a finish_reason",
        ),
    ]


def test_upstream_exception_fails_and_keeps_text() -> None:
    s = ChunkSplitter(ids=Ids())
    out = s.handle(parse_chunk(json.dumps(chunk({"content": "so far"}))))
    out += s.fail(ConnectionResetError("peer reset"))
    out += s.finish()  # nothing after the end
    assert out == [
        START,
        ItemStarted("message", "msg_1", 0),
        TextDelta("msg_1", 0, "so far"),
        ItemFinished("message", "msg_1", 0, "incomplete"),
        StreamFinished("failed", error_code="server_error", error_message="peer reset"),
    ]


def test_chunks_after_finish_reason_do_not_add_content() -> None:
    signals = split([chunk({"content": "a"}, "stop"), chunk({"content": "late"})])
    assert joined(signals, TextDelta) == {"msg_1": "a"}
    assert signals[-1] == COMPLETED


# -- n > 1 --


def _n3() -> list[dict[str, Any]]:
    return [
        chunk(
            choices=[{"index": i, "delta": {"role": "assistant", "content": ""}} for i in range(3)]
        ),
        chunk({"content": "zero "}, index=0),
        chunk({"content": "one "}, index=1),
        chunk({"content": "two "}, index=2),
        chunk({"content": "0"}, index=0),
        chunk({"content": "1"}, index=1),
        chunk({}, "stop", index=1),
        chunk({"content": "2"}, index=2),
        chunk({}, "stop", index=0),
        chunk({}, "stop", index=2),
    ]


def test_n_greater_than_one_converts_choice_zero_only() -> None:
    s = ChunkSplitter(ids=Ids())
    signals: list[Signal] = []
    for c in _n3():
        signals += s.handle(parse_chunk(json.dumps(c)))
    signals += s.finish()
    assert joined(signals, TextDelta) == {"msg_1": "zero 0"}
    assert signals[-1] == COMPLETED
    assert s.dropped_choices == 2 + 2 + 2 + 1 + 1  # every chunk of choices 1 and 2


def test_choice_index_selects_another_choice() -> None:
    signals = split(_n3(), choice_index=2)
    assert joined(signals, TextDelta) == {"msg_1": "two 2"}
    assert signals[-1] == COMPLETED


def test_other_choice_finishing_does_not_end_the_stream() -> None:
    signals = split(_n3()[:7])  # choice 1 finished, choice 0 did not
    assert signals[-1].status == "failed"  # type: ignore[union-attr]


# -- tool calls --

FIRST_TOOL_DELTA = {"role": "assistant", "content": None, "refusal": None}


def test_parallel_tool_calls_by_index() -> None:
    signals = split(
        [
            chunk({**FIRST_TOOL_DELTA, **tools(tool(0, "call_a", "get_weather", ""))}),
            chunk(tools(tool(0, arguments='{"city"'))),
            chunk(tools(tool(0, arguments=': "Paris"}'))),
            chunk(tools(tool(1, "call_b", "get_time", ""))),
            chunk(tools(tool(1, arguments='{"tz": "CET"}'))),
            chunk({}, "tool_calls"),
        ]
    )
    assert signals == [
        START,
        ItemStarted("function_call", "fc_1", 0, "call_a", "get_weather"),
        ToolCallDelta("fc_1", 0, '{"city"'),
        ToolCallDelta("fc_1", 0, ': "Paris"}'),
        ItemStarted("function_call", "fc_2", 1, "call_b", "get_time"),
        ToolCallDelta("fc_2", 1, '{"tz": "CET"}'),
        ItemFinished("function_call", "fc_1", 0),
        ItemFinished("function_call", "fc_2", 1),
        COMPLETED,
    ]


def test_interleaved_tool_call_indexes() -> None:
    signals = split(
        [
            chunk(tools(tool(0, "call_a", "f", ""), tool(1, "call_b", "g", ""))),
            chunk(tools(tool(1, arguments='{"b"'))),
            chunk(tools(tool(0, arguments='{"a"'))),
            chunk(tools(tool(1, arguments=":2}"), tool(0, arguments=":1}"))),
            chunk({}, "tool_calls"),
        ]
    )
    assert signals == [
        START,
        ItemStarted("function_call", "fc_1", 0, "call_a", "f"),
        ItemStarted("function_call", "fc_2", 1, "call_b", "g"),
        ToolCallDelta("fc_2", 1, '{"b"'),
        ToolCallDelta("fc_1", 0, '{"a"'),
        ToolCallDelta("fc_2", 1, ":2}"),
        ToolCallDelta("fc_1", 0, ":1}"),
        ItemFinished("function_call", "fc_1", 0),
        ItemFinished("function_call", "fc_2", 1),
        COMPLETED,
    ]


def test_tool_calls_without_index() -> None:
    # Mistral / Gemini: no ``index``; a new id is a new call, a fragment without id continues
    signals = split(
        [
            chunk(tools(tool(None, "call_a", "f", '{"a":'))),
            chunk(tools(tool(None, arguments="1}"))),
            chunk(tools(tool(None, "call_b", "g", '{"b":2}'))),
            chunk({}, "tool_calls"),
        ]
    )
    assert signals == [
        START,
        ItemStarted("function_call", "fc_1", 0, "call_a", "f"),
        ToolCallDelta("fc_1", 0, '{"a":'),
        ToolCallDelta("fc_1", 0, "1}"),
        ItemStarted("function_call", "fc_2", 1, "call_b", "g"),
        ToolCallDelta("fc_2", 1, '{"b":2}'),
        ItemFinished("function_call", "fc_1", 0),
        ItemFinished("function_call", "fc_2", 1),
        COMPLETED,
    ]


def test_whole_arguments_in_one_chunk() -> None:
    # Groq: id, name and the complete arguments in a single delta
    signals = split(
        [
            chunk(tools(tool(0, "call_x", "lookup", '{"q": "rx", "n": 3}'))),
            chunk({}, "tool_calls"),
        ]
    )
    assert signals == [
        START,
        ItemStarted("function_call", "fc_1", 0, "call_x", "lookup"),
        ToolCallDelta("fc_1", 0, '{"q": "rx", "n": 3}'),
        ItemFinished("function_call", "fc_1", 0),
        COMPLETED,
    ]


def test_id_and_name_repeated_on_every_chunk() -> None:
    signals = split(
        [
            chunk(tools(tool(0, "call_a", "f", '{"x"'))),
            chunk(tools(tool(0, "call_a", "f", ": 1"))),
            chunk(tools(tool(0, "call_a", "f", "}"))),
            chunk({}, "tool_calls"),
        ]
    )
    assert signals == [
        START,
        ItemStarted("function_call", "fc_1", 0, "call_a", "f"),
        ToolCallDelta("fc_1", 0, '{"x"'),
        ToolCallDelta("fc_1", 0, ": 1"),
        ToolCallDelta("fc_1", 0, "}"),
        ItemFinished("function_call", "fc_1", 0),
        COMPLETED,
    ]


def test_cumulative_arguments() -> None:
    # each chunk repeats everything so far
    signals = split(
        [
            chunk(tools(tool(0, "call_a", "f", '{"'))),
            chunk(tools(tool(0, arguments='{"ci'))),
            chunk(tools(tool(0, arguments='{"city": "P'))),
            chunk(tools(tool(0, arguments='{"city": "Paris"}'))),
            chunk(tools(tool(0, arguments='{"city": "Paris"}'))),  # a plain repeat at the end
            chunk({}, "tool_calls"),
        ]
    )
    assert signals == [
        START,
        ItemStarted("function_call", "fc_1", 0, "call_a", "f"),
        ToolCallDelta("fc_1", 0, '{"'),
        ToolCallDelta("fc_1", 0, "ci"),
        ToolCallDelta("fc_1", 0, 'ty": "P'),
        ToolCallDelta("fc_1", 0, 'aris"}'),
        ItemFinished("function_call", "fc_1", 0),
        COMPLETED,
    ]


def test_name_after_first_fragment() -> None:
    signals = split(
        [
            chunk(tools(tool(0, "call_a", None, '{"a"'))),
            chunk(tools(tool(0, arguments=": 1"))),
            chunk(tools(tool(0, name="late_name", arguments="}"))),
            chunk(tools(tool(0, arguments=""))),
            chunk({}, "tool_calls"),
        ]
    )
    assert signals == [
        START,
        ItemStarted("function_call", "fc_1", 0, "call_a", "late_name"),
        ToolCallDelta("fc_1", 0, '{"a": 1}'),
        ItemFinished("function_call", "fc_1", 0),
        COMPLETED,
    ]


def test_never_named_call_is_still_emitted() -> None:
    signals = split([chunk(tools(tool(0, "call_a", None, "{}"))), chunk({}, "tool_calls")])
    assert signals == [
        START,
        ItemStarted("function_call", "fc_1", 0, "call_a", ""),
        ToolCallDelta("fc_1", 0, "{}"),
        ItemFinished("function_call", "fc_1", 0),
        COMPLETED,
    ]


def test_index_reused_with_a_different_id() -> None:
    # Ollama / some proxies: every parallel call at index 0, told apart by id
    signals = split(
        [
            chunk(tools(tool(0, "call_a", "f", '{"a":1}'))),
            chunk(tools(tool(0, "call_b", "g", '{"b":'))),
            chunk(tools(tool(0, arguments="2}"))),
            chunk({}, "tool_calls"),
        ]
    )
    assert signals == [
        START,
        ItemStarted("function_call", "fc_1", 0, "call_a", "f"),
        ToolCallDelta("fc_1", 0, '{"a":1}'),
        ItemStarted("function_call", "fc_2", 1, "call_b", "g"),
        ToolCallDelta("fc_2", 1, '{"b":'),
        ToolCallDelta("fc_2", 1, "2}"),
        ItemFinished("function_call", "fc_1", 0),
        ItemFinished("function_call", "fc_2", 1),
        COMPLETED,
    ]


def test_tool_call_without_upstream_id_gets_a_call_id() -> None:
    signals = split([chunk(tools(tool(0, None, "f", "{}"))), chunk({}, "tool_calls")])
    assert signals[1] == ItemStarted("function_call", "fc_1", 0, "call_1", "f")


def test_deprecated_function_call() -> None:
    signals = split(
        [
            chunk({"function_call": {"name": "f", "arguments": '{"a"'}}),
            chunk({"function_call": {"arguments": ":1}"}}),
            chunk({}, "function_call"),
        ]
    )
    assert signals == [
        START,
        ItemStarted("function_call", "fc_1", 0, "call_1", "f"),
        ToolCallDelta("fc_1", 0, '{"a"'),
        ToolCallDelta("fc_1", 0, ":1}"),
        ItemFinished("function_call", "fc_1", 0),
        COMPLETED,
    ]


def test_text_then_tool_call_closes_the_message_first() -> None:
    signals = split(
        [
            chunk({"reasoning_content": "r"}),
            chunk({"content": "Let me check."}),
            chunk(tools(tool(0, "call_a", "f", "{}"))),
            chunk({}, "tool_calls"),
        ]
    )
    assert signals == [
        START,
        ItemStarted("reasoning", "rs_1", 0),
        ReasoningDelta("rs_1", 0, "r"),
        ItemFinished("reasoning", "rs_1", 0),
        ItemStarted("message", "msg_1", 1),
        TextDelta("msg_1", 1, "Let me check."),
        ItemFinished("message", "msg_1", 1),
        ItemStarted("function_call", "fc_1", 2, "call_a", "f"),
        ToolCallDelta("fc_1", 2, "{}"),
        ItemFinished("function_call", "fc_1", 2),
        COMPLETED,
    ]


def test_tool_call_cut_by_length_is_incomplete() -> None:
    signals = split([chunk(tools(tool(0, "call_a", "f", '{"a'))), chunk({}, "length")])
    assert signals[-2:] == [
        ItemFinished("function_call", "fc_1", 0, "incomplete"),
        StreamFinished("incomplete", incomplete_reason="max_output_tokens"),
    ]


def test_signals_item_ids_are_stable_and_indexes_dense() -> None:
    signals = split(
        [
            chunk({"reasoning_content": "r"}),
            chunk({"content": "t"}),
            chunk(tools(tool(0, "c0", "f", "{}"), tool(1, "c1", "f", "{}"))),
            chunk({}, "tool_calls"),
        ]
    )
    started = [(s.item_id, s.output_index) for s in signals if isinstance(s, ItemStarted)]
    finished = [(s.item_id, s.output_index) for s in signals if isinstance(s, ItemFinished)]
    assert started == [("rs_1", 0), ("msg_1", 1), ("fc_1", 2), ("fc_2", 3)]
    assert sorted(finished, key=lambda x: x[1]) == started


def test_azure_leading_filter_chunk_does_not_blank_the_model() -> None:
    # Azure: a first chunk with ``object: ""``, ``id: ""``, ``model: ""``, no choices, only
    # ``prompt_filter_results``. The stream's model and creation time come from the next chunk.
    azure_first = {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [],
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
    }
    signals = split([azure_first, chunk({"content": "x"}), chunk({}, "stop")])
    assert signals[0] == START
    assert joined(signals, TextDelta) == {"msg_1": "x"}


def _opened(*chunks: dict[str, Any], **kw: Any) -> ChunkSplitter:
    s = ChunkSplitter(ids=Ids(), **kw)
    for c in chunks:
        s.handle(parse_chunk(json.dumps(c)))
    return s


def test_a_run_of_fragments_of_the_open_item_becomes_one_signal_each() -> None:
    """``handle_run`` (the fused pipeline's call for a run of chunks that each add one string
    to the same slot): one delta per string, for the item the first chunk opened."""
    s = _opened(chunk({"role": "assistant", "content": "Hel"}))
    assert s.handle_run(0, None, ["lo", ",", " world"]) == [
        TextDelta("msg_1", 0, "lo"),
        TextDelta("msg_1", 0, ","),
        TextDelta("msg_1", 0, " world"),
    ]
    s = _opened(chunk({"reasoning_content": "Let"}))
    assert s.handle_run(1, None, [" me", " think"]) == [
        ReasoningDelta("rs_1", 0, " me"),
        ReasoningDelta("rs_1", 0, " think"),
    ]
    s = _opened(
        chunk(tools(tool(0, "call_a", "f", ""))), chunk(tools(tool(1, "call_b", "g", '{"b"')))
    )
    assert s.handle_run(2, 1, [": 1", "}"]) == [
        ToolCallDelta("fc_2", 1, ": 1"),
        ToolCallDelta("fc_2", 1, "}"),
    ]
    # A provider that resends all arguments so far: only what is new is a fragment.
    assert s.handle_run(2, 1, ['{"b": 1}!', '{"b": 1}!']) == [ToolCallDelta("fc_2", 1, "!")]


def test_a_run_that_would_open_or_close_an_item_is_left_to_handle_fast() -> None:
    """``None`` where the first string would do more than add to the open item: each string
    then goes through ``handle_fast``, whose signals are those of the chunks one by one."""
    assert _opened(chunk({"reasoning_content": "r"})).handle_run(0, None, ["t"]) is None
    assert _opened(chunk({"content": "t"})).handle_run(1, None, ["r"]) is None
    assert _opened(chunk({"content": "t"})).handle_run(2, 0, ["{}"]) is None
    assert _opened(chunk(tools(tool(0, "call_a", "f", "")))).handle_run(2, 1, ["{}"]) is None
    thinking = _opened(chunk({"content": "<think>a"}))
    assert thinking.handle_run(0, None, ["b"]) is None  # the <think> splitter decides
    assert thinking.handle_fast(("b</think>ok", None, None)) == [
        ReasoningDelta("rs_1", 0, "b"),
        ItemFinished("reasoning", "rs_1", 0, "completed"),
        ItemStarted("message", "msg_1", 1),
        TextDelta("msg_1", 1, "ok"),
    ]
    assert thinking.handle_run(0, None, ["!"]) == [TextDelta("msg_1", 1, "!")]
    ended = _opened(chunk({"content": "t"}), chunk(None, "stop"))
    assert ended.handle_run(0, None, ["late"]) == []  # after the finish_reason: nothing

"""Every recorded Chat stream, converted, checked against the official SDK and the recording itself.

For each file in ``CHAT_FIXTURES`` the events of
``from_file(p).pipe(parse_chunks(), chat_to_responses())`` (read with ``iterate``):

(a) validate one by one against ``openai.types.responses.ResponseStreamEvent`` (openai 3.54.0);
(b) follow the stream grammar (``tests/grammar.py``);
(c) fold (``final_response()``) to exactly the terminal event's ``response``;
(d) carry the text, refusal, reasoning and tool arguments of choice 0 of the recording, computed
    here from the recording's JSON (``json``, not rxresponses);
(e) make the SDK's own Responses stream accumulator (``ResponseStreamState``), fed our SSE bytes
    through the SDK's own SSE decoder, produce the same final response.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import openai.types.responses as sdk_types
import pydantic
import pytest
import reactivex
from openai import omit
from openai._models import construct_type_unchecked
from openai._streaming import SSEDecoder as SDKSSEDecoder
from openai.lib.streaming.responses._responses import ResponseStreamState

from rxresponses import from_file, iterate, parse_chunks
from rxresponses.operators import final_response
from rxresponses.pipelines import chat_to_responses, chat_to_responses_composed
from rxresponses.sse import encode_event
from rxresponses.types._base import to_dict
from tests._util import Ids, sse_json
from tests.conftest import CHAT_FIXTURES, FIXTURES, fixture_params
from tests.grammar import check_stream

#: The official union of streaming events, built once (building one costs hundreds of µs).
SDK_EVENT = pydantic.TypeAdapter(sdk_types.ResponseStreamEvent)

FIXTURE_PARAMS = fixture_params(CHAT_FIXTURES)
pytestmark = [pytest.mark.fixtures, pytest.mark.filterwarnings("error::UserWarning")]


@functools.cache
def _converted(path: Path) -> tuple[Any, ...]:
    """The typed events for one recording (deterministic ids), computed once per session."""
    pipeline = chat_to_responses(ids=Ids(), response_id="resp_conformance")
    return tuple(iterate(from_file(path).pipe(parse_chunks(), pipeline)))


def events_of(path: Path) -> list[dict[str, Any]]:
    return [to_dict(e) for e in _converted(path)]


# -- what the recording says, read with json -------------------------------------------------------


class Upstream:
    """Choice 0 of a recorded Chat stream, read straight from its JSON."""

    def __init__(self, path: Path) -> None:
        self.chunks = sse_json(path)
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.reasoning_content: list[str] = []
        self.reasoning: list[str] = []
        self.reasoning_details: list[str] = []
        self.tool_args: dict[int, list[str]] = defaultdict(list)
        self.tool_names: dict[int, str] = {}
        self.tool_ids: dict[int, str] = {}
        self.finish_reason: str | None = None
        self.error = False
        for c in self.chunks:
            if c.get("error"):
                self.error = True
                break
            for choice in c.get("choices") or []:
                if choice.get("index", 0) != 0 or self.finish_reason is not None:
                    continue
                d = choice.get("delta") or {}
                if isinstance(d.get("content"), str):
                    self.content.append(d["content"])
                if d.get("refusal"):
                    self.refusal.append(d["refusal"])
                if d.get("reasoning_content"):
                    self.reasoning_content.append(d["reasoning_content"])
                if d.get("reasoning"):
                    self.reasoning.append(d["reasoning"])
                for detail in d.get("reasoning_details") or []:
                    if detail.get("type") == "reasoning.text":
                        self.reasoning_details.append(detail.get("text") or "")
                for tc in d.get("tool_calls") or []:
                    i = tc["index"]
                    fn = tc.get("function") or {}
                    self.tool_args[i].append(fn.get("arguments") or "")
                    if fn.get("name"):
                        self.tool_names.setdefault(i, fn["name"])
                    if tc.get("id"):
                        self.tool_ids.setdefault(i, tc["id"])
                if choice.get("finish_reason"):
                    self.finish_reason = choice["finish_reason"]

    @property
    def status(self) -> str:
        if self.error or self.finish_reason is None:
            return "failed"
        if self.finish_reason in ("length", "content_filter"):
            return "incomplete"
        return "completed"


# -- (a) each event validates against the official SDK ---------------------------------------------


@pytest.mark.parametrize("path", FIXTURE_PARAMS)
def test_events_validate_against_the_sdk(path: Path) -> None:
    for event in events_of(path):
        try:
            SDK_EVENT.validate_python(event)
        except pydantic.ValidationError as exc:  # pragma: no cover - the failure message
            pytest.fail(f"{event['type']} #{event['sequence_number']} rejected by the SDK: {exc}")


# -- (b) grammar -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURE_PARAMS)
def test_grammar(path: Path) -> None:
    check_stream(events_of(path))


@pytest.mark.parametrize("path", FIXTURE_PARAMS)
def test_grammar_and_sdk_validation_with_options(path: Path) -> None:
    # reasoning as a summary, no think-tag splitting, the composed operators, echoed fields
    for pipeline in (
        chat_to_responses(ids=Ids(), reasoning_as_summary=True, think_tags=False),
        chat_to_responses_composed(ids=Ids(), reasoning_as_summary=True),
        chat_to_responses(
            ids=Ids(), model="renamed", echo={"instructions": "Be brief.", "temperature": 0.2}
        ),
    ):
        events = [to_dict(e) for e in iterate(from_file(path).pipe(parse_chunks(), pipeline))]
        check_stream(events)
        for event in events:
            SDK_EVENT.validate_python(event)


# -- (c) the fold equals the terminal event --------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURE_PARAMS)
def test_final_response_equals_terminal(path: Path) -> None:
    events = list(_converted(path))
    finals: list[Any] = []
    reactivex.from_iterable(events).pipe(final_response()).subscribe(finals.append)
    (final,) = finals
    assert to_dict(final) == to_dict(events[-1].response)


# -- (d) the content is the recording's content ----------------------------------------------------


def _parts(response: dict[str, Any], item_type: str, part_type: str, key: str) -> str:
    return "".join(
        part[key]
        for item in response["output"]
        if item["type"] == item_type
        for part in item.get("content") or []
        if part["type"] == part_type
    )


@pytest.mark.parametrize("path", FIXTURE_PARAMS)
def test_content_matches_the_recording(path: Path) -> None:
    up = Upstream(path)
    response = events_of(path)[-1]["response"]
    assert response["status"] == up.status
    # no recording uses inline <think> tags (their content is taken as-is)
    assert not "".join(up.content).lstrip().startswith("<think>")
    assert _parts(response, "message", "output_text", "text") == "".join(up.content)
    assert _parts(response, "message", "refusal", "refusal") == "".join(up.refusal)
    # reasoning: reasoning_content, else reasoning; OpenRouter repeats it in reasoning_details
    if up.reasoning_details:
        assert "".join(up.reasoning_details) == "".join(up.reasoning)
    reasoning = "".join(up.reasoning_content) or "".join(up.reasoning)
    assert _parts(response, "reasoning", "reasoning_text", "text") == reasoning
    calls = [i for i in response["output"] if i["type"] == "function_call"]
    assert [c["arguments"] for c in calls] == [
        "".join(up.tool_args[i]) for i in sorted(up.tool_args)
    ]
    assert [c["name"] for c in calls] == [up.tool_names[i] for i in sorted(up.tool_args)]
    assert [c["call_id"] for c in calls] == [up.tool_ids[i] for i in sorted(up.tool_args)]
    # every delta event carries text of the recording, in order
    deltas = "".join(
        e["delta"] for e in events_of(path) if e["type"] == "response.output_text.delta"
    )
    assert deltas == "".join(up.content)


def test_some_recordings_exercise_each_feature(fixtures_dir: Path) -> None:
    # guard against the content test passing vacuously
    ups = {p.name: Upstream(p) for p in CHAT_FIXTURES}
    assert sum(bool(u.reasoning_content) for u in ups.values()) >= 3
    assert sum(bool(u.reasoning) for u in ups.values()) >= 2
    assert sum(bool(u.reasoning_details) for u in ups.values()) >= 1
    assert sum(bool(u.refusal) for u in ups.values()) >= 2
    assert sum(len(u.tool_args) >= 2 for u in ups.values()) >= 1
    assert {u.status for u in ups.values()} == {"completed", "incomplete", "failed"}


# -- usage, with numbers read off the recordings ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "usage"),
    [
        (
            # DeepSeek: usage on the finish chunk; cache hits
            "deepseek__deepseek-tool-call.sse",
            {
                "input_tokens": 339,
                "cached": 320,
                "output_tokens": 83,
                "reasoning": 39,
                "total": 422,
            },
        ),
        (
            "deepseek__deepseek-reasoning.sse",
            {"input_tokens": 18, "cached": 0, "output_tokens": 219, "reasoning": 205, "total": 237},
        ),
        (
            # Groq: usage under x_groq
            "groq__groq-text.sse",
            {"input_tokens": 45, "cached": 0, "output_tokens": 662, "reasoning": 0, "total": 707},
        ),
        (
            # OpenAI: a choices:[] usage chunk after the finish chunk
            "two_parallel_tool_calls__f82268f2fefd.sse",
            {"input_tokens": 149, "cached": 0, "output_tokens": 60, "reasoning": 0, "total": 209},
        ),
        (
            "pydantic-ai__test_zai_test_zai_thinking_stream.0.sse",
            {"input_tokens": 13, "cached": 0, "output_tokens": 564, "reasoning": 561, "total": 577},
        ),
        (
            "alibaba__alibaba-reasoning.sse",
            {
                "input_tokens": 24,
                "cached": 0,
                "output_tokens": 1355,
                "reasoning": 1084,
                "total": 1379,
            },
        ),
        (
            # 2026 OpenAI stream: usage: null on every chunk but the last
            "openai__openai-text.sse",
            {"input_tokens": 16, "cached": 0, "output_tokens": 300, "reasoning": 0, "total": 316},
        ),
    ],
)
def test_usage_mapping(fixtures_dir: Path, name: str, usage: dict[str, int]) -> None:
    response = events_of(fixtures_dir / "chat" / name)[-1]["response"]
    assert response["usage"] == {
        "input_tokens": usage["input_tokens"],
        "input_tokens_details": {"cached_tokens": usage["cached"], "cache_write_tokens": 0},
        "output_tokens": usage["output_tokens"],
        "output_tokens_details": {"reasoning_tokens": usage["reasoning"]},
        "total_tokens": usage["total"],
    }


def test_length_recording_is_incomplete(fixtures_dir: Path) -> None:
    events = events_of(fixtures_dir / "chat" / "max_tokens_reached_length__4cc50a6135d2.sse")
    assert events[-1]["type"] == "response.incomplete"
    response = events[-1]["response"]
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert [i["status"] for i in response["output"]] == ["incomplete"]


def test_openrouter_error_recording_fails_keeping_text(fixtures_dir: Path) -> None:
    path = fixtures_dir / "chat" / "pydantic-ai__test_openrouter_test_openrouter_stream_error.0.sse"
    events = events_of(path)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    error_chunk = next(c for c in sse_json(path) if c.get("error"))
    assert events[-2]["message"] == error_chunk["error"]["message"]
    assert events[-1]["response"]["status"] == "failed"


def test_n3_recording_converts_choice_zero_only(fixtures_dir: Path) -> None:
    path = fixtures_dir / "chat" / "multiple_choices_n3__a491adda08c3.sse"
    response = events_of(path)[-1]["response"]
    assert len(response["output"]) == 1
    assert response["output"][0]["content"][0]["text"] == "".join(Upstream(path).content)


def test_logprobs_recording(fixtures_dir: Path) -> None:
    path = fixtures_dir / "chat" / "content_logprobs__83b060bae42e.sse"
    tokens = [
        lp
        for c in sse_json(path)
        for ch in c.get("choices") or []
        for lp in (ch.get("logprobs") or {}).get("content") or []
    ]
    part = events_of(path)[-1]["response"]["output"][0]["content"][0]
    assert [lp["token"] for lp in part["logprobs"]] == [t["token"] for t in tokens]
    assert [lp["bytes"] for lp in part["logprobs"]] == [t["bytes"] for t in tokens]
    assert [lp["logprob"] for lp in part["logprobs"]] == [t["logprob"] for t in tokens]


# -- (e) the SDK's own accumulator agrees ----------------------------------------------------------


def _normal(value: Any) -> Any:
    """Drop ``None`` values and the SDK's parse-only fields, for comparing dumps."""
    if isinstance(value, dict):
        return {
            k: _normal(v)
            for k, v in value.items()
            if v is not None and k not in ("parsed", "parsed_arguments")
        }
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _sdk_replay(path: Path) -> tuple[ResponseStreamState[Any], list[Any]]:
    body = b"".join(encode_event(e) for e in _converted(path))
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    emitted: list[Any] = []
    for sse in SDKSSEDecoder().iter_bytes(iter([body])):
        raw = construct_type_unchecked(type_=sdk_types.ResponseStreamEvent, value=sse.json())
        emitted += state.handle_event(raw)
    return state, emitted


@pytest.mark.parametrize("path", FIXTURE_PARAMS)
def test_sdk_accumulator_agrees(path: Path) -> None:
    ours = events_of(path)[-1]
    state, emitted = _sdk_replay(path)
    sdk = state._completed_response
    if ours["type"] == "response.completed":
        assert sdk is not None
        theirs = json.loads(sdk.model_dump_json(by_alias=True))
        for key in ("output", "status", "usage", "id", "created_at", "model"):
            assert _normal(theirs[key]) == _normal(ours["response"][key]), key
        # the SDK's text snapshots equal our deltas joined
        snapshots = [e.snapshot for e in emitted if e.type == "response.output_text.delta"]
        if snapshots:
            assert snapshots[-1] == _parts(ours["response"], "message", "output_text", "text")
    else:
        # openai-python records only response.completed: for an incomplete or failed stream it
        # has no final response (get_final_response() would raise), but it passes the terminal
        # event through with the same response.
        assert sdk is None
        terminal = emitted[-1]
        assert terminal.type == ours["type"]
        theirs = json.loads(terminal.response.model_dump_json(by_alias=True))
        for key in ("output", "status", "usage", "error", "incomplete_details"):
            assert _normal(theirs[key]) == _normal(ours["response"][key]), key


def test_fixtures_folder_is_where_conftest_says(fixtures_dir: Path) -> None:
    assert fixtures_dir == FIXTURES
    assert CHAT_FIXTURES

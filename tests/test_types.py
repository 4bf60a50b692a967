"""Tests of the Responses models (rxresponses.types.response / .events).

Three kinds of checks:

* every frame of every recorded Responses stream in ``../shared/fixtures/responses`` parses into
  its specific class and dumps back to exactly the received JSON object;
* events built in Python dump to the dicts written out below, and those dicts validate against the
  official ``openai`` 3.54.0 types (the oracle);
* the lenient corners: unknown types, both ``error`` event shapes, sparse optional fields.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import openai
import openai.types.responses as sdk
import pydantic
import pytest

from rxresponses.types import (
    EVENT_ADAPTER,
    EVENT_TYPES,
    AnnotationOther,
    AnnotationURLCitation,
    Content,
    IncompleteDetails,
    InputTokensDetails,
    Logprob,
    LogprobTopLogprob,
    OutputTokensDetails,
    PartReasoningText,
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseContentPartOther,
    ResponseCreatedEvent,
    ResponseCustomToolCall,
    ResponseError,
    ResponseErrorEvent,
    ResponseFailedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseIncompleteEvent,
    ResponseInProgressEvent,
    ResponseKeepAliveEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputItemOther,
    ResponseOutputMessage,
    ResponseOutputRefusal,
    ResponseOutputText,
    ResponseReasoningItem,
    ResponseReasoningSummaryPartAddedEvent,
    ResponseReasoningSummaryPartDoneEvent,
    ResponseReasoningSummaryTextDeltaEvent,
    ResponseReasoningSummaryTextDoneEvent,
    ResponseReasoningTextDeltaEvent,
    ResponseReasoningTextDoneEvent,
    ResponseRefusalDeltaEvent,
    ResponseRefusalDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
    Summary,
    UnknownEvent,
    parse_event,
    parse_response,
    to_dict,
    to_json,
)

# --------------------------------------------------------------------------------------------
# Fixtures: raw SSE bodies, decoded minimally here (the real decoder lives in rxresponses.sse)
# --------------------------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
RESPONSES_DIR = FIXTURES / "responses"
SSE_FILES = sorted(RESPONSES_DIR.glob("*.sse")) if RESPONSES_DIR.is_dir() else []

#: Fixture frames that are not valid JSON (hand-made vercel/ai fixture: a ``}`` is missing at the
#: end of its ``response.created`` and ``response.completed`` frames). Counted per file.
MALFORMED_FRAMES = {"openai__parallel-tool-call-wrapper.1.sse": 2}


def sse_data(text: str) -> Iterator[str]:
    """The ``data`` of every frame of an SSE body, ``[DONE]`` skipped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for block in text.split("\n\n"):
        lines = [line[5:] for line in block.split("\n") if line.startswith("data:")]
        data = "\n".join(line[1:] if line.startswith(" ") else line for line in lines)
        if data and not data.startswith("[DONE]"):
            yield data


def fixture_params() -> list[Any]:
    if not SSE_FILES:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{RESPONSES_DIR} is absent"))]
    return [pytest.param(path, id=path.stem) for path in SSE_FILES]


def load_frames(path: Path | None) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """(JSON frames as (text, dict), malformed frames) of one fixture file."""
    if path is None or not path.exists():
        pytest.skip("fixtures absent")
    good: list[tuple[str, dict[str, Any]]] = []
    bad: list[str] = []
    for data in sse_data(path.read_text(encoding="utf-8")):
        try:
            good.append((data, json.loads(data)))
        except json.JSONDecodeError:
            bad.append(data)
    return good, bad


#: The catalogue of PROTOCOL.md section 2 (2.1-2.6), written out.
CATALOGUE = {
    # 2.1 lifecycle
    "response.created",
    "response.queued",
    "response.in_progress",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "error",
    # 2.2 items and parts
    "response.output_item.added",
    "response.output_item.done",
    "response.content_part.added",
    "response.content_part.done",
    # 2.3 text, refusal, annotations
    "response.output_text.delta",
    "response.output_text.done",
    "response.output_text.annotation.added",
    "response.refusal.delta",
    "response.refusal.done",
    # 2.5 tool calls and reasoning
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.custom_tool_call_input.delta",
    "response.custom_tool_call_input.done",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_part.done",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.reasoning_text.delta",
    "response.reasoning_text.done",
    # section 9: the Open Responses specification's names of the two events above
    "response.reasoning.delta",
    "response.reasoning.done",
    # 2.6 hosted tools and others
    "response.web_search_call.in_progress",
    "response.web_search_call.searching",
    "response.web_search_call.completed",
    "response.file_search_call.in_progress",
    "response.file_search_call.searching",
    "response.file_search_call.completed",
    "response.code_interpreter_call.in_progress",
    "response.code_interpreter_call.interpreting",
    "response.code_interpreter_call.completed",
    "response.code_interpreter_call_code.delta",
    "response.code_interpreter_call_code.done",
    "response.image_generation_call.in_progress",
    "response.image_generation_call.generating",
    "response.image_generation_call.completed",
    "response.image_generation_call.partial_image",
    "response.mcp_call.in_progress",
    "response.mcp_call.completed",
    "response.mcp_call.failed",
    "response.mcp_call_arguments.delta",
    "response.mcp_call_arguments.done",
    "response.mcp_list_tools.in_progress",
    "response.mcp_list_tools.completed",
    "response.mcp_list_tools.failed",
    "response.shell_call_command.added",
    "response.shell_call_command.delta",
    "response.shell_call_command.done",
    "response.shell_call_output_content.delta",
    "response.shell_call_output_content.done",
    "response.audio.delta",
    "response.audio.done",
    "response.audio.transcript.delta",
    "response.audio.transcript.done",
    "response.compaction.compacting",
    "keepalive",
    "response.apply_patch_call_operation_diff.delta",
    "response.apply_patch_call_operation_diff.done",
}

#: Event types that are on the wire but in no union of openai 3.54.0.
NOT_IN_SDK = {
    "keepalive",
    "response.reasoning.delta",  # Open Responses names, not OpenAI's
    "response.reasoning.done",
    "response.apply_patch_call_operation_diff.delta",
    "response.apply_patch_call_operation_diff.done",
}

#: The official SDK version our types are checked against (PROTOCOL.md section 0).
REFERENCE_SDK = "3.54.0"

#: Marks the tests that use the SDK as an oracle: they only mean something against the pinned
#: version, so they skip on another one (and :func:`test_reference_sdk_version` fails instead).
needs_reference_sdk = pytest.mark.skipif(
    openai.__version__ != REFERENCE_SDK,
    reason=f"the oracle is openai=={REFERENCE_SDK}, found {openai.__version__}",
)

SDK_EVENT_ADAPTER: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(sdk.ResponseStreamEvent)

#: The SDK's event classes by type (not all of them are exported by ``openai.types.responses``).
SDK_EVENT_CLASSES: dict[str, type[pydantic.BaseModel]] = {
    get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in get_args(get_args(sdk.ResponseStreamEvent)[0])
}


def sdk_validate(d: dict[str, Any]) -> Any:
    """Validate a dict with the official SDK's event union (raises if it does not conform)."""
    return SDK_EVENT_ADAPTER.validate_python(d)


# --------------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------------


def test_reference_sdk_version() -> None:
    assert openai.__version__ == REFERENCE_SDK, (
        f"openai=={REFERENCE_SDK} is the reference schema (pinned in pyproject.toml), but "
        f"{openai.__version__} is installed: the SDK-oracle tests are skipped"
    )


def test_every_catalogue_type_has_a_class() -> None:
    assert EVENT_TYPES == CATALOGUE


def test_union_tags_match_class_types() -> None:
    from rxresponses.types.events import _EVENT_CLASSES

    for tag, cls in _EVENT_CLASSES.items():
        assert cls.model_fields["type"].default == tag, cls
        # Built with no arguments but the required ones, the type is filled in.
        assert cls.__name__.endswith("Event")


@needs_reference_sdk
def test_class_names_match_the_sdk() -> None:
    from rxresponses.types.events import _EVENT_CLASSES

    for tag, cls in _EVENT_CLASSES.items():
        if tag in NOT_IN_SDK:
            assert tag not in SDK_EVENT_CLASSES
        else:
            assert SDK_EVENT_CLASSES[tag].__name__ == cls.__name__


@needs_reference_sdk
def test_field_names_are_sdk_field_names() -> None:
    """Every field we declare exists, under the same name, in the SDK class of the same name."""
    from rxresponses.types.events import _EVENT_CLASSES

    pairs: list[tuple[Any, Any]] = [
        (cls, SDK_EVENT_CLASSES[tag])
        for tag, cls in _EVENT_CLASSES.items()
        if tag not in NOT_IN_SDK
    ]
    pairs += [
        (Response, sdk.Response),
        (ResponseOutputMessage, sdk.ResponseOutputMessage),
        (ResponseOutputText, sdk.ResponseOutputText),
        (ResponseOutputRefusal, sdk.ResponseOutputRefusal),
        (ResponseFunctionToolCall, sdk.ResponseFunctionToolCall),
        (ResponseReasoningItem, sdk.ResponseReasoningItem),
        (ResponseCustomToolCall, sdk.ResponseCustomToolCall),
        (ResponseUsage, sdk.ResponseUsage),
        (ResponseError, sdk.ResponseError),
    ]
    for ours, theirs in pairs:
        extra = set(ours.model_fields) - set(theirs.model_fields)
        if ours is ResponseErrorEvent:
            extra -= {"error"}  # the nested wire shape, not typed by the SDK
        assert not extra, (ours.__name__, extra)
        for name, field in ours.model_fields.items():
            if name in theirs.model_fields:
                assert field.alias == theirs.model_fields[name].alias, (ours.__name__, name)


# --------------------------------------------------------------------------------------------
# Recorded streams
# --------------------------------------------------------------------------------------------


@pytest.mark.fixtures
@pytest.mark.parametrize("path", fixture_params())
def test_fixture_frames_round_trip(path: Path | None) -> None:
    frames, malformed = load_frames(path)
    assert path is not None
    assert len(malformed) == MALFORMED_FRAMES.get(path.name, 0)
    for data in malformed:
        with pytest.raises(pydantic.ValidationError):
            parse_event(data)
    assert frames
    for text, obj in frames:
        from_text = parse_event(text)
        from_dict = parse_event(obj)
        from_bytes = parse_event(text.encode())
        assert to_dict(from_text) == obj
        assert to_dict(from_dict) == obj
        assert to_dict(from_bytes) == obj
        # The JSON text is faithful too: same values, same int/float types.
        assert json.dumps(json.loads(to_json(from_text)), sort_keys=True) == json.dumps(
            obj, sort_keys=True
        )


@pytest.mark.fixtures
@pytest.mark.parametrize("path", fixture_params())
def test_fixture_frames_parse_into_their_class(path: Path | None) -> None:
    frames, _ = load_frames(path)
    for _, obj in frames:
        event = parse_event(obj)
        if obj["type"] in EVENT_TYPES:
            assert not isinstance(event, UnknownEvent), obj["type"]
            assert type(event).model_fields["type"].default == obj["type"]
        else:
            assert isinstance(event, UnknownEvent)
        item = getattr(event, "item", None)
        if item is not None:
            expected = {
                "message": ResponseOutputMessage,
                "function_call": ResponseFunctionToolCall,
                "reasoning": ResponseReasoningItem,
                "custom_tool_call": ResponseCustomToolCall,
            }.get(obj["item"]["type"], ResponseOutputItemOther)
            assert type(item) is expected
        response = getattr(event, "response", None)
        if isinstance(response, Response):
            for out in response.output:
                assert not isinstance(out, ResponseOutputItemOther) or out.type not in {
                    "message",
                    "function_call",
                    "reasoning",
                    "custom_tool_call",
                }


@pytest.mark.fixtures
def test_all_fixture_types_are_known() -> None:
    if not SSE_FILES:
        pytest.skip("fixtures absent")
    seen = {obj["type"] for path in SSE_FILES for _, obj in load_frames(path)[0]}
    assert seen <= EVENT_TYPES, seen - EVENT_TYPES


@pytest.mark.fixtures
@pytest.mark.parametrize(
    "name",
    [
        "plain_text",
        "function_call",
        "reasoning_summary_then_text",
        "parallel_function_calls",
        "incomplete_max_output_tokens",
        "refusal",
        "failed_with_error_event",
    ],
)
def test_canonical_fixtures_match_expected(name: str) -> None:
    sse, expected_path = RESPONSES_DIR / f"{name}.sse", RESPONSES_DIR / f"{name}.expected.json"
    if not (sse.exists() and expected_path.exists()):
        pytest.skip("fixtures absent")
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    events = [parse_event(data) for data in sse_data(sse.read_text(encoding="utf-8"))]
    assert [e.type for e in events] == expected["event_types"]
    terminal = events[-1]
    assert terminal.type == expected["terminal_event"]["type"]
    assert to_dict(terminal)["response"] == expected["terminal_event"]["response"]
    response = parse_response(expected["terminal_event"]["response"])
    assert to_dict(response) == expected["terminal_event"]["response"]
    if expected.get("final_output_text") is not None:
        assert response.output_text == expected["final_output_text"]


@pytest.mark.fixtures
def test_plain_text_output_text_is_the_deltas() -> None:
    path = RESPONSES_DIR / "plain_text.sse"
    if not path.exists():
        pytest.skip("fixtures absent")
    events = [parse_event(data) for data in sse_data(path.read_text(encoding="utf-8"))]
    deltas = "".join(e.delta for e in events if isinstance(e, ResponseTextDeltaEvent))
    completed = events[-1]
    assert isinstance(completed, ResponseCompletedEvent)
    assert completed.response.output_text == deltas == "Hello! How can I help?"


@pytest.mark.fixtures
def test_openrouter_output_text_extra_is_kept_but_property_computes() -> None:
    path = RESPONSES_DIR / "pydantic-ai__test_openai_responses_raw_cot_stream_openrouter.0.sse"
    if not path.exists():
        pytest.skip("fixtures absent")
    events = [parse_event(data) for data in sse_data(path.read_text(encoding="utf-8"))]
    completed = events[-1]
    assert isinstance(completed, ResponseCompletedEvent)
    # OpenRouter sends "output_text": "" on the response; we keep it (round trip) but the
    # property reads the message parts.
    assert to_dict(completed.response)["output_text"] == ""
    assert completed.response.output_text == "4"


@pytest.mark.fixtures
def test_pre_2025_stream_without_sequence_numbers() -> None:
    path = RESPONSES_DIR / "pydantic-ai__test_openai_responses_stream.1.sse"
    if not path.exists():
        pytest.skip("fixtures absent")
    for data in sse_data(path.read_text(encoding="utf-8")):
        event = parse_event(data)
        assert event.sequence_number == 0
        assert "sequence_number" not in to_dict(event)
        if isinstance(event, ResponseTextDeltaEvent):
            assert event.logprobs == []
            assert "logprobs" not in to_dict(event)


# --------------------------------------------------------------------------------------------
# Unknown events, keepalive, error shapes
# --------------------------------------------------------------------------------------------


def test_unknown_event_type() -> None:
    raw = {"type": "response.future_thing", "x": 1}
    for data in (raw, json.dumps(raw), json.dumps(raw).encode()):
        event = parse_event(data)
        assert isinstance(event, UnknownEvent)
        assert event.type == "response.future_thing"
        assert event.sequence_number == 0
        assert event.raw == raw
        assert to_dict(event) == raw
    with_seq = {"type": "response.steer.accepted", "sequence_number": 7, "nested": {"a": [1, 2]}}
    event = parse_event(with_seq)
    assert isinstance(event, UnknownEvent)
    assert event.sequence_number == 7
    assert event.raw == with_seq


def test_unknown_event_built_in_python() -> None:
    event = UnknownEvent(type="response.future_thing", x=1)
    assert event.raw == {"type": "response.future_thing", "sequence_number": 0, "x": 1}
    # An UnknownEvent instance stays an UnknownEvent, even if its type is known.
    odd = UnknownEvent(type="response.output_text.delta")
    assert EVENT_ADAPTER.validate_python(odd) is odd


def test_keepalive() -> None:
    event = parse_event('{"type":"keepalive","sequence_number":466}')
    assert isinstance(event, ResponseKeepAliveEvent)
    assert to_dict(event) == {"type": "keepalive", "sequence_number": 466}


NESTED_ERROR = {
    "type": "error",
    "sequence_number": 2,
    "error": {
        "type": "insufficient_quota",
        "code": "insufficient_quota",
        "message": "You exceeded your current quota.",
        "param": None,
    },
}
FLAT_ERROR = {
    "type": "error",
    "sequence_number": 2,
    "code": "server_error",
    "message": "The server had an error while processing your request.",
    "param": None,
}


def test_error_event_nested_shape() -> None:
    for data in (NESTED_ERROR, json.dumps(NESTED_ERROR)):
        event = parse_event(data)
        assert isinstance(event, ResponseErrorEvent)
        assert to_dict(event) == NESTED_ERROR
        assert event.is_nested
        assert event.error_code == "insufficient_quota"
        assert event.error_message == "You exceeded your current quota."
        assert event.error_param is None
        assert event.error_type == "insufficient_quota"


def test_error_event_flat_shape() -> None:
    for data in (FLAT_ERROR, json.dumps(FLAT_ERROR)):
        event = parse_event(data)
        assert isinstance(event, ResponseErrorEvent)
        assert to_dict(event) == FLAT_ERROR
        assert not event.is_nested
        assert event.error_code == "server_error"
        assert event.error_message == "The server had an error while processing your request."
        assert event.error_param is None
        assert event.error_type is None


def test_error_event_built_in_python() -> None:
    flat = ResponseErrorEvent(code="server_error", message="boom", sequence_number=5)
    assert to_dict(flat) == {
        "type": "error",
        "sequence_number": 5,
        "code": "server_error",
        "message": "boom",
        "param": None,
    }
    # (its validation against the SDK is in the "error.flat" case of the built-events tests)

    nested = ResponseErrorEvent(
        sequence_number=2,
        error={"type": "rate_limit", "code": "rate_limit_exceeded", "message": "x"},
    )
    assert to_dict(nested) == {
        "type": "error",
        "sequence_number": 2,
        "error": {"type": "rate_limit", "code": "rate_limit_exceeded", "message": "x"},
    }
    assert nested.error_code == "rate_limit_exceeded"
    assert nested.error_message == "x"
    assert parse_event(to_dict(nested)).model_dump() == nested.model_dump()


def test_failed_response_with_unknown_error_code() -> None:
    raw = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": "m",
        "status": "failed",
        "error": {"code": "insufficient_quota", "message": "quota"},
        "output": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }
    response = parse_response(raw)
    assert response.error is not None
    assert response.error.code == "insufficient_quota"
    assert to_dict(response) == raw
    assert to_dict(parse_response(json.dumps(raw))) == raw


def test_response_error_lenient_and_defaults() -> None:
    raw = {"code": None, "message": "upstream said no"}
    error = ResponseError.model_validate(raw, context={"rxresponses_wire": True})
    assert error.code is None
    assert to_dict(error) == raw
    assert to_dict(ResponseError(message="x")) == {"code": "server_error", "message": "x"}
    assert to_dict(IncompleteDetails(reason="steered")) == {"reason": "steered"}


# --------------------------------------------------------------------------------------------
# Lenient corners of items
# --------------------------------------------------------------------------------------------


def test_unknown_item_and_part_types_are_kept() -> None:
    added = {
        "type": "response.output_item.added",
        "sequence_number": 3,
        "output_index": 0,
        "item": {"id": "ws_1", "type": "web_search_call", "status": "in_progress"},
    }
    event = parse_event(added)
    assert isinstance(event, ResponseOutputItemAddedEvent)
    assert isinstance(event.item, ResponseOutputItemOther)
    assert event.item.id == "ws_1"
    assert to_dict(event) == added

    part = {
        "type": "response.content_part.added",
        "sequence_number": 4,
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "part": {"type": "output_audio", "transcript": ""},
    }
    part_event = parse_event(part)
    assert isinstance(part_event, ResponseContentPartAddedEvent)
    assert isinstance(part_event.part, ResponseContentPartOther)
    assert to_dict(part_event) == part

    message = {
        "id": "msg_1",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [
            {
                "type": "output_text",
                "text": "hi",
                "annotations": [
                    {
                        "type": "url_citation",
                        "url": "u",
                        "title": "t",
                        "start_index": 0,
                        "end_index": 1,
                    },
                    {"type": "future_citation", "ref": 3},
                ],
            },
            {"type": "output_image", "b64": "..."},
        ],
    }
    done = {"type": "response.output_item.done", "output_index": 0, "item": message}
    done_event = parse_event(done)
    assert isinstance(done_event, ResponseOutputItemDoneEvent)
    item = done_event.item
    assert isinstance(item, ResponseOutputMessage)
    text = item.content[0]
    assert isinstance(text, ResponseOutputText)
    assert isinstance(text.annotations[0], AnnotationURLCitation)
    assert isinstance(text.annotations[1], AnnotationOther)
    assert to_dict(done_event) == done


def test_reasoning_item_without_status_and_items_with_extras() -> None:
    raw = {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAA"}
    event = parse_event({"type": "response.output_item.done", "output_index": 0, "item": raw})
    assert isinstance(event, ResponseOutputItemDoneEvent)
    assert isinstance(event.item, ResponseReasoningItem)
    assert event.item.status is None
    assert to_dict(event.item) == raw

    custom = {"type": "custom_tool_call", "id": "ctc_1", "call_id": "c", "name": "n", "input": "x"}
    custom_with_status = {**custom, "status": "completed"}
    item = parse_event(
        {"type": "response.output_item.done", "output_index": 0, "item": custom_with_status}
    )
    assert isinstance(item, ResponseOutputItemDoneEvent)
    assert isinstance(item.item, ResponseCustomToolCall)
    assert to_dict(item.item) == custom_with_status


def test_function_call_async_alias() -> None:
    raw = {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}", "async": True}
    event = parse_event({"type": "response.output_item.done", "output_index": 0, "item": raw})
    assert isinstance(event, ResponseOutputItemDoneEvent)
    assert isinstance(event.item, ResponseFunctionToolCall)
    assert event.item.async_ is True
    assert to_dict(event.item) == raw
    built = ResponseFunctionToolCall(call_id="c", name="f", arguments="{}", async_=True)
    assert to_dict(built) == {
        "type": "function_call",
        "arguments": "{}",
        "call_id": "c",
        "name": "f",
        "async": True,
    }


def test_python_built_items_leave_unset_optionals_out() -> None:
    assert to_dict(ResponseFunctionToolCall(call_id="call_1", name="f")) == {
        "type": "function_call",
        "arguments": "",
        "call_id": "call_1",
        "name": "f",
    }
    assert to_dict(ResponseReasoningItem(id="rs_1")) == {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [],
    }
    assert to_dict(ResponseOutputMessage(id="msg_1")) == {
        "id": "msg_1",
        "type": "message",
        "status": "in_progress",
        "content": [],
        "role": "assistant",
    }
    assert to_dict(ResponseOutputItemOther(type="web_search_call", id="ws_1", action={})) == {
        "type": "web_search_call",
        "id": "ws_1",
        "action": {},
    }


def test_wire_models_dump_only_given_fields_nested() -> None:
    raw = {
        "type": "response.content_part.added",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "part": {"type": "output_text", "text": ""},
    }
    event = parse_event(raw)
    assert isinstance(event, ResponseContentPartAddedEvent)
    assert isinstance(event.part, ResponseOutputText)
    assert event.part.annotations == []
    assert to_dict(event) == raw


def test_usage_defaults_for_old_streams() -> None:
    raw = {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 7,
    }
    usage = ResponseUsage.model_validate(raw, context={"rxresponses_wire": True})
    assert usage.input_tokens_details.cache_write_tokens == 0
    assert to_dict(usage) == raw
    assert to_dict(ResponseUsage(input_tokens=5, output_tokens=2, total_tokens=7)) == {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 7,
    }


# --------------------------------------------------------------------------------------------
# Events built in Python validate against the official SDK
# --------------------------------------------------------------------------------------------

#: The dump of ``Response(id="resp_1", created_at=1757687055, model="gpt-4.1", ...)`` except
#: ``status``, ``output``, ``usage``, ``error``, ``incomplete_details``, ``completed_at``.
RESPONSE_COMMON: dict[str, Any] = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1757687055,
    "background": None,
    "instructions": None,
    "max_output_tokens": None,
    "max_tool_calls": None,
    "model": "gpt-4.1",
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "prompt_cache_key": None,
    "reasoning": None,
    "safety_identifier": None,
    "service_tier": None,
    "temperature": None,
    "text": None,
    "tool_choice": "auto",
    "tools": [],
    "top_logprobs": None,
    "top_p": None,
    "truncation": None,
    "user": None,
    "metadata": None,
}


def make_response(**fields: Any) -> Response:
    return Response(id="resp_1", created_at=1757687055, model="gpt-4.1", **fields)


def full_output() -> list[Any]:
    return [
        ResponseReasoningItem(
            id="rs_1",
            summary=[Summary(text="Thinking about it.")],
            content=[Content(text="raw thoughts")],
            status="completed",
        ),
        ResponseOutputMessage(
            id="msg_1",
            status="completed",
            content=[
                ResponseOutputText(
                    text="Hi",
                    logprobs=[
                        Logprob(
                            token="Hi",
                            bytes=[72, 105],
                            logprob=-0.25,
                            top_logprobs=[
                                LogprobTopLogprob(token="Hi", bytes=[72, 105], logprob=-0.25)
                            ],
                        )
                    ],
                ),
                ResponseOutputText(text=" there"),
                ResponseOutputRefusal(refusal="I can't share that."),
            ],
        ),
        ResponseFunctionToolCall(
            id="fc_1",
            call_id="call_1",
            name="get_weather",
            arguments='{"city":"Paris"}',
            status="completed",
        ),
    ]


FULL_OUTPUT_DICTS: list[dict[str, Any]] = [
    {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "Thinking about it."}],
        "content": [{"type": "reasoning_text", "text": "raw thoughts"}],
        "status": "completed",
    },
    {
        "id": "msg_1",
        "type": "message",
        "status": "completed",
        "content": [
            {
                "type": "output_text",
                "annotations": [],
                "logprobs": [
                    {
                        "token": "Hi",
                        "bytes": [72, 105],
                        "logprob": -0.25,
                        "top_logprobs": [{"token": "Hi", "bytes": [72, 105], "logprob": -0.25}],
                    }
                ],
                "text": "Hi",
            },
            {"type": "output_text", "annotations": [], "logprobs": [], "text": " there"},
            {"type": "refusal", "refusal": "I can't share that."},
        ],
        "role": "assistant",
    },
    {
        "id": "fc_1",
        "type": "function_call",
        "status": "completed",
        "arguments": '{"city":"Paris"}',
        "call_id": "call_1",
        "name": "get_weather",
    },
]

USAGE_DICT = {
    "input_tokens": 20,
    "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
    "output_tokens": 12,
    "output_tokens_details": {"reasoning_tokens": 5},
    "total_tokens": 32,
}


def built_events() -> list[tuple[str, Any, dict[str, Any]]]:
    """(id, event built in Python, the dict it must dump to)."""
    usage = ResponseUsage(
        input_tokens=20,
        input_tokens_details=InputTokensDetails(cached_tokens=4),
        output_tokens=12,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=5),
        total_tokens=32,
    )
    lp = Logprob(
        token="Hi", logprob=-0.25, top_logprobs=[LogprobTopLogprob(token="Hey", logprob=-2.5)]
    )
    lp_dict = {
        "token": "Hi",
        "bytes": [],
        "logprob": -0.25,
        "top_logprobs": [{"token": "Hey", "bytes": [], "logprob": -2.5}],
    }
    item_ids = {"item_id": "msg_1", "output_index": 1, "content_index": 0}
    return [
        (
            "created",
            ResponseCreatedEvent(sequence_number=0, response=make_response(status="in_progress")),
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": {
                    **RESPONSE_COMMON,
                    "status": "in_progress",
                    "completed_at": None,
                    "error": None,
                    "incomplete_details": None,
                    "output": [],
                    "usage": None,
                },
            },
        ),
        (
            "in_progress",
            ResponseInProgressEvent(
                sequence_number=1, response=make_response(status="in_progress")
            ),
            {
                "type": "response.in_progress",
                "sequence_number": 1,
                "response": {
                    **RESPONSE_COMMON,
                    "status": "in_progress",
                    "completed_at": None,
                    "error": None,
                    "incomplete_details": None,
                    "output": [],
                    "usage": None,
                },
            },
        ),
        (
            "output_item.added.message",
            ResponseOutputItemAddedEvent(
                sequence_number=2, output_index=1, item=ResponseOutputMessage(id="msg_1")
            ),
            {
                "type": "response.output_item.added",
                "sequence_number": 2,
                "output_index": 1,
                "item": {
                    "id": "msg_1",
                    "type": "message",
                    "status": "in_progress",
                    "content": [],
                    "role": "assistant",
                },
            },
        ),
        (
            "content_part.added.output_text",
            ResponseContentPartAddedEvent(sequence_number=3, **item_ids, part=ResponseOutputText()),
            {
                "type": "response.content_part.added",
                "sequence_number": 3,
                **item_ids,
                "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
            },
        ),
        (
            "output_text.delta",
            ResponseTextDeltaEvent(sequence_number=4, **item_ids, delta="Hi", logprobs=[lp]),
            {
                "type": "response.output_text.delta",
                "sequence_number": 4,
                **item_ids,
                "delta": "Hi",
                "logprobs": [lp_dict],
            },
        ),
        (
            "output_text.delta.no_logprobs",
            ResponseTextDeltaEvent(sequence_number=5, **item_ids, delta=" there"),
            {
                "type": "response.output_text.delta",
                "sequence_number": 5,
                **item_ids,
                "delta": " there",
                "logprobs": [],
            },
        ),
        (
            "output_text.done",
            ResponseTextDoneEvent(sequence_number=6, **item_ids, text="Hi there", logprobs=[lp]),
            {
                "type": "response.output_text.done",
                "sequence_number": 6,
                **item_ids,
                "text": "Hi there",
                "logprobs": [lp_dict],
            },
        ),
        (
            "content_part.done.output_text",
            ResponseContentPartDoneEvent(
                sequence_number=7, **item_ids, part=ResponseOutputText(text="Hi there")
            ),
            {
                "type": "response.content_part.done",
                "sequence_number": 7,
                **item_ids,
                "part": {
                    "type": "output_text",
                    "annotations": [],
                    "logprobs": [],
                    "text": "Hi there",
                },
            },
        ),
        (
            "content_part.added.refusal",
            ResponseContentPartAddedEvent(
                sequence_number=8,
                item_id="msg_1",
                output_index=1,
                content_index=1,
                part=ResponseOutputRefusal(),
            ),
            {
                "type": "response.content_part.added",
                "sequence_number": 8,
                "item_id": "msg_1",
                "output_index": 1,
                "content_index": 1,
                "part": {"type": "refusal", "refusal": ""},
            },
        ),
        (
            "refusal.delta",
            ResponseRefusalDeltaEvent(
                sequence_number=9, item_id="msg_1", output_index=1, content_index=1, delta="I can't"
            ),
            {
                "type": "response.refusal.delta",
                "sequence_number": 9,
                "item_id": "msg_1",
                "output_index": 1,
                "content_index": 1,
                "delta": "I can't",
            },
        ),
        (
            "refusal.done",
            ResponseRefusalDoneEvent(
                sequence_number=10,
                item_id="msg_1",
                output_index=1,
                content_index=1,
                refusal="I can't share that.",
            ),
            {
                "type": "response.refusal.done",
                "sequence_number": 10,
                "item_id": "msg_1",
                "output_index": 1,
                "content_index": 1,
                "refusal": "I can't share that.",
            },
        ),
        (
            "content_part.done.refusal",
            ResponseContentPartDoneEvent(
                sequence_number=11,
                item_id="msg_1",
                output_index=1,
                content_index=1,
                part=ResponseOutputRefusal(refusal="I can't share that."),
            ),
            {
                "type": "response.content_part.done",
                "sequence_number": 11,
                "item_id": "msg_1",
                "output_index": 1,
                "content_index": 1,
                "part": {"type": "refusal", "refusal": "I can't share that."},
            },
        ),
        (
            "output_item.done.message",
            ResponseOutputItemDoneEvent(sequence_number=12, output_index=1, item=full_output()[1]),
            {
                "type": "response.output_item.done",
                "sequence_number": 12,
                "output_index": 1,
                "item": FULL_OUTPUT_DICTS[1],
            },
        ),
        (
            "output_item.added.function_call",
            ResponseOutputItemAddedEvent(
                sequence_number=13,
                output_index=2,
                item=ResponseFunctionToolCall(
                    id="fc_1", call_id="call_1", name="get_weather", status="in_progress"
                ),
            ),
            {
                "type": "response.output_item.added",
                "sequence_number": 13,
                "output_index": 2,
                "item": {
                    "id": "fc_1",
                    "type": "function_call",
                    "status": "in_progress",
                    "arguments": "",
                    "call_id": "call_1",
                    "name": "get_weather",
                },
            },
        ),
        (
            "function_call_arguments.delta",
            ResponseFunctionCallArgumentsDeltaEvent(
                sequence_number=14, item_id="fc_1", output_index=2, delta='{"city":'
            ),
            {
                "type": "response.function_call_arguments.delta",
                "sequence_number": 14,
                "item_id": "fc_1",
                "output_index": 2,
                "delta": '{"city":',
            },
        ),
        (
            "function_call_arguments.done",
            ResponseFunctionCallArgumentsDoneEvent(
                sequence_number=15, item_id="fc_1", output_index=2, arguments='{"city":"Paris"}'
            ),
            {
                "type": "response.function_call_arguments.done",
                "sequence_number": 15,
                "item_id": "fc_1",
                "output_index": 2,
                "arguments": '{"city":"Paris"}',
            },
        ),
        (
            "output_item.done.function_call",
            ResponseOutputItemDoneEvent(sequence_number=16, output_index=2, item=full_output()[2]),
            {
                "type": "response.output_item.done",
                "sequence_number": 16,
                "output_index": 2,
                "item": FULL_OUTPUT_DICTS[2],
            },
        ),
        (
            "output_item.added.reasoning",
            ResponseOutputItemAddedEvent(
                sequence_number=17, output_index=0, item=ResponseReasoningItem(id="rs_1")
            ),
            {
                "type": "response.output_item.added",
                "sequence_number": 17,
                "output_index": 0,
                "item": {"id": "rs_1", "type": "reasoning", "summary": []},
            },
        ),
        (
            "reasoning_summary_part.added",
            ResponseReasoningSummaryPartAddedEvent(
                sequence_number=18, item_id="rs_1", output_index=0, summary_index=0
            ),
            {
                "type": "response.reasoning_summary_part.added",
                "sequence_number": 18,
                "item_id": "rs_1",
                "output_index": 0,
                "summary_index": 0,
                "part": {"type": "summary_text", "text": ""},
            },
        ),
        (
            "reasoning_summary_text.delta",
            ResponseReasoningSummaryTextDeltaEvent(
                sequence_number=19,
                item_id="rs_1",
                output_index=0,
                summary_index=0,
                delta="Thinking",
            ),
            {
                "type": "response.reasoning_summary_text.delta",
                "sequence_number": 19,
                "item_id": "rs_1",
                "output_index": 0,
                "summary_index": 0,
                "delta": "Thinking",
            },
        ),
        (
            "reasoning_summary_text.done",
            ResponseReasoningSummaryTextDoneEvent(
                sequence_number=20,
                item_id="rs_1",
                output_index=0,
                summary_index=0,
                text="Thinking about it.",
            ),
            {
                "type": "response.reasoning_summary_text.done",
                "sequence_number": 20,
                "item_id": "rs_1",
                "output_index": 0,
                "summary_index": 0,
                "text": "Thinking about it.",
            },
        ),
        (
            "reasoning_summary_part.done",
            ResponseReasoningSummaryPartDoneEvent(
                sequence_number=21,
                item_id="rs_1",
                output_index=0,
                summary_index=0,
                part=Summary(text="Thinking about it."),
            ),
            {
                "type": "response.reasoning_summary_part.done",
                "sequence_number": 21,
                "item_id": "rs_1",
                "output_index": 0,
                "summary_index": 0,
                "part": {"type": "summary_text", "text": "Thinking about it."},
            },
        ),
        (
            "reasoning_summary_part.done.incomplete",
            ResponseReasoningSummaryPartDoneEvent(
                sequence_number=21,
                item_id="rs_1",
                output_index=0,
                summary_index=1,
                part=Summary(text="Cut"),
                status="incomplete",
            ),
            {
                "type": "response.reasoning_summary_part.done",
                "sequence_number": 21,
                "item_id": "rs_1",
                "output_index": 0,
                "summary_index": 1,
                "part": {"type": "summary_text", "text": "Cut"},
                "status": "incomplete",
            },
        ),
        (
            "content_part.added.reasoning_text",
            ResponseContentPartAddedEvent(
                sequence_number=22,
                item_id="rs_1",
                output_index=0,
                content_index=0,
                part=PartReasoningText(),
            ),
            {
                "type": "response.content_part.added",
                "sequence_number": 22,
                "item_id": "rs_1",
                "output_index": 0,
                "content_index": 0,
                "part": {"type": "reasoning_text", "text": ""},
            },
        ),
        (
            "reasoning_text.delta",
            ResponseReasoningTextDeltaEvent(
                sequence_number=23, item_id="rs_1", output_index=0, content_index=0, delta="raw"
            ),
            {
                "type": "response.reasoning_text.delta",
                "sequence_number": 23,
                "item_id": "rs_1",
                "output_index": 0,
                "content_index": 0,
                "delta": "raw",
            },
        ),
        (
            "reasoning_text.done",
            ResponseReasoningTextDoneEvent(
                sequence_number=24,
                item_id="rs_1",
                output_index=0,
                content_index=0,
                text="raw thoughts",
            ),
            {
                "type": "response.reasoning_text.done",
                "sequence_number": 24,
                "item_id": "rs_1",
                "output_index": 0,
                "content_index": 0,
                "text": "raw thoughts",
            },
        ),
        (
            "content_part.done.reasoning_text",
            ResponseContentPartDoneEvent(
                sequence_number=25,
                item_id="rs_1",
                output_index=0,
                content_index=0,
                part=Content(text="raw thoughts"),
            ),
            {
                "type": "response.content_part.done",
                "sequence_number": 25,
                "item_id": "rs_1",
                "output_index": 0,
                "content_index": 0,
                "part": {"type": "reasoning_text", "text": "raw thoughts"},
            },
        ),
        (
            "output_item.done.reasoning",
            ResponseOutputItemDoneEvent(sequence_number=26, output_index=0, item=full_output()[0]),
            {
                "type": "response.output_item.done",
                "sequence_number": 26,
                "output_index": 0,
                "item": FULL_OUTPUT_DICTS[0],
            },
        ),
        (
            "completed",
            ResponseCompletedEvent(
                sequence_number=27,
                response=make_response(
                    status="completed", completed_at=1757687057, output=full_output(), usage=usage
                ),
            ),
            {
                "type": "response.completed",
                "sequence_number": 27,
                "response": {
                    **RESPONSE_COMMON,
                    "status": "completed",
                    "completed_at": 1757687057,
                    "error": None,
                    "incomplete_details": None,
                    "output": FULL_OUTPUT_DICTS,
                    "usage": USAGE_DICT,
                },
            },
        ),
        (
            "incomplete",
            ResponseIncompleteEvent(
                sequence_number=9,
                response=make_response(
                    status="incomplete",
                    incomplete_details=IncompleteDetails(reason="max_output_tokens"),
                    output=[
                        ResponseOutputMessage(
                            id="msg_1",
                            status="incomplete",
                            content=[ResponseOutputText(text="Riv")],
                        )
                    ],
                    usage=usage,
                ),
            ),
            {
                "type": "response.incomplete",
                "sequence_number": 9,
                "response": {
                    **RESPONSE_COMMON,
                    "status": "incomplete",
                    "completed_at": None,
                    "error": None,
                    "incomplete_details": {"reason": "max_output_tokens"},
                    "output": [
                        {
                            "id": "msg_1",
                            "type": "message",
                            "status": "incomplete",
                            "content": [
                                {
                                    "type": "output_text",
                                    "annotations": [],
                                    "logprobs": [],
                                    "text": "Riv",
                                }
                            ],
                            "role": "assistant",
                        }
                    ],
                    "usage": USAGE_DICT,
                },
            },
        ),
        (
            "error.flat",
            ResponseErrorEvent(sequence_number=2, code="server_error", message="boom"),
            {
                "type": "error",
                "sequence_number": 2,
                "code": "server_error",
                "message": "boom",
                "param": None,
            },
        ),
        (
            "failed",
            ResponseFailedEvent(
                sequence_number=3,
                response=make_response(
                    status="failed", error=ResponseError(code="server_error", message="boom")
                ),
            ),
            {
                "type": "response.failed",
                "sequence_number": 3,
                "response": {
                    **RESPONSE_COMMON,
                    "status": "failed",
                    "completed_at": None,
                    "error": {"code": "server_error", "message": "boom"},
                    "incomplete_details": None,
                    "output": [],
                    "usage": None,
                },
            },
        ),
    ]


BUILT = built_events()

#: Fields compared between our dump and the SDK's re-dump of it.
IMPORTANT = (
    "type",
    "sequence_number",
    "item_id",
    "output_index",
    "content_index",
    "summary_index",
    "delta",
    "text",
    "refusal",
    "arguments",
    "code",
    "message",
)


@pytest.mark.parametrize(("event", "expected"), [pytest.param(e, d, id=i) for i, e, d in BUILT])
def test_python_built_event_dump(event: Any, expected: dict[str, Any]) -> None:
    assert to_dict(event) == expected
    assert json.loads(to_json(event)) == expected
    # And it parses back into the same class with the same dump.
    again = parse_event(expected)
    assert type(again) is type(event)
    assert to_dict(again) == expected


@needs_reference_sdk
@pytest.mark.parametrize(("event", "expected"), [pytest.param(e, d, id=i) for i, e, d in BUILT])
def test_python_built_event_validates_against_sdk(event: Any, expected: dict[str, Any]) -> None:
    theirs = sdk_validate(to_dict(event))
    assert type(theirs).__name__ == type(event).__name__
    dumped = theirs.model_dump(mode="json", exclude_unset=False)
    for key in IMPORTANT:
        if key in expected:
            assert dumped[key] == expected[key], key
    if "part" in expected:
        assert dumped["part"]["type"] == expected["part"]["type"]
        for key in ("text", "refusal"):
            if key in expected["part"]:
                assert dumped["part"][key] == expected["part"][key]
    if "item" in expected:
        for key in ("id", "type", "status", "call_id", "name", "arguments"):
            if key in expected["item"]:
                assert dumped["item"][key] == expected["item"][key], key
    if "response" in expected:
        ours = event.response
        assert dumped["response"]["id"] == expected["response"]["id"]
        assert dumped["response"]["status"] == expected["response"]["status"]
        assert theirs.response.output_text == ours.output_text
        assert len(dumped["response"]["output"]) == len(expected["response"]["output"])
        for item_theirs, item_expected in zip(
            dumped["response"]["output"], expected["response"]["output"], strict=True
        ):
            assert item_theirs["id"] == item_expected["id"]
            assert item_theirs["type"] == item_expected["type"]
        if expected["response"]["usage"] is not None:
            usage = theirs.response.usage.model_dump(mode="json", exclude_none=True)
            assert usage == expected["response"]["usage"]


def test_built_events_cover_the_representative_set() -> None:
    built_types = {d["type"] for _, _, d in BUILT}
    assert built_types == {
        "response.created",
        "response.in_progress",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.refusal.delta",
        "response.refusal.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_part.done",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
    }


# --------------------------------------------------------------------------------------------
# Response.output_text, construction details, cost
# --------------------------------------------------------------------------------------------


def test_output_text() -> None:
    response = make_response(status="completed", output=full_output())
    # Only output_text parts of message items: not the refusal, not reasoning, not arguments.
    assert response.output_text == "Hi there"
    assert make_response().output_text == ""
    two_messages = make_response(
        output=[
            ResponseOutputMessage(id="a", content=[ResponseOutputText(text="one ")]),
            ResponseFunctionToolCall(call_id="c", name="f"),
            ResponseOutputMessage(id="b", content=[ResponseOutputText(text="two")]),
        ]
    )
    assert two_messages.output_text == "one two"


def test_type_is_filled_in_and_instances_are_kept() -> None:
    message = ResponseOutputMessage(id="msg_1")
    event = ResponseOutputItemAddedEvent(output_index=0, item=message)
    assert event.type == "response.output_item.added"
    assert event.item is message
    # A fallback instance whose type names a modelled class stays in the fallback.
    other = ResponseOutputItemOther(type="message", id="x")
    assert ResponseOutputItemAddedEvent(output_index=0, item=other).item is other
    delta = ResponseTextDeltaEvent(item_id="m", output_index=0, content_index=0, delta="x")
    assert EVENT_ADAPTER.validate_python(delta) is delta


def test_items_built_from_dicts_in_python_dump_all_required_fields() -> None:
    event = ResponseOutputItemAddedEvent(
        output_index=0, item={"type": "function_call", "call_id": "c", "name": "f"}
    )
    assert isinstance(event.item, ResponseFunctionToolCall)
    assert to_dict(event)["item"] == {
        "type": "function_call",
        "arguments": "",
        "call_id": "c",
        "name": "f",
    }


def test_construction_cost_is_a_few_microseconds() -> None:
    n = 20_000

    def build() -> None:
        for i in range(n):
            ResponseTextDeltaEvent(
                item_id="msg_1",
                output_index=0,
                content_index=0,
                delta="x",
                logprobs=[],
                sequence_number=i,
            )

    build()  # warm up
    start = time.thread_time()  # CPU time: a busy machine's other processes do not count
    build()
    per_event = (time.thread_time() - start) / n
    # ~3.5 us on a dev machine; the bound is loose so that slow CI machines pass.
    assert per_event < 50e-6, f"{per_event * 1e6:.1f} us per event"

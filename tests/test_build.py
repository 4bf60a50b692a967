"""``WireModel.build()`` (construction without validation) makes the model validation makes.

The stages build their lifecycle events and items with ``build()``; these tests hold each class
they build, with the values they pass, equal to ``cls(**values)``: same dump, same set fields,
same equality, and accepted by the official schema. Then the rules ``build()`` enforces.
"""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from openai.types.responses import ResponseStreamEvent as SDKEvent

from rxresponses.types import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFailedEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseIncompleteEvent,
    ResponseInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputRefusal,
    ResponseOutputText,
    ResponseReasoningItem,
    ResponseReasoningSummaryPartAddedEvent,
    ResponseReasoningSummaryPartDoneEvent,
    ResponseReasoningSummaryTextDoneEvent,
    ResponseReasoningTextDoneEvent,
    ResponseRefusalDoneEvent,
    ResponseTextDoneEvent,
    WireModel,
    to_dict,
)
from rxresponses.types._base import buildable_post_init
from rxresponses.types.response import (
    Content,
    InputTokensDetails,
    OutputTokensDetails,
    ResponseUsage,
    Summary,
)

SDK = pydantic.TypeAdapter(SDKEvent)


def _response(**extra: Any) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1_700_000_000,
        "model": "m",
        "status": "in_progress",
        "output": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": None,
        "error": None,
        "incomplete_details": None,
        **extra,
    }


def _text() -> dict[str, Any]:
    return {"annotations": [], "text": "Hi", "logprobs": []}


def _message(status: str = "completed") -> dict[str, Any]:
    return {"id": "msg_1", "status": status, "content": [ResponseOutputText(**_text())]}


def _call(**extra: Any) -> dict[str, Any]:
    return {"id": "fc_1", "call_id": "call_1", "name": "f", "arguments": '{"a":1}', **extra}


def _reasoning() -> dict[str, Any]:
    return {"id": "rs_1", "summary": [], "content": [Content(text="hm")]}


# (class, values), values as the stages pass them; nested models are built validated here so
# that only the class under test is built by build().
CASES: list[tuple[type[WireModel], dict[str, Any]]] = [
    (Response, _response()),
    (
        Response,
        _response(
            status="completed",
            completed_at=1_700_000_001,
            output=[ResponseOutputMessage(**_message())],
            usage=ResponseUsage(
                input_tokens=3,
                output_tokens=2,
                total_tokens=5,
                input_tokens_details={"cached_tokens": 0},
                output_tokens_details={"reasoning_tokens": 0},
            ),
        ),
    ),
    (ResponseOutputMessage, {"id": "msg_1", "status": "in_progress", "content": []}),
    (ResponseOutputMessage, _message()),
    (ResponseOutputText, _text()),
    (ResponseOutputRefusal, {"refusal": "No"}),
    (ResponseFunctionToolCall, _call(status="in_progress", arguments="")),
    (ResponseFunctionToolCall, {"call_id": "call_1", "name": "f"}),  # sparse fields left out
    (ResponseReasoningItem, {"id": "rs_1", "summary": []}),
    (ResponseReasoningItem, _reasoning()),
    (Summary, {"text": "hm"}),
    (InputTokensDetails, {"cached_tokens": 3, "cache_write_tokens": 0}),
    (OutputTokensDetails, {"reasoning_tokens": 2}),
    (
        ResponseUsage,
        {
            "input_tokens": 5,
            "input_tokens_details": InputTokensDetails(cached_tokens=3, cache_write_tokens=0),
            "output_tokens": 2,
            "output_tokens_details": OutputTokensDetails(reasoning_tokens=2),
            "total_tokens": 7,
        },
    ),
    (Content, {"text": "hm"}),
    (ResponseCreatedEvent, {"response": Response(**_response())}),
    (ResponseInProgressEvent, {"response": Response(**_response())}),
    (ResponseCompletedEvent, {"response": Response(**_response(status="completed"))}),
    (
        ResponseIncompleteEvent,
        {
            "response": Response(
                **_response(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
            )
        },
    ),
    (
        ResponseFailedEvent,
        {
            "response": Response(
                **_response(status="failed", error={"code": "server_error", "message": "x"})
            )
        },
    ),
    (
        ResponseOutputItemAddedEvent,
        {"output_index": 0, "item": ResponseOutputMessage(**_message("in_progress"))},
    ),
    (ResponseOutputItemDoneEvent, {"output_index": 1, "item": ResponseFunctionToolCall(**_call())}),
    (
        ResponseOutputItemDoneEvent,
        {"output_index": 2, "item": ResponseReasoningItem(**_reasoning())},
    ),
    (
        ResponseContentPartAddedEvent,
        {
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "part": ResponseOutputText(annotations=[], text="", logprobs=[]),
        },
    ),
    (
        ResponseContentPartDoneEvent,
        {
            "item_id": "rs_1",
            "output_index": 0,
            "content_index": 0,
            "part": Content(text="hm"),
        },
    ),
    (
        ResponseTextDoneEvent,
        {"item_id": "msg_1", "output_index": 0, "content_index": 0, "text": "Hi", "logprobs": []},
    ),
    (
        ResponseRefusalDoneEvent,
        {"item_id": "msg_1", "output_index": 0, "content_index": 0, "refusal": "No"},
    ),
    (
        ResponseFunctionCallArgumentsDoneEvent,
        {"item_id": "fc_1", "output_index": 1, "arguments": "{}"},
    ),
    (
        ResponseReasoningSummaryPartAddedEvent,
        {"item_id": "rs_1", "output_index": 0, "summary_index": 0, "part": Summary(text="")},
    ),
    (
        ResponseReasoningSummaryPartDoneEvent,
        {"item_id": "rs_1", "output_index": 0, "summary_index": 0, "part": Summary(text="hm")},
    ),
    (
        ResponseReasoningSummaryTextDoneEvent,
        {"item_id": "rs_1", "output_index": 0, "summary_index": 0, "text": "hm"},
    ),
    (
        ResponseReasoningTextDoneEvent,
        {"item_id": "rs_1", "output_index": 0, "content_index": 0, "text": "hm"},
    ),
]


@pytest.mark.parametrize(
    ("cls", "values"), CASES, ids=[f"{c.__name__}-{i}" for i, (c, _v) in enumerate(CASES)]
)
def test_build_equals_validated_construction(cls: type[WireModel], values: dict[str, Any]) -> None:
    validated = cls(**values)
    built = cls.build(**values)
    assert type(built) is cls
    assert to_dict(built) == to_dict(validated)
    assert built.model_fields_set == validated.model_fields_set
    assert built == validated
    assert built.model_dump_json() == validated.model_dump_json()
    if "Event" in cls.__name__:  # events carry a sequence number once assemble() numbers them
        built_numbered = cls.build(**values)
        built_numbered.sequence_number = 4  # type: ignore[attr-defined]
        dumped = to_dict(built_numbered)
        sdk = SDK.validate_python(dumped)  # the official schema accepts it, field for field
        assert sdk.model_dump(mode="json", by_alias=True, exclude_unset=True) == dumped


def test_build_gives_each_model_its_own_default_containers() -> None:
    a = ResponseOutputMessage.build(id="msg_1")
    b = ResponseOutputMessage.build(id="msg_2")
    a.content.append(ResponseOutputText(annotations=[], text="x", logprobs=[]))
    assert b.content == []
    r1, r2 = (
        Response.build(id="r", created_at=1, model="m"),
        Response.build(id="r", created_at=1, model="m"),
    )
    r1.tools.append({"type": "function"})
    assert r2.tools == []
    assert r1.output is not r2.output


def test_build_adopts_values_without_copying() -> None:
    parts: list[Any] = []
    msg = ResponseOutputMessage.build(id="msg_1", content=parts)
    assert msg.content is parts


def test_build_requires_the_required_fields() -> None:
    with pytest.raises(TypeError, match="'call_id'"):
        ResponseFunctionToolCall.build(name="f")


def test_build_refuses_unknown_fields_and_aliases() -> None:
    with pytest.raises(TypeError, match="unknown fields \\['colour'\\]"):
        Summary.build(text="x", colour="red")
    with pytest.raises(TypeError, match="'async'"):  # field names only: async_, not async
        ResponseFunctionToolCall.build(call_id="c", name="f", **{"async": True})


def test_build_refuses_a_class_with_its_own_post_init() -> None:
    class Stamped(WireModel):
        text: str = ""

        def model_post_init(self, context: Any, /) -> None:
            super().model_post_init(context)
            self.text = self.text.upper()

    with pytest.raises(TypeError, match="own model_post_init"):
        Stamped.build(text="x")

    class Marked(WireModel):
        text: str = ""

        @buildable_post_init
        def model_post_init(self, context: Any, /) -> None:
            super().model_post_init(context)

    assert to_dict(Marked.build(text="x")) == {"text": "x"}

"""Responses request -> Chat Completions request (rxresponses.server._request): pure unit tests.

Each test writes out the Chat request it expects; nothing here does I/O.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rxresponses.server._request import (
    RequestError,
    ToolName,
    flat_tool_name,
    translate_request,
)
from rxresponses.server.testing import codex_like_request

STREAM_OPTIONS = {"stream": True, "stream_options": {"include_usage": True}}


def chat_of(body: dict[str, Any], **options: Any) -> dict[str, Any]:
    return translate_request(body, **options).chat


def rejected(body: Any) -> RequestError:
    with pytest.raises(RequestError) as info:
        translate_request(body)
    return info.value


# -- input ---------------------------------------------------------------------------------------


def test_string_input_and_instructions():
    t = translate_request({"model": "m", "input": "Hi", "instructions": "Be brief."})
    assert t.chat == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        **STREAM_OPTIONS,
    }
    assert t.model == "m"
    assert t.stream is False
    assert t.echo == {"instructions": "Be brief."}
    assert t.dropped == ()


def test_message_items_text_parts_collapse_and_leading_system_messages_merge():
    body = {
        "model": "m",
        "instructions": "Base.",
        "input": [
            {"type": "message", "role": "developer", "content": "Permissions."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "line one"},
                    {"type": "input_text", "text": "line two"},
                ],
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Sure.", "annotations": []}],
            },
            {
                "type": "message",
                "role": "system",
                "content": [{"type": "input_text", "text": "Later."}],
            },
        ],
    }
    assert chat_of(body)["messages"] == [
        {"role": "system", "content": "Base.\n\nPermissions."},
        {"role": "user", "content": "line one\nline two"},
        {"role": "assistant", "content": "Sure."},
        {"role": "system", "content": "Later."},
    ]
    assert chat_of(body, system_role="developer")["messages"][0]["role"] == "developer"


def test_images_stay_parts():
    body = {
        "model": "m",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,AAAA",
                        "detail": "low",
                    },
                ],
            }
        ],
    }
    assert chat_of(body)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                },
            ],
        }
    ]


def test_function_calls_and_outputs():
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "Weather in Paris and Tokyo?"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "hm"}],
            },
            {"type": "message", "role": "assistant", "content": "Let me check."},
            {
                "type": "function_call",
                "call_id": "call_a",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {
                "type": "function_call",
                "call_id": "call_b",
                "name": "get_weather",
                "arguments": '{"city":"Tokyo"}',
            },
            {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
            {
                "type": "function_call_output",
                "call_id": "call_b",
                "output": [{"type": "input_text", "text": "25C"}],
            },
        ],
    }
    t = translate_request(body)
    assert t.chat["messages"] == [
        {"role": "user", "content": "Weather in Paris and Tokyo?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Tokyo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "25C"},
    ]
    assert t.dropped == ("input: 1 reasoning item(s)",)


def test_function_call_without_preceding_assistant_message():
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "Go"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        ],
    }
    assert chat_of(body)["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }


def test_image_in_tool_output_becomes_a_note_and_is_logged():
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "Look"},
            {"type": "function_call", "call_id": "c1", "name": "view_image", "arguments": "{}"},
            {
                "type": "function_call_output",
                "call_id": "c1",
                "output": [
                    {"type": "input_text", "text": "the screenshot:"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                ],
            },
        ],
    }
    t = translate_request(body)
    assert t.chat["messages"][2]["content"] == (
        "the screenshot:\n[image omitted: a Chat Completions tool result can only carry text]"
    )
    assert t.dropped == ("input[2].output[1] (input_image in a tool result)",)


def test_hosted_tool_items_are_dropped_with_a_count():
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "Search"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"type": "web_search_call", "id": "ws_2", "status": "completed"},
        ],
    }
    t = translate_request(body)
    assert t.chat["messages"] == [{"role": "user", "content": "Search"}]
    assert t.dropped == ("input: 2 web_search_call item(s)",)


# -- tools ---------------------------------------------------------------------------------------

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather of a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "strict": True,
}
CHAT_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city.",
        "parameters": WEATHER["parameters"],
        "strict": True,
    },
}


def test_function_tools_tool_choice_and_parallel_calls():
    chat = chat_of(
        {
            "model": "m",
            "input": "x",
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "parallel_tool_calls": False,
        }
    )
    assert chat["tools"] == [CHAT_WEATHER]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["parallel_tool_calls"] is False


def test_chat_shaped_function_tools_are_accepted():
    assert chat_of({"model": "m", "input": "x", "tools": [CHAT_WEATHER]})["tools"] == [CHAT_WEATHER]


def test_namespace_tools_are_flattened_and_mapped_back():
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "find"},
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "lookup",
                "namespace": "crm",
                "arguments": "{}",
            },
            {"type": "function_call_output", "call_id": "c1", "output": "none"},
        ],
        "tools": [
            {
                "type": "namespace",
                "name": "crm",
                "description": "The CRM.",
                "tools": [
                    {"type": "function", "name": "lookup", "description": "Find a customer."}
                ],
            }
        ],
        "tool_choice": {"type": "function", "name": "lookup", "namespace": "crm"},
    }
    t = translate_request(body)
    assert t.chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "crm__lookup",
                "description": "Find a customer.\n\n(crm: The CRM.)",
            },
        }
    ]
    assert t.chat["tool_choice"] == {"type": "function", "function": {"name": "crm__lookup"}}
    assert t.chat["messages"][1]["tool_calls"][0]["function"]["name"] == "crm__lookup"
    assert t.tool_names == {"crm__lookup": ToolName("lookup", "crm", False)}


def test_custom_tools_become_functions_with_one_input_argument():
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "patch it"},
            {
                "type": "custom_tool_call",
                "call_id": "c1",
                "name": "apply_patch",
                "input": "*** Begin",
            },
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done"},
        ],
        "tools": [{"type": "custom", "name": "apply_patch", "description": "Patch files."}],
        "tool_choice": {"type": "custom", "name": "apply_patch"},
    }
    t = translate_request(body)
    assert t.chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "apply_patch",
                "description": "Patch files.\n\nPut the tool's whole free-form input in the "
                "`input` argument, as a string.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "input": {"type": "string", "description": "The tool's free-form input."}
                    },
                    "required": ["input"],
                    "additionalProperties": False,
                },
            },
        }
    ]
    assert t.chat["tool_choice"] == {"type": "function", "function": {"name": "apply_patch"}}
    assert t.chat["messages"][1]["tool_calls"][0]["function"] == {
        "name": "apply_patch",
        "arguments": '{"input": "*** Begin"}',
    }
    assert t.chat["messages"][2] == {"role": "tool", "tool_call_id": "c1", "content": "Done"}
    assert t.tool_names == {"apply_patch": ToolName("apply_patch", None, True)}


def test_hosted_tools_are_dropped_and_tool_choice_without_tools_is_not_sent():
    t = translate_request(
        {
            "model": "m",
            "input": "x",
            "tools": [{"type": "web_search"}],
            "tool_choice": "auto",
            "parallel_tool_calls": True,
        }
    )
    assert "tools" not in t.chat
    assert "tool_choice" not in t.chat
    assert "parallel_tool_calls" not in t.chat
    assert t.dropped == ("tools[0] (type 'web_search')", "tool_choice (no function tools left)")


def test_allowed_tools_filters_the_tools():
    other = {**WEATHER, "name": "get_time"}
    chat = chat_of(
        {
            "model": "m",
            "input": "x",
            "tools": [WEATHER, other],
            "tool_choice": {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "get_time"}],
            },
        }
    )
    assert [t["function"]["name"] for t in chat["tools"]] == ["get_time"]
    assert chat["tool_choice"] == "required"


@pytest.mark.parametrize(
    ("tools", "choice", "param"),
    [
        ([{"type": "web_search"}], {"type": "web_search_preview"}, "tool_choice"),
        ([{"type": "web_search"}], "required", "tool_choice"),
        ([WEATHER], {"type": "function", "name": "nope"}, "tool_choice.name"),
        ([WEATHER], "sometimes", "tool_choice"),
    ],
)
def test_tool_choice_that_cannot_be_honoured_is_a_400(tools, choice, param):
    error = rejected({"model": "m", "input": "x", "tools": tools, "tool_choice": choice})
    assert error.status == 400
    assert error.param == param


def test_flat_tool_name():
    assert flat_tool_name("crm", "lookup") == "crm__lookup"
    assert flat_tool_name("my.server", "get item") == "my_server__get_item"
    long = flat_tool_name("n" * 50, "t" * 50)
    assert len(long) == 64
    assert long != flat_tool_name("n" * 50, "t" * 49 + "u")


# -- sampling, reasoning, text, include ----------------------------------------------------------


def test_sampling_fields_and_max_tokens():
    body = {"model": "m", "input": "x", "temperature": 0.2, "top_p": 1, "max_output_tokens": 100}
    chat = chat_of(body)
    assert (chat["temperature"], chat["top_p"], chat["max_tokens"]) == (0.2, 1, 100)
    chat = chat_of(body, max_tokens_field="max_completion_tokens")
    assert chat["max_completion_tokens"] == 100
    assert "max_tokens" not in chat


def test_reasoning_effort_and_summary():
    t = translate_request(
        {"model": "m", "input": "x", "reasoning": {"effort": "low", "summary": "auto"}}
    )
    assert t.chat["reasoning_effort"] == "low"
    assert t.reasoning_as_summary is True
    assert t.echo == {"reasoning": {"effort": "low", "summary": "auto"}}
    t = translate_request({"model": "m", "input": "x", "reasoning": {"effort": "high"}})
    assert t.reasoning_as_summary is False


def test_text_formats():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    chat = chat_of(
        {
            "model": "m",
            "input": "x",
            "text": {
                "format": {"type": "json_schema", "name": "A", "schema": schema, "strict": True}
            },
        }
    )
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "A", "schema": schema, "strict": True},
    }
    chat = chat_of({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}})
    assert chat["response_format"] == {"type": "json_object"}
    assert "response_format" not in chat_of(
        {"model": "m", "input": "x", "text": {"format": {"type": "text"}}}
    )


def test_include_logprobs_and_top_logprobs():
    chat = chat_of(
        {"model": "m", "input": "x", "include": ["message.output_text.logprobs"], "top_logprobs": 3}
    )
    assert (chat["logprobs"], chat["top_logprobs"]) == (True, 3)


def test_echo_fields():
    body = {
        "model": "m",
        "input": "x",
        "instructions": "I",
        "tools": [WEATHER],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "temperature": 0.5,
        "top_p": 0.9,
        "max_output_tokens": 50,
        "reasoning": {"effort": "low"},
        "metadata": {"k": "v"},
        "store": False,
        "text": {"format": {"type": "text"}},
        "truncation": "disabled",
        "user": "u1",
        "prompt_cache_key": "pk",
        "safety_identifier": "s1",
    }
    t = translate_request(body)
    assert t.echo == {k: v for k, v in body.items() if k not in ("model", "input")}
    assert t.chat["user"] == "u1"
    assert "metadata" not in t.chat
    assert "prompt_cache_key" not in t.chat
    assert set(t.dropped) == {"prompt_cache_key", "safety_identifier"}


# -- rejections ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (
            {"model": "m", "input": "x", "previous_response_id": "resp_1"},
            "previous_response_id",
            "unsupported_parameter",
        ),
        (
            {"model": "m", "input": "x", "conversation": "conv_1"},
            "conversation",
            "unsupported_parameter",
        ),
        (
            {"model": "m", "input": "x", "prompt": {"id": "pmpt_1"}},
            "prompt",
            "unsupported_parameter",
        ),
        ({"model": "m", "input": "x", "background": True}, "background", "unsupported_parameter"),
        ({"input": "x"}, "model", "missing_required_parameter"),
        ({"model": "m"}, "input", "missing_required_parameter"),
        ({"model": "m", "input": 5}, "input", "invalid_type"),
        ({"model": "m", "input": []}, "input", "invalid_value"),
        ({"model": "m", "input": "x", "temperature": "hot"}, "temperature", "invalid_type"),
        (
            {"model": "m", "input": "x", "max_output_tokens": True},
            "max_output_tokens",
            "invalid_type",
        ),
        ({"model": "m", "input": "x", "stream": "yes"}, "stream", "invalid_type"),
        ({"model": "m", "input": "x", "metadata": ["a"]}, "metadata", "invalid_type"),
        ({"model": "m", "input": "x", "instructions": ["a"]}, "instructions", "invalid_type"),
        (
            {"model": "m", "input": [{"role": "robot", "content": "x"}]},
            "input[0].role",
            "invalid_value",
        ),
        (
            {"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]},
            "input[0].type",
            "unsupported_parameter",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_video"}]}]},
            "input[0].content[0].type",
            "unsupported_parameter",
        ),
        (
            {"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
            "missing_required_parameter",
        ),
        (
            {"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}},
            "text.format.type",
            "invalid_value",
        ),
    ],
)
def test_rejections(body, param, code):
    error = rejected(body)
    assert (error.status, error.param, error.code) == (400, param, code)
    assert error.body() == {
        "error": {
            "message": error.message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        }
    }


def test_previous_response_id_message_says_what_to_do():
    error = rejected({"model": "m", "input": "x", "previous_response_id": "resp_1"})
    assert "stateless" in error.message
    assert "input" in error.message


def test_not_an_object():
    assert rejected([1, 2]).code == "invalid_json"


def test_unknown_fields_are_dropped_and_listed():
    t = translate_request({"model": "m", "input": "x", "seed": 1, "frobnicate": True})
    assert t.dropped == ("unknown field 'seed'", "unknown field 'frobnicate'")
    assert "seed" not in t.chat


# -- a Codex CLI request -------------------------------------------------------------------------


def test_codex_like_request_is_accepted_whole():
    body = codex_like_request()
    assert len(json.dumps(body)) > 35_000
    t = translate_request(body)
    chat = t.chat
    assert t.stream is True
    assert t.reasoning_as_summary is True
    assert chat["reasoning_effort"] == "medium"
    assert [tool["function"]["name"] for tool in chat["tools"]] == [
        "shell",
        "update_plan",
        "mcp__docs__search",
        "mcp__docs__fetch",
        "apply_patch",
    ]
    assert t.tool_names == {
        "mcp__docs__search": ToolName("search", "mcp__docs"),
        "mcp__docs__fetch": ToolName("fetch", "mcp__docs"),
        "apply_patch": ToolName("apply_patch", None, True),
    }
    assert (chat["tool_choice"], chat["parallel_tool_calls"]) == ("auto", False)
    roles = [m["role"] for m in chat["messages"]]
    assert roles == ["system", "user", "user", "user", "assistant", "tool", "assistant", "user"]
    # instructions and the leading developer message share the one system message
    assert chat["messages"][0]["content"].startswith("You are Codex")
    assert "<permissions instructions>" in chat["messages"][0]["content"]
    assert set(t.dropped) == {
        "tools[4] (type 'web_search')",
        "input: 1 reasoning item(s)",
        "text.verbosity",
        "include[reasoning.encrypted_content]",
        "prompt_cache_key",
        "client_metadata",
    }
    assert t.echo["store"] is False
    assert t.echo["prompt_cache_key"] == body["prompt_cache_key"]
    assert "client_metadata" not in t.echo
    json.dumps(chat)  # the Chat request is plain JSON


def test_store_true_is_echoed_and_logged_as_not_honoured():
    t = translate_request({"model": "m", "input": "x", "store": True})
    assert t.echo == {"store": True}
    assert t.dropped == ("store=true (this server stores nothing)",)


def test_response_fields_are_concrete_for_open_responses_and_valid_for_the_sdk() -> None:
    """Fields the request left out get the values applied; the ones it set are kept."""
    from openai.types.responses import Response as SdkResponse

    tool = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}
    t = translate_request({"model": "m", "input": "x", "tools": [tool]}, stateful=True)
    assert t.echo == {"tools": [tool]}  # the echo itself is unchanged
    assert t.response_fields == {
        "tools": [{**tool, "description": None, "strict": False}],
        "temperature": 1.0,
        "top_p": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "store": True,
        "background": False,
        "service_tier": "default",
        "text": {"format": {"type": "text"}},
        "top_logprobs": 0,
        "truncation": "disabled",
    }
    fmt = {"type": "json_schema", "name": "r", "schema": {"type": "object"}}
    body = {
        "model": "m",
        "input": "x",
        "tools": [{**tool, "description": "d", "strict": True}],
        "temperature": 0.2,
        "top_p": 0.5,
        "top_logprobs": 3,
        "store": False,
        "truncation": "auto",
        "text": {"format": fmt},
    }
    fields = translate_request(body, stateful=True).response_fields
    assert fields["tools"] == [{**tool, "description": "d", "strict": True}]
    assert (fields["temperature"], fields["top_p"], fields["top_logprobs"]) == (0.2, 0.5, 3)
    assert (fields["store"], fields["truncation"], fields["text"]) == (
        False,
        "auto",
        {"format": fmt},
    )
    # a stateless server stores nothing
    assert translate_request({"model": "m", "input": "x"}).response_fields["store"] is False
    stateless = translate_request({"model": "m", "input": "x", "store": True})
    assert (stateless.echo["store"], stateless.response_fields["store"]) == (True, False)
    made = SdkResponse.model_validate(
        {
            "id": "resp_1",
            "object": "response",
            "created_at": 0,
            "model": "m",
            "output": [],
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            **t.response_fields,
        }
    )
    assert made.service_tier == "default"
    assert made.tools[0].strict is False  # type: ignore[union-attr]

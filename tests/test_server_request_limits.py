"""Request translation on hostile input: linear tool naming, the body checks (issue 17).

Plain unit tests of :mod:`rxresponses.server._request` (no server): colliding tool names get
unique names in linear time, a namespace description cannot multiply a request's size, and
:func:`parse_body` turns every malformed body into a :class:`RequestError` naming the place.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from rxresponses.scripted import turn_for_request
from rxresponses.server._request import (
    MAX_JSON_DEPTH,
    MAX_JSON_VALUES,
    RequestError,
    is_large_body,
    parse_body,
    translate_request,
)


def names(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in translate_request(body).chat["tools"]]


def request(tools: list[Any]) -> dict[str, Any]:
    return {"model": "m", "input": "hi", "tools": tools}


# ------------------------------------------------------------------------------------------------
# Tool names
# ------------------------------------------------------------------------------------------------


def test_colliding_names_get_numbered_suffixes() -> None:
    tools = [
        {"type": "namespace", "name": "n", "tools": [{"name": "a.b"}, {"name": "a b"}]},
        {"type": "function", "name": "n__a_b"},
        {"type": "function", "name": "n__a_b_3"},
        {"type": "function", "name": "n__a_b"},
    ]
    # the first function takes n__a_b_3 before the tool of that name comes: it becomes n__a_b_3_2
    assert names(request(tools)) == ["n__a_b", "n__a_b_2", "n__a_b_3", "n__a_b_3_2", "n__a_b_4"]


def test_same_name_twice_gets_two_names() -> None:
    tools = [{"type": "function", "name": "f"}] * 3
    assert names(request(tools)) == ["f", "f_2", "f_3"]


def test_long_names_sharing_a_stem_stay_unique_and_short() -> None:
    stem = "x" * 62
    tools = [{"type": "function", "name": stem + "ab"}] * 3 + [
        {"type": "function", "name": stem + "cd"}
    ] * 3
    result = names(request(tools))
    assert result == [
        stem + "ab",
        stem + "_2",
        stem + "_3",
        stem + "cd",
        stem + "_4",
        stem + "_5",
    ]


def test_ten_and_more_collisions_of_a_long_name_cut_the_stem_further() -> None:
    long = "y" * 64
    result = names(request([{"type": "function", "name": long}] * 12))
    assert result[:2] == [long, "y" * 62 + "_2"]
    assert result[9:] == ["y" * 61 + "_10", "y" * 61 + "_11", "y" * 61 + "_12"]
    assert all(len(n) <= 64 for n in result)


def colliding(count: int) -> dict[str, Any]:
    tools = [{"name": "a" + chr(0x4E00 + i)} for i in range(count)]
    return request([{"type": "namespace", "name": "n", "tools": tools}])


def test_colliding_names_cost_linear_time() -> None:
    """8,000 names that all flatten to ``n__a_`` (was minutes: each attempt rescanned every
    name). A generous bound on this thread's CPU time (wall time also counts the time a busy
    machine gives to other processes); tests/fuzz/attack_requests.py prints the figures."""
    body = colliding(8_000)
    started = time.thread_time()
    result = names(body)
    elapsed = time.thread_time() - started
    assert result[:3] == ["n__a_", "n__a__2", "n__a__3"]
    assert len(set(result)) == 8_000
    assert elapsed < 2.0, f"{elapsed:.2f}s"


def test_tool_choice_finds_a_renamed_tool() -> None:
    body = request([{"type": "function", "name": "f"}, {"type": "function", "name": "f"}])
    body["tool_choice"] = {"type": "function", "name": "f"}
    chat = translate_request(body).chat
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f_2"}}


def test_a_long_namespace_description_is_not_copied_into_every_tool() -> None:
    description = "d" * 600_000
    tools = [{"name": f"t{i}", "description": "x"} for i in range(4)]
    body = request([{"type": "namespace", "name": "n", "description": description, "tools": tools}])
    translation = translate_request(body)
    descriptions = [t["function"]["description"] for t in translation.chat["tools"]]
    assert descriptions[0] == f"x\n\n(n: {description})"
    assert descriptions[1:] == ["x", "x", "x"]  # past the 1 MiB budget
    assert any("namespace descriptions" in d for d in translation.dropped)


# ------------------------------------------------------------------------------------------------
# Wrong types inside the request
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": {"a": 1}}]}]},
            "input[0].content[0].type",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": ["input_text"]}]}]},
            "input[0].content[0].type",
        ),
        (request([{"type": "function", "name": "f", "parameters": "{}"}]), "tools[0].parameters"),
        (request([{"type": "function", "name": "f", "parameters": [1]}]), "tools[0].parameters"),
    ],
)
def test_wrong_inner_types_are_request_errors(body: dict[str, Any], param: str) -> None:
    with pytest.raises(RequestError) as caught:
        translate_request(body)
    assert caught.value.param == param
    assert caught.value.status == 400


def test_a_tool_output_part_with_an_object_type_is_noted() -> None:
    body = {
        "model": "m",
        "input": [
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": [{"type": {"a": 1}}]},
        ],
    }
    tool = translate_request(body).chat["messages"][1]
    assert tool["content"].startswith("[")


def test_a_namespace_that_is_not_a_string_names_no_namespace() -> None:
    body = request([{"type": "function", "name": "f"}])
    body["tool_choice"] = {"type": "function", "name": "f", "namespace": {"x": 1}}
    assert translate_request(body).chat["tool_choice"]["function"]["name"] == "f"


@pytest.mark.parametrize(
    "parameters",
    [
        {"properties": [1], "required": "x"},
        {"properties": {"a": 5}, "required": [{"x": 1}, "a"]},
        {"properties": {"a": {"enum": 7, "type": ["x"]}}, "required": ["a"]},
        {"properties": {"a": {"enum": {"k": 1}}}, "required": ["a"]},
    ],
)
def test_the_scripted_model_takes_any_parameters(parameters: dict[str, Any]) -> None:
    chat = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": parameters}}],
    }
    turn = turn_for_request(chat)
    assert turn.tool_calls[0].name == "f"
    assert (
        json.loads(turn.tool_calls[0].arguments) == {"a": "example a"}
        or json.loads(turn.tool_calls[0].arguments) == {}
    )


# ------------------------------------------------------------------------------------------------
# parse_body
# ------------------------------------------------------------------------------------------------


def rejected(raw: bytes) -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse_body(raw)
    return caught.value


def test_parse_body_returns_the_json() -> None:
    assert parse_body(b'{"a": [1, 2.5, "\\ud83d\\ude00", null]}') == {
        "a": [1, 2.5, "\U0001f600", None]
    }


def test_parse_body_accepts_a_bom_and_utf16() -> None:
    assert parse_body(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    assert parse_body('{"a": "é"}'.encode("utf-16")) == {"a": "é"}


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b'{"model": "x\\udc00"}', "model"),
        (b'{"a": {"b": ["ok", "\\ud800"]}}', "a.b[1]"),
        (b'{"a": {"\\udc00": 1}}', "a"),
        (b'"\\udfff"', None),
        (b'{"a": "\\ude00\\ud83d"}', "a"),  # a pair in the wrong order is two lone halves
    ],
)
def test_lone_surrogates_are_rejected_with_their_place(raw: bytes, param: str | None) -> None:
    error = rejected(raw)
    assert error.param == param
    assert error.code == "invalid_value"
    assert "surrogate" in error.message
    json.dumps(error.body(), ensure_ascii=False).encode()  # the error itself can be sent


@pytest.mark.parametrize("raw", [b'{"a": "\xed\xb0\x80"}', b'{"a": "\xff"}', b'{"a": "\xc3\x28"}'])
def test_invalid_utf8_is_rejected(raw: bytes) -> None:
    error = rejected(raw)
    assert error.code == "invalid_json"
    assert error.message == "The request body is not valid UTF-8."


def test_depth_limit() -> None:
    at_limit = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert parse_body(at_limit) is not None
    error = rejected(b'{"a": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}")
    assert error.code == "invalid_json"
    assert error.param == "a" + "[0]" * (MAX_JSON_DEPTH - 1)  # the array at level 101
    assert error.message == "The JSON body is nested too deeply: the limit is 100 levels."


@pytest.mark.parametrize("depth", [990, 5_000, 1_000_000])
def test_very_deep_nesting_is_rejected_not_a_recursion_error(depth: int) -> None:
    error = rejected(b"[" * depth + b"]" * depth)
    assert error.code == "invalid_json"
    assert "nested too deeply" in error.message


def test_deep_nesting_in_the_large_path_is_rejected() -> None:
    raw = b"[" + b"0," * 120_000 + b"[" * 2_000 + b"]" * 2_000 + b"]"
    assert is_large_body(raw)
    assert "nested too deeply" in rejected(raw).message


@pytest.mark.parametrize(
    "raw",
    [
        b'{"t": 1e999}',
        b'{"t": -1e400}',
        b'{"t": NaN}',
        b'{"t": Infinity}',
        b"[" + b"9" * 5000 + b"]",
    ],
)
def test_numbers_json_cannot_carry_are_rejected(raw: bytes) -> None:
    error = rejected(raw)
    assert error.status == 400
    assert error.code in ("invalid_json", "invalid_value")


def test_too_many_values_is_413() -> None:
    raw = b"[" + b"[]," * MAX_JSON_VALUES + b"[]]"
    error = rejected(raw)
    assert error.status == 413
    assert error.code == "request_too_large"


def test_the_large_path_parses_like_json_loads() -> None:
    value = {"k": [[i, f"s{i}", {"f": i / 2}] for i in range(30_000)], "e": "\\u00e9\n"}
    raw = json.dumps(value).encode()
    assert is_large_body(raw)
    assert parse_body(raw) == value
    assert rejected(raw + b" x").code == "invalid_json"
    assert rejected(raw[:-1]).code == "invalid_json"

"""Any body to ``POST /v1/responses`` gets an answer or a 4xx, never a 500 (issue 17, points 5, 6).

A hypothesis property drives the ASGI app in process (the embedded scripted model upstream) with
arbitrary JSON, Responses-shaped requests with wrong types, lone surrogates and deep nesting, and
arbitrary bytes: every answer is below 500 with an OpenAI-style error body, and every stream that
starts ends with exactly one terminal event. A few of the nasty bodies also go over real loopback
HTTP, and ``/health`` is checked while a large hostile request is translated.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from rxresponses.scripted import ScriptedTurn, chat_chunks, chat_sse
from rxresponses.server import ServerConfig, create_app
from rxresponses.server.testing import BackgroundServer
from rxresponses.sse import SSEDecoder

from .fuzz.attack_requests import colliding_tools
from .fuzz.attack_upstream import start_serve

_TERMINAL = {"response.completed", "response.incomplete", "response.failed"}
_SHORT_STREAM = b"".join(chat_sse(chat_chunks(ScriptedTurn(text="ok"))))


def _short_upstream(request: httpx.Request) -> httpx.Response:
    """A fake upstream: what the server sent must be JSON; the answer is a short stream."""
    json.loads(request.content)
    return httpx.Response(200, content=_SHORT_STREAM, headers={"content-type": "text/event-stream"})


#: The app with the embedded scripted model (which reads the request's tools), and with a fake
#: upstream that answers a short stream at once (for the many examples of the properties).
APP = create_app(ServerConfig(scripted_delay=0))
FAST_APP = create_app(
    ServerConfig(upstream="http://upstream.test/v1"),
    transport=httpx.MockTransport(_short_upstream),
)
_LOOP = asyncio.new_event_loop()


# ------------------------------------------------------------------------------------------------
# Driving the app in process
# ------------------------------------------------------------------------------------------------


async def _post(
    body: bytes, headers: dict[str, str] | None = None, app: Any = APP
) -> tuple[int, bytes]:
    """One ``POST /v1/responses`` through the ASGI app: ``(status, body)``."""
    raw_headers = [(b"content-type", b"application/json")]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/responses",
        "raw_path": b"/v1/responses",
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    given_body = False
    done = asyncio.Event()
    status: list[int] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal given_body
        if not given_body:
            given_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    await asyncio.wait_for(app(scope, receive, send), 10)
    assert len(status) == 1, "the app answered no response"
    assert done.is_set(), "the app answered no complete response"
    return status[0], b"".join(chunks)


def post(body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Through the app with the embedded scripted model."""
    return _LOOP.run_until_complete(_post(body, headers))


def fast_post(body: bytes) -> tuple[int, bytes]:
    """Through the app with the fast fake upstream."""
    return _LOOP.run_until_complete(_post(body, app=FAST_APP))


def check_answer(status: int, content: bytes, *, stream: bool) -> None:
    """What every answer must be: < 500; an OpenAI-style error, or one terminal event."""
    assert status < 500, content[:500]
    if status != 200:
        error = json.loads(content)["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert isinstance(error["message"], str)
        assert error["message"]
        assert "Traceback" not in error["message"]
        return
    if stream:
        decoder = SSEDecoder()
        types = [json.loads(m.data)["type"] for m in decoder.feed(content)]
        assert not decoder.pending
        assert [t for t in types if t in _TERMINAL] == [types[-1]]
    else:
        assert json.loads(content)["status"] in ("completed", "incomplete", "failed")


# ------------------------------------------------------------------------------------------------
# Strategies
# ------------------------------------------------------------------------------------------------

# Strings with everything hypothesis draws by default plus lone surrogates.
strings = st.one_of(
    st.text(max_size=8),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2),
    st.sampled_from(["", "x\udc00", "\ud83d", "auto", "function", "user", "m"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    strings,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(strings, inner, max_size=4)
    ),
    max_leaves=8,
)


@st.composite
def deep(draw: st.DrawFn) -> Any:
    """A value nested 90 to 1,200 levels deep (lists and objects)."""
    depth = draw(st.sampled_from([95, 99, 100, 101, 150, 500, 990, 1200]))
    value: Any = draw(scalars)
    as_object = draw(st.booleans())
    for _ in range(depth):
        value = {"a": value} if as_object else [value]
    return value


def shaped(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``valid``, sometimes anything (wrong types, nulls, objects where strings go)."""
    return st.one_of(valid, valid, valid, valid, valid, valid, json_values, json_values, deep())


part_types = st.sampled_from(
    ["input_text", "output_text", "text", "refusal", "input_image", "input_file", "input_audio"]
)
content_parts = st.fixed_dictionaries(
    {"type": shaped(part_types)},
    optional={
        "text": shaped(strings),
        "image_url": shaped(st.just("data:image/png;base64,AAAA")),
        "detail": json_values,
    },
)
messages = st.fixed_dictionaries(
    {
        "type": shaped(st.just("message")),
        "role": shaped(st.sampled_from(["user", "assistant", "system", "developer", "tool"])),
        "content": shaped(st.one_of(strings, st.lists(content_parts, max_size=3))),
    }
)
calls = st.fixed_dictionaries(
    {
        "type": shaped(st.sampled_from(["function_call", "custom_tool_call"])),
        "call_id": shaped(strings),
        "name": shaped(strings),
    },
    optional={"arguments": json_values, "namespace": json_values, "input": json_values},
)
outputs = st.fixed_dictionaries(
    {
        "type": shaped(st.sampled_from(["function_call_output", "custom_tool_call_output"])),
        "call_id": shaped(strings),
        "output": shaped(st.one_of(strings, st.lists(content_parts, max_size=2))),
    }
)
other_items = st.fixed_dictionaries(
    {"type": shaped(st.sampled_from(["reasoning", "item_reference", "additional_tools", "x"]))},
    optional={"tools": json_values, "summary": json_values},
)
items = st.one_of(messages, calls, outputs, other_items, json_values)
schemas = st.one_of(
    st.fixed_dictionaries(
        {"type": shaped(st.just("object"))},
        optional={
            "properties": shaped(
                st.dictionaries(
                    strings,
                    st.fixed_dictionaries({}, optional={"type": json_values, "enum": json_values}),
                    max_size=3,
                )
            ),
            "required": shaped(st.lists(json_values, max_size=3)),
        },
    ),
    json_values,
)
function_tools = st.fixed_dictionaries(
    {"type": shaped(st.sampled_from(["function", "custom"])), "name": shaped(strings)},
    optional={
        "parameters": shaped(schemas),
        "description": shaped(strings),
        "strict": json_values,
        "format": json_values,
    },
)
tools = st.one_of(
    function_tools,
    st.fixed_dictionaries(
        {
            "type": st.just("namespace"),
            "name": shaped(strings),
            "tools": shaped(st.lists(function_tools, max_size=3)),
        },
        optional={"description": shaped(strings)},
    ),
    st.fixed_dictionaries({"type": shaped(st.sampled_from(["web_search", "mcp"]))}),
    json_values,
)
tool_choices = st.one_of(
    st.sampled_from(["auto", "none", "required", "sometimes"]),
    st.fixed_dictionaries(
        {"type": shaped(st.sampled_from(["function", "custom", "allowed_tools", "mcp"]))},
        optional={
            "name": shaped(strings),
            "namespace": json_values,
            "mode": json_values,
            "tools": shaped(st.lists(st.fixed_dictionaries({"name": json_values}), max_size=2)),
        },
    ),
)
requests = st.fixed_dictionaries(
    {
        "model": shaped(st.sampled_from(["gpt-x", "m"])),
        "input": shaped(st.one_of(strings, st.lists(items, max_size=4))),
        "stream": st.booleans(),
    },
    optional={
        "instructions": shaped(strings),
        "tools": shaped(st.lists(tools, max_size=3)),
        "tool_choice": shaped(tool_choices),
        "parallel_tool_calls": json_values,
        "text": shaped(
            st.fixed_dictionaries(
                {},
                optional={
                    "format": shaped(
                        st.fixed_dictionaries(
                            {
                                "type": shaped(
                                    st.sampled_from(["text", "json_object", "json_schema"])
                                )
                            },
                            optional={"schema": json_values, "name": json_values},
                        )
                    ),
                    "verbosity": json_values,
                },
            )
        ),
        "reasoning": shaped(
            st.fixed_dictionaries(
                {}, optional={"effort": shaped(strings), "summary": shaped(strings)}
            )
        ),
        "metadata": shaped(st.dictionaries(strings, strings, max_size=3)),
        "user": shaped(strings),
        "max_output_tokens": shaped(st.integers(min_value=-5, max_value=100)),
        "temperature": json_values,
        "top_logprobs": json_values,
        "include": shaped(st.lists(json_values, max_size=2)),
        "store": json_values,
        "truncation": json_values,
        "previous_response_id": st.one_of(st.none(), json_values),
        "background": st.one_of(st.none(), st.just(False), json_values),
    },
)


# ------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )


@_settings(1000)
@given(requests)
def test_any_responses_shaped_request_gets_an_answer_or_a_4xx(body: dict[str, Any]) -> None:
    status, content = fast_post(json.dumps(body).encode())
    check_answer(status, content, stream=body.get("stream") is True)


@_settings(700)
@given(st.one_of(json_values, deep(), st.dictionaries(strings, json_values)), st.booleans())
def test_any_json_body_gets_an_answer_or_a_4xx(body: Any, stream: bool) -> None:
    if isinstance(body, dict):
        body = {**body, "stream": stream}
    status, content = fast_post(json.dumps(body).encode())
    check_answer(status, content, stream=stream)


@_settings(300)
@given(st.binary(max_size=64))
def test_any_bytes_get_a_4xx(raw: bytes) -> None:
    status, content = fast_post(raw)
    assert 400 <= status < 500
    check_answer(status, content, stream=False)


# ------------------------------------------------------------------------------------------------
# Named cases (in process): what each answers
# ------------------------------------------------------------------------------------------------


def error_of(status: int, content: bytes) -> dict[str, Any]:
    assert status == 400, content[:300]
    error: dict[str, Any] = json.loads(content)["error"]
    return error


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"model": "x\\udc00", "input": "hi"}', "model"),
        (b'{"model": "m", "input": "hi", "instructions": "a\\ud800b"}', "instructions"),
        (b'{"model": "m", "input": "hi", "user": "\\udfff"}', "user"),
        (b'{"model": "m", "input": "hi", "metadata": {"k": "\\udc00"}}', "metadata.k"),
        (b'{"model": "m", "input": "hi", "metadata": {"\\udc00": "v"}}', "metadata"),
        (b'{"model": "m", "input": [{"role": "user", "content": "\\udc00"}]}', "input[0].content"),
        (
            b'{"model": "m", "input": "hi", "tools": [{"type": "function", "name": "f\\udc00"}]}',
            "tools[0].name",
        ),
    ],
)
def test_lone_surrogates_are_400_naming_the_param(body: bytes, param: str, stream: bool) -> None:
    body = body.replace(b'"input"', b'"stream": %s, "input"' % (b"true" if stream else b"false"))
    error = error_of(*post(body))
    assert error["param"] == param
    assert error["code"] == "invalid_value"
    assert "surrogate" in error["message"]


def test_a_surrogate_pair_is_one_valid_character() -> None:
    status, content = post(b'{"model": "m", "input": "smile \\ud83d\\ude00", "stream": false}')
    assert status == 200
    assert "smile \U0001f600" in json.loads(content)["output"][-1]["content"][0]["text"]


def test_surrogates_encoded_in_the_bytes_are_400() -> None:
    error = error_of(*post(b'{"model": "m", "input": "\xed\xb0\x80"}'))
    assert error["code"] == "invalid_json"
    assert "UTF-8" in error["message"]


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("depth", [101, 500, 990, 5_000, 100_000])
def test_deep_nesting_is_400(depth: int, stream: bool) -> None:
    nested = "[" * depth + "]" * depth
    body = f'{{"model": "m", "input": "hi", "stream": {json.dumps(stream)}, "metadata": {nested}}}'
    error = error_of(*post(body.encode()))
    assert error["code"] == "invalid_json"
    assert "nested too deeply" in error["message"]


def test_nesting_at_the_limit_is_served() -> None:
    # metadata at level 2, so 98 more levels of parameters reach the limit of 100
    schema: Any = {"type": "object"}
    for _ in range(48):  # each level: {"properties": {"p": ...}} = 2 JSON levels
        schema = {"type": "object", "properties": {"p": schema}}
    body = {
        "model": "m",
        "input": "hi",
        "stream": True,
        "tools": [{"type": "function", "name": "f", "parameters": schema}],
    }
    status, content = post(json.dumps(body).encode())
    assert status == 200
    check_answer(status, content, stream=True)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": {"a": 1}}]}]},
            "input[0].content[0].type",
        ),
        (
            {
                "model": "m",
                "input": [
                    {
                        "type": "function_call_output",
                        "call_id": "c",
                        "output": [{"type": ["input_text"]}],
                    }
                ],
            },
            None,
        ),
        (
            {
                "model": "m",
                "input": "hi",
                "tools": [{"type": "function", "name": "f", "parameters": [1, 2]}],
            },
            "tools[0].parameters",
        ),
        ({"model": "m", "input": "hi", "temperature": 1e999}, "temperature"),
    ],
)
def test_wrong_inner_types_are_400_or_served(body: dict[str, Any], param: str | None) -> None:
    raw = json.dumps(body).replace("Infinity", "1e999").encode()
    status, content = post(raw)
    if param is None:  # an unknown output part type is noted, not rejected
        check_answer(status, content, stream=False)
        assert status == 200
    else:
        assert error_of(status, content)["param"] == param


@pytest.mark.parametrize(
    "parameters",
    [
        {"type": "object", "properties": [1], "required": "x"},
        {"type": "object", "properties": {"a": 5}, "required": [{"x": 1}, "a"]},
        {"type": "object", "properties": {"a": {"enum": 7, "type": ["x"]}}},
        {"type": "object", "properties": {"a": {"enum": {"k": 1}}}, "required": ["a"]},
    ],
)
def test_odd_parameters_do_not_crash_the_embedded_model(parameters: dict[str, Any]) -> None:
    body = {
        "model": "m",
        "input": "hi",
        "stream": True,
        "tools": [{"type": "function", "name": "f", "parameters": parameters}],
    }
    status, content = post(json.dumps(body).encode())
    assert status == 200
    check_answer(status, content, stream=True)


# ------------------------------------------------------------------------------------------------
# Over real loopback HTTP
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Any:
    with BackgroundServer(create_app(ServerConfig(scripted_delay=0))) as running:
        yield running


NASTY = [
    pytest.param(b'{"model": "x\\udc00", "input": "hi", "stream": true}', id="surrogate-stream"),
    pytest.param(b'{"model": "x\\udc00", "input": "hi"}', id="surrogate"),
    pytest.param(
        b'{"model": "m", "input": "hi", "stream": true, "metadata": '
        + b'{"a": ' * 700
        + b"1"
        + b"}" * 700
        + b"}",
        id="metadata-700-deep",
    ),
    pytest.param(b'{"model": "m", "input": ' + b"[" * 5000 + b"]" * 5000 + b"}", id="5000-deep"),
    pytest.param(
        b'{"model": "m", "input": [{"role": "user", "content": [{"type": {}}]}]}',
        id="object-type",
    ),
    pytest.param(b"\xff\xfe{", id="invalid-utf8"),
]


@pytest.mark.parametrize("body", NASTY)
def test_nasty_bodies_over_http_are_400(server: BackgroundServer, body: bytes) -> None:
    response = httpx.post(
        server.url + "/v1/responses",
        content=body,
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"


def test_health_answers_while_hostile_requests_are_translated(tmp_path: Path) -> None:
    """8,000 colliding tool names (about 330 KB), then a 6 MB body of 2,000,000 empty arrays,
    against ``rxresponses serve`` in a subprocess: /health answers all along (the target is
    0.5 s, see tests/fuzz/attack_requests.py; the bound here is generous for busy machines), and
    both requests are answered."""
    bodies = [
        json.dumps(colliding_tools(8_000)).encode(),
        b'{"model": "m", "input": "hi", "metadata": {"k": [' + b"[]," * 2_000_000 + b"[]]}}",
    ]
    statuses: list[int] = []
    server = start_serve(
        tmp_path, "serve", "--scripted-delay-ms", "0", "--log-level", "error", "--no-access-log"
    )
    try:

        def attack() -> None:
            with httpx.Client(timeout=60) as client:
                for body in bodies:
                    response = client.post(server.url + "/v1/responses", content=body)
                    statuses.append(response.status_code)

        thread = threading.Thread(target=attack)
        thread.start()
        worst = 0.0
        with httpx.Client(timeout=5) as client:
            while thread.is_alive():
                started = time.perf_counter()
                assert client.get(server.url + "/health").status_code == 200
                worst = max(worst, time.perf_counter() - started)
                time.sleep(0.02)
        thread.join()
    finally:
        server.stop()
    assert statuses == [200, 413]  # more than 200,000 values
    assert worst < 1.0, f"/health took {worst:.2f}s"


def test_the_log_line_of_what_was_not_honoured_stays_short(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tools = [{"type": "web_search"}] * 30
    body = {"model": "m", "input": "hi", "stream": False, "tools": tools}
    with caplog.at_level("INFO", logger="rxresponses.server"):
        status, _ = post(json.dumps(body).encode())
    assert status == 200
    [line] = [r.getMessage() for r in caplog.records if "not honoured" in r.getMessage()]
    assert line.endswith(
        "not honoured: "
        + "; ".join(f"tools[{i}] (type 'web_search')" for i in range(20))
        + "; and 10 more"
    )

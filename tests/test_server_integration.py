"""``rxresponses serve`` over real loopback HTTP, driven by the official ``openai`` SDK.

Servers (uvicorn on 127.0.0.1, free ports, background threads, started once per module):

* ``scripted``: the app with its embedded scripted upstream (no delay);
* ``fake_upstream``: a small Starlette Chat Completions server that records what it receives, and
  can answer slowly, fail with a status, or break the connection mid-stream (chosen by ``model``);
* ``proxy``: the app in front of ``fake_upstream``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from rxresponses.scripted import ScriptedTurn, chat_chunks, chat_sse, turn_for_request
from rxresponses.server import ServerConfig, create_app
from rxresponses.server.testing import BackgroundServer, codex_like_request
from rxresponses.sse import SSEDecoder

SECRET = "sk-live-9f8e7d6c5b4a39281706-DO-NOT-LOG"

# -- the fake Chat Completions upstream ----------------------------------------------------------


class Recorder:
    """What the fake upstream saw: request bodies and headers, and when slow streams closed."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.closed: dict[str, float] = {}
        self.lock = threading.Lock()

    def last(self) -> dict[str, Any]:
        with self.lock:
            return self.requests[-1]

    def wait_closed(self, key: str, timeout: float = 5.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if key in self.closed:
                    return self.closed[key]
            time.sleep(0.005)
        raise AssertionError(f"the upstream stream {key!r} was not closed within {timeout}s")


def frame(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def fake_chat_app(recorder: Recorder) -> Starlette:
    async def chat(request: Request) -> Response:
        body = await request.json()
        with recorder.lock:
            recorder.requests.append({"body": body, "headers": dict(request.headers)})
        model = str(body.get("model"))
        auth = request.headers.get("authorization", "")
        if model.startswith("status-"):
            status = int(model.removeprefix("status-"))
            # Like some providers, echo the credential in the error (the proxy must redact it).
            error = {"message": f"Incorrect API key provided: {auth}", "type": "auth", "code": "x"}
            return JSONResponse({"error": error}, status_code=status, headers={"retry-after": "0"})
        if model == "text-500":
            return PlainTextResponse(f"upstream exploded (auth was {auth})", status_code=500)
        if model == "slow":
            return StreamingResponse(
                slow(recorder, str(body.get("user"))), media_type="text/event-stream"
            )
        if model == "cut":
            return StreamingResponse(cut(), media_type="text/event-stream")
        turn = turn_for_request(body)
        return StreamingResponse(
            iter(list(chat_sse(chat_chunks(turn, model=model)))), media_type="text/event-stream"
        )

    async def models(request: Request) -> Response:
        with recorder.lock:
            recorder.requests.append({"body": None, "headers": dict(request.headers)})
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "test"}],
            }
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )


async def slow(recorder: Recorder, key: str) -> AsyncIterator[bytes]:
    """A model that never stops talking (for 30 s): records when its stream is closed."""
    chunks = chat_chunks(ScriptedTurn(text="tick " * 2000))
    try:
        for chunk in chunks:
            yield frame(chunk)
            await asyncio.sleep(0.02)
    finally:
        with recorder.lock:
            recorder.closed[key] = time.monotonic()


CUT_CHUNKS = list(chat_chunks(ScriptedTurn(text="Half an answer, and then the line went dead")))[:9]
CUT_TEXT = "".join(c["choices"][0]["delta"].get("content") or "" for c in CUT_CHUNKS)


async def cut() -> AsyncIterator[bytes]:
    for chunk in CUT_CHUNKS:
        yield frame(chunk)
    await asyncio.sleep(0.01)
    raise RuntimeError("the fake upstream breaks the connection here (expected in this test)")


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def fake_upstream(recorder: Recorder) -> Iterator[BackgroundServer]:
    with BackgroundServer(fake_chat_app(recorder)) as server:
        yield server


@pytest.fixture(scope="module")
def scripted() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(ServerConfig(scripted_delay=0))) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(fake_upstream: BackgroundServer) -> Iterator[BackgroundServer]:
    config = ServerConfig(upstream=fake_upstream.url + "/v1", upstream_timeout=10)
    with BackgroundServer(create_app(config)) as server:
        yield server


def sdk(server: BackgroundServer, api_key: str = "test") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=api_key, max_retries=0, timeout=20)


def assert_well_formed(events: list[Any]) -> None:
    """The Responses stream grammar, loosely: lifecycle, numbering, items opened then closed."""
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] in ("response.completed", "response.incomplete", "response.failed")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    added = [e.output_index for e in events if e.type == "response.output_item.added"]
    done = [e.output_index for e in events if e.type == "response.output_item.done"]
    assert added == list(range(len(added)))
    assert sorted(done) == added
    for index in added:
        assert types.index("response.output_item.added") <= next(
            i
            for i, e in enumerate(events)
            if e.type == "response.output_item.done" and e.output_index == index
        )


# -- the official SDK against the embedded model ------------------------------------------------


def test_sdk_streaming_create(scripted):
    events = list(sdk(scripted).responses.create(model="any-model", input="Hello", stream=True))
    assert_well_formed(events)
    types = [e.type for e in events]
    assert types[-1] == "response.completed"
    assert "response.reasoning_text.delta" in types  # raw reasoning without a summary request
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text.endswith("You said: Hello")
    final = events[-1].response
    assert final.output_text == text
    assert final.usage.output_tokens > 0
    assert final.model == "any-model"


def test_sdk_stream_helper_final_response(scripted):
    with sdk(scripted).responses.stream(
        model="m", input="Stream me", instructions="Be brief."
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.status == "completed"
    assert final.output_text == "".join(deltas)
    assert final.output_text.endswith("You said: Stream me")
    assert final.instructions == "Be brief."


def test_sdk_non_streaming(scripted):
    response = sdk(scripted).responses.create(
        model="m",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Plain"}]}],
        temperature=0.4,
        metadata={"run": "1"},
        store=False,
    )
    assert response.status == "completed"
    assert response.output_text.endswith("You said: Plain")
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.temperature == 0.4
    assert response.metadata == {"run": "1"}
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def test_sdk_tool_call_round_trip(scripted):
    client = sdk(scripted)
    question = {"role": "user", "content": "What's the weather in Paris?"}
    events = list(
        client.responses.create(model="m", input=[question], tools=[WEATHER_TOOL], stream=True)
    )
    assert_well_formed(events)
    args_done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert len(args_done) == 1
    call = next(item for item in events[-1].response.output if item.type == "function_call")
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
    assert args_done[0].arguments == call.arguments
    assert args_done[0].item_id == call.id

    follow_up = client.responses.create(
        model="m",
        input=[
            question,
            call.model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert follow_up.output_text == "The tool returned: 18C and sunny"


def test_sdk_reasoning_summary(scripted):
    events = list(
        sdk(scripted).responses.create(
            model="m", input="Think", reasoning={"effort": "low", "summary": "auto"}, stream=True
        )
    )
    assert_well_formed(events)
    summary = [e for e in events if e.type.startswith("response.reasoning_summary")]
    assert summary[0].type == "response.reasoning_summary_part.added"
    assert {e.summary_index for e in summary} == {0}
    assert not any(e.type.startswith("response.reasoning_text") for e in events)
    reasoning = events[-1].response.output[0]
    assert reasoning.type == "reasoning"
    assert reasoning.summary[0].text.startswith("A plain question.")
    assert events[-1].response.reasoning.effort == "low"


@pytest.mark.parametrize("first_tool", ["shell", "namespace", "custom"])
def test_codex_like_request(scripted, first_tool):
    """What the Codex CLI sends is accepted whole; the stream has what Codex needs."""
    body = codex_like_request(model="qwen3-coder", stream=True)
    tools = body["tools"]
    if first_tool == "namespace":
        tools.insert(0, tools.pop(2))
    elif first_tool == "custom":
        tools.insert(0, tools.pop(3))
    with httpx.stream("POST", scripted.url + "/v1/responses", json=body, timeout=20) as response:
        assert response.status_code == 200
        raw = response.read()
    decoder = SSEDecoder()
    messages = decoder.feed(raw)
    assert all(m.event == json.loads(m.data)["type"] for m in messages)
    events = [json.loads(m.data) for m in messages]
    types = [e["type"] for e in events]
    assert types[-1] == "response.completed"
    summary = [e for e in events if e["type"].startswith("response.reasoning_summary")]
    assert summary
    assert all(e["summary_index"] == 0 for e in summary)
    output = events[-1]["response"]["output"]
    call = output[-1]
    if first_tool == "shell":
        assert "response.function_call_arguments.done" in types
        assert (call["type"], call["name"]) == ("function_call", "shell")
        assert json.loads(call["arguments"]) == {"command": []}
    elif first_tool == "namespace":
        assert "response.function_call_arguments.done" in types
        assert (call["type"], call["name"], call["namespace"]) == (
            "function_call",
            "search",
            "mcp__docs",
        )
    else:
        assert "response.custom_tool_call_input.done" in types
        assert (call["type"], call["name"]) == ("custom_tool_call", "apply_patch")
    echoed = events[-1]["response"]
    assert echoed["store"] is False
    assert echoed["prompt_cache_key"] == body["prompt_cache_key"]
    assert echoed["reasoning"] == {"effort": "medium", "summary": "auto"}

    # and through the SDK, with the field it does not know passed as extra_body
    sdk_body = {k: v for k, v in body.items() if k not in ("stream", "client_metadata")}
    extra = {"client_metadata": body["client_metadata"]}
    with sdk(scripted).responses.stream(**sdk_body, extra_body=extra) as stream:
        final = stream.get_final_response()
    assert final.status == "completed"
    assert final.output[-1].type == call["type"]


def test_body_limit_over_http():
    small = BackgroundServer(create_app(ServerConfig(max_body_bytes=100_000)))
    with small, pytest.raises(openai.APIStatusError) as info:
        sdk(small).responses.create(model="m", input="x" * 1_000_000)
    assert info.value.status_code == 413
    assert info.value.code == "request_too_large"


# -- a real upstream over HTTP -------------------------------------------------------------------


def test_translation_reaches_the_upstream(proxy, recorder):
    response = sdk(proxy, api_key="client-key-abcdef123").responses.create(
        model="fake-model",
        instructions="Be helpful.",
        input="Hi there",
        max_output_tokens=500,
        reasoning={"effort": "minimal"},
        tools=[WEATHER_TOOL],
        tool_choice="none",
    )
    assert response.output_text.endswith("You said: Hi there")
    seen = recorder.last()
    assert seen["headers"]["authorization"] == "Bearer client-key-abcdef123"
    chat = seen["body"]
    assert chat["messages"] == [
        {"role": "system", "content": "Be helpful."},
        {"role": "user", "content": "Hi there"},
    ]
    assert (chat["max_tokens"], chat["reasoning_effort"], chat["tool_choice"]) == (
        500,
        "minimal",
        "none",
    )
    assert chat["tools"][0]["function"]["name"] == "get_weather"
    assert (chat["stream"], chat["stream_options"]) == (True, {"include_usage": True})


def test_models_pass_through(proxy, scripted, recorder):
    assert [m.id for m in sdk(proxy, api_key="models-key-123456").models.list()] == ["fake-model"]
    assert recorder.last()["headers"]["authorization"] == "Bearer models-key-123456"
    assert [m.id for m in sdk(scripted).models.list()] == ["rxresponses-scripted"]


def test_namespaced_call_from_a_real_upstream(proxy):
    namespace_tool = {
        "type": "namespace",
        "name": "crm",
        "description": "Customer records.",
        "tools": [dict(WEATHER_TOOL, name="lookup")],
    }
    with sdk(proxy).responses.stream(
        model="fake-model", input="find", extra_body={"tools": [namespace_tool]}
    ) as stream:
        final = stream.get_final_response()
    call = final.output[-1]
    assert (call.type, call.name, call.namespace) == ("function_call", "lookup", "crm")


def test_upstream_status_error_non_streaming(proxy):
    with pytest.raises(openai.RateLimitError) as info:
        sdk(proxy).responses.create(model="status-429", input="x")
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "0"
    with pytest.raises(openai.InternalServerError) as info:
        sdk(proxy).responses.create(model="text-500", input="x")
    assert "upstream exploded" in info.value.message


def test_upstream_status_error_streaming(proxy):
    events = list(sdk(proxy).responses.create(model="status-401", input="x", stream=True))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]
    assert "HTTP 401" in events[2].message
    assert events[3].response.status == "failed"


def test_upstream_cut_mid_stream(proxy):
    events = list(sdk(proxy).responses.create(model="cut", input="x", stream=True))
    assert_well_formed(events)
    types = [e.type for e in events]
    assert types[-2:] == ["error", "response.failed"]
    failed = events[-1].response
    assert failed.output[0].status == "incomplete"
    assert failed.output[0].content[0].text == CUT_TEXT
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == CUT_TEXT

    response = sdk(proxy).responses.create(model="cut", input="x")
    assert (response.status, response.output_text) == ("failed", CUT_TEXT)


# -- cancellation --------------------------------------------------------------------------------


def test_client_disconnect_closes_the_upstream_streaming(proxy, recorder):
    body = {"model": "slow", "input": "talk", "user": "cancel-stream", "stream": True}
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", proxy.url + "/v1/responses", json=body) as response:
            for line in response.iter_lines():
                if "response.output_text.delta" in line:
                    break
        gone = time.monotonic()  # the response is closed: the client has disconnected
    closed = recorder.wait_closed("cancel-stream")
    assert closed - gone < 1.0


def test_client_disconnect_closes_the_upstream_non_streaming(proxy, recorder):
    body = {"model": "slow", "input": "talk", "user": "cancel-plain"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(proxy.url + "/v1/responses", json=body, timeout=httpx.Timeout(10, read=0.3))
    gone = time.monotonic()
    closed = recorder.wait_closed("cancel-plain")
    assert closed - gone < 1.0


# -- secrets -------------------------------------------------------------------------------------


def test_keys_are_never_logged_nor_returned(fake_upstream, recorder, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("RXR_UPSTREAM_KEY", SECRET)
    client_secret = SECRET.replace("live", "client")
    config = ServerConfig(upstream=fake_upstream.url + "/v1", api_key_env="RXR_UPSTREAM_KEY")
    bodies: list[str] = []
    with (
        BackgroundServer(create_app(config)) as keyed,
        BackgroundServer(
            create_app(ServerConfig(upstream=fake_upstream.url + "/v1"))
        ) as forwarding,
    ):
        for server, key in ((keyed, "ignored-client-key"), (forwarding, client_secret)):
            headers = {"authorization": f"Bearer {key}"}
            for model in ("status-401", "text-500", "fake-model"):
                for stream in (False, True):
                    r = httpx.post(
                        server.url + "/v1/responses",
                        json={"model": model, "input": "x", "stream": stream},
                        headers=headers,
                        timeout=20,
                    )
                    bodies.append(r.text)
            bodies.append(httpx.get(server.url + "/v1/models", headers=headers).text)
        sent = {r["headers"].get("authorization") for r in recorder.requests}
    assert f"Bearer {SECRET}" in sent  # the configured key did reach the upstream
    assert f"Bearer {client_secret}" in sent  # and so did the client's, when no key is configured
    assert "Incorrect API key provided: ***" in "".join(bodies)
    for secret in (SECRET, client_secret):
        assert all(secret not in body for body in bodies)
        assert secret not in caplog.text
        assert all(secret not in str(record.args) for record in caplog.records)

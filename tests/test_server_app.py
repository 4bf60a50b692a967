"""The ASGI app in process (httpx.ASGITransport) with a mocked upstream (httpx.MockTransport).

Fast unit tests of the HTTP behaviour: status codes and error bodies, SSE framing, what is sent
upstream, upstream failures before and during the stream, the body limit, secrets. The same
paths over real loopback HTTP are in ``test_server_integration.py``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from rxresponses.scripted import ScriptedTurn, chat_chunks, chat_sse
from rxresponses.server import ServerConfig, create_app
from rxresponses.sse import SSEDecoder

pytestmark = pytest.mark.anyio

UPSTREAM = "http://upstream.test/v1"
SECRET = "sk-test-0123456789abcdef-SECRET"


@asynccontextmanager
async def serve(
    handler: Callable[[httpx.Request], Any] | None = None, **config: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the app; ``handler`` answers the upstream calls (else the scripted model)."""
    cfg = ServerConfig(upstream=UPSTREAM if handler else None, scripted_delay=0, **config)
    app = create_app(cfg, transport=httpx.MockTransport(handler) if handler else None)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        await app.state.rxresponses.upstream.aclose()


def sse_body(turn: ScriptedTurn) -> bytes:
    return b"".join(chat_sse(chat_chunks(turn)))


def frames(body: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    """``(event:, data)`` of every SSE frame; checks that the body is well framed."""
    decoder = SSEDecoder()
    messages = decoder.feed(body)
    assert not decoder.pending
    return [(m.event, json.loads(m.data)) for m in messages]


def assert_error_body(response: httpx.Response, status: int, code: str | None) -> dict[str, Any]:
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["message"]
    return error


# -- requests the server refuses -----------------------------------------------------------------


async def test_body_limit_413():
    async with serve(max_body_bytes=1000) as client:
        big = {"model": "m", "input": "x" * 2000}
        response = await client.post("/v1/responses", json=big)
        error = assert_error_body(response, 413, "request_too_large")
        assert error["type"] == "invalid_request_error"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
            for _ in range(20):
                yield b" " * 100

        response = await client.post("/v1/responses", content=chunks())
        assert_error_body(response, 413, "request_too_large")


async def test_gzip_body_and_its_limit():
    async with serve(max_body_bytes=5000) as client:
        body = gzip.compress(json.dumps({"model": "m", "input": "zipped"}).encode())
        headers = {"content-encoding": "gzip", "content-type": "application/json"}
        response = await client.post("/v1/responses", content=body, headers=headers)
        assert response.status_code == 200
        assert "You said: zipped" in response.json()["output"][1]["content"][0]["text"]

        bomb = gzip.compress(json.dumps({"model": "m", "input": "x" * 100_000}).encode())
        response = await client.post("/v1/responses", content=bomb, headers=headers)
        assert_error_body(response, 413, "request_too_large")
        response = await client.post(
            "/v1/responses", content=b"{}", headers={"content-encoding": "br"}
        )
        assert_error_body(response, 415, "unsupported_content_encoding")


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"model": NaN}', b"\xff\xfe"])
async def test_invalid_json_400(content):
    async with serve() as client:
        response = await client.post("/v1/responses", content=content)
        assert_error_body(response, 400, "invalid_json")


async def test_previous_response_id_400():
    async with serve() as client:
        response = await client.post(
            "/v1/responses", json={"model": "m", "input": "x", "previous_response_id": "resp_1"}
        )
        error = assert_error_body(response, 400, "unsupported_parameter")
        assert error["param"] == "previous_response_id"


async def test_unknown_routes_and_stored_responses_404_json():
    async with serve() as client:
        assert_error_body(await client.get("/v1/nope"), 404, None)
        assert_error_body(await client.get("/v1/responses/resp_1"), 404, "not_found")
        assert_error_body(await client.post("/v1/responses/resp_1/cancel"), 404, "not_found")
        assert_error_body(await client.get("/v1/responses"), 405, None)
        assert (await client.get("/health")).json() == {"status": "ok"}


# -- the embedded upstream -----------------------------------------------------------------------


async def test_embedded_models():
    async with serve() as client:
        listing = (await client.get("/v1/models")).json()
        assert [m["id"] for m in listing["data"]] == ["rxresponses-scripted"]
        assert (await client.get("/v1/models/anything")).json()["id"] == "anything"


async def test_sse_framing_and_order():
    async with serve() as client:
        response = await client.post(
            "/v1/responses", json={"model": "any-model", "input": "Hi", "stream": True}
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["x-request-id"].startswith("resp_")
    events = frames(response.content)
    assert all(event == data["type"] for event, data in events)  # `event:` equals `type`
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    types = [data["type"] for _, data in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert b"[DONE]" not in response.content
    completed = events[-1][1]["response"]
    assert completed["model"] == "any-model"
    assert completed["id"] == response.headers["x-request-id"]


async def test_max_output_tokens_gives_incomplete():
    async with serve() as client:
        response = await client.post(
            "/v1/responses", json={"model": "m", "input": "Hi", "max_output_tokens": 10}
        )
    body = response.json()
    assert (response.status_code, body["status"]) == (200, "incomplete")
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["max_output_tokens"] == 10


# -- a real upstream (mocked transport) ----------------------------------------------------------


async def test_what_is_sent_upstream_and_authorization_forwarded():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=sse_body(ScriptedTurn(text="Hello there.")))

    body = {
        "model": "up-model",
        "instructions": "Be nice.",
        "input": "Hi",
        "max_output_tokens": 64,
        "temperature": 0.3,
        "reasoning": {"effort": "high"},
        "metadata": {"trace": "t1"},
    }
    async with serve(handler) as client:
        response = await client.post(
            "/v1/responses", json=body, headers={"authorization": "Bearer client-key-12345"}
        )
    assert response.status_code == 200
    final = response.json()
    assert final["output"][0]["content"][0]["text"] == "Hello there."
    assert final["metadata"] == {"trace": "t1"}
    assert final["temperature"] == 0.3
    (sent,) = seen
    assert str(sent.url) == "http://upstream.test/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer client-key-12345"
    assert sent.headers["accept"] == "text/event-stream"
    assert json.loads(sent.content) == {
        "model": "up-model",
        "messages": [
            {"role": "system", "content": "Be nice."},
            {"role": "user", "content": "Hi"},
        ],
        "temperature": 0.3,
        "max_tokens": 64,
        "reasoning_effort": "high",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_configured_key_replaces_the_client_header(monkeypatch):
    monkeypatch.setenv("RXR_TEST_KEY", SECRET)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"object": "list", "data": [{"id": "up"}]})
        return httpx.Response(200, content=sse_body(ScriptedTurn(text="ok")))

    async with serve(handler, api_key_env="RXR_TEST_KEY") as client:
        await client.post("/v1/responses", json={"model": "m", "input": "x"})
        models = await client.get("/v1/models", headers={"authorization": "Bearer other"})
    assert seen == [f"Bearer {SECRET}", f"Bearer {SECRET}"]
    assert models.json()["data"] == [{"id": "up"}]


async def test_models_passthrough_status_and_body():
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/models/gone"
        return httpx.Response(404, json={"error": {"message": "no such model", "code": None}})

    async with serve(handler) as client:
        response = await client.get("/v1/models/gone")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "no such model"


async def test_upstream_error_status_non_streaming_passes_status_body_and_retry_after():
    error = {"error": {"message": "slow down", "type": "rate_limit", "param": None, "code": "429"}}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json=error, headers={"retry-after": "7"})

    async with serve(handler) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "x"})
    assert response.status_code == 429
    assert response.json() == error
    assert response.headers["retry-after"] == "7"


async def test_upstream_plain_text_error_is_wrapped():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="overloaded")

    async with serve(handler) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "x"})
    error = assert_error_body(response, 503, "upstream_error")
    assert error["type"] == "server_error"
    assert "overloaded" in error["message"]


async def test_upstream_error_status_streaming_gives_error_then_failed():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": "bad key"}})

    async with serve(handler) as client:
        response = await client.post(
            "/v1/responses", json={"model": "m", "input": "x", "stream": True}
        )
    assert response.status_code == 200
    events = frames(response.content)
    assert [data["type"] for _, data in events] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]
    assert "HTTP 401" in events[2][1]["message"]
    assert "bad key" in events[2][1]["message"]
    assert events[3][1]["response"]["status"] == "failed"


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (httpx.ConnectError("connection refused"), 502, "upstream_unavailable"),
        (httpx.ConnectTimeout("timed out"), 504, "upstream_timeout"),
    ],
)
async def test_upstream_unreachable(exc, status, code):
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    async with serve(handler) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "x"})
        error = assert_error_body(response, status, code)
        assert error["type"] == "server_error"
        response = await client.post(
            "/v1/responses", json={"model": "m", "input": "x", "stream": True}
        )
    types = [data["type"] for _, data in frames(response.content)]
    assert types[-2:] == ["error", "response.failed"]


CUT_CHUNKS = list(chat_chunks(ScriptedTurn(text="The partial answer that never ends")))[:8]
CUT_TEXT = "".join(c["choices"][0]["delta"].get("content") or "" for c in CUT_CHUNKS)


def cut_handler(request: httpx.Request) -> httpx.Response:
    """An upstream that sends the start of an answer, then breaks the connection."""
    head = b"".join(list(chat_sse(CUT_CHUNKS))[:-1])  # without [DONE]

    async def stream() -> AsyncIterator[bytes]:
        yield head
        raise httpx.ReadError("connection reset by peer")

    return httpx.Response(200, content=stream())


async def test_cut_mid_stream_streaming():
    async with serve(cut_handler) as client:
        response = await client.post(
            "/v1/responses", json={"model": "m", "input": "x", "stream": True}
        )
    events = [data for _, data in frames(response.content)]
    types = [e["type"] for e in events]
    assert "response.output_text.delta" in types
    assert types[-2:] == ["error", "response.failed"]
    assert "connection broken" in events[-2]["message"]
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    partial = failed["output"][0]
    assert partial["status"] == "incomplete"
    assert partial["content"][0]["text"] == CUT_TEXT


async def test_cut_mid_stream_non_streaming_returns_the_failed_response():
    async with serve(cut_handler) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "x"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "server_error"
    assert body["output"][0]["content"][0]["text"] == CUT_TEXT


# -- secrets -------------------------------------------------------------------------------------


async def test_secret_echoed_by_upstream_is_redacted(monkeypatch):
    def handler(request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        return httpx.Response(401, json={"error": {"message": f"Incorrect API key: {auth}"}})

    for stream in (False, True):
        async with serve(handler) as client:
            response = await client.post(
                "/v1/responses",
                json={"model": "m", "input": "x", "stream": stream},
                headers={"authorization": f"Bearer {SECRET}"},
            )
        assert SECRET not in response.text
        assert "Incorrect API key: ***" in response.text


async def test_scripted_upstream_streams_frame_by_frame_with_delays():
    from rxresponses.server._upstream import Redactor, ScriptedUpstream

    request = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
    reply = await ScriptedUpstream(delay=0.001).open_chat(request, None, Redactor())
    assert reply.ok
    assert reply.body is not None
    chunks = [chunk async for chunk in reply.body]
    assert len(chunks) > 10
    assert all(chunk.startswith(b"data: ") and chunk.endswith(b"\n\n") for chunk in chunks)
    assert chunks[-1] == b"data: [DONE]\n\n"
    fast = await ScriptedUpstream(delay=0).open_chat(request, None, Redactor())
    assert fast.body is not None
    (whole,) = [chunk async for chunk in fast.body]  # no delay: one read
    assert whole.count(b"\n\n") == len(chunks)


async def test_an_upstream_that_ignores_stream_true_is_converted():
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "up",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Calling.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": 1}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=completion)

    async with serve(handler) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "x"})
    body = response.json()
    assert body["status"] == "completed"
    assert body["output"][0]["content"][0]["text"] == "Calling."
    call = body["output"][1]
    assert (call["type"], call["call_id"], call["name"], call["arguments"]) == (
        "function_call",
        "call_1",
        "f",
        '{"a": 1}',
    )
    assert body["usage"]["total_tokens"] == 7


async def test_a_json_error_with_status_200_fails_the_response():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"error": {"message": "model is loading", "code": "busy"}})

    async with serve(handler) as client:
        response = await client.post(
            "/v1/responses", json={"model": "m", "input": "x", "stream": True}
        )
    events = [data for _, data in frames(response.content)]
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert events[-2]["message"] == "model is loading"

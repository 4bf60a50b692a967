"""The client (``rxresponses.responses``) over real loopback HTTP, against a fake Chat upstream.

The upstream is :class:`tests.fuzz.loopback.LoopbackServer`: it answers what each test scripts,
byte by byte, and keeps every request it read, so the tests assert what went upstream too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

import rxresponses
from rxresponses import chat_to_responses, from_openai_chunks
from rxresponses.scripted import ScriptedToolCall, ScriptedTurn, chat_chunks, chat_sse
from tests.fuzz.loopback import Conn, LoopbackServer, Request, wait_until

Handler = Callable[[Request, Conn], Awaitable[bool | None]]


def sse_of(turn: ScriptedTurn, **kw: Any) -> bytes:
    return b"".join(chat_sse(chat_chunks(turn, fragment_chars=(100, 100), **kw)))


def answer(body: bytes) -> Handler:
    async def handler(request: Request, conn: Conn) -> None:
        await conn.head(200)
        await conn.send(body)
        await conn.end()

    return handler


@pytest.fixture
def upstream() -> Iterator[Callable[[Handler], LoopbackServer]]:
    servers: list[LoopbackServer] = []

    def start(handler: Handler) -> LoopbackServer:
        server = LoopbackServer(handler).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


# -- 1. the request side ---------------------------------------------------------------------


def test_stream_sends_the_translated_request_and_yields_typed_events(upstream: Any) -> None:
    server = upstream(answer(sse_of(ScriptedTurn(text="Hello there!"))))
    http = httpx.Client(base_url=f"{server.url}/v1")
    with (
        http,
        rxresponses.responses.stream(
            http,
            model="m1",
            input="Hi",
            instructions="Be brief.",
            max_output_tokens=50,
            temperature=0.5,
            headers={"authorization": "Bearer k"},
        ) as stream,
    ):
        events = list(stream)
    assert [e.type for e in events] == TEXT_EVENTS
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "Hello there!"
    assert final.model == "m1"
    assert final.instructions == "Be brief."
    assert final.max_output_tokens == 50
    assert final.usage is not None
    assert final.usage.input_tokens == 42
    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer k"
    assert json.loads(request.body) == {
        "model": "m1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "max_tokens": 50,
        "temperature": 0.5,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_create_returns_the_observable_with_tool_names_restored(upstream: Any) -> None:
    turn = ScriptedTurn(
        tool_calls=[
            ScriptedToolCall("crm__lookup", '{"q":"ada"}', "c1"),
            ScriptedToolCall("apply_patch", '{"input":"*** Begin Patch"}', "c2"),
        ]
    )
    server = upstream(answer(sse_of(turn)))
    tools = [
        {
            "type": "namespace",
            "name": "crm",
            "description": "The CRM.",
            "tools": [{"type": "function", "name": "lookup", "description": "Find."}],
        },
        {"type": "custom", "name": "apply_patch"},
    ]
    with httpx.Client(base_url=server.url) as http:
        events = rxresponses.responses.create(http, model="m", input="go", tools=tools)
        response = rxresponses.get_final_response(events)
    call, custom = response.output
    assert (call.type, call.name, call.namespace, call.arguments) == (  # type: ignore[union-attr]
        "function_call",
        "lookup",
        "crm",
        '{"q":"ada"}',
    )
    assert (custom.type, custom.name, custom.input) == (  # type: ignore[union-attr]
        "custom_tool_call",
        "apply_patch",
        "*** Begin Patch",
    )
    sent = json.loads(server.requests[0].body)
    assert [t["function"]["name"] for t in sent["tools"]] == ["crm__lookup", "apply_patch"]
    assert server.requests[0].path == "/chat/completions"


def test_a_request_that_cannot_be_translated_raises_before_sending(upstream: Any) -> None:
    server = upstream(answer(b""))
    http = httpx.Client(base_url=server.url)
    with http, pytest.raises(rxresponses.translate.RequestError, match="previous_response_id"):
        rxresponses.responses.stream(
            http, model="m", input="x", extra_body={"previous_response_id": "resp_1"}
        )
    assert server.requests == []


def test_openai_sdk_chat_stream_is_a_source(upstream: Any) -> None:
    openai = pytest.importorskip("openai")
    server = upstream(
        answer(sse_of(ScriptedTurn(reasoning="Think.", text="Done."), model="sdk-model"))
    )
    client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
    chat = client.chat.completions.create(
        model="sdk-model", messages=[{"role": "user", "content": "x"}], stream=True
    )
    response = rxresponses.get_final_response(from_openai_chunks(chat).pipe(chat_to_responses()))
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output[0].content[0].text == "Think."  # type: ignore[union-attr,index]
    assert response.output_text == "Done."
    assert response.model == "sdk-model"
    assert response.status == "completed"


@pytest.mark.anyio
async def test_openai_sdk_async_chat_stream_is_a_source(upstream: Any) -> None:
    openai = pytest.importorskip("openai")
    server = upstream(answer(sse_of(ScriptedTurn(text="Async."))))
    client = openai.AsyncOpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
    chat = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )
    events = from_openai_chunks(chat).pipe(chat_to_responses())
    response = await rxresponses.aget_final_response(events)
    assert response.output_text == "Async."


# -- 2. the stream object --------------------------------------------------------------------


def test_text_deltas_then_final_response_on_one_pass(upstream: Any) -> None:
    body = b"".join(chat_sse(chat_chunks(ScriptedTurn(text="one two three"), seed=3)))
    server = upstream(answer(body))
    http = httpx.Client(base_url=server.url)
    with http, rxresponses.responses.stream(http, model="m", input="x") as stream:
        first = next(stream)
        pieces = list(stream.text_deltas)
        response = stream.get_final_response()
    assert first.type == "response.created"
    assert "".join(pieces) == "one two three"
    assert len(pieces) > 1
    assert response.output_text == "one two three"
    assert response.status == "completed"
    assert len(server.requests) == 1


def test_leaving_the_with_block_early_closes_the_upstream(upstream: Any) -> None:
    closed: list[bool] = []
    chunks = list(chat_sse(chat_chunks(ScriptedTurn(text="a long answer"), fragment_chars=(1, 1))))

    async def handler(request: Request, conn: Conn) -> None:
        await conn.head(200)
        for piece in chunks[:4]:
            await conn.send(piece)
        closed.append(await conn.stall(10))

    server = upstream(handler)
    with httpx.Client(base_url=server.url) as http:
        with rxresponses.responses.stream(http, model="m", input="x") as stream:
            for event in stream:
                if event.type == "response.output_text.delta":
                    break
        assert wait_until(lambda: closed == [True], 5)


@pytest.mark.anyio
async def test_async_with_and_async_for(upstream: Any) -> None:
    server = upstream(answer(sse_of(ScriptedTurn(text="Hello async"))))
    async with httpx.AsyncClient(base_url=server.url) as http:
        async with rxresponses.responses.astream(http, model="m", input="x") as stream:
            types = [event.type async for event in stream]
            response = await stream.get_final_response()
        async with rxresponses.responses.astream(http, model="m", input="x") as stream:
            pieces = [text async for text in stream.text_deltas]
            await stream.until_done()
    assert types == TEXT_EVENTS
    assert response.output_text == "Hello async"
    assert pieces == ["Hello async"]
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_async_leaving_early_closes_the_upstream(upstream: Any) -> None:
    closed: list[bool] = []
    chunks = list(chat_sse(chat_chunks(ScriptedTurn(text="a long answer"), fragment_chars=(1, 1))))

    async def handler(request: Request, conn: Conn) -> None:
        await conn.head(200)
        for piece in chunks[:4]:
            await conn.send(piece)
        closed.append(await conn.stall(10))

    server = upstream(handler)
    async with httpx.AsyncClient(base_url=server.url) as http:
        async with rxresponses.responses.astream(http, model="m", input="x") as stream:
            async for event in stream:
                if event.type == "response.output_text.delta":
                    break
        for _ in range(500):
            if closed:
                break
            await asyncio.sleep(0.01)
    assert closed == [True]


@pytest.mark.anyio
async def test_afan_out_feeds_every_sink_and_resolves_to_the_response(upstream: Any) -> None:
    server = upstream(answer(sse_of(ScriptedTurn(text="fanned"))))
    seen_a: list[str] = []
    seen_b: list[str] = []
    async with httpx.AsyncClient(base_url=server.url) as http:
        events = rxresponses.responses.create(http, model="m", input="x")
        response = await rxresponses.sinks.afan_out(
            events, lambda e: seen_a.append(e.type), lambda e: seen_b.append(e.type)
        )
    assert response.output_text == "fanned"
    assert seen_a == TEXT_EVENTS
    assert seen_b == TEXT_EVENTS
    assert len(server.requests) == 1

"""The client (``rxresponses.responses``) over real loopback HTTP, against a fake Chat upstream.

The upstream is :class:`tests.fuzz.loopback.LoopbackServer`: it answers what each test scripts,
byte by byte, and keeps every request it read, so the tests assert what went upstream too.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.utils
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import reactivex
from reactivex import operators as ops

import rxresponses
from rxresponses import ResponseFailedError, chat_to_responses, from_openai_chunks
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
    with openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client:
        chat = client.chat.completions.create(
            model="sdk-model", messages=[{"role": "user", "content": "x"}], stream=True
        )
        events = from_openai_chunks(chat).pipe(chat_to_responses())
        response = rxresponses.get_final_response(events)
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output[0].content[0].text == "Think."  # type: ignore[union-attr,index]
    assert response.output_text == "Done."
    assert response.model == "sdk-model"
    assert response.status == "completed"


@pytest.mark.anyio
async def test_openai_sdk_async_chat_stream_is_a_source(upstream: Any) -> None:
    openai = pytest.importorskip("openai")
    server = upstream(answer(sse_of(ScriptedTurn(text="Async."))))
    async with openai.AsyncOpenAI(base_url=server.url, api_key="k", max_retries=0) as client:
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


def send_then_stall(closed: list[bool]) -> Handler:
    """Send the role and the first three one-character fragments, then nothing: append to
    ``closed`` whether the client closed the connection within 10 s.

    The client may leave (after the first delta) while the later fragments are still being
    written: the server runs on a thread of the test's process, and each ``send()`` hands the GIL
    over. A write after the client's close then fails with ``ConnectionResetError``, which is the
    close arriving, not an error; so the peer is watched from the first byte on."""
    chunks = list(chat_sse(chat_chunks(ScriptedTurn(text="a long answer"), fragment_chars=(1, 1))))

    async def handler(request: Request, conn: Conn) -> None:
        conn.watch_peer()
        await conn.head(200)
        with contextlib.suppress(ConnectionError):
            for piece in chunks[:4]:
                await conn.send(piece)
        closed.append(await conn.stall(10))

    return handler


def test_leaving_the_with_block_early_closes_the_upstream(upstream: Any) -> None:
    closed: list[bool] = []
    server = upstream(send_then_stall(closed))
    with httpx.Client(base_url=server.url) as http:
        with rxresponses.responses.stream(http, model="m", input="x") as stream:
            for event in stream:
                if event.type == "response.output_text.delta":
                    break
        # well before httpx's 5 s read timeout would have closed it
        assert wait_until(lambda: closed == [True], 2)


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
    server = upstream(send_then_stall(closed))
    async with httpx.AsyncClient(base_url=server.url) as http:
        async with rxresponses.responses.astream(http, model="m", input="x") as stream:
            async for event in stream:
                if event.type == "response.output_text.delta":
                    break
        for _ in range(200):  # 2 s, well before httpx's 5 s read timeout
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


# -- 3. errors you can catch -----------------------------------------------------------------


def status_then(statuses: list[tuple[int, dict[str, str]]], then: bytes) -> Handler:
    """Answer each status (with a JSON error body) in turn, then ``then`` as a 200 stream."""

    async def handler(request: Request, conn: Conn) -> None:
        if statuses:
            status, headers = statuses.pop(0)
            body = json.dumps(
                {"error": {"message": "slow down", "type": "rate", "code": "rate_limit_exceeded"}}
            ).encode()
            await conn.head(
                status,
                {"content-type": "application/json", **headers},
                framing="length",
                length=len(body),
            )
            await conn.send(body)
            return
        await answer(then)(request, conn)

    return handler


def test_raise_on_failure_carries_the_http_status_and_the_partial_response(
    upstream: Any,
) -> None:
    server = upstream(status_then([(429, {"retry-after": "0"})], sse_of(ScriptedTurn(text="x"))))
    http = httpx.Client(base_url=server.url)
    stream = rxresponses.responses.stream(http, model="m", input="x")
    with http, stream, pytest.raises(ResponseFailedError) as caught:
        stream.get_final_response(raise_on_failure=True)
    error = caught.value
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded"
    assert error.status == "failed"
    assert error.response.status == "failed"
    assert error.response.output == []
    assert "slow down" in error.message
    assert isinstance(error.__cause__, rxresponses.UpstreamStatusError)
    assert len(server.requests) == 1  # max_retries defaults to 0


def test_without_raise_on_failure_the_failed_response_is_returned(upstream: Any) -> None:
    server = upstream(status_then([(503, {})], b""))
    http = httpx.Client(base_url=server.url)
    with http, rxresponses.responses.stream(http, model="m", input="x") as stream:
        response = stream.get_final_response()
    assert response.status == "failed"
    assert response.error is not None
    assert response.error.code == "server_error"
    assert "HTTP 503" in response.error.message


def test_a_cut_stream_raises_with_its_partial_text_and_no_status(upstream: Any) -> None:
    pieces = list(chat_sse(chat_chunks(ScriptedTurn(text="partial answer"), fragment_chars=(7, 7))))

    async def handler(request: Request, conn: Conn) -> None:
        await conn.head(200)
        for piece in pieces[:3]:  # role, "partial", " answer": no finish_reason, no [DONE]
            await conn.send(piece)
        await conn.end()

    server = upstream(handler)
    http = httpx.Client(base_url=server.url)
    stream = rxresponses.responses.stream(http, model="m", input="x", max_retries=3)
    with http, stream, pytest.raises(ResponseFailedError) as caught:
        stream.get_final_response(raise_on_failure=True)
    assert caught.value.status_code is None
    assert caught.value.response.output_text == "partial answer"
    assert "ended before a finish_reason" in caught.value.message
    assert len(server.requests) == 1  # never retried once the stream started


def test_done_without_a_finish_reason_says_so(upstream: Any) -> None:
    pieces = list(chat_sse(chat_chunks(ScriptedTurn(text="partial answer"), fragment_chars=(7, 7))))

    async def handler(request: Request, conn: Conn) -> None:
        await conn.head(200)
        for piece in pieces[:3]:  # role, "partial", " answer": no finish_reason
            await conn.send(piece)
        await conn.send(b"data: [DONE]\n\n")  # ...yet the upstream ends the stream itself
        await conn.end()

    server = upstream(handler)
    http = httpx.Client(base_url=server.url)
    stream = rxresponses.responses.stream(http, model="m", input="x")
    with http, stream, pytest.raises(ResponseFailedError) as caught:
        stream.get_final_response(raise_on_failure=True)
    assert caught.value.message == "upstream sent [DONE] without a finish_reason for choice 0"
    assert caught.value.response.output_text == "partial answer"
    assert caught.value.status_code is None


def test_retries_wait_for_retry_after_then_succeed(upstream: Any) -> None:
    server = upstream(
        status_then(
            [(429, {"retry-after": "1"}), (503, {"retry-after-ms": "10"})],
            sse_of(ScriptedTurn(text="third time")),
        )
    )
    http = httpx.Client(base_url=server.url)
    started = time.monotonic()
    with http, rxresponses.responses.stream(http, model="m", input="x", max_retries=2) as stream:
        response = stream.get_final_response(raise_on_failure=True)
    elapsed = time.monotonic() - started
    assert response.output_text == "third time"
    assert len(server.requests) == 3
    assert elapsed >= 0.9  # the Retry-After: 1 of the first answer was honoured


def test_any_5xx_is_retried_and_an_unreadable_retry_after_falls_back_to_backoff(
    upstream: Any,
) -> None:
    server = upstream(
        status_then([(501, {"retry-after": "soon"})], sse_of(ScriptedTurn(text="ok")))
    )
    http = httpx.Client(base_url=server.url)
    with http, rxresponses.responses.stream(http, model="m", input="x", max_retries=1) as stream:
        response = stream.get_final_response(raise_on_failure=True)
    assert response.output_text == "ok"
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("headers", "attempt", "seconds"),
    [
        ({"retry-after": "2"}, 0, 2.0),
        ({"retry-after": "1.5"}, 3, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0, 0.25),  # the finer one wins
        ({"retry-after": "86400"}, 0, 60.0),  # at most a minute
        ({"retry-after": "-3"}, 0, 0.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0, 0.0),  # a date gone by
        ({"retry-after": "soon"}, 0, 0.5),  # unreadable: the backoff
        ({"retry-after": "nan"}, 1, 1.0),
        ({"retry-after-ms": "x"}, 2, 2.0),
        ({}, 0, 0.5),
        ({}, 4, 8.0),
        ({}, 9, 8.0),  # the backoff stops doubling at 8 s
    ],
)
def test_retry_delay_is_what_the_answer_asks_else_a_backoff(
    headers: dict[str, str], attempt: int, seconds: float
) -> None:
    answer = httpx.Response(429, headers=headers)
    assert rxresponses.responses._retry_delay(answer, attempt) == seconds


def test_retry_delay_waits_until_a_retry_after_date() -> None:
    when = email.utils.format_datetime(
        datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30), usegmt=True
    )
    delay = rxresponses.responses._retry_delay(
        httpx.Response(503, headers={"retry-after": when}), 0
    )
    assert 28 <= delay <= 30


@pytest.mark.anyio
async def test_async_retries_then_raise_when_out_of_attempts(upstream: Any) -> None:
    server = upstream(status_then([(503, {"retry-after": "0"})] * 3, b""))
    async with (
        httpx.AsyncClient(base_url=server.url) as http,
        rxresponses.responses.astream(http, model="m", input="x", max_retries=2) as stream,
    ):
        with pytest.raises(ResponseFailedError) as caught:
            await stream.get_final_response(raise_on_failure=True)
    assert caught.value.status_code == 503
    assert len(server.requests) == 3


@contextlib.asynccontextmanager
async def loop_ticks() -> AsyncIterator[list[int]]:
    """Count the event loop's 10 ms ticks while the block runs (``[count]``): a loop blocked by
    a read counts none."""
    ticks = [0]

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0.01)
            ticks[0] += 1

    task = asyncio.create_task(ticker())
    try:
        yield ticks
    finally:
        task.cancel()


@pytest.mark.anyio
async def test_aiterate_over_a_sync_source_does_not_block_the_loop() -> None:
    def slow() -> Iterator[bytes]:
        for piece in chat_sse(chat_chunks(ScriptedTurn(text="abc"), fragment_chars=(1, 1))):
            time.sleep(0.05)  # a blocking read
            yield piece

    async with loop_ticks() as ticks:
        events = rxresponses.from_bytes(slow()).pipe(rxresponses.chat_sse_to_responses())
        texts = [
            e.delta async for e in rxresponses.aiterate(events) if e.type.endswith("text.delta")
        ]
    assert texts == ["a", "b", "c"]
    assert ticks[0] >= 10  # ~0.35 s of blocking reads; a blocked loop would count 0


@pytest.mark.anyio
async def test_aiterate_over_create_with_a_sync_client_does_not_block_the_loop(
    upstream: Any,
) -> None:
    pieces = list(chat_sse(chat_chunks(ScriptedTurn(text="slow"), fragment_chars=(1, 1))))

    async def handler(request: Request, conn: Conn) -> None:
        await conn.head(200)
        for piece in pieces:
            await asyncio.sleep(0.05)  # the client's read blocks meanwhile
            await conn.send(piece)
        await conn.end()

    server = upstream(handler)
    async with loop_ticks() as ticks:
        with httpx.Client(base_url=server.url) as http:
            events = rxresponses.responses.create(http, model="m", input="x")
            texts = [
                e.delta async for e in rxresponses.aiterate(events) if e.type.endswith("text.delta")
            ]
    assert texts == ["s", "l", "o", "w"]
    assert ticks[0] >= 10  # ~0.4 s of blocking reads; a blocked loop would count 0


@pytest.mark.anyio
async def test_aiterate_over_a_sync_source_of_async_sources_runs_them() -> None:
    # The sync outer source reads on aiterate's worker thread, so flat_map subscribes the async
    # inner ones there: their tasks must still start on the loop (which sleeps meanwhile).
    def slow_ids() -> Iterator[int]:
        for i in (1, 2):
            time.sleep(0.05)  # a blocking read: the loop is idle, waiting for a value
            yield i

    async def body(i: int) -> AsyncIterator[bytes]:
        for piece in (b"data: ", f"{i}".encode(), b"\n\n"):
            await asyncio.sleep(0)
            yield piece

    source = reactivex.from_iterable(slow_ids()).pipe(
        ops.flat_map(lambda i: rxresponses.from_bytes(body(i)).pipe(rxresponses.decode_sse()))
    )

    async def collect() -> list[str]:
        return [message.data async for message in rxresponses.aiterate(source)]

    assert sorted(await asyncio.wait_for(collect(), 5)) == ["1", "2"]

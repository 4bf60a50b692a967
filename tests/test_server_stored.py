"""Stored responses through ``rxresponses serve`` over real loopback HTTP, driven by the official
``openai`` SDK: store / retrieve / delete / input_items, owner isolation, ``previous_response_id``
chains, background runs that a client leaves, resumes and cancels, and bad input (issue 14).

Servers (uvicorn on 127.0.0.1, background threads): a fake Chat Completions upstream that records
every request body and answers by ``model``, and the app in front of it with a SQLite store in a
temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from rxresponses.server import ServerConfig, create_app
from rxresponses.server.testing import BackgroundServer

# -- the fake upstream ---------------------------------------------------------------------------


class Upstream:
    """Records what the fake Chat server received, and when its slow streams were closed."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.closed: list[str] = []
        self.lock = threading.Lock()

    def last(self) -> dict[str, Any]:
        with self.lock:
            return self.bodies[-1]


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def text_stream(words: list[str]) -> list[bytes]:
    frames = [chunk({"role": "assistant", "content": ""})]
    frames += [chunk({"content": w}) for w in words]
    return [*frames, chunk({}, "stop"), b"data: [DONE]\n\n"]


def call_stream() -> list[bytes]:
    call = {
        "index": 0,
        "id": "call_weather_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    return [chunk({"role": "assistant", "tool_calls": [call]}), chunk({}, "tool_calls")]


def fake_chat_app(upstream: Upstream) -> Starlette:
    async def chat(request: Request) -> Response:
        body = await request.json()
        with upstream.lock:
            upstream.bodies.append(body)
        model = body["model"]
        messages = body["messages"]
        if model == "slow":  # 200 words, 10 ms apart; records when it is closed
            return StreamingResponse(slow(upstream, str(body.get("user"))))
        if model == "tool" and messages[-1]["role"] != "tool":
            frames = call_stream()
        elif model == "tool":
            frames = text_stream(["It is sunny in ", messages[-1]["content"]])
        else:
            users = sum(1 for m in messages if m["role"] == "user")
            frames = text_stream([f"answer {users}"])
        return StreamingResponse(iter(frames), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


SLOW_WORDS = [f"w{i} " for i in range(200)]


async def slow(upstream: Upstream, key: str) -> AsyncIterator[bytes]:
    try:
        for frame in text_stream(SLOW_WORDS):
            yield frame
            await asyncio.sleep(0.01)
    finally:
        with upstream.lock:
            upstream.closed.append(key)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture(scope="module")
def fake(upstream: Upstream) -> Iterator[BackgroundServer]:
    with BackgroundServer(fake_chat_app(upstream)) as server:
        yield server


@pytest.fixture(scope="module")
def server(fake: BackgroundServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    path = tmp_path_factory.mktemp("store") / "responses.sqlite3"
    config = ServerConfig(upstream=fake.url + "/v1", store=f"sqlite:///{path}")
    with BackgroundServer(create_app(config)) as running:
        yield running


def sdk(server: BackgroundServer, api_key: str = "key-alice") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=api_key, max_retries=0, timeout=20)


def http(server: BackgroundServer, api_key: str = "key-alice") -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {api_key}"}, timeout=20
    )


def wait_status(client: openai.OpenAI, rid: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.responses.retrieve(rid)
        if response.status not in ("queued", "in_progress"):
            return response
        time.sleep(0.02)
    raise AssertionError(f"{rid} still running after {timeout}s")


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return dict(error)


# -- 1. store, retrieve, input_items, delete ----------------------------------------------------


def test_stored_by_default_retrieve_input_items_delete(server):
    client = sdk(server)
    created = client.responses.create(model="m", input="Hello there")
    assert created.status == "completed"
    assert created.output_text == "answer 1"

    got = client.responses.retrieve(created.id)
    assert (got.id, got.status, got.output_text, got.model) == (
        created.id,
        "completed",
        "answer 1",
        "m",
    )

    items = client.responses.input_items.list(created.id)
    assert [(i.type, i.role, i.content[0].text) for i in items.data] == [
        ("message", "user", "Hello there")
    ]

    deleted = http(server).delete(f"/v1/responses/{created.id}")
    assert deleted.status_code == 200
    assert deleted.json() == {"id": created.id, "object": "response.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)  # the second delete
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list(created.id)


def test_a_streamed_response_is_stored_with_its_event_log(server):
    client = sdk(server)
    events = list(client.responses.create(model="m", input="Hi", stream=True))
    rid = events[0].response.id
    assert events[-1].type == "response.completed"
    got = client.responses.retrieve(rid)  # stored before the stream ended
    assert (got.status, got.output_text) == ("completed", "answer 1")
    replay = list(client.responses.retrieve(rid, stream=True))
    assert [e.model_dump() for e in replay] == [e.model_dump() for e in events]


def test_store_false_stores_nothing(server):
    client = sdk(server)
    created = client.responses.create(model="m", input="Hello", store=False)
    assert created.output_text == "answer 1"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    streamed = list(client.responses.create(model="m", input="Hi", stream=True, store=False))
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(streamed[0].response.id)


def test_input_items_pages(server):
    client = sdk(server)
    texts = ["one", "two", "three", "four", "five"]
    created = client.responses.create(
        model="m", input=[{"role": "user", "content": t} for t in texts]
    )
    first = client.responses.input_items.list(created.id, limit=2, order="asc")
    assert [i.content[0].text for i in first.data] == ["one", "two"]
    assert first.has_more is True
    second = client.responses.input_items.list(
        created.id, limit=2, order="asc", after=first.last_id
    )
    assert [i.content[0].text for i in second.data] == ["three", "four"]
    newest = client.responses.input_items.list(created.id, limit=1)  # default order: desc
    assert [i.content[0].text for i in newest.data] == ["five"]
    every = [i.content[0].text for i in client.responses.input_items.list(created.id, order="asc")]
    assert every == texts  # the SDK pages through ``after``


def test_another_owner_gets_404_everywhere(server):
    alice, mallory = sdk(server, "key-alice"), sdk(server, "key-mallory")
    created = alice.responses.create(model="m", input="secret plans", background=True)
    wait_status(alice, created.id)
    with pytest.raises(openai.NotFoundError):
        mallory.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        mallory.responses.input_items.list(created.id)
    with pytest.raises(openai.NotFoundError):
        mallory.responses.cancel(created.id)
    with pytest.raises(openai.NotFoundError):
        mallory.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as raised:
        mallory.responses.create(model="m", input="next", previous_response_id=created.id)
    assert raised.value.body["code"] == "previous_response_not_found"  # type: ignore[index]
    # none of it touched alice's response
    assert alice.responses.retrieve(created.id).output_text == "answer 1"


def test_bad_ids_and_parameters_are_4xx(server):
    client = http(server)
    error_of(client.get("/v1/responses/not-an-id"), 400)
    error_of(client.get("/v1/responses/resp_" + "a" * 300), 400)
    error_of(client.delete("/v1/responses/resp_%00x"), 400)
    error_of(client.get("/v1/responses/resp_unknown123"), 404)
    error_of(client.get("/v1/responses/resp_unknown123", params={"stream": "true"}), 404)
    error_of(client.post("/v1/responses/resp_unknown123/cancel"), 404)
    error_of(client.get("/v1/responses/resp_unknown123/input_items"), 404)
    error_of(client.get("/v1/responses/resp_unknown123/nothing"), 404)

    rid = client.post("/v1/responses", json={"model": "m", "input": "x"}).json()["id"]
    last = len(list(sdk(server).responses.retrieve(rid, stream=True))) - 1
    for after, param in [("-1", "starting_after"), ("abc", "starting_after"), ("1.5", None)]:
        r = client.get(f"/v1/responses/{rid}", params={"stream": "true", "starting_after": after})
        assert error_of(r, 400)["param"] == "starting_after", param
    past = client.get(
        f"/v1/responses/{rid}", params={"stream": "true", "starting_after": str(last + 1)}
    )
    assert "past the end" in error_of(past, 400)["message"]
    for params in ({"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"order": "up"}):
        assert error_of(client.get(f"/v1/responses/{rid}/input_items", params=params), 400)[
            "param"
        ] in ("limit", "order")
    error_of(client.get(f"/v1/responses/{rid}/input_items", params={"after": "msg_nope"}), 400)
    error_of(client.get(f"/v1/responses/{rid}", params={"stream": "maybe"}), 400)
    # cancelling a response that was not created in the background: 400, as OpenAI
    error_of(client.post(f"/v1/responses/{rid}/cancel"), 400)


def test_store_unavailable_or_full_is_503_and_store_false_still_works(
    fake: BackgroundServer, tmp_path: Path
):
    (tmp_path / "a-file").write_text("not a folder")
    for store, max_bytes, code in [
        (f"sqlite:///{tmp_path}/a-file/x.sqlite3", 0, "store_unavailable"),  # cannot be opened
        (f"sqlite:///{tmp_path}/tiny.sqlite3", 1, "store_full"),
    ]:
        config = ServerConfig(upstream=fake.url + "/v1", store=store, store_max_bytes=max_bytes)
        with BackgroundServer(create_app(config)) as running:
            client = http(running)
            for stream in (False, True):
                body = {"model": "m", "input": "x", "stream": stream}
                refused = client.post("/v1/responses", json=body)
                assert error_of(refused, 503)["code"] == code
            answered = sdk(running).responses.create(model="m", input="x", store=False)
            assert answered.output_text == "answer 1"


# -- 2. previous_response_id ---------------------------------------------------------------------


def test_three_turn_chain_sends_the_earlier_turns_upstream(server, upstream: Upstream):
    client = sdk(server)
    first = client.responses.create(model="m", input="Q1", instructions="Be terse.")
    second = client.responses.create(model="m", input="Q2", previous_response_id=first.id)
    assert upstream.last()["messages"] == [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "answer 1"},
        {"role": "user", "content": "Q2"},
    ]  # instructions are not inherited
    third = client.responses.create(
        model="m", input="Q3", instructions="Be kind.", previous_response_id=second.id
    )
    assert upstream.last()["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "answer 1"},
        {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": "answer 2"},
        {"role": "user", "content": "Q3"},
    ]
    assert third.output_text == "answer 3"
    assert third.previous_response_id == second.id
    assert client.responses.retrieve(third.id).previous_response_id == second.id


def test_function_call_round_trip(server, upstream: Upstream):
    client = sdk(server)
    tools = [
        {
            "type": "function",
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    first = client.responses.create(model="tool", input="Weather in Paris?", tools=tools)
    (call,) = first.output
    assert (call.type, call.name) == ("function_call", "get_weather")
    assert call.call_id == "call_weather_1"
    second = client.responses.create(
        model="tool",
        tools=tools,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Paris"}],
    )
    assert upstream.last()["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_weather_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_weather_1", "content": "Paris"},
    ]
    assert second.output_text == "It is sunny in Paris"


def test_unknown_previous_response_id_is_404(server):
    r = http(server).post(
        "/v1/responses", json={"model": "m", "input": "x", "previous_response_id": "resp_nope1"}
    )
    error = error_of(r, 404)
    assert error["code"] == "previous_response_not_found"
    assert error["param"] == "previous_response_id"


# -- 3. background ------------------------------------------------------------------------------


def test_background_returns_at_once_and_completes(server):
    client = sdk(server)
    started = time.monotonic()
    created = client.responses.create(model="slow", input="go", background=True)
    assert time.monotonic() - started < 1.5  # the run takes 2 s
    assert created.status in ("queued", "in_progress")
    assert created.background is True
    done = wait_status(client, created.id, timeout=20)
    assert done.status == "completed"
    assert done.output_text == "".join(SLOW_WORDS)


def test_background_stream_left_and_resumed(server):
    client = sdk(server)
    seen = []
    stream = client.responses.create(model="slow", input="go", background=True, stream=True)
    for event in stream:
        seen.append(event)
        if len(seen) == 40:
            break
    stream.close()  # the client disconnects; the run goes on
    rid = seen[0].response.id
    resumed = list(client.responses.retrieve(rid, stream=True, starting_after=39))
    assert [e.sequence_number for e in resumed] == list(range(40, 40 + len(resumed)))
    terminals = ("response.completed", "response.incomplete", "response.failed")
    assert [e.type for e in resumed if e.type in terminals] == ["response.completed"]
    assert resumed[-1].type == "response.completed"
    events = seen + resumed
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "".join(SLOW_WORDS)
    # after the end: the whole log replays from the store, the same events
    replay = list(client.responses.retrieve(rid, stream=True))
    assert [e.model_dump() for e in replay] == [e.model_dump() for e in events]


def test_cancel_a_background_run(server, upstream: Upstream):
    client = sdk(server)
    created = client.responses.create(model="slow", input="go", background=True, user="cancel-me")
    time.sleep(0.3)
    cancelled = client.responses.cancel(created.id)
    assert cancelled.status == "cancelled"
    deadline = time.monotonic() + 5
    while "cancel-me" not in upstream.closed:
        assert time.monotonic() < deadline, "the upstream request was not closed"
        time.sleep(0.01)
    assert client.responses.retrieve(created.id).status == "cancelled"
    events = list(client.responses.retrieve(created.id, stream=True))
    terminal = [e for e in events if e.type in ("response.completed", "response.failed")]
    assert len(terminal) == 1
    assert events[-1] is terminal[0]
    assert terminal[0].response.status == "cancelled"
    assert len(events[-1].response.output_text) < len("".join(SLOW_WORDS))
    # cancelling it again (or a finished background response) returns it unchanged
    assert client.responses.cancel(created.id).status == "cancelled"
    finished = client.responses.create(model="m", input="x", background=True)
    wait_status(client, finished.id)
    assert client.responses.cancel(finished.id).status == "completed"


def test_a_background_run_holds_a_stream_slot_its_readers_do_not(fake: BackgroundServer, tmp_path):
    config = ServerConfig(
        upstream=fake.url + "/v1", store=f"sqlite:///{tmp_path}/s.sqlite3", max_concurrent_streams=1
    )
    with BackgroundServer(create_app(config)) as running:
        client = sdk(running)
        run = client.responses.create(model="slow", input="go", background=True, stream=True)
        first = next(iter(run))  # the run has started and holds the only slot
        refused = http(running).post("/v1/responses", json={"model": "m", "input": "x"})
        assert error_of(refused, 429)["code"] == "too_many_requests"
        rid = first.response.id
        # readers of the run are not limited: two at once, while the slot is taken
        readers = [client.responses.retrieve(rid, stream=True, starting_after=0) for _ in range(2)]
        texts = [
            "".join(e.delta for e in r if e.type == "response.output_text.delta") for r in readers
        ]
        assert texts == ["".join(SLOW_WORDS)] * 2
        run.close()
        wait_status(client, rid)
        deadline = time.monotonic() + 5  # the slot is given back when the run ends
        while (
            http(running).post("/v1/responses", json={"model": "m", "input": "x"}).status_code
            != 200
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_deleting_a_running_background_response_stops_its_run(server, upstream: Upstream):
    client = sdk(server)
    created = client.responses.create(model="slow", input="go", background=True, user="delete-me")
    time.sleep(0.2)
    assert http(server).delete(f"/v1/responses/{created.id}").json()["deleted"] is True
    deadline = time.monotonic() + 5
    while "delete-me" not in upstream.closed:
        assert time.monotonic() < deadline, "the upstream request was not closed"
        time.sleep(0.01)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_a_stored_stream_the_client_leaves_ends_failed_in_the_store(server):
    client = sdk(server)
    stream = client.responses.create(model="slow", input="go", stream=True)
    rid = next(iter(stream)).response.id
    stream.close()  # a foreground run ends with its client
    deadline = time.monotonic() + 5
    while (got := client.responses.retrieve(rid)).status == "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert got.status == "failed"
    events = list(client.responses.retrieve(rid, stream=True))
    assert [e.type for e in events if e.type == "response.failed"] == ["response.failed"]
    assert events[-1].type == "response.failed"


def test_background_runs_end_failed_when_the_server_stops(fake: BackgroundServer, tmp_path):
    config = ServerConfig(upstream=fake.url + "/v1", store=f"sqlite:///{tmp_path}/s.sqlite3")
    with BackgroundServer(create_app(config)) as running:
        created = sdk(running).responses.create(model="slow", input="go", background=True)
        time.sleep(0.2)
    with BackgroundServer(create_app(config)) as running:
        client = sdk(running)
        assert client.responses.retrieve(created.id).status == "failed"
        events = list(client.responses.retrieve(created.id, stream=True))
        assert events[-1].type == "response.failed"
        assert [e.sequence_number for e in events] == list(range(len(events)))


@pytest.mark.parametrize(
    ("field", "value", "status"),
    [
        ("previous_response_id", 12, 400),
        ("previous_response_id", ["resp_1"], 400),
        ("previous_response_id", "", 404),
        ("previous_response_id", "resp_" + "x" * 100_000, 404),
        ("previous_response_id", "resp_\u0000", 404),
        ("background", "yes", 400),
        ("background", 1, 400),
        ("store", "no", 400),
        ("store", 0, 400),
    ],
)
def test_stateful_fields_with_wrong_values_are_4xx(server, field, value, status):
    body = {"model": "m", "input": "x", field: value}
    error = error_of(http(server).post("/v1/responses", json=body), status)
    assert error["param"] == field


def test_background_with_store_false_is_400(server):
    body = {"model": "m", "input": "x", "background": True, "store": False}
    assert error_of(http(server).post("/v1/responses", json=body), 400)["param"] == "background"

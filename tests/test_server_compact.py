"""``POST /v1/responses/compact`` on real loopback HTTP, with the official SDK's
``client.responses.compact(...)`` and a fake Chat upstream (:class:`LoopbackServer`) that records
every Chat body it receives.

* The answer is what the SDK types (``CompactedResponse``): the window's user messages kept
  verbatim, then one ``compaction`` item whose ``encrypted_content`` does not show the summary.
* Sent back in a later ``input`` (or reached through a ``previous_response_id`` chain), the item's
  summary takes the place of the history it replaced in the Chat request.
* A tampered, forged or foreign item is 400 ``invalid_encrypted_content`` (nothing goes upstream);
  two servers with the same ``--secret`` read each other's items.
* The limits of ``POST /v1/responses`` hold: missing ``model`` 400, body size 413, a slot of
  ``max_concurrent_streams`` (429), ``max_stream_seconds`` (the upstream is closed), upstream
  errors passed on.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

pytest.importorskip("starlette")
pytest.importorskip("cryptography")

from rxresponses.server import ServerConfig, create_app
from rxresponses.server._compact import (
    COMPACTION_PROMPT,
    SUMMARY_PREFIX,
    CompactionSealer,
)
from rxresponses.server.config import Secret
from rxresponses.server.testing import BackgroundServer

from ._util import chunk, sse_body
from .fuzz.loopback import Conn, LoopbackServer, Request, wait_until

SUMMARY = "Alice asked for the weather in Paris; the tool said 18 C and sunny. Next: pack."
SECRET = "a-test-secret-of-32-characters!!"

WINDOW: list[dict[str, Any]] = [
    {"role": "user", "content": "My name is Alice. What's the weather in Paris?"},
    {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"c":1}'},
    {"type": "function_call_output", "call_id": "call_1", "output": "18 C and sunny"},
    {"role": "assistant", "content": "It is 18 C and sunny in Paris."},
    {"role": "user", "content": "Thanks. Remind me to pack."},
]


def _chat_body(request: Request) -> dict[str, Any]:
    return dict(json.loads(request.body))


def _is_compaction_request(body: dict[str, Any]) -> bool:
    return body["messages"][0]["content"].startswith(COMPACTION_PROMPT)


async def _answer(request: Request, conn: Conn) -> None:
    """The summary for a compaction request, ``ok`` for any other."""
    text = SUMMARY if _is_compaction_request(_chat_body(request)) else "ok"
    body = sse_body(
        [
            chunk({"role": "assistant", "content": text}),
            chunk({}, "stop"),
            chunk(
                None,
                choices=[],
                usage={"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
            ),
        ]
    )
    await conn.head(200, framing="length", length=len(body))
    await conn.send(body)


@pytest.fixture(scope="module")
def upstream() -> Iterator[LoopbackServer]:
    with LoopbackServer(_answer) as server:
        yield server


def _config(upstream: LoopbackServer, folder: Path, **options: Any) -> ServerConfig:
    options.setdefault("secret", Secret(SECRET))
    return ServerConfig(
        upstream=upstream.url + "/v1", store=f"sqlite:///{folder}/store.sqlite3", **options
    )


@pytest.fixture(scope="module")
def server(
    upstream: LoopbackServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackgroundServer]:
    config = _config(upstream, tmp_path_factory.mktemp("compact"))
    with BackgroundServer(create_app(config)) as running:
        yield running


def _sdk(server: BackgroundServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="key-alice", max_retries=0)


def _sent(upstream: LoopbackServer, since: int) -> list[dict[str, Any]]:
    """The Chat bodies the upstream received since request number ``since``."""
    return [_chat_body(r) for r in upstream.requests[since:] if r.path == "/v1/chat/completions"]


def _output_dicts(compacted: Any) -> list[dict[str, Any]]:
    return [
        json.loads(item.model_dump_json(warnings=False, exclude_unset=True))
        for item in compacted.output
    ]


def test_compact_answers_the_sdk_type_with_the_user_messages_and_a_sealed_item(
    server: BackgroundServer, upstream: LoopbackServer
) -> None:
    since = len(upstream.requests)
    compacted = _sdk(server).responses.compact(model="up-model", input=WINDOW)  # type: ignore[arg-type]
    assert type(compacted).__name__ == "CompactedResponse"
    assert compacted.object == "response.compaction"
    assert compacted.id.startswith("resp_")
    assert abs(compacted.created_at - time.time()) < 60
    out = _output_dicts(compacted)
    assert [(o["type"], o.get("role")) for o in out] == [
        ("message", "user"),
        ("message", "user"),
        ("compaction", None),
    ]
    assert out[0]["content"] == [
        {"type": "input_text", "text": "My name is Alice. What's the weather in Paris?"}
    ]
    assert out[1]["content"] == [{"type": "input_text", "text": "Thanks. Remind me to pack."}]
    item = compacted.output[-1]
    assert item.type == "compaction"
    assert item.id.startswith("cmp_")
    token = item.encrypted_content
    assert "Alice" not in token
    assert "Paris" not in token
    raw = base64.urlsafe_b64decode(token.removeprefix("rxc1.") + "==")
    assert b"Paris" not in raw
    assert b"pack" not in raw
    assert compacted.usage.input_tokens == 120
    assert compacted.usage.output_tokens == 30
    assert compacted.usage.total_tokens == 150
    # One Chat request: the compaction prompt, then the transcript of the whole window.
    [chat] = _sent(upstream, since)
    assert chat["model"] == "up-model"
    assert chat["messages"][0] == {"role": "system", "content": COMPACTION_PROMPT}
    transcript = chat["messages"][1]["content"]
    assert chat["messages"][1]["role"] == "user"
    for expected in (
        "[user]\nMy name is Alice. What's the weather in Paris?",
        '[assistant called the tool get_weather (call call_1)]\n{"c":1}',
        "[tool result of call call_1]\n18 C and sunny",
        "[assistant]\nIt is 18 C and sunny in Paris.",
        "[user]\nThanks. Remind me to pack.",
    ):
        assert expected in transcript


def test_the_summary_takes_the_place_of_the_history_it_replaced(
    server: BackgroundServer, upstream: LoopbackServer
) -> None:
    client = _sdk(server)
    compacted = client.responses.compact(model="up-model", input=WINDOW)  # type: ignore[arg-type]
    window = [*_output_dicts(compacted), {"role": "user", "content": "What should I do now?"}]
    since = len(upstream.requests)
    answer = client.responses.create(model="up-model", input=window)  # type: ignore[arg-type]
    assert answer.output_text == "ok"
    [chat] = _sent(upstream, since)
    assert chat["messages"] == [
        {"role": "user", "content": "My name is Alice. What's the weather in Paris?"},
        {"role": "user", "content": "Thanks. Remind me to pack."},
        {"role": "user", "content": SUMMARY_PREFIX + SUMMARY},
        {"role": "user", "content": "What should I do now?"},
    ]
    # The client may also append the compacted output to its whole history (as after a
    # server-side compaction): what came before the item is replaced all the same.
    full = [*WINDOW, _output_dicts(compacted)[-1], {"role": "user", "content": "And now?"}]
    since = len(upstream.requests)
    client.responses.create(model="up-model", input=full)  # type: ignore[arg-type]
    [chat] = _sent(upstream, since)
    assert chat["messages"] == [
        {"role": "user", "content": "My name is Alice. What's the weather in Paris?"},
        {"role": "user", "content": "Thanks. Remind me to pack."},
        {"role": "user", "content": SUMMARY_PREFIX + SUMMARY},
        {"role": "user", "content": "And now?"},
    ]


def test_a_previous_response_id_chain_carries_the_item_sealed(
    server: BackgroundServer, upstream: LoopbackServer
) -> None:
    client = _sdk(server)
    compacted = client.responses.compact(model="up-model", input=WINDOW)  # type: ignore[arg-type]
    first = client.responses.create(
        model="up-model",
        input=[*_output_dicts(compacted), {"role": "user", "content": "Go on."}],  # type: ignore[list-item]
    )
    # Stored as sent: the item stays sealed in the stored input items.
    listed = client.responses.input_items.list(first.id)
    kinds = [item.type for item in listed.data]
    assert "compaction" in kinds
    assert SUMMARY not in json.dumps([i.model_dump() for i in listed.data])
    since = len(upstream.requests)
    client.responses.create(model="up-model", previous_response_id=first.id, input="Next?")
    [chat] = _sent(upstream, since)
    assert chat["messages"] == [
        {"role": "user", "content": "My name is Alice. What's the weather in Paris?"},
        {"role": "user", "content": "Thanks. Remind me to pack."},
        {"role": "user", "content": SUMMARY_PREFIX + SUMMARY},
        {"role": "user", "content": "Go on."},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "Next?"},
    ]
    # Compacting a chain again: the earlier summary is part of the new transcript.
    since = len(upstream.requests)
    again = client.responses.compact(model="up-model", previous_response_id=first.id)
    [chat] = _sent(upstream, since)
    assert SUMMARY_PREFIX + SUMMARY in chat["messages"][1]["content"]
    assert [o["type"] for o in _output_dicts(again)] == ["message"] * 3 + ["compaction"]


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return dict(error)


def test_a_tampered_forged_or_foreign_item_is_400_and_nothing_goes_upstream(
    server: BackgroundServer, upstream: LoopbackServer, tmp_path: Path
) -> None:
    compacted = _sdk(server).responses.compact(model="up-model", input=WINDOW)  # type: ignore[arg-type]
    item = _output_dicts(compacted)[-1]
    token = item["encrypted_content"]
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    foreign = CompactionSealer(Secret("another-server-secret-32-chars!!")).seal({"summary": "x"})
    cases = [
        {**item, "encrypted_content": flipped},
        {**item, "encrypted_content": token[:-4]},
        {
            "type": "compaction",
            "encrypted_content": "rxc1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        },
        {"type": "compaction", "encrypted_content": "not a token"},
        {"type": "compaction", "encrypted_content": 42},
        {"type": "compaction", "encrypted_content": foreign},
    ]
    since = len(upstream.requests)
    for bad in cases:
        for route in ("/v1/responses", "/v1/responses/compact"):
            answer = httpx.post(
                server.url + route,
                json={"model": "m", "input": [WINDOW[0], bad, {"role": "user", "content": "x"}]},
            )
            error = _error(answer, 400)
            assert error["code"] == "invalid_encrypted_content"
            assert error["param"] == "input[1].encrypted_content"
    assert _sent(upstream, since) == []


def test_servers_with_the_same_secret_read_each_others_items(
    upstream: LoopbackServer, tmp_path: Path
) -> None:
    with (
        BackgroundServer(create_app(_config(upstream, tmp_path / "a"))) as a,
        BackgroundServer(create_app(_config(upstream, tmp_path / "b"))) as b,
        BackgroundServer(create_app(_config(upstream, tmp_path / "c", secret=None))) as c,
    ):
        compacted = _sdk(a).responses.compact(model="m", input="Hello")
        window = [*_output_dicts(compacted), {"role": "user", "content": "Go on."}]
        assert _sdk(b).responses.create(model="m", input=window).output_text == "ok"  # type: ignore[arg-type]
        answer = httpx.post(c.url + "/v1/responses", json={"model": "m", "input": window})
        assert _error(answer, 400)["code"] == "invalid_encrypted_content"


def test_missing_model_bad_input_and_an_unknown_chain_are_4xx(server: BackgroundServer) -> None:
    url = server.url + "/v1/responses/compact"
    error = _error(httpx.post(url, json={"input": "Hello"}), 400)
    assert (error["param"], error["code"]) == ("model", "missing_required_parameter")
    error = _error(httpx.post(url, json={"model": "m"}), 400)
    assert (error["param"], error["code"]) == ("input", "missing_required_parameter")
    error = _error(httpx.post(url, json={"model": "m", "input": 3}), 400)
    assert error["param"] == "input"
    error = _error(httpx.post(url, json={"model": "m", "input": [{"role": "robot"}]}), 400)
    assert error["param"] == "input[0].role"
    error = _error(httpx.post(url, content=b"[1, 2]"), 400)
    assert error["code"] == "invalid_json"
    answer = httpx.post(url, json={"model": "m", "previous_response_id": "resp_nope"})
    assert _error(answer, 404)["code"] == "previous_response_not_found"
    with pytest.raises(openai.BadRequestError):
        _sdk(server).responses.compact(model="", input="Hello")


def test_the_body_limit_applies(upstream: LoopbackServer, tmp_path: Path) -> None:
    config = _config(upstream, tmp_path, max_body_bytes=1000)
    with BackgroundServer(create_app(config)) as running:
        answer = httpx.post(
            running.url + "/v1/responses/compact", json={"model": "m", "input": "x" * 2000}
        )
        assert _error(answer, 413)["code"] == "request_too_large"


class _Stalling:
    """An upstream that sends its headers, then nothing, until the client goes away."""

    def __init__(self) -> None:
        self.closed: list[float] = []

    async def __call__(self, request: Request, conn: Conn) -> None:
        await conn.head(200)
        await conn.send(b": waiting\n\n")
        if await conn.stall(30):
            self.closed.append(time.monotonic())


def test_the_stream_slots_and_the_time_limit_apply(tmp_path: Path) -> None:
    stalling = _Stalling()
    with LoopbackServer(stalling) as up:
        config = _config(up, tmp_path, max_concurrent_streams=1, max_stream_seconds=1.5)
        with BackgroundServer(create_app(config)) as running:
            url = running.url + "/v1/responses/compact"

            async def both() -> list[httpx.Response]:
                async with httpx.AsyncClient(timeout=20) as client:
                    first = asyncio.ensure_future(
                        client.post(url, json={"model": "m", "input": "Hello"})
                    )
                    assert await asyncio.to_thread(wait_until, lambda: len(up.requests) == 1, 5)
                    second = await client.post(url, json={"model": "m", "input": "Hello"})
                    return [await first, second]

            started = time.monotonic()
            first, second = asyncio.run(both())
            elapsed = time.monotonic() - started
            assert _error(second, 429)["code"] == "too_many_requests"
            assert _error(first, 502)["code"] == "compaction_failed"
            assert "max_stream_seconds" in first.json()["error"]["message"]
            assert elapsed < 10
            # The upstream request was closed when the limit hit.
            assert wait_until(lambda: len(stalling.closed) == 1, 5)
            assert stalling.closed[0] - started < 10


async def _refuse(request: Request, conn: Conn) -> None:
    body = b'{"error": {"message": "no such model", "type": "invalid_request_error"}}'
    await conn.head(404, {"content-type": "application/json"}, framing="length", length=len(body))
    await conn.send(body)


def test_an_upstream_error_is_passed_on(tmp_path: Path) -> None:
    with (
        LoopbackServer(_refuse) as up,
        BackgroundServer(create_app(_config(up, tmp_path))) as running,
    ):
        answer = httpx.post(
            running.url + "/v1/responses/compact", json={"model": "m", "input": "Hello"}
        )
        assert _error(answer, 404)["message"] == "no such model"


def test_the_sealer_round_trips_and_refuses_everything_else() -> None:
    sealer = CompactionSealer(Secret(SECRET))
    token = sealer.seal({"summary": "s3cret plans", "id": "cmp_1"})
    assert token.startswith("rxc1.")
    assert sealer.open(token) == {"summary": "s3cret plans", "id": "cmp_1"}
    assert CompactionSealer(Secret(SECRET)).open(token) == {
        "summary": "s3cret plans",
        "id": "cmp_1",
    }
    assert sealer.seal({"summary": "s3cret plans"}) != sealer.seal({"summary": "s3cret plans"})
    assert CompactionSealer(Secret(SECRET + "x")).open(token) is None
    assert CompactionSealer(None).open(token) is None
    for bad in (token[:-1], token + "A", "rxc1.", "rxc1.%%%", "", token.replace("rxc1.", "rxc2.")):
        assert sealer.open(bad) is None
    raw = bytearray(base64.urlsafe_b64decode(token[5:] + "=="))
    for i in (0, 12, len(raw) - 1):  # nonce, ciphertext, tag
        changed = bytearray(raw)
        changed[i] ^= 1
        assert sealer.open("rxc1." + base64.urlsafe_b64encode(changed).decode()) is None
    not_a_summary = sealer.seal({"text": "x"})
    assert sealer.open(not_a_summary) is None


def test_the_secret_and_the_event_names_are_options_that_reach_the_workers() -> None:
    from rxresponses.server.config import ConfigError

    with pytest.raises(ConfigError, match="at least 16"):
        ServerConfig(secret=Secret("short"))
    with pytest.raises(ConfigError, match="open-responses"):
        ServerConfig(reasoning_events="spec")  # type: ignore[arg-type]
    config = ServerConfig(secret=Secret(SECRET), reasoning_events="open-responses")
    env = config.to_env()
    assert env["RXRESPONSES_SECRET"] == SECRET
    assert env["RXRESPONSES_REASONING_EVENTS"] == "open-responses"
    again = ServerConfig.from_env(env)
    assert again.reasoning_events == "open-responses"
    assert again.secret is not None
    assert again.secret.reveal() == SECRET
    assert SECRET not in repr(again)
    assert "RXRESPONSES_SECRET" not in ServerConfig().to_env()


def test_the_upstream_deadline_applies(tmp_path: Path) -> None:
    stalling = _Stalling()
    with LoopbackServer(stalling) as up:
        config = _config(up, tmp_path, upstream_deadline=1.0)
        with BackgroundServer(create_app(config)) as running:
            started = time.monotonic()
            answer = httpx.post(
                running.url + "/v1/responses/compact",
                json={"model": "m", "input": "Hello"},
                timeout=20,
            )
            assert _error(answer, 502)["code"] == "compaction_failed"
            assert time.monotonic() - started < 10
            assert wait_until(lambda: len(stalling.closed) == 1, 5)


def test_instructions_reach_the_summary_and_a_stateless_server_compacts_too(
    upstream: LoopbackServer,
) -> None:
    config = ServerConfig(upstream=upstream.url + "/v1", secret=Secret(SECRET))  # store: none
    with BackgroundServer(create_app(config)) as running:
        since = len(upstream.requests)
        compacted = _sdk(running).responses.compact(
            model="m", input="Plan a trip.", instructions="Keep every date."
        )
        [chat] = _sent(upstream, since)
        assert chat["messages"][0]["content"] == COMPACTION_PROMPT + "\n\nKeep every date."
        window = [*_output_dicts(compacted), {"role": "user", "content": "Go on."}]
        since = len(upstream.requests)
        _sdk(running).responses.create(model="m", input=window, store=False)  # type: ignore[arg-type]
        [chat] = _sent(upstream, since)
        assert chat["messages"][-2:] == [
            {"role": "user", "content": SUMMARY_PREFIX + SUMMARY},
            {"role": "user", "content": "Go on."},
        ]
        answer = httpx.post(
            running.url + "/v1/responses/compact",
            json={"model": "m", "previous_response_id": "resp_1"},
        )
        error = _error(answer, 400)
        assert (error["param"], error["code"]) == ("previous_response_id", "unsupported_parameter")

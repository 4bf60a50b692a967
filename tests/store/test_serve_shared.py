"""Two ``rxresponses serve`` processes sharing a real PostgreSQL (store) and Redis (live events):
a background stream started on one is resumed, retrieved and cancelled on the other, and a
``previous_response_id`` chain crosses them (issue 14)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from rxresponses.server.testing import BackgroundServer
from tests.fuzz.attack_upstream import ServeProcess, start_serve
from tests.test_server_stored import SLOW_WORDS, Upstream, fake_chat_app


def serve(logdir: Path, name: str, *args: str) -> ServeProcess:
    """``rxresponses serve`` (the command, in its own process) on a free port of 127.0.0.1, with
    the fuzz harness's launcher; its output goes to ``logdir/<name>.log``."""
    return start_serve(logdir, name, *args)


def sdk(server: ServeProcess, api_key: str = "key-shared") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=api_key, max_retries=0, timeout=20)


@pytest.fixture(scope="module")
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def pair(
    upstream: Upstream, pg_dsn: str, redis_url: str, tmp_path: Path
) -> Iterator[list[ServeProcess]]:
    with BackgroundServer(fake_chat_app(upstream)) as fake:
        args = ("--upstream", fake.url + "/v1", "--store", pg_dsn, "--bus", redis_url)
        servers: list[ServeProcess] = []
        try:
            for name in ("a", "b"):
                servers.append(serve(tmp_path, name, *args, "--no-access-log"))
            yield servers
        finally:
            for server in servers:
                server.stop()


def test_background_stream_resumed_retrieved_and_cancelled_across_two_servers(
    pair: list[ServeProcess], upstream: Upstream
):
    a, b = sdk(pair[0]), sdk(pair[1])

    # started on A, left after 30 events, resumed on B: every later event once, in order
    seen = []
    for event in a.responses.create(model="slow", input="go", background=True, stream=True):
        seen.append(event)
        if len(seen) == 30:
            break
    rid = seen[0].response.id
    resumed = list(b.responses.retrieve(rid, stream=True, starting_after=29))
    assert [e.sequence_number for e in resumed] == list(range(30, 30 + len(resumed)))
    terminals = ("response.completed", "response.incomplete", "response.failed")
    assert [e.type for e in resumed if e.type in terminals] == ["response.completed"]
    assert resumed[-1].type == "response.completed"
    text = "".join(e.delta for e in seen + resumed if e.type == "response.output_text.delta")
    assert text == "".join(SLOW_WORDS)
    got = b.responses.retrieve(rid)
    assert (got.status, got.output_text) == ("completed", text)
    assert [i.content[0].text for i in b.responses.input_items.list(rid).data] == ["go"]

    # a chain across them: turn 2 on B continues turn 1 of A
    first = a.responses.create(model="m", input="Q1")
    second = b.responses.create(model="m", input="Q2", previous_response_id=first.id)
    assert upstream.last()["messages"][:2] == [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "answer 1"},
    ]
    assert second.output_text == "answer 2"

    # started on A, cancelled on B: A stops its upstream request, the log ends cancelled
    run = a.responses.create(model="slow", input="go", background=True, user="shared-cancel")
    time.sleep(0.3)
    assert b.responses.cancel(run.id).status == "cancelled"
    deadline = time.monotonic() + 5
    while "shared-cancel" not in upstream.closed:
        assert time.monotonic() < deadline, "A did not close its upstream request"
        time.sleep(0.01)
    events = list(a.responses.retrieve(run.id, stream=True))
    terminal = [e for e in events if e.type in terminals]
    assert len(terminal) == 1
    assert terminal[0].response.status == "cancelled"
    assert a.responses.retrieve(run.id).status == "cancelled"

    # another key sees none of it, on either server
    for server in pair:
        with pytest.raises(openai.NotFoundError):
            sdk(server, "key-other").responses.retrieve(rid)


def test_a_run_cut_by_a_crash_is_failed_after_the_restart(upstream: Upstream, tmp_path: Path):
    with BackgroundServer(fake_chat_app(upstream)) as fake:
        args = ("--upstream", fake.url + "/v1", "--store", f"sqlite:///{tmp_path}/s.sqlite3")
        first = serve(tmp_path, "first", *args)
        try:
            run = sdk(first).responses.create(model="slow", input="go", background=True)
            time.sleep(0.5)  # some events are logged
            first.proc.kill()  # no shutdown: the run stays in_progress in the file
            first.proc.wait()
        finally:
            first.stop()
        second = serve(tmp_path, "second", *args)
        try:
            client = sdk(second)
            assert client.responses.retrieve(run.id).status == "failed"
            events = list(client.responses.retrieve(run.id, stream=True))
            assert [e.sequence_number for e in events] == list(range(len(events)))
            terminals = ("response.completed", "response.incomplete", "response.failed")
            assert [e.type for e in events if e.type in terminals] == ["response.failed"]
            assert events[-1].type == "response.failed"
        finally:
            second.stop()

"""Two ``rxresponses serve`` processes sharing a real PostgreSQL (store) and Redis (live events):
a background stream started on one is resumed, retrieved and cancelled on the other, and a
``previous_response_id`` chain crosses them (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from rxresponses.server.testing import BackgroundServer
from tests.services import free_port
from tests.test_server_stored import SLOW_WORDS, Upstream, fake_chat_app


class Serve:
    """``python -m rxresponses serve`` in a subprocess on a free port."""

    def __init__(self, *args: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rxresponses", "serve", "--port", str(self.port), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)

    def sdk(self, api_key: str = "key-shared") -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=api_key, max_retries=0, timeout=20)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="module")
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def pair(upstream: Upstream, pg_dsn: str, redis_url: str, tmp_path: Path) -> Iterator[list[Serve]]:
    with BackgroundServer(fake_chat_app(upstream)) as fake:
        args = ("--upstream", fake.url + "/v1", "--store", pg_dsn, "--bus", redis_url)
        servers: list[Serve] = []
        try:
            for name in ("a", "b"):
                servers.append(Serve(*args, "--no-access-log", log=tmp_path / f"{name}.log"))
            yield servers
        finally:
            for server in servers:
                server.stop()


def test_background_stream_resumed_retrieved_and_cancelled_across_two_servers(
    pair: list[Serve], upstream: Upstream
):
    a, b = pair[0].sdk(), pair[1].sdk()

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
            server.sdk("key-other").responses.retrieve(rid)


def test_a_run_cut_by_a_crash_is_failed_after_the_restart(upstream: Upstream, tmp_path: Path):
    with BackgroundServer(fake_chat_app(upstream)) as fake:
        args = ("--upstream", fake.url + "/v1", "--store", f"sqlite:///{tmp_path}/s.sqlite3")
        first = Serve(*args, log=tmp_path / "first.log")
        try:
            run = first.sdk().responses.create(model="slow", input="go", background=True)
            time.sleep(0.5)  # some events are logged
            first.proc.kill()  # no shutdown: the run stays in_progress in the file
            first.proc.wait()
        finally:
            first.stop()
        second = Serve(*args, log=tmp_path / "second.log")
        try:
            client = second.sdk()
            assert client.responses.retrieve(run.id).status == "failed"
            events = list(client.responses.retrieve(run.id, stream=True))
            assert [e.sequence_number for e in events] == list(range(len(events)))
            terminals = ("response.completed", "response.incomplete", "response.failed")
            assert [e.type for e in events if e.type in terminals] == ["response.failed"]
            assert events[-1].type == "response.failed"
        finally:
            second.stop()

"""Hardening: disposing a subscription closes the upstream connection, sync and async.

A loopback server streams chunks forever (every 2 ms, bounded at 10 s per connection) and counts
its open connections. 1,000 times, the client subscribes ``from_httpx[_async](...)`` through
``chat_sse_to_responses()`` and disposes the subscription: before the request is sent, while it is
being sent, or after the first ``output_text.delta``. Afterwards the server must see no open
connection, the asyncio loop must run no task but the test's own, and no thread must be left.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from typing import Any

import httpx
import pytest

from rxresponses import chat_sse_to_responses, from_httpx, from_httpx_async, iterate

from .fuzz.loopback import Conn, LoopbackServer, Request, wait_until

CYCLES = 1000
REQUEST = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


def _frame(content: str) -> bytes:
    chunk = {
        "id": "chatcmpl-cancel",
        "object": "chat.completion.chunk",
        "created": 1_750_000_000,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


async def endless(request: Request, conn: Conn) -> None:
    """Stream a chunk every 2 ms until the client goes away (at most 10 s)."""
    await conn.head()
    conn.watch_peer()
    deadline = time.monotonic() + 10
    while not conn.peer_closed.is_set() and time.monotonic() < deadline:
        await conn.send(_frame("tick "))
        await asyncio.sleep(0.002)


@pytest.fixture
def server() -> Any:
    with LoopbackServer(endless) as srv:
        yield srv
        assert srv.handler_errors == []


def test_async_dispose_closes_the_connection(server: LoopbackServer) -> None:
    url = server.url + "/v1/chat/completions"
    disposed_after_delta = 0

    async def cycles() -> None:
        nonlocal disposed_after_delta
        baseline = asyncio.all_tasks()
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=10)
        async with httpx.AsyncClient(timeout=5, limits=limits) as client:
            for i in range(CYCLES):
                got_delta = asyncio.Event()

                def on_next(event: Any, flag: asyncio.Event = got_delta) -> None:
                    if event.type == "response.output_text.delta":
                        flag.set()

                pipeline = from_httpx_async(client, "POST", url, json=REQUEST).pipe(
                    chat_sse_to_responses()
                )
                subscription = pipeline.subscribe(on_next)
                if i % 3 == 1:  # while the request is being sent
                    for _ in range(i % 7):
                        await asyncio.sleep(0)
                elif i % 3 == 2:  # mid-stream
                    await asyncio.wait_for(got_delta.wait(), 5)
                    disposed_after_delta += 1
                subscription.dispose()
            # Cancelled tasks finish their cleanup (closing the response) within a few turns.
            deadline = time.monotonic() + 5
            while asyncio.all_tasks() - baseline and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert asyncio.all_tasks() - baseline == set()
            deadline = time.monotonic() + 5
            while server.open_connections and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert server.open_connections == 0

    asyncio.run(asyncio.wait_for(cycles(), 60))
    assert disposed_after_delta == CYCLES // 3
    assert server.connections_total >= disposed_after_delta
    assert server.open_connections == 0


def test_sync_dispose_closes_the_connection(server: LoopbackServer) -> None:
    url = server.url + "/v1/chat/completions"
    threads_before = threading.active_count()
    with httpx.Client(timeout=5) as client:
        for _ in range(CYCLES):
            pipeline = from_httpx(client, "POST", url, json=REQUEST).pipe(chat_sse_to_responses())
            events = iterate(pipeline)
            for event in events:  # read up to the first delta, then leave: iterate() disposes
                if event.type == "response.output_text.delta":
                    break
            events.close()  # what leaving a for loop over it does, now rather than at GC
        # The worker of each iterate() notices the dispose at its next chunk (2 ms) and closes
        # the response; the connection goes back to no one.
        assert wait_until(lambda: server.open_connections == 0, 5), server.open_connections
    assert server.connections_total >= 1
    assert wait_until(lambda: threading.active_count() <= threads_before, 5), [
        t.name for t in threading.enumerate()
    ]


def test_sync_dispose_of_a_subscription_on_another_thread(server: LoopbackServer) -> None:
    # Plain subscribe/dispose (no iterate()): subscribe on a worker thread, dispose from here.
    from reactivex.scheduler import NewThreadScheduler

    url = server.url + "/v1/chat/completions"
    threads_before = threading.active_count()
    counter = itertools.count()
    with httpx.Client(timeout=5) as client:
        for _ in range(100):
            first = threading.Event()
            pipeline = from_httpx(client, "POST", url, json=REQUEST).pipe(chat_sse_to_responses())
            subscription = pipeline.subscribe(
                lambda e, first=first: first.set(), scheduler=NewThreadScheduler()
            )
            assert first.wait(5)
            subscription.dispose()
            next(counter)
        assert wait_until(lambda: server.open_connections == 0, 5), server.open_connections
    assert wait_until(lambda: threading.active_count() <= threads_before, 5)
    assert next(counter) == 100


def test_sync_dispose_while_the_upstream_is_silent_takes_up_to_the_read_timeout() -> None:
    # A documented limit of the sync source: its worker thread is blocked in a socket read, so a
    # dispose lands at the next chunk or when the read timeout fires, whichever comes first (the
    # async source closes at once). Keep the read timeout short if that matters.
    async def one_then_silence(request: Request, conn: Conn) -> None:
        await conn.head()
        await conn.send(_frame("a"))
        await conn.stall(10)

    with LoopbackServer(one_then_silence) as srv, httpx.Client(timeout=0.5) as client:
        url = srv.url + "/v1/chat/completions"
        events = iterate(
            from_httpx(client, "POST", url, json=REQUEST).pipe(chat_sse_to_responses())
        )
        for event in events:
            if event.type == "response.output_text.delta":
                break
        began = time.monotonic()
        events.close()
        assert wait_until(lambda: srv.open_connections == 0, 5)
        assert time.monotonic() - began < 0.5 + 2.0

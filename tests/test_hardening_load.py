"""Hardening: the proxy serves concurrent streams with nothing lost or reordered (a small load).

The dedicated run is ``python tests/fuzz/load.py`` (200 streams x 500 chunks, three processes).
Here the same client and fake upstream run in-process (threads) with 20 streams x 100 chunks: every
chunk arrives, in order, the final text equals the upstream's, the grammar holds. Latency is
printed (``-s``) but only loosely bounded: on a shared 2-core machine it measures the machine.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from .fuzz.load import fake_upstream, run_load
from .fuzz.loopback import LoopbackServer, wait_until

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from rxresponses.server import ServerConfig, create_app
from rxresponses.server.testing import BackgroundServer

STREAMS = 20
CHUNKS = 100


@pytest.fixture
def upstream() -> Any:
    sent: dict[str, tuple[str, int]] = {}
    lock = threading.Lock()

    def record(stream_id: str, digest: str, n: int) -> None:
        with lock:
            sent[stream_id] = (digest, n)

    with LoopbackServer(fake_upstream(record)) as server:
        server.sent = sent  # type: ignore[attr-defined]
        yield server
    assert server.handler_errors == []


def test_concurrent_streams_through_the_proxy(upstream: LoopbackServer) -> None:
    sent: dict[str, tuple[str, int]] = upstream.sent  # type: ignore[attr-defined]
    config = ServerConfig(upstream=upstream.url + "/v1", upstream_timeout=30)
    threads_before = threading.active_count()
    with BackgroundServer(create_app(config)) as proxy:
        result = asyncio.run(
            run_load(
                proxy.url + "/v1/responses",
                streams=STREAMS,
                chunks=CHUNKS,
                expected=lambda: dict(sent),
                timeout=60,
            )
        )
    print(f"\nthrough the proxy, in-process: {result.summary()}")
    assert result.problems == []
    assert len(sent) == STREAMS
    assert sum(len(r.ks) for r in result.results) == STREAMS * CHUNKS
    assert result.percentile(99) < 10_000  # ms: a hang, not a measurement
    # The proxy closed its pooled upstream connections when it stopped.
    assert wait_until(lambda: upstream.open_connections == 0, 5), upstream.open_connections
    assert wait_until(lambda: threading.active_count() <= threads_before, 5)

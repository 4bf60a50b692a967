"""Sources (rxresponses.sources): bytes, files, and httpx responses, sync and async."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import reactivex
from reactivex import operators as ops
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxresponses.bridges import aiterate, iterate
from rxresponses.errors import UpstreamError, UpstreamStatusError
from rxresponses.operators import decode_sse
from rxresponses.sources import from_bytes, from_file, from_httpx, from_httpx_async
from rxresponses.sse import SSEMessage


def collect(source: reactivex.Observable[Any]) -> tuple[list[Any], list[Exception], bool]:
    values: list[Any] = []
    errors: list[Exception] = []
    done: list[bool] = []
    source.subscribe(values.append, errors.append, lambda: done.append(True))
    return values, errors, bool(done)


async def acollect(source: reactivex.Observable[Any]) -> tuple[list[Any], Exception | None]:
    values: list[Any] = []
    try:
        async for v in aiterate(source):
            values.append(v)
    except Exception as exc:
        return values, exc
    return values, None


BODY = [b'data: {"a"', b": 1}\n\ndata: ", '{"b": "✓"}\n\n'.encode(), b"data: [DONE]\n\n"]
#: What decode_sse() makes of BODY: its messages, the closing [DONE] last.
MESSAGES = [SSEMessage('{"a": 1}'), SSEMessage('{"b": "✓"}'), SSEMessage("[DONE]")]


# -- from_bytes --


def test_from_bytes_list() -> None:
    assert collect(from_bytes([b"a", b"b", b"c"])) == ([b"a", b"b", b"c"], [], True)


def test_from_bytes_list_is_re_iterable_per_subscription() -> None:
    source = from_bytes(BODY).pipe(decode_sse())
    assert collect(source) == collect(source) == (MESSAGES, [], True)


def test_from_bytes_generator_error_goes_to_on_error() -> None:
    boom = OSError("disk")

    def gen() -> Iterator[bytes]:
        yield b"data: a\n\n"
        raise boom

    values, errors, done = collect(from_bytes(gen()).pipe(decode_sse()))
    assert values == [SSEMessage("a")]
    assert errors == [boom]
    assert not done


def test_from_bytes_generator_closed_when_disposed_early() -> None:
    closed: list[bool] = []

    def gen() -> Iterator[bytes]:
        try:
            for i in range(1000):
                yield f"data: {i}\n\n".encode()
        finally:
            closed.append(True)

    values, _, done = collect(from_bytes(gen()).pipe(decode_sse(), ops.take(2)))
    assert [m.data for m in values] == ["0", "1"]
    assert done
    assert closed == [True]


@pytest.mark.anyio
async def test_from_bytes_async_generator() -> None:
    async def agen() -> AsyncIterator[bytes]:
        for chunk in BODY:
            await asyncio.sleep(0)
            yield chunk

    values, error = await acollect(from_bytes(agen()).pipe(decode_sse()))
    assert (values, error) == (MESSAGES, None)


@pytest.mark.anyio
async def test_from_bytes_async_generator_error() -> None:
    async def agen() -> AsyncIterator[bytes]:
        yield b"data: a\n\n"
        raise ConnectionResetError("gone")

    values, error = await acollect(from_bytes(agen()).pipe(decode_sse()))
    assert values == [SSEMessage("a")]
    assert isinstance(error, ConnectionResetError)


def test_from_bytes_async_without_a_loop_errors() -> None:
    async def agen() -> AsyncIterator[bytes]:
        yield b""

    values, errors, _ = collect(from_bytes(agen()))
    assert values == []
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)
    assert "running asyncio loop" in str(errors[0])


# -- from_file --


def test_from_file_sse(tmp_path: Path) -> None:
    p = tmp_path / "chat.sse"
    p.write_bytes(b"".join(BODY))
    assert collect(from_file(p)) == (MESSAGES, [], True)
    assert collect(from_file(str(p))) == (MESSAGES, [], True)


def test_from_file_sse_large_body_across_read_blocks(tmp_path: Path) -> None:
    # more than one 64 KiB read; frames straddle the block boundary
    frames = [f"data: {i:06d} {'é' * 50}\n\n".encode() for i in range(2000)]
    p = tmp_path / "big.sse"
    p.write_bytes(b"".join(frames))
    values, errors, done = collect(from_file(p))
    assert (errors, done) == ([], True)
    assert len(values) == 2000
    assert values[1234].data == f"001234 {'é' * 50}"


def test_from_file_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "events.jsonl"
    p.write_text('{"a": 1}\n\n  {"b": "✓"}  \r\n[DONE]\n', encoding="utf-8")
    values, errors, done = collect(from_file(p))
    assert values == [SSEMessage('{"a": 1}'), SSEMessage('{"b": "✓"}'), SSEMessage("[DONE]")]
    assert (errors, done) == ([], True)


def test_from_file_jsonl_keeps_unicode_line_separators(tmp_path: Path) -> None:
    # one JSON object per line: U+2028 inside it is not a line break
    p = tmp_path / "events.jsonl"
    p.write_text('{"t": "a\u2028b\u0085c"}\n', encoding="utf-8")
    assert collect(from_file(p))[0] == [SSEMessage('{"t": "a\u2028b\u0085c"}')]


def test_from_file_format_auto_sniffs_unknown_extension(tmp_path: Path) -> None:
    jsonl = tmp_path / "capture.log"
    jsonl.write_bytes(b'\xef\xbb\xbf{"a": 1}\n')
    sse = tmp_path / "capture.dat"
    sse.write_bytes(b"data: x\n\n")
    assert collect(from_file(jsonl))[0] == [SSEMessage('{"a": 1}')]  # BOM sniffed and dropped
    assert collect(from_file(sse))[0] == [SSEMessage("x")]
    # an explicit format wins over the extension
    forced = tmp_path / "really-sse.jsonl"
    forced.write_bytes(b"data: y\n\n")
    assert collect(from_file(forced, format="sse"))[0] == [SSEMessage("y")]


@pytest.mark.parametrize("name", ["missing.sse", "missing.jsonl", "missing.unknown"])
def test_from_file_missing_is_on_error(tmp_path: Path, name: str) -> None:
    source = from_file(tmp_path / name)  # building the observable does not touch the file
    values, errors, done = collect(source)
    assert values == []
    assert len(errors) == 1
    assert isinstance(errors[0], FileNotFoundError)
    assert not done


def test_from_file_is_cold(tmp_path: Path) -> None:
    p = tmp_path / "late.sse"
    source = from_file(p)
    p.write_bytes(b"data: late\n\n")  # created after the observable
    assert collect(source)[0] == [SSEMessage("late")]


def test_from_file_line_limit(tmp_path: Path) -> None:
    p = tmp_path / "long.sse"
    p.write_bytes(b"data: " + b"x" * 1000 + b"\n\n")
    values, errors, _ = collect(from_file(p, max_line_bytes=100))
    assert values == []
    assert type(errors[0]).__name__ == "SSELineTooLongError"


# -- httpx: helpers --


class TrackedStream(httpx.SyncByteStream):
    """A sync response body that records how far it was read and whether it was closed."""

    def __init__(self, chunks: list[bytes], *, fail_after: int | None = None) -> None:
        self.chunks = chunks
        self.fail_after = fail_after
        self.sent = 0
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if self.fail_after is not None and self.sent >= self.fail_after:
                raise httpx.ReadError("connection reset")
            self.sent += 1
            yield chunk

    def close(self) -> None:
        self.closed.set()


class TrackedAsyncStream(httpx.AsyncByteStream):
    def __init__(
        self, chunks: list[bytes], *, fail_after: int | None = None, delay: float = 0.0
    ) -> None:
        self.chunks = chunks
        self.fail_after = fail_after
        self.delay = delay
        self.sent = 0
        self.closed = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            if self.fail_after is not None and self.sent >= self.fail_after:
                raise httpx.ReadError("connection reset")
            await asyncio.sleep(self.delay)
            self.sent += 1
            yield chunk

    async def aclose(self) -> None:
        self.closed.set()


def sync_client(
    status: int, stream: httpx.SyncByteStream, seen: list[httpx.Request]
) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, stream=stream, headers={"content-type": "text/event-stream"})

    return httpx.Client(transport=httpx.MockTransport(handler))


def async_client(
    status: int, stream: httpx.AsyncByteStream, seen: list[httpx.Request]
) -> httpx.AsyncClient:
    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, stream=stream, headers={"content-type": "text/event-stream"})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


# -- from_httpx (sync) --


def test_from_httpx_streams_body_and_closes_on_completion() -> None:
    stream = TrackedStream(BODY)
    seen: list[httpx.Request] = []
    with sync_client(200, stream, seen) as client:
        source = from_httpx(
            client, "POST", "https://upstream.test/v1/chat/completions", json={"x": 1}
        )
        assert seen == []  # cold: nothing sent before subscribing
        values, errors, done = collect(source.pipe(decode_sse()))
    assert (values, errors, done) == (MESSAGES, [], True)
    assert len(seen) == 1
    assert seen[0].method == "POST"
    assert seen[0].url == "https://upstream.test/v1/chat/completions"
    assert json.loads(seen[0].content) == {"x": 1}
    assert stream.closed.is_set()


def test_from_httpx_with_a_request_object() -> None:
    stream = TrackedStream(BODY)
    seen: list[httpx.Request] = []
    with sync_client(200, stream, seen) as client:
        request = client.build_request("GET", "https://upstream.test/stream")
        values, _, done = collect(from_httpx(client, request))
        with pytest.raises(TypeError):
            from_httpx(client, request, "https://other.test")
        with pytest.raises(TypeError):
            from_httpx(client, "GET")
    assert b"".join(values) == b"".join(BODY)
    assert done
    assert seen[0].url == "https://upstream.test/stream"


def test_from_httpx_each_subscription_sends_a_request() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"data: a\n\n")

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        source = from_httpx(client, "GET", "https://upstream.test/")
        collect(source)
        collect(source)
    assert len(seen) == 2


@pytest.mark.parametrize("status", [400, 429, 500, 503])
def test_from_httpx_non_2xx(status: int) -> None:
    body = b'{"error": {"message": "nope", "code": "x"}}'
    stream = TrackedStream([body])
    with sync_client(status, stream, []) as client:
        values, errors, done = collect(from_httpx(client, "POST", "https://upstream.test/"))
    assert values == []
    assert not done
    (error,) = errors
    assert isinstance(error, UpstreamStatusError)
    assert error.status_code == status
    assert error.body == body.decode()
    assert error.code == ("rate_limit_exceeded" if status == 429 else "server_error")
    assert stream.closed.is_set()


def test_from_httpx_read_error_closes_and_reports_upstream_error() -> None:
    stream = TrackedStream(BODY, fail_after=1)
    with sync_client(200, stream, []) as client:
        values, errors, done = collect(from_httpx(client, "GET", "https://upstream.test/"))
    assert values == [BODY[0]]
    assert not done
    assert isinstance(errors[0], UpstreamError)
    assert not isinstance(errors[0], UpstreamStatusError)
    assert stream.closed.is_set()


def test_from_httpx_connect_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        _, errors, _ = collect(from_httpx(client, "GET", "https://upstream.test/"))
    assert isinstance(errors[0], UpstreamError)
    assert "refused" in str(errors[0])


def test_from_httpx_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        _, errors, _ = collect(from_httpx(client, "GET", "https://upstream.test/"))
    assert isinstance(errors[0], UpstreamError)
    assert "timed out" in str(errors[0])


def test_from_httpx_dispose_closes_the_response() -> None:
    chunks = [f"data: {i}\n\n".encode() for i in range(10_000)]
    stream = TrackedStream(chunks)
    with sync_client(200, stream, []) as client:
        values, _, done = collect(
            from_httpx(client, "GET", "https://upstream.test/").pipe(decode_sse(), ops.take(3))
        )
    assert [m.data for m in values] == ["0", "1", "2"]
    assert done
    assert stream.closed.is_set()
    assert stream.sent < 10  # reading stopped right after the disposal


def test_from_httpx_done_stops_reading_and_closes() -> None:
    # [DONE] completes decode_sse, which disposes the source: the rest is never read
    chunks = [b"data: a\n\n", b"data: [DONE]\n\n"] + [b": keep-alive\n\n"] * 10_000
    stream = TrackedStream(chunks)
    with sync_client(200, stream, []) as client:
        values, _, done = collect(
            from_httpx(client, "GET", "https://upstream.test/").pipe(decode_sse())
        )
    assert values == [SSEMessage("a"), SSEMessage("[DONE]")]
    assert done
    assert stream.closed.is_set()
    assert stream.sent < 10


def test_iterate_break_closes_a_sync_http_source() -> None:
    # Leaving iterate() early must stop the read loop and close the response, not drain it.
    endless = TrackedStream([b"data: x\n\n"] * 1_000_000)
    with sync_client(200, endless, []) as client:
        for _ in iterate(from_httpx(client, "GET", "https://upstream.test/").pipe(decode_sse())):
            break
        assert endless.closed.wait(5)
    assert endless.sent < 1_000_000


# -- from_httpx_async --


@pytest.mark.anyio
async def test_from_httpx_async_streams_body_and_closes() -> None:
    stream = TrackedAsyncStream(BODY)
    seen: list[httpx.Request] = []
    async with async_client(200, stream, seen) as client:
        source = from_httpx_async(client, "POST", "https://upstream.test/v1", json={"a": 1})
        assert seen == []
        values, error = await acollect(source.pipe(decode_sse()))
    assert (values, error) == (MESSAGES, None)
    assert len(seen) == 1
    assert seen[0].method == "POST"
    assert stream.closed.is_set()


@pytest.mark.anyio
@pytest.mark.parametrize("status", [401, 429, 502])
async def test_from_httpx_async_non_2xx(status: int) -> None:
    stream = TrackedAsyncStream([b"<html>bad gateway</html>"])
    async with async_client(status, stream, []) as client:
        values, error = await acollect(from_httpx_async(client, "GET", "https://upstream.test/"))
    assert values == []
    assert isinstance(error, UpstreamStatusError)
    assert error.status_code == status
    assert error.body == "<html>bad gateway</html>"
    assert stream.closed.is_set()


@pytest.mark.anyio
async def test_from_httpx_async_read_error() -> None:
    stream = TrackedAsyncStream(BODY, fail_after=2)
    async with async_client(200, stream, []) as client:
        values, error = await acollect(from_httpx_async(client, "GET", "https://upstream.test/"))
    assert values == BODY[:2]
    assert isinstance(error, UpstreamError)
    assert stream.closed.is_set()


@pytest.mark.anyio
async def test_from_httpx_async_connect_error() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        values, error = await acollect(from_httpx_async(client, "GET", "https://upstream.test/"))
    assert values == []
    assert isinstance(error, UpstreamError)


@pytest.mark.anyio
async def test_from_httpx_async_dispose_cancels_and_closes() -> None:
    stream = TrackedAsyncStream([b"data: x\n\n"] * 10_000, delay=0.001)
    async with async_client(200, stream, []) as client:
        received: list[Any] = []
        first = asyncio.Event()

        def on_next(value: Any) -> None:
            received.append(value)
            first.set()

        subscription = from_httpx_async(client, "GET", "https://upstream.test/").subscribe(on_next)
        await asyncio.wait_for(first.wait(), 5)
        subscription.dispose()
        await asyncio.wait_for(stream.closed.wait(), 5)
        sent = stream.sent
        await asyncio.sleep(0.02)
    assert stream.sent == sent  # nothing read after the cancellation
    assert sent < 10_000


@pytest.mark.anyio
async def test_aiterate_break_closes_async_http_source() -> None:
    stream = TrackedAsyncStream([b"data: x\n\n"] * 10_000)
    async with async_client(200, stream, []) as client:
        async for message in aiterate(
            from_httpx_async(client, "GET", "https://upstream.test/").pipe(decode_sse())
        ):
            assert message == SSEMessage("x")
            break
        await asyncio.wait_for(stream.closed.wait(), 5)
    assert stream.sent < 10_000


@pytest.mark.anyio
async def test_async_source_subscribed_and_disposed_off_the_loop_never_runs() -> None:
    # Another thread subscribes (with the loop's scheduler) and disposes while the loop is held:
    # the task is handed to the loop and cancelled there before it reads anything.
    loop = asyncio.get_running_loop()
    started: list[bool] = []

    async def body() -> AsyncIterator[bytes]:
        started.append(True)
        yield b"data: x\n\n"

    def subscribe_and_dispose() -> None:
        source = from_bytes(body())
        source.subscribe(lambda _: None, scheduler=AsyncIOScheduler(loop)).dispose()

    worker = threading.Thread(target=subscribe_and_dispose)
    worker.start()
    worker.join(5)  # blocks the loop on purpose: nothing of the source can run meanwhile
    await asyncio.sleep(0.05)
    assert started == []


@pytest.mark.anyio
async def test_async_source_disposed_off_the_loop_closes_its_iterator() -> None:
    loop = asyncio.get_running_loop()
    received = threading.Event()
    closed = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                await asyncio.sleep(0.005)
                yield b"data: x\n\n"
        finally:
            closed.set()

    def subscribe_then_dispose() -> None:
        source = from_bytes(body())
        subscription = source.subscribe(lambda _: received.set(), scheduler=AsyncIOScheduler(loop))
        assert received.wait(5)
        subscription.dispose()

    await asyncio.to_thread(subscribe_then_dispose)
    await asyncio.wait_for(closed.wait(), 5)


@pytest.mark.anyio
async def test_from_httpx_async_done_closes() -> None:
    stream = TrackedAsyncStream([b"data: a\n\ndata: [DONE]\n\n"] + [b": ping\n\n"] * 10_000)
    async with async_client(200, stream, []) as client:
        values, error = await acollect(
            from_httpx_async(client, "GET", "https://upstream.test/").pipe(decode_sse())
        )
        await asyncio.wait_for(stream.closed.wait(), 5)
    assert (values, error) == ([SSEMessage("a"), SSEMessage("[DONE]")], None)
    assert stream.sent < 10_000


# -- end to end: an HTTP failure becomes a well-formed failed stream ------------------------------


@pytest.mark.parametrize(("status", "code"), [(429, "rate_limit_exceeded"), (500, "server_error")])
def test_http_error_becomes_error_and_failed_events(status: int, code: str) -> None:
    from rxresponses.pipelines import chat_sse_to_responses
    from rxresponses.types._base import to_dict
    from tests.grammar import check_stream

    stream = TrackedStream([b'{"error": {"message": "slow down"}}'])
    with sync_client(status, stream, []) as client:
        source = from_httpx(client, "POST", "https://upstream.test/v1/chat/completions")
        events = [to_dict(e) for e in iterate(source.pipe(chat_sse_to_responses()))]
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]
    assert events[2]["code"] == code
    assert "slow down" in events[2]["message"]
    assert events[3]["response"]["error"]["code"] == code
    check_stream(events)
    assert stream.closed.is_set()


@pytest.mark.anyio
async def test_async_stream_cut_mid_body_becomes_failed_keeping_text() -> None:
    from rxresponses.bridges import aget_final_response
    from rxresponses.pipelines import chat_sse_to_responses

    first = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}\n\n'
    )
    stream = TrackedAsyncStream([first, b"never sent"], fail_after=1)
    async with async_client(200, stream, []) as client:
        source = from_httpx_async(client, "POST", "https://upstream.test/")
        final = await aget_final_response(source.pipe(chat_sse_to_responses()))
    assert final.status == "failed"
    assert final.error is not None
    assert final.output[0].content[0].text == "Hel"  # type: ignore[union-attr]
    assert final.output[0].status == "incomplete"  # type: ignore[union-attr]

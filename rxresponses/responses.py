"""A Responses client over any Chat Completions server: request in, typed events out.

The request side of the library, shaped like the openai SDK's ``client.responses``::

    import httpx, rxresponses

    with httpx.Client(base_url="http://localhost:11434/v1") as http:
        with rxresponses.responses.stream(http, model="qwen3", input="Hi!") as stream:
            for text in stream.text_deltas:
                print(text, end="", flush=True)
            response = stream.get_final_response()

:func:`stream` (sync ``httpx.Client``) and :func:`astream` (``httpx.AsyncClient``, ``async with``
/ ``async for``) wrap one request; :func:`create` returns the same events as a cold
``Observable[ResponseStreamEvent]`` to compose with operators. All three translate the request
with :func:`rxresponses.translate.translate_request` (the code ``rxresponses serve`` runs), send
it to ``{base_url}/chat/completions`` with ``stream: true`` and ``stream_options.include_usage``,
and convert the answer with :func:`rxresponses.translate.translation_pipeline` (the server's
pipeline: calls of namespaced and custom tools come back in the shape the request offered).

Failures of the upstream end the stream with ``response.failed`` as everywhere in the library;
``get_final_response(raise_on_failure=True)`` raises :class:`ResponseFailedError` instead, with
the HTTP status of the upstream as a field. ``max_retries`` retries an answer that failed before
its first byte (429, 408, 409, 5xx, or no connection), waiting what ``Retry-After`` says (at most
60 s; else 0.5 s doubling up to 8 s); a stream that has started is never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Literal, Required, TypedDict, Unpack

import httpx
from reactivex import Observable

from .bridges import aiterate, iterate
from .errors import RxResponsesError, UpstreamStatusError
from .operators._final import ResponseAccumulator
from .sources import (
    MAX_ERROR_BODY_BYTES,
    _answer_error,
    _from_async,
    _from_sync,
    _is_json,
    _transport_error,
)
from .translate import Translation, translate_request, translation_pipeline
from .types.events import ResponseStreamEvent
from .types.response import Response

__all__ = [
    "AsyncResponseStream",
    "ResponseFailedError",
    "ResponseRequest",
    "ResponseStream",
    "astream",
    "create",
    "stream",
    "translate",
]

#: Statuses retried before the first byte, besides every 5xx (as the openai SDK does).
RETRY_STATUSES: Final = frozenset({408, 409, 429})
#: Longest wait between two attempts, whatever ``Retry-After`` says (seconds).
MAX_RETRY_DELAY: Final = 60.0


class ResponseRequest(TypedDict, total=False):
    """The fields of a Responses request (``POST /v1/responses``) the client sends.

    ``model`` is required; the others are optional and mean what the Responses API says (the
    README table "rxresponses serve: request translation" tells how each becomes Chat).
    ``extra_body`` is merged into the Responses request before translation (fields not listed
    here).
    """

    model: Required[str]
    input: str | Sequence[Mapping[str, Any]]
    instructions: str
    tools: Sequence[Mapping[str, Any]]
    tool_choice: str | Mapping[str, Any]
    parallel_tool_calls: bool
    reasoning: Mapping[str, Any]
    max_output_tokens: int
    temperature: float
    top_p: float
    text: Mapping[str, Any]
    metadata: Mapping[str, str]
    user: str
    include: Sequence[str]
    extra_body: Mapping[str, Any]


def translate(
    *,
    system_role: Literal["system", "developer"] = "system",
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
    **request: Unpack[ResponseRequest],
) -> Translation:
    """The Chat Completions request for a Responses request (``.chat`` is the body to send).

    Raises:
        rxresponses.translate.RequestError: The request is malformed or asks for something a
            Chat server cannot do (``previous_response_id``...).
    """
    body: dict[str, Any] = {k: v for k, v in request.items() if k != "extra_body"}
    body.update(request.get("extra_body") or {})
    for name in ("input", "tools", "include"):
        if isinstance(body.get(name), Sequence) and not isinstance(body[name], str):
            body[name] = list(body[name])
    return translate_request(body, system_role=system_role, max_tokens_field=max_tokens_field)


class ResponseFailedError(RxResponsesError):
    """A response ended with status ``failed`` (raised when asked: ``raise_on_failure=True``).

    Attributes:
        response: The partial :class:`Response` (its output so far, ``status="failed"``).
        code: The ``error.code`` of the response (``rate_limit_exceeded``, ``server_error``...).
        message: The ``error.message`` of the response.
        status_code: The HTTP status the upstream answered when that is why it failed (429,
            503...), else ``None`` (a stream cut short, an ``error`` inside a 200 stream).
        status: The response's status (``"failed"``).
    """

    def __init__(self, response: Response, status_code: int | None = None) -> None:
        error = response.error
        self.response = response
        self.code = (error.code if error is not None else None) or "server_error"
        self.message = (error.message if error is not None else None) or "response failed"
        self.status_code = status_code
        self.status = response.status or "failed"
        shown = f"HTTP {status_code}: " if status_code is not None else ""
        super().__init__(f"response {response.id} failed ({self.code}): {shown}{self.message}")


class _Upstream:
    """What the client knows about its one request: the error that ended it, if any."""

    __slots__ = ("error", "response")

    def __init__(self) -> None:
        self.error: Exception | None = None
        #: The sync HTTP response being read: :meth:`ResponseStream.close` shuts its socket down
        #: from the consumer's thread (the reader may be blocked waiting for the next bytes).
        self.response: httpx.Response | None = None

    def status_code(self) -> int | None:
        return self.error.status_code if isinstance(self.error, UpstreamStatusError) else None


def _retry_delay(response: httpx.Response | None, attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: what the answer asks for
    (``retry-after-ms``, else ``Retry-After`` in seconds or as an HTTP date; at most
    :data:`MAX_RETRY_DELAY`), else 0.5 s doubling up to 8 s. A value that does not parse (or is
    not finite) counts as absent."""
    asked: float | None = None
    if response is not None:
        asked = _seconds(response.headers.get("retry-after-ms"), scale=1000)
        if asked is None:
            after = response.headers.get("retry-after")
            asked = _seconds(after)
            if asked is None and after:
                try:
                    when = email.utils.parsedate_to_datetime(after)
                except (TypeError, ValueError, IndexError):
                    when = None
                if when is not None:
                    asked = when.timestamp() - time.time()
    if asked is None:
        return float(min(0.5 * 2**attempt, 8.0))
    return min(max(asked, 0.0), MAX_RETRY_DELAY)


def _seconds(value: str | None, *, scale: float = 1.0) -> float | None:
    try:
        seconds = float(value) / scale if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) else None


def _retryable(response: httpx.Response) -> bool:
    return response.status_code in RETRY_STATUSES or response.status_code >= 500


def _chat_url(client: httpx.Client | httpx.AsyncClient, base_url: str | None) -> str:
    if base_url is not None:
        return base_url.rstrip("/") + "/chat/completions"
    if not str(client.base_url):
        raise TypeError("give the client a base_url (httpx.Client(base_url=...)) or pass base_url")
    return "chat/completions"


def _sync_bytes(
    client: httpx.Client,
    url: str,
    chat: Mapping[str, Any],
    headers: Mapping[str, str] | None,
    max_retries: int,
    upstream: _Upstream,
) -> Observable[bytes]:
    def open_stream() -> Iterator[bytes]:
        attempt = 0
        while True:
            request = client.build_request("POST", url, json=chat, headers=headers)
            try:
                response = client.send(request, stream=True)
                upstream.response = response
            except httpx.HTTPError as exc:
                if attempt < max_retries:
                    time.sleep(_retry_delay(None, attempt))
                    attempt += 1
                    continue
                upstream.error = _transport_error(exc)
                raise upstream.error from exc
            try:
                if not response.is_success or _is_json(response):
                    if not response.is_success and _retryable(response) and attempt < max_retries:
                        delay = _retry_delay(response, attempt)
                        response.close()
                        time.sleep(delay)
                        attempt += 1
                        continue
                    body = b""
                    for block in response.iter_bytes():
                        body += block
                        if len(body) >= MAX_ERROR_BODY_BYTES:
                            break
                    upstream.error = _answer_error(response, body)
                    raise upstream.error
                try:
                    yield from response.iter_bytes()
                except httpx.HTTPError as exc:
                    upstream.error = _transport_error(exc)
                    raise upstream.error from exc
                return
            finally:
                response.close()

    return _from_sync(open_stream)


def _async_bytes(
    client: httpx.AsyncClient,
    url: str,
    chat: Mapping[str, Any],
    headers: Mapping[str, str] | None,
    max_retries: int,
    upstream: _Upstream,
) -> Observable[bytes]:
    async def open_stream() -> AsyncIterator[bytes]:
        attempt = 0
        while True:
            request = client.build_request("POST", url, json=chat, headers=headers)
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                if attempt < max_retries:
                    await asyncio.sleep(_retry_delay(None, attempt))
                    attempt += 1
                    continue
                upstream.error = _transport_error(exc)
                raise upstream.error from exc
            try:
                if not response.is_success or _is_json(response):
                    if not response.is_success and _retryable(response) and attempt < max_retries:
                        delay = _retry_delay(response, attempt)
                        await response.aclose()
                        await asyncio.sleep(delay)
                        attempt += 1
                        continue
                    body = b""
                    async for block in response.aiter_bytes():
                        body += block
                        if len(body) >= MAX_ERROR_BODY_BYTES:
                            break
                    upstream.error = _answer_error(response, body)
                    raise upstream.error
                try:
                    async for chunk in response.aiter_bytes():
                        yield chunk
                except httpx.HTTPError as exc:
                    upstream.error = _transport_error(exc)
                    raise upstream.error from exc
                return
            finally:
                await response.aclose()

    return _from_async(open_stream)


def _events(
    client: httpx.Client | httpx.AsyncClient,
    upstream: _Upstream,
    *,
    base_url: str | None,
    headers: Mapping[str, str] | None,
    max_retries: int,
    system_role: Literal["system", "developer"],
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"],
    request: ResponseRequest,
) -> Observable[ResponseStreamEvent]:
    if max_retries < 0:
        raise ValueError("max_retries must be >= 0")
    translation = translate(system_role=system_role, max_tokens_field=max_tokens_field, **request)
    url = _chat_url(client, base_url)
    if isinstance(client, httpx.AsyncClient):
        source = _async_bytes(client, url, translation.chat, headers, max_retries, upstream)
    elif isinstance(client, httpx.Client):
        source = _sync_bytes(client, url, translation.chat, headers, max_retries, upstream)
    else:
        raise TypeError(f"expected an httpx.Client or httpx.AsyncClient, not {type(client)!r}")
    return source.pipe(
        translation_pipeline(
            translation, response_id=f"resp_{uuid.uuid4().hex}", created_at=int(time.time())
        )
    )


def create(
    client: httpx.Client | httpx.AsyncClient,
    *,
    base_url: str | None = None,
    headers: Mapping[str, str] | None = None,
    max_retries: int = 0,
    system_role: Literal["system", "developer"] = "system",
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
    **request: Unpack[ResponseRequest],
) -> Observable[ResponseStreamEvent]:
    """A Responses request as a cold Observable of typed events, over a Chat Completions server.

    The request is translated now (a bad request raises here) and sent at each subscription
    (with an ``httpx.AsyncClient``, subscribe on a running loop: ``aiterate(...)``).

    Args:
        client: The ``httpx.Client`` or ``httpx.AsyncClient`` (its base URL, auth headers and
            timeouts are used).
        base_url: The Chat server's base URL (``.../v1``); defaults to the client's.
        headers: Extra headers for the request (``Authorization``...).
        max_retries: Attempts after the first when the answer fails before its first byte
            (statuses 408, 409, 429, 5xx, or no connection), waiting ``Retry-After``.
        system_role: Chat role for ``instructions``.
        max_tokens_field: Chat field for ``max_output_tokens``.
        **request: The Responses request (:class:`ResponseRequest`): ``model``, ``input``...

    Raises:
        rxresponses.translate.RequestError: The request cannot be translated.
    """
    return _events(
        client,
        _Upstream(),
        base_url=base_url,
        headers=headers,
        max_retries=max_retries,
        system_role=system_role,
        max_tokens_field=max_tokens_field,
        request=request,
    )


def _final(acc: ResponseAccumulator, seen: bool) -> Response:
    if not seen:
        raise RuntimeError("the stream was closed before any event: there is no response")
    return acc.result()


def _check(response: Response, upstream: _Upstream, raise_on_failure: bool) -> Response:
    if raise_on_failure and response.status == "failed":
        raise ResponseFailedError(response, upstream.status_code()) from upstream.error
    return response


class ResponseStream:
    """One Responses request in flight (sync), like the SDK's ``client.responses.stream()``.

    Iterate it for the typed events, or read :attr:`text_deltas`; :meth:`get_final_response`
    and :meth:`until_done` read what is left of the same pass (events already iterated are not
    requested again). Leaving the ``with`` block (or :meth:`close`) closes the upstream.
    """

    def __init__(self, events: Observable[ResponseStreamEvent], upstream: _Upstream) -> None:
        self._events = events
        self._upstream = upstream
        self._iterator: Iterator[ResponseStreamEvent] | None = None
        self._acc = ResponseAccumulator()
        self._seen = False

    def __enter__(self) -> ResponseStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[ResponseStreamEvent]:
        return self

    def __next__(self) -> ResponseStreamEvent:
        if self._iterator is None:
            self._iterator = iterate(self._events)
        event = next(self._iterator)
        self._acc.handle(event)
        self._seen = True
        return event

    @property
    def text_deltas(self) -> Iterator[str]:
        """The ``response.output_text.delta`` texts of the rest of the stream."""
        for event in self:
            if event.type == "response.output_text.delta":
                yield event.delta

    def until_done(self) -> ResponseStream:
        """Read the stream to its end."""
        for _ in self:
            pass
        return self

    def get_final_response(self, *, raise_on_failure: bool = False) -> Response:
        """Read the stream to its end and return the final :class:`Response`.

        Args:
            raise_on_failure: Raise :class:`ResponseFailedError` when the response failed
                (default: return it with ``status="failed"`` and its ``error``).
        """
        self.until_done()
        return _check(_final(self._acc, self._seen), self._upstream, raise_on_failure)

    def close(self) -> None:
        """Stop reading and close the upstream response (nothing happens if it has ended)."""
        if self._iterator is not None and hasattr(self._iterator, "close"):
            self._iterator.close()
        self._iterator = iter(())
        response = self._upstream.response
        if response is not None and not response.is_closed:
            _wake_reader(response)


def _wake_reader(response: httpx.Response) -> None:
    """Shut the socket of ``response`` down, so a worker thread blocked reading it wakes up (an
    upstream that stalls would hold it until the read timeout); the reader then closes it."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class AsyncResponseStream:
    """:class:`ResponseStream` for ``async with`` / ``async for`` (from :func:`astream`)."""

    def __init__(self, events: Observable[ResponseStreamEvent], upstream: _Upstream) -> None:
        self._events = events
        self._upstream = upstream
        self._iterator: AsyncIterator[ResponseStreamEvent] | None = None
        self._acc = ResponseAccumulator()
        self._seen = False
        self._closed = False

    async def __aenter__(self) -> AsyncResponseStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[ResponseStreamEvent]:
        return self

    async def __anext__(self) -> ResponseStreamEvent:
        if self._closed:
            raise StopAsyncIteration
        if self._iterator is None:
            self._iterator = aiterate(self._events)
        event = await anext(self._iterator)
        self._acc.handle(event)
        self._seen = True
        return event

    @property
    async def text_deltas(self) -> AsyncIterator[str]:
        """The ``response.output_text.delta`` texts of the rest of the stream."""
        async for event in self:
            if event.type == "response.output_text.delta":
                yield event.delta

    async def until_done(self) -> AsyncResponseStream:
        """Read the stream to its end."""
        async for _ in self:
            pass
        return self

    async def get_final_response(self, *, raise_on_failure: bool = False) -> Response:
        """Read the stream to its end and return the final :class:`Response` (see
        :meth:`ResponseStream.get_final_response`)."""
        await self.until_done()
        return _check(_final(self._acc, self._seen), self._upstream, raise_on_failure)

    async def close(self) -> None:
        """Stop reading and close the upstream response."""
        self._closed = True
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def stream(
    client: httpx.Client,
    *,
    base_url: str | None = None,
    headers: Mapping[str, str] | None = None,
    max_retries: int = 0,
    system_role: Literal["system", "developer"] = "system",
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
    **request: Unpack[ResponseRequest],
) -> ResponseStream:
    """Send a Responses request with a sync ``httpx.Client``; use the result in a ``with`` block.

    The request is sent when the stream is first read. See :func:`create` for the arguments.
    """
    if not isinstance(client, httpx.Client):
        raise TypeError("stream() takes an httpx.Client; use astream() with an httpx.AsyncClient")
    upstream = _Upstream()
    events = _events(
        client,
        upstream,
        base_url=base_url,
        headers=headers,
        max_retries=max_retries,
        system_role=system_role,
        max_tokens_field=max_tokens_field,
        request=request,
    )
    return ResponseStream(events, upstream)


def astream(
    client: httpx.AsyncClient,
    *,
    base_url: str | None = None,
    headers: Mapping[str, str] | None = None,
    max_retries: int = 0,
    system_role: Literal["system", "developer"] = "system",
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
    **request: Unpack[ResponseRequest],
) -> AsyncResponseStream:
    """Send a Responses request with an ``httpx.AsyncClient``; use the result in ``async with``.

    The request is sent when the stream is first read. See :func:`create` for the arguments.
    """
    if not isinstance(client, httpx.AsyncClient):
        raise TypeError("astream() takes an httpx.AsyncClient; use stream() with an httpx.Client")
    upstream = _Upstream()
    events = _events(
        client,
        upstream,
        base_url=base_url,
        headers=headers,
        max_retries=max_retries,
        system_role=system_role,
        max_tokens_field=max_tokens_field,
        request=request,
    )
    return AsyncResponseStream(events, upstream)

"""The ASGI application behind ``rxresponses serve`` (Starlette).

Routes (all under ``/v1``, like the OpenAI API, plus a health check):

* ``POST /v1/responses``: translate the Responses request into a Chat Completions request
  (:mod:`._request`), send it upstream (:mod:`._upstream`), turn the Chat stream back into
  Responses events with the operators (:mod:`._pipeline`), and answer with SSE (``stream: true``;
  ``event:`` equals ``type``) or with the final ``Response`` JSON.
* ``GET /v1/models`` and ``GET /v1/models/{id}``: passed through to the upstream (the embedded
  model lists itself).
* ``GET|DELETE /v1/responses/{id}`` (and ``.../cancel``, ``.../input_items``): 404, this server
  stores nothing.
* ``GET /health``: ``{"status": "ok"}`` for load balancers.

Every request is independent: the process keeps no state beyond the requests in flight (and a
connection pool), so any number of workers or replicas can serve behind a load balancer.

A client that goes away is noticed at once: each ``/v1/responses`` call watches for
``http.disconnect`` while it works, and cancels the work when it comes, which disposes the Rx
subscription and so closes the upstream HTTP response.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import anyio
import httpx
import reactivex
from reactivex import Observable
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..bridges import aget_final_response
from ..errors import UpstreamError, UpstreamStatusError
from ..sources import from_bytes
from ..sse import encode_event
from ..types._base import to_json
from ._pipeline import server_pipeline
from ._request import (
    RequestError,
    Translation,
    error_body,
    is_large_body,
    parse_body,
    translate_request,
)
from ._upstream import Redactor, Upstream, UpstreamReply, UpstreamTimeout, make_upstream
from .config import Secret, ServerConfig

__all__ = ["create_app", "create_app_from_env"]

logger = logging.getLogger("rxresponses.server")

_TERMINAL: Final = frozenset({"response.completed", "response.incomplete", "response.failed"})
_SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx and friends: do not buffer the stream
]


class _BodyTooLargeError(Exception):
    pass


class _State:
    """What the routes share: configuration, the upstream key, the upstream."""

    def __init__(self, config: ServerConfig, upstream: Upstream, api_key: Secret | None) -> None:
        self.config = config
        self.upstream = upstream
        self.api_key = api_key

    def authorization(self, request: Request) -> str | None:
        """The ``Authorization`` value sent upstream: the configured key, else the client's."""
        if self.api_key is not None:
            return f"Bearer {self.api_key.reveal()}"
        return request.headers.get("authorization")

    def redactor(self, request: Request) -> Redactor:
        return Redactor.for_authorization(request.headers.get("authorization"), self.api_key)


def create_app(
    config: ServerConfig | None = None, *, transport: httpx.AsyncBaseTransport | None = None
) -> Starlette:
    """Build the ASGI app.

    Args:
        config: The configuration (default: ``ServerConfig()``, the embedded scripted model).
        transport: An httpx transport for the upstream client (tests: ``httpx.MockTransport``).

    Raises:
        ConfigError: ``config.api_key_env`` names a variable that is not set.
    """
    config = config or ServerConfig()
    api_key = config.resolve_api_key()
    state = _State(config, make_upstream(config, transport=transport), api_key)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        logger.info(
            "rxresponses server ready: upstream %s%s",
            config.upstream_label,
            f", API key from ${config.api_key_env}" if config.api_key_env else "",
        )
        try:
            yield
        finally:
            await state.upstream.aclose()

    async def responses(request: Request) -> Response:
        return await _responses(state, request)

    async def models(request: Request) -> Response:
        return await _models(state, request)

    app = Starlette(
        routes=[
            Route("/v1/responses", responses, methods=["POST"]),
            Route("/v1/responses/{response_id}", _not_stored, methods=["GET", "DELETE"]),
            Route("/v1/responses/{response_id}/{action}", _not_stored, methods=["GET", "POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", models, methods=["GET"]),
            Route("/health", _health, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.rxresponses = state
    return app


def create_app_from_env() -> Starlette:
    """:func:`create_app` configured from ``RXRESPONSES_*`` environment variables.

    The factory uvicorn imports in each worker process (``rxresponses serve --workers N``).
    """
    return create_app(ServerConfig.from_env())


# ------------------------------------------------------------------------------------------------
# Small routes and error pages
# ------------------------------------------------------------------------------------------------


def _error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(message, type=type, param=param, code=code), status_code=status, headers=headers
    )


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _not_stored(request: Request) -> Response:
    response_id = request.path_params.get("response_id", "")
    return _error(
        404,
        f"No response found with id {response_id!r}: this server is stateless and stores no "
        "responses.",
        code="not_found",
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"Unknown route: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return _error(exc.status_code, message, headers=dict(exc.headers or {}))


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.exception("internal error on %s %s", request.method, request.url.path)
    return _error(500, "Internal server error.", type="server_error", code="server_error")


async def _models(state: _State, request: Request) -> Response:
    model_id = request.path_params.get("model_id")
    try:
        status, body, content_type = await state.upstream.models(
            state.authorization(request), state.redactor(request), model_id
        )
    except UpstreamError as exc:
        return _upstream_unreachable(exc)
    return Response(body, status_code=status, headers={"content-type": content_type})


def _upstream_unreachable(exc: UpstreamError) -> JSONResponse:
    if isinstance(exc, UpstreamTimeout):
        return _error(504, str(exc), type="server_error", code="upstream_timeout")
    return _error(502, str(exc), type="server_error", code="upstream_unavailable")


# ------------------------------------------------------------------------------------------------
# POST /v1/responses
# ------------------------------------------------------------------------------------------------


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, decompressed (gzip/deflate), never more than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BodyTooLargeError
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        wbits = 47 if encoding != "deflate" else 15  # 47: gzip or zlib header, auto-detected
        decompressor = zlib.decompressobj(wbits)
    elif encoding in ("", "identity"):
        decompressor = None
    else:
        raise RequestError(
            f"Unsupported Content-Encoding {encoding!r} (use identity, gzip or deflate).",
            code="unsupported_content_encoding",
            status=415,
        )
    data = bytearray()
    async for chunk in request.stream():
        if decompressor is not None:
            try:
                chunk = decompressor.decompress(chunk, limit + 1 - len(data))
            except zlib.error:
                raise RequestError(
                    f"The request body is not valid {encoding} data.", code="invalid_body"
                ) from None
        data += chunk
        if len(data) > limit:
            raise _BodyTooLargeError
    return bytes(data)


async def _responses(state: _State, request: Request) -> Response:
    config = state.config
    response_id = f"resp_{secrets.token_hex(12)}"
    try:
        raw = await _read_body(request, config.max_body_bytes)
    except _BodyTooLargeError:
        logger.info("%s rejected: body larger than %d bytes", response_id, config.max_body_bytes)
        return _error(
            413,
            f"Request body too large: the limit is {config.max_body_bytes} bytes.",
            code="request_too_large",
        )
    except RequestError as exc:
        return JSONResponse(exc.body(), status_code=exc.status)
    except ClientDisconnect:
        return Response(status_code=499)  # nobody is listening any more
    try:
        if is_large_body(raw):  # many small values: parse in a thread, the loop keeps serving
            translation = await anyio.to_thread.run_sync(_translate, raw, config)
        else:
            translation = _translate(raw, config)
    except RequestError as exc:
        logger.info("%s rejected (%d): %s", response_id, exc.status, exc.message)
        return JSONResponse(exc.body(), status_code=exc.status)
    if translation.dropped:
        logger.info("%s not honoured: %s", response_id, _dropped_line(translation.dropped))
    return _ResponsesCall(
        state.upstream,
        translation,
        response_id=response_id,
        authorization=state.authorization(request),
        redact=state.redactor(request),
    )


_MAX_DROPPED_LOGGED: Final = 20


def _dropped_line(dropped: tuple[str, ...]) -> str:
    """What was not honoured, for the log: the first 20 entries (a request can list thousands of
    hosted tools or media parts; the log line stays short)."""
    line = "; ".join(dropped[:_MAX_DROPPED_LOGGED])
    if len(dropped) > _MAX_DROPPED_LOGGED:
        line += f"; and {len(dropped) - _MAX_DROPPED_LOGGED} more"
    return line


def _translate(raw: bytes, config: ServerConfig) -> Translation:
    """The body, parsed, checked (depth, valid strings, finite numbers) and translated."""
    return translate_request(
        parse_body(raw), system_role=config.system_role, max_tokens_field=config.max_tokens_field
    )


@dataclass
class _Outcome:
    status: str = "unknown"
    events: int = 0
    sent_all: bool = False
    disconnected: bool = False


class _ResponsesCall(Response):
    """Sends one translated request upstream and answers the client, watching for disconnect.

    An ASGI response: ``__call__`` runs the upstream call and the conversion in a task group next to
    a listener for ``http.disconnect``. When the client leaves, the work is cancelled; the
    cancellation disposes the Rx subscription (in a ``finally`` for streams, in
    :func:`~rxresponses.aget_final_response` for single responses), which cancels the source task
    and so closes the upstream response.
    """

    def __init__(
        self,
        upstream: Upstream,
        translation: Translation,
        *,
        response_id: str,
        authorization: str | None,
        redact: Redactor,
    ) -> None:
        self.status_code = 200
        self.background = None
        self._upstream = upstream
        self._translation = translation
        self._response_id = response_id
        self._created_at = int(time.time())
        self._authorization = authorization
        self._redact = redact

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        outcome = _Outcome()
        t = self._translation
        try:
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    if not outcome.sent_all:
                        outcome.disconnected = True
                    tg.cancel_scope.cancel()

                tg.start_soon(watch)
                try:
                    await self._run(send, outcome)
                except OSError:  # the transport broke under a send: the client is gone
                    outcome.disconnected = True
                finally:
                    tg.cancel_scope.cancel()
        finally:
            elapsed = time.perf_counter() - started
            if outcome.disconnected:
                logger.info(
                    "%s client disconnected after %.3fs (%d events sent); upstream closed",
                    self._response_id,
                    elapsed,
                    outcome.events,
                )
            else:
                level = logging.WARNING if outcome.status in ("failed", "error") else logging.INFO
                logger.log(
                    level,
                    "%s model=%s stream=%s status=%s events=%d %.3fs",
                    self._response_id,
                    t.model,
                    t.stream,
                    outcome.status,
                    outcome.events,
                    elapsed,
                )

    async def _run(self, send: Send, outcome: _Outcome) -> None:
        t = self._translation
        reply: UpstreamReply | None = None
        source: Observable[bytes]
        try:
            try:
                reply = await self._upstream.open_chat(t.chat, self._authorization, self._redact)
            except UpstreamError as exc:
                logger.warning("%s upstream unreachable: %s", self._response_id, exc)
                if not t.stream:
                    outcome.status = "upstream_unreachable"
                    await self._send_response(send, _upstream_unreachable(exc), outcome)
                    return
                source = reactivex.throw(exc)
            else:
                if not reply.ok:
                    logger.warning(
                        "%s upstream answered HTTP %d", self._response_id, reply.status_code
                    )
                    if not t.stream:
                        outcome.status = f"upstream_{reply.status_code}"
                        await self._send_response(send, _upstream_status(reply), outcome)
                        return
                    source = reactivex.throw(
                        UpstreamStatusError(reply.status_code, reply.error_text)
                    )
                else:
                    assert reply.body is not None
                    source = from_bytes(reply.body)
            events = source.pipe(
                server_pipeline(
                    t,
                    response_id=self._response_id,
                    created_at=self._created_at,
                    redact=self._redact,
                )
            )
            if t.stream:
                await self._stream(send, events, outcome)
            else:
                final = await aget_final_response(events)
                outcome.status = final.status or "unknown"
                await self._send_response(
                    send,
                    Response(to_json(final), headers={"content-type": "application/json"}),
                    outcome,
                )
        finally:
            if reply is not None:
                with anyio.CancelScope(shield=True):
                    await reply.aclose()

    async def _stream(self, send: Send, events: Observable[Any], outcome: _Outcome) -> None:
        """Send ``events`` as SSE frames.

        Frames are encoded as events arrive and sent in batches: whatever the pipeline produced
        while the previous ``send`` was in flight (one upstream read often yields several events)
        goes out in one body message, so a busy stream costs fewer writes.
        """
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_SSE_HEADERS, (b"x-request-id", self._response_id.encode())],
            }
        )
        loop = asyncio.get_running_loop()
        owner = threading.get_ident()
        pending: list[bytes] = []
        ready = asyncio.Event()
        failure: list[Exception] = []
        ended = False

        def wake() -> None:
            if threading.get_ident() == owner:
                ready.set()
            else:  # an operator moved the stream to another thread: hand over safely
                loop.call_soon_threadsafe(ready.set)

        def on_next(event: Any) -> None:
            pending.append(encode_event(event))
            outcome.events += 1
            if event.type in _TERMINAL:
                outcome.status = event.type.removeprefix("response.")
            wake()

        def on_error(exc: Exception) -> None:
            failure.append(exc)
            on_completed()

        def on_completed() -> None:
            nonlocal ended
            ended = True
            wake()

        subscription = events.subscribe(on_next, on_error, on_completed)
        try:
            while True:
                await ready.wait()
                ready.clear()
                if pending:
                    body = b"".join(pending)
                    pending.clear()
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                if ended and not pending:
                    break
        finally:
            subscription.dispose()  # on cancellation too: this closes the upstream response
        if failure:
            # assemble() never fails a well-wired pipeline; if it did, end the stream cleanly.
            outcome.status = "error"
            logger.error(
                "%s the event pipeline failed: %r",
                self._response_id,
                failure[0],
                exc_info=failure[0],
            )
        outcome.sent_all = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_response(self, send: Send, response: Response, outcome: _Outcome) -> None:
        outcome.sent_all = True
        response.headers["x-request-id"] = self._response_id
        body = response.body
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _upstream_status(reply: UpstreamReply) -> JSONResponse:
    """A non-streaming answer to an upstream 4xx/5xx: the same status, an OpenAI-style body.

    An upstream body that already is an OpenAI-style error is passed on (redacted); any other body
    is wrapped.
    """
    text = reply.error_text
    content: Any = None
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            content = parsed
    except ValueError:
        pass
    if content is None:
        kind = "server_error" if reply.status_code >= 500 else "invalid_request_error"
        content = error_body(
            f"upstream returned HTTP {reply.status_code}: {text[:2000]}".rstrip(": "),
            type=kind,
            code="upstream_error",
        )
    return JSONResponse(content, status_code=reply.status_code, headers=reply.headers)

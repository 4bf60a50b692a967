"""The ASGI application behind ``rxresponses serve`` (Starlette).

Routes (all under ``/v1``, like the OpenAI API, plus a health check):

* ``POST /v1/responses``: translate the Responses request into a Chat Completions request
  (:mod:`._request`), send it upstream (:mod:`._upstream`), turn the Chat stream back into
  Responses events with the operators (:mod:`._pipeline`), and answer with SSE (``stream: true``;
  ``event:`` equals ``type``) or with the final ``Response`` JSON.
* ``GET /v1/models`` and ``GET /v1/models/{id}``: passed through to the upstream (the embedded
  model lists itself).
* ``GET|DELETE /v1/responses/{id}``, ``POST .../cancel``, ``GET .../input_items``: the stored
  responses (:mod:`._stored`; with ``config.store`` unset: 404, nothing is stored).
* ``POST /v1/responses/compact``: the conversation window compacted into its user messages and
  one sealed ``compaction`` item (:mod:`._compact`); such items in a later ``input`` are opened
  and their summary takes the place of the history they replaced.
* ``GET /health``: ``{"status": "ok"}`` for load balancers.
* A WebSocket on ``/v1/responses``: WebSocket mode (:mod:`._websocket`), each ``response.create``
  message run by :func:`start_response` as a ``POST`` is.

With a store (``config.store``), responses are kept there with their input items and event
log (owned by a hash of the client's credential), ``previous_response_id`` chains turns and
``background: true`` runs a response as a task of the process that a client can leave, resume
and cancel; workers and hosts share the store (PostgreSQL) and the live events (Redis). Without
one, every request is independent.

A client that goes away is noticed at once: each ``/v1/responses`` call watches for
``http.disconnect`` while it works, and cancels the work when it comes, which closes the upstream
HTTP response.

Resources are bounded: at most ``max_concurrent_streams`` responses are in flight (one more gets
429 + ``Retry-After`` at once), the upstream pool has a connection for each of them, a stream reads
its upstream only as fast as its client takes the converted frames (backpressure), and
``max_stream_seconds`` / ``max_stream_bytes`` end a stream that would run without bound.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import math
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import anyio
import httpx
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.abc import DisposableBase, ObserverBase, SchedulerBase
from reactivex.disposable import Disposable
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from ..errors import RxResponsesError, UpstreamError, UpstreamStatusError
from ..operators import final_response
from ..sse import encode_event, encode_event_data
from ..store import EventLogWriter, StoreError, terminal_event_for
from ..types._base import to_json
from ..types.registry import LIFECYCLE_TYPES, TERMINAL_TYPES
from ..types.response import Response as ResponseModel
from ._compact import CompactionSealer, expand_compactions
from ._compact import compact as _compact
from ._pipeline import server_pipeline
from ._request import (
    RequestError,
    Translation,
    error_body,
    input_items,
    is_large_body,
    parse_body,
    translate_request,
)
from ._stored import LogStream, Stored, not_found, owner_of, snapshot_json, sse_frame, store_error
from ._stored import cancel as _cancel
from ._stored import delete as _delete
from ._stored import input_items as _input_items
from ._stored import retrieve as _retrieve
from ._upstream import Redactor, Upstream, UpstreamReply, UpstreamTimeout, make_upstream
from ._websocket import serve_socket
from .config import MODELS_HEADROOM, Secret, ServerConfig

__all__ = ["create_app", "create_app_from_env"]

logger = logging.getLogger("rxresponses.server")

#: Events that carry a whole Response (the stored record follows them).
_LIFECYCLE: Final = LIFECYCLE_TYPES | TERMINAL_TYPES

_SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx and friends: do not buffer the stream
]


class _BodyTooLargeError(Exception):
    pass


class _BodyTimeoutError(Exception):
    pass


class _State:
    """What the routes share: configuration, the upstream key, the upstream."""

    def __init__(self, config: ServerConfig, upstream: Upstream, api_key: Secret | None) -> None:
        self.config = config
        self.upstream = upstream
        self.api_key = api_key
        self.streams = _Slots(config.max_concurrent_streams)
        self.model_calls = _Slots(MODELS_HEADROOM)
        self.stored = Stored(config) if config.store is not None else None
        self.sealer = CompactionSealer(config.secret)
        #: WebSockets open now (WebSocket mode), up to ``config.max_websockets``.
        self.websockets = 0

    def authorization(self, request: HTTPConnection) -> str | None:
        """The ``Authorization`` value sent upstream: the configured key, else the client's."""
        if self.api_key is not None:
            return f"Bearer {self.api_key.reveal()}"
        return request.headers.get("authorization")

    def redactor(self, request: HTTPConnection) -> Redactor:
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
        if state.stored is not None:
            await state.stored.start()
        try:
            yield
        finally:
            if state.stored is not None:
                await state.stored.stop()
            await state.upstream.aclose()

    async def responses(request: Request) -> Response:
        # When every slot is taken, _RefuseWhenFull answers before this; the slot itself is
        # taken by _ResponsesCall (the body may have been read meanwhile).
        try:
            return await _responses(state, request)
        except _BodyTimeoutError:
            timeout = config.client_body_timeout
            logger.info("request body not received within %gs: 408", timeout)
            return _error(
                408,
                f"The request body did not arrive within {timeout:g} s.",
                code="request_timeout",
                headers={"connection": "close"},
            )

    async def compact(request: Request) -> Response:
        if not state.streams.take():
            return state.streams.refused("responses")
        try:
            raw = await _read_limited_body(request, config)
            if isinstance(raw, Response):
                return raw
            return await _compact(
                request,
                raw,
                config=config,
                upstream=state.upstream,
                stored=state.stored,
                sealer=state.sealer,
                authorization=state.authorization(request),
                redact=state.redactor(request),
            )
        finally:
            state.streams.give_back()

    async def responses_socket(websocket: WebSocket) -> None:
        await serve_socket(state, websocket)

    async def models(request: Request) -> Response:
        if not state.model_calls.take():
            return state.model_calls.refused("model requests")
        try:
            return await _models(state, request)
        finally:
            state.model_calls.give_back()

    async def one_response(request: Request) -> Response:
        if state.stored is None:
            return await _not_stored(request)
        if request.method == "DELETE":
            return await _delete(state.stored, request)
        return await _retrieve(state.stored, request)

    async def response_action(request: Request) -> Response:
        if state.stored is None:
            return await _not_stored(request)
        action = request.path_params["action"]
        if action == "cancel" and request.method == "POST":
            return await _cancel(state.stored, request)
        if action == "input_items" and request.method == "GET":
            return await _input_items(state.stored, request)
        return _error(404, f"Unknown route: {request.method} {request.url.path}")

    app = _App(
        routes=[
            Route("/v1/responses", responses, methods=["POST"]),
            Route("/v1/responses/compact", compact, methods=["POST"]),
            WebSocketRoute("/v1/responses", responses_socket),
            Route("/v1/responses/{response_id}", one_response, methods=["GET", "DELETE"]),
            Route("/v1/responses/{response_id}/{action}", response_action, methods=["GET", "POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", models, methods=["GET"]),
            Route("/health", _health, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
        middleware=[Middleware(_RefuseWhenFull, streams=state.streams)],
    )
    app.state.rxresponses = state
    return app


#: The scope key under which :class:`_App` keeps the ASGI server's own ``send``.
_SERVER_SEND: Final = "rxresponses.server_send"


class _App(Starlette):
    """Starlette, which also keeps the ``send`` it was called with in the scope.

    Starlette's middleware and routes wrap ``send`` three times to learn whether the response has
    started (for their error pages); a streamed response's body frames, after that, go to the
    server's ``send`` directly: three coroutine calls fewer per frame (issue 13). Not when
    middleware was added to the app after :func:`create_app` (``app.add_middleware(...)``): that
    middleware may rewrite the body (GZip), so every frame goes through it.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if len(self.user_middleware) == 1:  # only create_app's own, which leaves send alone
            scope[_SERVER_SEND] = send
        await super().__call__(scope, receive, send)


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


async def _read_body(request: Request, limit: int, timeout: float = math.inf) -> bytes:
    """The request body, decompressed (gzip/deflate), never more than ``limit`` bytes, all of it
    within ``timeout`` seconds (else :class:`_BodyTimeoutError`)."""
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
    with anyio.move_on_after(timeout) as deadline:
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
    if deadline.cancelled_caught:
        raise _BodyTimeoutError
    return bytes(data)


async def _read_limited_body(request: Request, config: ServerConfig) -> bytes | Response:
    """The body within ``max_body_bytes`` and ``client_body_timeout``, or the answer to give
    (413, 408, 415, 499)."""
    try:
        return await _read_body(request, config.max_body_bytes, config.client_body_timeout)
    except _BodyTooLargeError:
        return _error(
            413,
            f"Request body too large: the limit is {config.max_body_bytes} bytes.",
            code="request_too_large",
        )
    except _BodyTimeoutError:
        return _error(
            408,
            f"The request body did not arrive within {config.client_body_timeout:g} s.",
            code="request_timeout",
            headers={"connection": "close"},
        )
    except RequestError as exc:
        return JSONResponse(exc.body(), status_code=exc.status)
    except ClientDisconnect:
        return Response(status_code=499)


async def _responses(state: _State, request: Request) -> Response:
    config = state.config
    response_id = f"resp_{secrets.token_hex(12)}"
    try:
        raw = await _read_body(request, config.max_body_bytes, config.client_body_timeout)
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
    large = is_large_body(raw)  # many small values: parse in a thread, the loop keeps serving
    try:
        body = await anyio.to_thread.run_sync(parse_body, raw) if large else parse_body(raw)
    except RequestError as exc:
        logger.info("%s rejected (%d): %s", response_id, exc.status, exc.message)
        return JSONResponse(exc.body(), status_code=exc.status)
    return await start_response(state, request, body, response_id, large=large)


async def start_response(
    state: _State,
    conn: HTTPConnection,
    body: Any,
    response_id: str,
    *,
    large: bool = False,
    local_history: list[dict[str, Any]] | None = None,
    upstream: Upstream | None = None,
) -> Response:
    """What answers one create request whose body is decoded: an error response, or the
    :class:`_ResponsesCall` (an ASGI response) that runs it.

    Shared by ``POST /v1/responses`` and WebSocket mode (:mod:`._websocket`), so both translate,
    store, chain and limit alike.

    Args:
        state: What the routes share.
        conn: The HTTP request or the WebSocket: its headers give the owner and the credential.
        body: The decoded request body (checked by ``parse_body``).
        response_id: The id of the new response.
        large: Translate in a thread (a body with many values).
        local_history: The items of a ``previous_response_id`` chain the caller holds itself
            (a WebSocket's own cache); the store is then not asked, and the chain works without
            one.
        upstream: Answer from this upstream instead of the server's (WebSocket mode's
            ``generate: false``).
    """
    config = state.config
    stored = state.stored
    owner = owner_of(conn)
    try:
        history: list[dict[str, Any]] | None = local_history
        previous = body.get("previous_response_id") if isinstance(body, dict) else None
        if history is None and stored is not None and isinstance(previous, str):
            try:
                history = await stored.history(previous, owner)
            except StoreError as exc:
                return store_error(exc)
            if history is None:
                return not_found(
                    previous, param="previous_response_id", code="previous_response_not_found"
                )
        # Compaction items open here, for the upstream only: the store keeps them sealed.
        sent, window = expand_compactions(body, history or (), state.sealer)
        translate = functools.partial(
            translate_request,
            sent,
            system_role=config.system_role,
            max_tokens_field=config.max_tokens_field,
            stateful=stored is not None or local_history is not None,
            history=window,
        )
        translation = await anyio.to_thread.run_sync(translate) if large else translate()
    except RequestError as exc:
        logger.info("%s rejected (%d): %s", response_id, exc.status, exc.message)
        return JSONResponse(exc.body(), status_code=exc.status)
    if stored is None and local_history is not None:  # chained in memory, stored nowhere
        translation = dataclasses.replace(
            translation, response_fields={**translation.response_fields, "store": False}
        )
    if translation.dropped:
        logger.info("%s not honoured: %s", response_id, _dropped_line(translation.dropped))
    writer: EventLogWriter | None = None
    background = stored is not None and body.get("background") is True
    if stored is not None and body.get("store") is not False:
        if state.streams.full or (background and not state.streams.take()):
            return state.streams.refused("responses")
        try:
            store = await stored.get_store()
            await store.create(
                response_id,
                owner=owner,
                request=body,
                input_items=input_items(body.get("input")),
                status="queued" if background else "in_progress",
                previous_response_id=previous,
            )
        except StoreError as exc:
            if background:
                state.streams.give_back()
            logger.warning("%s not stored: %s", response_id, exc)
            return store_error(exc)
        writer = EventLogWriter(store, response_id, bus=stored.bus)
    elif background:
        return _error(
            400,
            "background: true needs store: true (a background response is kept to be polled).",
            param="background",
            code="invalid_value",
        )
    call = _ResponsesCall(
        upstream or state.upstream,
        translation,
        response_id=response_id,
        authorization=state.authorization(conn),
        redact=state.redactor(conn),
        config=config,
        slots=None if background else state.streams,
        writer=writer,
        stored=stored,
        background=background,
    )
    if not background:
        return call
    assert stored is not None
    return await _start_background(state, stored, call)


async def _start_background(state: _State, stored: Stored, call: _ResponsesCall) -> Response:
    """Run ``call`` as a task of this process (it holds the stream slot taken for it until it
    ends); answer at once: the ``Response`` as it starts, or (``stream: true``) its events
    read from the log, so the client can leave and resume while the run goes on."""

    async def never_disconnects() -> Message:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def nobody_listens(message: Message) -> None:
        pass

    async def run() -> None:
        try:
            await call({"type": "http"}, never_disconnects, nobody_listens)
        finally:
            state.streams.give_back()

    stored.spawn(run())
    with anyio.move_on_after(5.0):
        await call.started.wait()
    if call.stream:
        return LogStream(stored, call.response_id, -1)
    snapshot = call.snapshot()
    return JSONResponse(snapshot, headers={"x-request-id": call.response_id})


_MAX_DROPPED_LOGGED: Final = 20


def _dropped_line(dropped: tuple[str, ...]) -> str:
    """What was not honoured, for the log: the first 20 entries (a request can list thousands of
    hosted tools or media parts; the log line stays short)."""
    line = "; ".join(dropped[:_MAX_DROPPED_LOGGED])
    if len(dropped) > _MAX_DROPPED_LOGGED:
        line += f"; and {len(dropped) - _MAX_DROPPED_LOGGED} more"
    return line


@dataclass
class _Outcome:
    status: str = "unknown"
    events: int = 0
    sent_all: bool = False
    disconnected: bool = False
    reason: str = ""


class StreamLimitError(RxResponsesError):
    """A response hit ``max_stream_seconds`` or ``max_stream_bytes``: it ends ``failed``."""

    code = "stream_limit_exceeded"


class _Slots:
    """Requests in flight, up to ``capacity``: a slot is taken at once or refused, never awaited.

    Used from the event loop's thread only (no lock needed).
    """

    __slots__ = ("_logged_at", "_refused", "capacity", "used")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._refused = 0
        self._logged_at = -math.inf

    def refused(self, what: str) -> JSONResponse:
        """The 429 answer; logged once per 10 s at most, with the count (no log flood)."""
        self._refused += 1
        now = time.monotonic()
        if now - self._logged_at >= 10.0:
            logger.warning(
                "at the limit of %d %s in flight: %d refused with 429 since the last report",
                self.capacity,
                what,
                self._refused,
            )
            self._logged_at, self._refused = now, 0
        return _overloaded(what, self.capacity)

    @property
    def full(self) -> bool:
        return self.used >= self.capacity

    def take(self) -> bool:
        if self.used >= self.capacity:
            return False
        self.used += 1
        return True

    def give_back(self) -> None:
        self.used -= 1


def _overloaded(what: str, capacity: int) -> JSONResponse:
    """429 + ``Retry-After``: the server is at its limit (the SDKs retry after the pause).

    429 rather than 503: the answer is "too many requests right now", given at once, and the
    OpenAI SDKs and Codex retry both alike.
    """
    return _error(
        429,
        f"Too many requests in flight: this server handles at most {capacity} {what} at once. "
        "Retry shortly.",
        type="rate_limit_error",
        code="too_many_requests",
        headers={"retry-after": "1"},
    )


class _RefuseWhenFull:
    """ASGI middleware: while every stream slot is taken, ``POST /v1/responses`` gets its 429 here,
    before routing, so a client that retries without pause costs as little as possible."""

    def __init__(self, app: ASGIApp, streams: _Slots) -> None:
        self.app = app
        self.streams = streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.streams.full
            and scope["type"] == "http"
            and scope["path"] == "/v1/responses"
            and scope["method"] == "POST"
        ):
            await self.streams.refused("responses")(scope, receive, send)
            return
        await self.app(scope, receive, send)


_KEEPALIVE: Final = b": keep-alive\n\n"
#: How long a stream that hit ``max_stream_seconds`` may take to send its terminal event.
_FINAL_GRACE_SECONDS: Final = 10.0
#: Converted bytes a stream holds for its client before it stops reading the upstream.
_STREAM_BUFFER: Final = 64 * 1024


class _Feed:
    """The upstream body's chunks, pushed into the conversion pipeline (``observable``).

    What a :class:`~reactivex.subject.Subject` does here: values go to the subscriber, none
    before it subscribes or after it completed, failed or was disposed. One stream has one
    subscriber fed by one task, so this skips what a Subject does for many (a lock taken twice and
    its list of observers copied for every value; a few microseconds per chunk, issue 13).
    """

    __slots__ = ("_observer", "observable")

    def __init__(self) -> None:
        self._observer: ObserverBase[bytes] | None = None
        self.observable: Observable[bytes] = reactivex.create(self._subscribe)

    def _subscribe(
        self, observer: ObserverBase[bytes], scheduler: SchedulerBase | None = None
    ) -> DisposableBase:
        self._observer = observer  # reactivex's auto-detaching observer: it stops at the end
        return Disposable(self._detach)

    def _detach(self) -> None:
        self._observer = None

    def on_next(self, value: bytes) -> None:
        observer = self._observer
        if observer is not None:
            observer.on_next(value)

    def on_error(self, error: Exception) -> None:
        observer = self._observer
        if observer is not None:
            observer.on_error(error)

    def on_completed(self) -> None:
        observer = self._observer
        if observer is not None:
            observer.on_completed()


class _ResponsesCall(Response):
    """Sends one translated request upstream and answers the client, watching for disconnect.

    An ASGI response: ``__call__`` runs the upstream call and the conversion in a task group next to
    a listener for ``http.disconnect``. When the client leaves, the work is cancelled and the
    upstream response is closed at once.

    The upstream body is pulled, not pushed: this task reads one chunk, feeds it through the
    conversion (a :class:`_Feed` the pipeline subscribes to; the pipeline runs
    synchronously inside ``on_next``), and sends the SSE frames that chunk produced before it reads
    the next one. ``send`` waits while the client's socket buffer is full (ASGI servers apply
    write flow control), so a client that stops reading stops the upstream reads too (TCP
    backpressure): a stalled client costs one chunk of memory, not the whole upstream answer.
    """

    def __init__(
        self,
        upstream: Upstream,
        translation: Translation,
        *,
        response_id: str,
        authorization: str | None,
        redact: Redactor,
        config: ServerConfig | None = None,
        slots: _Slots | None = None,
        writer: EventLogWriter | None = None,
        stored: Stored | None = None,
        background: bool = False,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.response_id = response_id
        #: Set at the first event (a background run answers its create call then).
        self.started = asyncio.Event()
        self._writer = writer
        self._stored = stored
        self._in_background = background
        self._last_response: ResponseModel | None = None
        self._cancelled = False
        self._upstream = upstream
        self._translation = translation
        self._response_id = response_id
        self._created_at = int(time.time())
        self._authorization = authorization
        self._redact = redact
        self._config = config or ServerConfig()
        self._slots = slots
        self._reply: UpstreamReply | None = None
        self._deadline = math.inf

    @property
    def stream(self) -> bool:
        """Whether the client asked for an SSE stream."""
        return self._translation.stream

    def snapshot(self) -> dict[str, Any]:
        """The latest ``Response`` of this run as a JSON object."""
        if self._last_response is not None:
            return snapshot_json(self._last_response)
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self._created_at,
            "model": self._translation.model,
            "status": "queued",
            "output": [],
        }

    def _log(self, event: Any, data: str | None = None) -> None:
        """Keep a lifecycle event's ``Response``; add the event to the log (if stored)."""
        if event.type in _LIFECYCLE:
            self._last_response = event.response
            self.started.set()
        if self._writer is not None:
            self._writer.add(event, data)

    async def _finish_log(self, outcome: _Outcome) -> None:
        """Flush the log; a run that ended without a terminal event (client gone, upstream
        error answered as HTTP, server stopping) gets one, so no stored response stays
        ``in_progress`` and every replay ends with exactly one terminal event."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if self._stored is not None:
            self._stored.writers.pop(self.response_id, None)
        with anyio.CancelScope(shield=True), anyio.move_on_after(_FINAL_GRACE_SECONDS):
            if not writer.terminated:
                if self._cancelled:
                    status, message = "cancelled", "the response was cancelled"
                elif outcome.disconnected:
                    status, message = "failed", "the client disconnected before the end"
                else:
                    status, message = "failed", f"the response ended early ({outcome.status})"
                writer.add(
                    terminal_event_for(
                        self.response_id,
                        writer.last_sequence_number + 1,
                        self.snapshot(),
                        status=status,
                        message=message,
                    )
                )
            await writer.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        outcome = _Outcome()
        t = self._translation
        if self._slots is not None and not self._slots.take():
            outcome.status = "overloaded"
            await self._finish_log(outcome)
            await self._send_response(send, self._slots.refused("responses"), outcome)
            return
        if self._stored is not None and self._writer is not None:
            self._stored.writers[self.response_id] = self._writer
        if self._config.max_stream_seconds:
            self._deadline = anyio.current_time() + self._config.max_stream_seconds
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
                    await self._run(scope, send, outcome)
                except OSError:  # the transport broke under a send: the client is gone
                    outcome.disconnected = True
                finally:
                    tg.cancel_scope.cancel()
        finally:
            await self._finish_log(outcome)
            if self._slots is not None:
                self._slots.give_back()
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
                    "%s model=%s stream=%s status=%s events=%d %.3fs%s",
                    self._response_id,
                    t.model,
                    t.stream,
                    outcome.status,
                    outcome.events,
                    elapsed,
                    f" reason={self._redact(outcome.reason)[:500]!r}" if outcome.reason else "",
                )

    def _pipeline(self, *, start_immediately: bool) -> Callable[[Observable[bytes]], Any]:
        return server_pipeline(
            self._translation,
            response_id=self._response_id,
            created_at=self._created_at,
            redact=self._redact,
            start_immediately=start_immediately,
            reasoning_events=self._config.reasoning_events,
        )

    async def _run(self, scope: Scope, send: Send, outcome: _Outcome) -> None:
        try:
            if self._translation.stream or self._in_background:
                # The body frames skip Starlette's send wrappers (see _App); the response start
                # goes through them, so they know the response has started.
                await self._stream(send, outcome, scope.get(_SERVER_SEND, send))
            else:
                await self._single(send, outcome)
        finally:
            await self._close_reply()

    async def _close_reply(self) -> None:
        """Release the upstream response (at once, as soon as it is not read any more)."""
        reply, self._reply = self._reply, None
        if reply is not None:
            with anyio.CancelScope(shield=True):
                await reply.aclose()

    async def _open(self, subject: _Feed | None) -> UpstreamReply | Response:
        """Send the request upstream. A failure goes into ``subject`` (a stream, already
        answering) or comes back as the HTTP answer to give (a single response)."""
        t = self._translation
        try:
            reply = self._reply = await self._upstream.open_chat(
                t.chat, self._authorization, self._redact
            )
        except UpstreamError as exc:
            logger.warning("%s upstream unreachable: %s", self._response_id, exc)
            if subject is not None:
                subject.on_error(exc)
            return _upstream_unreachable(exc)
        if reply.ok:
            assert reply.body is not None
            return reply
        logger.warning("%s upstream answered HTTP %d", self._response_id, reply.status_code)
        if subject is not None:
            subject.on_error(UpstreamStatusError(reply.status_code, reply.error_text))
        return _upstream_status(reply)

    async def _pull(
        self,
        reply: UpstreamReply,
        subject: _Feed,
        flush: Callable[[], Awaitable[None]] | None,
        ended: Callable[[], bool],
    ) -> None:
        """Feed the upstream body into ``subject`` one chunk at a time, awaiting ``flush()``
        after each, so nothing is read while the client is not taking what was converted.

        An error of the body ends the stream through ``on_error``, as
        :func:`rxresponses.from_bytes` does; ``max_stream_bytes`` ends it with
        :class:`StreamLimitError`, after the bytes of the last read that fit under the limit
        (so every event whose bytes came within the limit is kept, however the reads fell).
        """
        assert reply.body is not None
        body = reply.body
        limit = self._config.max_stream_bytes
        received = 0
        try:
            async for chunk in body:
                received += len(chunk)
                if limit and received > limit:
                    within = len(chunk) - (received - limit)
                    if within > 0:
                        subject.on_next(chunk[:within])
                    subject.on_error(
                        StreamLimitError(
                            f"the upstream answer exceeded the server's limit of {limit} bytes "
                            "(max_stream_bytes)"
                        )
                    )
                    return
                subject.on_next(chunk)
                if flush is not None:
                    await flush()
                if ended():
                    return
        except Exception as exc:
            subject.on_error(exc)
            return
        subject.on_completed()

    def _too_long(self) -> StreamLimitError:
        return StreamLimitError(
            "the response took longer than the server's limit of "
            f"{self._config.max_stream_seconds:g} s (max_stream_seconds)"
        )

    async def _single(self, send: Send, outcome: _Outcome) -> None:
        """The whole response as one JSON ``Response`` (``stream: false``)."""
        finals: list[ResponseModel] = []
        subject = _Feed()
        subscription = subject.observable.pipe(
            self._pipeline(start_immediately=False), ops.do_action(self._log), final_response()
        ).subscribe(finals.append)
        try:
            with anyio.CancelScope(deadline=self._deadline) as limit:
                opened = await self._open(None)
                if not isinstance(opened, UpstreamReply):
                    outcome.status = (
                        f"upstream_{self._reply.status_code}"
                        if self._reply is not None
                        else "upstream_unreachable"
                    )
                    await self._send_response(send, opened, outcome)
                    return
                await self._pull(opened, subject, None, lambda: bool(finals))
            if limit.cancelled_caught:
                subject.on_error(self._too_long())
            await self._close_reply()
        finally:
            subscription.dispose()
        final = finals[0]
        outcome.status = final.status or "unknown"
        if final.error is not None:
            outcome.reason = final.error.message
        await self._finish_log(outcome)  # stored before the client has it: retrieve sees it
        # A client that does not read its answer holds its slot until the deadline, not forever.
        with anyio.CancelScope(deadline=self._deadline + _FINAL_GRACE_SECONDS) as scope:
            await self._send_response(
                send,
                Response(to_json(final), headers={"content-type": "application/json"}),
                outcome,
            )
        if scope.cancelled_caught:
            outcome.disconnected = True

    async def _stream(self, send: Send, outcome: _Outcome, send_body: Send) -> None:
        """Answer with SSE: headers, ``response.created`` and ``response.in_progress`` at once,
        then the frames the upstream chunks produce, a keep-alive comment whenever nothing was
        sent for ``keepalive_seconds``, and the terminal event.

        This task reads the upstream and converts (frames go into ``pending``), and after each
        upstream read sends whatever is pending in one body message itself: no task switch per
        chunk. A sender task sends what comes at other times (``response.created`` before the
        upstream answers, keep-alive comments, the terminal event after a deadline). While a send
        waits (write flow control: the client does not read), nothing more is read upstream; a
        keep-alive send in progress lets frames wait, up to ``_STREAM_BUFFER`` bytes.
        """
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_SSE_HEADERS, (b"x-request-id", self._response_id.encode())],
            }
        )
        pending: list[bytes] = []
        buffered = 0
        failure: list[Exception] = []
        ended = closing = sending = False
        wake = asyncio.Event()  # something to send, or the end
        room = asyncio.Event()  # less than _STREAM_BUFFER bytes wait
        done = asyncio.Event()  # the sender sent everything and stopped
        last_sent = time.monotonic()

        def on_next(event: Any) -> None:
            nonlocal buffered
            if self._cancelled:
                return  # the run was cancelled: its terminal event is made below
            if self._writer is None:
                frame = encode_event(event)
            else:
                frame, data = encode_event_data(event)
                self._log(event, data)
            pending.append(frame)
            buffered += len(frame)
            outcome.events += 1
            if event.type in TERMINAL_TYPES:
                outcome.status = event.type.removeprefix("response.")
                error = getattr(event.response, "error", None)
                if error is not None:
                    outcome.reason = error.message

        def on_error(exc: Exception) -> None:
            failure.append(exc)
            on_completed()

        def on_completed() -> None:
            nonlocal ended
            ended = True

        async def send_pending() -> None:
            # One sender at a time (this task or the sender task); both check ``sending`` first.
            nonlocal buffered, last_sent, sending
            sending = True
            try:
                while pending:
                    body = b"".join(pending)
                    pending.clear()
                    buffered = 0
                    room.set()
                    try:
                        await send_body(
                            {"type": "http.response.body", "body": body, "more_body": True}
                        )
                    except BaseException:
                        # Cancelled while waiting for the client to read (a deadline): uvicorn
                        # writes only after that wait, so these frames were not sent: keep them.
                        pending.insert(0, body)
                        buffered += len(body)
                        raise
                    last_sent = time.monotonic()
            finally:
                sending = False

        async def sender() -> None:
            while True:
                await wake.wait()
                wake.clear()
                if not sending:
                    await send_pending()
                if closing and not sending and not pending:
                    done.set()
                    return

        async def flush() -> None:
            # After each upstream read: send what it produced, unless a send is under way (its
            # loop takes these frames too); then wait while too much is held. Once the stream
            # ended, nothing: the sender sends the rest after the upstream response is closed.
            if ended:
                return
            if pending and not sending:
                await send_pending()
            while buffered >= _STREAM_BUFFER:
                room.clear()
                await room.wait()

        async def keep_alive(interval: float) -> None:
            # The comment goes through the sender (the only task that sends); at most one waits.
            nonlocal last_sent
            while True:
                await anyio.sleep(max(0.0, last_sent + interval - time.monotonic()))
                if time.monotonic() - last_sent >= interval:
                    if not pending:
                        pending.append(_KEEPALIVE)
                        wake.set()
                    last_sent = time.monotonic()

        subject = _Feed()
        # response.created and response.in_progress are emitted here, on subscribe
        subscription = subject.observable.pipe(self._pipeline(start_immediately=True)).subscribe(
            on_next, on_error, on_completed
        )
        wake.set()  # the sender sends those at once, before the upstream answers
        hit_deadline = False
        writer = self._writer
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sender)
                if self._config.keepalive_seconds:
                    tg.start_soon(keep_alive, self._config.keepalive_seconds)
                try:
                    with anyio.CancelScope(deadline=self._deadline) as limit:
                        if writer is not None and self._in_background:

                            async def watch_cancel() -> None:
                                await writer.cancelled.wait()
                                self._cancelled = True
                                limit.cancel()

                            tg.start_soon(watch_cancel)
                        opened = await self._open(subject)
                        if isinstance(opened, UpstreamReply):
                            await self._pull(opened, subject, flush, lambda: ended)
                    if self._cancelled and writer is not None and not writer.terminated:
                        # cancelled (POST .../cancel here or on another worker, or deleted):
                        # the upstream request is closed below; one terminal event ends the log
                        end = terminal_event_for(
                            self._response_id,
                            writer.last_sequence_number + 1,
                            self.snapshot(),
                            status="cancelled",
                            message="the response was cancelled",
                        )
                        writer.add(end)
                        pending.append(sse_frame(end.type, end.data))
                        outcome.status = "cancelled"
                        outcome.events += 1
                        wake.set()
                    elif limit.cancelled_caught:
                        hit_deadline = True
                        subject.on_error(self._too_long())
                    await self._close_reply()  # not while the terminal event is being sent
                    closing = True
                    wake.set()
                    # Past the deadline, a client that does not read gets a few seconds for the
                    # terminal event, then the connection is dropped.
                    with anyio.move_on_after(_FINAL_GRACE_SECONDS if hit_deadline else math.inf):
                        await done.wait()
                finally:
                    tg.cancel_scope.cancel()
        finally:
            subscription.dispose()  # on cancellation too
        if failure:
            # assemble() never fails a well-wired pipeline; if it did, end the stream cleanly.
            outcome.status = "error"
            outcome.reason = str(failure[0])
            logger.error(
                "%s the event pipeline failed: %r",
                self._response_id,
                failure[0],
                exc_info=failure[0],
            )
        if not done.is_set():
            outcome.disconnected = True  # stalled past the grace: the connection is dropped
            return
        outcome.sent_all = True
        await self._finish_log(outcome)  # stored before the stream ends: retrieve sees it
        await send_body({"type": "http.response.body", "body": b"", "more_body": False})

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

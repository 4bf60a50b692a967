"""WebSocket mode of ``/v1/responses`` (OpenAI's Responses WebSocket protocol).

A client opens one WebSocket to ``/v1/responses`` and sends ``response.create`` messages: the
body of ``POST /v1/responses`` plus ``"type": "response.create"``, without ``stream`` (implicit)
and ``background`` (refused, as on OpenAI). The server answers each with the events of the SSE
stream, one JSON text frame each, in the same order and with the same sequence numbers.

Each turn runs through the same code as ``POST /v1/responses`` (:func:`.app.start_response` and
its ``_ResponsesCall``: translation, the store, ``--max-concurrent-streams``, the stream caps):
this module only feeds it a message instead of a request and turns its SSE frames into text
frames, and its error answers into ``error`` events (``{"type": "error", "status": N, "error":
{"type", "code", "message", "param"}}``, the shape OpenAI sends on a socket). A bad message gets
such an event and the socket stays open.

Rules (OpenAI's): turns on one socket run one after the other, in the order they arrived; a
``response.create`` sent while a response is streaming waits for it (FIFO). A ``stream_id``
names a lane: lanes run side by side, each FIFO, and every event of a lane's response carries
its ``stream_id``. The socket keeps its most recent responses in memory (with the whole chain
they continue), so ``previous_response_id`` works with ``store: false`` and without a store; a
turn that fails evicts the response it continued from that cache (the client then sends the
whole context again, or continues from a stored response).

``generate: false`` (a warm-up, which the Codex CLI sends first) makes a response without asking
the model: ``response.created``, ``response.in_progress`` and ``response.completed`` with no
output, which a later turn continues with ``previous_response_id``.

A socket that closes cancels its responses: the upstream requests are closed at once.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import anyio
from starlette.responses import Response
from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..types.registry import TERMINAL_TYPES
from ._request import RequestError, error_body, input_items, is_large_body, parse_body
from ._stored import not_found
from ._upstream import Redactor, Upstream, UpstreamReply

if TYPE_CHECKING:
    from .app import _State
    from .config import ServerConfig

__all__ = ["serve_socket"]

logger = logging.getLogger("rxresponses.server")

#: Responses a socket keeps for ``previous_response_id`` (the most recent ones).
CACHED_RESPONSES: Final = 8
#: ``response.create`` messages a socket may have waiting behind the ones running.
MAX_QUEUED: Final = 16
#: How often a socket past ``ws_max_seconds`` looks whether its running responses ended.
_EXPIRED_POLL_SECONDS: Final = 0.1
#: A lane: the default one (no ``stream_id``) is ``None``.
Lane = str | None


@dataclass
class _Cached:
    """A response of this socket: the items of its whole chain (inputs and outputs, oldest
    first) and their approximate size in bytes."""

    items: list[dict[str, Any]]
    size: int


@dataclass
class _Turn:
    body: dict[str, Any]
    size: int
    large: bool
    generate: bool = True


@dataclass
class _Session:
    """One socket: its lanes, queued turns, cache of responses and send lock."""

    state: _State
    websocket: WebSocket
    closed: anyio.Event = field(default_factory=anyio.Event)
    send_lock: anyio.Lock = field(default_factory=anyio.Lock)
    lanes: dict[Lane, deque[_Turn]] = field(default_factory=dict)
    queued: int = 0
    queued_bytes: int = 0
    running: int = 0
    cache: OrderedDict[str, _Cached] = field(default_factory=OrderedDict)

    @property
    def busy(self) -> bool:
        return self.running > 0 or self.queued > 0

    async def send_text(self, text: str) -> None:
        """Send one frame. On a socket that is gone, nothing is sent and :attr:`closed` is set:
        the running responses see a disconnect (their ``receive``) and stop, as over HTTP."""
        if self.closed.is_set():
            return
        async with self.send_lock:
            try:
                await self.websocket.send_text(text)
            except Exception:  # closed under us (the ASGI server's own exception types vary)
                self.closed.set()

    async def send_error(
        self,
        status: int,
        error: dict[str, Any],
        lane: Lane = None,
    ) -> None:
        logger.info("WebSocket message answered %d: %s", status, str(error.get("message"))[:300])
        event: dict[str, Any] = {"type": "error", "status": status, "error": error}
        if lane is not None:
            event["stream_id"] = lane
        await self.send_text(json.dumps(event))

    def remember(self, response_id: str, cached: _Cached) -> None:
        self.cache[response_id] = cached
        self.cache.move_to_end(response_id)
        while len(self.cache) > CACHED_RESPONSES:
            self.cache.popitem(last=False)


_EMPTY_ANSWER: Final = (
    b'data: {"id":"chatcmpl-warmup","object":"chat.completion.chunk","created":0,"model":"",'
    b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}\n\n'
    b"data: [DONE]\n\n"
)


class _NoGeneration(Upstream):
    """The upstream of a ``generate: false`` turn: an answer with nothing in it, at once."""

    async def open_chat(
        self, request: Mapping[str, Any], authorization: str | None, redact: Redactor
    ) -> UpstreamReply:
        async def body() -> AsyncIterator[bytes]:
            yield _EMPTY_ANSWER

        return UpstreamReply(200, body=body())

    async def models(
        self, authorization: str | None, redact: Redactor, model_id: str | None = None
    ) -> tuple[int, bytes, str]:
        raise NotImplementedError  # never asked: only open_chat is used


_NO_GENERATION: Final = _NoGeneration()


def _error(message: str, *, code: str, param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = error_body(message, param=param, code=code)["error"]
    return error


async def serve_socket(state: _State, websocket: WebSocket) -> None:
    """Serve one WebSocket on ``/v1/responses`` until the client closes it (or it idles).

    Args:
        state: What the routes share (configuration, upstream, store, stream slots).
        websocket: The socket, not yet accepted.
    """
    config = state.config
    await websocket.accept()
    session = _Session(state, websocket)
    if state.websockets >= config.max_websockets:
        await session.send_error(
            429,
            _error(
                f"Too many WebSockets: this server keeps at most {config.max_websockets} open "
                "(max_websockets). Retry shortly, or use POST /v1/responses.",
                code="websocket_connection_limit_reached",
            ),
        )
        await websocket.close(1013)  # try again later
        return
    state.websockets += 1
    try:
        await _serve(session)
    finally:
        state.websockets -= 1


def _limit_reached(config: ServerConfig) -> dict[str, Any]:
    return _error(
        f"This WebSocket has been open for {config.ws_max_seconds:g} s, the most a connection "
        "may stay open (ws_max_seconds): open a new one to continue (a stored response can be "
        "continued there with previous_response_id).",
        code="websocket_connection_limit_reached",
    )


async def _serve(session: _Session) -> None:
    websocket = session.websocket
    config = session.state.config
    idle = config.ws_idle_timeout or math.inf
    deadline = anyio.current_time() + (config.ws_max_seconds or math.inf)
    try:
        async with anyio.create_task_group() as tg:
            try:
                while True:
                    left = deadline - anyio.current_time()
                    if left <= 0 and not session.busy:
                        # as OpenAI's 60 minutes: the running responses ended, the socket closes
                        await session.send_error(400, _limit_reached(config))
                        await websocket.close(1000)
                        break
                    # past the deadline, a running response may still end: look again soon
                    wait = min(idle, left) if left > 0 else _EXPIRED_POLL_SECONDS
                    with anyio.move_on_after(wait) as waiting:
                        message = await websocket.receive()
                    if waiting.cancelled_caught:
                        if session.busy or anyio.current_time() >= deadline:
                            continue
                        await session.send_error(
                            408,
                            _error(
                                f"No message for {config.ws_idle_timeout:g} s: the socket is "
                                "closed (ws_idle_timeout). Open a new one to continue.",
                                code="websocket_idle_timeout",
                            ),
                        )
                        await websocket.close(1000)
                        break
                    if message["type"] == "websocket.disconnect":
                        break
                    if anyio.current_time() >= deadline:
                        # no new response on an expired socket; it closes once idle
                        await session.send_error(400, _limit_reached(config))
                        continue
                    await _on_message(session, message, tg)
            finally:
                session.closed.set()  # the running turns see a disconnect: upstreams close
    except WebSocketDisconnect:
        session.closed.set()


async def _on_message(session: _Session, message: Message, tg: anyio.abc.TaskGroup) -> None:
    config = session.state.config
    data = message.get("text")
    raw = data.encode("utf-8", "surrogatepass") if data is not None else message.get("bytes")
    if not raw:
        await session.send_error(
            400, _error("An empty message: send a JSON object.", code="invalid_json")
        )
        return
    if len(raw) > config.max_body_bytes:
        await session.send_error(
            413,
            _error(
                f"Message too large: the limit is {config.max_body_bytes} bytes.",
                code="request_too_large",
            ),
        )
        return
    large = is_large_body(raw)
    try:
        body = await anyio.to_thread.run_sync(parse_body, raw) if large else parse_body(raw)
    except RequestError as exc:
        await session.send_error(exc.status, exc.body()["error"])
        return
    if not isinstance(body, dict):
        await session.send_error(
            400, _error("A message must be a JSON object.", code="invalid_json")
        )
        return
    kind = body.pop("type", None)
    lane = body.pop("stream_id", None)
    if lane is not None and not (isinstance(lane, str) and 0 < len(lane) <= 256):
        await session.send_error(
            400,
            _error("stream_id must be a string of 1 to 256 characters.", code="invalid_type"),
        )
        return
    if kind != "response.create":
        await session.send_error(
            400,
            _error(
                f"Unsupported message type {kind!r}: this server takes 'response.create'.",
                param="type",
                code="unsupported_event_type",
            ),
            lane,
        )
        return
    if body.get("background") is True:
        await session.send_error(
            400,
            _error(
                "background is not supported over WebSocket (use POST /v1/responses).",
                param="background",
                code="unsupported_parameter",
            ),
            lane,
        )
        return
    if session.queued >= MAX_QUEUED or session.queued_bytes + len(raw) > config.max_body_bytes:
        await session.send_error(
            429,
            _error(
                f"Too many response.create messages waiting on this socket (at most "
                f"{MAX_QUEUED}, {config.max_body_bytes} bytes): wait for a response to end.",
                code="too_many_requests",
            ),
            lane,
        )
        return
    generate = body.pop("generate", True)
    if not isinstance(generate, bool):
        await session.send_error(
            400, _error("generate must be a boolean.", param="generate", code="invalid_type"), lane
        )
        return
    body.pop("background", None)
    body["stream"] = True  # implicit on a socket
    turn = _Turn(body, len(raw), large, generate)
    waiting = session.lanes.get(lane)
    if waiting is not None:  # the lane is busy: FIFO behind what runs
        waiting.append(turn)
        session.queued += 1
        session.queued_bytes += turn.size
        return
    session.lanes[lane] = deque()
    tg.start_soon(_run_lane, session, lane, turn)


async def _run_lane(session: _Session, lane: Lane, turn: _Turn) -> None:
    """Run ``turn``, then every turn queued on its lane, one after the other."""
    waiting = session.lanes[lane]
    try:
        while not session.closed.is_set():
            session.running += 1
            try:
                await _run_turn(session, lane, turn)
            except Exception:  # a bug: the socket and its other lanes go on
                logger.exception("a WebSocket turn failed")
                error = _error("Internal server error.", code="server_error")
                await session.send_error(500, {**error, "type": "server_error"}, lane)
            finally:
                session.running -= 1
            if not waiting:
                break
            turn = waiting.popleft()
            session.queued -= 1
            session.queued_bytes -= turn.size
    finally:
        session.queued -= len(waiting)
        session.queued_bytes -= sum(t.size for t in waiting)
        del session.lanes[lane]


async def _run_turn(session: _Session, lane: Lane, turn: _Turn) -> None:
    from .app import start_response

    state = session.state
    body = turn.body
    response_id = f"resp_{secrets.token_hex(12)}"
    previous = body.get("previous_response_id")
    cached = session.cache.get(previous) if isinstance(previous, str) else None
    if isinstance(previous, str) and cached is None and state.stored is None:
        response: Response = not_found(
            previous, param="previous_response_id", code="previous_response_not_found"
        )
    else:
        response = await start_response(
            state,
            session.websocket,
            body,
            response_id,
            large=turn.large,
            local_history=cached.items if cached is not None else None,
            upstream=None if turn.generate else _NO_GENERATION,
        )
    relay = _Relay(session, lane)
    await relay.run(response)
    if relay.terminal is None or relay.terminal.get("status") not in ("completed", "incomplete"):
        if isinstance(previous, str):  # OpenAI's rule: a failed turn evicts what it continued
            session.cache.pop(previous, None)
        return
    output = relay.terminal.get("output") or []
    turn_items = [*input_items(body.get("input")), *output]
    size = turn.size + relay.terminal_size + (cached.size if cached is not None else 0)
    if size > 4 * state.config.max_body_bytes:
        # Too long to keep in memory: the client sends the whole context (or uses the store).
        logger.info("%s not kept on its socket: its chain is %d bytes", response_id, size)
        return
    items = [*(cached.items if cached is not None else ()), *turn_items]
    session.remember(str(relay.terminal.get("id", response_id)), _Cached(items, size))


class _Relay:
    """Runs one ASGI response of the HTTP path against the socket: SSE frames become text
    frames, an error answer becomes an ``error`` event, the socket closing is a disconnect."""

    def __init__(self, session: _Session, lane: Lane) -> None:
        self._session = session
        self._lane = lane
        self._prefix = "{" if lane is None else '{"stream_id":' + json.dumps(lane) + ","
        self._status = 200
        self._buffer = b""
        self._error_body = bytearray()
        #: The ``Response`` of the terminal event, once sent, and that event's size.
        self.terminal: dict[str, Any] | None = None
        self.terminal_size = 0

    async def run(self, response: Response) -> None:
        async def receive() -> Message:
            await self._session.closed.wait()
            return {"type": "http.disconnect"}

        await response({"type": "http"}, receive, self._send)

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._status = message["status"]
            return
        body: bytes = message.get("body", b"")
        if self._status != 200:
            self._error_body += body
            if not message.get("more_body", False):
                await self._send_error()
            return
        self._buffer += body
        *frames, self._buffer = self._buffer.split(b"\n\n")
        for frame in frames:
            await self._send_frame(frame)

    async def _send_frame(self, frame: bytes) -> None:
        if not frame or frame.startswith(b":"):  # a keep-alive comment: WebSocket pings instead
            return
        head, _, data = frame.partition(b"\ndata: ")
        if not data:
            return
        text = data.decode()
        await self._session.send_text(self._prefix + text[1:] if text != "{}" else text)
        if head.removeprefix(b"event: ").decode() in TERMINAL_TYPES:
            self.terminal = json.loads(text).get("response") or {}
            self.terminal_size = len(data)

    async def _send_error(self) -> None:
        try:
            error = json.loads(self._error_body)["error"]
            if not isinstance(error, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            error = _error(
                f"HTTP {self._status}: {self._error_body[:1000].decode(errors='replace')}",
                code="upstream_error",
            )
        await self._session.send_error(self._status, error, self._lane)

"""Where Chat Completions streams come from: a real provider over HTTP, or the scripted model.

Both upstreams answer :meth:`Upstream.open_chat` with an :class:`UpstreamReply`: either a body of
Chat SSE bytes (an async iterator, which the server wraps with :func:`rxresponses.from_bytes`) or an
HTTP error status with its body text. Connection failures raise
:class:`~rxresponses.errors.UpstreamError` (:class:`UpstreamTimeout` for timeouts).

Secrets: every text that comes back from the upstream (error bodies, transport error messages)
passes through a :class:`Redactor`, which masks the API key and the client's bearer token, so a
provider that echoes the key in an error body cannot leak it through this server.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from .. import __version__
from ..errors import UpstreamError
from ..scripted import chat_chunks, chat_sse, turn_for_request
from .config import Secret, ServerConfig

__all__ = [
    "SCRIPTED_MODEL",
    "HttpUpstream",
    "Redactor",
    "ScriptedUpstream",
    "Upstream",
    "UpstreamReply",
    "UpstreamTimeout",
    "make_upstream",
]

#: The model the embedded upstream lists (it answers to any model name).
SCRIPTED_MODEL: Final = "rxresponses-scripted"
#: Most of an upstream error body kept (the rest is cut): enough for any real error message.
_MAX_ERROR_BODY: Final = 64 * 1024
#: Response headers passed on with an upstream error (the SDKs honour them when retrying).
_PASS_HEADERS: Final = ("retry-after", "retry-after-ms")
_MIN_SECRET_LEN: Final = 8
#: Largest JSON answer accepted from an upstream that ignored ``stream: true``.
_MAX_JSON_BODY: Final = 32 * 1024 * 1024


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer (connect or read) within the configured timeout."""


class Redactor:
    """Masks secret strings (API keys, bearer tokens) in text that may reach a client or a log.

    Strings shorter than 8 characters are not treated as secrets (``"test"`` is not a key, and
    masking it everywhere would garble messages).
    """

    __slots__ = ("_secrets",)

    def __init__(self, values: Iterable[str | None] = ()) -> None:
        found = {v for v in values if v and len(v) >= _MIN_SECRET_LEN}
        self._secrets = tuple(sorted(found, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for value in self._secrets:
            if value in text:
                text = text.replace(value, "***")
        return text

    @classmethod
    def for_authorization(cls, authorization: str | None, key: Secret | None = None) -> Redactor:
        """A redactor for an ``Authorization`` header value and a configured key."""
        values: list[str | None] = [key.reveal() if key is not None else None]
        if authorization:
            values.append(authorization)
            scheme, _, token = authorization.partition(" ")
            values.append(token.strip() if token else scheme)
        return cls(values)


@dataclass
class UpstreamReply:
    """An opened upstream call.

    Attributes:
        status_code: The upstream's HTTP status (200 for the embedded model).
        body: The Chat SSE bytes, for a 2xx reply.
        error_text: The (redacted) body of a non-2xx reply.
        headers: Headers to pass on to the client with an error (``retry-after``).
    """

    status_code: int
    body: AsyncIterator[bytes] | None = None
    error_text: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    _close: Callable[[], Awaitable[None]] | None = None

    @property
    def ok(self) -> bool:
        """Whether the upstream accepted the request (2xx)."""
        return 200 <= self.status_code < 300

    async def aclose(self) -> None:
        """Release the upstream connection (idempotent)."""
        close, self._close = self._close, None
        if close is not None:
            await close()


class Upstream:
    """Base class of the upstreams (see the module docstring)."""

    async def open_chat(
        self, request: Mapping[str, Any], authorization: str | None, redact: Redactor
    ) -> UpstreamReply:
        """Send a Chat Completions request (``stream: true``); return once headers are in."""
        raise NotImplementedError

    async def models(
        self, authorization: str | None, redact: Redactor, model_id: str | None = None
    ) -> tuple[int, bytes, str]:
        """``GET /models`` (or ``/models/{model_id}``): ``(status, body, content type)``."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release pooled connections."""


class HttpUpstream(Upstream):
    """A Chat Completions provider over HTTP (one pooled ``httpx.AsyncClient`` per process).

    The client is created on first use, on the running loop, and closed by :meth:`aclose`.
    """

    def __init__(
        self, config: ServerConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if config.upstream is None:
            raise ValueError("HttpUpstream needs config.upstream")
        self._base = config.upstream.rstrip("/")
        self._config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            cfg = self._config
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(
                    connect=min(cfg.upstream_timeout, 30.0),
                    read=cfg.upstream_timeout,
                    write=60.0,
                    pool=cfg.upstream_timeout,
                ),
                # As many connections as requests can be in flight (the app bounds them), so
                # none waits in the pool; as many kept alive, so a busy server reuses them.
                limits=httpx.Limits(
                    max_connections=cfg.pool_size, max_keepalive_connections=cfg.pool_size
                ),
                headers={"user-agent": f"rxresponses/{__version__}"},
                follow_redirects=False,
            )
        return self._client

    @staticmethod
    def _headers(authorization: str | None, accept: str) -> dict[str, str]:
        headers = {"accept": accept}
        if authorization:
            headers["authorization"] = authorization
        return headers

    async def open_chat(
        self, request: Mapping[str, Any], authorization: str | None, redact: Redactor
    ) -> UpstreamReply:
        client = self._http()
        headers = self._headers(authorization, "text/event-stream")
        headers["content-type"] = "application/json"
        content = json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode()
        http_request = client.build_request(
            "POST", f"{self._base}/chat/completions", content=content, headers=headers
        )
        try:
            response = await client.send(http_request, stream=True)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, redact) from None
        if not response.is_success:
            try:
                text = await _read_text(response)
            except httpx.HTTPError:
                text = ""
            finally:
                await response.aclose()
            passed = {k: v for k in _PASS_HEADERS if (v := response.headers.get(k)) is not None}
            return UpstreamReply(response.status_code, error_text=redact(text), headers=passed)
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type == "application/json":  # the upstream ignored ``stream: true``
            body = _completion_body(response, redact)
        else:
            body = _body(response, redact)
        return UpstreamReply(response.status_code, body=body, _close=response.aclose)

    async def models(
        self, authorization: str | None, redact: Redactor, model_id: str | None = None
    ) -> tuple[int, bytes, str]:
        url = f"{self._base}/models" + (f"/{model_id}" if model_id else "")
        try:
            response = await self._http().get(
                url, headers=self._headers(authorization, "application/json")
            )
        except httpx.HTTPError as exc:
            raise _transport_error(exc, redact) from None
        content_type = response.headers.get("content-type", "application/json")
        body = response.content
        if not response.is_success:
            body = redact(body.decode("utf-8", "replace")).encode()
        return response.status_code, body, content_type

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


async def _read_text(response: httpx.Response) -> str:
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= _MAX_ERROR_BODY:
            break
    return bytes(data[:_MAX_ERROR_BODY]).decode("utf-8", "replace")


async def _body(response: httpx.Response, redact: Redactor) -> AsyncIterator[bytes]:
    """The response body; a broken connection becomes a (redacted) :class:`UpstreamError`."""
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    except httpx.HTTPError as exc:
        raise _transport_error(exc, redact) from None
    finally:
        await response.aclose()


async def _completion_body(response: httpx.Response, redact: Redactor) -> AsyncIterator[bytes]:
    """A JSON answer to a streaming request, as Chat SSE: one chunk holding the whole message.

    Some servers ignore ``stream: true`` and answer one ``chat.completion`` object; it is turned
    into the equivalent chunk (``message`` as ``delta``, tool calls indexed, usage kept). A JSON
    ``error`` object becomes an error chunk, so the stream fails with its message.
    """
    data = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > _MAX_JSON_BODY:
                raise UpstreamError("upstream answered a JSON body larger than 32 MiB")
        payload = json.loads(bytes(data))
    except httpx.HTTPError as exc:
        raise _transport_error(exc, redact) from None
    except ValueError:
        raise UpstreamError("upstream answered a body that is neither SSE nor JSON") from None
    finally:
        await response.aclose()
    text = redact(json.dumps(completion_to_chunk(payload), ensure_ascii=False))
    yield f"data: {text}\n\ndata: [DONE]\n\n".encode()


def completion_to_chunk(payload: Any) -> dict[str, Any]:
    """A ``chat.completion`` object (non-streaming answer) as one ``chat.completion.chunk``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, dict):
            error = {"message": "upstream answered JSON that is not a chat completion"}
        return {"error": error}
    choices = []
    for position, choice in enumerate(payload["choices"]):
        if not isinstance(choice, dict):
            continue
        delta = dict(choice.get("message") or {})
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            delta["tool_calls"] = [
                {**call, "index": i} for i, call in enumerate(calls) if isinstance(call, dict)
            ]
        choices.append(
            {
                "index": choice.get("index", position),
                "delta": delta,
                "logprobs": choice.get("logprobs"),
                "finish_reason": choice.get("finish_reason") or "stop",
            }
        )
    return {
        "id": payload.get("id", ""),
        "object": "chat.completion.chunk",
        "created": payload.get("created", 0),
        "model": payload.get("model", ""),
        "choices": choices,
        "usage": payload.get("usage"),
    }


def _transport_error(exc: httpx.HTTPError, redact: Redactor) -> UpstreamError:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(redact(f"upstream timed out ({type(exc).__name__})"))
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return UpstreamError(redact(f"upstream connection broken: {detail}"))
    return UpstreamError(redact(f"upstream connection failed: {detail}"))


class ScriptedUpstream(Upstream):
    """The embedded default upstream: :mod:`rxresponses.scripted` answers every request.

    It accepts any model name, calls the first function tool when tools are offered, answers with
    the tool result after a ``tool`` message, honours ``max_tokens`` (``finish_reason: length``),
    and streams one chunk every ``delay`` seconds, like a (fast) real model. No network, no key.
    """

    def __init__(self, delay: float = 0.005) -> None:
        self._delay = delay

    async def open_chat(
        self, request: Mapping[str, Any], authorization: str | None, redact: Redactor
    ) -> UpstreamReply:
        turn = turn_for_request(request)
        options = request.get("stream_options") or {}
        prompt_chars = sum(len(json.dumps(m.get("content"))) for m in request.get("messages", ()))
        chunks = chat_chunks(
            turn,
            model=str(request.get("model") or SCRIPTED_MODEL),
            completion_id=f"chatcmpl-{secrets.token_hex(12)}",
            created=int(time.time()),
            prompt_tokens=max(1, prompt_chars // 4),
            include_usage=bool(options.get("include_usage")),
        )
        return UpstreamReply(200, body=self._stream(chat_sse(chunks)))

    async def _stream(self, frames: Iterable[bytes]) -> AsyncIterator[bytes]:
        if not self._delay:
            # No delay: the whole answer in one read, as from a fast server (tests, benchmarks).
            yield b"".join(frames)
            return
        first = True
        for frame in frames:
            if not first:
                await asyncio.sleep(self._delay)
            first = False
            yield frame

    async def models(
        self, authorization: str | None, redact: Redactor, model_id: str | None = None
    ) -> tuple[int, bytes, str]:
        entry = {
            "id": model_id or SCRIPTED_MODEL,
            "object": "model",
            "created": 1_750_000_000,
            "owned_by": "rxresponses",
        }
        body: Any = entry if model_id else {"object": "list", "data": [entry]}
        return 200, json.dumps(body).encode(), "application/json"


def make_upstream(
    config: ServerConfig, *, transport: httpx.AsyncBaseTransport | None = None
) -> Upstream:
    """The upstream ``config`` asks for: :class:`HttpUpstream` or :class:`ScriptedUpstream`."""
    if config.upstream is None:
        return ScriptedUpstream(config.scripted_delay)
    return HttpUpstream(config, transport=transport)

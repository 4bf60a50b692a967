"""Where Chat Completions streams come from: a real provider over HTTP, or the scripted model.

Both upstreams answer :meth:`Upstream.open_chat` with an :class:`UpstreamReply`: either a body of
Chat SSE bytes (an async iterator, which the server wraps with :func:`rxresponses.from_bytes`) or an
HTTP error status with its (cleaned) error body. Connection failures raise
:class:`~rxresponses.errors.UpstreamError` (:class:`UpstreamTimeout` for timeouts).

What the HTTP upstream guarantees (``rxresponses serve`` in front of an untrusted provider):

* **Paths.** Only ``{upstream}/chat/completions`` and ``{upstream}/models[/{id}]`` are requested,
  never with a query; a model id is sent as exactly one percent-encoded path segment
  (:func:`model_path_segment`), and ``.`` / ``..`` ids are refused.
* **Secrets.** Every text from the upstream that can reach a client (error bodies, the model list,
  transport error messages, error chunks mid-stream) goes through a :class:`Redactor`, which masks
  the API key, the client's bearer token and the upstream URL's credentials in any encoding
  (raw, JSON ``\\u`` escapes, percent-encoding, HTML character references, base64). URL
  credentials never reach httpx: they are sent as an ``Authorization: Basic`` header built here,
  so they cannot appear in httpx's log lines; and :class:`SecretLogFilter` masks the same secrets
  in every record of the HTTP libraries' loggers (httpx, httpcore, h11, hpack) and the server's.
* **Bounded bodies.** Compressed bodies (``gzip``, ``deflate``) are inflated here, at most 64 KiB
  per step, so a decompression bomb costs no more memory than the limits say: error bodies are
  read to 64 KiB of *decoded* text, the model list to 16 MiB.
* **Clean errors.** An error body is reduced to the upstream's ``error.message`` (at most 1,000
  characters, without a Python traceback), ``type``, ``param`` and ``code``
  (:func:`clean_error_body`); anything else in it (stack traces, file paths, other keys) is dropped.
* **Deadline.** With ``upstream_deadline``, a stream that has not ended that many seconds after
  the request was sent fails with :class:`UpstreamTimeout`, whatever the upstream keeps sending.
* **Connections handed back.** Once ``data: [DONE]`` went by, closing the body first reads what is
  left of it (at most 64 KiB, 1 s), in a task of its own that a cancelled reader does not abort, so
  httpx can put the connection back into its pool instead of closing it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import json
import logging
import re
import secrets
import time
import weakref
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit

import httpx

from .. import __version__
from ..errors import UpstreamError
from ..scripted import chat_chunks, chat_sse, turn_for_request
from ._http11 import BODY_EXTENSION, LeanTransport
from ._request import error_body
from .config import Secret, ServerConfig

__all__ = [
    "SCRIPTED_MODEL",
    "HttpUpstream",
    "Redactor",
    "ScriptedUpstream",
    "SecretLogFilter",
    "Upstream",
    "UpstreamReply",
    "UpstreamTimeout",
    "clean_error_body",
    "install_log_filter",
    "make_upstream",
    "model_path_segment",
]

#: The model the embedded upstream lists (it answers to any model name).
SCRIPTED_MODEL: Final = "rxresponses-scripted"
#: Most of an upstream error body read, decoded (the rest is not read): enough for any message.
_MAX_ERROR_BODY: Final = 64 * 1024
#: Longest ``error.message`` passed on to the client.
_MAX_ERROR_MESSAGE: Final = 1000
#: Longest ``type`` / ``code`` / ``param`` passed on, and longest excerpt of a non-JSON error body.
_MAX_ERROR_FIELD: Final = 200
#: Response headers passed on with an upstream error (the SDKs honour them when retrying).
_PASS_HEADERS: Final = ("retry-after", "retry-after-ms")
_MIN_SECRET_LEN: Final = 8
#: Largest JSON answer accepted from an upstream that ignored ``stream: true``.
_MAX_JSON_BODY: Final = 32 * 1024 * 1024
#: Largest model list (``GET /models``) accepted, decoded.
_MAX_MODELS_BODY: Final = 16 * 1024 * 1024
#: Most bytes one inflate step produces (a compressed network read can hold gigabytes).
_INFLATE_STEP: Final = 64 * 1024
#: What closing a finished stream may still read so that the connection can be reused.
_DRAIN_BYTES: Final = 64 * 1024
_DRAIN_SECONDS: Final = 1.0
#: The Content-Encodings this module inflates itself (and asks for).
_ACCEPT_ENCODING: Final = "gzip, deflate"
_DONE_LINE: Final = re.compile(rb"[\r\n]data: ?\[DONE\]")
_TRACEBACK: Final = "Traceback (most recent call last)"
_TAG: Final = re.compile(r"<[^>]{0,1000}>")

#: The redactor of the request being served (set where the request goes upstream): the log filter
#: masks its secrets (the client's key) in what the HTTP libraries log for that request.
_REQUEST_REDACTOR: contextvars.ContextVar[Redactor | None] = contextvars.ContextVar(
    "rxresponses_request_redactor", default=None
)
#: Redactors of secrets that are the process's (configured keys, upstream URL credentials).
_PROCESS_REDACTORS: weakref.WeakSet[Redactor] = weakref.WeakSet()
#: Tasks that finish closing an upstream body after their caller moved on (kept referenced).
_CLOSING: set[asyncio.Task[None]] = set()


#: What a request sent on a pooled connection the upstream had closed fails with, before any answer.
_STALE_CONNECTION: Final = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer (connect or read) within the configured timeout."""


# ------------------------------------------------------------------------------------------------
# Secrets
# ------------------------------------------------------------------------------------------------


def _hex(value: int, width: int) -> str:
    """``value`` in hex as a pattern that matches upper and lower case digits."""
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{value:0{width}x}")


def _char_pattern(char: str) -> str:
    """A pattern for one character of a secret in any of the encodings :class:`Redactor` masks."""
    code = ord(char)
    options = [re.escape(char)]
    if code > 0xFFFF:  # JSON writes it as a surrogate pair
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        options.append(rf"\\u{_hex(high, 4)}\\u{_hex(low, 4)}")
    else:
        options.append(rf"\\u{_hex(code, 4)}")
    short = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n"}
    short.update({"\r": "\\r", "\t": "\\t"})
    if char in short:
        options.append(re.escape(short[char]))
    options.append("".join(f"%{_hex(b, 2)}" for b in char.encode("utf-8", "surrogatepass")))
    if char == " ":
        options.append(r"\+")
    options.append(f"&#0*{code};")
    options.append(f"&#[xX]0*{_hex(code, 1)};")
    return "(?:" + "|".join(options) + ")"


def _base64_forms(value: str) -> set[str]:
    """Base64 (standard and URL-safe) of ``value`` at each of the 3 alignments it can have."""
    data = value.encode("utf-8", "surrogatepass")
    forms: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode()
        # Drop the characters that also depend on neighbouring bytes (the first group when
        # shifted, the last incomplete group): what is left is in every encoding of the value.
        start = 4 if shift else 0
        stop = ((shift + len(data)) // 3) * 4
        if shift == 0 and len(data) % 3 == 0:
            stop = len(encoded)
        core = encoded[start:stop]
        if shift == 0:  # the value encoded on its own (Basic credentials), with and without "="
            forms |= {encoded, encoded.rstrip("=")}
        if len(core) >= _MIN_SECRET_LEN:
            forms.add(core)
    forms |= {f.replace("+", "-").replace("/", "_") for f in forms}
    return forms


class Redactor:
    """Masks secret strings (API keys, bearer tokens, credentials) in text for a client or a log.

    A secret is masked in every encoding a provider may echo it in: as is, with any of its
    characters JSON-escaped (``\\u0073k-...``, ``\\/``), percent-encoded or written as an HTML
    character reference (mixed freely), and in base64 (as ``Authorization: Basic`` carries
    ``user:password``). Strings shorter than 8 characters are not treated as secrets (``"test"`` is
    not a key, and masking it everywhere would garble messages).
    """

    __slots__ = ("__weakref__", "_pattern", "_plain", "_secrets")

    def __init__(self, values: Iterable[str | None] = ()) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._plain: tuple[str, ...] = ()
        self._pattern: re.Pattern[str] | None = None
        self.extend(values)

    def extend(self, values: Iterable[str | None]) -> None:
        """Mask ``values`` too (short or empty ones are ignored)."""
        found = {v for v in values if v and len(v) >= _MIN_SECRET_LEN}
        if found <= self._secrets:
            return
        self._secrets |= found
        plain = set(self._secrets)
        for value in self._secrets:
            plain |= _base64_forms(value)
        self._plain = tuple(sorted(plain, key=len, reverse=True))
        self._pattern = None  # compiled when first needed (most requests never need it)

    def merge(self, other: Redactor) -> None:
        """Mask ``other``'s secrets too."""
        self.extend(other._secrets)

    @property
    def empty(self) -> bool:
        """Whether there is nothing to mask."""
        return not self._secrets

    def __call__(self, text: str) -> str:
        if not self._plain or not text:
            return text
        if "\\" not in text and "%" not in text and "&" not in text:
            for value in self._plain:  # no escapes in the text: only the plain forms can occur
                if value in text:
                    text = text.replace(value, "***")
            return text
        if self._pattern is None:
            self._pattern = re.compile(
                "|".join("".join(_char_pattern(c) for c in value) for value in self._plain)
            )
        return self._pattern.sub("***", text)

    def json_bytes(self, body: bytes) -> bytes:
        """Mask a JSON body by value: parse it, mask every string (keys too), serialize it again.

        A body that is not JSON (or too deeply nested to parse) is masked as text.
        """
        if not self._plain:
            return body
        try:
            parsed = json.loads(body)
            return json.dumps(self._mask_strings(parsed), ensure_ascii=False).encode()
        except (ValueError, RecursionError):
            return self(body.decode("utf-8", "replace")).encode()

    def _mask_strings(self, value: Any) -> Any:
        """``value`` (parsed JSON) with every string masked; iterative, so any depth works."""
        root: list[Any] = [value]
        stack: list[tuple[Any, Any]] = [(root, 0)]
        while stack:
            container, key = stack.pop()
            item = container[key]
            if isinstance(item, str):
                container[key] = self(item)
            elif isinstance(item, list):
                stack.extend((item, i) for i in range(len(item)))
            elif isinstance(item, dict):
                masked = {self(k): v for k, v in item.items()}
                container[key] = masked
                stack.extend((masked, k) for k in masked)
        return root[0]

    @classmethod
    def for_authorization(cls, authorization: str | None, key: Secret | None = None) -> Redactor:
        """A redactor for an ``Authorization`` header value and a configured key."""
        values: list[str | None] = [key.reveal() if key is not None else None]
        if authorization:
            values.append(authorization)
            scheme, _, token = authorization.partition(" ")
            values.append(token.strip() if token else scheme)
        return cls(values)


class SecretLogFilter(logging.Filter):
    """Masks secrets in log records: the process's (configured key, upstream URL credentials) and
    those of the request being served (the client's key), in the message and its arguments.

    Installed by :func:`install_log_filter` on the loggers of the HTTP libraries and the server
    and on every handler configured at that time, so a key echoed in an upstream response header
    (which httpcore logs at DEBUG) or in an exception message never reaches a log line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        redactors = list(_PROCESS_REDACTORS)
        current = _REQUEST_REDACTOR.get()
        if current is not None:
            redactors.append(current)
        redactors = [r for r in redactors if not r.empty]
        if not redactors:
            return True

        def mask(text: str) -> str:
            for redact in redactors:
                text = redact(text)
            return text

        try:
            message = record.getMessage()
        except Exception:  # a broken format: let the handler report it as usual
            return True
        masked = mask(message)
        if masked != message:
            args = record.args
            if isinstance(args, tuple) and all(isinstance(a, str | int | float) for a in args):
                # Keep the shape (uvicorn's access formatter unpacks the arguments).
                new_args = tuple(mask(a) if isinstance(a, str) else a for a in args)
                new_msg = mask(str(record.msg))
                try:
                    ok = (new_msg % new_args if new_args else new_msg) == masked
                except (TypeError, ValueError):
                    ok = False
                if ok:
                    record.msg, record.args = new_msg, new_args
                else:
                    record.msg, record.args = masked, ()
            else:
                record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


#: The loggers the filter goes on (their records are filtered before any handler sees them).
_FILTERED_LOGGERS: Final = (
    "httpx",
    "httpcore",
    "h11",
    "h2",
    "hpack",
    "rxresponses",
    "uvicorn",
    "asyncio",
)
_LOG_FILTER: Final = SecretLogFilter()


def install_log_filter() -> None:
    """Put :class:`SecretLogFilter` on the HTTP libraries' and the server's loggers (and their
    existing children) and on every handler configured now. Idempotent."""
    manager = logging.Logger.manager
    names = set(_FILTERED_LOGGERS)
    names.update(
        name
        for name in list(manager.loggerDict)
        if any(name.startswith(prefix + ".") for prefix in _FILTERED_LOGGERS)
    )
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [logging.getLogger(name) for name in sorted(names)]
    for name, item in list(manager.loggerDict.items()):
        if isinstance(item, logging.Logger) and item.handlers and name not in names:
            loggers.append(item)
    for logger in loggers:
        if logger.name in names and _LOG_FILTER not in logger.filters:
            logger.addFilter(_LOG_FILTER)
        for handler in logger.handlers:
            if _LOG_FILTER not in handler.filters:
                handler.addFilter(_LOG_FILTER)


# ------------------------------------------------------------------------------------------------
# Paths and error bodies
# ------------------------------------------------------------------------------------------------


def model_path_segment(model_id: str) -> str | None:
    """``model_id`` as one percent-encoded path segment, or ``None`` for an id no model has.

    Every character but the unreserved ones (letters, digits, ``-._~``) is encoded, ``/``, ``\\``,
    ``?``, ``#`` and ``%`` included, so the id cannot leave ``/models/`` nor add a query. Ids made
    only of dots (``.``, ``..``) are refused: HTTP clients and servers resolve those segments.
    """
    if not model_id or not model_id.strip("."):
        return None
    try:
        return quote(model_id.encode("utf-8"), safe="")
    except UnicodeEncodeError:  # a lone surrogate: not a model id
        return None


def _bounded(value: Any, limit: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _excerpt(text: str) -> str:
    """A short one-line excerpt of a non-JSON error body: no tags, no traceback."""
    for line in _TAG.sub(" ", text).splitlines():
        line = " ".join(line.split())
        if line:
            if line.startswith(_TRACEBACK) or line.startswith('File "'):
                return ""
            return _bounded(line, _MAX_ERROR_FIELD) or ""
    return ""


def clean_error_body(status: int, text: str, redact: Redactor) -> dict[str, Any]:
    """What an upstream error body may tell a client: an OpenAI-style error object.

    From a JSON body (``{"error": {...}}``, ``{"error": "..."}`` or a top-level ``message``) the
    ``message`` (masked, cut before a Python traceback, at most 1,000 characters), ``type``,
    ``param`` and ``code`` are kept; everything else is dropped. Any other body (HTML, plain text,
    JSON too deeply nested to parse) becomes ``upstream returned HTTP {status}`` with at most a
    short, masked, one-line excerpt.
    """
    default_type = "server_error" if status >= 500 else "invalid_request_error"
    generic = f"upstream returned HTTP {status}"
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    error: Any = None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, str):
            error = {"message": error}
        elif not isinstance(error, dict) and isinstance(parsed.get("message"), str):
            error = parsed
        elif not isinstance(error, dict) and isinstance(parsed.get("detail"), str):
            error = {"message": parsed["detail"]}  # FastAPI's shape
    if not isinstance(error, dict):
        excerpt = _excerpt(redact(text))
        generic += f": {excerpt}" if excerpt else ""
        return error_body(generic, type=default_type, code="upstream_error")
    message: str | None = None
    if isinstance(error.get("message"), str):
        message = redact(error["message"])
        cut = message.find(_TRACEBACK)
        message = message[:cut].rstrip() if cut >= 0 else message

    def field(name: str) -> str | None:
        value = _bounded(error.get(name), _MAX_ERROR_FIELD)
        return None if value is None else redact(value)

    return {
        "error": {
            "message": _bounded(message, _MAX_ERROR_MESSAGE) or generic,
            "type": field("type") or default_type,
            "param": field("param"),
            "code": field("code"),
        }
    }


# ------------------------------------------------------------------------------------------------
# Bodies: bounded inflation, bounded reads
# ------------------------------------------------------------------------------------------------


class _Inflater:
    """Decodes a body's Content-Encoding (identity, gzip, deflate) at most 64 KiB per step.

    httpx inflates a whole network read at once (a 64 KiB read of a bomb is gigabytes), so bodies
    are read raw and inflated here: :meth:`read` never returns more than :data:`_INFLATE_STEP`.
    """

    def __init__(self, content_encoding: str) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        codings = [c for c in codings if c not in ("", "identity")]
        self._raw_deflate_tried = False
        self._deflate = False
        self._zlib: Any = None
        if not codings:
            pass
        elif codings in (["gzip"], ["x-gzip"]):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif codings == ["deflate"]:
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS)
            self._deflate = True
        else:
            raise UpstreamError(
                f"upstream sent an unsupported Content-Encoding {content_encoding[:100]!r}"
            )
        self._input = b""
        self._more = False
        self._started = False

    def feed(self, data: bytes) -> None:
        self._input = self._input + data if self._input else data

    def read(self) -> bytes:
        """Up to 64 KiB of decoded bytes; ``b""`` when more input is needed."""
        if self._zlib is None:
            data, self._input = self._input, b""
            return data
        if not self._input and not self._more:
            return b""
        try:
            out = self._zlib.decompress(self._input, _INFLATE_STEP)
        except zlib.error:
            if self._deflate and not self._started and not self._raw_deflate_tried:
                self._raw_deflate_tried = True  # some servers send raw deflate, no zlib header
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.read()
            raise UpstreamError("upstream sent a body that does not decompress") from None
        self._started = True
        self._input = self._zlib.unconsumed_tail
        self._more = len(out) == _INFLATE_STEP
        if self._zlib.eof:
            self._input, self._more = b"", False
        return bytes(out)


def _raw_body(response: httpx.Response) -> tuple[AsyncIterator[bytes], str]:
    """The body as received and its Content-Encoding.

    A response already read into memory (``httpx.MockTransport`` in tests builds those) has its
    content decoded already: it comes as one chunk with no encoding.
    """
    if response.is_stream_consumed:

        async def loaded() -> AsyncIterator[bytes]:
            yield response.content

        return loaded(), ""
    encoding = response.headers.get("content-encoding", "")
    lean: AsyncIterator[bytes] | None = response.extensions.get(BODY_EXTENSION)
    if lean is not None:  # the lean transport's body, read without httpx's wrappers
        return lean, encoding
    return response.aiter_raw(), encoding


async def _read_limited(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """The decoded body, at most ``limit`` bytes; and whether there was more."""
    raw, encoding = _raw_body(response)
    inflater = _Inflater(encoding)
    data = bytearray()
    async for chunk in raw:
        inflater.feed(chunk)
        while piece := inflater.read():
            data += piece
            if len(data) > limit:
                return bytes(data[:limit]), True
    return bytes(data), False


async def _error_text(response: httpx.Response) -> str:
    """The first 64 KiB of a decoded error body as text (``""`` if it cannot be read)."""
    try:
        data, cut = await _read_limited(response, _MAX_ERROR_BODY)
    except (httpx.HTTPError, UpstreamError):
        return ""
    if cut:  # a secret cut in two at the end would not be masked: drop the tail
        data = data[: -1024 or None]
    return data.decode("utf-8", "replace")


class _Body:
    """The SSE body of a 2xx answer, as an async iterator of decoded bytes (see the module doc).

    * Inflated at most 64 KiB at a time.
    * With a deadline (loop time), reading past it raises :class:`UpstreamTimeout`.
    * :meth:`aclose` hands the connection back to the pool when ``data: [DONE]`` went by: it reads
      the rest of the body (bounded) before closing, and reads after ``[DONE]`` run in a task of
      their own, so a reader cancelled at that point does not make httpx drop the connection.
      Before ``[DONE]`` (the client left), closing closes the connection at once.
    """

    def __init__(
        self,
        response: httpx.Response,
        redact: Redactor,
        deadline: float | None,
        deadline_seconds: float,
    ) -> None:
        self._response = response
        self._redact = redact
        self._deadline = deadline
        self._deadline_seconds = deadline_seconds
        self._timer: asyncio.TimerHandle | None = None
        self._past_deadline = False
        self._reading: asyncio.Task[Any] | None = None
        self._raw, self._encoding = _raw_body(response)
        self._inflater: _Inflater | None = None
        self._tail = b"\n"
        self._done_seen = False
        self._ended = False
        self._read: asyncio.Future[bytes | None] | None = None
        self._closing: asyncio.Task[None] | None = None

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        if self._inflater is None:
            self._inflater = _Inflater(self._encoding)
        try:
            while True:
                piece = self._inflater.read()
                if piece:
                    self._watch(piece)
                    return piece
                if self._ended or self._closing is not None:
                    raise StopAsyncIteration
                chunk = await self._next_raw()
                if chunk is None:
                    self._ended = True
                else:
                    self._inflater.feed(chunk)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self._redact) from None

    def _watch(self, piece: bytes) -> None:
        """Notice ``data: [DONE]`` (also when split between two pieces)."""
        if self._done_seen:
            return
        if b"[DONE]" in piece or b"DONE]" in self._tail + piece[:6]:
            self._done_seen = _DONE_LINE.search(self._tail + piece) is not None
        self._tail = piece[-16:] if len(piece) >= 16 else (self._tail + piece)[-16:]

    async def _next_raw(self) -> bytes | None:
        if self._done_seen:  # the rest is read by a task a cancelled reader does not abort
            read = self._shared_read()
            chunk = await asyncio.shield(read)
            if self._read is read:
                self._read = None
            return chunk
        if self._deadline is None:
            return await self._raw_step()
        if self._timer is None:
            # One timer for the whole stream (a timer per read cost more than a read): when it
            # fires during a read, it cancels the reading task, and the read fails with
            # UpstreamTimeout; between two reads, the next read does.
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(self._deadline, self._on_deadline)
        if self._past_deadline:
            raise self._expired()
        task = self._reading = asyncio.current_task()
        try:
            return await self._raw_step()
        except asyncio.CancelledError:
            if self._past_deadline and task is not None and task.uncancel() == 0:
                raise self._expired() from None
            raise  # (someone else's cancellation too)
        finally:
            self._reading = None

    def _on_deadline(self) -> None:
        self._past_deadline = True
        if self._reading is not None:
            self._reading.cancel()

    def _expired(self) -> UpstreamTimeout:
        return UpstreamTimeout(
            f"the upstream stream did not end within {self._deadline_seconds:g} s "
            "(--upstream-deadline)"
        )

    def _shared_read(self) -> asyncio.Future[bytes | None]:
        """The read in flight (the reader's and :meth:`aclose`'s drain share it), or a new one."""
        if self._read is None:
            self._read = asyncio.ensure_future(self._raw_step())
        return self._read

    async def _raw_step(self) -> bytes | None:
        try:
            return await self._raw.__anext__()
        except StopAsyncIteration:
            return None

    async def aclose(self) -> None:
        """Release the connection (idempotent): back to the pool after ``[DONE]``, else closed."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._finish())
            _CLOSING.add(self._closing)
            self._closing.add_done_callback(_closed)
        await asyncio.shield(self._closing)

    async def _finish(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        try:
            if self._done_seen and not self._ended:
                # Too slow or broken: then the connection is closed, which is all that is lost.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._drain(), _DRAIN_SECONDS)
        finally:
            read, self._read = self._read, None
            if read is not None:
                if not read.done():
                    read.cancel()
                    await asyncio.wait([read], timeout=_DRAIN_SECONDS)
                if read.done() and not read.cancelled():
                    read.exception()  # retrieved: an abandoned read's failure is not news
            await self._response.aclose()

    async def _drain(self) -> None:
        total = 0
        while total <= _DRAIN_BYTES:
            read = self._shared_read()
            chunk = await read
            if self._read is read:
                self._read = None
            if chunk is None:
                self._ended = True
                return
            total += len(chunk)


def _closed(task: asyncio.Task[None]) -> None:
    _CLOSING.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger("rxresponses.server").debug(
            "closing an upstream response failed: %r", task.exception()
        )


@dataclass
class UpstreamReply:
    """An opened upstream call.

    Attributes:
        status_code: The upstream's HTTP status (200 for the embedded model).
        body: The Chat SSE bytes, for a 2xx reply.
        error_text: For a non-2xx reply, the JSON text of an OpenAI-style error object built from
            the upstream's body by :func:`clean_error_body` (masked, bounded).
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
        """Release the upstream connection (idempotent).

        After a stream that ended (``data: [DONE]``), the connection goes back to the pool; after
        a stream cut short (the client left), it is closed.
        """
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
    Credentials in the upstream URL (``https://user:password@host/v1``) are taken out of it and
    sent as an ``Authorization: Basic`` header (which, as before, takes the place of a key).
    """

    def __init__(
        self, config: ServerConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if config.upstream is None:
            raise ValueError("HttpUpstream needs config.upstream")
        parts = urlsplit(config.upstream)
        userinfo, _, host = parts.netloc.rpartition("@")
        self._basic: str | None = None
        secrets_: list[str | None] = []
        if userinfo:
            user, _, password = userinfo.partition(":")
            plain = f"{unquote(user)}:{unquote(password)}"
            token = base64.b64encode(plain.encode()).decode()
            self._basic = "Basic " + token
            secrets_ += [userinfo, plain, unquote(user), unquote(password), user, password]
            secrets_ += [token, self._basic]
        try:
            key = config.resolve_api_key()
        except ValueError:  # the app reports it
            key = None
        if key is not None:
            secrets_ += [key.reveal(), f"Bearer {key.reveal()}"]
        #: The process's own secrets, masked in whatever this upstream sends back or logs.
        self._secrets = Redactor(secrets_)
        _PROCESS_REDACTORS.add(self._secrets)
        install_log_filter()
        self._base = parts._replace(netloc=host).geturl().rstrip("/")
        self._config = config
        self._deadline = config.upstream_deadline or None
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            cfg = self._config
            transport = self._transport
            if transport is None and cfg.upstream_client == "lean":
                transport = LeanTransport(
                    max_connections=cfg.pool_size, max_keepalive_connections=cfg.pool_size
                )
            self._client = httpx.AsyncClient(
                transport=transport,
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

    def _headers(self, authorization: str | None, accept: str) -> dict[str, str]:
        headers = {"accept": accept, "accept-encoding": _ACCEPT_ENCODING}
        if self._basic is not None:
            headers["authorization"] = self._basic
        elif authorization:
            headers["authorization"] = authorization
        return headers

    def _prepare(self, redact: Redactor) -> None:
        """Make ``redact`` (and the log filter, for this request) mask the process's secrets."""
        redact.merge(self._secrets)
        _REQUEST_REDACTOR.set(redact)  # this request's task (and the tasks it starts) only

    def _timed_out(self) -> UpstreamTimeout:
        return UpstreamTimeout(
            f"the upstream did not answer within {self._deadline:g} s (--upstream-deadline)"
        )

    async def open_chat(
        self, request: Mapping[str, Any], authorization: str | None, redact: Redactor
    ) -> UpstreamReply:
        self._prepare(redact)
        client = self._http()
        headers = self._headers(authorization, "text/event-stream")
        headers["content-type"] = "application/json"
        content = json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode()
        http_request = client.build_request(
            "POST", f"{self._base}/chat/completions", content=content, headers=headers
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadline if self._deadline else None
        try:
            async with asyncio.timeout_at(deadline):
                response = await client.send(http_request, stream=True)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, redact) from None
        except TimeoutError:
            raise self._timed_out() from None
        if not response.is_success:
            try:
                async with asyncio.timeout_at(deadline):
                    text = await _error_text(response)
            except TimeoutError:
                text = ""
            finally:
                await response.aclose()
            passed = {k: v for k in _PASS_HEADERS if (v := response.headers.get(k)) is not None}
            error = clean_error_body(response.status_code, text, redact)
            return UpstreamReply(response.status_code, error_text=json.dumps(error), headers=passed)
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type == "application/json":  # the upstream ignored ``stream: true``
            return UpstreamReply(
                response.status_code,
                body=_completion_body(response, redact),
                _close=response.aclose,
            )
        body = _Body(response, redact, deadline, self._deadline or 0.0)
        return UpstreamReply(response.status_code, body=body, _close=body.aclose)

    async def models(
        self, authorization: str | None, redact: Redactor, model_id: str | None = None
    ) -> tuple[int, bytes, str]:
        self._prepare(redact)
        url = f"{self._base}/models"
        if model_id:
            segment = model_path_segment(model_id)
            if segment is None:
                body = error_body(
                    "The model does not exist.", param="model", code="model_not_found"
                )
                return 404, json.dumps(body).encode(), "application/json"
            url += "/" + segment
        client = self._http()
        http_request = client.build_request(
            "GET", url, headers=self._headers(authorization, "application/json")
        )
        data, cut, text = b"", False, ""
        try:
            async with asyncio.timeout(self._deadline):
                try:
                    response = await client.send(http_request, stream=True)
                except _STALE_CONNECTION:
                    # A pooled connection the upstream closed while it was idle fails before any
                    # answer; a GET is safe to send once more (on a new connection, if need be).
                    response = await client.send(http_request, stream=True)
                try:
                    if response.is_success:
                        data, cut = await _read_limited(response, _MAX_MODELS_BODY)
                    else:
                        text = await _error_text(response)
                finally:
                    await response.aclose()
        except httpx.HTTPError as exc:
            raise _transport_error(exc, redact) from None
        except TimeoutError:
            raise self._timed_out() from None
        if not response.is_success:
            error = clean_error_body(response.status_code, text, redact)
            return response.status_code, json.dumps(error).encode(), "application/json"
        if cut:
            raise UpstreamError("upstream answered a model list larger than 16 MiB")
        content_type = response.headers.get("content-type", "application/json")
        return response.status_code, redact.json_bytes(data), content_type

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


async def _completion_body(response: httpx.Response, redact: Redactor) -> AsyncIterator[bytes]:
    """A JSON answer to a streaming request, as Chat SSE: one chunk holding the whole message.

    Some servers ignore ``stream: true`` and answer one ``chat.completion`` object; it is turned
    into the equivalent chunk (``message`` as ``delta``, tool calls indexed, usage kept). A JSON
    ``error`` object becomes an error chunk, so the stream fails with its message.
    """
    try:
        data, cut = await _read_limited(response, _MAX_JSON_BODY)
        if cut:
            raise UpstreamError("upstream answered a JSON body larger than 32 MiB")
        payload = json.loads(data)
        text = redact(json.dumps(completion_to_chunk(payload), ensure_ascii=False))
    except httpx.HTTPError as exc:
        raise _transport_error(exc, redact) from None
    except (ValueError, RecursionError):
        raise UpstreamError("upstream answered a body that is neither SSE nor JSON") from None
    finally:
        await response.aclose()
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

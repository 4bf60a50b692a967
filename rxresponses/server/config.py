"""Configuration of ``rxresponses serve``: one frozen dataclass, readable from the environment.

The same :class:`ServerConfig` is built from command-line arguments (``rxresponses serve ...``) or
from ``RXRESPONSES_*`` environment variables (:meth:`ServerConfig.from_env`), which is how the
configuration reaches every worker process when uvicorn runs several (``--workers N``).

The upstream API key is never part of the configuration: only the *name* of the environment
variable that holds it (``api_key_env``). Each process reads the key itself
(:meth:`ServerConfig.resolve_api_key`) and keeps it in a :class:`Secret`, whose ``repr`` hides it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_STORE_MAX_BYTES",
    "DEFAULT_STORE_RETENTION_DAYS",
    "DEFAULT_STORE_URL",
    "DEFAULT_UPSTREAM_DEADLINE",
    "DEFAULT_MAX_WEBSOCKETS",
    "DEFAULT_WS_IDLE_TIMEOUT",
    "DEFAULT_WS_MAX_SECONDS",
    "ENV_PREFIX",
    "ConfigError",
    "Secret",
    "ServerConfig",
]

#: Default request body limit: 8 MiB (a long Codex session is a few hundred KiB).
DEFAULT_MAX_BODY_BYTES: Final = 8 * 1024 * 1024
#: Default total deadline of one upstream call: 1 hour (see ``ServerConfig.upstream_deadline``).
DEFAULT_UPSTREAM_DEADLINE: Final = 3600.0
#: Default bound on the responses in flight per process (``ServerConfig.max_concurrent_streams``):
#: measured on 2 cores under 300 clients that connect and drop mid-stream, ``/health`` answered
#: within 0.32 s at 64, 1.5 s at 128 and 4.1 s at 256 (each worker of ``--workers N`` has its own).
DEFAULT_MAX_CONCURRENT_STREAMS: Final = 64
#: Upstream connections kept beyond the stream limit, for ``/v1/models`` (answered 503 beyond).
MODELS_HEADROOM: Final = 16
#: Default cap on the upstream bytes one response may read: 32 MiB (128k tokens of Chat SSE).
DEFAULT_MAX_STREAM_BYTES: Final = 32 * 1024 * 1024
#: The store ``rxresponses serve`` uses without ``--store``: a SQLite file in the working folder.
DEFAULT_STORE_URL: Final = "sqlite:///rxresponses.sqlite3"
#: Default days a stored response is kept (OpenAI keeps responses for 30 days).
DEFAULT_STORE_RETENTION_DAYS: Final = 30.0
#: Default cap on the stored data: 2 GiB (about 20,000 answers of 500 tokens with their event logs),
#: so a server open to many clients cannot fill its disk; new stored requests get 503 beyond.
DEFAULT_STORE_MAX_BYTES: Final = 2 * 1024 * 1024 * 1024
#: Shortest ``--secret`` accepted (a short secret is guessable: the items would be forgeable).
MIN_SECRET_CHARS: Final = 16
#: Default seconds a WebSocket may idle (no message, no response running) before it is closed:
#: long enough for a person to type the next turn of a Codex session, short enough that idle
#: sockets do not pile up (each holds one of ``--max-client-connections``).
DEFAULT_WS_IDLE_TIMEOUT: Final = 600.0
#: Seconds a WebSocket may stay open in all (OpenAI closes its sockets after 60 minutes).
DEFAULT_WS_MAX_SECONDS: Final = 3600.0
#: Default bound on open WebSockets per process: half of ``--max-client-connections``' default
#: (uvicorn does not count upgraded connections in it); an idle socket costs a file descriptor
#: and a few tens of KiB, a busy one also holds one of ``--max-concurrent-streams``.
DEFAULT_MAX_WEBSOCKETS: Final = 512
#: Prefix of the environment variables :meth:`ServerConfig.from_env` reads.
ENV_PREFIX: Final = "RXRESPONSES_"

SystemRole = Literal["system", "developer"]
MaxTokensField = Literal["max_tokens", "max_completion_tokens"]
ReasoningEvents = Literal["openai", "open-responses"]
UpstreamClient = Literal["lean", "httpx"]


class ConfigError(ValueError):
    """The configuration is unusable (bad URL, missing key variable, bad number...)."""


class Secret:
    """A string that does not show itself in ``repr``/``str`` (so it cannot leak into a log)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value. Call it only where the value is sent, never where it is shown."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``rxresponses serve`` can be told.

    Attributes:
        upstream: The Chat Completions provider's base URL as the OpenAI SDKs take it
            (``http://127.0.0.1:8080/v1``: the server posts to ``{upstream}/chat/completions``).
            ``None`` answers from the embedded scripted model (no network, no key).
        api_key_env: Name of an environment variable holding the upstream API key. When set, the
            key replaces the client's ``Authorization`` header upstream; when not, the client's
            header is forwarded as is.
        max_body_bytes: Largest accepted request body; larger ones get 413.
        scripted_delay: Pause between two chunks of the embedded scripted model, in seconds.
        system_role: Chat role used for ``instructions`` and for ``system``/``developer`` input
            messages. ``"system"`` works with every Chat server; ``"developer"`` only with some.
        max_tokens_field: The Chat field that carries ``max_output_tokens``. ``max_tokens`` is
            accepted by every Chat server (vLLM, llama.cpp, Ollama, LM Studio, TGI, Groq, DeepSeek,
            Mistral...); OpenAI's reasoning models need ``max_completion_tokens``.
        upstream_timeout: Seconds the upstream may stay silent (connect, or between two reads)
            before the request fails.
        upstream_deadline: Seconds one upstream call may take in all, from sending the request to
            the end of the stream, however steadily the upstream keeps sending (a dripping or
            comment-only upstream); past it the stream ends with ``error`` +
            ``response.failed`` carrying what arrived. ``0`` turns it off. The default, one hour,
            is far beyond any single model answer and still bounds what a stuck upstream holds.
        max_connections: Size of the upstream connection pool (per process); 0 (default) sizes it
            to ``max_concurrent_streams`` + 16, so no request ever waits for a connection.
        max_concurrent_streams: Most ``POST /v1/responses`` in flight per process (streamed or
            not). One more is answered at once with 429, ``Retry-After: 1`` and an OpenAI-style
            error body, instead of being queued. ``/v1/models`` has 16 more slots of its own.
        max_stream_seconds: Longest a response may take, from the request to its last event
            (0: no limit). When hit, the stream ends with ``error`` + ``response.failed`` naming
            the limit, and the upstream request is closed.
        max_stream_bytes: Most bytes of upstream body one response may read (0: no limit); when
            hit, the same as ``max_stream_seconds``. It bounds the memory of an endless upstream.
        keepalive_seconds: While nothing was sent for this long, a stream gets an SSE comment
            (``: keep-alive``), so proxies do not cut a stream whose model is thinking (0: never).
        client_body_timeout: Seconds a client has to send its whole request body; a slower one
            gets 408.
        client_header_timeout: Seconds a new connection has to send its first request head,
            else it is closed (``rxresponses serve`` only: it is a setting of the HTTP server).
        store: Where responses are stored (``sqlite:///path``, ``postgresql://...``), or
            ``None`` (the default of this class; ``rxresponses serve`` defaults to
            :data:`DEFAULT_STORE_URL`): nothing is stored, and ``previous_response_id``,
            ``background`` and the ``/v1/responses/{id}`` routes are refused as before.
        bus: Where live events of running responses travel between workers (``redis://...``), or
            ``None``: in this process only (readers in other processes poll the store).
        store_retention_days: Days a stored response is kept (0: until deleted).
        store_max_bytes: Most bytes of stored data (0: no cap); beyond, new stored requests get
            503 until old responses expire or are deleted.
        reasoning_events: The names of the raw reasoning text events: ``"openai"``
            (``response.reasoning_text.delta`` / ``.done``, what OpenAI sends and its SDKs type)
            or ``"open-responses"`` (``response.reasoning.delta`` / ``.done``, the names of the
            Open Responses specification's streaming schema).
        secret: The key that seals the ``compaction`` items of ``/v1/responses/compact``
            (AES-256-GCM, derived from this text with HKDF-SHA256). ``None``: a random key per
            process (``rxresponses serve`` makes one at start and shares it with its workers):
            items stay readable until the server restarts.
        max_websockets: Most WebSockets open at once (per process). One more is accepted, gets
            an ``error`` event (429, ``websocket_connection_limit_reached``) and is closed (1013,
            try again later): uvicorn's ``limit_concurrency`` does not count upgraded
            connections, so this bounds them.
        ws_idle_timeout: Seconds a WebSocket (``/v1/responses`` in WebSocket mode) may stay
            without a message from its client while no response of it runs; then it gets an
            ``error`` event (``websocket_idle_timeout``) and is closed (0: never).
        ws_max_seconds: Seconds a WebSocket may stay open in all, as OpenAI's 60 minutes: after
            that no new response starts on it (a ``response.create`` gets an ``error`` event,
            ``websocket_connection_limit_reached``); once its running responses ended it gets
            that event and is closed (0: no limit).
        upstream_client: How ``http://`` upstreams are read: ``"lean"`` (default), httpx over
            the server's own HTTP/1.1 transport (``rxresponses.server._http11``: a third of the
            CPU per streamed chunk); ``"httpx"``, httpx's own transport (httpcore). ``https://``
            upstreams always use httpx's own.
    """

    upstream: str | None = None
    api_key_env: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    scripted_delay: float = 0.005
    system_role: SystemRole = "system"
    max_tokens_field: MaxTokensField = "max_tokens"
    upstream_timeout: float = 600.0
    upstream_deadline: float = DEFAULT_UPSTREAM_DEADLINE
    max_connections: int = 0
    max_concurrent_streams: int = DEFAULT_MAX_CONCURRENT_STREAMS
    max_stream_seconds: float = 3600.0
    max_stream_bytes: int = DEFAULT_MAX_STREAM_BYTES
    keepalive_seconds: float = 15.0
    client_body_timeout: float = 60.0
    client_header_timeout: float = 10.0
    store: str | None = None
    bus: str | None = None
    store_retention_days: float = DEFAULT_STORE_RETENTION_DAYS
    store_max_bytes: int = DEFAULT_STORE_MAX_BYTES
    reasoning_events: ReasoningEvents = "openai"
    secret: Secret | None = field(default=None, compare=False)
    max_websockets: int = DEFAULT_MAX_WEBSOCKETS
    ws_idle_timeout: float = DEFAULT_WS_IDLE_TIMEOUT
    ws_max_seconds: float = DEFAULT_WS_MAX_SECONDS
    upstream_client: UpstreamClient = "lean"

    def __post_init__(self) -> None:
        if self.upstream is not None:
            parts = urlsplit(self.upstream)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(
                    f"--upstream must be an http(s) base URL such as http://127.0.0.1:8080/v1, "
                    f"not {_safe_url(self.upstream)!r}"
                )
            if parts.query or parts.fragment:
                raise ConfigError("--upstream must not have a query string or fragment")
        if self.max_body_bytes <= 0:
            raise ConfigError("max_body_bytes must be positive")
        if self.scripted_delay < 0:
            raise ConfigError("scripted_delay must not be negative")
        if self.upstream_timeout <= 0:
            raise ConfigError("upstream_timeout must be positive")
        if not self.upstream_deadline >= 0:  # (also refuses NaN)
            raise ConfigError("upstream_deadline must not be negative (0 turns it off)")
        if self.max_connections < 0:
            raise ConfigError("max_connections must not be negative")
        if self.max_concurrent_streams <= 0:
            raise ConfigError("max_concurrent_streams must be positive")
        if self.max_websockets < 0:
            raise ConfigError("max_websockets must not be negative (0: no WebSocket mode)")
        for name in (
            "max_stream_seconds",
            "max_stream_bytes",
            "keepalive_seconds",
            "ws_idle_timeout",
            "ws_max_seconds",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative (0 turns it off)")
        if self.client_body_timeout <= 0 or self.client_header_timeout <= 0:
            raise ConfigError("client_body_timeout and client_header_timeout must be positive")
        if not self.store_retention_days >= 0 or self.store_max_bytes < 0:
            raise ConfigError(
                "store_retention_days and store_max_bytes must not be negative (0: no limit)"
            )
        if self.store is not None and not self.store.startswith(
            ("sqlite://", "postgresql://", "postgres://")
        ):
            raise ConfigError(
                "--store must be sqlite:///PATH, postgresql://... or none, not "
                f"{_safe_url(self.store)!r}"
            )
        if self.bus is not None and not self.bus.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"--bus must be a redis:// URL, not {_safe_url(self.bus)!r}")
        if self.system_role not in ("system", "developer"):
            raise ConfigError(
                f"system_role must be 'system' or 'developer', not {self.system_role!r}"
            )
        if self.reasoning_events not in ("openai", "open-responses"):
            raise ConfigError(
                "reasoning_events must be 'openai' or 'open-responses', "
                f"not {self.reasoning_events!r}"
            )
        if self.secret is not None and len(self.secret.reveal()) < MIN_SECRET_CHARS:
            raise ConfigError(
                f"--secret must be at least {MIN_SECRET_CHARS} characters (e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        if self.upstream_client not in ("lean", "httpx"):
            raise ConfigError(
                f"upstream_client must be 'lean' or 'httpx', not {self.upstream_client!r}"
            )
        if self.max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise ConfigError(
                "max_tokens_field must be 'max_tokens' or 'max_completion_tokens', "
                f"not {self.max_tokens_field!r}"
            )

    @property
    def pool_size(self) -> int:
        """Upstream connections per process: ``max_connections``, else streams + 16."""
        return self.max_connections or self.max_concurrent_streams + MODELS_HEADROOM

    @property
    def chat_completions_url(self) -> str | None:
        """``{upstream}/chat/completions``, or ``None`` for the embedded model."""
        if self.upstream is None:
            return None
        return self.upstream.rstrip("/") + "/chat/completions"

    @property
    def upstream_label(self) -> str:
        """The upstream for log lines (credentials in the URL, if any, are masked)."""
        if self.upstream is None:
            return "the embedded scripted model"
        return _safe_url(self.upstream)

    def resolve_api_key(self, environ: Mapping[str, str] | None = None) -> Secret | None:
        """Read the upstream key from the variable named by ``api_key_env``.

        Raises:
            ConfigError: ``api_key_env`` is set but the variable is missing or empty.
        """
        if not self.api_key_env:
            return None
        env = os.environ if environ is None else environ
        value = env.get(self.api_key_env, "").strip()
        if not value:
            raise ConfigError(
                f"--api-key-env {self.api_key_env}: that environment variable is not set or empty"
            )
        return Secret(value)

    # -- environment (how the configuration reaches uvicorn worker processes) ----------------

    def to_env(self) -> dict[str, str]:
        """The ``RXRESPONSES_*`` variables that :meth:`from_env` reads back to this config."""
        return {
            f"{ENV_PREFIX}MAX_BODY_BYTES": str(self.max_body_bytes),
            f"{ENV_PREFIX}SCRIPTED_DELAY_MS": repr(self.scripted_delay * 1000),
            f"{ENV_PREFIX}SYSTEM_ROLE": self.system_role,
            f"{ENV_PREFIX}MAX_TOKENS_FIELD": self.max_tokens_field,
            f"{ENV_PREFIX}UPSTREAM_TIMEOUT": repr(self.upstream_timeout),
            f"{ENV_PREFIX}MAX_CONNECTIONS": str(self.max_connections),
            f"{ENV_PREFIX}UPSTREAM_DEADLINE": repr(self.upstream_deadline),
            f"{ENV_PREFIX}MAX_CONCURRENT_STREAMS": str(self.max_concurrent_streams),
            f"{ENV_PREFIX}MAX_STREAM_SECONDS": repr(self.max_stream_seconds),
            f"{ENV_PREFIX}MAX_STREAM_BYTES": str(self.max_stream_bytes),
            f"{ENV_PREFIX}KEEPALIVE_SECONDS": repr(self.keepalive_seconds),
            f"{ENV_PREFIX}CLIENT_BODY_TIMEOUT": repr(self.client_body_timeout),
            f"{ENV_PREFIX}CLIENT_HEADER_TIMEOUT": repr(self.client_header_timeout),
            f"{ENV_PREFIX}UPSTREAM": self.upstream or "",
            f"{ENV_PREFIX}API_KEY_ENV": self.api_key_env or "",
            f"{ENV_PREFIX}STORE": self.store or "none",
            f"{ENV_PREFIX}BUS": self.bus or "",
            f"{ENV_PREFIX}STORE_RETENTION_DAYS": repr(self.store_retention_days),
            f"{ENV_PREFIX}STORE_MAX_BYTES": str(self.store_max_bytes),
            f"{ENV_PREFIX}REASONING_EVENTS": self.reasoning_events,
            **({f"{ENV_PREFIX}SECRET": self.secret.reveal()} if self.secret is not None else {}),
            f"{ENV_PREFIX}MAX_WEBSOCKETS": str(self.max_websockets),
            f"{ENV_PREFIX}WS_IDLE_TIMEOUT": repr(self.ws_idle_timeout),
            f"{ENV_PREFIX}WS_MAX_SECONDS": repr(self.ws_max_seconds),
            f"{ENV_PREFIX}UPSTREAM_CLIENT": self.upstream_client,
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerConfig:
        """Build a config from ``RXRESPONSES_*`` variables (unset ones keep their defaults).

        ``RXRESPONSES_UPSTREAM``, ``RXRESPONSES_API_KEY_ENV``, ``RXRESPONSES_MAX_BODY_BYTES``,
        ``RXRESPONSES_SCRIPTED_DELAY_MS``, ``RXRESPONSES_SYSTEM_ROLE``,
        ``RXRESPONSES_MAX_TOKENS_FIELD``, ``RXRESPONSES_UPSTREAM_TIMEOUT`` (seconds),
        ``RXRESPONSES_MAX_CONNECTIONS``, ``RXRESPONSES_UPSTREAM_DEADLINE`` (seconds, 0: off).
        ``RXRESPONSES_MAX_CONNECTIONS``, ``RXRESPONSES_MAX_CONCURRENT_STREAMS``,
        ``RXRESPONSES_MAX_STREAM_SECONDS``, ``RXRESPONSES_MAX_STREAM_BYTES``,
        ``RXRESPONSES_KEEPALIVE_SECONDS``, ``RXRESPONSES_CLIENT_BODY_TIMEOUT``,
        ``RXRESPONSES_CLIENT_HEADER_TIMEOUT`` (seconds), ``RXRESPONSES_STORE`` (a URL or
        ``none``), ``RXRESPONSES_BUS``, ``RXRESPONSES_STORE_RETENTION_DAYS``,
        ``RXRESPONSES_STORE_MAX_BYTES``, ``RXRESPONSES_REASONING_EVENTS``,
        ``RXRESPONSES_SECRET``, ``RXRESPONSES_MAX_WEBSOCKETS``,
        ``RXRESPONSES_WS_IDLE_TIMEOUT`` (seconds, 0: never), ``RXRESPONSES_WS_MAX_SECONDS``
        (seconds, 0: no limit), ``RXRESPONSES_UPSTREAM_CLIENT``
        (``lean`` or ``httpx``).
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name, "").strip()
            return value or None

        def number(name: str, kind: type[int] | type[float]) -> int | float | None:
            raw = get(name)
            if raw is None:
                return None
            try:
                return kind(raw)
            except ValueError:
                raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} is not a number") from None

        kwargs: dict[str, object] = {}
        if (upstream := get("UPSTREAM")) is not None:
            kwargs["upstream"] = upstream
        if (key_env := get("API_KEY_ENV")) is not None:
            kwargs["api_key_env"] = key_env
        if (size := number("MAX_BODY_BYTES", int)) is not None:
            kwargs["max_body_bytes"] = size
        if (delay := number("SCRIPTED_DELAY_MS", float)) is not None:
            kwargs["scripted_delay"] = delay / 1000
        if (role := get("SYSTEM_ROLE")) is not None:
            kwargs["system_role"] = role
        if (field_name := get("MAX_TOKENS_FIELD")) is not None:
            kwargs["max_tokens_field"] = field_name
        if (timeout := number("UPSTREAM_TIMEOUT", float)) is not None:
            kwargs["upstream_timeout"] = timeout
        if (conns := number("MAX_CONNECTIONS", int)) is not None:
            kwargs["max_connections"] = conns
        if (deadline := number("UPSTREAM_DEADLINE", float)) is not None:
            kwargs["upstream_deadline"] = deadline
        if (store := get("STORE")) is not None:
            kwargs["store"] = None if store.lower() == "none" else store
        if (bus := get("BUS")) is not None:
            kwargs["bus"] = bus
        if (names := get("REASONING_EVENTS")) is not None:
            kwargs["reasoning_events"] = names
        if (secret := get("SECRET")) is not None:
            kwargs["secret"] = Secret(secret)
        if (client := get("UPSTREAM_CLIENT")) is not None:
            kwargs["upstream_client"] = client
        limits: tuple[tuple[str, type[int] | type[float]], ...] = (
            ("store_retention_days", float),
            ("store_max_bytes", int),
            ("max_concurrent_streams", int),
            ("max_stream_seconds", float),
            ("max_stream_bytes", int),
            ("keepalive_seconds", float),
            ("client_body_timeout", float),
            ("client_header_timeout", float),
            ("max_websockets", int),
            ("ws_idle_timeout", float),
            ("ws_max_seconds", float),
        )
        for name, kind in limits:
            if (value := number(name.upper(), kind)) is not None:
                kwargs[name] = value
        return cls(**kwargs)  # type: ignore[arg-type]


def _safe_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"***@{host}").geturl()

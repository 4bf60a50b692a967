"""``rxresponses serve``: an OpenAI Responses endpoint in front of any Chat Completions provider.

Point a Responses client (the OpenAI SDKs, the Codex CLI) at ``http://127.0.0.1:8000/v1``; the
server translates each ``POST /v1/responses`` into a Chat Completions request for the upstream and
streams the answer back as Responses events, converted by the rxresponses operators. Without
``--upstream`` it answers from the embedded scripted model: no key, no network.

The CLI (``rxresponses.cli``) calls :func:`add_arguments` and :func:`run`. Importing this package
does not import Starlette or uvicorn (the optional ``server`` extra): they are imported when the
server is built or run.

Example::

    from rxresponses.server import ServerConfig, create_app

    app = create_app(ServerConfig(upstream="http://127.0.0.1:8080/v1"))  # any ASGI server
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import logging.config
import os
import secrets
import sys
from typing import TYPE_CHECKING, Any

from .config import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENT_STREAMS,
    DEFAULT_MAX_STREAM_BYTES,
    DEFAULT_MAX_WEBSOCKETS,
    DEFAULT_STORE_MAX_BYTES,
    DEFAULT_STORE_RETENTION_DAYS,
    DEFAULT_STORE_URL,
    DEFAULT_UPSTREAM_DEADLINE,
    DEFAULT_WS_IDLE_TIMEOUT,
    DEFAULT_WS_MAX_SECONDS,
    ENV_PREFIX,
    ConfigError,
    Secret,
    ServerConfig,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = [
    "APP_FACTORY",
    "ConfigError",
    "ServerConfig",
    "add_arguments",
    "config_from_args",
    "create_app",
    "run",
    "uvicorn_limits",
    "websocket_limits",
]

#: The app factory uvicorn imports in every worker (configuration through the environment).
APP_FACTORY = "rxresponses.server.app:create_app_from_env"
#: Default bound on the client connections of one worker (uvicorn's ``limit_concurrency``).
DEFAULT_MAX_CLIENT_CONNECTIONS = 1024
#: Seconds an idle keep-alive client connection is kept (uvicorn's ``timeout_keep_alive``).
KEEP_ALIVE_SECONDS = 5

logger = logging.getLogger("rxresponses.server")


def create_app(config: ServerConfig | None = None, **kwargs: Any) -> Starlette:
    """Build the ASGI app (see :func:`rxresponses.server.app.create_app`)."""
    from .app import create_app as _create_app

    return _create_app(config, **kwargs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser`` (the CLI's ``serve`` subcommand)."""
    parser.add_argument(
        "--upstream",
        metavar="URL",
        help="Chat Completions provider base URL, as the OpenAI SDKs take it "
        "(e.g. http://127.0.0.1:8080/v1). Default: the embedded scripted model (no network).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, local only)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default: 8000)")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (default: 1)"
    )
    parser.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="read the upstream API key from environment variable NAME; it replaces the "
        "client's Authorization header upstream (default: forward the client's header)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="N",
        help=f"largest accepted request body (default: {DEFAULT_MAX_BODY_BYTES}, 8 MiB)",
    )
    parser.add_argument(
        "--scripted-delay-ms",
        type=float,
        default=5.0,
        metavar="MS",
        help="pause between chunks of the embedded scripted model (default: 5)",
    )
    parser.add_argument(
        "--system-role",
        choices=("system", "developer"),
        default="system",
        help="Chat role for instructions and system/developer messages (default: system)",
    )
    parser.add_argument(
        "--max-tokens-field",
        choices=("max_tokens", "max_completion_tokens"),
        default="max_tokens",
        help="Chat field that carries max_output_tokens (default: max_tokens, which every "
        "Chat server accepts; OpenAI reasoning models need max_completion_tokens)",
    )
    parser.add_argument(
        "--reasoning-events",
        choices=("openai", "open-responses"),
        default="openai",
        help="names of the raw reasoning text events: openai (response.reasoning_text.delta/.done, "
        "what OpenAI sends) or open-responses (response.reasoning.delta/.done, the Open Responses "
        "specification's names) (default: openai)",
    )
    parser.add_argument(
        "--secret",
        default=None,
        metavar="TEXT",
        help="key of the compaction items of /v1/responses/compact (at least 16 characters; env "
        "RXRESPONSES_SECRET); default: a random key made at start, so items stay readable until "
        "the server restarts",
    )
    parser.add_argument(
        "--upstream-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long the upstream may stay silent before the request fails (default: 600)",
    )
    parser.add_argument(
        "--upstream-client",
        choices=("lean", "httpx"),
        default="lean",
        help="how http:// upstreams are read: lean (default), httpx over the server's own "
        "HTTP/1.1 transport, a third of the CPU per streamed chunk; httpx, httpx's own "
        "transport (https:// upstreams always use it)",
    )
    limits = parser.add_argument_group(
        "limits", "what one worker process spends at most (0 turns a limit off where noted)"
    )
    limits.add_argument(
        "--max-concurrent-streams",
        type=int,
        default=DEFAULT_MAX_CONCURRENT_STREAMS,
        metavar="N",
        help="responses in flight (streamed or not); one more gets 429 + Retry-After at once "
        f"(default: {DEFAULT_MAX_CONCURRENT_STREAMS})",
    )
    limits.add_argument(
        "--max-stream-seconds",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="longest a response may take; then it ends response.failed and the upstream request "
        "is closed (default: 3600; 0: no limit)",
    )
    limits.add_argument(
        "--max-stream-bytes",
        type=int,
        default=DEFAULT_MAX_STREAM_BYTES,
        metavar="N",
        help="most upstream bytes one response may read; then the same (default: "
        f"{DEFAULT_MAX_STREAM_BYTES}, 32 MiB; 0: no limit)",
    )
    limits.add_argument(
        "--keepalive-seconds",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="send an SSE comment on a stream silent for this long (default: 15; 0: never)",
    )
    limits.add_argument(
        "--client-body-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time a client has to send its request body, else 408 (default: 60)",
    )
    limits.add_argument(
        "--client-header-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="time a new connection has to send its request headers, else it is closed "
        "(default: 10)",
    )
    limits.add_argument(
        "--max-websockets",
        type=int,
        default=DEFAULT_MAX_WEBSOCKETS,
        metavar="N",
        help="open WebSockets (WebSocket mode of /v1/responses); one more gets an error event "
        f"and is closed (default: {DEFAULT_MAX_WEBSOCKETS}; 0: WebSocket mode off)",
    )
    limits.add_argument(
        "--ws-idle-timeout",
        type=float,
        default=DEFAULT_WS_IDLE_TIMEOUT,
        metavar="SECONDS",
        help="a WebSocket (WebSocket mode of /v1/responses) that sends nothing while none of its "
        f"responses runs is closed after this long (default: {DEFAULT_WS_IDLE_TIMEOUT:g}; "
        "0: never)",
    )
    limits.add_argument(
        "--ws-max-seconds",
        type=float,
        default=DEFAULT_WS_MAX_SECONDS,
        metavar="SECONDS",
        help="a WebSocket open this long starts no new response; once its responses ended it "
        "gets an error event (websocket_connection_limit_reached) and is closed, as OpenAI's "
        f"60 minutes (default: {DEFAULT_WS_MAX_SECONDS:g}; 0: no limit)",
    )
    limits.add_argument(
        "--max-client-connections",
        type=int,
        default=DEFAULT_MAX_CLIENT_CONNECTIONS,
        metavar="N",
        help="open client connections; a request arriving beyond gets 503 (uvicorn's "
        f"limit_concurrency; default: {DEFAULT_MAX_CLIENT_CONNECTIONS})",
    )
    parser.add_argument(
        "--upstream-deadline",
        type=float,
        default=DEFAULT_UPSTREAM_DEADLINE,
        metavar="SECONDS",
        help="most time one upstream call may take in all, however steadily the upstream keeps "
        "sending; then the stream ends with response.failed (default: "
        f"{DEFAULT_UPSTREAM_DEADLINE:g}, 0: no deadline)",
    )
    stored = parser.add_argument_group("stored responses")
    stored.add_argument(
        "--store",
        default=DEFAULT_STORE_URL,
        metavar="URL",
        help="where responses, their input items and event logs are kept: sqlite:///PATH or "
        "postgresql://... (pip install 'rxresponses[postgres]'); 'none' stores nothing and "
        f"refuses previous_response_id and background (default: {DEFAULT_STORE_URL})",
    )
    stored.add_argument(
        "--bus",
        default=None,
        metavar="URL",
        help="live events of running responses across workers and hosts: redis://... "
        "(pip install 'rxresponses[redis]'; default: in this process only)",
    )
    stored.add_argument(
        "--store-retention-days",
        type=float,
        default=DEFAULT_STORE_RETENTION_DAYS,
        metavar="DAYS",
        help=f"days a stored response is kept (default: {DEFAULT_STORE_RETENTION_DAYS:g}, "
        "like OpenAI; 0: until deleted)",
    )
    stored.add_argument(
        "--store-max-bytes",
        type=int,
        default=DEFAULT_STORE_MAX_BYTES,
        metavar="BYTES",
        help="most bytes of stored data; beyond, new stored requests get 503 (default: "
        f"{DEFAULT_STORE_MAX_BYTES}, 2 GiB; 0: no cap)",
    )
    parser.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default="info",
        help="log level (default: info)",
    )
    parser.add_argument(
        "--no-access-log", action="store_true", help="do not log one line per HTTP request"
    )


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The :class:`ServerConfig` that parsed ``serve`` arguments describe."""
    return ServerConfig(
        upstream=args.upstream or None,
        api_key_env=args.api_key_env or None,
        max_body_bytes=args.max_body_bytes,
        scripted_delay=args.scripted_delay_ms / 1000,
        system_role=args.system_role,
        max_tokens_field=args.max_tokens_field,
        upstream_timeout=args.upstream_timeout,
        upstream_deadline=args.upstream_deadline,
        max_concurrent_streams=args.max_concurrent_streams,
        max_stream_seconds=args.max_stream_seconds,
        max_stream_bytes=args.max_stream_bytes,
        keepalive_seconds=args.keepalive_seconds,
        client_body_timeout=args.client_body_timeout,
        client_header_timeout=args.client_header_timeout,
        store=None if (args.store or "none").lower() == "none" else args.store,
        bus=args.bus or None,
        store_retention_days=args.store_retention_days,
        store_max_bytes=args.store_max_bytes,
        reasoning_events=args.reasoning_events,
        secret=_secret(args.secret),
        max_websockets=args.max_websockets,
        ws_idle_timeout=args.ws_idle_timeout,
        ws_max_seconds=args.ws_max_seconds,
        upstream_client=args.upstream_client,
    )


def _secret(value: str | None) -> Secret | None:
    """``--secret``, else ``$RXRESPONSES_SECRET``, else ``None``."""
    value = value or os.environ.get(ENV_PREFIX + "SECRET", "").strip() or None
    return Secret(value) if value else None


def run(args: argparse.Namespace) -> int:
    """Run the server with uvicorn until it is stopped; return the exit code.

    The configuration travels to the app factory (:data:`APP_FACTORY`) through ``RXRESPONSES_*``
    environment variables, so ``--workers N`` works: each worker builds its own app. The API key
    itself is never put in the environment by this function: only the name of its variable.
    """
    try:
        config = config_from_args(args)
        config.resolve_api_key()  # fail now, with a clear message, rather than in each worker
        if args.workers < 1:
            raise ConfigError("--workers must be at least 1")
        if not 0 <= args.port <= 65535:
            raise ConfigError("--port must be between 0 and 65535")
        if args.max_client_connections <= config.max_concurrent_streams:
            raise ConfigError(
                "--max-client-connections must be larger than --max-concurrent-streams "
                "(room for /health and for the 429 answers)"
            )
    except ConfigError as exc:
        print(f"rxresponses serve: {exc}", file=sys.stderr)
        return 2
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        print(
            "rxresponses serve needs the 'server' extra: pip install 'rxresponses[server]'",
            file=sys.stderr,
        )
        return 2

    os.environ.update(config.to_env())
    if config.secret is None:
        # One random key for every worker of this server (so any worker reads the compaction
        # items another made); items made before a restart can no longer be read.
        os.environ[ENV_PREFIX + "SECRET"] = secrets.token_urlsafe(32)
    os.environ["RXRESPONSES_WORKERS"] = str(args.workers)  # one worker: recovery at startup
    log_config = _log_config(args.log_level)
    logging.config.dictConfig(log_config)
    if not _is_loopback(args.host):
        logger.warning(
            "listening on %s: anyone who can reach this port can use the upstream%s",
            args.host,
            " with the configured API key" if config.api_key_env else "",
        )
    logger.info(
        "Responses API on http://%s:%d/v1 -> %s (%d worker%s)",
        args.host,
        args.port,
        config.upstream_label,
        args.workers,
        "" if args.workers == 1 else "s",
    )
    _raise_fd_limit(args.max_client_connections + config.max_websockets + config.pool_size + 64)
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_config=log_config,
            log_level=args.log_level,
            access_log=not args.no_access_log,
            timeout_graceful_shutdown=30,
            **uvicorn_limits(args.max_client_connections),
            **websocket_limits(config.max_body_bytes),
        )
    except SystemExit as exc:  # uvicorn exits on startup failure (port in use...)
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def uvicorn_limits(max_client_connections: int = DEFAULT_MAX_CLIENT_CONNECTIONS) -> dict[str, Any]:
    """The uvicorn settings that bound what clients can hold (for ``uvicorn.run``/``Config``).

    ``limit_concurrency``: beyond this many open connections (or requests in progress) a new
    request gets 503 and the connection is closed. ``timeout_keep_alive``: an idle connection is
    closed after 5 s. ``backlog``: connections waiting to be accepted. ``http``: uvicorn's own
    protocol behind a deadline for request heads (:mod:`rxresponses.server._guard`, reading
    ``RXRESPONSES_CLIENT_HEADER_TIMEOUT``).
    """
    from ._guard import PROTOCOL

    return {
        "http": PROTOCOL,
        "limit_concurrency": max_client_connections,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "backlog": 2048,
    }


def websocket_limits(max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> dict[str, Any]:
    """The uvicorn settings for WebSocket mode (for ``uvicorn.run``/``Config``).

    uvicorn picks its WebSocket implementation itself (``ws="auto"``: the ``server`` extra
    installs ``websockets``). ``ws_max_size``:
    a message larger than twice ``max_body_bytes`` closes its socket (1009, the protocol's
    answer); up to that, the app answers a message over ``max_body_bytes`` with an ``error``
    event and the socket stays open. ``ws_ping_interval`` / ``ws_ping_timeout``: a socket whose
    peer stops answering pings is closed within 40 s.
    """
    return {
        "ws_max_size": 2 * max_body_bytes,
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
    }


def _raise_fd_limit(needed: int) -> None:
    """Raise the soft limit of open files towards ``needed`` (within the hard limit): every
    client and upstream connection is a file descriptor, and 1024 is a common soft limit."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration plus the ``rxresponses`` logger."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["rxresponses"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config

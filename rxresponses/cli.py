"""The ``rxresponses`` command line: demo, replay, convert, record, serve.

Run ``rxresponses --help`` (or ``python -m rxresponses --help``) for the reference; the README has
the same text. Errors never print a traceback: one line, ``rxresponses: error: ...``, on stderr,
and one of these exit statuses:

====  ====================================================================================
0     the stream ended with ``response.completed`` (or ``response.incomplete``: a valid end,
      shown in the summary)
1     the stream was read but failed: an ``error`` event, ``response.failed``, undecodable data
      in the middle of it, or it was cut before its terminal event (what arrived is still
      rendered or written first)
2     usage error (bad arguments), or ``serve`` without the ``server`` extra
3     the input could not be read or recognised (missing file, not a Chat or Responses stream),
      or the output file could not be written
4     the upstream could not be reached, timed out, or answered with a non-2xx status
70    internal error (a bug: rerun with ``--debug`` for the traceback)
130   interrupted (Ctrl-C)
141   the output pipe was closed (``| head``)
====  ====================================================================================

A closed output pipe (``rxresponses demo | head -1``, ``rxresponses convert big.sse | head``) stops
the stream at once and exits silently with 141 (128 + SIGPIPE, what a shell reports for a command
that a closed pipe stopped; ``set -o pipefail`` scripts see the cut).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, TextIO

import httpx
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from .errors import UpstreamError, UpstreamStatusError
from .operators import decode_sse, parse_chunks, parse_events
from .pipelines import chat_to_responses
from .sources import from_file, from_httpx
from .sse import SSEMessage
from .types.registry import TERMINAL_TYPES

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILED",
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UPSTREAM",
    "EXIT_USAGE",
    "CLIError",
    "build_parser",
    "detect_kind",
    "main",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_UPSTREAM = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

#: What a recorded stream holds.
StreamKind = Literal["chat", "responses"]

_PROG = "rxresponses"
_DEFAULT_DELAY_MS = 30.0
_DEFAULT_PROMPT = "What is the weather in Paris and in Tokyo? I am deciding where to fly."

_EPILOG = """\
exit status:
  0    completed (or incomplete: a valid end, shown in the summary)
  1    the stream failed (error event, response.failed, undecodable data, cut short)
  2    usage error, or `serve` without the server extra
  3    the input could not be read or recognised, or the output not written
  4    the upstream could not be reached or answered non-2xx
  130  interrupted
  141  the output pipe was closed (`| head`)
"""


class CLIError(Exception):
    """An error the command line reports as one line on stderr, with an exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class _SinkFailed(BaseException):
    """Raised out of a sink to stop a sync source at once (it catches only ``Exception``)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(cause)
        self.cause = cause


# ---------------------------------------------------------------------------------------------
# Running a pipeline into a sink
# ---------------------------------------------------------------------------------------------


class _Status(abc.ObserverBase[Any]):
    """Watches events go by: how did the stream end? Never raises."""

    def __init__(self) -> None:
        self.terminal: str | None = None
        self.error: str | None = None
        self.exception: Exception | None = None
        self.count = 0

    def on_next(self, value: Any) -> None:
        self.count += 1
        kind = getattr(value, "type", "")
        if kind == "error":
            code = getattr(value, "error_code", None)
            message = getattr(value, "error_message", "") or ""
            self.error = f"{code}: {message}" if code else message
        elif kind in TERMINAL_TYPES:
            self.terminal = kind.removeprefix("response.")
            error = getattr(value.response, "error", None)
            if kind == "response.failed" and self.error is None and error is not None:
                self.error = f"{error.code}: {error.message}"

    def on_error(self, error: Exception) -> None:
        self.exception = error

    def on_completed(self) -> None:
        pass


class _Guard(abc.ObserverBase[Any]):
    """Forwards to a sink; an exception in the sink (a closed pipe, a full disk) stops the
    stream at once instead of being turned into an ``error`` event upstream."""

    def __init__(self, sink: abc.ObserverBase[Any]) -> None:
        self.sink = sink
        self.done = threading.Event()

    def _call(self, method: Callable[..., None], *args: Any) -> None:
        try:
            method(*args)
        except Exception as exc:
            self.done.set()
            raise _SinkFailed(exc) from exc

    def on_next(self, value: Any) -> None:
        self._call(self.sink.on_next, value)

    def on_error(self, error: Exception) -> None:
        try:
            self._call(self.sink.on_error, error)
        finally:
            self.done.set()

    def on_completed(self) -> None:
        try:
            self._call(self.sink.on_completed)
        finally:
            self.done.set()


def _run(source: Observable[Any], sink: abc.ObserverBase[Any]) -> None:
    """Subscribe ``sink`` and wait for the end. A sink's own exception is re-raised."""
    guard = _Guard(sink)
    try:
        subscription = source.subscribe(guard)
        try:
            guard.done.wait()
        finally:
            subscription.dispose()
    except _SinkFailed as failed:
        raise failed.cause from None


@dataclass
class _Tap:
    """Remembers the exception a source ended with, before the conversion turns it into
    ``error`` + ``response.failed`` events."""

    error: Exception | None = None

    def __call__(self, source: Observable[Any]) -> Observable[Any]:
        def remember(exc: Exception) -> None:
            self.error = exc

        return source.pipe(ops.do_action(on_error=remember))


def _verdict(status: _Status, tap: _Tap, where: str) -> int:
    """The exit status of a stream that was read (raises :class:`CLIError` for a failure)."""
    error = tap.error or status.exception
    if isinstance(error, UpstreamError):
        raise CLIError(_upstream_message(error, where), EXIT_UPSTREAM)
    if error is not None and status.terminal is None:
        raise CLIError(f"the stream failed: {_one_line(str(error))}", EXIT_FAILED)
    if status.error is not None or status.terminal == "failed":
        message = _one_line(status.error or "response.failed")
        raise CLIError(f"the stream failed: {message}", EXIT_FAILED)
    if status.terminal is None:
        if status.count == 0:
            raise CLIError(f"{where}: no events in the stream", EXIT_INPUT)
        raise CLIError("the stream ended before its terminal event (cut short?)", EXIT_FAILED)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# Inputs: recordings and upstream servers
# ---------------------------------------------------------------------------------------------


def detect_kind(data: str) -> StreamKind:
    """What the first payload of a recording says it is: ``"chat"`` or ``"responses"``.

    ``choices`` or ``"object": "chat.completion.chunk"`` mean a Chat Completions stream; a
    ``type`` starting with ``response.`` (or ``error``, ``keepalive``) a Responses stream.

    Raises:
        ValueError: The payload is not JSON, or is neither.
    """
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"the first payload is not JSON ({exc}): {data[:80]!r}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"the first payload is not a JSON object: {data[:80]!r}")
    if "choices" in obj or obj.get("object") == "chat.completion.chunk":
        return "chat"
    kind = obj.get("type")
    if isinstance(kind, str) and (kind.startswith("response.") or kind in ("error", "keepalive")):
        return "responses"
    if "error" in obj:  # a provider's error payload in a Chat stream
        return "chat"
    raise ValueError(
        "the first payload is neither a Chat Completions chunk nor a Responses event: "
        f"{data[:80]!r}"
    )


def _recording(path: str, container: str) -> tuple[StreamKind, Observable[SSEMessage]]:
    """Open a recording (``-`` is stdin): its kind and its messages. Exit 3 if unusable."""
    if path == "-":
        data = sys.stdin.buffer.read()
        messages = _messages_of_bytes(data, container)
    else:
        p = Path(path)
        try:
            with p.open("rb") as fh:
                fh.read(1)
        except FileNotFoundError:
            raise CLIError(f"{path}: no such file", EXIT_INPUT) from None
        except IsADirectoryError:
            raise CLIError(f"{path}: is a directory", EXIT_INPUT) from None
        except OSError as exc:
            raise CLIError(f"{path}: cannot read: {exc.strerror or exc}", EXIT_INPUT) from None
        fmt: Any = container
        messages = from_file(p, format=fmt)
    first: list[SSEMessage] = []
    failure: list[Exception] = []

    def meaningful(message: SSEMessage) -> bool:
        return message.data.strip() not in ("", "[DONE]")

    messages.pipe(ops.filter(meaningful), ops.take(1)).subscribe(first.append, failure.append)
    if failure:
        raise CLIError(f"{path}: cannot decode: {_one_line(str(failure[0]))}", EXIT_INPUT)
    if not first:
        raise CLIError(f"{path}: no events in the stream (empty, or not SSE/JSONL)", EXIT_INPUT)
    try:
        kind = detect_kind(first[0].data)
    except ValueError as exc:
        raise CLIError(f"{path}: {exc}", EXIT_INPUT) from None
    return kind, messages


def _messages_of_bytes(data: bytes, container: str) -> Observable[SSEMessage]:
    jsonl = container == "jsonl" or (
        container == "auto" and data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"
    )
    if jsonl:
        lines = [SSEMessage(ln.strip().decode("utf-8", "replace")) for ln in data.split(b"\n")]
        return reactivex.from_iterable([m for m in lines if m.data])
    return reactivex.just(data).pipe(decode_sse())


def _events(kind: StreamKind, messages: Observable[SSEMessage], *, stable_ids: bool) -> Any:
    if kind == "responses":
        return messages.pipe(parse_events())
    options: dict[str, Any] = {}
    if stable_ids:
        from .data import sequential_ids

        options["ids"] = sequential_ids()
    return messages.pipe(parse_chunks(), chat_to_responses(**options))


def _endpoint(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise CLIError(f"{url}: not an http(s) URL", EXIT_USAGE)
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


def _chat_request(args: argparse.Namespace, url: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(endpoint, JSON body, headers) of a streamed Chat Completions request."""
    endpoint = _endpoint(url)
    body: dict[str, Any] = {
        "model": args.model,
        "messages": [{"role": "user", "content": args.prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if args.max_tokens is not None:
        body["max_tokens"] = args.max_tokens
    # identity: the bytes recorded are the bytes a client reads, not a gzip body.
    headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}
    env = args.api_key_env or "OPENAI_API_KEY"
    key = os.environ.get(env)
    if args.api_key_env and not key:
        raise CLIError(f"environment variable {env} is not set", EXIT_USAGE)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return endpoint, body, headers


def _client(args: argparse.Namespace) -> httpx.Client:
    timeout = httpx.Timeout(args.timeout, connect=min(10.0, args.timeout))
    return httpx.Client(timeout=timeout)


def _upstream_message(error: Exception, where: str) -> str:
    if isinstance(error, UpstreamStatusError):
        detail = _one_line(error.body)
        try:
            payload = json.loads(error.body)
            nested = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(nested, dict) and nested.get("message"):
                detail = _one_line(str(nested["message"]))
            elif isinstance(nested, str):
                detail = _one_line(nested)
        except ValueError:
            pass
        message = f"{where} returned HTTP {error.status_code}"
        return f"{message}: {_clip(detail, 200)}" if detail else message
    return f"{_one_line(str(error))} ({where})"


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------


def _stdout_bytes() -> IO[bytes]:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # pragma: no cover - a text-only replacement of sys.stdout
        raise CLIError("stdout is not a binary stream: use -o FILE", EXIT_USAGE)
    return buffer  # type: ignore[no-any-return]


def _open_output(path: str) -> IO[bytes]:
    try:
        return open(path, "wb")
    except OSError as exc:
        raise CLIError(f"{path}: cannot write: {exc.strerror or exc}", EXIT_INPUT) from None


def _renderer(args: argparse.Namespace) -> Any:
    from .sinks.terminal import terminal_renderer

    color = {"always": True, "never": False}.get(args.color)
    return terminal_renderer(
        sys.stdout, color=color, summary=not args.no_summary, reasoning=not args.no_reasoning
    )


def _delay_seconds(args: argparse.Namespace, default_ms: float) -> float:
    if args.no_delay:
        return 0.0
    delay_ms = float(default_ms if args.delay_ms is None else args.delay_ms)
    speed = float(args.speed)
    if delay_ms < 0 or speed <= 0:
        raise CLIError("--delay-ms must be >= 0 and --speed > 0", EXIT_USAGE)
    return delay_ms / 1000.0 / speed


def _render(events: Observable[Any], args: argparse.Namespace, tap: _Tap, where: str) -> int:
    status = _Status()
    renderer = _renderer(args)
    try:
        _run(events.pipe(ops.do(status)), renderer)
    except KeyboardInterrupt:
        renderer.close()  # no colour left on in the user's terminal
        raise
    return _verdict(status, tap, where)


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from .data import demo_messages, paced, sequential_ids

    tap = _Tap()
    if args.upstream is None:
        if args.model:
            _warn(f"--model {args.model} is ignored without --upstream (the embedded demo plays)")
        delay = _delay_seconds(args, _DEFAULT_DELAY_MS)
        messages = demo_messages().pipe(tap, paced(delay))
        events = messages.pipe(parse_chunks(), chat_to_responses(ids=sequential_ids()))
        return _render(events, args, tap, "the embedded demo")
    if not args.model:
        raise CLIError("--upstream needs --model", EXIT_USAGE)
    endpoint, body, headers = _chat_request(args, args.upstream)
    with _client(args) as client:
        source = from_httpx(client, "POST", endpoint, json=body, headers=headers)
        events = source.pipe(tap, decode_sse(), parse_chunks(), chat_to_responses())
        return _render(events, args, tap, endpoint)


def _cmd_replay(args: argparse.Namespace) -> int:
    from .data import paced

    kind, messages = _recording(args.file, args.input_format)
    tap = _Tap()
    delay = _delay_seconds(args, 0.0)
    events = _events(kind, messages.pipe(tap, paced(delay)), stable_ids=args.stable_ids)
    return _render(events, args, tap, args.file)


def _cmd_convert(args: argparse.Namespace) -> int:
    from .sinks.files import JSONLWriter, SSEWriter

    kind, messages = _recording(args.file, args.input_format)
    fmt = args.format
    if fmt is None:
        fmt = "jsonl" if args.output and args.output.endswith((".jsonl", ".ndjson")) else "sse"
    tap = _Tap()
    events = _events(kind, messages.pipe(tap), stable_ids=args.stable_ids)
    out = _open_output(args.output) if args.output else _stdout_bytes()
    status = _Status()
    try:
        writer = JSONLWriter(out) if fmt == "jsonl" else SSEWriter(out)
        try:
            _run(events.pipe(ops.do(status)), writer)
        except OSError as exc:
            if isinstance(exc, BrokenPipeError) or not args.output:
                raise
            message = f"{args.output}: cannot write: {exc.strerror or exc}"
            raise CLIError(message, EXIT_INPUT) from None
    finally:
        if args.output:
            out.close()
    return _verdict(status, tap, args.file)


class _ByteSink(abc.ObserverBase[bytes]):
    """Writes the body bytes as received; opens the output at the first byte, so a refused
    request leaves no empty file behind. With ``progress`` (stderr when it is a TTY), keeps one
    line there up to date: bytes and chunks so far, at most ten times a second."""

    def __init__(self, path: str | None, progress: TextIO | None = None) -> None:
        self.path = path
        self.out: IO[bytes] | None = None
        self.size = 0
        self.chunks = 0
        self.error: Exception | None = None
        self.progress = progress
        self._shown_at = 0.0

    def on_next(self, value: bytes) -> None:
        if self.out is None:
            self.out = _open_output(self.path) if self.path else _stdout_bytes()
        self.out.write(value)
        self.out.flush()
        self.size += len(value)
        self.chunks += 1
        if self.progress is not None:
            now = time.monotonic()
            if now - self._shown_at >= 0.1:
                self._shown_at = now
                self._show_progress()

    def _show_progress(self) -> None:
        assert self.progress is not None
        line = f"{_PROG}: recording: {self.size:,} bytes, {self.chunks:,} chunks"
        with contextlib.suppress(OSError, ValueError):
            self.progress.write(f"\r{line}\x1b[K")
            self.progress.flush()

    def end_progress(self) -> None:
        """Leave the last figures on their line (nothing when there was no progress line)."""
        if self.progress is not None and self.chunks:
            self._show_progress()
            with contextlib.suppress(OSError, ValueError):
                self.progress.write("\n")
                self.progress.flush()

    def on_error(self, error: Exception) -> None:
        self.error = error

    def on_completed(self) -> None:
        pass

    def close(self) -> None:
        if self.out is not None and self.path:
            self.out.close()


def _cmd_record(args: argparse.Namespace) -> int:
    endpoint, body, headers = _chat_request(args, args.upstream)
    sink = _ByteSink(args.output, progress=sys.stderr if _isatty(sys.stderr) else None)
    try:
        with _client(args) as client:
            _run(from_httpx(client, "POST", endpoint, json=body, headers=headers), sink)
    except CLIError:
        raise
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) or not args.output:
            raise
        raise CLIError(f"{args.output}: cannot write: {exc.strerror or exc}", EXIT_INPUT) from None
    finally:
        sink.end_progress()
        sink.close()
    if sink.error is not None:
        message = _upstream_message(sink.error, endpoint)
        if sink.size:
            message += f" ({sink.size} bytes recorded before the error)"
        status = EXIT_UPSTREAM if isinstance(sink.error, UpstreamError) else EXIT_FAILED
        raise CLIError(message, status)
    if args.output:
        print(f"{_PROG}: recorded {sink.size} bytes to {args.output}", file=sys.stderr)
    return EXIT_OK


def _cmd_serve(argv: Sequence[str]) -> int:
    try:
        server = importlib.import_module("rxresponses.server")
    except ImportError as exc:
        missing = f" ({exc.name} is missing)" if exc.name else ""
        raise CLIError(
            f"`rxresponses serve` needs the server extra: pip install 'rxresponses[server]'"
            f"{missing}",
            EXIT_USAGE,
        ) from None
    parser = argparse.ArgumentParser(
        prog=f"{_PROG} serve",
        description="Serve the Responses API in front of a Chat Completions provider.",
    )
    server.add_arguments(parser)
    args = parser.parse_args(list(argv))
    return int(server.run(args))


# ---------------------------------------------------------------------------------------------
# The parser and main
# ---------------------------------------------------------------------------------------------


def _add_render_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("rendering")
    group.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colours: auto (a TTY, unless NO_COLOR is set), always, never (default: auto)",
    )
    group.add_argument("--no-summary", action="store_true", help="skip the final summary")
    group.add_argument(
        "--no-reasoning", action="store_true", help="hide reasoning text (keep its header)"
    )


def _add_timing_options(parser: argparse.ArgumentParser, default_ms: float) -> None:
    group = parser.add_argument_group("timing")
    group.add_argument(
        "--delay-ms",
        type=float,
        metavar="MS",
        help=f"mean pause before each chunk, in milliseconds (default: {default_ms:g})",
    )
    group.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="play faster (2) or slower (0.5) than --delay-ms (default: 1)",
    )
    group.add_argument("--no-delay", action="store_true", help="no pauses at all")


def _add_upstream_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--model", required=required, metavar="M", help="the model to ask")
    parser.add_argument(
        "--prompt",
        required=required,
        default=None if required else _DEFAULT_PROMPT,
        metavar="TEXT",
        help="the user message" + ("" if required else f" (default: {_DEFAULT_PROMPT!r})"),
    )
    parser.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="environment variable holding the API key (default: OPENAI_API_KEY, if set)",
    )
    parser.add_argument("--max-tokens", type=int, metavar="N", help="send max_tokens=N")
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="S", help="read timeout (default: 60)"
    )


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", metavar="FILE", help="a recorded stream (.sse or .jsonl; - reads stdin)"
    )
    parser.add_argument(
        "--input-format",
        choices=("auto", "sse", "jsonl"),
        default="auto",
        help="the file's container (default: by extension, else by its first byte)",
    )
    parser.add_argument(
        "--stable-ids",
        action="store_true",
        help="number item and response ids (msg_000002...) instead of random ids",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``rxresponses`` argument parser (``serve``'s options come from the server)."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Chat Completions streams in, OpenAI Responses events out, with RxPY.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an internal error"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="stream the embedded recording through the pipeline, live (no network)",
        description=(
            "Stream the embedded demo recording (reasoning, text, two tool calls) through the "
            "full operator pipeline and render it live, then summarise the final Response. "
            "With --upstream, ask a real OpenAI-compatible server instead."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--upstream",
        metavar="URL",
        help="an OpenAI-compatible base URL (POST URL/chat/completions), e.g. "
        "https://api.openai.com/v1",
    )
    _add_upstream_options(demo, required=False)
    _add_timing_options(demo, _DEFAULT_DELAY_MS)
    _add_render_options(demo)
    demo.set_defaults(handler=_cmd_demo)

    replay = commands.add_parser(
        "replay",
        help="render a recorded Chat or Responses stream",
        description=(
            "Render a recorded stream. Chat Completions recordings are converted; Responses "
            "recordings are parsed. The kind is read from the first payload."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_options(replay)
    _add_timing_options(replay, 0.0)
    _add_render_options(replay)
    replay.set_defaults(handler=_cmd_replay)

    convert = commands.add_parser(
        "convert",
        help="convert a Chat stream to Responses events (SSE or JSONL)",
        description=(
            "Convert a recorded Chat Completions stream to Responses events, written as SSE "
            "(what a Responses server sends) or JSONL (one event per line, the JSON of its SSE "
            "data line). A Responses recording is re-encoded."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_options(convert)
    convert.add_argument("-o", "--output", metavar="OUT", help="write here (default: stdout)")
    convert.add_argument(
        "--format",
        choices=("sse", "jsonl"),
        help="output format (default: jsonl for a .jsonl/.ndjson OUT, else sse)",
    )
    convert.set_defaults(handler=_cmd_convert)

    record = commands.add_parser(
        "record",
        help="capture a live Chat Completions stream to a file, byte for byte",
        description=(
            "POST one streamed Chat Completions request and write the response body as "
            "received, byte for byte (replay it with `rxresponses replay FILE`)."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    record.add_argument(
        "--upstream",
        "--url",
        dest="upstream",
        required=True,
        metavar="URL",
        help="an OpenAI-compatible base URL (POST URL/chat/completions); --url is an alias",
    )
    _add_upstream_options(record, required=True)
    record.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    record.set_defaults(handler=_cmd_record)

    commands.add_parser(
        "serve",
        help="serve the Responses API in front of a Chat provider (needs rxresponses[server])",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    position = next((i for i, a in enumerate(args_list) if not a.startswith("-")), None)
    if position is not None and args_list[position] == "serve":
        debug = "--debug" in args_list[:position]
        return _guarded(lambda: _cmd_serve(args_list[position + 1 :]), debug)
    parser = build_parser()
    args = parser.parse_args(args_list)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return _guarded(lambda: handler(args), args.debug)


def _guarded(run: Callable[[], int], debug: bool) -> int:
    try:
        return run()
    except CLIError as exc:
        _error(exc.message)
        return exc.status
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if debug:
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)")
        return EXIT_INTERNAL


def _error(message: str) -> None:
    stderr: TextIO = sys.stderr
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    print(f"{_PROG}: error: {_one_line(message)}", file=stderr, flush=True)


def _warn(message: str) -> None:
    print(f"{_PROG}: warning: {_one_line(message)}", file=sys.stderr, flush=True)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _silence_stdout() -> None:
    """After a closed pipe (``| head``): point stdout at devnull so the exit flush is quiet."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."

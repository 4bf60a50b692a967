"""Hostile request bodies against a real ``rxresponses serve`` (issue 17, points 3, 5, 6).

Each abuse starts a fresh ``rxresponses serve`` subprocess on 127.0.0.1 (the embedded scripted
model: the bodies never need to reach a real upstream), sends its requests over HTTP while a
prober asks ``GET /health`` every 50 ms, and prints one line::

    abuse=<name> requests=<N> 5xx=<N> hangs=<N> peak_rss_mb=<VmHWM> health_max_ms=<N> ...

* ``5xx``: answers with a status of 500 or more (must be 0);
* ``hangs``: requests with no complete answer within 10 s, and ``200`` streams that do not end
  with exactly one terminal event (must be 0);
* ``peak_rss_mb``: the server's ``VmHWM`` (its peak resident memory) after the abuse;
* ``health_max_ms``: the slowest ``/health`` answer while the abuse ran (target: under 500);
* ``slowest_ms``: the slowest answer to a hostile request.

Run it from the repository root::

    python tests/fuzz/attack_requests.py           # every abuse, about 2-3 minutes
    python tests/fuzz/attack_requests.py --quick   # smaller sizes, about 30 s

It exits 1 if any abuse saw a 5xx or a hang. ``tests/test_attack_requests.py`` runs a slice.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import random
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):  # run as a script: make ``tests.fuzz`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.attack_upstream import start_serve

ROOT = Path(__file__).resolve().parents[2]
REQUEST_TIMEOUT = 10.0
_TERMINAL = (b"event: response.completed", b"event: response.incomplete", b"event: response.failed")

#: One request: the body bytes and extra headers.
Request = tuple[bytes, dict[str, str]]


def _json(body: Any) -> Request:
    return json.dumps(body).encode(), {}


def _base(stream: bool = True, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "input": "hi", "stream": stream} | extra


# ------------------------------------------------------------------------------------------------
# The abuses: each yields requests (quick: fewer and smaller)
# ------------------------------------------------------------------------------------------------


def deep_nesting(quick: bool) -> Iterator[Request]:
    """Arrays and objects nested 1k, 10k, 100k deep, in several fields, streamed and not."""
    depths = [1_000, 100_000] if quick else [1_000, 10_000, 100_000]
    for depth in depths:
        for stream in (True, False):
            arrays = b"[" * depth + b"]" * depth
            objects = b'{"a":' * depth + b"1" + b"}" * depth
            yield b'{"model":"m","stream":%s,"input":%s}' % (_bool(stream), arrays), {}
            yield (
                b'{"model":"m","input":"hi","stream":%s,"metadata":%s}'
                % (
                    _bool(stream),
                    objects,
                ),
                {},
            )
            if not quick:
                tool = b'{"type":"function","name":"f","parameters":%s}' % objects
                yield (
                    b'{"model":"m","input":"hi","stream":%s,"tools":[%s]}'
                    % (
                        _bool(stream),
                        tool,
                    ),
                    {},
                )


def _bool(value: bool) -> bytes:
    return b"true" if value else b"false"


_SURROGATE_FIELDS: list[dict[str, Any]] = [
    {"model": "x\udc00"},
    {"instructions": "a\ud800"},
    {"user": "\udfff"},
    {"metadata": {"k": "v\udc00"}},
    {"metadata": {"k\udc00": "v"}},
    {"input": "hello \udc00"},
    {"input": [{"role": "user", "content": [{"type": "input_text", "text": "\ud83d"}]}]},
    {"tools": [{"type": "function", "name": "f\udc00"}]},
    {"tools": [{"type": "function", "name": "f", "description": "\udc00"}]},
    {"tools": [{"type": "function", "name": "f", "parameters": {"\udc00": 1}}]},
    {"tools": [{"type": "namespace", "name": "n\udc00", "tools": [{"name": "f"}]}]},
    {"text": {"format": {"type": "json_schema", "name": "\udc00", "schema": {}}}},
    {"reasoning": {"effort": "\udc00"}},
    {"tool_choice": {"type": "function", "name": "\udc00"}},
    {"prompt_cache_key": "\udc00"},
]


def surrogates(quick: bool) -> Iterator[Request]:
    """A lone surrogate (a ``\\udc00`` escape) in each field, streamed and not."""
    for fields in _SURROGATE_FIELDS[:6] if quick else _SURROGATE_FIELDS:
        for stream in (True, False):
            yield _json(_base(stream, **fields))  # json.dumps escapes them: \\udc00


_WRONG: list[dict[str, Any]] = [
    {"model": {"a": 1}},
    {"model": ["m"]},
    {"instructions": {"x": 1}},
    {"input": {"role": "user"}},
    {"input": [{"type": {"a": 1}}]},
    {"input": [{"role": {"a": 1}, "content": "x"}]},
    {"input": [{"role": "user", "content": [{"type": {"a": 1}}]}]},
    {"input": [{"role": "user", "content": [{"type": ["input_text"], "text": "x"}]}]},
    {"input": [{"role": "user", "content": {"type": "input_text"}}]},
    {"input": [{"type": "function_call", "call_id": {}, "name": "f"}]},
    {"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": {}}]}]},
    {"tools": {"type": "function"}},
    {"tools": [{"type": "function", "name": {"a": 1}}]},
    {"tools": [{"type": "function", "name": "f", "parameters": [1]}]},
    {"tools": [{"type": "function", "name": "f", "parameters": {"properties": [1]}}]},
    {"tools": [{"type": "function", "name": "f", "parameters": {"required": [{}]}}]},
    {
        "tools": [
            {
                "type": "function",
                "name": "f",
                "parameters": {"properties": {"a": {"enum": 5}}, "required": ["a"]},
            }
        ]
    },
    {"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": 1}},
    {"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": {}}},
    {
        "tools": [{"type": "function", "name": "f"}],
        "tool_choice": {"type": "function", "name": "f", "namespace": {}},
    },
    {"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"namespace": []}]}},
    {"text": {"format": {"type": {}}}},
    {"text": {"format": {"type": "json_schema", "schema": [], "name": {}}}},
    {"reasoning": {"effort": 5}},
    {"reasoning": []},
    {"metadata": {"k": {"deep": [1]}}},
    {"temperature": "hot"},
    {"max_output_tokens": 1.5},
    {"include": [{}]},
]


def wrong_types(quick: bool) -> Iterator[Request]:
    """Objects, arrays and numbers where strings go, and the reverse, streamed and not."""
    for fields in _WRONG[::3] if quick else _WRONG:
        for stream in (True, False):
            yield _json(_base(stream, **fields))
    yield b"1e999", {}
    yield b'{"model":"m","input":"hi","temperature":1e999}', {}
    yield b'{"model":"m","input":"hi","temperature":NaN}', {}
    yield b'{"model":"m","input":"hi","stream":"yes"}', {}
    yield b'{"model":"m","input":"hi","max_output_tokens":' + b"9" * 5000 + b"}", {}


def colliding_tools(count: int) -> dict[str, Any]:
    """``count`` namespaced tools whose names all flatten to the same Chat name (``n__a_``)."""
    tools = [{"type": "function", "name": "a" + chr(0x4E00 + i)} for i in range(count)]
    return _base(False, tools=[{"type": "namespace", "name": "n", "tools": tools}])


def colliding_names(quick: bool) -> Iterator[Request]:
    """2,000 to 8,000 tool names that collide after flattening (the de-duplication cost)."""
    for count in [2_000, 4_000] if quick else [2_000, 4_000, 8_000, 8_000]:
        yield _json(colliding_tools(count))
    if not quick:  # as many as the value limit allows (1.8 MB), streamed and not
        for stream in (True, False):
            tools = [{"type": "namespace", "name": "n", "tools": _cjk_names(66_000)}]
            yield _json(_base(stream, tools=tools))


def many_items(quick: bool) -> Iterator[Request]:
    """``input`` with as many items as the body limit allows (refused: too many values), and
    with 60,000 items (served)."""
    item = b'{"role":"user","content":"x"},'
    last = b'{"role":"user","content":"x"}]}'
    count = (2_500_000 if quick else 8_300_000) // len(item)
    yield b'{"model":"m","stream":true,"input":[' + item * count + last, {}
    yield b'{"model":"m","stream":true,"input":[' + item * 60_000 + last, {}


def many_values(quick: bool) -> Iterator[Request]:
    """8 MiB of tiny values (empty arrays, zeros, empty objects): refused, /health answers."""
    size = 2_000_000 if quick else 8_300_000
    for value in (b"[]", b"0", b"{}"):
        count = size // (len(value) + 1)
        yield b'{"model":"m","input":"hi","metadata":[' + (value + b",") * count + value + b"]}", {}


def big_strings(quick: bool) -> Iterator[Request]:
    """Legitimate large bodies: one 8 MB string, and one made of JSON escapes."""
    size = 2_000_000 if quick else 8_000_000
    yield b'{"model":"m","stream":true,"input":"' + b"x" * size + b'"}', {}
    yield b'{"model":"m","stream":true,"input":"' + b"\\n" * (size // 2) + b'"}', {}


def random_bytes(quick: bool) -> Iterator[Request]:
    """Seeded random bytes, invalid UTF-8, and JSON that is not an object."""
    rng = random.Random(17)
    for _ in range(10 if quick else 60):
        yield rng.randbytes(rng.randint(0, 4096)), {}
    for raw in (b"\xff\xfe\xfd", b'{"model":"\xc3\x28"}', b'{"model":"m","input":"\xed\xa0\x80"}'):
        yield raw, {}
    for raw in (b"[]", b"1", b'"s"', b"null", b"true", b"", b" ", b"{", b"{}"):
        yield raw, {}


def body_bombs(quick: bool) -> Iterator[Request]:
    """Compressed bodies that expand far past the limit (gzip, deflate), and broken ones."""
    size = 64 * 1024 * 1024 if quick else 1024 * 1024 * 1024
    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1024 * 1024)
    parts = [gz.compress(b'{"model":"m","input":"hi"')]
    for _ in range(size // len(block)):
        parts.append(gz.compress(block))
    parts.append(gz.compress(b"}") + gz.flush())
    bomb = b"".join(parts)
    yield bomb, {"content-encoding": "gzip"}
    yield zlib.compress(b" " * (16 * 1024 * 1024), 9), {"content-encoding": "deflate"}
    yield gzip.compress(b'{"model":"m","input":"hi"}')[:-8], {"content-encoding": "gzip"}
    yield b"not gzip at all", {"content-encoding": "gzip"}
    yield b"{}", {"content-encoding": "br"}


@dataclass
class Abuse:
    name: str
    requests: Callable[[bool], Iterator[Request]]
    #: Statuses an answer may have (every other is counted in ``unexpected``).
    allowed: frozenset[int] = frozenset({200, 400, 413, 415})


ABUSES: list[Abuse] = [
    Abuse("deep_nesting", deep_nesting, frozenset({400})),
    Abuse("surrogates", surrogates, frozenset({400})),
    Abuse("wrong_types", wrong_types),
    Abuse("colliding_names", colliding_names, frozenset({200})),
    Abuse("many_items", many_items, frozenset({200, 413})),
    Abuse("many_values", many_values, frozenset({413})),
    Abuse("big_strings", big_strings, frozenset({200})),
    Abuse("random_bytes", random_bytes, frozenset({400})),
    # (a gzip body cut before its trailer still holds the whole JSON: served)
    Abuse("body_bombs", body_bombs, frozenset({200, 400, 413, 415})),
]


# ------------------------------------------------------------------------------------------------
# Running one abuse against a fresh server
# ------------------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: int = 0
    server_errors: int = 0
    hangs: int = 0
    unexpected: int = 0
    peak_rss_mb: float = 0.0
    health_max_ms: float = 0.0
    slowest_ms: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)

    def line(self) -> str:
        statuses = ",".join(f"{k}:{v}" for k, v in sorted(self.statuses.items()))
        return (
            f"abuse={self.name} requests={self.requests} 5xx={self.server_errors} "
            f"hangs={self.hangs} peak_rss_mb={self.peak_rss_mb:.0f} "
            f"health_max_ms={self.health_max_ms:.0f} slowest_ms={self.slowest_ms:.0f} "
            f"unexpected={self.unexpected} statuses={statuses}"
        )


def _complete_stream(content: bytes) -> bool:
    """Whether an SSE body ends with exactly one terminal event."""
    terminal = sum(content.count(marker + b"\n") for marker in _TERMINAL)
    if terminal != 1:
        return False
    last = content.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
    return last.startswith(_TERMINAL)


def run_abuse(abuse: Abuse, *, quick: bool) -> Result:
    """Send ``abuse``'s requests to a fresh server; the figures (and the server's stderr is
    checked for tracebacks: each counts as a 5xx)."""
    result = Result(abuse.name)
    logdir = Path(tempfile.mkdtemp(prefix="rxresponses-attack-requests-"))
    server = start_serve(
        logdir, abuse.name, "--scripted-delay-ms", "0", "--log-level", "error", "--no-access-log"
    )
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
            while not done.is_set():
                started = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):
                    client.get(server.url + "/health")
                elapsed = (time.perf_counter() - started) * 1000
                result.health_max_ms = max(result.health_max_ms, elapsed)
                done.wait(0.05)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
            for body, headers in abuse.requests(quick):
                result.requests += 1
                started = time.perf_counter()
                try:
                    response = client.post(
                        server.url + "/v1/responses",
                        content=body,
                        headers={"content-type": "application/json", **headers},
                    )
                except httpx.TimeoutException:
                    result.hangs += 1
                    continue
                except httpx.HTTPError:  # the server closed the connection: no answer
                    result.hangs += 1
                    continue
                result.slowest_ms = max(result.slowest_ms, (time.perf_counter() - started) * 1000)
                status = response.status_code
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status >= 500:
                    result.server_errors += 1
                if status not in abuse.allowed:
                    result.unexpected += 1
                is_sse = response.headers.get("content-type", "").startswith("text/event-stream")
                if status == 200 and is_sse and not _complete_stream(response.content):
                    result.hangs += 1
                if status != 200:
                    error = response.json().get("error", {})
                    if set(error) != {"message", "type", "param", "code"}:
                        result.unexpected += 1
    finally:
        done.set()
        prober.join(REQUEST_TIMEOUT + 1)
        result.peak_rss_mb = server.peak_rss_mb()
        output = server.stop()
    if "Traceback" in output or "exception was never retrieved" in output:
        result.server_errors += 1
        print(output[-3000:], file=sys.stderr)
    return result


# ------------------------------------------------------------------------------------------------
# Figures of the translation itself (in process)
# ------------------------------------------------------------------------------------------------


def _time_translation(raw: bytes, runs: int = 3) -> tuple[float, float, str]:
    """Best wall times of parse_body() and of translate_request() on ``raw``, and the outcome
    (``ok`` or the error status)."""
    from rxresponses.server._request import RequestError, parse_body, translate_request

    parse, translate, outcome = float("inf"), float("inf"), "ok"
    for _ in range(runs):
        started = time.perf_counter()
        try:
            body = parse_body(raw)
            parsed = time.perf_counter()
            translate_request(body)
        except RequestError as exc:
            outcome, parsed = str(exc.status), time.perf_counter()
        ended = time.perf_counter()
        parse, translate = min(parse, parsed - started), min(translate, ended - parsed)
    return parse, translate, outcome


def naming_scaling(quick: bool) -> list[str]:
    """Translation time for 1k..8k colliding tool names: linear work doubles per doubling.

    (Parsing is timed apart: bodies with more than 20,000 small values are parsed by the slower
    pure-Python scanner, off the event loop; 8,000 names cross that line.)
    """
    lines: list[str] = []
    previous = 0.0
    for count in (1_000, 2_000, 4_000, 8_000) if not quick else (1_000, 2_000, 4_000):
        raw = json.dumps(colliding_tools(count)).encode()
        parse, translate, _ = _time_translation(raw, runs=7)
        ratio = f" ratio={translate / previous:.2f}" if previous else ""
        lines.append(
            f"figure=colliding_names names={count} bytes={len(raw)} "
            f"translate_ms={translate * 1000:.1f}{ratio} parse_ms={parse * 1000:.1f}"
        )
        previous = translate
    return lines


def _cjk_names(count: int) -> list[dict[str, Any]]:
    return [{"name": "a" + chr(0x4E00 + i // 2000) + chr(0x4E00 + i % 2000)} for i in range(count)]


def large_bodies(quick: bool) -> list[str]:
    """Translation time of the costliest bodies up to the 8 MiB limit (each is parsed off the
    event loop when it has many values; see ``rxresponses.server._request.parse_body``)."""
    scale = 4 if quick else 1
    item = {"role": "user", "content": "x" * 100}
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    bodies = {
        "66k_colliding_names": {
            "model": "m",
            "input": "hi",
            "tools": [{"type": "namespace", "name": "n", "tools": _cjk_names(66_000 // scale)}],
        },
        "60k_input_items": {"model": "m", "input": [item] * (60_000 // scale)},
        "18k_tools_with_schemas": {
            "model": "m",
            "input": "hi",
            "tools": [
                {"type": "function", "name": f"f{i}", "parameters": schema}
                for i in range(18_000 // scale)
            ],
        },
        "big_string": {"model": "m", "input": "x" * (8_000_000 // scale)},
        "string_of_escapes": {"model": "m", "input": "\n" * (4_000_000 // scale)},
    }
    lines = []
    for name, body in bodies.items():
        raw = json.dumps(body).encode()
        parse, translate, outcome = _time_translation(raw, runs=1)
        lines.append(
            f"figure=large_body body={name} bytes={len(raw)} parse_ms={parse * 1000:.0f} "
            f"translate_ms={translate * 1000:.0f} outcome={outcome}"
        )
    tiny = b'{"model":"m","input":"hi","metadata":[' + b"[]," * (2_790_000 // scale) + b"[]]}"
    parse, translate, outcome = _time_translation(tiny, runs=1)
    lines.append(
        f"figure=large_body body=empty_arrays bytes={len(tiny)} "
        f"parse_ms={parse * 1000:.0f} outcome={outcome}"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about 30 s")
    parser.add_argument("--only", nargs="*", help="abuse names to run (default: all)")
    args = parser.parse_args(argv)
    failed = False
    if not args.only:
        for line in naming_scaling(args.quick) + large_bodies(args.quick):
            print(line, flush=True)
    for abuse in ABUSES:
        if args.only and abuse.name not in args.only:
            continue
        result = run_abuse(abuse, quick=args.quick)
        print(result.line(), flush=True)
        failed = failed or result.server_errors > 0 or result.hangs > 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

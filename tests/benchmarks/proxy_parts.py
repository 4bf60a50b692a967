"""What the server's per-chunk parts cost, each alone, in this process (issue 13).

    python tests/benchmarks/proxy_parts.py                      # this checkout
    PYTHONPATH=/path/to/other/checkout python tests/benchmarks/proxy_parts.py   # another one

The paced rows of ``proxy_bench.py`` measure the whole server, but on a shared machine their CPU
per chunk moves by +-15% from run to run; a change worth a few microseconds per chunk is lost in
that. This times the parts the server runs for each chunk of a paced stream (one Chat chunk per
upstream read) with ``timeit``, the best of 200 short repeats, which other load on the machine can
only slow down: the lean transport's chunked parsing, the conversion (the upstream chunk pushed
into the server's pipeline, the events encoded as SSE frames), and the frame encoding alone.
Parts a checkout does not have are timed as that checkout runs them (a reactivex ``Subject``
before the one-subscriber feed).
"""

from __future__ import annotations

import json
import timeit
from pathlib import Path
from typing import Any

import rxresponses
from rxresponses.server._http11 import _Body, _Connection
from rxresponses.server._pipeline import server_pipeline
from rxresponses.server._request import translate_request
from rxresponses.sse import encode_event

_HEAD = (
    b'{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1750000000,'
    b'"model":"bench","choices":[{"index":0,"delta":'
)
_TAIL = b',"logprobs":null,"finish_reason":null}]}'


def _sse(k: int) -> bytes:
    content = json.dumps({"content": f"{k:04d}@123456789;"}).encode()
    return b"data: " + _HEAD + content + _TAIL + b"\n\n"


def _best(fn: Any, number: int) -> float:
    """Microseconds per call: the best of 200 short repeats (load elsewhere only adds time)."""
    return min(timeit.repeat(fn, number=number // 100, repeat=200)) / (number // 100) * 1e6


def main() -> None:
    print(f"rxresponses from {Path(rxresponses.__file__).parent}")
    data = _sse(1)
    wire = b"%x\r\n%s\r\n" % (len(data), data)
    conn = _Connection(("upstream", 80))
    body = _Body(None, conn, length=None, chunked=True, keep_alive=True, read_timeout=None)  # type: ignore[arg-type]

    def parse() -> bytes:
        conn.buffer += wire
        return body._parse(conn)

    assert parse() == data
    print(f"lean transport: parse one chunked read        {_best(parse, 20_000):6.2f} us")

    try:
        from rxresponses.server.app import _Feed  # type: ignore[attr-defined]

        source: Any = _Feed()
        observable = source.observable
        kind = "one-subscriber feed"
    except ImportError:
        from reactivex.subject import Subject

        source = observable = Subject()
        kind = "reactivex Subject"
    translation = translate_request({"model": "bench", "input": "hi", "stream": True})
    frames: list[bytes] = []
    observable.pipe(
        server_pipeline(translation, response_id="resp_x", created_at=1, start_immediately=True)
    ).subscribe(lambda event: frames.append(encode_event(event)))
    chunks = iter([_sse(k) for k in range(3 * 20_000)])

    def convert() -> None:
        source.on_next(next(chunks))
        frames.clear()

    convert()
    print(f"conversion + SSE frames of one chunk ({kind}) {_best(convert, 20_000):6.2f} us")

    events: list[Any] = []
    from reactivex.subject import Subject

    subject: Subject[bytes] = Subject()
    subject.pipe(server_pipeline(translation, response_id="resp_y", created_at=1)).subscribe(
        events.append
    )
    subject.on_next(_sse(0) + _sse(1))
    delta = events[-1]
    assert delta.type == "response.output_text.delta", delta.type
    encode = _best(lambda: encode_event(delta), 50_000)
    print(f"encode_event(output_text.delta)              {encode:6.2f} us")


if __name__ == "__main__":
    main()

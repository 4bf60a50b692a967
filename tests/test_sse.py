"""The SSE decoder and encoder (rxresponses.sse): WHATWG framing, as LLM streams need it."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.subject import Subject

from rxresponses.errors import SSELineTooLongError
from rxresponses.operators import decode_sse
from rxresponses.sse import (
    SSEDecoder,
    SSEMessage,
    encode_event,
    encode_message,
    encode_sse,
)
from rxresponses.types._base import to_dict
from rxresponses.types.events import (
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    parse_event,
)


def decode(*chunks: bytes, flush: bool = False, **kw: Any) -> list[SSEMessage]:
    d = SSEDecoder(**kw)
    out: list[SSEMessage] = []
    for c in chunks:
        out += d.feed(c)
    if flush:
        out += d.flush()
    return out


def bytewise(data: bytes, **kw: Any) -> list[SSEMessage]:
    return decode(*(data[i : i + 1] for i in range(len(data))), **kw)


def run(source: reactivex.Observable[Any]) -> tuple[list[Any], list[Exception], bool]:
    values: list[Any] = []
    errors: list[Exception] = []
    done: list[bool] = []
    source.subscribe(values.append, errors.append, lambda: done.append(True))
    return values, errors, bool(done)


# -- line ends --


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_line_ends(eol: bytes) -> None:
    body = eol.join([b"event: ping", b"data: one", b"", b"data: two", b"data: lines", b"", b""])
    assert decode(body) == [
        SSEMessage("one", event="ping"),
        SSEMessage("two\nlines"),
    ]


def test_mixed_line_ends_in_one_stream() -> None:
    assert decode(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n") == [
        SSEMessage("a"),
        SSEMessage("b"),
        SSEMessage("c"),
    ]


def test_crlf_split_across_feeds_is_one_line_end() -> None:
    # If the LF after a chunk-final CR counted as an empty line, "a" and "b" would be two messages.
    assert decode(b"data: a\r", b"\ndata: b\r\n\r\n") == [SSEMessage("a\nb")]
    assert decode(b"data: a\r", b"\n", b"\r", b"\n") == [SSEMessage("a")]


def test_cr_at_chunk_end_then_empty_chunk_then_lf() -> None:
    assert decode(b"data: a\r", b"", b"\ndata: b\n\n") == [SSEMessage("a\nb")]


def test_cr_alone_is_a_line_end_even_at_chunk_end() -> None:
    # A chunk-final CR ends the line at once; the next chunk not starting with LF is a new line.
    assert decode(b"data: a\r", b"\rdata: b\r\r") == [SSEMessage("a"), SSEMessage("b")]


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c"])
def test_unicode_line_separators_are_data(char: str) -> None:
    payload = f'{{"content":"a{char}b"}}'
    assert decode(f"data: {payload}\n\n".encode()) == [SSEMessage(payload)]
    (message,) = decode(f"data: {payload}\n\n".encode())
    assert json.loads(message.data, strict=False)["content"] == f"a{char}b"


def test_multiline_data_joined_with_lf() -> None:
    assert decode(b'data: {\ndata:  "a": 1\ndata: }\n\n') == [SSEMessage('{\n "a": 1\n}')]


def test_data_field_forms() -> None:
    # "data:x" (no space), "data: x" (one space stripped), "data:  x" (only one stripped),
    # "data" alone (empty value).
    assert decode(b"data:x\n\ndata: x\n\ndata:  x\n\ndata\ndata: y\n\n") == [
        SSEMessage("x"),
        SSEMessage("x"),
        SSEMessage(" x"),
        SSEMessage("\ny"),
    ]


def test_empty_data_is_not_dispatched() -> None:
    # WHATWG: a lone "data:" leaves the data buffer empty, so nothing is dispatched (a keep-alive
    # some servers send must not reach the JSON parser as "").
    assert decode(b"data:\n\ndata\n\nevent: x\n\n") == []
    # Two empty data lines make "\n": that is dispatched.
    assert decode(b"data:\ndata:\n\n") == [SSEMessage("\n")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    body = b": OPENROUTER PROCESSING\n\n:\ndata: a\n: inside\nfoo: bar\nDATA: x\n\n"
    assert decode(body) == [SSEMessage("a")]


def test_event_id_retry() -> None:
    body = b"event: e1\nid: 7\nretry: 1500\ndata: a\n\ndata: b\n\nid\nretry: x\ndata: c\n\n"
    assert decode(body) == [
        SSEMessage("a", event="e1", id="7", retry=1500),
        # ``event`` is per message; ``id`` and ``retry`` persist (WHATWG last-event-id / retry)
        SSEMessage("b", event=None, id="7", retry=1500),
        # "id" with no value resets it to ""; a non-numeric retry is ignored
        SSEMessage("c", event=None, id="", retry=1500),
    ]


def test_retry_accepts_ascii_digits_only() -> None:
    # "²".isdigit() is True in Python; the spec allows ASCII digits only (this used to raise).
    assert decode("retry: ²\ndata: a\n\n".encode()) == [SSEMessage("a")]
    assert decode("retry: ٣\ndata: a\n\n".encode()) == [SSEMessage("a")]


def test_id_with_nul_is_ignored() -> None:
    assert decode(b"id: 1\n\nid: a\x00b\ndata: x\n\n") == [SSEMessage("x", id="1")]


def test_event_without_data_is_dropped_and_reset() -> None:
    assert decode(b"event: a\n\ndata: x\n\n") == [SSEMessage("x")]


# -- BOM and byte boundaries --


def test_bom_at_start_is_dropped() -> None:
    assert decode(b"\xef\xbb\xbfdata: a\n\n") == [SSEMessage("a")]
    assert decode(b"\xef", b"\xbb", b"\xbfdata: a\n\n") == [SSEMessage("a")]
    assert decode(b"\xef\xbb", b"\xbf", b"data: a\n\n") == [SSEMessage("a")]


def test_bom_only_at_the_very_start() -> None:
    # A second BOM is part of the next line, which makes the field name unknown.
    assert decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n") == [SSEMessage("b")]


def test_short_first_chunk_that_is_not_a_bom() -> None:
    assert decode(b"d", b"ata: a\n\n") == [SSEMessage("a")]
    assert decode(b"\xef", b"data: a\n\n") == []  # "\xefdata" is not the field "data"


UNICODE_BODY = (
    "\ufeff: comment\r\n"
    "event: e\r\n"
    'data: {"t":"héllo wörld ✓ 日本語 🤖 \u2028 \u0085"}\r\n'
    "\r\n"
    "data: 𝄞 multi\n"
    "data: line\r"
    "\r"
    "data: [DONE]\n\n"
).encode()


def test_byte_by_byte_equals_whole() -> None:
    whole = decode(UNICODE_BODY)
    assert whole == [
        SSEMessage('{"t":"héllo wörld ✓ 日本語 🤖 \u2028 \u0085"}', event="e"),
        SSEMessage("𝄞 multi\nline"),
        SSEMessage("[DONE]"),
    ]
    assert bytewise(UNICODE_BODY) == whole


@pytest.mark.parametrize("cut", range(1, len(UNICODE_BODY)))
def test_any_single_boundary(cut: int) -> None:
    assert decode(UNICODE_BODY[:cut], UNICODE_BODY[cut:]) == decode(UNICODE_BODY)


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode(b"data: a\xffb\n\n") == [SSEMessage("a\ufffdb")]


# -- flush --


def test_flush_dispatches_message_without_final_blank_line() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\ndata: b\n") == []
    assert d.pending
    assert d.flush() == [SSEMessage("a\nb")]
    assert not d.pending


def test_flush_discards_unterminated_last_line() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\n\ndata: cut-in-the-midd") == [SSEMessage("a")]
    assert d.pending
    assert d.flush() == []
    assert not d.pending


def test_flush_keeps_complete_lines_and_drops_the_partial_one() -> None:
    d = SSEDecoder()
    d.feed(b"data: a\ndata: cut")
    assert d.flush() == [SSEMessage("a")]


def test_flush_on_empty_decoder() -> None:
    d = SSEDecoder()
    assert not d.pending
    assert d.flush() == []


# -- line limit --


def test_line_limit_without_newline_is_bounded() -> None:
    d = SSEDecoder(max_line_bytes=4096)
    d.feed(b"data: ")
    fed = 6
    error: SSELineTooLongError | None = None
    for _ in range(1000):
        try:
            d.feed(b"x" * 1024)
        except SSELineTooLongError as exc:
            error = exc
            break
        fed += 1024
    # It raises as soon as the buffered line passes the limit, not after reading everything.
    assert error is not None
    assert error.limit == 4096
    assert fed <= 4096
    assert not d.pending  # the buffer was released


def test_line_limit_inside_a_chunk_with_newlines() -> None:
    with pytest.raises(SSELineTooLongError):
        decode(b"data: ok\n\ndata: " + b"x" * 200 + b"\n\n", max_line_bytes=100)
    # an unterminated tail longer than the limit, arriving in the same chunk as a newline
    with pytest.raises(SSELineTooLongError):
        decode(b"data: ok\n\ndata: " + b"x" * 200, max_line_bytes=100)


def test_line_at_the_limit_is_accepted() -> None:
    line = b"data: " + b"x" * 94  # 100 bytes
    assert decode(line + b"\n\n", max_line_bytes=100) == [SSEMessage("x" * 94)]
    assert decode(line, b"\n\n", max_line_bytes=100) == [SSEMessage("x" * 94)]


def test_decode_sse_operator_line_limit_errors_and_disposes_upstream() -> None:
    subject: Subject[bytes] = Subject()
    values: list[Any] = []
    errors: list[Exception] = []
    subject.pipe(decode_sse(max_line_bytes=64)).subscribe(values.append, errors.append)
    subject.on_next(b"data: a\n\n")
    for _ in range(10):
        subject.on_next(b"y" * 32)
    assert values == [SSEMessage("a")]
    assert len(errors) == 1
    assert isinstance(errors[0], SSELineTooLongError)
    assert not subject.observers  # the subscription was released


# -- the decode_sse operator --


def test_decode_sse_done_completes_and_disposes_upstream() -> None:
    subject: Subject[bytes] = Subject()
    values: list[Any] = []
    completed: list[bool] = []
    subject.pipe(decode_sse()).subscribe(values.append, on_completed=lambda: completed.append(True))
    subject.on_next(b"data: a\n\ndata: [DO")
    assert values == [SSEMessage("a")]
    assert not completed
    subject.on_next(b"NE]\n\ndata: after\n\n")
    # [DONE] is the last value (so the stages after can tell an end from a cut); not what follows
    assert values == [SSEMessage("a"), SSEMessage("[DONE]")]
    assert values[-1].is_done
    assert completed == [True]
    assert not subject.observers
    subject.on_next(b"data: later\n\n")
    assert values == [SSEMessage("a"), SSEMessage("[DONE]")]


def test_decode_sse_done_within_one_chunk() -> None:
    values, errors, done = run(
        reactivex.of(b"data: a\n\ndata: [DONE]\n\ndata: b\n\n").pipe(decode_sse())
    )
    assert (values, errors, done) == ([SSEMessage("a"), SSEMessage("[DONE]")], [], True)


def test_decode_sse_done_after_flush_at_end() -> None:
    # "[DONE]" whose blank line never came is still seen at completion
    values, errors, done = run(reactivex.of(b"data: a\n\ndata: [DONE]\n").pipe(decode_sse()))
    assert (values, errors, done) == ([SSEMessage("a"), SSEMessage("[DONE]")], [], True)


def test_decode_sse_completion_flushes() -> None:
    values, _, done = run(reactivex.of(b"data: a\n\ndata: b\n").pipe(decode_sse()))
    assert values == [SSEMessage("a"), SSEMessage("b")]
    assert done


def test_decode_sse_error_delivers_framed_messages_first() -> None:
    boom = ConnectionError("reset")
    source = reactivex.concat(reactivex.of(b"data: a\n\ndata: b\n"), reactivex.throw(boom))
    values, errors, done = run(source.pipe(decode_sse()))
    assert values == [SSEMessage("a"), SSEMessage("b")]
    assert errors == [boom]
    assert not done


def test_decode_sse_state_is_per_subscription() -> None:
    source = reactivex.of(b"data: he", b"llo\n\n").pipe(decode_sse())
    first, _, _ = run(source)
    second, _, _ = run(source)
    assert first == second == [SSEMessage("hello")]


def test_decode_sse_byte_by_byte() -> None:
    chunks = [UNICODE_BODY[i : i + 1] for i in range(len(UNICODE_BODY))]
    values, errors, done = run(reactivex.from_iterable(chunks).pipe(decode_sse()))
    assert values == [
        SSEMessage('{"t":"héllo wörld ✓ 日本語 🤖 \u2028 \u0085"}', event="e"),
        SSEMessage("𝄞 multi\nline"),
        SSEMessage("[DONE]"),
    ]
    assert (errors, done) == ([], True)


# -- encoder --


@pytest.mark.parametrize(
    "message",
    [
        SSEMessage("plain"),
        SSEMessage("two\nlines", event="e"),
        SSEMessage('{"a":"\u2028\u0085 ✓"}', event="x", id="42", retry=3000),
        SSEMessage(" leading space"),
        SSEMessage("\nstarts with a newline"),
        SSEMessage("[DONE]"),
    ],
)
def test_encode_message_round_trips(message: SSEMessage) -> None:
    encoded = encode_message(message)
    assert encoded.endswith(b"\n\n")
    assert decode(encoded) == [message]
    assert bytewise(encoded) == [message]


def test_encode_message_exact_bytes() -> None:
    assert (
        encode_message(SSEMessage("a\nb", event="e", id="1", retry=5))
        == b"event: e\nid: 1\nretry: 5\ndata: a\ndata: b\n\n"
    )


def _delta(text: str) -> ResponseTextDeltaEvent:
    return ResponseTextDeltaEvent(
        item_id="msg_1", output_index=0, content_index=0, delta=text, logprobs=[], sequence_number=3
    )


def test_encode_event_exact_bytes() -> None:
    assert encode_event(_delta("Hi")) == (
        b"event: response.output_text.delta\n"
        b'data: {"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_1",'
        b'"output_index":0,"content_index":0,"delta":"Hi","logprobs":[]}\n\n'
    )


@pytest.mark.parametrize(
    "text", ["plain", "line\nbreak\r\nand\rcr", "sep\u2028para\u2029nel\u0085", "日本語 🤖", ""]
)
def test_encode_event_round_trips(text: str) -> None:
    event = _delta(text)
    encoded = encode_event(event)
    (message,) = bytewise(encoded)
    assert message.event == "response.output_text.delta"
    assert json.loads(message.data) == to_dict(event)
    assert to_dict(parse_event(message.data)) == to_dict(event)


def test_encode_sse_operator_round_trips_through_decode_sse() -> None:
    events = [
        _delta("a\u2028b"),
        ResponseTextDoneEvent(
            item_id="msg_1", output_index=0, content_index=0, text="a\u2028b", sequence_number=4
        ),
    ]
    encoded, _, _ = run(reactivex.from_iterable(events).pipe(encode_sse()))
    assert encoded == [encode_event(e) for e in events]
    # re-chunk the bytes at odd boundaries and decode them again
    body = b"".join(encoded)
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    messages, errors, done = run(reactivex.from_iterable(pieces).pipe(decode_sse()))
    assert (errors, done) == ([], True)
    assert [m.event for m in messages] == [
        "response.output_text.delta",
        "response.output_text.done",
    ]
    assert [json.loads(m.data) for m in messages] == [to_dict(e) for e in events]


def test_decode_then_encode_preserves_a_recorded_body(fixtures_dir: Any) -> None:
    path = fixtures_dir / "responses" / "plain_text.sse"
    messages = decode(path.read_bytes(), flush=True)
    assert len(messages) == 15
    again = decode(b"".join(encode_message(m) for m in messages))
    assert again == messages


def test_decode_sse_with_other_operators() -> None:
    # decode_sse composes like any RxPY operator
    out, _, _ = run(
        reactivex.of(b"data: 1\n\ndata: 2\n\n").pipe(decode_sse(), ops.map(lambda m: int(m.data)))
    )
    assert out == [1, 2]


# -- feed_data: the fused pipeline's entry point (data only) --

_LINES = [
    b"data: ",
    b'data: {"a":1}',
    b"data: x\xffy",
    "data: é".encode(),
    b"data:x",
    b"data",
    b"event: e",
    b": comment",
    b"id: 7",
    b"retry: 5",
    b"data: [DONE]",
    b"",
]
_EOLS = [b"\n", b"\n", b"\n", b"\r\n", b"\r"]
_sse_bodies = st.lists(  # frames of lines, mostly LF-terminated; sometimes a BOM first
    st.lists(st.tuples(st.sampled_from(_LINES), st.sampled_from(_EOLS)), min_size=1, max_size=4),
    max_size=12,
).map(lambda frames: b"".join(line + eol for f in frames for line, eol in [*f, (b"", b"\n")]))


def _feed_data(body: bytes, cuts: list[int], **kw: Any) -> tuple[list[str], str | None]:
    d = SSEDecoder(**kw)
    out: list[str] = []
    bounds = [0, *sorted(c % (len(body) + 1) for c in cuts), len(body)]
    try:
        for a, b in itertools.pairwise(bounds):
            out += d.feed_data(body[a:b])
    except SSELineTooLongError as exc:
        return out, f"too long: {exc.limit}"
    return out, None


def _feed(body: bytes, **kw: Any) -> tuple[list[str], str | None]:
    d = SSEDecoder(**kw)
    out: list[str] = []
    try:
        for i in range(len(body)):  # byte by byte: never the frame shortcut
            out += [m.data for m in d.feed(body[i : i + 1])]
    except SSELineTooLongError as exc:
        return out, f"too long: {exc.limit}"
    return out, None


@settings(max_examples=400, deadline=None)
@given(
    body=_sse_bodies,
    bom=st.booleans(),
    cuts=st.lists(st.integers(0, 10_000), max_size=6),
    limit=st.sampled_from([12, 64, 1 << 20]),
)
def test_feed_data_equals_feed_on_any_input_and_any_cuts(
    body: bytes, bom: bool, cuts: list[int], limit: int
) -> None:
    """feed_data() (the fused pipeline's inlined decoder) must give the data that feed() gives
    byte by byte, and raise where it raises (then the data before it agree)."""
    body = b"\xef\xbb\xbf" + body if bom else body
    got, got_error = _feed_data(body, cuts, max_line_bytes=limit)
    want, want_error = _feed(body, max_line_bytes=limit)
    assert got_error == want_error
    if want_error is None:
        assert got == want
    else:  # the frame shortcut may have found more before the long line; never other data
        assert got[: len(want)] == want[: len(got)]


def test_feed_data_returns_the_data_of_each_message() -> None:
    body = b'data: {"a":1}\n\ndata: {"b":2}\n\nevent: e\ndata: x\n\ndata: \n\ndata: y\n\n'
    d = SSEDecoder()
    assert d.feed_data(body[:5]) == []
    assert d.feed_data(body[5:]) == ['{"a":1}', '{"b":2}', "x", "y"]
    assert not d.pending


def test_feed_data_reads_whole_frames_at_once_and_keeps_the_rest() -> None:
    # Many one-line frames in one read (the usual LLM stream), then one cut mid-line: the data
    # of each frame, and the cut line completed by the next read.
    d = SSEDecoder(max_line_bytes=16)
    assert d.feed_data(b"data: 0\n\n") == ["0"]
    body = b"".join(b"data: %d\n\n" % i for i in range(1, 50)) + "data: é\n\ndata: ab".encode()
    assert d.feed_data(body) == [str(i) for i in range(1, 50)] + ["é"]
    assert d.feed_data(b"c\n\ndata: \n\ndata: 0123456789\n\n") == ["abc", "0123456789"]
    with pytest.raises(SSELineTooLongError):  # a line of 17 bytes, over the limit of 16
        d.feed_data(b"data: 0\n\ndata: 01234567890\n\n")

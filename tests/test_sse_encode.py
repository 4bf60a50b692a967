"""``encode_event``'s template for ``response.output_text.delta``: the same bytes as pydantic's
serializer (``to_json``) on every text, or the usual path where the template does not apply.

The reference is what ``encode_event`` wrote before the template: ``to_json`` (pydantic's
``model_dump_json``) inside an ``event:`` + ``data:`` frame.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from rxresponses import from_file
from rxresponses.operators._core import Fragments, delta_maker
from rxresponses.pipelines import chat_sse_to_responses
from rxresponses.sse import SSEDecoder, _text_delta_frame, encode_event, encode_event_data
from rxresponses.types import _compat
from rxresponses.types._base import to_json
from rxresponses.types.events import ResponseTextDeltaEvent, parse_event
from tests._util import Ids
from tests.conftest import CHAT_FIXTURES, RESPONSES_FIXTURES, fixture_params

_ITEM = {"item_id": "msg_1", "output_index": 0, "content_index": 0, "logprobs": []}


def _reference(event: Any) -> bytes:
    return f"event: {event.type}\ndata: {to_json(event)}\n\n".encode()


def _built(delta: str, *, item_id: str = "msg_1", sequence_number: int = 3) -> Any:
    """A delta as the conversion builds it (the per-token path: ``delta_maker``)."""
    make = delta_maker(ResponseTextDeltaEvent, Fragments(), {**_ITEM, "item_id": item_id})
    event = make(delta)
    event.sequence_number = sequence_number  # as the assembler numbers it
    return event


def _same(event: Any) -> bool:
    """Both encodings give the same bytes, or both fail alike; True when the template wrote it."""
    template = type(event) is ResponseTextDeltaEvent and _text_delta_frame(event) is not None
    try:
        expected = _reference(event)
    except PydanticSerializationError:
        with pytest.raises(PydanticSerializationError):
            encode_event(event)
        return template
    frame, data = encode_event_data(event)
    assert frame == expected
    assert data == to_json(event)
    assert encode_event(event) == expected
    return template


def test_the_template_writes_these_exact_bytes() -> None:
    event = _built('q"b\\s\x00\x08\t\n\x0b\x0c\r\x1f\x7f \u2028\u0085 é 日 😀', sequence_number=12)
    assert _text_delta_frame(event) is not None
    assert encode_event(event) == (
        b"event: response.output_text.delta\n"
        b'data: {"type":"response.output_text.delta","sequence_number":12,"item_id":"msg_1",'
        b'"output_index":0,"content_index":0,"delta":"q\\"b\\\\s\\u0000\\b\\t\\n\\u000b\\f\\r'
        b'\\u001f\x7f \xe2\x80\xa8\xc2\x85 \xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80","logprobs":[]}'
        b"\n\n"
    )


def test_every_code_point_is_written_as_pydantic_writes_it() -> None:
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(chars), 50_000):
        text = "".join(chars[start : start + 50_000])
        assert _same(_built(text))
        assert _same(_built("x", item_id=text[:300]))


def test_a_lone_surrogate_fails_as_before() -> None:
    # pydantic cannot write a lone surrogate as UTF-8: the template leaves it to the usual path,
    # which raises what it always raised (the server never builds one: parsing refuses them).
    for text in ("\ud800", "a\udc00b", "\ud83d", "😀\udfff"):
        with pytest.raises(PydanticSerializationError):
            encode_event(_built(text))
        with pytest.raises(PydanticSerializationError):
            encode_event(_built("x", item_id=text))


hostile = st.text(
    st.one_of(
        st.characters(codec="utf-8"),
        st.characters(max_codepoint=0x7F),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
        st.sampled_from(['"', "\\", "\x00", "\x1f", "\x7f", "\u2028", "\ufeff", "\U0010ffff"]),
    ),
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(
    delta=hostile, item_id=hostile, sequence_number=st.integers(0, 2**70), index=st.integers(0, 9)
)
def test_hostile_text_is_written_as_pydantic_writes_it(
    delta: str, item_id: str, sequence_number: int, index: int
) -> None:
    make = delta_maker(
        ResponseTextDeltaEvent,
        Fragments(),
        {**_ITEM, "item_id": item_id, "output_index": index, "content_index": index + 1},
    )
    event = make(delta)
    event.sequence_number = sequence_number
    _same(event)


def _unusual() -> list[tuple[str, Any]]:
    """Deltas the template does not write (each differs from the per-token shape in one way)."""
    logprob = {"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}
    with_logprobs = ResponseTextDeltaEvent(**{**_ITEM, "delta": "Hi", "logprobs": [logprob]})
    extra = ResponseTextDeltaEvent(**_ITEM, delta="Hi", obfuscation="xyz")  # type: ignore[call-arg]
    parsed = parse_event(
        '{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1",'
        '"output_index":0,"content_index":0,"delta":"Hi"}'
    )  # from the wire without logprobs: not written
    flag = _built("Hi")
    flag.sequence_number = True  # type: ignore[assignment]
    subclass = _built("Hi")
    subclass.delta = type("Text", (str,), {})("Hi")
    unset = _built("Hi")
    unset.model_fields_set.discard("logprobs")
    return [
        ("logprobs", with_logprobs),
        ("extra field", extra),
        ("parsed without logprobs", parsed),
        ("bool sequence number", flag),
        ("str subclass", subclass),
        ("a field unset", unset),
    ]


@pytest.mark.parametrize(("name", "event"), _unusual(), ids=[n for n, _ in _unusual()])
def test_other_shapes_take_the_usual_path(name: str, event: Any) -> None:
    assert not _same(event)


def test_the_compat_fallback_builds_deltas_the_template_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fails(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the fast path must not run")

    monkeypatch.setattr(_compat, "FAST", False)
    for name in ("_make_fast", "_deep", "_deep_model"):
        monkeypatch.setattr(_compat, name, fails)
    assert _same(_built('a "quoted"\nline'))


@pytest.mark.parametrize("path", fixture_params(CHAT_FIXTURES))
def test_every_event_of_a_chat_recording_is_written_as_before(path: Path) -> None:
    events: list[Any] = []
    errors: list[Exception] = []
    pipeline = chat_sse_to_responses(ids=Ids(), response_id="resp_test", created_at=1)
    from_file(path).pipe(pipeline).subscribe(events.append, errors.append)
    assert errors == []
    written = [_same(event) for event in events]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    # every delta without logprobs took the template
    assert sum(written) == sum(1 for e in deltas if not e.logprobs)


@pytest.mark.parametrize("path", fixture_params(RESPONSES_FIXTURES))
def test_every_event_of_a_responses_recording_is_written_as_before(path: Path) -> None:
    decoder = SSEDecoder()
    messages = decoder.feed(path.read_bytes()) + decoder.flush()
    for message in messages:
        if message.is_done:
            continue
        try:
            event = parse_event(message.data)
        except ValidationError:
            continue  # a recording cut inside an event
        _same(event)
        if event.type == "response.output_text.delta":
            # parsed from the wire: the usual path, which gives back the object as received
            assert json.loads(to_json(event)) == json.loads(message.data)

"""The fused SSE pipeline's fast path emits exactly what the typed path emits.

``chat_sse_to_responses()`` decodes SSE, reads the common chunk shapes without validating a
``ChatCompletionChunk`` (``FastChunkReader``) and drives the fused stages. The reference here is
the typed composition it replaces, ``decode_sse() | parse_chunks() | chat_to_responses()``; both
must give the same events (``to_dict`` dumps, ``completed_at`` removed, deterministic ids) and the
same error, on the recordings, the demo, scripted streams and generated odd streams, with orjson
and with the stdlib ``json`` fallback.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import reactivex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reactivex import operators as ops

from rxresponses import operators as rxo
from rxresponses.operators import _parse
from rxresponses.operators._final import Fragments
from rxresponses.pipelines import chat_sse_to_responses, chat_to_responses
from rxresponses.scripted import ScriptedToolCall, ScriptedTurn, chat_chunks, chat_sse
from rxresponses.sources import from_bytes
from rxresponses.sse import DEFAULT_MAX_LINE_BYTES
from rxresponses.types import chat as chat_types
from rxresponses.types.chat import FastChunkReader
from tests._util import Ids, dumps
from tests.conftest import CHAT_FIXTURES, fixture_params
from tests.fuzz.generators import generate
from tests.test_properties import PROPERTY, body_of, odd_streams

DEMO = Path(__file__).resolve().parents[1] / "rxresponses" / "data" / "demo.sse"


@pytest.fixture(params=["orjson", "json"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test with orjson (when installed) and with the stdlib fallback."""
    if request.param == "json":
        monkeypatch.setattr(chat_types, "_loads", chat_types._json_loads)
    else:
        pytest.importorskip("orjson")
    return str(request.param)


def _run(pipeline: Any, pieces: list[bytes]) -> tuple[list[dict[str, Any]], str | None]:
    events: list[Any] = []
    errors: list[Exception] = []
    from_bytes(pieces).pipe(pipeline).subscribe(events.append, errors.append)
    error = f"{type(errors[0]).__name__}: {errors[0]}" if errors else None
    return dumps(events, wall_clock=False), error


def _both(
    pieces: list[bytes], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, **options: Any
) -> tuple[Any, Any]:
    def opts() -> dict[str, Any]:
        return {"ids": Ids(), "response_id": "resp_test", "created_at": 1, **options}

    typed = reactivex.compose(  # what chat_sse_to_responses() was before the fast path
        rxo.decode_sse(max_line_bytes=max_line_bytes),
        rxo.parse_chunks(),
        ops.map(lambda chunk: chunk),  # an Rx hop: the driver does not fuse across it
        chat_to_responses(**opts()),
    )
    fast = chat_sse_to_responses(max_line_bytes=max_line_bytes, **opts())
    return _run(fast, pieces), _run(typed, pieces)


def _assert_same(
    pieces: list[bytes], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, **options: Any
) -> list[dict[str, Any]]:
    fast, typed = _both(pieces, max_line_bytes=max_line_bytes, **options)
    assert fast == typed
    # The operators piped one after another fuse in the driver (ChatSplitStage reads the same
    # common shapes): the same events again.
    staged = reactivex.compose(
        rxo.decode_sse(max_line_bytes=max_line_bytes),
        rxo.parse_chunks(),
        chat_to_responses(ids=Ids(), response_id="resp_test", created_at=1, **options),
    )
    assert _run(staged, pieces) == typed
    return fast[0]


def _pieces(body: bytes, size: int = 97) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)] or [b""]


@pytest.mark.parametrize("path", fixture_params(CHAT_FIXTURES))
def test_fast_path_equals_typed_path_on_recordings(path: Path, loader: str) -> None:
    body = path.read_bytes()
    _assert_same([body])
    _assert_same(_pieces(body))


def test_fast_path_equals_typed_path_on_demo(loader: str) -> None:
    events = _assert_same(_pieces(DEMO.read_bytes()))
    assert events[-1]["type"] == "response.completed"
    _assert_same([DEMO.read_bytes()], reasoning_as_summary=True, think_tags=False)


def _scripted_turns() -> Iterator[ScriptedTurn]:
    yield ScriptedTurn(text="Hello, world! " * 20)
    yield ScriptedTurn(reasoning="Let me think. " * 10, text="Answer: 42.")
    yield ScriptedTurn(text="<think>inline</think>  visible")
    yield ScriptedTurn(
        reasoning="two calls",
        tool_calls=(
            ScriptedToolCall("get_weather", '{"city": "Paris"}'),
            ScriptedToolCall("get_weather", '{"city": "Tokyo", "unit": "c"}'),
        ),
    )
    yield ScriptedTurn(text="cut short", finish_reason="length")
    yield ScriptedTurn(text='é日🤖\u2028𝄞 \\ " done', finish_reason="content_filter")


@pytest.mark.parametrize("turn", list(_scripted_turns()))
@pytest.mark.parametrize("seed", [0, 1])
def test_fast_path_equals_typed_path_on_scripted_streams(
    turn: ScriptedTurn, seed: int, loader: str
) -> None:
    body = b"".join(chat_sse(chat_chunks(turn, seed=seed)))
    _assert_same(_pieces(body, 61))
    _assert_same([body], choice_index=1)  # no chunk of choice 1: every one declines


@pytest.mark.parametrize(
    ("done", "says"),
    [
        (True, "upstream sent [DONE] without a finish_reason for choice 0"),
        (False, "upstream stream ended before a finish_reason"),
    ],
)
def test_done_without_finish_reason_is_told_from_a_cut(done: bool, says: str, loader: str) -> None:
    # Every path (fused, typed with an Rx hop, staged) says the same: [DONE] without a
    # finish_reason is the upstream's own end, not a dropped connection.
    body = b"".join(chat_sse(chat_chunks(ScriptedTurn(text="no reason given"))))
    cut = body.split(b'"finish_reason":"stop"')[0].rsplit(b"data:", 1)[0]  # the text, no stop
    assert b'"stop"' not in cut
    assert b"[DONE]" not in cut
    pieces = _pieces(cut + (b"data: [DONE]\n\n" if done else b""), 53)
    events = _assert_same(pieces)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"] == {"code": "server_error", "message": says}
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "no reason given"


def test_done_without_finish_reason_of_the_chosen_choice(loader: str) -> None:
    body = b"".join(chat_sse(chat_chunks(ScriptedTurn(text="choice 0 only"))))
    events = _assert_same([body], choice_index=1)
    assert events[-1]["response"]["error"]["message"] == (
        "upstream sent [DONE] without a finish_reason for choice 1"
    )


def test_fast_path_is_taken(monkeypatch: pytest.MonkeyPatch, loader: str) -> None:
    """The equality tests above are not vacuous: most chunks of a stream take the fast path."""
    calls = {"fast": 0, "slow": 0}
    read_new = FastChunkReader.read_new

    def counting(self: FastChunkReader, data: str) -> Any:
        fields = read_new(self, data)
        calls["fast" if fields is not None else "slow"] += 1
        return fields

    read_run = FastChunkReader.read_run

    def counting_runs(self: FastChunkReader, datas: Any, start: int) -> Any:
        slot, index, texts = read_run(self, datas, start)
        calls["fast"] += len(texts)  # each string is one chunk read without parse_chunk()
        return slot, index, texts

    validated: list[Any] = []
    parse_chunk = _parse.parse_chunk

    def counting_parse(data: Any) -> Any:
        validated.append(data)
        return parse_chunk(data)

    monkeypatch.setattr(FastChunkReader, "read_new", counting)
    monkeypatch.setattr(FastChunkReader, "read_run", counting_runs)
    monkeypatch.setattr(_parse, "parse_chunk", counting_parse)
    turn = ScriptedTurn(
        reasoning="r" * 50,
        text="t" * 50,
        tool_calls=(ScriptedToolCall("f", '{"a": 1}'),),
    )
    fast, typed = _both([b"".join(chat_sse(chat_chunks(turn)))])
    assert fast == typed
    assert calls["fast"] > 20
    assert calls["slow"] <= 3
    # The first chunk (role), the finish chunk and the usage chunk are read without pydantic
    # too (read_new, read_end): the fast pipeline validated no chunk; the typed one, every one.
    assert len(validated) == len(list(chat_chunks(turn)))


@pytest.mark.parametrize(
    "data",
    [
        '{"choices":[{"index":0,"delta":{"content":"x"}}]}',
        '{"id":"a","choices":[{"delta":{"reasoning_content":"x","content":null}}]}',
        '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}',
    ],
)
def test_reader_accepts_the_common_shapes(data: str, loader: str) -> None:
    assert FastChunkReader().read(data) is not None


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        "[]",
        '{"choices":[]}',
        '{"choices":[{"index":1,"delta":{"content":"x"}}]}',
        '{"choices":[{"index":true,"delta":{"content":"x"}}]}',
        '{"choices":[{"index":0.0,"delta":{"content":"x"}}]}',
        '{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}',
        '{"choices":[{"delta":{"content":["a"]}}]}',
        '{"choices":[{"delta":{"content":1}}]}',
        '{"choices":[{"delta":{"refusal":"no"}}]}',
        '{"choices":[{"delta":{"reasoning_details":[]}}]}',
        '{"choices":[{"delta":{"tool_calls":[]}}]}',
        '{"choices":[{"delta":{"tool_calls":[{"index":"0"}]}}]}',
        '{"choices":[{"delta":null}]}',
        '{"id":1,"choices":[{"delta":{"content":"x"}}]}',
        '{"id":null,"choices":[{"delta":{"content":"x"}}]}',
        '{"created":NaN,"choices":[{"delta":{"content":"x"}}]}',
        '{"usage":{},"choices":[{"delta":{"content":"x"}}]}',
        '{"x_groq":{},"choices":[{"delta":{"content":"x"}}]}',
        '{"error":{"message":"m"},"choices":[{"delta":{"content":"x"}}]}',
        '{"choices":[{"delta":{"content":"\\ud800"}}]}',
        # sources and citations: the splitter reads them (Perplexity, OpenAI search models)
        '{"citations":["https://a"],"choices":[{"delta":{"content":"x"}}]}',
        '{"search_results":[],"choices":[{"delta":{"content":"x"}}]}',
        '{"choices":[{"delta":{"annotations":[{"type":"url_citation"}]}}]}',
        '{"choices":[{"delta":{"content":"x","annotations":[]}}]}',
    ],
)
def test_reader_declines_everything_else(data: str, loader: str) -> None:
    assert FastChunkReader().read(data) is None


_USAGE = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}', ("stop", None)),
        (
            '{"id":"c","model":"m","created":1.5,"choices":[{"index":0,"delta":{"role":"assistant",'
            '"content":"","tool_calls":null},"logprobs":null,"finish_reason":"length"}]}',
            ("length", None),
        ),
        (
            '{"choices":[{"delta":{"content":null},"finish_reason":"tool_calls"}]}',
            ("tool_calls", None),
        ),
        ('{"choices":[],"usage":' + json.dumps(_USAGE) + "}", (None, _USAGE)),
        ('{"choices":[],"usage":{}}', (None, {})),
        (
            '{"choices":[],"usage":{"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":1},'
            '"completion_tokens_details":null,"prompt_cache_hit_tokens":2,"x":[1]}}',
            (
                None,
                {
                    "prompt_tokens": 3,
                    "prompt_tokens_details": {"cached_tokens": 1},
                    "completion_tokens_details": None,
                    "prompt_cache_hit_tokens": 2,
                    "x": [1],
                },
            ),
        ),
        (
            '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":'
            + json.dumps(_USAGE)
            + "}",
            ("stop", _USAGE),
        ),
    ],
)
def test_reader_reads_the_end_of_a_stream(data: str, expected: Any, loader: str) -> None:
    assert FastChunkReader().read_end(data) == expected
    assert FastChunkReader().read(data) is None  # not a delta: read_new declines it


_DECLINED_ENDS = [
    "not json",
    "[]",
    '{"choices":[]}',
    '{"choices":[],"usage":null}',
    '{"usage":' + json.dumps(_USAGE) + "}",
    '{"choices":[{"index":0,"delta":{}}]}',
    '{"choices":[{"index":0,"delta":{},"finish_reason":""}]}',
    '{"choices":[{"index":0,"delta":{},"finish_reason":1}]}',
    '{"choices":[{"index":1,"delta":{},"finish_reason":"stop"}]}',
    '{"choices":[{"index":true,"delta":{},"finish_reason":"stop"}]}',
    '{"choices":[{"index":0,"delta":{},"finish_reason":"stop","logprobs":{}}]}',
    '{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}',
    '{"choices":[{"index":0,"delta":{"role":1},"finish_reason":"stop"}]}',
    '{"choices":[{"index":0,"delta":{"tool_calls":[]},"finish_reason":"stop"}]}',
    '{"choices":[{"index":0,"delta":null,"finish_reason":"stop"}]}',
    '{"choices":[{"index":0,"finish_reason":"stop"},{"index":1,"finish_reason":"stop"}]}',
    '{"choices":[],"usage":{"prompt_tokens":1.0}}',
    '{"choices":[],"usage":{"prompt_tokens":"1"}}',
    '{"choices":[],"usage":{"total_tokens":true}}',
    '{"choices":[],"usage":{"prompt_tokens_details":[]}}',
    '{"choices":[],"usage":[]}',
    '{"choices":[],"usage":{},"x_groq":{}}',
    '{"choices":[],"usage":{},"error":{"message":"m"}}',
    '{"choices":[],"usage":{},"model":null}',
    '{"choices":[],"usage":{},"citations":["https://a"]}',
]


@pytest.mark.parametrize("data", _DECLINED_ENDS)
def test_reader_declines_other_ends(data: str, loader: str) -> None:
    assert FastChunkReader().read_end(data) is None


@pytest.mark.parametrize(
    "ending",
    [
        '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
        '{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"length"}]}',
        '{"choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}],"usage":'
        + json.dumps(_USAGE)
        + "}",
        '{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":9,'
        '"completion_tokens_details":{"reasoning_tokens":3}}}',
        '{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"prompt_cache_hit_tokens":3}}',
        *_DECLINED_ENDS,
    ],
)
def test_fast_path_equals_typed_path_on_stream_ends(ending: str, loader: str) -> None:
    """Each ending after an answer, and after a finish chunk: the same events, read fast or
    not (the declined ones are read by pydantic, which may fail the stream)."""
    answer = '{"id":"c","model":"m","created":1,"choices":[{"index":0,"delta":{"content":"Hi"}}]}'
    finish = '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
    for datas in ([answer, ending], [answer, finish, ending], [answer, ending, finish]):
        body = "".join(f"data: {d}\n\n" for d in [*datas, "[DONE]"]).encode()
        _assert_same([body])


def _chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, **extra}],
    }


def _args(index: int, text: str) -> dict[str, Any]:
    return _chunk({"tool_calls": [{"index": index, "function": {"arguments": text}}]})


def _call(index: int, name: str) -> dict[str, Any]:
    fn = {"name": name, "arguments": ""}
    return _chunk({"tool_calls": [{"index": index, "id": f"call_{index}", "function": fn}]})


def test_fast_lanes_follow_item_switches(loader: str) -> None:
    """Consecutive deltas of one item take a lane that skips the splitter; every switch of item
    or kind, and every chunk read the slow way, must close it. The stream below switches at
    each step and must convert as the typed path does, to the character."""
    chunks = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"reasoning_content": "th"}),
        _chunk({"reasoning_content": "ink"}),
        _chunk({"content": "Hel"}),
        _chunk({"content": "lo"}),
        _chunk({"content": " <"}),  # a possible tag start: the text lane must hold it back
        _chunk({"content": "b> there"}),
        _chunk({"content": "!"}, logprobs=None),  # read the slow way
        _chunk({"content": "?"}),
        _call(0, "f"),
        _args(0, '{"a"'),
        _args(0, ": 1"),
        _call(1, "g"),
        _args(1, '{"b"'),
        _args(0, "}"),  # back to call 0 after call 1 opened
        _args(1, ": 2"),
        _args(1, "}"),
        _args(0, ""),
        _chunk({}, finish_reason="tool_calls"),
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    for size in (len(body), 53, 7):
        events = _assert_same(_pieces(body.encode(), size))
        final = events[-1]["response"]
        assert events[-1]["type"] == "response.completed"
        texts = [part.get("text") for item in final["output"] for part in item.get("content") or []]
        assert texts == ["think", "Hello <b> there!?"]
        calls = [
            (i["name"], i["arguments"]) for i in final["output"] if i["type"] == "function_call"
        ]
        assert calls == [("f", '{"a": 1}'), ("g", '{"b": 2}')]


@pytest.mark.parametrize(
    "delta",
    [
        '{"content":"x"}',
        '{"content":""}',
        '{"reasoning_content":"r"}',
        '{"reasoning_content":""}',
        '{"reasoning":"r"}',
        '{"tool_calls":[{"index":2,"function":{"arguments":"{\\"a"}}]}',
        '{"tool_calls":[{"index":0,"function":{"arguments":""}}]}',
        '{"tool_calls":[{"index":true,"function":{"arguments":"x"}}]}',
        '{"tool_calls":[{"index":0,"function":{"arguments":1}}]}',
        '{"tool_calls":[{"index":0,"function":{"name":"f"}}]}',
        '{"tool_calls":[{"index":0,"function":{"arguments":"x"}},{"index":1}]}',
        '{"content":["x"]}',
    ],
)
def test_reader_single_key_shortcut_reads_as_the_general_path(delta: str, loader: str) -> None:
    """A one-key delta (most token chunks) takes a shortcut; adding a ``null`` key sends the
    same delta through the general reading, which must read it the same (or decline both)."""
    head, tail = '{"choices":[{"index":0,"delta":', "}]}"
    shortcut = FastChunkReader().read(head + delta + tail)
    general = FastChunkReader().read(head + delta[:-1] + ',"role":null}' + tail)
    assert shortcut == general


_TRICKY = st.sampled_from(
    ["", "a", "m", ",", '","', '"', '\\"', "\\", "é", "日本", "\u2028", "\x00", '"},"x":"', "null"]
)


def _chunk_text(delta: dict[str, Any], top: dict[str, Any], ascii_only: bool) -> str:
    body = {**top, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    return json.dumps(body, ensure_ascii=ascii_only, separators=(",", ":"))


@st.composite
def _chunk_texts(draw: st.DrawFn) -> list[str]:
    """Runs of chunks that mostly differ only in their one string, with the odd one that
    differs elsewhere (id, model, a nonce, another slot, two keys, a tool index)."""
    ascii_only = draw(st.booleans())
    texts = []
    for _ in range(draw(st.integers(1, 30))):
        text = "".join(draw(st.lists(_TRICKY, max_size=3)))
        top = {"id": draw(st.sampled_from(["c1", "c1", "c1", "c2"])), "model": "m"}
        if draw(st.integers(0, 9)) == 0:
            top["nonce"] = draw(st.text(max_size=3))
        slot = draw(
            st.sampled_from(
                ["content", "content", "reasoning_content", "reasoning", "tool", "both", "pair"]
            )
        )
        if slot == "tool":
            index = draw(st.integers(0, 5))
            delta: dict[str, Any] = {
                "tool_calls": [{"index": index, "function": {"arguments": text}}]
            }
        elif slot == "both":
            delta = {"content": text, "reasoning_content": draw(_TRICKY)}
        elif slot == "pair":
            delta = {"reasoning_content": text, "reasoning": draw(_TRICKY)}
        else:
            delta = {slot: text}
        texts.append(_chunk_text(delta, top, ascii_only))
    return texts


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the loader holds for all
)
@given(texts=_chunk_texts())
def test_reader_templates_read_as_the_whole_reading(texts: list[str], loader: str) -> None:
    """One reader over a stream (templates learned and used) reads every chunk as a new reader
    reads it whole."""
    reader = FastChunkReader()
    for text in texts:
        assert reader.read(text) == FastChunkReader().read(text), text


def _slot_fields(slot: int, index: int | None, text: str) -> Any:
    """What ``read()`` gives for a chunk with ``text`` in ``slot``."""
    if slot == 0:
        return text, None, None
    if slot == 1:
        return None, text, None
    return None, None, (index, None, None, text)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the loader holds for all
)
@given(texts=_chunk_texts())
def test_reader_runs_read_as_the_whole_reading(texts: list[str], loader: str) -> None:
    """A run (``read_run``: the chunks after one that a template reads, in one call) reads each
    chunk as a new reader reads it whole; a chunk no template reads is read whole
    (``read_new``), and then may teach a template."""
    reader = FastChunkReader()
    k = 0
    while k < len(texts):
        slot, index, run = reader.read_run(texts, k)
        if not run:
            assert reader.read_new(texts[k]) == FastChunkReader().read(texts[k]), texts[k]
            k += 1
            continue
        for text, value in zip(texts[k:], run, strict=False):
            assert _slot_fields(slot, index, value) == FastChunkReader().read(text), text
        k += len(run)


def test_reader_run_ends_where_the_template_stops_reading(loader: str) -> None:
    top = {"id": "c1", "model": "m"}
    reader = FastChunkReader()
    first = _chunk_text({"content": "Hel"}, top, False)
    assert reader.read_run([first], 0) == (0, None, [])  # no template yet
    assert reader.read_new(first) == ("Hel", None, None)
    datas: list[Any] = [
        _chunk_text({"content": "lo"}, top, False),
        _chunk_text({"content": ' "x"\n'}, top, False),  # escaped: read as JSON, same run
        _chunk_text({"content": "!"}, top, False),
        _chunk_text({"reasoning_content": "r"}, top, False),  # another slot: the run ends
        _chunk_text({"content": "a"}, top, False),
        b"not a str",
    ]
    assert reader.read_run(datas, 0) == (0, None, ["lo", ' "x"\n', "!"])
    assert reader.read_run(datas, 3) == (0, None, [])
    assert reader.read_run(datas, 4) == (0, None, ["a"])  # ends at the value that is no text
    assert reader.read_run(datas, 5) == (0, None, [])


def test_reader_template_is_used_and_checked(loader: str) -> None:
    top = {"id": "c1", "model": "m"}
    reader = FastChunkReader()
    assert reader.read(_chunk_text({"content": "Hel"}, top, False)) == ("Hel", None, None)
    assert reader._templates  # learned from the first chunk
    loads = []
    real = chat_types._loads

    def counting(data: str) -> Any:
        loads.append(data)
        return real(data)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chat_types, "_loads", counting)
        assert reader.read(_chunk_text({"content": 'lo "x"'}, top, False)) == (
            'lo "x"',
            None,
            None,
        )
        assert loads == ['"lo \\"x\\""']  # only the string token was parsed
        # The same prefix and suffix around something that is not one string: read whole.
        forged = _chunk_text({"content": "a"}, top, False).replace('"a"', '"a","refusal":"no"')
        assert reader.read(forged) is None
        # Another field changed (the last chunk's finish_reason): read whole, declined.
        last = _chunk_text({"content": "!"}, top, False).replace(
            '"finish_reason":null', '"finish_reason":"stop"'
        )
        assert reader.read(last) is None


def test_reader_template_needs_the_probe_to_read_back(loader: str) -> None:
    """The token of the text may be found elsewhere than in its slot (here the server escaped
    the text, and the model has the same value): the probe catches it, and a chunk that
    differs there is not read as if its model were the text."""
    escaped = '"\\u0061b"'  # "ab", written escaped
    first = '{"id":"c1","model":"ab","choices":[{"index":0,"delta":{"content":' + escaped + "}}]}"
    other = first.replace('"model":"ab"', '"model":"zz"')
    reader = FastChunkReader()
    assert reader.read(first) == ("ab", None, None)
    assert reader.read(other) == ("ab", None, None)


def test_reader_stops_learning_when_templates_never_match(loader: str) -> None:
    """A server whose chunks differ in more than their text (a nonce) never matches a template:
    the reader stops trying to learn one rather than pay for it on every chunk."""
    reader = FastChunkReader()
    learned = []
    learn = FastChunkReader._learn

    def counting(self: FastChunkReader, data: str, fields: Any) -> None:
        learned.append(data)
        learn(self, data, fields)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(FastChunkReader, "_learn", counting)
        for i in range(50):
            text = _chunk_text({"content": f"t{i}"}, {"id": "c1", "nonce": str(i)}, False)
            assert reader.read(text) == (f"t{i}", None, None)
    assert len(learned) <= 8


@PROPERTY
@given(chunks=odd_streams(), size=st.integers(1, 400), loader=st.sampled_from(["orjson", "json"]))
def test_fast_path_equals_typed_path_on_odd_streams(
    chunks: list[dict[str, Any]], size: int, loader: str
) -> None:
    body = body_of(chunks, "\n")
    with pytest.MonkeyPatch.context() as mp:
        if loader == "json":
            mp.setattr(chat_types, "_loads", chat_types._json_loads)
        _assert_same(_pieces(body, size))


@PROPERTY
@given(
    category=st.sampled_from(["json_chunks", "mutated", "valid_cut", "raw_bytes"]),
    index=st.integers(0, 10_000),
    loader=st.sampled_from(["orjson", "json"]),
)
def test_fast_path_equals_typed_path_on_fuzz_inputs(category: str, index: int, loader: str) -> None:
    inp = generate(category, 7, index)
    with pytest.MonkeyPatch.context() as mp:
        if loader == "json":
            mp.setattr(chat_types, "_loads", chat_types._json_loads)
        _assert_same(list(inp.pieces), max_line_bytes=inp.max_line_bytes, **inp.options)


def test_json_fallback_matches_orjson_on_a_random_stream() -> None:
    rng = random.Random(5)
    turn = ScriptedTurn(text="".join(rng.choice('ab é\n"\\') for _ in range(300)))
    body = b"".join(chat_sse(chat_chunks(turn)))
    with_orjson = _both([body])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chat_types, "_loads", chat_types._json_loads)
        assert _both([body]) == with_orjson


# -- generated chunks near the common shapes: every field the reader checks, right and wrong ----

_TEXTS = st.sampled_from(["", "a", " b", "<think>", "</think>", "é", "{", '"}'])
_ODD = st.one_of(st.none(), st.integers(-1, 2), st.booleans(), st.just(0.0), st.just([]))
_STRINGS = st.one_of(_TEXTS, st.none())


def _usually(draw: st.DrawFn, good: Any, odd: Any = _ODD, one_in: int = 8) -> Any:
    """A value of ``good``, or (one time in ``one_in``) one of ``odd``: the reader must decline."""
    return draw(odd) if draw(st.integers(1, one_in)) == 1 else draw(good)


@st.composite
def _tool_calls(draw: st.DrawFn) -> Any:
    call: dict[str, Any] = {}
    for key, good, odd in (
        ("index", st.integers(0, 2), st.sampled_from([None, True, "0", 1.0])),
        ("id", st.sampled_from(["call_a", "call_b", ""]), st.sampled_from([None, 1])),
        ("type", st.just("function"), st.sampled_from([None, 3])),
    ):
        if draw(st.booleans()):
            call[key] = _usually(draw, good, odd)
    if draw(st.integers(0, 5)):
        fn: dict[str, Any] = {}
        if draw(st.booleans()):
            fn["name"] = _usually(draw, st.sampled_from(["f", "g", ""]), st.sampled_from([None, 2]))
        if draw(st.integers(0, 3)):
            fn["arguments"] = _usually(draw, _TEXTS, st.sampled_from([None, 5]))
        call["function"] = _usually(draw, st.just(fn), st.sampled_from([None, "f"]))
    return _usually(draw, st.just([call]), st.sampled_from([[call, call], [], None, "x"]))


@st.composite
def _wild_chunk(draw: st.DrawFn) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    for key in ("role", "content", "reasoning_content", "reasoning"):
        if draw(st.booleans()):
            delta[key] = _usually(draw, _STRINGS)
    if draw(st.integers(0, 2)) == 0:
        delta["tool_calls"] = draw(_tool_calls())
    for key in ("refusal", "function_call", "reasoning_details", "extra_field"):
        if draw(st.integers(0, 7)) == 0:
            delta[key] = _usually(draw, st.none(), st.sampled_from(["no", {"name": "f"}, []]), 2)
    choice: dict[str, Any] = {"delta": _usually(draw, st.just(delta), st.sampled_from([None, []]))}
    if draw(st.booleans()):
        choice["index"] = _usually(draw, st.just(0))
    for key in ("finish_reason", "logprobs", "native_finish_reason"):
        if draw(st.integers(0, 7)) == 0:
            choice[key] = _usually(draw, st.none(), st.sampled_from(["stop", {}]), 2)
    chunk: dict[str, Any] = {"id": "c", "object": "chat.completion.chunk", "created": 1}
    chunk["model"] = "m"
    chunk["choices"] = _usually(draw, st.just([choice]), st.just([choice, choice]))
    for key in ("id", "model", "created", "system_fingerprint", "service_tier", "usage", "error"):
        if draw(st.integers(0, 15)) == 0:
            chunk[key] = draw(st.one_of(_STRINGS, _ODD, st.just(1.5)))
    if draw(st.integers(0, 15)) == 0:
        chunk["x_groq"] = {"usage": {"prompt_tokens": 1}}
    return chunk


@PROPERTY
@given(
    chunks=st.lists(_wild_chunk(), max_size=10),
    ending=st.sampled_from([None, "stop", "length"]),
    loader=st.sampled_from(["orjson", "json"]),
    think_tags=st.booleans(),
)
def test_fast_path_equals_typed_path_on_wild_chunks(
    chunks: list[dict[str, Any]], ending: str | None, loader: str, think_tags: bool
) -> None:
    start = {"id": "c", "model": "m", "created": 1, "choices": [{"index": 0, "delta": {}}]}
    stream = [start, *chunks]
    if ending is not None:
        stream.append({"choices": [{"index": 0, "delta": {}, "finish_reason": ending}]})
    with pytest.MonkeyPatch.context() as mp:
        if loader == "json":
            mp.setattr(chat_types, "_loads", chat_types._json_loads)
        _assert_same([body_of(stream, "\n")], think_tags=think_tags)


_DELTAS = [
    {"reasoning_content": "a", "reasoning": "b"},
    {"reasoning_content": "", "reasoning": "b"},
    {"reasoning_content": "r", "content": "c"},
    {"role": "assistant", "content": "<think>x</th"},
    {"content": "ink> y", "extra": [1, {"k": None}]},
    {"content": "", "reasoning": None, "refusal": None, "tool_calls": None},
    {"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "f", "arguments": "{"}}]},
    {"tool_calls": [{"index": 0, "function": {"arguments": '"a": 1'}}]},
    {"tool_calls": [{"id": "call_b", "type": "function", "function": {"name": "g"}}]},
    {"tool_calls": [{"function": {"arguments": "}"}}]},
    {"tool_calls": [{"index": 1}]},
    {"tool_calls": [{"index": 1, "function": None, "x": 1}]},
    {"content": "after tools"},
    {"reasoning": "late reasoning"},
]


@pytest.mark.parametrize("think_tags", [True, False])
@pytest.mark.parametrize("start", range(len(_DELTAS)))
def test_fast_path_equals_typed_path_on_handmade_deltas(
    start: int, think_tags: bool, loader: str
) -> None:
    deltas = _DELTAS[start:] + _DELTAS[:start]
    stream = [{"id": "c", "model": "m", "created": 1, "choices": [{"index": 0, "delta": {}}]}]
    stream += [{"id": "c", "model": "m", "choices": [{"index": 0, "delta": d}]} for d in deltas]
    stream.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    _assert_same([body_of(stream, "\n")], think_tags=think_tags)


@PROPERTY
@given(
    fragments=st.lists(
        st.one_of(st.text(max_size=3), st.text(min_size=30, max_size=80)), max_size=1_500
    )
)
def test_fragments_join_to_what_was_appended(fragments: list[str]) -> None:
    """The accumulators' fragment buffers (joined in blocks as they grow) lose nothing."""
    buf = Fragments()
    for i, text in enumerate(fragments):
        buf.append(text)
        if i % 397 == 0:
            assert buf.join() == "".join(fragments[: i + 1])
    assert buf.join() == "".join(fragments)
    assert bool(buf) == bool(fragments)

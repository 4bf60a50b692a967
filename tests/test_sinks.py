"""Sinks: SSE / JSONL writers, the logging sink, the terminal renderer, fan-out, timestamps and
the timeline plot. The notebook reprs are in ``test_sinks_notebook.py``."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops

from rxresponses import (
    chat_sse_to_responses,
    from_bytes,
    from_file,
    get_final_response,
    iterate,
    parse_events,
)
from rxresponses.data import demo_bytes, demo_events, sequential_ids
from rxresponses.scripted import ScriptedTurn, chat_chunks, chat_sse
from rxresponses.sinks import (
    JSONLWriter,
    LoggingSink,
    SSEWriter,
    TerminalRenderer,
    TimedEvent,
    fan_out,
    format_summary,
    jsonl_writer,
    logging_sink,
    plot_timeline,
    sse_writer,
    timestamped,
)
from rxresponses.sinks.log import DELTA_EVENT_TYPES
from rxresponses.sse import SSEDecoder, encode_event
from rxresponses.types import to_dict, to_json
from rxresponses.types.events import parse_event


@pytest.fixture(scope="module")
def events() -> list[Any]:
    return list(iterate(demo_events()))


def comparable(events: list[Any]) -> list[dict[str, Any]]:
    """The events as dicts, without the one wall-clock field (``completed_at``)."""
    dumps = [to_dict(e) for e in events]
    for dump in dumps:
        dump.get("response", {}).pop("completed_at", None)
    return dumps


def recorded(seen: list[Any]) -> Any:
    """The demo events, each also appended to ``seen`` (the same run the sink gets)."""
    return demo_events().pipe(ops.do_action(seen.append))


def frames_of(data: bytes) -> list[bytes]:
    return [f + b"\n\n" for f in data.split(b"\n\n") if f]


class CountingBody:
    """A re-iterable byte source that counts how often it is opened and read."""

    def __init__(self, data: bytes) -> None:
        self.frames = frames_of(data)
        self.opened = 0
        self.reads = 0

    def __iter__(self) -> Iterator[bytes]:
        self.opened += 1
        for frame in self.frames:
            self.reads += 1
            yield frame


# -- SSE and JSONL writers ----------------------------------------------------------------------


def test_sse_writer_writes_encoded_frames() -> None:
    buffer, events = io.BytesIO(), []
    writer = SSEWriter(buffer)
    recorded(events).subscribe(writer)
    assert buffer.getvalue() == b"".join(encode_event(e) for e in events)
    assert writer.count == len(events) == 127
    assert writer.error is None


def test_sse_writer_output_parses_back() -> None:
    buffer, events = io.BytesIO(), []
    recorded(events).subscribe(sse_writer(buffer))
    decoder = SSEDecoder()
    parsed = [parse_event(m.data) for m in decoder.feed(buffer.getvalue())]
    assert [to_dict(e) for e in parsed] == [to_dict(e) for e in events]


def test_sse_writer_to_a_text_file() -> None:
    text, events = io.StringIO(), []
    recorded(events).subscribe(SSEWriter(text))
    assert text.getvalue().encode() == b"".join(encode_event(e) for e in events)


def test_jsonl_writer_is_the_sse_data_line(tmp_path: Any) -> None:
    path, events = tmp_path / "events.jsonl", []
    with path.open("wb") as fh:
        recorded(events).subscribe(jsonl_writer(fh))
    lines = path.read_text().splitlines()
    assert lines == [to_json(e) for e in events]
    sse_data = [
        frame.split(b"\ndata: ", 1)[1].decode()
        for frame in frames_of(b"".join(map(encode_event, events)))
    ]
    assert lines == [d.strip() for d in sse_data]
    # and it reads back as a recording
    again = list(iterate(from_file(path).pipe(parse_events())))
    assert [to_dict(e) for e in again] == [to_dict(e) for e in events]


def test_jsonl_writer_text_mode_and_errors() -> None:
    text = io.StringIO()
    writer = JSONLWriter(text)
    boom = RuntimeError("boom")
    reactivex.concat(demo_events().pipe(ops.take(3)), reactivex.throw(boom)).subscribe(writer)
    assert len(text.getvalue().splitlines()) == 3
    assert writer.error is boom


def test_writers_as_a_tap(events: list[Any]) -> None:
    buffer = io.BytesIO()
    seen = list(iterate(demo_events().pipe(ops.do(SSEWriter(buffer)))))
    assert len(seen) == len(events)
    assert buffer.getvalue().count(b"\n\n") == len(events)


# -- the logging sink ---------------------------------------------------------------------------


def test_logging_one_record_per_event(events: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rxresponses.events")
    demo_events().subscribe(LoggingSink())
    records = [r for r in caplog.records if r.name == "rxresponses.events"]
    assert len(records) == len(events)
    for record, event in zip(records, events, strict=True):
        assert record.event_type == event.type
        assert record.sequence_number == event.sequence_number
        assert record.output_index == getattr(event, "output_index", None)
        if hasattr(event, "item_id"):
            assert record.item_id == event.item_id
        if event.type in DELTA_EVENT_TYPES:
            assert record.levelno == logging.DEBUG
            assert record.delta == event.delta
        else:
            assert record.levelno == logging.INFO
    added = next(r for r in records if r.event_type == "response.output_item.added")
    assert added.item_id == "rs_000002"
    assert added.item_type == "reasoning"
    done = records[-1]
    assert done.status == "completed"
    assert done.usage["total_tokens"] == 150
    assert done.response_id == "resp_000001"


def test_logging_deltas_aggregated_per_item(
    events: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("test.aggregated")
    caplog.set_level(logging.DEBUG, logger="test.aggregated")
    demo_events().subscribe(logging_sink(logger, aggregate_deltas=True))
    records = [r for r in caplog.records if r.name == "test.aggregated"]
    deltas = [e for e in events if e.type in DELTA_EVENT_TYPES]
    assert len(records) == len(events) - len(deltas)
    assert not any(r.event_type in DELTA_EVENT_TYPES for r in records)
    item_done = [r for r in records if r.event_type == "response.output_item.done"]
    response = get_final_response(demo_events())
    assert [r.text for r in item_done] == [
        response.output[0].content[0].text,
        response.output_text,
        response.output[2].arguments,
        response.output[3].arguments,
    ]
    assert [r.deltas for r in item_done] == [
        sum(1 for e in deltas if e.item_id == r.item_id) for r in item_done
    ]


def test_logging_unfinished_item_and_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rxresponses.events")
    cut = demo_events().pipe(ops.take_while(lambda e: e.type != "response.output_text.done"))
    boom = RuntimeError("connection reset")
    reactivex.concat(cut, reactivex.throw(boom)).subscribe(LoggingSink(aggregate_deltas=True))
    records = caplog.records
    unfinished = [r for r in records if "not finished" in r.getMessage()]
    assert len(unfinished) == 1
    expected = "Let me check the current weather in both cities for you. I'll look up Paris"
    assert unfinished[0].text == expected + " and Tokyo at the same time."
    assert records[-1].levelno == logging.ERROR
    assert records[-1].event_type == "rxresponses.stream_error"
    assert "connection reset" in records[-1].getMessage()


def test_logging_levels_of_failures(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rxresponses.events")
    frames = list(chat_sse(chat_chunks(ScriptedTurn(text="Hi"))))
    bad = b"".join(frames[:2]) + b"data: {oops\n\n"
    from_bytes([bad]).pipe(chat_sse_to_responses()).subscribe(LoggingSink())
    by_type = {r.event_type: r for r in caplog.records}
    assert by_type["error"].levelno == logging.ERROR
    assert by_type["error"].error_code == "server_error"
    assert by_type["response.failed"].levelno == logging.ERROR
    frames = list(chat_sse(chat_chunks(ScriptedTurn(text="Hi there", finish_reason="length"))))
    caplog.clear()
    from_bytes(frames).pipe(chat_sse_to_responses()).subscribe(LoggingSink())
    incomplete = caplog.records[-1]
    assert incomplete.levelno == logging.WARNING
    assert incomplete.incomplete_reason == "max_output_tokens"


def test_logging_disabled_level_costs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rxresponses.events")
    sink = LoggingSink(aggregate_deltas=True)
    demo_events().subscribe(sink)
    assert caplog.records == []
    assert sink._pending == {}


# -- the terminal renderer ----------------------------------------------------------------------


def render(source: Any, **options: Any) -> tuple[str, TerminalRenderer]:
    out = io.StringIO()
    renderer = TerminalRenderer(out, **options)
    source.subscribe(renderer)
    return out.getvalue(), renderer


def test_renderer_plain_on_a_non_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    text, renderer = render(demo_events())
    assert "\x1b" not in text
    lines = text.splitlines()
    assert lines[0] == "● response resp_000001 · rxresponses-demo"
    assert lines[1] == "▸ reasoning"
    assert lines[2].startswith("  The user wants the weather in Paris")
    assert lines[3] == "▸ message"
    assert lines[5] == "▸ tool call get_weather  call_scripted_0"
    assert lines[6] == '  {"city": "Paris", "unit": "celsius"}'
    assert "usage     42 in · 108 out (58 reasoning) · 150 total" in lines
    assert renderer.outcome == "completed"
    assert renderer.error_message is None
    assert renderer.response.status == "completed"


def test_renderer_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    text, _ = render(demo_events(), color=True)
    assert "\x1b[2m  The" not in text  # the indent is not dimmed...
    assert "  \x1b[2mThe user wants" in text  # ...the reasoning is
    assert "\x1b[36m{" in text  # tool arguments in cyan
    assert "\x1b[32mcompleted\x1b[0m" in text
    # one escape per style run, not per delta
    assert text.count("\x1b[2m") < 6


@pytest.mark.parametrize(
    ("env", "expected"),
    [({"NO_COLOR": "1"}, False), ({"FORCE_COLOR": "1"}, True), ({"TERM": "dumb"}, False)],
)
def test_renderer_colour_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool
) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert TerminalRenderer(io.StringIO()).color is expected
    assert TerminalRenderer(io.StringIO(), color=not expected).color is (not expected)


def test_renderer_ascii_fallback() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    demo_events().subscribe(TerminalRenderer(stream, color=False))
    stream.flush()
    text = raw.getvalue().decode("ascii")
    assert "> reasoning" in text
    assert "| rxresponses-demo" in text


def test_renderer_hides_reasoning_and_summary() -> None:
    text, _ = render(demo_events(), reasoning=False, summary=False)
    assert "▸ reasoning" in text
    assert "The user wants" not in text
    assert "usage" not in text


def test_renderer_failed_stream() -> None:
    frames = list(chat_sse(chat_chunks(ScriptedTurn(text="Hello"))))
    bad = b"".join(frames[:3]) + b"data: {oops\n\n"
    text, renderer = render(from_bytes([bad]).pipe(chat_sse_to_responses()))
    assert renderer.outcome == "failed"
    assert "undecodable chunk" in (renderer.error_message or "")
    assert "✖ error: server_error: undecodable chunk" in text
    assert "(incomplete)" in text
    assert "\nerror     server_error: undecodable chunk" in text


def test_renderer_source_exception_and_cut_stream() -> None:
    boom = ValueError("socket closed")
    cut = demo_events().pipe(ops.take(70))
    text, renderer = render(reactivex.concat(cut, reactivex.throw(boom)))
    assert renderer.outcome == "failed"
    assert renderer.exception is boom
    assert "✖ stream error: socket closed" in text
    assert renderer.response.status == "failed"
    text, renderer = render(demo_events().pipe(ops.take(70)))
    assert renderer.outcome == "cut"
    assert "the stream ended before a terminal event" in text


def test_renderer_incomplete() -> None:
    frames = chat_sse(chat_chunks(ScriptedTurn(text="Hi there", finish_reason="length")))
    text, renderer = render(from_bytes(list(frames)).pipe(chat_sse_to_responses()))
    assert renderer.outcome == "incomplete"
    assert "reason    max_output_tokens" in text


def test_renderer_interleaved_tool_calls() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip

    def call(index: int, **function: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"index": index, "function": function}
        if "name" in function:
            entry |= {"id": f"call_{index}", "type": "function"}
        return chunk({"tool_calls": [entry]})

    chunks = [
        chunk({"role": "assistant"}),
        call(0, name="alpha", arguments=""),
        call(1, name="beta", arguments=""),
        call(0, arguments='{"a":'),
        call(1, arguments='{"b":'),
        call(0, arguments="1}"),
        call(1, arguments="2}"),
        chunk({}, "tool_calls"),
    ]
    text, renderer = render(from_bytes(list(chat_sse(chunks))).pipe(chat_sse_to_responses()))
    assert renderer.outcome == "completed"
    blocks = text.split("─")[0].splitlines()[1:]
    assert blocks == [
        "▸ tool call alpha  call_0",
        "▸ tool call beta  call_1",
        "▸ tool call alpha  call_0 …",  # "…": the item continues
        '  {"a":',
        "▸ tool call beta  call_1 …",
        '  {"b":',
        "▸ tool call alpha  call_0 …",
        "  1}",
        "▸ tool call beta  call_1 …",
        "  2}",
    ]


def test_renderer_shows_done_text_when_nothing_streamed() -> None:
    resp = {"id": "r", "created_at": 1, "model": "m", "status": "in_progress"}
    part = {"type": "output_text", "text": "All at once.", "annotations": []}
    item = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
            "content": [part]}  # fmt: skip
    wire = [
        {"type": "response.created", "response": resp},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": {**resp, "status": "completed"}},
    ]
    text, renderer = render(reactivex.from_iterable([parse_event(w) for w in wire]))
    assert "  All at once." in text
    assert renderer.outcome == "completed"


def test_format_summary() -> None:
    response = get_final_response(demo_events())
    summary = format_summary(response)
    assert "response  resp_000001  completed  · rxresponses-demo" in summary
    assert "2 function_call  get_weather" in summary
    assert "\x1b" not in summary
    assert "\x1b[32m" in format_summary(response, color=True)


# -- fan-out: the upstream is read once -----------------------------------------------------------


def test_fan_out_reads_the_upstream_once(events: list[Any]) -> None:
    body = CountingBody(demo_bytes())
    source = from_bytes(body).pipe(chat_sse_to_responses(ids=sequential_ids()))
    sse, received, ui = io.BytesIO(), [], io.StringIO()
    logger = logging.getLogger("test.fanout")
    fan_out(source, TerminalRenderer(ui), LoggingSink(logger), SSEWriter(sse), received.append)
    assert body.opened == 1
    assert body.reads == len(body.frames)
    assert comparable(received) == comparable(events)
    assert sse.getvalue() == b"".join(encode_event(e) for e in received)
    assert "get_weather" in ui.getvalue()


def test_publish_connect_as_in_the_readme() -> None:
    body = CountingBody(demo_bytes())
    events = from_bytes(body).pipe(chat_sse_to_responses(), ops.publish())
    a: list[Any] = []
    b: list[Any] = []
    events.subscribe(a.append)
    events.subscribe(b.append)
    events.connect()
    assert body.opened == 1
    assert len(a) == len(b) == 127


def test_a_cold_source_is_read_per_subscription() -> None:
    body = CountingBody(demo_bytes())
    events = from_bytes(body).pipe(chat_sse_to_responses())
    events.subscribe(lambda e: None)
    events.subscribe(lambda e: None)
    assert body.opened == 2


def test_share_with_an_async_source() -> None:
    class AsyncBody:
        def __init__(self) -> None:
            self.opened = 0

        def __aiter__(self) -> Any:
            self.opened += 1
            return self.frames()

        async def frames(self) -> Any:
            for frame in frames_of(demo_bytes()):
                await asyncio.sleep(0)
                yield frame

    async def run() -> tuple[int, list[Any], list[Any]]:
        body = AsyncBody()
        shared = from_bytes(body).pipe(chat_sse_to_responses(), ops.share())
        done = asyncio.Event()
        a: list[Any] = []
        b: list[Any] = []
        shared.subscribe(a.append)
        shared.subscribe(b.append, on_completed=done.set)
        await asyncio.wait_for(done.wait(), 10)
        return body.opened, a, b

    opened, a, b = asyncio.run(run())
    assert opened == 1
    assert len(a) == len(b) == 127


# -- timestamps and the timeline ----------------------------------------------------------------


def test_timestamped_uses_a_clock_per_subscription() -> None:
    ticks = iter([10.0, 10.5, 11.0, 20.0, 20.25])
    timed = reactivex.of("a", "b").pipe(timestamped(clock=lambda: next(ticks)))
    assert list(iterate(timed)) == [TimedEvent(0.5, "a"), TimedEvent(1.0, "b")]
    assert list(iterate(timed.pipe(ops.take(1)))) == [TimedEvent(0.25, "a")]


@pytest.fixture
def agg() -> Any:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_plot_timeline(agg: Any) -> None:
    timed = list(iterate(demo_events().pipe(timestamped())))
    ax = plot_timeline(timed)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [
        "response",
        "0 reasoning",
        "1 message",
        "2 function_call get_weather",
        "3 function_call get_weather",
    ]
    assert ax.get_title() == "resp_000001 (completed)"
    assert ax.get_xlabel() == "seconds since subscription"
    ax.figure.savefig(io.BytesIO(), format="png")


def test_plot_timeline_on_given_axes_and_plain_events(agg: Any) -> None:
    _, ax = agg.subplots()
    cut = list(iterate(demo_events().pipe(ops.take(80))))  # an item never finishes
    assert plot_timeline(cut, ax=ax, title="cut") is ax
    assert ax.get_xlabel() == "event position in the stream"
    assert ax.get_title() == "cut"
    assert plot_timeline([], title="nothing").get_title() == "nothing"


def test_sse_writer_fan_out_with_file(tmp_path: Any) -> None:
    path = tmp_path / "out.sse"
    with path.open("wb") as fh:
        fan_out(demo_events(), SSEWriter(fh))
    payloads = [json.loads(m.data) for m in SSEDecoder().feed(path.read_bytes())]
    assert payloads[-1]["type"] == "response.completed"


def test_plot_timeline_without_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("matplotlib", "matplotlib.pyplot", "matplotlib.lines"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'rxresponses\[notebook\]'"):
        plot_timeline([])


def _text_events(*deltas: str) -> list[Any]:
    """A Responses stream of one message with this text (the scripted model splits it)."""
    from rxresponses import chat_to_responses
    from rxresponses.types import ChatCompletionChunk

    turn = ScriptedTurn(text="".join(deltas))
    events: list[Any] = []
    reactivex.from_iterable(chat_chunks(turn)).pipe(
        ops.map(ChatCompletionChunk.model_validate), chat_to_responses(ids=sequential_ids())
    ).subscribe(events.append)
    return events


def test_renderer_wraps_long_lines_at_the_block_indent() -> None:
    # The scripted model cuts this text inside words ("jumps ov" + "er..."): a word that
    # straddles two deltas still moves to the next line whole.
    text = "The quick brown fox jumps over the lazy dog and keeps on running far away.\nNext."
    out = io.StringIO()
    reactivex.from_iterable(_text_events(text)).subscribe(
        TerminalRenderer(out, color=False, summary=False, width=30)
    )
    body = out.getvalue().splitlines()[2:]
    assert body == [
        "  The quick brown fox jumps",
        "  over the lazy dog and keeps",
        "  on running far away.",
        "  Next.",
    ]


def test_renderer_wraps_a_word_longer_than_the_line_and_colours_each_line() -> None:
    out = io.StringIO()
    reactivex.from_iterable(_text_events("ab " + "x" * 40)).subscribe(
        TerminalRenderer(out, color=False, summary=False, width=20)
    )
    assert out.getvalue().splitlines()[2:] == [
        "  ab",
        "  xxxxxxxxxxxxxxxxxx",
        "  xxxxxxxxxxxxxxxxxx",
        "  xxxx",
    ]


def test_renderer_does_not_wrap_a_file_or_pipe() -> None:
    long = "word " * 60
    out = io.StringIO()
    reactivex.from_iterable(_text_events(long)).subscribe(
        TerminalRenderer(out, color=False, summary=False)
    )
    assert out.getvalue().splitlines()[2] == "  " + long


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_rich_renderer_shows_what_the_plain_one_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    from rxresponses.sinks import RichRenderer

    monkeypatch.delenv("FORCE_COLOR", raising=False)
    plain, _ = render(demo_events(), color=False, width=40)
    out = io.StringIO()
    renderer = RichRenderer(out, color=False, width=40)
    demo_events().subscribe(renderer)
    assert out.getvalue() == plain
    assert renderer.outcome == "completed"


def test_rich_renderer_colours_through_rich() -> None:
    from rxresponses.sinks import RichRenderer

    out = io.StringIO()
    demo_events().subscribe(RichRenderer(out, color=True, width=0))
    text = out.getvalue()
    assert "  \x1b[2mThe " in text  # reasoning dimmed, the indent is not
    assert "\x1b[32mcompleted\x1b[0m" in text  # the summary's colours kept


def test_terminal_renderer_picks_rich_on_a_terminal_when_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rxresponses.sinks import RichRenderer, terminal_renderer

    assert type(terminal_renderer(io.StringIO())) is TerminalRenderer  # a file or pipe: plain
    assert type(terminal_renderer(_TTY(), width=80)) is RichRenderer
    for name in ("rich", "rich.console", "rich.text"):  # rich absent
        monkeypatch.setitem(sys.modules, name, None)
    assert type(terminal_renderer(_TTY(), width=80)) is TerminalRenderer
    with pytest.raises(ImportError, match=r"pip install 'rxresponses\[rich\]'"):
        RichRenderer(_TTY())

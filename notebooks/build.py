"""Write the notebooks of this folder and execute them, so they are saved with their outputs.

    .venv/bin/python notebooks/build.py            # all of them
    .venv/bin/python notebooks/build.py 02         # the ones whose name starts with 02

The notebooks are plain nbformat v4 files; this script is their source of truth (edit the cells
here, then rebuild). They need no network: everything runs on the recording embedded in the
package. ``tests/test_notebooks.py`` executes the saved files again on every CI run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(text.strip("\n"))


def code(text: str) -> nbformat.NotebookNode:
    return new_code_cell(text.strip("\n"))


QUICKSTART = [
    md("""
# rxresponses: quick start

rxresponses turns a Chat Completions stream (`chat.completion.chunk` SSE, what most servers speak)
into typed OpenAI **Responses API** streaming events, with RxPY operators, and folds any stream of
events into the final `Response`.

This notebook runs offline. It uses the recording embedded in the package,
`rxresponses/data/demo.sse`, which the project's deterministic scripted model wrote
(`python -m rxresponses.scripted`): some reasoning, one sentence of text, then two parallel
`get_weather` tool calls, then the token usage.
"""),
    code("""
from collections import Counter

from rxresponses import chat_sse_to_responses, from_bytes, get_final_response, iterate
from rxresponses.data import demo_bytes

raw = demo_bytes()
print(raw[:420].decode(), "...")
print(f"{len(raw)} bytes, {raw.count(b'data:')} SSE frames")
"""),
    md("""
## Chat chunks in, Responses events out

`chat_sse_to_responses()` is the whole conversion as one operator (SSE decoding, chunk parsing,
then the item operators). `iterate()` runs the pipeline and hands the events over one by one.
"""),
    code("""
events = from_bytes([raw]).pipe(chat_sse_to_responses())
collected = list(iterate(events))
print(len(collected), "events; sequence numbers",
      collected[0].sequence_number, "...", collected[-1].sequence_number)
Counter(event.type for event in collected)
"""),
    md("""
Events are typed pydantic models. In a notebook each one displays as a short line (type, sequence
number, item, indexes and its text) rather than a wall of fields:
"""),
    code("collected[4]"),
    code("collected[2]"),
    md("""
## The final Response

`get_final_response()` runs the pipeline to the end and folds the events into the `Response`
(the same fold serves raw Responses streams). It displays as a table: status, model, each output
item summarised, token usage.
"""),
    code("""
response = get_final_response(events)
response
"""),
    code("""
print(repr(response.output_text))
for item in response.output:
    print(item.type, getattr(item, "name", ""), getattr(item, "arguments", ""))
"""),
    md("""
## What `rxresponses demo` shows

`TerminalRenderer` is the observer behind the command line: reasoning dimmed, text as it streams,
each tool call with its arguments forming, then a summary of the final Response. It writes ANSI
colours, which notebooks display too.
"""),
    code("""
from rxresponses.sinks import TerminalRenderer

events.subscribe(TerminalRenderer(color=True));
"""),
    md("""
## A picture of the stream

`timestamped()` tags each event with the seconds since subscription as it passes;
`plot_timeline()` draws one lane per `output_index` (a bar from `output_item.added` to
`output_item.done`, a tick per delta) and the response lifecycle on top. `demo_events(delay=...)`
replays the recording at a model's pace (here 10 ms per chunk, after a short time to first token).
"""),
    code("""
from rxresponses.data import demo_events
from rxresponses.sinks import plot_timeline, timestamped

timed = list(iterate(demo_events(delay=0.01).pipe(timestamped())))
plot_timeline(timed, title="the demo recording, 10 ms per chunk");
"""),
    md("""
Next: `02_custom_pipeline.ipynb` inserts operators of your own into the pipeline, and
`03_fanout_and_inspection.ipynb` feeds one stream to several sinks and looks at a stream cut
short.
"""),
]


CUSTOM = [
    md("""
# Your own operators in the pipeline

The conversion is a chain of small operators, and you may insert your own at any arrow:

```
bytes ─decode_sse─▶ SSEMessage ─parse_chunks─▶ ChatCompletionChunk ─split_by_item─▶ item signals
   ─collect_reasoning─▶ ─accumulate_text─▶ ─join_tool_args─▶ ─assemble─▶ Responses events
```

Between `split_by_item` and the item operators flow *item signals*: small frozen dataclasses
(`ItemStarted`, `TextDelta`, `ReasoningDelta`, `ToolCallDelta`, `ItemFinished`...). A stage
inserted there changes everything downstream, the `.done` events and the final `Response`
included, and `assemble` still numbers events and output items densely. This notebook adds three:
a redactor, a reasoning filter, and delta throttling for a UI.
"""),
    code("""
import re
from dataclasses import replace

import reactivex
from reactivex import Observable
from reactivex import operators as ops

from rxresponses import get_final_response, iterate
from rxresponses import operators as rxo
from rxresponses.data import demo_messages, sequential_ids
from rxresponses.types.signals import ItemFinished, ReasoningDelta, TextDelta

chunks = demo_messages().pipe(rxo.parse_chunks())


def convert(*signal_stages):
    \"\"\"The chat_to_responses() chain, with our stages inserted after split_by_item.\"\"\"
    ids = sequential_ids()
    return chunks.pipe(
        rxo.split_by_item(ids=ids),
        *signal_stages,
        rxo.collect_reasoning(),
        rxo.accumulate_text(),
        rxo.join_tool_args(),
        rxo.assemble(ids=ids),
    )


get_final_response(convert())
"""),
    md("""
## 1. A redactor that survives fragment boundaries

A model streams text in fragments that cut words anywhere (`"Pa"`, `"ris"`), so replacing
words fragment by fragment misses them. This stage holds back, per item, the partial word at the
end of each fragment and releases text only up to a word boundary, redacted; the held tail is
released when the item finishes. Its state is created inside `subscribe`, so two subscriptions
never share it. Tool-call arguments are left alone: the tool needs them.
"""),
    code("""
def redact_words(words, replacement="[redacted]"):
    pattern = re.compile(r"\\b(?:" + "|".join(map(re.escape, words)) + r")\\b")

    def operator(source):
        def subscribe(observer, scheduler=None):
            held = {}  # item_id -> (the last text signal, text not released yet)

            def emit(signal, text):
                extra = {"logprobs": None} if isinstance(signal, TextDelta) else {}
                observer.on_next(replace(signal, text=pattern.sub(replacement, text), **extra))

            def on_next(signal):
                if isinstance(signal, TextDelta | ReasoningDelta):
                    _, tail = held.get(signal.item_id, (signal, ""))
                    text = tail + signal.text
                    cut = max((m.end() for m in re.finditer(r"\\W", text)), default=0)
                    held[signal.item_id] = (signal, text[cut:])
                    if cut:
                        emit(signal, text[:cut])
                    return
                if isinstance(signal, ItemFinished) and signal.item_id in held:
                    last, tail = held.pop(signal.item_id)
                    if tail:
                        emit(last, tail)
                observer.on_next(signal)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


redacted = get_final_response(convert(redact_words(["Paris", "Tokyo"], "[city]")))
print(redacted.output_text)
print(redacted.output[0].content[0].text)
assert "Paris" not in redacted.output_text and "Tokyo" not in redacted.output_text
"""),
    md("""
The streamed deltas and the `.done` events agree with the final object, because
`accumulate_text` joins the deltas that reached it:
"""),
    code("""
events = list(iterate(convert(redact_words(["Paris", "Tokyo"], "[city]"))))
streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
done = next(e.text for e in events if e.type == "response.output_text.done")
print(streamed == done == redacted.output_text, repr(done))
"""),
    md("""
For exact strings (a key, a name) rather than whole words, the library has the operator:
`rxo.redact_text(secrets)` holds back only an end of the text that may still start a secret, so
a secret cut anywhere between two deltas is masked, and nothing else waits.
"""),
    code("""
masked = get_final_response(convert(rxo.redact_text(["Paris", "Tokyo"], "[city]")))
print(masked.output_text)
"""),
    md("""
## 2. Dropping the reasoning

Filtering *signals* (not events) removes the reasoning item before it exists: no gap in
`output_index`, sequence numbers still 0..N-1, and the final `Response` has no reasoning item.
Filtering the *events* instead would leave holes in both.
"""),
    code("""
no_reasoning = ops.filter(lambda signal: getattr(signal, "kind", None) != "reasoning")

events = list(iterate(convert(no_reasoning)))
print(sorted({e.output_index for e in events if hasattr(e, "output_index")}))
print([e.sequence_number for e in events] == list(range(len(events))))
events[-1].response
"""),
    md("""
## 3. Throttling deltas for a UI

A UI does not need to repaint for every token. Downstream of the conversion (the protocol stream
stays untouched, for the wire or a log), `buffer_with_time` collects the events of each 50 ms
window and we merge the deltas of each item into one update. Here the source is replayed at
10 ms per chunk, so about five chunks fall into each window.
"""),
    code("""
from typing import NamedTuple

from reactivex.scheduler import TimeoutScheduler

from rxresponses.data import demo_events


class UIUpdate(NamedTuple):
    item_id: str
    kind: str
    text: str


def coalesce_deltas(window_seconds):
    def merge(batch):
        updates = {}
        for event in batch:
            if event.type.endswith(".delta"):
                key = (event.item_id, event.type.split(".")[1])
                updates[key] = updates.get(key, "") + event.delta
        return reactivex.from_iterable(
            UIUpdate(item_id, kind, text) for (item_id, kind), text in updates.items()
        )

    # The windows close on a timer thread of their own: the explicit scheduler keeps them off
    # the thread that runs the (sync, blocking) source.
    return reactivex.compose(
        ops.buffer_with_time(window_seconds, scheduler=TimeoutScheduler.singleton()),
        ops.concat_map(merge),
    )


paced = demo_events(delay=0.01)
updates = list(iterate(paced.pipe(coalesce_deltas(0.05))))
deltas = sum(1 for e in iterate(demo_events()) if e.type.endswith(".delta"))
print(f"{deltas} deltas on the wire, {len(updates)} UI updates")
for update in updates[:6]:
    print(update)
"""),
    code("""
text = "".join(u.text for u in updates if u.kind == "output_text")
print(text == get_final_response(demo_events()).output_text)
"""),
]


FANOUT = [
    md("""
# Fan-out and inspection

Every rxresponses source is *cold*: each subscription reads the file, or sends the HTTP request,
again. To feed a UI, a logger and a file from one stream, multicast it. This notebook proves the
upstream is read once, looks at what each sink received, then at what a stream cut short
becomes.
"""),
    code("""
import io
import logging

import reactivex
from reactivex import operators as ops

from rxresponses import chat_sse_to_responses, from_bytes, iterate
from rxresponses.data import demo_bytes, sequential_ids
from rxresponses.sinks import (
    LoggingSink,
    SSEWriter,
    TerminalRenderer,
    events_table,
    fan_out,
)

subscriptions = 0


def open_upstream(scheduler=None):
    \"\"\"Stands for an HTTP request: counts how many times the upstream is opened.\"\"\"
    global subscriptions
    subscriptions += 1
    return from_bytes([demo_bytes()])


events = reactivex.defer(open_upstream).pipe(chat_sse_to_responses(ids=sequential_ids()))
"""),
    md("""
## One subscription, four sinks

`fan_out(source, *sinks)` is `publish()`, one `subscribe` per sink, then `connect()`. With a sync
source (a file, `from_httpx`) the values flow as soon as the source is subscribed, so every sink
must subscribe *before* the connection: that is what `publish()` + `connect()` guarantee.

The logger uses `aggregate_deltas=True`: one record per item with its joined text, instead of one
per delta. Every record carries structured `extra` fields (`event_type`, `sequence_number`,
`output_index`, `item_id`...).
"""),
    code("""
records = []


class ListHandler(logging.Handler):
    def emit(self, record):
        records.append(record)


logger = logging.getLogger("demo.llm")
logger.setLevel(logging.INFO)
logger.addHandler(ListHandler())
logger.propagate = False

sse_file = io.BytesIO()
received = []
fan_out(
    events,
    TerminalRenderer(color=True, summary=False),
    LoggingSink(logger, aggregate_deltas=True),
    SSEWriter(sse_file),
    received.append,
)
print()
print("upstream opened", subscriptions, "time(s);", len(received), "events to each sink")
"""),
    code("""
for record in records:
    print(f"{record.levelname:<7} {record.event_type:<28} seq={record.sequence_number!s:<4}"
          f" item={record.item_id}  {getattr(record, 'text', '')[:50]!r}")
"""),
    code("""
print(sse_file.getvalue()[:600].decode())
"""),
    md("""
## `share()` with an async source

`share()` (`publish()` + `ref_count()`) connects at the first subscription. That suits
asynchronous sources (`from_httpx_async`): the second sink subscribes before the first value
arrives. Here an async generator stands for the HTTP body.
"""),
    code("""
import asyncio

opened = 0


class AsyncBody:
    def __aiter__(self):
        global opened
        opened += 1
        return self.frames()

    async def frames(self):
        for frame in demo_bytes().split(b"\\n\\n"):
            await asyncio.sleep(0)
            yield frame + b"\\n\\n"


shared = from_bytes(AsyncBody()).pipe(chat_sse_to_responses(), ops.share())
finished = asyncio.Event()
texts, types = [], []


def show_text(event):  # the "UI"
    if event.type == "response.output_text.delta":
        texts.append(event.delta)


shared.subscribe(show_text)
shared.subscribe(lambda event: types.append(event.type), on_completed=finished.set)
await finished.wait()
print("upstream opened", opened, "time(s);", len(types), "events;", repr("".join(texts)[:60]))
"""),
    md("""
## Inspecting what arrived

`events_table()` lists events compactly; single events and the `Response` display as summaries.
"""),
    code("events_table(received[:14])"),
    code("received[-1]"),
    md("""
## What a cut stream looks like

`01_quickstart.ipynb` drew the recording as it should arrive. Connections drop, though: here the
same recording is cut after 65 of its 113 messages, in the middle of the message text, as if the
upstream went away. What does each sink see, and what does the final `Response` keep?
"""),
    code("""
from rxresponses import chat_to_responses, get_final_response, parse_chunks
from rxresponses.data import demo_messages
from rxresponses.sinks import plot_timeline, timestamped


def cut_stream(messages=65, delay=0.0):
    \"\"\"The demo recording, cut after `messages` SSE messages (no finish_reason, no [DONE]).\"\"\"
    return demo_messages(delay=delay, seed=7).pipe(
        ops.take(messages), parse_chunks(), chat_to_responses(ids=sequential_ids())
    )


cut = list(iterate(cut_stream()))
for event in cut:
    if event.type in ("response.output_item.done", "error", "response.failed"):
        item = getattr(event, "item", None)
        detail = f"{item.type} {item.status}" if item is not None else ""
        print(f"{event.sequence_number:>4}  {event.type:<26} {detail}")
"""),
    md("""
Every item that was open is closed with `status: "incomplete"` (the reasoning had finished, so it
stays `completed`), and the stream ends with exactly one terminal event: `error` then
`response.failed`, whose message says what happened. The final `Response` keeps everything that
arrived: a client can show the partial answer and offer a retry.
"""),
    code("""
partial = get_final_response(cut_stream())
print(partial.status, "|", partial.error.code, "|", partial.error.message)
print([(item.type, item.status) for item in partial.output])
print(repr(partial.output_text))
"""),
    md("""
Over time, at a model's pace: the message lane stops where the connection dropped, and the
failure marker sits on the lifecycle lane right after it; the two tool calls of the full
recording never start.
"""),
    code("""
timed = list(iterate(cut_stream(delay=0.008).pipe(timestamped())))
ax = plot_timeline(timed, title="the demo recording, cut after 65 messages")
"""),
    md("""
## A live view in the notebook

`LiveDisplay` redraws one output with the Response being built (at most every `interval`
seconds, and once at the end). Run the cell to watch it fill in.
"""),
    code("""
from rxresponses.data import demo_events
from rxresponses.sinks import LiveDisplay

demo_events(delay=0.005).subscribe(LiveDisplay(interval=0.1));
"""),
]

NOTEBOOKS = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_custom_pipeline.ipynb": CUSTOM,
    "03_fanout_and_inspection.ipynb": FANOUT,
}


def merge_streams(outputs: list[nbformat.NotebookNode]) -> list[nbformat.NotebookNode]:
    """Join consecutive stdout/stderr outputs (a live renderer flushes once per delta)."""
    merged: list[nbformat.NotebookNode] = []
    for output in outputs:
        last = merged[-1] if merged else None
        if (
            output.output_type == "stream"
            and last is not None
            and last.output_type == "stream"
            and last.name == output.name
        ):
            last.text += output.text
        else:
            merged.append(output)
    return merged


def build(name: str, cells: list[nbformat.NotebookNode]) -> None:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
    )
    client.record_timing = False
    client.execute()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
    nbformat.validate(nb)
    nbformat.write(nb, HERE / name)
    print("wrote", HERE / name)


if __name__ == "__main__":
    wanted = sys.argv[1:]
    for name, cells in NOTEBOOKS.items():
        if not wanted or any(name.startswith(w) for w in wanted):
            build(name, cells)

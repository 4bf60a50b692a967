"""``ResponseAccumulator`` folds copy-on-write: the events it folds stay exactly as they were.

The fold keeps references to the items, parts and responses the events carry, and copies one only
when it must change it (a part placed in an item, a ``.done`` text, an annotation, a status...).
These tests fold hand-written streams and hold every event's dump equal to its dump before the
fold, after the fold, after ``result()`` and after the result was mutated; and the result equal
to the values written out here.
"""

from __future__ import annotations

from typing import Any

import pytest
import reactivex

from rxresponses.errors import UpstreamError
from rxresponses.operators import _final as _final_module
from rxresponses.operators._final import ResponseAccumulator, final_response
from rxresponses.types import (
    AnnotationURLCitation,
    Content,
    Logprob,
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseErrorEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputItemOther,
    ResponseOutputMessage,
    ResponseOutputRefusal,
    ResponseOutputText,
    ResponseOutputTextAnnotationAddedEvent,
    ResponseReasoningItem,
    ResponseReasoningSummaryPartAddedEvent,
    ResponseReasoningSummaryPartDoneEvent,
    ResponseReasoningSummaryTextDeltaEvent,
    ResponseReasoningSummaryTextDoneEvent,
    ResponseReasoningTextDeltaEvent,
    ResponseRefusalDeltaEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
    ResponseWebSearchCallCompletedEvent,
    ResponseWebSearchCallSearchingEvent,
    Summary,
    to_dict,
)

# -- the hand-written stream ---------------------------------------------------------------------


def _response(status: str, output: list[Any] | None = None, **fields: Any) -> Response:
    return Response(
        id="resp_1",
        created_at=1_700_000_000,
        model="gpt-test",
        status=status,
        output=output or [],
        **fields,
    )


def _lifecycle() -> list[Any]:
    return [
        ResponseCreatedEvent(sequence_number=0, response=_response("in_progress")),
        ResponseInProgressEvent(sequence_number=1, response=_response("in_progress")),
    ]


def _reasoning() -> list[Any]:
    """A reasoning item with one summary part, at output_index 0."""
    ids: dict[str, Any] = {"item_id": "rs_1", "output_index": 0}
    return [
        ResponseOutputItemAddedEvent(
            output_index=0, item=ResponseReasoningItem(id="rs_1", summary=[], status="in_progress")
        ),
        ResponseReasoningSummaryPartAddedEvent(**ids, summary_index=0, part=Summary(text="")),
        ResponseReasoningSummaryTextDeltaEvent(**ids, summary_index=0, delta="Think"),
        ResponseReasoningSummaryTextDeltaEvent(**ids, summary_index=0, delta="ing."),
        ResponseReasoningSummaryTextDoneEvent(**ids, summary_index=0, text="Thinking."),
        ResponseReasoningSummaryPartDoneEvent(
            **ids, summary_index=0, part=Summary(text="Thinking.")
        ),
    ]


def _message_start() -> list[Any]:
    """A message at output_index 1: its part and deltas (with logprobs), no ``.done`` yet."""
    ids: dict[str, Any] = {"item_id": "msg_1", "output_index": 1, "content_index": 0}
    return [
        ResponseOutputItemAddedEvent(
            output_index=1,
            item=ResponseOutputMessage(id="msg_1", content=[], status="in_progress"),
        ),
        ResponseContentPartAddedEvent(
            **ids, part=ResponseOutputText(text="", annotations=[], logprobs=[])
        ),
        ResponseTextDeltaEvent(
            **ids, delta="Hel", logprobs=[Logprob(token="Hel", logprob=-0.5, top_logprobs=[])]
        ),
        ResponseTextDeltaEvent(**ids, delta="lo"),
        ResponseTextDeltaEvent(
            **ids, delta=" world", logprobs=[Logprob(token=" world", logprob=-1.0, top_logprobs=[])]
        ),
        ResponseOutputTextAnnotationAddedEvent(
            **ids,
            annotation_index=0,
            annotation=AnnotationURLCitation(
                url="https://example.com", title="Example", start_index=0, end_index=5
            ),
        ),
    ]


def _message_end() -> list[Any]:
    ids: dict[str, Any] = {"item_id": "msg_1", "output_index": 1, "content_index": 0}
    return [ResponseTextDoneEvent(**ids, text="Hello world")]


def _function_call() -> list[Any]:
    """A function call at output_index 2, its arguments in two deltas, then ``.done``."""
    ids: dict[str, Any] = {"item_id": "fc_1", "output_index": 2}
    return [
        ResponseOutputItemAddedEvent(
            output_index=2,
            item=ResponseFunctionToolCall(
                id="fc_1", call_id="call_1", name="lookup", arguments="", status="in_progress"
            ),
        ),
        ResponseFunctionCallArgumentsDeltaEvent(**ids, delta='{"q": '),
        ResponseFunctionCallArgumentsDeltaEvent(**ids, delta='"weather"}'),
        ResponseFunctionCallArgumentsDoneEvent(**ids, arguments='{"q": "weather"}'),
    ]


def _web_search() -> list[Any]:
    """A hosted web search at output_index 3: added, then its status events."""
    ids: dict[str, Any] = {"item_id": "ws_1", "output_index": 3}
    return [
        ResponseOutputItemAddedEvent(
            output_index=3,
            item=ResponseOutputItemOther(type="web_search_call", id="ws_1", status="in_progress"),
        ),
        ResponseWebSearchCallSearchingEvent(**ids),
        ResponseWebSearchCallCompletedEvent(**ids),
    ]


def _stream_without_item_dones() -> list[Any]:
    """Every item opened and filled, none closed, no terminal event (a stream cut late): the
    folded items are the ones the fold had to change, starting from the events' objects."""
    return [
        *_lifecycle(),
        *_reasoning(),
        *_message_start(),
        *_message_end(),
        *_function_call(),
        *_web_search(),
    ]


#: The output ``_stream_without_item_dones()`` folds to.
EXPECTED_OUTPUT: list[dict[str, Any]] = [
    {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "Thinking."}],
        "status": "in_progress",
    },
    {
        "id": "msg_1",
        "type": "message",
        "status": "in_progress",
        "content": [
            {
                "type": "output_text",
                "annotations": [
                    {
                        "type": "url_citation",
                        "url": "https://example.com",
                        "title": "Example",
                        "start_index": 0,
                        "end_index": 5,
                    }
                ],
                "logprobs": [
                    {"token": "Hel", "bytes": [], "logprob": -0.5, "top_logprobs": []},
                    {"token": " world", "bytes": [], "logprob": -1.0, "top_logprobs": []},
                ],
                "text": "Hello world",
            }
        ],
        "role": "assistant",
    },
    {
        "id": "fc_1",
        "type": "function_call",
        "status": "in_progress",
        "arguments": '{"q": "weather"}',
        "call_id": "call_1",
        "name": "lookup",
    },
    {"type": "web_search_call", "id": "ws_1", "status": "completed"},
]


def _parts(item: Any) -> list[Any]:
    parts: list[Any] = item.content
    return parts


def _fold(events: list[Any]) -> ResponseAccumulator:
    acc = ResponseAccumulator()
    for event in events:
        acc.handle(event)
    return acc


def _vandalize(response: Response) -> None:
    """Mutate a result everywhere a caller could: fields, lists, nested models."""
    response.status = "vandalized"
    response.usage = ResponseUsage(input_tokens=999)
    response.tools.append({"type": "vandal"})
    for item in response.output:
        if hasattr(item, "status"):
            item.status = "vandalized"
        if isinstance(item, ResponseFunctionToolCall):
            item.arguments = "vandalized"
        for attr in ("content", "summary"):
            parts = getattr(item, attr, None) or []
            for part in parts:
                if hasattr(part, "text"):
                    part.text = "vandalized"
                if isinstance(part, ResponseOutputText):
                    part.annotations.clear()
                    assert part.logprobs is not None
                    part.logprobs.append(Logprob(token="vandal", logprob=0.0))
            if isinstance(parts, list):
                parts.append(Summary(text="vandal") if attr == "summary" else Content(text="v"))
    response.output.append(ResponseOutputMessage(id="msg_vandal", content=[]))


# -- the events stay as they were ----------------------------------------------------------------


def test_fold_leaves_every_event_unchanged() -> None:
    events = _stream_without_item_dones()
    before = [to_dict(e) for e in events]
    acc = _fold(events)
    assert [to_dict(e) for e in events] == before
    result = acc.result()
    assert [to_dict(e) for e in events] == before
    _vandalize(result)
    assert [to_dict(e) for e in events] == before
    # The added items and parts the fold changed are still empty in their events.
    assert to_dict(events[2].item) == {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [],
        "status": "in_progress",
    }
    assert to_dict(events[3].part) == {"type": "summary_text", "text": ""}
    assert to_dict(events[8].item)["content"] == []
    assert to_dict(events[9].part) == {
        "type": "output_text",
        "annotations": [],
        "logprobs": [],
        "text": "",
    }
    assert events[15].item.arguments == ""
    assert events[19].item.status == "in_progress"


def test_fold_of_what_arrived_without_any_done() -> None:
    acc = _fold(_stream_without_item_dones())
    result = acc.result()
    assert result.status == "in_progress"
    assert acc.terminal is None
    assert [to_dict(item) for item in result.output] == EXPECTED_OUTPUT
    assert result.output_text == "Hello world"


def test_cut_stream_keeps_the_text_that_arrived() -> None:
    # Cut after the deltas: no output_text.done, no content_part.done, no terminal event.
    events = [*_lifecycle(), *_message_start()[:5]]
    before = [to_dict(e) for e in events]
    result = _fold(events).result()
    assert result.status == "in_progress"
    assert result.output_text == "Hello world"
    (message,) = result.output
    assert to_dict(message) == {
        "id": "msg_1",
        "type": "message",
        "status": "in_progress",
        "content": [
            {
                "type": "output_text",
                "annotations": [],
                "logprobs": [
                    {"token": "Hel", "bytes": [], "logprob": -0.5, "top_logprobs": []},
                    {"token": " world", "bytes": [], "logprob": -1.0, "top_logprobs": []},
                ],
                "text": "Hello world",
            }
        ],
        "role": "assistant",
    }
    assert [to_dict(e) for e in events] == before


def _complete_stream() -> list[Any]:
    """The full stream: every part and item closed, then ``response.completed`` with output."""
    msg = {"item_id": "msg_1", "output_index": 1, "content_index": 0}
    final_text = ResponseOutputText(
        text="Hello world",
        annotations=[
            AnnotationURLCitation(
                url="https://example.com", title="Example", start_index=0, end_index=5
            )
        ],
        logprobs=[],
    )
    done_items: list[Any] = [
        ResponseReasoningItem(id="rs_1", summary=[Summary(text="Thinking.")], status="completed"),
        ResponseOutputMessage(id="msg_1", content=[final_text], status="completed"),
        ResponseFunctionToolCall(
            id="fc_1",
            call_id="call_1",
            name="lookup",
            arguments='{"q": "weather"}',
            status="completed",
        ),
        ResponseOutputItemOther(type="web_search_call", id="ws_1", status="completed"),
    ]
    return [
        *_lifecycle(),
        *_reasoning(),
        ResponseOutputItemDoneEvent(output_index=0, item=done_items[0]),
        *_message_start(),
        *_message_end(),
        ResponseContentPartDoneEvent(**msg, part=final_text),
        ResponseOutputItemDoneEvent(output_index=1, item=done_items[1]),
        *_function_call(),
        ResponseOutputItemDoneEvent(output_index=2, item=done_items[2]),
        *_web_search(),
        ResponseOutputItemDoneEvent(output_index=3, item=done_items[3]),
        ResponseCompletedEvent(
            response=_response(
                "completed",
                done_items,
                usage=ResponseUsage(input_tokens=10, output_tokens=5, total_tokens=15),
            )
        ),
    ]


#: The output ``_complete_stream()`` folds to (its ``response.completed`` output).
EXPECTED_COMPLETE_OUTPUT: list[dict[str, Any]] = [
    {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "Thinking."}],
        "status": "completed",
    },
    {
        "id": "msg_1",
        "type": "message",
        "status": "completed",
        "content": [
            {
                "type": "output_text",
                "annotations": [
                    {
                        "type": "url_citation",
                        "url": "https://example.com",
                        "title": "Example",
                        "start_index": 0,
                        "end_index": 5,
                    }
                ],
                "logprobs": [],
                "text": "Hello world",
            }
        ],
        "role": "assistant",
    },
    {
        "id": "fc_1",
        "type": "function_call",
        "status": "completed",
        "arguments": '{"q": "weather"}',
        "call_id": "call_1",
        "name": "lookup",
    },
    {"type": "web_search_call", "id": "ws_1", "status": "completed"},
]


def test_complete_stream_folds_to_its_terminal_response() -> None:
    events = _complete_stream()
    before = [to_dict(e) for e in events]
    acc = _fold(events)
    result = acc.result()
    assert acc.terminal == "response.completed"
    assert result.status == "completed"
    assert [to_dict(item) for item in result.output] == EXPECTED_COMPLETE_OUTPUT
    assert to_dict(result) == to_dict(events[-1].response)
    assert result.usage is not None
    assert to_dict(result.usage) == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 15,
    }
    assert [to_dict(e) for e in events] == before


def test_prefixes_of_the_complete_stream_leave_events_unchanged() -> None:
    """Every prefix, each followed by result() and its mutation, leaves the events unchanged."""
    events = _complete_stream()
    before = [to_dict(e) for e in events]
    acc = ResponseAccumulator()
    texts = []
    for event in events:
        acc.handle(event)
        result = acc.result()
        texts.append(result.output_text)
        _vandalize(result)
        assert [to_dict(e) for e in events] == before
    # output_text after each of the 28 events: the message's part opens at event 10, its text
    # grows delta by delta (events 11-13), then stays (the terminal event's output at the end).
    assert texts == [""] * 11 + ["Hel", "Hello", "Hello world"] + ["Hello world"] * 14


def test_mutating_a_result_changes_no_event_and_no_later_result() -> None:
    events = _complete_stream()
    terminal = to_dict(events[-1].response)
    acc = _fold(events)
    first, second = acc.result(), acc.result()
    assert first is not second
    assert first == second
    assert to_dict(first) == to_dict(second)
    for a, b, c in zip(first.output, second.output, events[-1].response.output, strict=True):
        assert a is not b
        assert a is not c
        assert a == c
    assert first.usage is not events[-1].response.usage
    _vandalize(first)
    assert to_dict(events[-1].response) == terminal
    assert to_dict(second) == terminal
    assert to_dict(acc.result()) == terminal


def test_results_of_a_cut_stream_are_distinct_and_equal() -> None:
    acc = _fold(_stream_without_item_dones())
    first = acc.result()
    second = acc.result()
    assert first is not second
    assert first == second
    first_part, second_part = (_parts(r.output[1])[0] for r in (first, second))
    assert first_part is not second_part
    assert first_part == second_part
    _vandalize(first)
    assert [to_dict(item) for item in second.output] == EXPECTED_OUTPUT
    assert [to_dict(item) for item in acc.result().output] == EXPECTED_OUTPUT
    # The accumulator goes on after a result was mutated.
    acc.handle(
        ResponseOutputItemDoneEvent(
            output_index=3,
            item=ResponseOutputItemOther(type="web_search_call", id="ws_1", status="failed"),
        )
    )
    assert to_dict(acc.result().output[3]) == {
        "type": "web_search_call",
        "id": "ws_1",
        "status": "failed",
    }


# -- the fold's own copies -----------------------------------------------------------------------


def test_item_done_with_the_object_of_item_added_is_what_it_says() -> None:
    """A stream built in Python may send the same item object in ``.added`` and ``.done``: the
    fold never changed it, so ``.done`` places it as it is (the parts placed in between are not
    in it)."""
    item = ResponseOutputMessage(id="msg_1", content=[], status="in_progress")
    part = ResponseOutputText(text="", annotations=[], logprobs=[])
    ids: dict[str, Any] = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events: list[Any] = [
        *_lifecycle(),
        ResponseOutputItemAddedEvent(output_index=0, item=item),
        ResponseContentPartAddedEvent(**ids, part=part),
        ResponseTextDeltaEvent(**ids, delta="Hi"),
        ResponseTextDoneEvent(**ids, text="Hi"),
        ResponseContentPartDoneEvent(**ids, part=part),
    ]
    acc = _fold(events)
    assert to_dict(acc.result().output[0])["content"] == [
        {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
    ]
    assert item.content == []
    assert part.text == ""
    acc.handle(ResponseOutputItemDoneEvent(output_index=0, item=item))
    assert to_dict(acc.result().output[0]) == {
        "id": "msg_1",
        "type": "message",
        "status": "in_progress",
        "content": [],
        "role": "assistant",
    }


def test_part_placed_in_a_reasoning_item_without_content() -> None:
    """``content`` is ``None`` on the added reasoning item: the fold gives its own copy a list."""
    item = ResponseReasoningItem(id="rs_1", summary=[])
    ids: dict[str, Any] = {"item_id": "rs_1", "output_index": 0, "content_index": 0}
    events: list[Any] = [
        *_lifecycle(),
        ResponseOutputItemAddedEvent(output_index=0, item=item),
        ResponseContentPartAddedEvent(**ids, part=Content(text="")),
        ResponseReasoningTextDeltaEvent(**ids, delta="hm"),
        ResponseReasoningTextDeltaEvent(**ids, delta="m"),
    ]
    before = [to_dict(e) for e in events]
    result = _fold(events).result()
    assert to_dict(result.output[0]) == {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": "hmm"}],
    }
    assert item.content is None
    assert [to_dict(e) for e in events] == before


def test_refusal_part_text_comes_from_its_deltas() -> None:
    ids: dict[str, Any] = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events: list[Any] = [
        *_lifecycle(),
        ResponseOutputItemAddedEvent(
            output_index=0, item=ResponseOutputMessage(id="msg_1", content=[])
        ),
        ResponseContentPartAddedEvent(**ids, part=ResponseOutputRefusal(refusal="")),
        ResponseRefusalDeltaEvent(**ids, delta="I can't "),
        ResponseRefusalDeltaEvent(**ids, delta="help."),
    ]
    before = [to_dict(e) for e in events]
    result = _fold(events).result()
    assert to_dict(result.output[0])["content"] == [{"type": "refusal", "refusal": "I can't help."}]
    assert [to_dict(e) for e in events] == before


def test_delta_after_its_done_starts_over() -> None:
    """A delta for a part whose ``.done`` was folded goes to a new buffer, after the ``.done``
    text (the fold remembers the last delta's buffer only until another event)."""
    ids: dict[str, Any] = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events: list[Any] = [
        *_lifecycle(),
        ResponseOutputItemAddedEvent(
            output_index=0, item=ResponseOutputMessage(id="msg_1", content=[])
        ),
        ResponseContentPartAddedEvent(
            **ids, part=ResponseOutputText(text="", annotations=[], logprobs=[])
        ),
        ResponseTextDeltaEvent(**ids, delta="a"),
        ResponseTextDeltaEvent(**ids, delta="b"),
        ResponseTextDoneEvent(**ids, text="AB"),
        ResponseTextDeltaEvent(**ids, delta="c"),
        ResponseTextDeltaEvent(**ids, delta="d"),
    ]
    assert _fold(events).result().output_text == "ABcd"


def test_interleaved_deltas_land_on_their_own_parts() -> None:
    def message(index: int, item_id: str) -> list[Any]:
        return [
            ResponseOutputItemAddedEvent(
                output_index=index, item=ResponseOutputMessage(id=item_id, content=[])
            ),
            ResponseContentPartAddedEvent(
                item_id=item_id,
                output_index=index,
                content_index=0,
                part=ResponseOutputText(text="", annotations=[], logprobs=[]),
            ),
        ]

    def delta(index: int, item_id: str, text: str) -> Any:
        return ResponseTextDeltaEvent(
            item_id=item_id, output_index=index, content_index=0, delta=text
        )

    events: list[Any] = [
        *_lifecycle(),
        *message(0, "msg_a"),
        *message(1, "msg_b"),
        delta(0, "msg_a", "1"),
        delta(0, "msg_a", "2"),
        delta(1, "msg_b", "x"),
        delta(0, "msg_a", "3"),
        delta(1, "msg_b", "y"),
        delta(1, "msg_b", "z"),
    ]
    result = _fold(events).result()
    assert [_parts(item)[0].text for item in result.output] == ["123", "xyz"]


def test_many_one_character_deltas() -> None:
    """More deltas than a block of fragments holds: every character is kept, in order."""
    text = "the quick brown fox jumps over the lazy dog. " * 20  # 900 characters
    ids: dict[str, Any] = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events: list[Any] = [
        *_lifecycle(),
        ResponseOutputItemAddedEvent(
            output_index=0, item=ResponseOutputMessage(id="msg_1", content=[])
        ),
        ResponseContentPartAddedEvent(
            **ids, part=ResponseOutputText(text="", annotations=[], logprobs=[])
        ),
        *(ResponseTextDeltaEvent(**ids, delta=ch) for ch in text),
    ]
    acc = _fold(events)
    assert acc.result().output_text == "the quick brown fox jumps over the lazy dog. " * 20
    assert len(acc.result().output_text) == 900


def test_one_part_object_placed_in_two_slots_gives_two_parts() -> None:
    """A stage may send one constant empty part for every ``content_part.added``, and one empty
    item for every ``output_item.added``: each placement is a part (an item) of its own."""
    empty_part = ResponseOutputText(text="", annotations=[], logprobs=[])
    empty_item = ResponseOutputMessage(id="msg_x", content=[])

    def delta(index: int, sub: int, text: str) -> Any:
        return ResponseTextDeltaEvent(
            item_id="msg_x", output_index=index, content_index=sub, delta=text
        )

    def part_added(index: int, sub: int) -> Any:
        return ResponseContentPartAddedEvent(
            item_id="msg_x", output_index=index, content_index=sub, part=empty_part
        )

    events: list[Any] = [
        *_lifecycle(),
        ResponseOutputItemAddedEvent(output_index=0, item=empty_item),
        ResponseOutputItemAddedEvent(output_index=1, item=empty_item),
        part_added(0, 0),
        part_added(0, 1),
        part_added(1, 0),
        delta(0, 0, "a"),
        delta(0, 1, "x"),
        delta(0, 0, "b"),
        delta(1, 0, "1"),
        delta(0, 1, "y"),
        ResponseTextDoneEvent(item_id="msg_x", output_index=1, content_index=0, text="one"),
    ]
    before = [to_dict(e) for e in events]
    result = _fold(events).result()
    assert [[part.text for part in _parts(item)] for item in result.output] == [
        ["ab", "xy"],
        ["one"],
    ]
    first, second = _parts(result.output[0])
    assert first is not second
    first.logprobs.append(Logprob(token="t", logprob=0.0))
    assert second.logprobs == []
    assert [to_dict(e) for e in events] == before
    assert empty_part.text == ""
    assert empty_item.content == []


# -- final_response(): the lazy fold ------------------------------------------------------------


def _final(events: list[Any], error: Exception | None = None) -> dict[str, Any]:
    source = reactivex.from_iterable(events)
    if error is not None:
        source = reactivex.concat(source, reactivex.throw(error))
    out: list[Any] = []
    source.pipe(final_response()).subscribe(out.append)
    (response,) = out
    return to_dict(response)


def _long_cut_stream() -> list[Any]:
    """A stream cut after ~150 deltas: the lazy fold must fold in batches and lose none."""
    events = _stream_without_item_dones()
    delta = next(e for e in events if isinstance(e, ResponseTextDeltaEvent))
    extra = [delta.model_copy(update={"delta": f"<{i}>"}) for i in range(150)]
    return events + extra


def _variants() -> list[tuple[str, list[Any]]]:
    complete = _complete_stream()
    terminal = complete[-1]
    empty_terminal = terminal.model_copy(
        update={"response": terminal.response.model_copy(update={"output": []})}
    )
    late_item = ResponseOutputItemDoneEvent(
        output_index=0,
        item=ResponseOutputMessage(id="msg_late", status="completed", content=[]),
    )
    out = [(f"prefix {n}", complete[:n]) for n in range(len(complete) + 1)]
    out += [
        ("terminal twice", [*complete, terminal]),
        ("item after terminal", [*complete, late_item]),
        ("terminal without output", [*complete[:-1], empty_terminal]),
        ("cut, no item done", _stream_without_item_dones()),
        ("long and cut", _long_cut_stream()),
        ("long, then terminal", [*_long_cut_stream(), terminal]),
    ]
    return out


@pytest.mark.parametrize(("name", "events"), _variants(), ids=[n for n, _e in _variants()])
@pytest.mark.parametrize("error", [None, UpstreamError("cut")], ids=["completed", "error"])
def test_final_response_lazy_fold_equals_folding_every_event(
    name: str, events: list[Any], error: Exception | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """final_response() holds up to _HOLD events and starts its fold at the last terminal
    event with output; with _HOLD = 1 it folds every event as it comes. Both give the same
    final Response, for every ending."""
    before = [to_dict(e) for e in events]
    lazy = _final(events, error)
    monkeypatch.setattr(_final_module, "_HOLD", 1)
    eager = _final(events, error)
    assert lazy == eager
    assert [to_dict(e) for e in events] == before


# -- handle_all(): a batch of events, minus those a later output_item.done undoes ---------------


def _after_item_done() -> list[Any]:
    """Events for an item after its ``output_item.done`` (a second part, a status, a delta), an
    ``error`` event, and an item done twice: what comes after the last done is applied."""
    complete = _complete_stream()
    ids: dict[str, Any] = {"item_id": "msg_1", "output_index": 1, "content_index": 1}
    return [
        *complete[:-1],
        ResponseContentPartAddedEvent(
            **ids, part=ResponseOutputText(text="", annotations=[], logprobs=[])
        ),
        ResponseTextDeltaEvent(**ids, delta=" again"),
        ResponseWebSearchCallSearchingEvent(item_id="ws_1", output_index=3),
        ResponseErrorEvent(code="server_error", message="late", param=None),
        *_function_call(),
        ResponseOutputItemDoneEvent(
            output_index=2,
            item=ResponseFunctionToolCall(
                id="fc_1", call_id="call_1", name="lookup", arguments="{}", status="completed"
            ),
        ),
    ]


@pytest.mark.parametrize(
    ("name", "events"),
    [*_variants(), ("after item done", _after_item_done())],
    ids=[n for n, _e in [*_variants(), ("after item done", [])]],
)
def test_handle_all_equals_handling_each_event(name: str, events: list[Any]) -> None:
    """What assemble() | final_response() folds at the end of a short stream: the same
    Response, terminal and error as handling every event, and every event left unchanged."""
    before = [to_dict(e) for e in events]
    each = _fold(events)
    batch = ResponseAccumulator()
    batch.handle_all(events)
    assert to_dict(batch.result()) == to_dict(each.result())
    assert (batch.terminal, batch.error) == (each.terminal, each.error)
    assert [to_dict(e) for e in events] == before


def test_handle_all_skips_what_a_later_item_done_replaces() -> None:
    """Folded in a batch, the events of a closed item before its output_item.done are not
    applied (they would change nothing: a part added with a text of its own is not in the
    result); the lifecycle events and the done are."""
    ids: dict[str, Any] = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    done = ResponseOutputMessage(
        id="msg_1",
        status="completed",
        content=[ResponseOutputText(text="Hi", annotations=[], logprobs=[])],
    )
    events: list[Any] = [
        *_lifecycle(),
        ResponseOutputItemAddedEvent(
            output_index=0, item=ResponseOutputMessage(id="msg_1", content=[])
        ),
        ResponseContentPartAddedEvent(
            **ids, part=ResponseOutputText(text="stale", annotations=[], logprobs=[])
        ),
        ResponseTextDeltaEvent(**ids, delta="H"),
        ResponseOutputItemDoneEvent(output_index=0, item=done),
    ]
    acc = ResponseAccumulator()
    applied: list[str] = []
    handle = acc.handle

    def spy(event: Any) -> None:
        applied.append(event.type)
        handle(event)

    acc.handle = spy  # type: ignore[method-assign]
    acc.handle_all(events)
    assert applied == ["response.created", "response.in_progress", "response.output_item.done"]
    result = acc.result()
    assert result.output_text == "Hi"
    assert [to_dict(item) for item in result.output] == [
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Hi"}],
            "role": "assistant",
        }
    ]


def test_reading_parts_finds_what_getattr_finds() -> None:
    """The result's cheap read of an item's ``content`` / ``summary`` (no AttributeError raised
    for a model without them) finds exactly what ``getattr`` finds: declared fields, extras,
    properties, and attributes of objects that are not models."""

    class WithProperty(ResponseOutputItemOther):
        @property
        def summary(self) -> list[str]:
            return ["from a property"]

    class Plain:
        content = ["a plain object's"]

    items: list[Any] = [
        ResponseOutputMessage(id="msg_1", content=[ResponseOutputText(text="x")]),
        ResponseFunctionToolCall(id="fc_1", call_id="c", name="f", arguments="{}"),
        ResponseReasoningItem(id="rs_1", summary=[Summary(text="s")]),
        ResponseOutputItemOther(type="custom", id="o_1", content=["extra"]),
        ResponseOutputItemOther(type="custom", id="o_2"),
        WithProperty(type="custom", id="o_3"),
        Plain(),
    ]
    for item in items:
        for attr in ("content", "summary"):
            assert _final_module._attr(item, attr) == getattr(item, attr, None)
    assert [_final_module._attr(item, "content") for item in items[3:5]] == [["extra"], None]


def test_last_shared_result_hands_out_the_response_the_fold_owns() -> None:
    """A response given to begin() as owned (built for the fold alone) is the last shared
    result itself, with the output placed in it; one an event brought is copied, and so is the
    owned one for any result that is not the last."""
    done = ResponseOutputMessage(
        id="msg_1", status="completed", content=[ResponseOutputText(text="Hi")]
    )
    item_done = ResponseOutputItemDoneEvent(output_index=0, item=done)
    base = _response("in_progress")
    acc = ResponseAccumulator()
    acc.begin(base, owned=True)
    acc.handle(item_done)
    not_last = acc.result(share=True)
    assert not_last is not base
    assert not_last.output == [done]
    assert base.output == []
    last = acc.result(share=True, last=True)
    assert last is base
    assert last.output == [done]
    brought = ResponseAccumulator()
    brought.begin(_response("in_progress"), owned=True)
    event = ResponseInProgressEvent(sequence_number=1, response=_response("in_progress"))
    brought.handle(event)
    assert brought.result(share=True, last=True) is not event.response
    assert event.response.output == []

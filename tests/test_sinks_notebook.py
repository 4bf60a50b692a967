"""Jupyter display of events, output items and Response (HTML and Markdown reprs)."""

from __future__ import annotations

from typing import Any

import pytest

from rxresponses import get_final_response, iterate
from rxresponses.data import demo_events
from rxresponses.sinks import LiveDisplay, events_table
from rxresponses.sinks.notebook import repr_html, repr_markdown, response_markdown
from rxresponses.types.chat import parse_chunk
from rxresponses.types.events import parse_event
from rxresponses.types.response import Response


@pytest.fixture(scope="module")
def events() -> list[Any]:
    return list(iterate(demo_events()))


@pytest.fixture(scope="module")
def response() -> Response:
    return get_final_response(demo_events())


def test_response_html(response: Response) -> None:
    html = response._repr_html_()
    assert html is not None
    assert html.startswith('<div class="rxresponses-response"><table')
    assert "<code>resp_000001</code>" in html
    assert ">completed</span>" in html
    assert "rxresponses-demo" in html
    for item_id in ("rs_000002", "msg_000003", "fc_000004", "fc_000005"):
        assert f"<code>{item_id}</code>" in html
    assert "Let me check the current weather in both cities for you." in html
    assert (
        "get_weather({&quot;city&quot;: &quot;Paris&quot;, &quot;unit&quot;: &quot;celsius&quot;})"
        in html
    )
    assert "[call_scripted_0]" in html
    assert "42 in · 108 out (58 reasoning) · 150 total" in html


def test_response_markdown(response: Response) -> None:
    md = response._repr_markdown_()
    assert md is not None
    lines = md.splitlines()
    assert lines[0] == "**Response** `resp_000001` **completed** · rxresponses-demo"
    assert lines[2] == "| # | type | id | content |"
    assert lines[5] == (
        "| 1 | message | `msg_000003` | Let me check the current weather in both cities for you. "
        "I'll look up Paris and Tokyo at the same time. |"
    )
    assert "**usage** 42 in · 108 out (58 reasoning) · 150 total" in md


def test_failed_and_incomplete_response_display() -> None:
    failed = Response.model_validate(
        {"id": "r", "created_at": 1, "model": "m", "status": "failed",
         "error": {"code": "server_error", "message": "it <broke>"}}
    )  # fmt: skip
    html = repr_html(failed) or ""
    assert "it &lt;broke&gt;" in html
    assert "<broke>" not in html
    assert "no output items" in html
    assert "**error** server_error: it <broke>" in (repr_markdown(failed) or "")
    incomplete = Response.model_validate(
        {"id": "r", "created_at": 1, "model": "m", "status": "incomplete",
         "incomplete_details": {"reason": "max_output_tokens"}}
    )  # fmt: skip
    assert "<b>incomplete</b> max_output_tokens" in (repr_html(incomplete) or "")
    assert "**incomplete** max_output_tokens" in response_markdown(incomplete)


def test_delta_event_display(events: list[Any]) -> None:
    delta = events[4]
    assert delta.type == "response.reasoning_text.delta"
    html = delta._repr_html_()
    assert "<b>response.reasoning_text.delta</b>" in html
    assert "<code>4</code>" in html  # sequence number
    assert "<code>rs_000002</code>" in html
    assert "&#x27;The &#x27;" in html  # the delta text, quoted
    assert delta._repr_markdown_() == (
        "**response.reasoning_text.delta** · seq `4` · item `rs_000002` · output `0` · "
        "content `0` · text `'The '`\n"
    )


def test_item_and_lifecycle_event_display(events: list[Any]) -> None:
    added = next(
        e for e in events if e.type == "response.output_item.added" and e.output_index == 2
    )
    md = added._repr_markdown_()
    assert md.startswith("**response.output_item.added** · seq ")
    assert "item `fc_000004`" in md
    assert "item type `function_call`" in md
    assert "get_weather()" in md  # arguments not streamed yet
    completed = events[-1]
    html = completed._repr_html_()
    assert "<b>response.completed</b>" in html
    assert '<div class="rxresponses-response">' in html  # the response table follows
    assert "**Response** `resp_000001` **completed**" in completed._repr_markdown_()
    created = events[0]
    assert '<div class="rxresponses-response">' not in created._repr_html_()  # no output yet


def test_error_event_display() -> None:
    flat = parse_event(
        {"type": "error", "sequence_number": 3, "code": "rate_limit", "message": "slow down"}
    )
    assert "error `rate_limit: slow down`" in flat._repr_markdown_()
    nested = parse_event({"type": "error", "error": {"code": "quota", "message": "pay"}})
    assert "quota: pay" in nested._repr_html_()


def test_output_item_display(response: Response) -> None:
    item = response.output[2]
    assert item._repr_markdown_() == (
        '**function_call** `fc_000004` get_weather({"city": "Paris", "unit": "celsius"})'
        "  [call_scripted_0]\n"
    )
    assert "<b>reasoning</b>" in (response.output[0]._repr_html_() or "")


def test_other_models_fall_back_to_the_plain_repr() -> None:
    chunk = parse_chunk('{"id": "c", "object": "chat.completion.chunk", "choices": []}')
    assert chunk._repr_html_() is None
    assert chunk._repr_markdown_() is None
    assert repr_html(object()) is None


def test_events_table(events: list[Any]) -> None:
    table = events_table(events, max_rows=10)
    assert len(table) == len(events)
    assert repr(table) == f"<EventTable of {len(events)} events>"
    html = table._repr_html_()
    assert html.count("<tr>") == 1 + 10 + 1  # header, rows, "more"
    assert f"... {len(events) - 10} more events" in html
    assert "response.reasoning_text.delta" in html
    assert "<code>in_progress</code>" in html  # lifecycle rows show the status


def test_live_display(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("IPython")
    import IPython.display

    shown: list[Any] = []

    class Handle:
        def update(self, obj: Any) -> None:
            shown.append(obj)

    def display(obj: Any, display_id: bool = False) -> Handle:
        shown.append(obj)
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    live = LiveDisplay(interval=0.0)
    demo_events().subscribe(live)
    assert len(shown) > 100  # interval 0: a redraw per event
    assert "completed" in shown[-1].data
    assert live.response.status == "completed"
    shown.clear()
    throttled = LiveDisplay(interval=60.0)
    demo_events().subscribe(throttled)
    assert len(shown) == 2  # the first event, then the end


def test_live_display_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("IPython")
    import IPython.display
    import reactivex

    shown: list[Any] = []

    def display(obj: Any, display_id: bool = False) -> Any:
        shown.append(obj)
        return None

    monkeypatch.setattr(IPython.display, "display", display)
    reactivex.throw(RuntimeError("x <y>")).subscribe(LiveDisplay())
    assert "stream error: x &lt;y&gt;" in shown[-1].data

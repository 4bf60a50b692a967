"""Provider fidelity: usage, citations, encrypted reasoning and ``<think>``, as Responses has them.

Every stream here is converted twice, by the typed operators (``decode_sse() | parse_chunks() |
chat_to_responses()``, with an Rx hop so nothing is fused) and by the fused
``chat_sse_to_responses()`` that ``rxresponses serve`` runs; the two must give the same events,
each valid against the official SDK (openai 3.54), following the stream grammar, and folding to
the terminal ``response``. Expected values are written out by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai.types.responses as sdk_types
import pydantic
import pytest
import reactivex
from reactivex import operators as ops

from rxresponses import operators as rxo
from rxresponses.pipelines import chat_sse_to_responses, chat_to_responses
from rxresponses.sources import from_bytes
from tests._util import Ids, dumps, sse_json
from tests.conftest import CHAT_FIXTURES, fixture_params
from tests.grammar import check_stream

SDK_EVENT = pydantic.TypeAdapter(sdk_types.ResponseStreamEvent)


def sse(chunks: list[dict[str, Any]], *, done: bool = True) -> bytes:
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)
    return (body + ("data: [DONE]\n\n" if done else "")).encode()


def _run(pipeline: Any, pieces: list[bytes]) -> list[dict[str, Any]]:
    events: list[Any] = []
    errors: list[Exception] = []
    from_bytes(pieces).pipe(pipeline).subscribe(events.append, errors.append)
    assert not errors
    return dumps(events, wall_clock=False)


def convert(body: bytes, **options: Any) -> list[dict[str, Any]]:
    """The events of ``body`` on both paths (asserted equal), checked; cut in small pieces too."""

    def opts() -> dict[str, Any]:
        return {"ids": Ids(), "response_id": "resp_test", "created_at": 1, **options}

    typed = reactivex.compose(
        rxo.decode_sse(),
        rxo.parse_chunks(),
        ops.map(lambda chunk: chunk),  # an Rx hop: every chunk reaches split_by_item() typed
        chat_to_responses(**opts()),
    )
    events = _run(typed, [body])
    assert _run(chat_sse_to_responses(**opts()), [body]) == events
    pieces = [body[i : i + 29] for i in range(0, len(body), 29)]
    assert _run(chat_sse_to_responses(**opts()), pieces) == events
    # the operators piped back to back: the driver fuses them (the ChatSplitStage fast path)
    staged = reactivex.compose(rxo.decode_sse(), rxo.parse_chunks(), chat_to_responses(**opts()))
    assert _run(staged, pieces) == events
    for event in events:
        SDK_EVENT.validate_python(event)
    check_stream(events)
    final: list[Any] = []
    from_bytes([body]).pipe(chat_sse_to_responses(**opts()), rxo.final_response()).subscribe(
        final.append
    )
    folded = dumps(final)[0]
    folded.pop("completed_at", None)  # the clock (dumps() drops it from the events)
    assert folded == events[-1]["response"]
    return events


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **top: Any) -> dict:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        **top,
    }


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"].removeprefix("response.") for e in events]


# -- 1. usage -------------------------------------------------------------------------------------

#: xAI (grok-3-mini): reasoning tokens beside completion_tokens, the total counts them.
XAI_USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 2,
    "total_tokens": 354,
    "prompt_tokens_details": {"text_tokens": 12, "cached_tokens": 11},
    "completion_tokens_details": {"reasoning_tokens": 340},
    "num_sources_used": 0,
    "cost_in_usd_ticks": 1466250,
}


def _xai_stream(usage: dict[str, Any]) -> bytes:
    return sse(
        [
            chunk({"reasoning_content": "First, the user said", "role": "assistant"}),
            chunk({"content": "Hello"}),
            chunk({"content": "!"}),
            chunk({}, "stop"),
            {**chunk(), "choices": [], "usage": usage},
        ]
    )


def test_xai_usage_counts_reasoning_in_output_tokens() -> None:
    events = convert(_xai_stream(XAI_USAGE))
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["usage"] == {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 11, "cache_write_tokens": 0},
        "output_tokens": 342,  # 2 + 340: input + output == total
        "output_tokens_details": {"reasoning_tokens": 340},
        "total_tokens": 354,
    }


@pytest.mark.parametrize(
    ("usage", "output_tokens"),
    [
        # OpenAI / DeepSeek: reasoning already inside completion_tokens (12 + 342 == 354)
        ({"prompt_tokens": 12, "completion_tokens": 342, "total_tokens": 354}, 342),
        # totals that add up neither way: kept as given
        ({"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 400}, 2),
        # no total at all: computed as prompt + completion, nothing to normalise
        ({"prompt_tokens": 12, "completion_tokens": 2}, 2),
    ],
)
def test_usage_without_the_xai_gap_is_kept(usage: dict[str, Any], output_tokens: int) -> None:
    usage = {**usage, "completion_tokens_details": {"reasoning_tokens": 340}}
    mapped = convert(_xai_stream(usage))[-1]["response"]["usage"]
    assert mapped["output_tokens"] == output_tokens
    assert mapped["output_tokens_details"] == {"reasoning_tokens": 340}


def _last_usage(path: Path) -> dict[str, Any] | None:
    usage = None
    for c in sse_json(path):
        found = c.get("usage") or (c.get("x_groq") or {}).get("usage")
        usage = found or usage
    return usage


@pytest.mark.parametrize("path", fixture_params(CHAT_FIXTURES))
def test_recorded_usage_is_unchanged(path: Path) -> None:
    """OpenAI, DeepSeek, Groq, Qwen, Z.ai, OpenRouter already count reasoning in
    ``completion_tokens``: their numbers go through as the recording has them."""
    usage = _last_usage(path)
    response = convert(path.read_bytes())[-1]["response"]
    if usage is None:
        assert response["usage"] is None
        return
    assert response["usage"]["input_tokens"] == usage["prompt_tokens"]
    assert response["usage"]["output_tokens"] == usage["completion_tokens"]
    assert response["usage"]["total_tokens"] == usage["total_tokens"]


# -- 2. citations ---------------------------------------------------------------------------------

URLS = [
    "https://en.wikipedia.org/wiki/San_Francisco",
    "https://populationstat.com/united-states/san-francisco",
    "https://www.census.gov/quickfacts/sanfranciscocity",
]


def _perplexity(pieces: list[str], **top: Any) -> bytes:
    """The shape of Perplexity's stream: cumulative usage and the citations on every chunk,
    the last chunk ``object: "chat.completion.done"``."""
    chunks = []
    for n, text in enumerate(pieces, 1):
        usage = {"prompt_tokens": 10, "completion_tokens": n, "total_tokens": 10 + n}
        chunks.append(chunk({"role": "assistant", "content": text}, usage=usage, **top))
    last = chunk({"role": "assistant", "content": ""}, "stop", **top)
    last["object"] = "chat.completion.done"
    last["usage"] = {"prompt_tokens": 10, "completion_tokens": 9, "total_tokens": 19}
    return sse([*chunks, last])


def test_perplexity_citations_become_url_citation_annotations() -> None:
    # "[2" and "]" arrive in two chunks; "é" before the markers: offsets count characters.
    pieces = ["Café SF", " has 808,988 people", "[2", "][1]", ". Growth", " is slow[9]."]
    events = convert(_perplexity(pieces, citations=URLS))
    text = "Café SF has 808,988 people[2][1]. Growth is slow[9]."
    assert text[26:29] == "[2]"
    assert text[29:32] == "[1]"
    expected = [
        {
            "type": "url_citation",
            "url": URLS[1],
            "title": URLS[1],  # citations carry no titles: the URL stands in
            "start_index": 26,
            "end_index": 29,
        },
        {
            "type": "url_citation",
            "url": URLS[0],
            "title": URLS[0],
            "start_index": 29,
            "end_index": 32,
        },
        {  # cited by no marker: listed, zero-width at the end ([9] is no source: left as text)
            "type": "url_citation",
            "url": URLS[2],
            "title": URLS[2],
            "start_index": 52,
            "end_index": 52,
        },
    ]
    assert len(text) == 52
    # annotation.added, one per annotation in order, after the deltas, before the text is done
    assert types(events)[-8:] == [
        "output_text.delta",
        "output_text.annotation.added",
        "output_text.annotation.added",
        "output_text.annotation.added",
        "output_text.done",
        "content_part.done",
        "output_item.done",
        "completed",
    ]
    added = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    assert [(e["annotation_index"], e["annotation"]) for e in added] == list(enumerate(expected))
    assert {(e["item_id"], e["output_index"], e["content_index"]) for e in added} == {
        ("msg_1", 0, 0)
    }
    done = next(e for e in events if e["type"] == "response.output_text.done")
    assert done["text"] == text
    part_done = next(e for e in events if e["type"] == "response.content_part.done")
    assert part_done["part"]["annotations"] == expected
    item_done = next(e for e in events if e["type"] == "response.output_item.done")
    assert item_done["item"]["content"][0]["annotations"] == expected
    final = events[-1]["response"]
    assert final["output"][0]["content"][0] == {
        "type": "output_text",
        "annotations": expected,
        "logprobs": [],
        "text": text,
    }
    assert final["usage"]["output_tokens"] == 9  # the last cumulative usage


def test_perplexity_citations_wherever_the_bytes_are_cut() -> None:
    body = _perplexity(["Pop", "ulation [", "1", "] grew [2", "]."], citations=URLS[:2])
    whole = convert(body)
    for size in range(1, 41):
        pieces = [body[i : i + size] for i in range(0, len(body), size)]
        options = {"ids": Ids(), "response_id": "resp_test", "created_at": 1}
        assert _run(chat_sse_to_responses(**options), pieces) == whole
    annotations = whole[-1]["response"]["output"][0]["content"][0]["annotations"]
    assert [(a["url"], a["start_index"], a["end_index"]) for a in annotations] == [
        (URLS[0], 11, 14),
        (URLS[1], 20, 23),
    ]


def test_perplexity_reasoning_model_offsets_count_from_the_answer() -> None:
    """sonar-reasoning puts ``<think>...</think>`` before the answer: markers inside the
    reasoning get no annotation, and the answer's offsets start at its own first character."""
    body = _perplexity(
        ["<think>Source [1] says", " so.</think>", "Answer [1]."], citations=URLS[:1]
    )
    output = convert(body)[-1]["response"]["output"]
    assert [i["type"] for i in output] == ["reasoning", "message"]
    assert output[1]["content"][0]["text"] == "Answer [1]."
    assert output[1]["content"][0]["annotations"] == [
        {
            "type": "url_citation",
            "url": URLS[0],
            "title": URLS[0],
            "start_index": 7,
            "end_index": 10,
        }
    ]


def test_cut_stream_keeps_its_citations() -> None:
    """A stream that ends with no finish_reason fails, keeping the text and its citations."""
    chunks = [chunk({"content": "Half [1]"}, citations=URLS[:1])]
    events = convert(sse(chunks, done=False))
    assert types(events)[-2:] == ["error", "failed"]
    message = events[-1]["response"]["output"][0]
    assert message["status"] == "incomplete"
    assert message["content"][0]["annotations"] == [
        {"type": "url_citation", "url": URLS[0], "title": URLS[0], "start_index": 5, "end_index": 8}
    ]


def test_perplexity_search_results_give_titles() -> None:
    results = [
        {"title": "San Francisco - Wikipedia", "url": URLS[0], "date": "2026-01-02"},
        {"title": "Population", "url": URLS[1]},
    ]
    events = convert(
        _perplexity(["About 809k", "[1]."], citations=URLS[:2], search_results=results)
    )
    annotations = events[-1]["response"]["output"][0]["content"][0]["annotations"]
    assert annotations == [
        {
            "type": "url_citation",
            "url": URLS[0],
            "title": "San Francisco - Wikipedia",
            "start_index": 10,
            "end_index": 13,
        },
        {
            "type": "url_citation",
            "url": URLS[1],
            "title": "Population",
            "start_index": 14,
            "end_index": 14,
        },
    ]
    # search_results alone (newer API versions) number the sources the same way
    only = convert(_perplexity(["About 809k", "[1]."], search_results=results))
    assert only[-1]["response"]["output"][0]["content"][0]["annotations"] == annotations


def test_citations_arriving_after_the_text_still_apply() -> None:
    """Sources seen only on the last chunk (after fast-path text) still place the markers."""
    body = sse(
        [
            chunk({"content": "One"}),
            chunk({"content": " source [1]"}),
            chunk({"content": " here."}),
            chunk({}, "stop", citations=URLS[:1]),
        ]
    )
    annotations = convert(body)[-1]["response"]["output"][0]["content"][0]["annotations"]
    assert annotations == [
        {
            "type": "url_citation",
            "url": URLS[0],
            "title": URLS[0],
            "start_index": 11,
            "end_index": 14,
        }
    ]


def test_openai_search_model_delta_annotations() -> None:
    citation = {
        "url": "https://www.britannica.com/place/Mount-Columbia",
        "title": "Mount Columbia | mountain, Alberta, Canada",
        "start_index": 21,
        "end_index": 36,
    }
    body = sse(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Mount Columbia rises "}),
            chunk({"content": "([britannica])."}),
            chunk({"annotations": [{"type": "url_citation", "url_citation": citation}]}),
            chunk({}, "stop"),
        ]
    )
    events = convert(body)
    expected = {"type": "url_citation", **citation}
    added = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    assert [e["annotation"] for e in added] == [expected]
    content = events[-1]["response"]["output"][0]["content"][0]
    assert content["text"][21:36] == "([britannica])."
    assert content["annotations"] == [expected]


def test_no_sources_no_annotations() -> None:
    """A stream without sources keeps ``[1]`` as plain text, with no annotation event."""
    events = convert(sse([chunk({"content": "a[1] = 2"}), chunk({}, "stop")]))
    assert "output_text.annotation.added" not in types(events)
    assert events[-1]["response"]["output"][0]["content"][0]["annotations"] == []


# -- 3. OpenRouter encrypted reasoning ------------------------------------------------------------


def test_openrouter_encrypted_reasoning_becomes_encrypted_content() -> None:
    details = [
        {"type": "reasoning.text", "text": "Greet back.", "format": "anthropic-claude-v1"},
        {
            "type": "reasoning.encrypted",
            "data": "gAAAAB-opaque",
            "id": "rs_up_1",
            "format": "anthropic-claude-v1",
        },
    ]
    body = sse(
        [
            chunk({"role": "assistant", "content": "", "reasoning_details": details[:1]}),
            chunk({"role": "assistant", "content": "", "reasoning_details": details[1:]}),
            chunk({"role": "assistant", "content": "Hi!"}),
            chunk({"role": "assistant", "content": ""}, "stop"),
        ]
    )
    events = convert(body)
    reasoning = events[-1]["response"]["output"][0]
    assert reasoning == {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": "Greet back."}],
        "encrypted_content": "gAAAAB-opaque",
        "status": "completed",
    }
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done[0] == reasoning


def test_two_encrypted_blobs_make_two_reasoning_items() -> None:
    blob = {"type": "reasoning.encrypted", "data": "A"}
    body = sse(
        [
            chunk({"reasoning_details": [blob]}),
            chunk({"reasoning_details": [{**blob, "data": "B"}]}),
            chunk({"content": "ok"}),
            chunk({}, "stop"),
        ]
    )
    output = convert(body)[-1]["response"]["output"]
    assert [(i["type"], i.get("encrypted_content")) for i in output] == [
        ("reasoning", "A"),
        ("reasoning", "B"),
        ("message", None),
    ]


def test_openrouter_recording_with_encrypted_reasoning(fixtures_dir: Path) -> None:
    path = (
        fixtures_dir
        / "chat"
        / "pydantic-ai__test_openrouter_test_openrouter_stream_with_reasoning.0.sse"
    )
    data = next(
        d["data"]
        for c in sse_json(path)
        for d in c["choices"][0]["delta"].get("reasoning_details") or []
        if d["type"] == "reasoning.encrypted"
    )
    events = convert(path.read_bytes())
    output = events[-1]["response"]["output"]
    assert [i["type"] for i in output] == ["reasoning", "message"]
    assert output[0] == {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [],
        "content": [],
        "encrypted_content": data,
        "status": "completed",
    }
    assert output[1]["content"][0]["text"].startswith("I\u2019m ChatGPT")


# -- 4. <think> not at the start ------------------------------------------------------------------


def test_think_at_the_start_is_reasoning_even_split_across_chunks() -> None:
    body = sse(
        [
            chunk({"content": "\n<thi"}),
            chunk({"content": "nk>Check units.</th"}),
            chunk({"content": "ink>\n\n4 km"}),
            chunk({}, "stop"),
        ]
    )
    output = convert(body)[-1]["response"]["output"]
    assert [(i["type"], i["content"][0]["text"]) for i in output] == [
        ("reasoning", "Check units."),
        ("message", "4 km"),
    ]


def test_think_not_at_the_start_stays_text() -> None:
    """Only a leading ``<think>`` is reasoning: one after other text is text, tags and all."""
    text = "Sure. <think>is this reasoning?</think> No: it is text."
    body = sse([chunk({"content": text[:9]}), chunk({"content": text[9:]}), chunk({}, "stop")])
    output = convert(body)[-1]["response"]["output"]
    assert [(i["type"], i["content"][0]["text"]) for i in output] == [("message", text)]
    # after reasoning_content, a <think> opening the content is still reasoning (the same run)
    body = sse(
        [
            chunk({"reasoning_content": "r"}),
            chunk({"content": "<think>t</think>answer <think>x</think>"}),
            chunk({}, "stop"),
        ]
    )
    output = convert(body)[-1]["response"]["output"]
    assert [(i["type"], i["content"][0]["text"]) for i in output] == [
        ("reasoning", "rt"),
        ("message", "answer <think>x</think>"),
    ]


# -- the same through `rxresponses serve`, over real HTTP on 127.0.0.1 ---------------------------


def test_serve_carries_usage_citations_and_encrypted_reasoning() -> None:
    """A fake Chat upstream answers in the xAI, Perplexity and OpenRouter shapes; the official
    SDK reads ``rxresponses serve`` in front of it, streaming and not."""
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    import openai
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from rxresponses.server import ServerConfig, create_app
    from rxresponses.server.testing import BackgroundServer

    details = [{"type": "reasoning.encrypted", "data": "gAAAAB-opaque", "format": "x"}]
    bodies = {
        "grok": _xai_stream(XAI_USAGE),
        "sonar": _perplexity(["Café SF", " has 808,988 people", "[2", "]."], citations=URLS),
        "openrouter": sse(
            [
                chunk({"role": "assistant", "content": "", "reasoning_details": details}),
                chunk({"role": "assistant", "content": "Hi!"}),
                chunk({"role": "assistant", "content": ""}, "stop"),
            ]
        ),
    }

    async def chat(request: Request) -> Response:
        body = await request.json()
        return Response(bodies[body["model"]], media_type="text/event-stream")

    upstream_app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    with BackgroundServer(upstream_app) as upstream:
        config = ServerConfig(upstream=upstream.url + "/v1", upstream_timeout=10)
        with BackgroundServer(create_app(config)) as server:
            client = openai.OpenAI(
                base_url=server.url + "/v1", api_key="test", max_retries=0, timeout=20
            )

            def both(model: str) -> Any:
                with client.responses.stream(model=model, input="hi") as stream:
                    events = list(stream)
                    streamed = stream.get_final_response()
                plain = client.responses.create(model=model, input="hi")
                # each request has its own item ids; the stream helper adds `parsed: None`
                assert [i.model_dump(exclude={"id"}, exclude_none=True) for i in plain.output] == [
                    i.model_dump(exclude={"id"}, exclude_none=True) for i in streamed.output
                ]
                assert plain.usage == streamed.usage
                return events, streamed

            _, grok = both("grok")
            assert grok.usage is not None
            assert (grok.usage.input_tokens, grok.usage.output_tokens) == (12, 342)
            assert grok.usage.total_tokens == 354
            assert grok.usage.output_tokens_details.reasoning_tokens == 340

            events, sonar = both("sonar")
            added = [e for e in events if e.type == "response.output_text.annotation.added"]
            assert [e.annotation_index for e in added] == [0, 1, 2]
            text = sonar.output_text
            assert text == "Café SF has 808,988 people[2]."
            annotations = [a.model_dump() for a in sonar.output[0].content[0].annotations]
            assert annotations == [
                {
                    "type": "url_citation",
                    "url": URLS[1],
                    "title": URLS[1],
                    "start_index": 26,
                    "end_index": 29,
                },
                {
                    "type": "url_citation",
                    "url": URLS[0],
                    "title": URLS[0],
                    "start_index": 30,
                    "end_index": 30,
                },
                {
                    "type": "url_citation",
                    "url": URLS[2],
                    "title": URLS[2],
                    "start_index": 30,
                    "end_index": 30,
                },
            ]

            _, routed = both("openrouter")
            assert [item.type for item in routed.output] == ["reasoning", "message"]
            assert routed.output[0].encrypted_content == "gAAAAB-opaque"

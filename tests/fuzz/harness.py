"""What the fuzz run checks for each generated input (shared by ``run.py`` and the default tests).

:func:`check` runs one :class:`~generators.FuzzInput` and returns its outcome (a terminal status,
or the class of a typed error), or raises :class:`FuzzFailure` when an invariant breaks:

* ``sse_bytes`` inputs go through :class:`rxresponses.SSEDecoder` alone, fed whole and fed in the
  generated pieces. Both must give exactly the messages of a small reference decoder written from
  the WHATWG rules below (:func:`reference_messages`), or both must raise
  :class:`~rxresponses.SSELineTooLongError`. Nothing else may be raised.
* every other input goes through ``from_bytes(pieces).pipe(chat_sse_to_responses())``. The
  subscription must end exactly once; by completing after exactly one terminal event
  (``response.completed`` / ``.incomplete`` / ``.failed``), or with a typed
  :class:`~rxresponses.RxResponsesError`. Every event must serialize (``to_dict`` and the
  ``encode_event`` the server writes, as strict JSON), and the dumped events must satisfy
  ``tests/grammar.py::check_stream``.
* ``valid_cut`` inputs must also keep what arrived, and only that: the final reasoning, text and
  tool-call arguments equal the fragments of the chunks whose ``data:`` line was complete before the
  cut, and the status is the one the finish reason implies (``failed`` when it never arrived).
* every conversion input also runs through the operators composed one by one (the server's
  pipeline shape), which must produce the same events as the fused ``chat_sse_to_responses``;
* a sample (``run_async``) also runs through the async source (``from_bytes`` over an async
  iterator, on an asyncio loop) and must produce the same events.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import reactivex
from reactivex import Observable

from rxresponses import (
    RxResponsesError,
    SSEDecoder,
    SSELineTooLongError,
    SSEMessage,
    chat_sse_to_responses,
    encode_event,
    from_bytes,
)
from rxresponses import operators as rxo
from rxresponses.types._base import to_dict

from ..grammar import TERMINAL_TYPES, check_stream
from .generators import FuzzInput

__all__ = ["FuzzFailure", "check", "counter_ids", "reference_messages", "run_pipeline"]


class FuzzFailure(AssertionError):
    """An invariant broke for one input."""


def counter_ids() -> Callable[[str], str]:
    """A deterministic id factory (``msg_1``, ``fc_2``...): replays give the same events."""
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}_{next(counter)}"


# -- the SSE oracle -------------------------------------------------------------------------------

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


def reference_messages(body: bytes) -> list[SSEMessage]:
    """Decode a whole SSE body by the rules :mod:`rxresponses.sse` documents, the obvious way.

    WHATWG line and field rules; ``id`` and ``retry`` persist across messages, ``event`` does not;
    ``retry`` only when all ASCII digits; an ``id`` containing NUL is ignored; a message whose data
    is empty is not dispatched; at the end of the
    input an unterminated line is dropped and pending data lines are dispatched (rxresponses'
    documented choice for cut streams).
    """
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    lines = _LINE_BREAK.split(body)
    lines.pop()  # unterminated (possibly empty) last line
    lines.append(b"")  # end of input dispatches what is pending
    out: list[SSEMessage] = []
    data: list[str] = []
    event: str | None = None
    last_id: str | None = None
    retry: int | None = None
    for line in lines:
        if not line:
            joined = "\n".join(data)
            if joined:  # a lone empty ``data:`` line dispatches nothing
                out.append(SSEMessage(joined, event, last_id, retry))
            data = []
            event = None
            continue
        if line.startswith(b":"):
            continue
        name, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        text = value.decode("utf-8", "replace")
        if name == b"data":
            data.append(text)
        elif name == b"event":
            event = text
        elif name == b"id":
            if "\x00" not in text:
                last_id = text
        elif name == b"retry" and text and all("0" <= c <= "9" for c in text):
            retry = int(text)
    return out


def _decode(pieces: list[bytes], max_line_bytes: int) -> list[SSEMessage] | SSELineTooLongError:
    decoder = SSEDecoder(max_line_bytes=max_line_bytes)
    out: list[SSEMessage] = []
    try:
        for piece in pieces:
            out.extend(decoder.feed(piece))
        out.extend(decoder.flush())
    except SSELineTooLongError as exc:
        return exc
    except Exception as exc:
        raise FuzzFailure(f"SSEDecoder raised an untyped {type(exc).__name__}: {exc}") from exc
    return out


def _longest_line(body: bytes) -> int:
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    return max((len(x) for x in _LINE_BREAK.split(body)), default=0)


def check_decoder(inp: FuzzInput) -> str:
    whole = _decode([inp.body], inp.max_line_bytes)
    split = _decode(inp.pieces, inp.max_line_bytes)
    too_long = _longest_line(inp.body) > inp.max_line_bytes
    if too_long:
        if not isinstance(whole, SSELineTooLongError) or not isinstance(split, SSELineTooLongError):
            raise FuzzFailure(
                f"a line is longer than max_line_bytes={inp.max_line_bytes} but the decoder "
                f"gave whole={_short(whole)} split={_short(split)}"
            )
        return "typed_error:SSELineTooLongError"
    expected = reference_messages(inp.body)
    if whole != expected:
        raise FuzzFailure(f"whole feed: {_short(whole)} != reference {_short(expected)}")
    if split != expected:
        raise FuzzFailure(f"split feed: {_short(split)} != reference {_short(expected)}")
    return "decoded"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) < 600 else text[:600] + "..."


# -- the conversion -------------------------------------------------------------------------------


@dataclass
class PipelineResult:
    events: list[Any]
    error: BaseException | None
    completions: int
    errors: int


def composed(
    max_line_bytes: int,
    *,
    choice_index: int = 0,
    think_tags: bool = True,
    reasoning_as_summary: bool = False,
) -> Callable[[Observable[bytes]], Observable[Any]]:
    """The conversion as separate operators, one subscription each (the shape of the server's
    pipeline, and of any user pipeline with a stage of its own), where ``chat_sse_to_responses``
    runs the same stage machines fused in one subscription."""
    ids = counter_ids()
    return reactivex.compose(
        rxo.decode_sse(max_line_bytes=max_line_bytes),
        rxo.parse_chunks(),
        rxo.split_by_item(choice_index=choice_index, think_tags=think_tags, ids=ids),
        rxo.collect_reasoning(as_summary=reasoning_as_summary),
        rxo.accumulate_text(),
        rxo.join_tool_args(),
        rxo.assemble(ids=ids),
    )


def run_pipeline(inp: FuzzInput, *, fused: bool = True) -> PipelineResult:
    """Subscribe to the whole conversion over ``inp.pieces`` (sync source); collect what comes."""
    events: list[Any] = []
    errors: list[BaseException] = []
    completions = [0]

    def on_completed() -> None:
        completions[0] += 1

    pipeline = (
        chat_sse_to_responses(max_line_bytes=inp.max_line_bytes, ids=counter_ids(), **inp.options)
        if fused
        else composed(inp.max_line_bytes, **inp.options)
    )
    source = from_bytes(inp.pieces).pipe(pipeline)
    try:
        source.subscribe(events.append, errors.append, on_completed)
    except Exception as exc:
        raise FuzzFailure(f"subscribe() raised {type(exc).__name__}: {exc}") from exc
    return PipelineResult(events, errors[0] if errors else None, completions[0], len(errors))


async def _run_async(inp: FuzzInput) -> PipelineResult:
    events: list[Any] = []
    errors: list[BaseException] = []
    ended = asyncio.Event()
    completions = [0]

    async def body() -> AsyncIterator[bytes]:
        for piece in inp.pieces:
            yield piece

    def on_error(exc: BaseException) -> None:
        errors.append(exc)
        ended.set()

    def on_completed() -> None:
        completions[0] += 1
        ended.set()

    source = from_bytes(body()).pipe(
        chat_sse_to_responses(max_line_bytes=inp.max_line_bytes, ids=counter_ids(), **inp.options)
    )
    subscription = source.subscribe(events.append, on_error, on_completed)
    try:
        await asyncio.wait_for(ended.wait(), timeout=10)
    except TimeoutError:
        raise FuzzFailure("async pipeline did not end within 10 s") from None
    finally:
        subscription.dispose()
    await asyncio.sleep(0)  # let a late second termination show
    return PipelineResult(events, errors[0] if errors else None, completions[0], len(errors))


def _strict_json(text: str) -> Any:
    def reject(constant: str) -> Any:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def check_events(result: PipelineResult) -> tuple[str, list[dict[str, Any]]]:
    """The invariants every conversion keeps; returns (outcome, dumped events)."""
    if result.completions + result.errors != 1:
        raise FuzzFailure(
            f"the stream ended {result.completions} time(s) by completion and "
            f"{result.errors} by error (expected exactly once); last events: "
            f"{[getattr(e, 'type', e) for e in result.events[-3:]]}"
        )
    dumped: list[dict[str, Any]] = []
    for event in result.events:
        try:
            as_dict = to_dict(event)
            frame = encode_event(event)
            payload = frame.decode("utf-8").split("data: ", 1)[1]
            _strict_json(payload)
        except Exception as exc:
            raise FuzzFailure(
                f"{getattr(event, 'type', event)!r} does not serialize: {type(exc).__name__}: {exc}"
            ) from exc
        dumped.append(as_dict)
    if result.error is not None:
        if not isinstance(result.error, RxResponsesError):
            raise FuzzFailure(
                f"untyped error {type(result.error).__name__}: {result.error}"
            ) from result.error
        return f"typed_error:{type(result.error).__name__}", dumped
    try:
        check_stream(dumped)
    except AssertionError as exc:
        raise FuzzFailure(f"grammar: {exc}") from None
    terminal = dumped[-1]["type"]
    if terminal not in TERMINAL_TYPES:  # pragma: no cover - check_stream ensures it
        raise FuzzFailure(f"last event {terminal!r}")
    return terminal.removeprefix("response."), dumped


_SIGNATURE_FIELDS = ("output_index", "content_index", "delta", "text", "arguments")


def _signature(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What must match between two runs of one input (not ids, not the clock-based fields)."""
    return [(e["type"], *(e.get(f) for f in _SIGNATURE_FIELDS)) for e in events]


def _object_signature(event: Any) -> tuple[Any, ...]:
    """:func:`_signature` of one event object, without dumping it."""
    return (event.type, *(getattr(event, f, None) for f in _SIGNATURE_FIELDS))


# -- valid streams: what arrived is what is kept --------------------------------------------------


def _expected_from_prefix(inp: FuzzInput) -> dict[str, Any]:
    """Fragments of the chunks whose ``data:`` line was complete in the (cut) body."""
    frames: list[tuple[int, dict[str, Any]]] = inp.notes["frames"]
    arrived = [chunk for end, chunk in frames if end <= len(inp.body)]
    reasoning: list[str] = []
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    for chunk in arrived:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            if delta.get("reasoning_content"):
                reasoning.append(delta["reasoning_content"])
            if delta.get("content"):
                text.append(delta["content"])
            for tc in delta.get("tool_calls") or []:
                call = calls.setdefault(tc["index"], {"name": None, "args": [], "id": None})
                fn = tc.get("function") or {}
                if fn.get("name"):
                    call["name"] = fn["name"]
                    call["id"] = tc.get("id")
                call["args"].append(fn.get("arguments") or "")
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
    return {
        "reasoning": "".join(reasoning),
        "text": "".join(text),
        "calls": [
            (calls[i]["id"], calls[i]["name"], "".join(calls[i]["args"])) for i in sorted(calls)
        ],
        "finish": finish,
    }


def _final_parts(response: dict[str, Any]) -> dict[str, Any]:
    reasoning: list[str] = []
    text: list[str] = []
    calls: list[tuple[Any, Any, Any]] = []
    for item in response["output"]:
        if item["type"] == "reasoning":  # as content, or as summary (reasoning_as_summary)
            reasoning.extend(c.get("text", "") for c in item.get("content") or [])
            reasoning.extend(c.get("text", "") for c in item.get("summary") or [])
        elif item["type"] == "message":
            text.extend(c.get("text", "") for c in item["content"] if c["type"] == "output_text")
        elif item["type"] == "function_call":
            calls.append((item["call_id"], item["name"], item["arguments"]))
    return {"reasoning": "".join(reasoning), "text": "".join(text), "calls": calls}


_STATUS_OF_FINISH = {
    None: "failed",
    "stop": "completed",
    "tool_calls": "completed",
    "length": "incomplete",
    "content_filter": "incomplete",
}


def check_valid_cut(inp: FuzzInput, outcome: str, dumped: list[dict[str, Any]]) -> None:
    expected = _expected_from_prefix(inp)
    want_status = _STATUS_OF_FINISH[expected["finish"]]
    if outcome != want_status:
        raise FuzzFailure(
            f"status {outcome!r}, expected {want_status!r} (finish_reason "
            f"{expected['finish']!r} {'arrived' if expected['finish'] else 'never arrived'})"
        )
    got = _final_parts(dumped[-1]["response"])
    for key in ("reasoning", "text", "calls"):
        if got[key] != expected[key]:
            raise FuzzFailure(
                f"final {key} {got[key]!r} != what arrived before the cut {expected[key]!r}"
            )
    if not inp.cut and inp.turn is not None:
        turn = inp.turn
        whole = {"reasoning": turn.reasoning, "text": turn.text}
        for key, value in whole.items():
            if got[key] != value:
                raise FuzzFailure(f"uncut stream: final {key} {got[key]!r} != {value!r}")


# -- entry point ----------------------------------------------------------------------------------

_LOOP: asyncio.AbstractEventLoop | None = None


def check(inp: FuzzInput, *, run_async: bool = False, run_composed: bool = True) -> str:
    """Check one input; return its outcome or raise :class:`FuzzFailure`."""
    if inp.category == "sse_bytes":
        return check_decoder(inp)
    result = run_pipeline(inp)
    outcome, dumped = check_events(result)
    if inp.category == "valid_cut":
        check_valid_cut(inp, outcome, dumped)
    if run_composed:
        other = run_pipeline(inp, fused=False)
        if other.completions + other.errors != 1 or other.error is not None:
            raise FuzzFailure(
                f"composed operators: ended {other.completions} time(s) by completion, "
                f"{other.errors} by error ({other.error!r})"
            )
        mine = [_object_signature(e) for e in other.events]
        if mine != _signature(dumped):
            raise FuzzFailure(
                f"composed operators: {len(mine)} events {[e[0] for e in mine][-4:]}, fused "
                f"chat_sse_to_responses: {len(dumped)} events {[e['type'] for e in dumped][-4:]}"
            )
    if run_async:
        global _LOOP
        if _LOOP is None:
            _LOOP = asyncio.new_event_loop()
        async_result = _LOOP.run_until_complete(_run_async(inp))
        async_outcome, async_dumped = check_events(async_result)
        if async_outcome != outcome or _signature(async_dumped) != _signature(dumped):
            raise FuzzFailure(
                f"async source: {async_outcome} with {len(async_dumped)} events, sync: "
                f"{outcome} with {len(dumped)} events"
            )
    return outcome


def close() -> None:
    """Close the event loop :func:`check` made for async runs (if any)."""
    global _LOOP
    if _LOOP is not None:
        _LOOP.close()
        _LOOP = None

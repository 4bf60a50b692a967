"""A checker for the grammar of a Responses event stream (PROTOCOL.md §1.1, §4.1).

``check_stream(events)`` takes the events of one stream as dicts (as ``to_dict`` dumps them, or as
``json.loads`` reads them off the wire) and raises :class:`AssertionError` naming the first event
that breaks a rule. Rules:

* ``response.created`` first (``sequence_number`` 0), then ``response.in_progress`` (a
  ``response.queued`` may sit between them); ``sequence_number`` runs 0..N-1 by 1;
* per item: ``output_item.added`` before any of its events, then its body, then
  ``output_item.done``; items may overlap, but every event of an item lies between its added and
  done; ``output_index`` is 0,1,2... in order of ``output_item.added`` and never shared by two ids;
  ``item_id`` on content events is the item's id; an item keeps one id and type from added to done
  to the terminal response;
* parts: ``content_part.added`` (``content_index`` 0,1,... per item), deltas, the matching
  ``*.done``, ``content_part.done`` (output_text, refusal, reasoning_text); reasoning summaries
  likewise (``reasoning_summary_part.*``); ``function_call_arguments.delta* .done`` (required for
  ``function_call`` items); the concatenated deltas equal the ``.done`` value, the finished part and
  the finished item;
* exactly one terminal event (``response.completed`` | ``response.incomplete`` |
  ``response.failed``), last, ``failed`` optionally preceded by one ``error``; its
  ``response.status`` matches its type, its ``output`` equals the ``output_item.done`` items in
  ``output_index`` order (``encrypted_content`` aside: OpenAI re-encrypts reasoning between
  ``output_item.done`` and the terminal event, see every recording with reasoning); every lifecycle
  event carries the same response ``id`` and ``created_at``.

Leniency for third-party recordings (the defaults are strict, for what rxresponses emits):

* ``strict_sequence=False``: events may lack ``sequence_number`` (pre-May-2025 OpenAI streams);
  the numbers present must still increase by 1.
* ``strict_output=False``: the terminal ``output`` is not compared with the ``output_item.done``
  items (OpenRouter renames item ids in ``response.completed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["TERMINAL_TYPES", "check_stream"]

TERMINAL_TYPES = frozenset({"response.completed", "response.incomplete", "response.failed"})
_LIFECYCLE = (
    frozenset({"response.created", "response.queued", "response.in_progress"}) | TERMINAL_TYPES
)
_TERMINAL_STATUS = {
    "response.completed": "completed",
    "response.incomplete": "incomplete",
    "response.failed": "failed",
}

# Part-level text events: event type prefix -> (part type, field of the .done event and part).
_PART_TEXT = {
    "response.output_text": ("output_text", "text"),
    "response.refusal": ("refusal", "refusal"),
    "response.reasoning_text": ("reasoning_text", "text"),
}
# Item-level delta/done families: prefix -> field of the .done event and of the finished item.
_ITEM_TEXT = {
    "response.function_call_arguments": "arguments",
    "response.custom_tool_call_input": "input",
    "response.mcp_call_arguments": "arguments",
    "response.code_interpreter_call_code": "code",
}
# Item types whose body must contain the item-level ``.done`` event.
_REQUIRED_ITEM_DONE = {"function_call": "response.function_call_arguments"}


@dataclass
class _Part:
    type: str
    text: list[str] = field(default_factory=list)
    done_value: str | None = None
    closed: bool = False


@dataclass
class _Item:
    index: int
    id: str
    type: str
    closed: bool = False
    parts: list[_Part] = field(default_factory=list)
    summaries: list[_Part] = field(default_factory=list)
    # prefix -> accumulated deltas / final value
    streams: dict[str, _Part] = field(default_factory=dict)
    done_item: dict[str, Any] | None = None


def _fail(pos: int, event: dict[str, Any], message: str) -> AssertionError:
    return AssertionError(
        f"event #{pos} ({event.get('type')!r}, seq {event.get('sequence_number')!r}): {message}"
    )


def check_stream(
    events: list[dict[str, Any]],
    *,
    strict_sequence: bool = True,
    strict_output: bool = True,
) -> None:
    """Raise :class:`AssertionError` unless ``events`` follow the Responses stream grammar.

    See the module docstring for the rules and the two leniency flags.
    """
    if not events:
        raise AssertionError("empty stream: expected response.created ... terminal event")
    for pos, event in enumerate(events):
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise AssertionError(f"event #{pos} is not an event dict with a 'type': {event!r}")

    _check_sequence(events, strict_sequence)
    _check_lifecycle(events)

    items: dict[int, _Item] = {}
    ids: dict[str, int] = {}
    next_index = 0
    for pos, event in enumerate(events[:-1]):
        etype = event["type"]
        if etype in _LIFECYCLE or etype == "error":
            continue
        if etype == "response.output_item.added":
            index = event.get("output_index")
            item = event.get("item")
            if index != next_index:
                raise _fail(
                    pos,
                    event,
                    f"output_index {index!r}, expected {next_index} (order of output_item.added)",
                )
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
                raise _fail(pos, event, f"item without an id: {item!r}")
            if item["id"] in ids:
                raise _fail(
                    pos,
                    event,
                    f"item id {item['id']!r} already used by output_index {ids[item['id']]}",
                )
            items[index] = _Item(index=index, id=item["id"], type=str(item.get("type")))
            ids[item["id"]] = index
            next_index += 1
            continue
        if "output_index" not in event:
            # keepalive and other events outside any item
            if "item_id" in event:
                raise _fail(pos, event, "event has item_id but no output_index")
            continue
        index = event["output_index"]
        current = items.get(index)
        if current is None:
            raise _fail(pos, event, f"output_index {index!r} before its output_item.added")
        if current.closed:
            raise _fail(pos, event, f"output_index {index!r} after its output_item.done")
        if "item_id" in event and event["item_id"] != current.id:
            raise _fail(
                pos,
                event,
                f"item_id {event['item_id']!r} != id {current.id!r} of output_index {index}",
            )
        if etype == "response.output_item.done":
            _close_item(pos, event, current)
        else:
            _item_event(pos, event, current)

    open_items = [i.index for i in items.values() if not i.closed]
    terminal = events[-1]
    if open_items:
        raise _fail(
            len(events) - 1, terminal, f"items {open_items} still open at the terminal event"
        )
    if strict_output:
        output = terminal["response"].get("output")
        expected = [items[i].done_item for i in sorted(items)]
        if _without_encrypted(output) != _without_encrypted(expected):
            raise _fail(
                len(events) - 1,
                terminal,
                "response.output differs from the output_item.done items:\n"
                f"  output:   {output!r}\n  expected: {expected!r}",
            )


def _without_encrypted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_encrypted(v) for k, v in value.items() if k != "encrypted_content"}
    if isinstance(value, list):
        return [_without_encrypted(v) for v in value]
    return value


def _check_sequence(events: list[dict[str, Any]], strict: bool) -> None:
    previous: int | None = None
    for pos, event in enumerate(events):
        seq = event.get("sequence_number")
        if strict:
            if type(seq) is not int or seq != pos:
                raise _fail(pos, event, f"sequence_number {seq!r}, expected {pos}")
        elif seq is not None:
            if type(seq) is not int:
                raise _fail(pos, event, f"sequence_number {seq!r} is not an int")
            if previous is not None and seq != previous + 1:
                raise _fail(pos, event, f"sequence_number {seq} after {previous}")
            previous = seq


def _check_lifecycle(events: list[dict[str, Any]]) -> None:
    first = events[0]
    if first["type"] != "response.created":
        raise _fail(0, first, "the first event must be response.created")
    header = 2
    if len(events) > 1 and events[1]["type"] == "response.queued":
        header = 3
    if len(events) < header or events[header - 1]["type"] != "response.in_progress":
        pos = min(header - 1, len(events) - 1)
        raise _fail(pos, events[pos], "expected response.in_progress after response.created")

    last = len(events) - 1
    terminal = events[last]
    if terminal["type"] not in TERMINAL_TYPES:
        raise _fail(
            last, terminal, "the last event must be response.completed, .incomplete or .failed"
        )
    for pos, event in enumerate(events[:-1]):
        if event["type"] in TERMINAL_TYPES:
            raise _fail(pos, event, "terminal event before the end of the stream")
        if event["type"] == "error" and not (
            pos == last - 1 and terminal["type"] == "response.failed"
        ):
            raise _fail(pos, event, "an error event may only come right before response.failed")
        if (
            event["type"] in ("response.created", "response.queued", "response.in_progress")
            and pos >= header
        ):
            raise _fail(pos, event, "lifecycle event after the stream started")

    response0 = first.get("response")
    if not isinstance(response0, dict):
        raise _fail(0, first, "response.created without a response object")
    if response0.get("output") not in ([], None):
        raise _fail(0, first, f"response.created with output {response0.get('output')!r}")
    for pos, event in enumerate(events):
        if event["type"] not in _LIFECYCLE:
            continue
        response = event.get("response")
        if not isinstance(response, dict):
            raise _fail(pos, event, "lifecycle event without a response object")
        for key in ("id", "created_at"):
            if response.get(key) != response0.get(key):
                raise _fail(
                    pos,
                    event,
                    f"response.{key} {response.get(key)!r} != {response0.get(key)!r}"
                    " in response.created",
                )
    status = terminal["response"].get("status")
    if status != _TERMINAL_STATUS[terminal["type"]]:
        raise _fail(last, terminal, f"response.status {status!r} does not match the event type")


def _open_part(
    pos: int, event: dict[str, Any], parts: list[_Part], index_key: str, part_type: str | None
) -> None:
    index = event.get(index_key)
    if index != len(parts):
        raise _fail(pos, event, f"{index_key} {index!r}, expected {len(parts)}")
    if parts and not parts[-1].closed:
        raise _fail(pos, event, f"{index_key} {index} opens before {index_key} {index - 1} is done")
    part = event.get("part")
    ptype = part.get("type") if isinstance(part, dict) else None
    if part_type is not None and ptype != part_type:
        raise _fail(pos, event, f"part type {ptype!r}, expected {part_type!r}")
    parts.append(_Part(type=str(ptype)))


def _get_part(pos: int, event: dict[str, Any], parts: list[_Part], index_key: str) -> _Part:
    index = event.get(index_key)
    if not isinstance(index, int) or not 0 <= index < len(parts):
        raise _fail(pos, event, f"{index_key} {index!r} before its part was added")
    part = parts[index]
    if part.closed:
        raise _fail(pos, event, f"{index_key} {index} after its part was done")
    return part


def _delta_or_done(
    pos: int, event: dict[str, Any], stream: _Part, suffix: str, value_key: str
) -> None:
    if stream.done_value is not None:
        raise _fail(pos, event, f"{suffix} after the .done event")
    if suffix == "delta":
        delta = event.get("delta")
        if not isinstance(delta, str):
            raise _fail(pos, event, f"delta {delta!r} is not a string")
        stream.text.append(delta)
        return
    value = event.get(value_key)
    joined = "".join(stream.text)
    if value != joined:
        raise _fail(pos, event, f"{value_key} {value!r} != concatenated deltas {joined!r}")
    stream.done_value = value


def _close_part(pos: int, event: dict[str, Any], part: _Part, value_key: str | None) -> None:
    payload = event.get("part")
    if not isinstance(payload, dict) or payload.get("type") != part.type:
        raise _fail(pos, event, f"finished part {payload!r} is not of type {part.type!r}")
    if value_key is not None:
        if part.done_value is None:
            raise _fail(pos, event, "part done before its .done text event")
        if payload.get(value_key) != part.done_value:
            raise _fail(
                pos, event, f"part {value_key} {payload.get(value_key)!r} != {part.done_value!r}"
            )
    part.closed = True


def _item_event(pos: int, event: dict[str, Any], item: _Item) -> None:
    etype = event["type"]
    if etype == "response.content_part.added":
        _open_part(pos, event, item.parts, "content_index", None)
        return
    if etype == "response.content_part.done":
        part = _get_part(pos, event, item.parts, "content_index")
        value_key = next((v for (t, v) in _PART_TEXT.values() if t == part.type), None)
        _close_part(pos, event, part, value_key)
        return
    if etype == "response.reasoning_summary_part.added":
        _open_part(pos, event, item.summaries, "summary_index", "summary_text")
        return
    if etype == "response.reasoning_summary_part.done":
        _close_part(pos, event, _get_part(pos, event, item.summaries, "summary_index"), "text")
        return
    prefix, _, suffix = etype.rpartition(".")
    if suffix not in ("delta", "done"):
        return  # annotations, hosted-tool status events...: only their placement is checked
    if prefix in _PART_TEXT:
        part_type, value_key = _PART_TEXT[prefix]
        part = _get_part(pos, event, item.parts, "content_index")
        if part.type != part_type:
            raise _fail(pos, event, f"{etype} on a part of type {part.type!r}")
        _delta_or_done(pos, event, part, suffix, value_key)
    elif prefix == "response.reasoning_summary_text":
        _delta_or_done(
            pos, event, _get_part(pos, event, item.summaries, "summary_index"), suffix, "text"
        )
    elif prefix in _ITEM_TEXT:
        stream = item.streams.setdefault(prefix, _Part(type=prefix))
        _delta_or_done(pos, event, stream, suffix, _ITEM_TEXT[prefix])


def _close_item(pos: int, event: dict[str, Any], item: _Item) -> None:
    done = event.get("item")
    if not isinstance(done, dict):
        raise _fail(pos, event, "output_item.done without an item")
    if done.get("id") != item.id or done.get("type") != item.type:
        raise _fail(
            pos,
            event,
            f"item id/type {done.get('id')!r}/{done.get('type')!r}"
            f" != {item.id!r}/{item.type!r} at output_item.added",
        )
    for kind, parts in (("content part", item.parts), ("summary part", item.summaries)):
        open_parts = [i for i, p in enumerate(parts) if not p.closed]
        if open_parts:
            raise _fail(pos, event, f"{kind}s {open_parts} still open")
    for prefix, stream in item.streams.items():
        if stream.done_value is None:
            raise _fail(pos, event, f"{prefix}.delta without {prefix}.done")
        key = _ITEM_TEXT[prefix]
        if key in done and done[key] != stream.done_value:
            raise _fail(
                pos, event, f"item {key} {done[key]!r} != {stream.done_value!r} of {prefix}.done"
            )
    required = _REQUIRED_ITEM_DONE.get(item.type)
    if required is not None and required not in item.streams:
        raise _fail(pos, event, f"{item.type} item closed without {required}.done")
    # The finished item carries what its parts streamed.
    if item.parts:
        content = done.get("content")
        if not isinstance(content, list) or len(content) != len(item.parts):
            raise _fail(
                pos,
                event,
                f"item content {content!r} does not hold the {len(item.parts)} streamed parts",
            )
        for i, (part, final) in enumerate(zip(item.parts, content, strict=True)):
            value_key = next((v for (t, v) in _PART_TEXT.values() if t == part.type), None)
            if not isinstance(final, dict) or final.get("type") != part.type:
                raise _fail(pos, event, f"content[{i}] {final!r} is not of type {part.type!r}")
            if value_key is not None and final.get(value_key) != part.done_value:
                raise _fail(
                    pos,
                    event,
                    f"content[{i}].{value_key} {final.get(value_key)!r} != {part.done_value!r}",
                )
    if item.summaries:
        summary = done.get("summary")
        if not isinstance(summary, list) or [s.get("text") for s in summary] != [
            p.done_value for p in item.summaries
        ]:
            raise _fail(pos, event, f"item summary {summary!r} != streamed summaries")
    item.closed = True
    item.done_item = done

"""The rxresponses operators: thin, typed factories; the work lives in the private modules.

A Chat Completions stream becomes Responses events through this chain (each arrow is one of these
operators, and you may insert your own at any arrow)::

    bytes -decode_sse-> SSEMessage -parse_chunks-> ChatCompletionChunk -split_by_item-> Signal
      -collect_reasoning-> -accumulate_text-> -join_tool_args-> events + StreamFinished
      -assemble-> typed Responses events -final_response-> Response

:func:`rxresponses.pipelines.chat_to_responses` composes the middle of it. Each stateful operator
creates its state per subscription: subscribing twice runs two independent conversions.

In the marble diagrams, ``S`` is :class:`~rxresponses.types.signals.StreamStarted`, ``F``
:class:`~rxresponses.types.signals.StreamFinished`, ``+m``/``-m`` an item started/finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from reactivex import Observable

from ..sse import DEFAULT_MAX_LINE_BYTES, SSEMessage, encode_sse
from ..types.aliases import IdFactory, ReasoningEventNames, SignalOrEvent
from ..types.chat import ChatCompletionChunk
from ..types.events import ResponseStreamEvent
from ..types.response import Response
from ..types.signals import Signal
from ._accumulate_text import accumulate_text as _accumulate_text_impl
from ._assemble import assemble as _assemble_impl
from ._collect_reasoning import collect_reasoning as _collect_reasoning_impl
from ._core import Stage, random_ids, stage_operator
from ._final import final_response as _final_response_impl
from ._join_tool_args import join_tool_args as _join_tool_args_impl
from ._parse import decode_sse as _decode_sse_impl
from ._parse import parse_chunks as _parse_chunks_impl
from ._parse import parse_events as _parse_events_impl
from ._redact_text import redact_text as _redact_text_impl
from ._split_by_item import split_by_item as _split_by_item_impl

__all__ = [
    "Stage",
    "accumulate_text",
    "assemble",
    "collect_reasoning",
    "decode_sse",
    "encode_sse",
    "final_response",
    "join_tool_args",
    "parse_chunks",
    "parse_events",
    "redact_text",
    "split_by_item",
    "stage_operator",
]


def decode_sse(
    *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Callable[[Observable[bytes]], Observable[SSEMessage]]:
    """Decode a stream of bytes into :class:`~rxresponses.sse.SSEMessage` values.

    Completes at ``data: [DONE]``, which is its last value (``message.is_done``; the upstream is
    disposed), or when the bytes end; what was fully framed before the bytes fail is still
    emitted. So a stream that ends with the ``[DONE]`` message ended as the upstream meant it,
    and one without was cut (or comes from a server that sends none): :func:`split_by_item`
    says which in its failure message. A line longer than ``max_line_bytes`` fails the stream
    with :class:`~rxresponses.errors.SSELineTooLongError`.

    .. code-block:: text

        b"data: a\\n\\nda" ---- b"ta: b\\n\\n" ---- b"data: [DONE]\\n\\n" ---|
        [                       decode_sse()                             ]
        SSEMessage("a") ------- SSEMessage("b") ------ SSEMessage("[DONE]") |
    """

    return _decode_sse_impl(max_line_bytes=max_line_bytes)


def parse_chunks() -> Callable[
    [Observable[SSEMessage | str | bytes]], Observable[ChatCompletionChunk | SSEMessage]
]:
    """Parse SSE messages (or raw ``data`` strings) into Chat chunks.

    The ``[DONE]`` message passes on as it is (an :class:`~rxresponses.sse.SSEMessage` with
    ``is_done``; a ``"[DONE]"`` string becomes one), so :func:`split_by_item` knows the upstream
    ended its stream. Undecodable data ends the stream with
    :class:`~rxresponses.errors.ChunkDecodeError`, which :func:`split_by_item` turns into
    ``error`` + ``response.failed``.

    .. code-block:: text

        SSEMessage('{"choices":[...]}') --- SSEMessage('{...}') --- SSEMessage("[DONE]") --|
        [                             parse_chunks()                                      ]
        ChatCompletionChunk --------------- ChatCompletionChunk --- SSEMessage("[DONE]") --|
    """

    return _parse_chunks_impl()


def parse_events() -> Callable[
    [Observable[SSEMessage | str | bytes]], Observable[ResponseStreamEvent]
]:
    """Parse SSE messages of a Responses stream into typed events.

    Unknown ``type`` values become :class:`~rxresponses.types.events.UnknownEvent` (never an
    error); ``[DONE]`` is skipped; data that is not JSON ends the stream with
    :class:`~rxresponses.errors.ChunkDecodeError`.

    .. code-block:: text

        SSEMessage(created) --- SSEMessage(output_text.delta) --- SSEMessage(completed) --|
        [                          parse_events()                                        ]
        ResponseCreatedEvent -- ResponseTextDeltaEvent ---------- ResponseCompletedEvent -|
    """

    return _parse_events_impl()


def split_by_item(
    *, choice_index: int = 0, think_tags: bool = True, ids: IdFactory = random_ids
) -> Callable[[Observable[ChatCompletionChunk | SSEMessage]], Observable[Signal]]:
    """Turn Chat chunks into item signals: where each output item starts, grows and ends.

    This is where every provider quirk is absorbed (tool calls without ``index``, ids re-sent on
    every chunk, cumulative arguments, reasoning in three different fields, ``<think>`` tags,
    usage in odd places, errors inside chunks). It also turns an upstream error into a failed
    :class:`~rxresponses.types.signals.StreamFinished`, so the stream always ends well-formed.
    It ends at the ``[DONE]`` message (:func:`parse_chunks` passes it on) or when its input
    completes; with no ``finish_reason`` by then the stream failed, and the message says which
    ("sent [DONE] without a finish_reason for choice 0", or "ended before a finish_reason": cut).

    Usage is mapped as the Responses API counts it: ``output_tokens`` includes reasoning tokens
    (xAI reports them beside ``completion_tokens``; where the upstream's ``total_tokens`` shows
    that, they are added, so ``input_tokens + output_tokens == total_tokens``). Perplexity's
    ``citations`` / ``search_results`` and OpenAI search models' ``delta.annotations`` ride on
    the message's :class:`~rxresponses.types.signals.ItemFinished` (``sources``,
    ``citations``), OpenRouter's ``reasoning.encrypted`` on the reasoning item's
    (``encrypted_content``). Only a ``<think>`` that opens the content is reasoning: a later
    one stays in the text.

    .. code-block:: text

        chunk(reasoning "a") - chunk(content "b") - chunk(finish=stop) - chunk(usage) --|
        [                            split_by_item()                                   ]
        S,+r,R("a") ---------- -r,+m,T("b") ------- -m ------------------------------ F(completed) |

    Args:
        choice_index: The choice to convert when ``n > 1``; the others are dropped (counted).
        think_tags: Split a leading ``<think>...</think>`` in the content into reasoning.
        ids: Item and call id factory, e.g. a counter for reproducible output.
    """

    return _split_by_item_impl(choice_index=choice_index, think_tags=think_tags, ids=ids)


def collect_reasoning(
    *, as_summary: bool = False, event_names: ReasoningEventNames = "openai"
) -> Callable[[Observable[SignalOrEvent]], Observable[SignalOrEvent]]:
    """Turn ``reasoning`` signals into a reasoning item's events; pass everything else through.

    .. code-block:: text

        +r --------- R("thi") ----------------------- R("nk") -- -r ------------------------|
        [                          collect_reasoning()                                    ]
        item.added - part.added,reasoning_text.delta - ...delta - text.done,part.done,item.done |

    The item's ``encrypted_content`` is the one its
    :class:`~rxresponses.types.signals.ItemFinished` carries (OpenRouter's
    ``reasoning.encrypted``), if any.

    Args:
        as_summary: Emit the text as reasoning *summary* part 0 instead of ``reasoning_text``
            content (for clients, like the Codex CLI, that display summaries).
        event_names: ``"openai"`` (default): the raw text events are
            ``response.reasoning_text.delta`` / ``.done``, as OpenAI sends them;
            ``"open-responses"``: ``response.reasoning.delta`` / ``.done``, the names of the Open
            Responses specification's streaming schema, for clients that follow it. Either is
            parsed and folded (:func:`parse_events`, :func:`final_response`).
    """

    return _collect_reasoning_impl(as_summary=as_summary, event_names=event_names)


def accumulate_text() -> Callable[[Observable[SignalOrEvent]], Observable[SignalOrEvent]]:
    """Turn ``message`` signals into a message item's events; pass everything else through.

    Text becomes an ``output_text`` part, a refusal a ``refusal`` part with its own
    ``content_index``. The ``.done`` events carry the joined text of the deltas that reached this
    stage, so a stage you insert before it (a redactor) shows in the final ``Response``.

    Citations the message's :class:`~rxresponses.types.signals.ItemFinished` carries become
    ``url_citation`` annotations of its last ``output_text`` part (when that part is the one
    open at the end): one ``output_text.annotation.added`` each, after the deltas and before
    ``output_text.done``, and the part's ``annotations``. An ``[n]`` marker in the text cites
    the ``n``-th source over the marker's span; sources no marker cites are listed after,
    zero-width at the end of the text. Offsets count characters (code points), as OpenAI's do.

    .. code-block:: text

        +m --------- T("He") --------------------------- T("y") ---- -m ----------------------|
        [                            accumulate_text()                                       ]
        item.added - part.added,output_text.delta("He") - delta("y") - text.done,part.done,
                                                                       item.done ------------|
    """

    return _accumulate_text_impl()


def redact_text(
    secrets: Iterable[str], replacement: str = "[redacted]"
) -> Callable[[Observable[SignalOrEvent]], Observable[SignalOrEvent]]:
    """Mask secrets in text, refusal and reasoning, wherever the deltas split them.

    Put it between :func:`split_by_item` and the item operators: every occurrence of a string
    of ``secrets`` becomes ``replacement`` in the deltas and so in the ``.done`` events and the
    final ``Response``. Per part, only the longest end of the text so far that may start a
    secret waits for the next delta (or the item's end); the rest goes on at once. Joined, the
    output text equals the joined input with every secret replaced. Tool call arguments (JSON)
    are left alone. A delta whose text changed or waited loses its ``logprobs`` (they name the
    tokens).

    .. code-block:: text

        T("key sk-li") ---- T("ve-1 ok") ---------------- -m --|
        [            redact_text(["sk-live-1"])                 ]
        T("key ") --------- T("[redacted] ok") ----------- -m --|

    Args:
        secrets: The strings to mask (at least one; none empty).
        replacement: What each occurrence becomes (default ``"[redacted]"``).

    Raises:
        ValueError: No secret, or an empty one (when the operator is built).
    """

    return _redact_text_impl(secrets, replacement)


def join_tool_args() -> Callable[[Observable[SignalOrEvent]], Observable[SignalOrEvent]]:
    """Turn ``function_call`` signals into a function call's events; pass the rest through.

    Arguments stream as ``function_call_arguments.delta`` as fragments arrive; the ``.done`` event
    and the finished item carry the whole string.

    .. code-block:: text

        +f(name=get_weather) - A('{"ci') -------- A('ty":"Paris"}') - -f ------------------------|
        [                              join_tool_args()                                       ]
        item.added ----------- arguments.delta --- arguments.delta --- arguments.done,item.done -|
    """

    return _join_tool_args_impl()


def assemble(
    *,
    response_id: str | None = None,
    model: str | None = None,
    created_at: int | None = None,
    echo: Mapping[str, Any] | None = None,
    ids: IdFactory = random_ids,
    start_immediately: bool = False,
    reasoning_events: ReasoningEventNames = "openai",
) -> Callable[[Observable[SignalOrEvent]], Observable[ResponseStreamEvent]]:
    """Add the response lifecycle, sequence numbers and the terminal event.

    Emits ``response.created`` and ``response.in_progress`` first, numbers every event
    (``sequence_number`` 0..N-1, ``output_index`` dense in order of appearance), and ends with
    exactly one of ``response.completed``, ``response.incomplete`` or ``error`` +
    ``response.failed``, whose ``response`` is the fold of everything streamed (its items are
    the objects the ``output_item.done`` events carried: treat events as read-only values, or
    copy one before changing it). An upstream error
    becomes ``error`` + ``response.failed``, never an exception; a signal no stage converted is a
    :class:`~rxresponses.errors.PipelineError`.

    .. code-block:: text

        S --- item.added - text.delta - item.done - F(completed) --|
        [                      assemble()                         ]
        created(0),in_progress(1) - added(2) - delta(3) - done(4) - completed(5) --|

    Args:
        response_id: The ``resp_...`` id (default: generated).
        model: The model to report (default: the upstream's).
        created_at: Unix creation time (default: the upstream's, else now).
        echo: Request fields to echo on every ``Response`` (``instructions``, ``tools``...).
        ids: Id factory.
        start_immediately: Emit ``response.created`` and ``response.in_progress`` on subscribe,
            before the first upstream event (a server that must answer at once). Pass ``model``
            and ``created_at`` with it: the upstream's values arrive too late to be reported.
        reasoning_events: The name of the reasoning text ``.done`` event sent when a stream
            ends with a reasoning part still open (see :func:`collect_reasoning`'s
            ``event_names``; pass the same value to both).
    """

    return _assemble_impl(
        response_id=response_id,
        model=model,
        created_at=created_at,
        echo=echo,
        ids=ids,
        start_immediately=start_immediately,
        reasoning_events=reasoning_events,
    )


def final_response() -> Callable[[Observable[ResponseStreamEvent]], Observable[Response]]:
    """Fold typed Responses events into the final :class:`~rxresponses.types.response.Response`.

    Works on both sides (converted Chat streams and parsed Responses streams). Emits one
    ``Response`` when the source ends: ``incomplete`` and ``failed`` responses come back with their
    status (never raised); a stream cut before any terminal event gives what arrived, with the last
    status it announced (normally ``in_progress``); a source that errors gives what arrived with
    status ``failed`` and the error's message. The ``Response`` is a new object graph, shared with
    no event: change it freely.

    .. code-block:: text

        created - item.added - text.delta - item.done - completed --|
        [                    final_response()                      ]
        ---------------------------------------------------- Response --|
    """

    return _final_response_impl()

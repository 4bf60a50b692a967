"""Item events + stream signals -> a complete Responses event stream.

:class:`Assembler` is the last stage of a Chat -> Responses pipeline. It

* opens the stream: ``response.created`` (sequence 0) and ``response.in_progress`` on
  :class:`StreamStarted` (or on the first event, if no stage sent one);
* numbers every event: ``sequence_number`` 0, 1, 2... in emission order, and ``output_index`` 0, 1,
  2... in order of first appearance (so a stage that drops an item leaves no gap);
* folds every event it forwards with :class:`ResponseAccumulator`, so the terminal event's
  ``response`` is exactly what was streamed;
* ends the stream with exactly one terminal event on :class:`StreamFinished`: ``completed``,
  ``incomplete``, or ``error`` + ``failed``. An upstream error, or the upstream ending without a
  :class:`StreamFinished`, also ends in ``error`` + ``failed``, after closing any item left open
  (status ``incomplete``, text kept).

Events are values: an event is never changed after it was handed to a subscriber. The
assembler numbers a shallow copy of each event it receives (``sequence_number`` and a dense
``output_index`` set on the copy), so two ``assemble()`` branches of one ``publish()`` number
their own copies. Only where the events come straight from the stage that built them, never
seen by anyone else (the driver knows, and calls :meth:`Assembler.handle_owned`), are they
numbered in place before they are emitted.

Followed by ``final_response()`` in the same chain, the two fuse (:class:`AssembledResponse`):
the terminal event's ``response`` is what the fold of every event would give, so it is not
folded a second time.

An item signal that reaches this stage means no operator converted it: that is a wiring mistake,
reported as :class:`~rxresponses.errors.PipelineError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reactivex import Observable

from ..errors import PipelineError, RxResponsesError
from ..types._compat import set_field
from ..types._compat import shallow_copy as _shallow
from ..types.aliases import IdFactory, ReasoningEventNames
from ..types.events import (
    ResponseCompletedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseErrorEvent,
    ResponseFailedEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseIncompleteEvent,
    ResponseInProgressEvent,
    ResponseOutputItemDoneEvent,
    ResponseReasoningDoneEvent,
    ResponseReasoningSummaryPartDoneEvent,
    ResponseReasoningSummaryTextDoneEvent,
    ResponseReasoningTextDoneEvent,
    ResponseRefusalDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
)
from ..types.registry import DELTA_CLASSES, EVENT_KINDS, TERMINAL_TYPES
from ..types.response import IncompleteDetails, Response, ResponseError
from ..types.signals import (
    ItemFinished,
    ItemStarted,
    ReasoningDelta,
    RefusalDelta,
    StreamFinished,
    StreamStarted,
    TextDelta,
    ToolCallDelta,
)
from ._core import _BLOCK, NOTHING, ItemPlaced, random_ids, stage_operator
from ._final import _HOLD, FinalStage, ResponseAccumulator

__all__ = ["AssembledResponse", "Assembler", "assemble", "check_echo"]

_OWNER = {
    "message": "accumulate_text()",
    "reasoning": "collect_reasoning()",
    "function_call": "join_tool_args()",
}
# The per-token events: numbered on a short path (they open and close nothing, so _track has
# nothing to do for them; see _forward_delta).
_DELTA_EVENTS = DELTA_CLASSES


_ITEM_SIGNALS = (ItemStarted, ItemFinished, TextDelta, RefusalDelta, ReasoningDelta, ToolCallDelta)
# ``response.error.code`` is a closed list in the official schema; other codes go in the message.
_RESPONSE_ERROR_CODES = frozenset(
    {
        "server_error",
        "rate_limit_exceeded",
        "invalid_prompt",
        "vector_store_timeout",
        "invalid_image",
        "invalid_image_format",
        "invalid_base64_image",
        "invalid_image_url",
        "image_too_large",
        "image_too_small",
        "image_parse_error",
        "image_content_policy_violation",
        "invalid_image_mode",
        "image_file_too_large",
        "unsupported_image_media_type",
        "empty_image_file",
        "failed_to_download_image",
        "image_file_not_found",
    }
)


def check_echo(echo: Mapping[str, Any] | None) -> None:
    """Raise ``pydantic.ValidationError`` if ``echo`` holds a field no ``Response`` accepts.

    The operator factories call it, so a bad value is reported when the pipeline is built
    (a caller's mistake), never as a stream that fails before ``response.created``.
    """
    if echo:
        Response(id="resp_check", created_at=0, model="", **dict(echo))


class Assembler:
    """The state machine behind :func:`assemble`.

    Args:
        response_id: The response id; default a fresh ``resp_...``.
        model: The model name to report; default the upstream's.
        created_at: Unix time of creation; default the upstream's, else now.
        echo: Request fields echoed on every ``Response`` (``instructions``, ``tools``,
            ``temperature``, ``max_output_tokens``...), as the Responses API does.
        ids: Id factory (used for ``resp_`` only).
        start_immediately: Send ``response.created`` and ``response.in_progress`` on subscribe
            (:meth:`start`), not at the first value.
        reasoning_events: The name of the reasoning text ``.done`` event it sends when it closes
            a part a stage left open (``"open-responses"``: ``response.reasoning.done``).
    """

    name = "assemble()"
    #: The events :meth:`handle_delta` takes (the driver's fast path).
    delta_types = _DELTA_EVENTS

    def __init__(
        self,
        *,
        response_id: str | None = None,
        model: str | None = None,
        created_at: int | None = None,
        echo: Mapping[str, Any] | None = None,
        ids: IdFactory = random_ids,
        start_immediately: bool = False,
        reasoning_events: ReasoningEventNames = "openai",
    ) -> None:
        self._reasoning_done: type[ResponseReasoningTextDoneEvent | ResponseReasoningDoneEvent] = (
            ResponseReasoningDoneEvent
            if reasoning_events == "open-responses"
            else ResponseReasoningTextDoneEvent
        )
        self._start_immediately = start_immediately
        self._response_id = response_id or ids("resp")
        self._model = model
        self._created_at = created_at
        self._echo = dict(echo or {})
        # Validate the echoed request fields now: a bad value is a caller's mistake, reported
        # when the pipeline is built, never a stream that fails before ``response.created``.
        # (Without echo there is nothing to validate: the other fields are always valid.)
        if self._echo:
            self._base("in_progress")
        self._seq = 0
        self._indexes: dict[int, int] = {}
        self._open: set[int] = set()  # dense output_index of the items not yet done
        # Open parts of open items, (dense index, "content" | "summary", part index) -> whether
        # the part's text ``.done`` event was already sent; and function calls whose
        # ``function_call_arguments.done`` was not. What a stage leaves open is closed at the end.
        self._parts: dict[tuple[int, str, int], bool] = {}
        self._args_open: set[int] = set()
        self._acc = ResponseAccumulator()
        # Events not folded yet (see _fold), or None: each is folded as it comes.
        self._held: list[Any] | None = None
        # Build no event that only the fold would read (see AssembledResponse).
        self._quiet = False
        self._started = False
        # Every value so far came through handle_owned(): a stage of this chain built it for
        # this one alone (see AssembledResponse).
        self._all_owned = True
        self.ended = False

    def start(self) -> list[Any]:
        """On subscribe: ``response.created`` and ``response.in_progress`` when the assembler
        starts immediately (a server that must answer before the upstream does), else nothing."""
        return self._start(None) if self._start_immediately and not self._started else []

    def handle(self, value: Any) -> list[Any]:
        """Take one value: an event (numbered on a copy) or a signal."""
        if self.ended:
            return []
        self._all_owned = False
        if type(value) in _DELTA_EVENTS and self._started:  # the per-token path
            return [self._forward_delta(_shallow(value))]
        return self._take(value, False)

    def handle_owned(self, value: Any) -> list[Any]:
        """:meth:`handle` for a value that a stage built for this one and nobody else has seen
        (the driver knows): an event is numbered in place, before anyone sees it."""
        if self.ended:
            return []
        if type(value) in _DELTA_EVENTS and self._started:  # the per-token path
            return [self._forward_delta(value)]
        return self._take(value, True)

    def handle_delta(self, event: Any) -> Any:
        """The fast path for a delta event (see :mod:`rxresponses.operators._core`): a copy of
        it, numbered and folded, once the stream has started; else ``None``."""
        if self._started and not self.ended:
            self._all_owned = False
            return self._forward_delta(_shallow(event))
        return None

    def handle_delta_owned(self, event: Any) -> Any:
        """:meth:`handle_delta` for an event nobody else has seen: numbered in place."""
        if self._started and not self.ended:
            return self._forward_delta(event)
        return None

    def _absorb_delta(self, event: Any) -> Any:
        """:meth:`handle_delta`, for :class:`AssembledResponse`: folded, emitted nowhere."""
        if self._started and not self.ended:
            self._all_owned = False
            self._fold_delta(event, False)
            return NOTHING
        return None

    def _absorb_delta_owned(self, event: Any) -> Any:
        """:meth:`handle_delta_owned`, for :class:`AssembledResponse`."""
        if not self._started or self.ended:
            return None
        if self._held is not None:  # the events are held (see _fold)
            return self._hold_delta(event)
        index = getattr(event, "output_index", None)
        if index is not None and self._indexes.get(index) == index:  # the usual delta, inline
            self._seq += 1
            acc = self._acc
            if (
                type(event) is ResponseTextDeltaEvent
                and (index, "content", event.content_index) == acc._last_key
                and not event.logprobs
            ):
                # One more fragment of the part of the last delta (most of a long stream):
                # what ResponseAccumulator.handle() does with it, inline.
                tail = acc._last_tail
                tail.append(event.delta)
                if len(tail) >= _BLOCK:
                    acc._last._settle()
            else:
                acc.handle(event)
        else:
            self._fold_delta(event, True)
        return NOTHING

    def _hold_delta(self, event: Any) -> Any:
        """:meth:`_absorb_delta_owned` while the events are held: the delta is held."""
        index = getattr(event, "output_index", None)
        if index is not None and self._indexes.get(index) == index:
            self._seq += 1
            self._fold(event)
        else:
            self._fold_delta(event, True)
        return NOTHING

    def _fold_delta(self, event: Any, owned: bool) -> None:
        """:meth:`_forward_delta` for a delta event that is folded and emitted nowhere (in
        :class:`AssembledResponse`): it takes its sequence number, but as nobody sees it the
        number is not written into it, and it is copied (when someone else may hold it) only
        when its ``output_index`` must change, since the fold reads that."""
        try:
            index = event.output_index
        except AttributeError:  # built with model_construct() and no output_index
            self._forward(event if owned else _shallow(event))
            return
        if index is None:
            self._forward(event if owned else _shallow(event))
            return
        dense = self._indexes.get(index)
        if dense is None:
            dense = self._indexes[index] = len(self._indexes)
        if dense != index:
            if not owned:
                event = _shallow(event)
            set_field(event, "output_index", dense)
        self._seq += 1
        self._fold(event)

    def fuse(self, stage: object) -> AssembledResponse | None:
        """Followed by ``final_response()``'s stage: one stage that emits only the Response."""
        if type(stage) is FinalStage and stage.fresh:
            return AssembledResponse(self)
        return None

    def _take(self, value: Any, owned: bool) -> list[Any]:
        if isinstance(value, StreamStarted):
            return self._start(value) if not self._started else []
        if isinstance(value, StreamFinished):
            return self._finish(value)
        if type(value) is ItemPlaced:  # (from a stage emitting whole items only)
            out = [] if self._started else self._start(None)
            self._place(value.output_index)
            return out
        if isinstance(value, _ITEM_SIGNALS):
            raise PipelineError(
                f"{type(value).__name__} for a {value.kind!r} item reached assemble(): no stage "
                f"converted it. Put {_OWNER[value.kind]} before assemble()."
            )
        if not hasattr(value, "sequence_number"):
            raise PipelineError(f"assemble() got {type(value).__name__}, not a Responses event")
        out = [] if self._started else self._start(None)
        out.append(self._forward(value if owned else _shallow(value)))
        return out

    def finish(self) -> list[Any]:
        if self.ended:
            return []
        return self._finish(
            StreamFinished(
                "failed",
                error_code="server_error",
                error_message="the stream ended without a terminal signal",
            )
        )

    def fail(self, exc: Exception) -> list[Any]:
        if self.ended:
            return []
        code = exc.code if isinstance(exc, RxResponsesError) else "server_error"
        return self._finish(StreamFinished("failed", error_code=code, error_message=str(exc)))

    # -- internals ----------------------------------------------------------------------------

    def _number(self, event: Any) -> Any:
        """Number an event this stage built (its class declares ``sequence_number``)."""
        set_field(event, "sequence_number", self._seq)
        self._seq += 1
        return event

    def _forward(self, event: Any) -> Any:
        index = getattr(event, "output_index", None)
        if index is not None:
            dense = self._indexes.get(index)
            if dense is None:
                dense = self._indexes[index] = len(self._indexes)
            if dense != index:
                event.output_index = dense
            self._track(event, dense)
        if not self._quiet:  # (quiet: nobody sees the number)
            event.sequence_number = self._seq  # any event: a field, or an extra of an unknown one
        self._seq += 1
        self._fold(event)
        return event

    def _fold(self, event: Any) -> None:
        """Fold ``event``, or hold it while :attr:`_held` is a list: in
        :class:`AssembledResponse` the fold is read only at the end, so the events of a short
        stream are held and folded then, minus those a later ``output_item.done`` undoes
        (:meth:`ResponseAccumulator.handle_all`); past :data:`_HOLD` events, what was held is
        folded and the rest as it comes (memory stays bounded)."""
        held = self._held
        if held is None:
            self._acc.handle(event)
            return
        held.append(event)
        if len(held) >= _HOLD:
            self._settle()

    def _place(self, index: int) -> None:
        """An item started at ``index`` (:class:`ItemPlaced`, from a stage emitting whole items
        only, where it would send ``output_item.added``): its dense ``output_index`` is given
        now, in the order items start, as that event's would be. Nothing is folded: the item
        comes whole with its ``output_item.done``."""
        if index not in self._indexes:
            self._indexes[index] = len(self._indexes)

    def _settle(self) -> ResponseAccumulator:
        """Fold what is held; from now on every event as it comes. Returns the fold."""
        held, self._held = self._held, None
        if held:
            self._acc.handle_all(held)
        return self._acc

    def _forward_delta(self, event: Any) -> Any:
        """Number and fold one per-token delta event (a class that declares ``output_index`` and
        ``sequence_number``) once the stream has started; return it. What :meth:`_forward` does
        with such an event, minus what deltas never need (they open and close nothing). Fields
        are set without pydantic's ``__setattr__`` dispatch (see
        :func:`~rxresponses.types._compat.set_field`)."""
        try:
            index = event.output_index
        except AttributeError:  # built with model_construct() and no output_index
            return self._forward(event)
        if index is None:
            return self._forward(event)
        dense = self._indexes.get(index)
        if dense is None:
            dense = self._indexes[index] = len(self._indexes)
        if dense != index:
            set_field(event, "output_index", dense)
        set_field(event, "sequence_number", self._seq)
        self._seq += 1
        if self._held is None:
            self._acc.handle(event)
        else:
            self._fold(event)
        return event

    def _emit(self, event: Any) -> Any:
        """Send an event this stage built, whose ``output_index`` is already dense."""
        self._track(event, event.output_index)
        self._number(event)
        self._fold(event)
        return event

    def _track(self, event: Any, dense: int) -> None:
        kind = EVENT_KINDS.get(event.type)
        if kind is None:
            return
        role = kind.role
        if role == "item_added":
            self._open.add(dense)
            if getattr(event.item, "type", None) == "function_call":
                self._args_open.add(dense)
        elif role == "item_done":
            self._open.discard(dense)
            self._args_open.discard(dense)
            for key in [k for k in self._parts if k[0] == dense]:
                del self._parts[key]
        elif kind.family is None:
            return
        elif kind.index_field is None:  # an item field's .done
            if role == "done" and kind.family == "arguments":
                self._args_open.discard(dense)
        else:
            key = (dense, kind.family, getattr(event, kind.index_field))
            if role == "part_added":
                self._parts[key] = False
            elif role == "part_done":
                self._parts.pop(key, None)
            elif role == "done" and key in self._parts:
                self._parts[key] = True

    def _close_item(self, dense: int, item: Any) -> list[Any]:
        """The events that close an item a stage left open: its open parts' ``.done`` events,
        the arguments ``.done`` of a function call, and ``output_item.done`` (status
        ``incomplete``). The text folded so far is kept."""
        out: list[Any] = []
        item_id = getattr(item, "id", None) or ""
        for key in sorted(k for k in self._parts if k[0] == dense):
            text_done = self._parts[key]
            _, family, sub = key
            parts = getattr(item, family, None) or []
            part = parts[sub] if sub < len(parts) else None
            if part is None:  # pragma: no cover - the accumulator placed every added part
                continue
            ids = {"item_id": item_id, "output_index": dense}
            if family == "summary":
                if not text_done:
                    out.append(
                        self._emit(
                            ResponseReasoningSummaryTextDoneEvent(
                                **ids, summary_index=sub, text=part.text
                            )
                        )
                    )
                out.append(
                    self._emit(
                        ResponseReasoningSummaryPartDoneEvent(
                            **ids, summary_index=sub, part=part.model_copy()
                        )
                    )
                )
                continue
            kind = getattr(part, "type", None)
            if not text_done:
                if kind == "output_text":
                    done: Any = ResponseTextDoneEvent(
                        **ids, content_index=sub, text=part.text, logprobs=list(part.logprobs or [])
                    )
                elif kind == "refusal":
                    done = ResponseRefusalDoneEvent(**ids, content_index=sub, refusal=part.refusal)
                else:
                    done = self._reasoning_done(**ids, content_index=sub, text=part.text)
                out.append(self._emit(done))
            out.append(
                self._emit(
                    ResponseContentPartDoneEvent(**ids, content_index=sub, part=part.model_copy())
                )
            )
        if dense in self._args_open:
            out.append(
                self._emit(
                    ResponseFunctionCallArgumentsDoneEvent(
                        item_id=item_id, output_index=dense, arguments=item.arguments or ""
                    )
                )
            )
        if hasattr(item, "status"):
            item.status = "incomplete"
        out.append(self._emit(ResponseOutputItemDoneEvent(output_index=dense, item=item)))
        return out

    def _base(self, status: str) -> Response:
        fields: dict[str, Any] = {
            "id": self._response_id,
            "object": "response",
            "created_at": self._created_at or int(time.time()),
            "model": self._model or "",
            "status": status,
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": None,
            "error": None,
            "incomplete_details": None,
        }
        if self._echo:  # validated: echoed request fields are the caller's values
            fields.update(self._echo)
            return Response(**fields)
        return Response.build(**fields)

    def _start(self, signal: StreamStarted | None) -> list[Any]:
        self._started = True
        if signal is not None:
            self._created_at = self._created_at or signal.created_at or None
            self._model = self._model or signal.model
        self._created_at = self._created_at or int(time.time())  # one value for every event
        if self._quiet:  # nobody sees these two events: the fold takes their response
            self._seq += 2
            held = self._held
            if held:  # what came before, in order (nothing does: the stream starts first)
                self._acc.handle_all(held)
                held.clear()
            self._acc.begin(self._base("in_progress"), owned=True)
            return []
        created = ResponseCreatedEvent.build(response=self._base("in_progress"))
        in_progress = ResponseInProgressEvent.build(response=self._base("in_progress"))
        out = [self._number(created), self._number(in_progress)]
        self._fold(created)
        self._fold(in_progress)
        return out

    def _finish(self, signal: StreamFinished) -> list[Any]:
        out: list[Any] = [] if self._started else self._start(None)
        self.ended = True
        seq = self._seq
        try:
            out.extend(self._terminal(signal))
        except Exception as exc:
            # Building the terminal events failed (a bug, or a value a user stage put in an
            # event that cannot be dumped): the stream still ends with one well-formed
            # terminal event, numbered right after what was already sent.
            self._seq = seq
            message = f"rxresponses could not build the final response: {exc}"
            failed = self._base("failed")
            failed.error = ResponseError(code="server_error", message=message)
            out.append(
                self._number(ResponseErrorEvent(code="server_error", message=message, param=None))
            )
            out.append(self._number(ResponseFailedEvent(response=failed)))
        return out

    def _terminal(self, signal: StreamFinished) -> list[Any]:
        out: list[Any] = []
        # Close what a stage left open (a user stage dropped an ItemFinished, or the stream
        # failed between stages): the text folded so far is kept, the item marked incomplete.
        self._settle()
        if self._open:
            snapshot = self._acc.result()
            for dense in sorted(self._open):
                item = snapshot.output[dense] if dense < len(snapshot.output) else None
                if item is not None:
                    out.extend(self._close_item(dense, item))
        # The fold ends here: the terminal response shares the items the item events carried.
        final = self._acc.result(share=True, last=True)
        set_field(final, "usage", signal.usage)
        if signal.status == "completed":
            set_field(final, "status", "completed")
            set_field(final, "completed_at", int(time.time()))
            out.append(self._number(ResponseCompletedEvent.build(response=final)))
        elif signal.status == "incomplete":
            final.status = "incomplete"
            final.incomplete_details = IncompleteDetails(reason=signal.incomplete_reason)
            out.append(self._number(ResponseIncompleteEvent.build(response=final)))
        else:
            code = signal.error_code or "server_error"
            message = signal.error_message or "the upstream failed"
            out.append(self._number(ResponseErrorEvent(code=code, message=message, param=None)))
            if code not in _RESPONSE_ERROR_CODES:
                message = f"{code}: {message}"
                code = "server_error"
            final.status = "failed"
            final.error = ResponseError(code=code, message=message)
            out.append(self._number(ResponseFailedEvent.build(response=final)))
        return out


class AssembledResponse:
    """``assemble() | final_response()`` as one stage (the driver fuses them when adjacent).

    The assembler's events go nowhere else, and its terminal event's ``response`` is what
    folding every event it emitted would give (the assembler folds them itself to build it), so
    ``final_response()``'s second fold is skipped: the stage emits one :class:`Response`, the
    terminal event's, folded on its own (a new object graph, as ``final_response()`` gives), or
    that response itself when every value the assembler took was built for it by the stages of
    this chain and no echoed request field is in it (then nobody else holds any part of it).
    """

    name = "assemble() | final_response()"
    delta_types = _DELTA_EVENTS
    #: Of the events it takes, it reads only whole items: each item of the Response is the one
    #: its ``output_item.done`` carries (see ``emit_items_only()`` in
    #: :mod:`rxresponses.operators._core`); it passes no event on.
    items_only = True

    def __init__(self, assembler: Assembler) -> None:
        self._asm = assembler
        # Its events go nowhere: it builds none that only its fold would read, and folds
        # them at the end (see Assembler._fold).
        assembler._quiet = True
        assembler._held = []
        self.ended = False
        # The fast path: the assembler's, minus the event (it goes nowhere).
        self.handle_delta: Callable[[Any], Any] = assembler._absorb_delta
        self.handle_delta_owned: Callable[[Any], Any] = assembler._absorb_delta_owned

    def start(self) -> list[Any]:
        self._asm.start()  # what it emits on subscribe is folded into the terminal event
        return []

    def handle(self, value: Any) -> list[Response]:
        return self._end(self._asm.handle(value))

    def handle_owned(self, value: Any) -> list[Response]:
        return self._end(self._asm.handle_owned(value))

    def finish(self) -> list[Response]:
        return self._end(self._asm.finish())

    def fail(self, exc: Exception) -> list[Response]:
        return self._end(self._asm.fail(exc))

    def _end(self, out: Sequence[Any]) -> list[Response]:
        if not self._asm.ended or self.ended:
            return []
        self.ended = True
        asm = self._asm
        for event in reversed(out):
            if event.type in TERMINAL_TYPES:
                if asm._all_owned and not asm._echo:
                    # Every object in it was built by this chain and seen by nobody (the events
                    # that carried them go nowhere): it is the caller's own already.
                    return [event.response]
                fold = ResponseAccumulator()
                fold.handle(event)
                return [fold.result()]
        raise AssertionError("assemble() ended without a terminal event")  # pragma: no cover


def assemble(
    *,
    response_id: str | None = None,
    model: str | None = None,
    created_at: int | None = None,
    echo: Mapping[str, Any] | None = None,
    ids: IdFactory = random_ids,
    start_immediately: bool = False,
    reasoning_events: ReasoningEventNames = "openai",
) -> Callable[[Observable[Any]], Observable[Any]]:
    """Implementation of :func:`rxresponses.operators.assemble`."""
    check_echo(echo)  # invalid echoed fields raise now, not mid-stream
    return stage_operator(
        lambda: Assembler(
            response_id=response_id,
            model=model,
            created_at=created_at,
            echo=echo,
            ids=ids,
            start_immediately=start_immediately,
            reasoning_events=reasoning_events,
        )
    )

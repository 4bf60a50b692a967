"""Every event of a Responses API stream, the ``ResponseStreamEvent`` union, and its parser.

Class and field names follow ``openai.types.responses`` (openai-python 3.54.0). The models are our
own and more lenient than the SDK's, so that every frame real servers send parses (the
wire as recorded from OpenAI, xAI and third-party servers):

* **``sequence_number`` defaults to ``0``.** Streams recorded before May 2025 and some third-party
  servers omit it. A parsed event without it does not dump it; an event built in Python dumps it.
* **``logprobs`` on ``response.output_text.delta/done`` defaults to ``[]``** (xAI and old streams
  omit it; the SDK requires it).
* **The ``error`` event accepts both shapes**: the documented flat one (``code``, ``message``,
  ``param`` at the top level) and the nested one OpenAI really sends (``error: {type, code,
  message, param}``). Both round-trip unchanged; :class:`ResponseErrorEvent` has properties that
  read either.
* **Unknown event types never raise**: they parse into :class:`UnknownEvent`, which keeps the whole
  payload. Events that are on the wire but in no SDK union (``keepalive``,
  ``response.apply_patch_call_operation_diff.delta/done``) have their own classes.
* **Wire extras are kept** (``obfuscation`` on delta events, ``name`` on
  ``function_call_arguments.done``...), so ``parse -> to_dict`` gives back exactly the received
  JSON object.
* Shell-call output payloads (``delta``, ``output``) are plain dicts: rxresponses only passes them
  through.

:data:`EVENT_ADAPTER` is built once at import; :func:`parse_event` is the entry point for wire data.
The union uses a callable discriminator on ``type`` (one set lookup), so dispatch costs the same for
all 60-odd members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final, Literal, get_args

from pydantic import Discriminator, Field, Tag, TypeAdapter

from ._base import WIRE, WireModel, to_dict
from .response import (
    Annotation,
    Content,
    Logprob,
    Response,
    ResponseContentPartOther,
    ResponseOutputItem,
    ResponseOutputRefusal,
    ResponseOutputText,
    SparseModel,
    Summary,
    _tag_of,
)

__all__ = [
    "EVENT_ADAPTER",
    "EVENT_TYPES",
    "EventKind",
    "EventRole",
    "PartReasoningText",
    "ResponseApplyPatchCallOperationDiffDeltaEvent",
    "ResponseApplyPatchCallOperationDiffDoneEvent",
    "ResponseAudioDeltaEvent",
    "ResponseAudioDoneEvent",
    "ResponseAudioTranscriptDeltaEvent",
    "ResponseAudioTranscriptDoneEvent",
    "ResponseCodeInterpreterCallCodeDeltaEvent",
    "ResponseCodeInterpreterCallCodeDoneEvent",
    "ResponseCodeInterpreterCallCompletedEvent",
    "ResponseCodeInterpreterCallInProgressEvent",
    "ResponseCodeInterpreterCallInterpretingEvent",
    "ResponseCompactionCompactingEvent",
    "ResponseCompletedEvent",
    "ResponseContentPart",
    "ResponseContentPartAddedEvent",
    "ResponseContentPartDoneEvent",
    "ResponseCreatedEvent",
    "ResponseCustomToolCallInputDeltaEvent",
    "ResponseCustomToolCallInputDoneEvent",
    "ResponseErrorEvent",
    "ResponseFailedEvent",
    "ResponseFileSearchCallCompletedEvent",
    "ResponseFileSearchCallInProgressEvent",
    "ResponseFileSearchCallSearchingEvent",
    "ResponseFunctionCallArgumentsDeltaEvent",
    "ResponseFunctionCallArgumentsDoneEvent",
    "ResponseImageGenCallCompletedEvent",
    "ResponseImageGenCallGeneratingEvent",
    "ResponseImageGenCallInProgressEvent",
    "ResponseImageGenCallPartialImageEvent",
    "ResponseInProgressEvent",
    "ResponseIncompleteEvent",
    "ResponseKeepAliveEvent",
    "ResponseMcpCallArgumentsDeltaEvent",
    "ResponseMcpCallArgumentsDoneEvent",
    "ResponseMcpCallCompletedEvent",
    "ResponseMcpCallFailedEvent",
    "ResponseMcpCallInProgressEvent",
    "ResponseMcpListToolsCompletedEvent",
    "ResponseMcpListToolsFailedEvent",
    "ResponseMcpListToolsInProgressEvent",
    "ResponseOutputItemAddedEvent",
    "ResponseOutputItemDoneEvent",
    "ResponseOutputTextAnnotationAddedEvent",
    "ResponseQueuedEvent",
    "ResponseReasoningSummaryPartAddedEvent",
    "ResponseReasoningSummaryPartDoneEvent",
    "ResponseReasoningSummaryTextDeltaEvent",
    "ResponseReasoningSummaryTextDoneEvent",
    "ResponseReasoningDeltaEvent",
    "ResponseReasoningDoneEvent",
    "ResponseReasoningTextDeltaEvent",
    "ResponseReasoningTextDoneEvent",
    "ResponseRefusalDeltaEvent",
    "ResponseRefusalDoneEvent",
    "ResponseShellCallCommandAddedEvent",
    "ResponseShellCallCommandDeltaEvent",
    "ResponseShellCallCommandDoneEvent",
    "ResponseShellCallOutputContentDeltaEvent",
    "ResponseShellCallOutputContentDoneEvent",
    "ResponseStreamEvent",
    "ResponseTextDeltaEvent",
    "ResponseTextDoneEvent",
    "ResponseWebSearchCallCompletedEvent",
    "ResponseWebSearchCallInProgressEvent",
    "ResponseWebSearchCallSearchingEvent",
    "UnknownEvent",
    "parse_event",
]


#: What an event does in a stream (see :class:`EventKind`).
EventRole = Literal[
    "lifecycle",
    "terminal",
    "error",
    "item_added",
    "item_done",
    "part_added",
    "part_done",
    "delta",
    "done",
]


@dataclass(frozen=True, slots=True)
class EventKind:
    """Metadata an event class declares about itself (its ``event_kind`` class variable), from
    which :mod:`rxresponses.types.registry` derives every table of event types the package uses.

    Attributes:
        role: ``lifecycle`` (created, queued, in_progress), ``terminal`` (completed, incomplete,
            failed), ``error``, ``item_added`` / ``item_done``, ``part_added`` / ``part_done``,
            ``delta`` (a text fragment of an item) or ``done`` (the whole text, replacing the
            fragments).
        family: Where the text goes in the item: ``content`` or ``summary`` (a part in that
            list), or the item's string field (``arguments``, ``input``, ``code``); ``None`` when
            the fold keeps no text for it (an ``apply_patch_call``'s diff lives in its
            ``operation``, which ``output_item.done`` carries whole).
        index_field: The field holding the part index (``content_index``, ``summary_index``),
            ``None`` for item fields.
        text_field: The field holding the text (``delta``, or the ``.done`` event's ``text``,
            ``refusal``, ``arguments``...).
        part: The type of the part the text fills (``output_text``, ``refusal``,
            ``reasoning_text``, ``summary_text``), ``None`` for item fields.
    """

    role: EventRole
    family: str | None = None
    index_field: str | None = None
    text_field: str | None = None
    part: str | None = None


def _is_wire(context: Any) -> bool:
    return isinstance(context, dict) and bool(context.get("rxresponses_wire"))


# --------------------------------------------------------------------------------------------
# Lifecycle (payload: the whole Response)
# --------------------------------------------------------------------------------------------


class ResponseCreatedEvent(WireModel):
    """``response.created``: always the first event; ``response.status`` is ``"in_progress"``
    (``"queued"`` in background mode), ``output`` is empty.
    """

    type: Literal["response.created"] = "response.created"
    event_kind: ClassVar[EventKind] = EventKind("lifecycle")
    sequence_number: int = 0
    response: Response


class ResponseQueuedEvent(WireModel):
    """``response.queued``: background mode only, right after ``response.created``."""

    type: Literal["response.queued"] = "response.queued"
    event_kind: ClassVar[EventKind] = EventKind("lifecycle")
    sequence_number: int = 0
    response: Response


class ResponseInProgressEvent(WireModel):
    """``response.in_progress``: the response is being generated (OpenAI's second event)."""

    type: Literal["response.in_progress"] = "response.in_progress"
    event_kind: ClassVar[EventKind] = EventKind("lifecycle")
    sequence_number: int = 0
    response: Response


class ResponseCompletedEvent(WireModel):
    """``response.completed``: terminal; the full ``output`` and ``usage``."""

    type: Literal["response.completed"] = "response.completed"
    event_kind: ClassVar[EventKind] = EventKind("terminal")
    sequence_number: int = 0
    response: Response


class ResponseIncompleteEvent(WireModel):
    """``response.incomplete``: terminal; ``response.incomplete_details.reason`` says why."""

    type: Literal["response.incomplete"] = "response.incomplete"
    event_kind: ClassVar[EventKind] = EventKind("terminal")
    sequence_number: int = 0
    response: Response


class ResponseFailedEvent(WireModel):
    """``response.failed``: terminal; ``response.error`` says why."""

    type: Literal["response.failed"] = "response.failed"
    event_kind: ClassVar[EventKind] = EventKind("terminal")
    sequence_number: int = 0
    response: Response


class ResponseErrorEvent(WireModel):
    """``error``: an error during the stream (followed by ``response.failed``).

    Two shapes exist and both round-trip unchanged:

    * flat, as documented and typed by the SDK: ``{"type": "error", "code", "message", "param"}``;
    * nested, as OpenAI really sends it: ``{"type": "error", "error": {"type", "code",
      "message", "param"}}`` (the top-level ``code``/``message``/``param`` are then unset).

    Read it through :attr:`error_code`, :attr:`error_message`, :attr:`error_param` and
    :attr:`error_type`, which work for both. Built in Python, the event dumps the flat fields when
    ``error`` is ``None`` (``error`` itself is then left out), and only ``error`` plus the flat
    fields passed explicitly otherwise.
    """

    type: Literal["error"] = "error"
    event_kind: ClassVar[EventKind] = EventKind("error")
    sequence_number: int = 0
    code: str | None = None
    message: str = ""
    param: str | None = None
    error: dict[str, Any] | None = None

    def model_post_init(self, context: Any, /) -> None:
        given = set(self.model_fields_set)
        super().model_post_init(context)
        if not _is_wire(context):
            fields_set = self.model_fields_set
            if self.error is None:
                fields_set.discard("error")
            else:
                for name in ("code", "message", "param"):
                    if name not in given:
                        fields_set.discard(name)

    @property
    def is_nested(self) -> bool:
        """Whether the details are in a nested ``error`` object (OpenAI's wire shape)."""
        return self.error is not None

    def _nested(self, key: str) -> Any:
        return self.error.get(key) if self.error is not None else None

    @property
    def error_code(self) -> str | None:
        """The error code (``"server_error"``, ``"insufficient_quota"``...), from either shape."""
        if self.code is not None:
            return self.code
        code = self._nested("code")
        return None if code is None else str(code)

    @property
    def error_message(self) -> str:
        """The human-readable message, from either shape (``""`` when there is none)."""
        if self.message:
            return self.message
        message = self._nested("message")
        return "" if message is None else str(message)

    @property
    def error_param(self) -> str | None:
        """The request parameter the error is about, from either shape."""
        if self.param is not None:
            return self.param
        param = self._nested("param")
        return None if param is None else str(param)

    @property
    def error_type(self) -> str | None:
        """The error type of the nested shape (``"insufficient_quota"``...); ``None`` if flat."""
        error_type = self._nested("type")
        return None if error_type is None else str(error_type)


# --------------------------------------------------------------------------------------------
# Output items and content parts
# --------------------------------------------------------------------------------------------


class ResponseOutputItemAddedEvent(WireModel):
    """``response.output_item.added``: an output item opens (possibly partial: hosted-tool items
    may lack required fields until ``output_item.done``).
    """

    type: Literal["response.output_item.added"] = "response.output_item.added"
    event_kind: ClassVar[EventKind] = EventKind("item_added")
    sequence_number: int = 0
    output_index: int
    item: ResponseOutputItem


class ResponseOutputItemDoneEvent(WireModel):
    """``response.output_item.done``: an output item is finished; ``item`` is authoritative."""

    type: Literal["response.output_item.done"] = "response.output_item.done"
    event_kind: ClassVar[EventKind] = EventKind("item_done")
    sequence_number: int = 0
    output_index: int
    item: ResponseOutputItem


#: The ``reasoning_text`` part of ``content_part.added/done`` (same shape as :class:`Content`).
PartReasoningText = Content


_PART_TYPES: Final = frozenset({"output_text", "refusal", "reasoning_text"})


def _part_tag(value: Any) -> str:
    return _tag_of(value, _PART_TYPES, "other")


#: The ``part`` of ``content_part.added/done``: ``output_text``, ``refusal``, ``reasoning_text``
#: or any other type (kept as is).
ResponseContentPart = Annotated[
    Annotated[ResponseOutputText, Tag("output_text")]
    | Annotated[ResponseOutputRefusal, Tag("refusal")]
    | Annotated[PartReasoningText, Tag("reasoning_text")]
    | Annotated[ResponseContentPartOther, Tag("other")],
    Discriminator(_part_tag),
]


class ResponseContentPartAddedEvent(WireModel):
    """``response.content_part.added``: a content part opens in a message (or a
    ``reasoning_text`` part in a reasoning item).
    """

    type: Literal["response.content_part.added"] = "response.content_part.added"
    event_kind: ClassVar[EventKind] = EventKind("part_added", "content", "content_index")
    sequence_number: int = 0
    item_id: str
    output_index: int
    content_index: int
    part: ResponseContentPart


class ResponseContentPartDoneEvent(WireModel):
    """``response.content_part.done``: a content part is finished; ``part`` is complete (except
    ``output_text`` logprobs, which OpenAI sends as ``[]`` here).
    """

    type: Literal["response.content_part.done"] = "response.content_part.done"
    event_kind: ClassVar[EventKind] = EventKind("part_done", "content", "content_index")
    sequence_number: int = 0
    item_id: str
    output_index: int
    content_index: int
    part: ResponseContentPart


# --------------------------------------------------------------------------------------------
# Text, refusal, tool calls, reasoning, hosted tools, audio...
# --------------------------------------------------------------------------------------------


class ResponseTextDeltaEvent(WireModel):
    """``response.output_text.delta``: A chunk of text of an ``output_text`` part. ``logprobs``
    defaults to ``[]`` (xAI omits it).
    """

    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    event_kind: ClassVar[EventKind] = EventKind(
        "delta", "content", "content_index", "delta", "output_text"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Logprob] = Field(default_factory=list)


class ResponseTextDoneEvent(WireModel):
    """``response.output_text.done``: the full text of a finished ``output_text`` part. ``logprobs``
    defaults to ``[]``.
    """

    type: Literal["response.output_text.done"] = "response.output_text.done"
    event_kind: ClassVar[EventKind] = EventKind(
        "done", "content", "content_index", "text", "output_text"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Logprob] = Field(default_factory=list)


class ResponseOutputTextAnnotationAddedEvent(WireModel):
    """``response.output_text.annotation.added``: an annotation (citation...) added to an
    ``output_text`` part.
    """

    type: Literal["response.output_text.annotation.added"] = "response.output_text.annotation.added"
    sequence_number: int = 0
    item_id: str
    output_index: int
    content_index: int
    annotation_index: int
    annotation: Annotation | None = None


class ResponseRefusalDeltaEvent(WireModel):
    """``response.refusal.delta``: A chunk of a ``refusal`` part."""

    type: Literal["response.refusal.delta"] = "response.refusal.delta"
    event_kind: ClassVar[EventKind] = EventKind(
        "delta", "content", "content_index", "delta", "refusal"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int
    content_index: int
    delta: str


class ResponseRefusalDoneEvent(WireModel):
    """``response.refusal.done``: the full text of a finished ``refusal`` part."""

    type: Literal["response.refusal.done"] = "response.refusal.done"
    event_kind: ClassVar[EventKind] = EventKind(
        "done", "content", "content_index", "refusal", "refusal"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int
    content_index: int
    refusal: str


class ResponseFunctionCallArgumentsDeltaEvent(WireModel):
    """``response.function_call_arguments.delta``: A chunk of the JSON arguments of a
    ``function_call`` item.
    """

    type: Literal["response.function_call_arguments.delta"] = (
        "response.function_call_arguments.delta"
    )
    event_kind: ClassVar[EventKind] = EventKind("delta", "arguments", None, "delta")
    sequence_number: int = 0
    item_id: str
    output_index: int
    delta: str


class ResponseFunctionCallArgumentsDoneEvent(WireModel):
    """``response.function_call_arguments.done``: the full JSON arguments of a ``function_call``
    item. openai 3.3.1 also declared a required ``name`` (removed again in 3.54.0; OpenAI does not
    send it); when a server sends it, it is kept as an extra.
    """

    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    event_kind: ClassVar[EventKind] = EventKind("done", "arguments", None, "arguments")
    sequence_number: int = 0
    item_id: str
    output_index: int
    arguments: str


class ResponseCustomToolCallInputDeltaEvent(WireModel):
    """``response.custom_tool_call_input.delta``: A chunk of the input of a ``custom_tool_call``
    item.
    """

    type: Literal["response.custom_tool_call_input.delta"] = "response.custom_tool_call_input.delta"
    event_kind: ClassVar[EventKind] = EventKind("delta", "input", None, "delta")
    sequence_number: int = 0
    item_id: str
    output_index: int
    delta: str


class ResponseCustomToolCallInputDoneEvent(WireModel):
    """``response.custom_tool_call_input.done``: the full input of a ``custom_tool_call`` item."""

    type: Literal["response.custom_tool_call_input.done"] = "response.custom_tool_call_input.done"
    event_kind: ClassVar[EventKind] = EventKind("done", "input", None, "input")
    sequence_number: int = 0
    item_id: str
    output_index: int
    input: str


class ResponseReasoningSummaryPartAddedEvent(WireModel):
    """``response.reasoning_summary_part.added``: A new summary part opens in a reasoning item."""

    type: Literal["response.reasoning_summary_part.added"] = "response.reasoning_summary_part.added"
    event_kind: ClassVar[EventKind] = EventKind("part_added", "summary", "summary_index")
    sequence_number: int = 0
    item_id: str
    output_index: int
    summary_index: int
    part: Summary = Field(default_factory=Summary)


class ResponseReasoningSummaryPartDoneEvent(SparseModel):
    """``response.reasoning_summary_part.done``: A summary part of a reasoning item is finished.
    ``status`` is ``"incomplete"`` when it was cut short, and only dumped when set.
    """

    _sparse: ClassVar[tuple[str, ...]] = ("status",)

    type: Literal["response.reasoning_summary_part.done"] = "response.reasoning_summary_part.done"
    event_kind: ClassVar[EventKind] = EventKind("part_done", "summary", "summary_index")
    sequence_number: int = 0
    item_id: str
    output_index: int
    summary_index: int
    part: Summary
    status: str | None = None


class ResponseReasoningSummaryTextDeltaEvent(WireModel):
    """``response.reasoning_summary_text.delta``: A chunk of a reasoning summary part."""

    type: Literal["response.reasoning_summary_text.delta"] = "response.reasoning_summary_text.delta"
    event_kind: ClassVar[EventKind] = EventKind(
        "delta", "summary", "summary_index", "delta", "summary_text"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int
    summary_index: int
    delta: str


class ResponseReasoningSummaryTextDoneEvent(WireModel):
    """``response.reasoning_summary_text.done``: the full text of a reasoning summary part."""

    type: Literal["response.reasoning_summary_text.done"] = "response.reasoning_summary_text.done"
    event_kind: ClassVar[EventKind] = EventKind(
        "done", "summary", "summary_index", "text", "summary_text"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int
    summary_index: int
    text: str


class ResponseReasoningTextDeltaEvent(WireModel):
    """``response.reasoning_text.delta``: A chunk of raw reasoning text (``reasoning_text`` content
    part).
    """

    type: Literal["response.reasoning_text.delta"] = "response.reasoning_text.delta"
    event_kind: ClassVar[EventKind] = EventKind(
        "delta", "content", "content_index", "delta", "reasoning_text"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int
    content_index: int
    delta: str


class ResponseReasoningTextDoneEvent(WireModel):
    """``response.reasoning_text.done``: the full raw reasoning text of a ``reasoning_text`` content
    part.
    """

    type: Literal["response.reasoning_text.done"] = "response.reasoning_text.done"
    event_kind: ClassVar[EventKind] = EventKind(
        "done", "content", "content_index", "text", "reasoning_text"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int
    content_index: int
    text: str


class ResponseReasoningDeltaEvent(WireModel):
    """``response.reasoning.delta``: the Open Responses specification's name for
    :class:`ResponseReasoningTextDeltaEvent` (same fields, same role in the fold).

    Parsed from any stream; written only when asked for (``reasoning_events="open-responses"``).
    """

    type: Literal["response.reasoning.delta"] = "response.reasoning.delta"
    event_kind: ClassVar[EventKind] = EventKind(
        "delta", "content", "content_index", "delta", "reasoning_text"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int
    content_index: int
    delta: str


class ResponseReasoningDoneEvent(WireModel):
    """``response.reasoning.done``: the Open Responses specification's name for
    :class:`ResponseReasoningTextDoneEvent` (same fields, same role in the fold)."""

    type: Literal["response.reasoning.done"] = "response.reasoning.done"
    event_kind: ClassVar[EventKind] = EventKind(
        "done", "content", "content_index", "text", "reasoning_text"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int
    content_index: int
    text: str


class ResponseWebSearchCallInProgressEvent(WireModel):
    """``response.web_search_call.in_progress``: A web search call started."""

    type: Literal["response.web_search_call.in_progress"] = "response.web_search_call.in_progress"
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseWebSearchCallSearchingEvent(WireModel):
    """``response.web_search_call.searching``: A web search call is searching."""

    type: Literal["response.web_search_call.searching"] = "response.web_search_call.searching"
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseWebSearchCallCompletedEvent(WireModel):
    """``response.web_search_call.completed``: A web search call finished."""

    type: Literal["response.web_search_call.completed"] = "response.web_search_call.completed"
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseFileSearchCallInProgressEvent(WireModel):
    """``response.file_search_call.in_progress``: A file search call started."""

    type: Literal["response.file_search_call.in_progress"] = "response.file_search_call.in_progress"
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseFileSearchCallSearchingEvent(WireModel):
    """``response.file_search_call.searching``: A file search call is searching."""

    type: Literal["response.file_search_call.searching"] = "response.file_search_call.searching"
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseFileSearchCallCompletedEvent(WireModel):
    """``response.file_search_call.completed``: A file search call finished."""

    type: Literal["response.file_search_call.completed"] = "response.file_search_call.completed"
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseCodeInterpreterCallInProgressEvent(WireModel):
    """``response.code_interpreter_call.in_progress``: A code interpreter call started."""

    type: Literal["response.code_interpreter_call.in_progress"] = (
        "response.code_interpreter_call.in_progress"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseCodeInterpreterCallInterpretingEvent(WireModel):
    """``response.code_interpreter_call.interpreting``: A code interpreter call is running its
    code.
    """

    type: Literal["response.code_interpreter_call.interpreting"] = (
        "response.code_interpreter_call.interpreting"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseCodeInterpreterCallCompletedEvent(WireModel):
    """``response.code_interpreter_call.completed``: A code interpreter call finished."""

    type: Literal["response.code_interpreter_call.completed"] = (
        "response.code_interpreter_call.completed"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseCodeInterpreterCallCodeDeltaEvent(WireModel):
    """``response.code_interpreter_call_code.delta``: A chunk of the code of a code interpreter
    call.
    """

    type: Literal["response.code_interpreter_call_code.delta"] = (
        "response.code_interpreter_call_code.delta"
    )
    event_kind: ClassVar[EventKind] = EventKind("delta", "code", None, "delta")
    sequence_number: int = 0
    item_id: str
    output_index: int
    delta: str


class ResponseCodeInterpreterCallCodeDoneEvent(WireModel):
    """``response.code_interpreter_call_code.done``: the full code of a code interpreter call."""

    type: Literal["response.code_interpreter_call_code.done"] = (
        "response.code_interpreter_call_code.done"
    )
    event_kind: ClassVar[EventKind] = EventKind("done", "code", None, "code")
    sequence_number: int = 0
    item_id: str
    output_index: int
    code: str


class ResponseImageGenCallInProgressEvent(WireModel):
    """``response.image_generation_call.in_progress``: an image generation call started."""

    type: Literal["response.image_generation_call.in_progress"] = (
        "response.image_generation_call.in_progress"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseImageGenCallGeneratingEvent(WireModel):
    """``response.image_generation_call.generating``: an image generation call is generating."""

    type: Literal["response.image_generation_call.generating"] = (
        "response.image_generation_call.generating"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseImageGenCallCompletedEvent(WireModel):
    """``response.image_generation_call.completed``: an image generation call finished."""

    type: Literal["response.image_generation_call.completed"] = (
        "response.image_generation_call.completed"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseImageGenCallPartialImageEvent(SparseModel):
    """``response.image_generation_call.partial_image``: A partial image (base64) of an image
    generation call; ``partial_image_index`` is 0-based. The optional fields are only dumped when
    set.
    """

    _sparse: ClassVar[tuple[str, ...]] = ("background", "output_format", "quality", "size")

    type: Literal["response.image_generation_call.partial_image"] = (
        "response.image_generation_call.partial_image"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int
    partial_image_b64: str
    partial_image_index: int
    background: str | None = None
    output_format: str | None = None
    quality: str | None = None
    size: str | None = None


class ResponseMcpCallInProgressEvent(WireModel):
    """``response.mcp_call.in_progress``: an MCP tool call started."""

    type: Literal["response.mcp_call.in_progress"] = "response.mcp_call.in_progress"
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseMcpCallCompletedEvent(WireModel):
    """``response.mcp_call.completed``: an MCP tool call finished."""

    type: Literal["response.mcp_call.completed"] = "response.mcp_call.completed"
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseMcpCallFailedEvent(WireModel):
    """``response.mcp_call.failed``: an MCP tool call failed."""

    type: Literal["response.mcp_call.failed"] = "response.mcp_call.failed"
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseMcpCallArgumentsDeltaEvent(WireModel):
    """``response.mcp_call_arguments.delta``: A chunk of the JSON arguments of an MCP tool call."""

    type: Literal["response.mcp_call_arguments.delta"] = "response.mcp_call_arguments.delta"
    event_kind: ClassVar[EventKind] = EventKind("delta", "arguments", None, "delta")
    sequence_number: int = 0
    item_id: str
    output_index: int
    delta: str


class ResponseMcpCallArgumentsDoneEvent(WireModel):
    """``response.mcp_call_arguments.done``: the full JSON arguments of an MCP tool call."""

    type: Literal["response.mcp_call_arguments.done"] = "response.mcp_call_arguments.done"
    event_kind: ClassVar[EventKind] = EventKind("done", "arguments", None, "arguments")
    sequence_number: int = 0
    item_id: str
    output_index: int
    arguments: str


class ResponseMcpListToolsInProgressEvent(WireModel):
    """``response.mcp_list_tools.in_progress``: listing the tools of an MCP server started."""

    type: Literal["response.mcp_list_tools.in_progress"] = "response.mcp_list_tools.in_progress"
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseMcpListToolsCompletedEvent(WireModel):
    """``response.mcp_list_tools.completed``: listing the tools of an MCP server finished."""

    type: Literal["response.mcp_list_tools.completed"] = "response.mcp_list_tools.completed"
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseMcpListToolsFailedEvent(WireModel):
    """``response.mcp_list_tools.failed``: listing the tools of an MCP server failed."""

    type: Literal["response.mcp_list_tools.failed"] = "response.mcp_list_tools.failed"
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseShellCallCommandAddedEvent(WireModel):
    """``response.shell_call_command.added``: a command is added to a shell call (no
    ``item_id``).
    """

    type: Literal["response.shell_call_command.added"] = "response.shell_call_command.added"
    sequence_number: int = 0
    output_index: int
    command_index: int
    command: str


class ResponseShellCallCommandDeltaEvent(SparseModel):
    """``response.shell_call_command.delta``: A chunk of a shell call command. ``obfuscation`` is
    only dumped when set.
    """

    _sparse: ClassVar[tuple[str, ...]] = ("obfuscation",)

    type: Literal["response.shell_call_command.delta"] = "response.shell_call_command.delta"
    sequence_number: int = 0
    output_index: int
    command_index: int
    delta: str
    obfuscation: str | None = None


class ResponseShellCallCommandDoneEvent(WireModel):
    """``response.shell_call_command.done``: the full command of a shell call."""

    type: Literal["response.shell_call_command.done"] = "response.shell_call_command.done"
    sequence_number: int = 0
    output_index: int
    command_index: int
    command: str


class ResponseShellCallOutputContentDeltaEvent(WireModel):
    """``response.shell_call_output_content.delta``: A chunk of shell output: ``delta`` is
    ``{"stdout"?: str, "stderr"?: str}``.
    """

    type: Literal["response.shell_call_output_content.delta"] = (
        "response.shell_call_output_content.delta"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int
    command_index: int
    delta: dict[str, Any]


class ResponseShellCallOutputContentDoneEvent(WireModel):
    """``response.shell_call_output_content.done``: the full output of a shell command: ``output``
    is a list of ``{outcome, stdout, stderr, created_by?}``.
    """

    type: Literal["response.shell_call_output_content.done"] = (
        "response.shell_call_output_content.done"
    )
    sequence_number: int = 0
    item_id: str
    output_index: int
    command_index: int
    output: list[dict[str, Any]] = Field(default_factory=list)


class ResponseAudioDeltaEvent(WireModel):
    """``response.audio.delta``: A chunk of base64 audio."""

    type: Literal["response.audio.delta"] = "response.audio.delta"
    sequence_number: int = 0
    delta: str


class ResponseAudioDoneEvent(WireModel):
    """``response.audio.done``: the audio is finished."""

    type: Literal["response.audio.done"] = "response.audio.done"
    sequence_number: int = 0


class ResponseAudioTranscriptDeltaEvent(WireModel):
    """``response.audio.transcript.delta``: A chunk of the audio transcript."""

    type: Literal["response.audio.transcript.delta"] = "response.audio.transcript.delta"
    sequence_number: int = 0
    delta: str


class ResponseAudioTranscriptDoneEvent(WireModel):
    """``response.audio.transcript.done``: the audio transcript is finished."""

    type: Literal["response.audio.transcript.done"] = "response.audio.transcript.done"
    sequence_number: int = 0


class ResponseCompactionCompactingEvent(WireModel):
    """``response.compaction.compacting``: A compaction item is being computed (openai 3.54.0)."""

    type: Literal["response.compaction.compacting"] = "response.compaction.compacting"
    sequence_number: int = 0
    item_id: str
    output_index: int


class ResponseApplyPatchCallOperationDiffDeltaEvent(WireModel):
    """``response.apply_patch_call_operation_diff.delta``: A chunk of the diff of an
    ``apply_patch_call`` (on the wire, in no SDK union).
    """

    type: Literal["response.apply_patch_call_operation_diff.delta"] = (
        "response.apply_patch_call_operation_diff.delta"
    )
    event_kind: ClassVar[EventKind] = EventKind("delta", None, None, "delta")
    sequence_number: int = 0
    item_id: str
    output_index: int
    delta: str


class ResponseApplyPatchCallOperationDiffDoneEvent(WireModel):
    """``response.apply_patch_call_operation_diff.done``: the full diff of an ``apply_patch_call``
    (on the wire, in no SDK union).
    """

    type: Literal["response.apply_patch_call_operation_diff.done"] = (
        "response.apply_patch_call_operation_diff.done"
    )
    event_kind: ClassVar[EventKind] = EventKind("done", None, None, "diff")
    sequence_number: int = 0
    item_id: str
    output_index: int
    diff: str


class ResponseKeepAliveEvent(WireModel):
    """``keepalive``: an undocumented no-op frame some OpenAI streams contain (it still takes a
    ``sequence_number``). In no SDK union.
    """

    type: Literal["keepalive"] = "keepalive"
    sequence_number: int = 0


class UnknownEvent(WireModel):
    """An event of a type rxresponses does not know. The whole payload is kept (as extras), so
    it dumps back unchanged; :attr:`raw` returns it as a dict.
    """

    _is_fallback: ClassVar[bool] = True

    if TYPE_CHECKING:
        # For type checkers, ``type`` is one literal like every other member's, so that
        # :data:`ResponseStreamEvent` narrows on ``event.type``; at run time it holds the type
        # received (read it through :attr:`event_type`).
        type: Literal["unknown"]
    else:
        type: str
    sequence_number: int = 0

    @property
    def event_type(self) -> str:
        """The ``type`` the event was received with."""
        return str(self.type)

    @property
    def raw(self) -> dict[str, Any]:
        """The event as a JSON-compatible dict (the received payload, for a parsed event)."""
        return to_dict(self)


# --------------------------------------------------------------------------------------------
# The union and its parser
# --------------------------------------------------------------------------------------------

_UNKNOWN_TAG: Final = "*"


def _event_tag(value: Any) -> str:
    """The union tag of an event: its ``type`` if modelled (:data:`EVENT_TYPES`), else ``"*"``."""
    return _tag_of(value, EVENT_TYPES, _UNKNOWN_TAG)


#: Any event of a Responses stream. Discriminated on ``type``; an unknown ``type`` parses into
#: :class:`UnknownEvent` instead of raising.
ResponseStreamEvent = Annotated[
    Annotated[ResponseCreatedEvent, Tag("response.created")]
    | Annotated[ResponseQueuedEvent, Tag("response.queued")]
    | Annotated[ResponseInProgressEvent, Tag("response.in_progress")]
    | Annotated[ResponseCompletedEvent, Tag("response.completed")]
    | Annotated[ResponseIncompleteEvent, Tag("response.incomplete")]
    | Annotated[ResponseFailedEvent, Tag("response.failed")]
    | Annotated[ResponseErrorEvent, Tag("error")]
    | Annotated[ResponseOutputItemAddedEvent, Tag("response.output_item.added")]
    | Annotated[ResponseOutputItemDoneEvent, Tag("response.output_item.done")]
    | Annotated[ResponseContentPartAddedEvent, Tag("response.content_part.added")]
    | Annotated[ResponseContentPartDoneEvent, Tag("response.content_part.done")]
    | Annotated[ResponseTextDeltaEvent, Tag("response.output_text.delta")]
    | Annotated[ResponseTextDoneEvent, Tag("response.output_text.done")]
    | Annotated[
        ResponseOutputTextAnnotationAddedEvent, Tag("response.output_text.annotation.added")
    ]
    | Annotated[ResponseRefusalDeltaEvent, Tag("response.refusal.delta")]
    | Annotated[ResponseRefusalDoneEvent, Tag("response.refusal.done")]
    | Annotated[
        ResponseFunctionCallArgumentsDeltaEvent, Tag("response.function_call_arguments.delta")
    ]
    | Annotated[
        ResponseFunctionCallArgumentsDoneEvent, Tag("response.function_call_arguments.done")
    ]
    | Annotated[ResponseCustomToolCallInputDeltaEvent, Tag("response.custom_tool_call_input.delta")]
    | Annotated[ResponseCustomToolCallInputDoneEvent, Tag("response.custom_tool_call_input.done")]
    | Annotated[
        ResponseReasoningSummaryPartAddedEvent, Tag("response.reasoning_summary_part.added")
    ]
    | Annotated[ResponseReasoningSummaryPartDoneEvent, Tag("response.reasoning_summary_part.done")]
    | Annotated[
        ResponseReasoningSummaryTextDeltaEvent, Tag("response.reasoning_summary_text.delta")
    ]
    | Annotated[ResponseReasoningSummaryTextDoneEvent, Tag("response.reasoning_summary_text.done")]
    | Annotated[ResponseReasoningTextDeltaEvent, Tag("response.reasoning_text.delta")]
    | Annotated[ResponseReasoningTextDoneEvent, Tag("response.reasoning_text.done")]
    | Annotated[ResponseReasoningDeltaEvent, Tag("response.reasoning.delta")]
    | Annotated[ResponseReasoningDoneEvent, Tag("response.reasoning.done")]
    | Annotated[ResponseWebSearchCallInProgressEvent, Tag("response.web_search_call.in_progress")]
    | Annotated[ResponseWebSearchCallSearchingEvent, Tag("response.web_search_call.searching")]
    | Annotated[ResponseWebSearchCallCompletedEvent, Tag("response.web_search_call.completed")]
    | Annotated[ResponseFileSearchCallInProgressEvent, Tag("response.file_search_call.in_progress")]
    | Annotated[ResponseFileSearchCallSearchingEvent, Tag("response.file_search_call.searching")]
    | Annotated[ResponseFileSearchCallCompletedEvent, Tag("response.file_search_call.completed")]
    | Annotated[
        ResponseCodeInterpreterCallInProgressEvent,
        Tag("response.code_interpreter_call.in_progress"),
    ]
    | Annotated[
        ResponseCodeInterpreterCallInterpretingEvent,
        Tag("response.code_interpreter_call.interpreting"),
    ]
    | Annotated[
        ResponseCodeInterpreterCallCompletedEvent, Tag("response.code_interpreter_call.completed")
    ]
    | Annotated[
        ResponseCodeInterpreterCallCodeDeltaEvent, Tag("response.code_interpreter_call_code.delta")
    ]
    | Annotated[
        ResponseCodeInterpreterCallCodeDoneEvent, Tag("response.code_interpreter_call_code.done")
    ]
    | Annotated[
        ResponseImageGenCallInProgressEvent, Tag("response.image_generation_call.in_progress")
    ]
    | Annotated[
        ResponseImageGenCallGeneratingEvent, Tag("response.image_generation_call.generating")
    ]
    | Annotated[ResponseImageGenCallCompletedEvent, Tag("response.image_generation_call.completed")]
    | Annotated[
        ResponseImageGenCallPartialImageEvent, Tag("response.image_generation_call.partial_image")
    ]
    | Annotated[ResponseMcpCallInProgressEvent, Tag("response.mcp_call.in_progress")]
    | Annotated[ResponseMcpCallCompletedEvent, Tag("response.mcp_call.completed")]
    | Annotated[ResponseMcpCallFailedEvent, Tag("response.mcp_call.failed")]
    | Annotated[ResponseMcpCallArgumentsDeltaEvent, Tag("response.mcp_call_arguments.delta")]
    | Annotated[ResponseMcpCallArgumentsDoneEvent, Tag("response.mcp_call_arguments.done")]
    | Annotated[ResponseMcpListToolsInProgressEvent, Tag("response.mcp_list_tools.in_progress")]
    | Annotated[ResponseMcpListToolsCompletedEvent, Tag("response.mcp_list_tools.completed")]
    | Annotated[ResponseMcpListToolsFailedEvent, Tag("response.mcp_list_tools.failed")]
    | Annotated[ResponseShellCallCommandAddedEvent, Tag("response.shell_call_command.added")]
    | Annotated[ResponseShellCallCommandDeltaEvent, Tag("response.shell_call_command.delta")]
    | Annotated[ResponseShellCallCommandDoneEvent, Tag("response.shell_call_command.done")]
    | Annotated[
        ResponseShellCallOutputContentDeltaEvent, Tag("response.shell_call_output_content.delta")
    ]
    | Annotated[
        ResponseShellCallOutputContentDoneEvent, Tag("response.shell_call_output_content.done")
    ]
    | Annotated[ResponseAudioDeltaEvent, Tag("response.audio.delta")]
    | Annotated[ResponseAudioDoneEvent, Tag("response.audio.done")]
    | Annotated[ResponseAudioTranscriptDeltaEvent, Tag("response.audio.transcript.delta")]
    | Annotated[ResponseAudioTranscriptDoneEvent, Tag("response.audio.transcript.done")]
    | Annotated[ResponseCompactionCompactingEvent, Tag("response.compaction.compacting")]
    | Annotated[
        ResponseApplyPatchCallOperationDiffDeltaEvent,
        Tag("response.apply_patch_call_operation_diff.delta"),
    ]
    | Annotated[
        ResponseApplyPatchCallOperationDiffDoneEvent,
        Tag("response.apply_patch_call_operation_diff.done"),
    ]
    | Annotated[ResponseKeepAliveEvent, Tag("keepalive")]
    | Annotated[UnknownEvent, Tag("*")],
    Discriminator(_event_tag),
]


def _known_event_classes() -> dict[str, type[WireModel]]:
    union = get_args(ResponseStreamEvent)[0]
    classes: dict[str, type[WireModel]] = {}
    for member in get_args(union):
        cls, tag = get_args(member)[:2]
        if tag.tag != _UNKNOWN_TAG:
            classes[tag.tag] = cls
    return classes


_EVENT_CLASSES: Final = _known_event_classes()

#: Every event ``type`` rxresponses models (the tags of :data:`ResponseStreamEvent`).
EVENT_TYPES: Final[frozenset[str]] = frozenset(_EVENT_CLASSES)


#: The one :class:`~pydantic.TypeAdapter` of :data:`ResponseStreamEvent`, built at import.
EVENT_ADAPTER: Final[TypeAdapter[ResponseStreamEvent]] = TypeAdapter(ResponseStreamEvent)


def parse_event(data: str | bytes | bytearray | dict[str, Any]) -> ResponseStreamEvent:
    """Parse one event from the ``data`` of an SSE frame (JSON text/bytes) or a decoded dict.

    Never raises for an unknown ``type`` (it becomes :class:`UnknownEvent`); raises
    :class:`pydantic.ValidationError` for invalid JSON or a known event missing a required field.
    The result dumps (:func:`~rxresponses.types._base.to_dict`) back to exactly ``data``.
    """
    if isinstance(data, dict):
        return EVENT_ADAPTER.validate_python(data, context=WIRE)
    return EVENT_ADAPTER.validate_json(data, context=WIRE)

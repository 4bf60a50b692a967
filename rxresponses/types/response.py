"""The ``Response`` object of the OpenAI Responses API and everything it contains.

Class and field names follow ``openai.types.responses`` (openai-python 3.54.0) so code written
against the official SDK reads the same here. The models are our own and deliberately more lenient
than the SDK's, because real servers send things the SDK's types reject:

* **Open enums are plain ``str``.** ``status``, ``service_tier``, ``truncation``, ``model``,
  ``IncompleteDetails.reason`` and ``ResponseError.code`` are ``Literal`` lists in the SDK, but
  servers extend them (``insufficient_quota`` is a real ``response.error.code`` that the SDK's list
  lacks). Known values are listed in the docstrings; unknown ones never raise.
* **Required-but-omitted fields get defaults.** ``InputTokensDetails.cache_write_tokens`` (missing
  from every stream recorded before mid-2026), ``ResponseReasoningItem.status`` (OpenAI never sends
  it), the token-detail objects of :class:`ResponseUsage` (absent from some third-party servers).
  The defaults are what the SDK expects, so a model built in Python dumps to a dict that validates
  against the SDK, while a model parsed off the wire dumps only what it was given (see ``_base``).
* **Unknown item and part types are kept, not rejected.** :data:`ResponseOutputItem`,
  :data:`ResponseOutputMessageContent` and :data:`Annotation` are discriminated unions with a
  generic fallback member (:class:`ResponseOutputItemOther`, :class:`ResponseContentPartOther`,
  :class:`AnnotationOther`) that keeps every field of a type we do not model (hosted tool calls such
  as ``web_search_call``, ``mcp_call``, ``shell_call``...).
* **Configuration echoes are plain JSON.** ``tools``, ``tool_choice``, ``reasoning``, ``text``,
  ``prompt``, ``conversation``... are kept as dicts: rxresponses only passes them through, and
  dicts round-trip exactly and cost nothing to validate.
* **Numbers keep their JSON type.** ``created_at``, ``temperature``... are ``int | float`` so a
  wire ``1`` stays ``1`` (the SDK turns it into ``1.0``).

Optional fields that OpenAI itself sends only sometimes (``phase``, ``namespace``, ``caller``,
``async``, ``encrypted_content``...) are left out of the dump of a Python-built model while they
are ``None`` (see :class:`SparseModel`), so items built here look like the ones OpenAI sends.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Tag

from ._base import WIRE, WireModel, buildable_post_init

__all__ = [
    "Annotation",
    "AnnotationContainerFileCitation",
    "AnnotationFileCitation",
    "AnnotationFilePath",
    "AnnotationOther",
    "AnnotationURLCitation",
    "Content",
    "IncompleteDetails",
    "InputTokensDetails",
    "Logprob",
    "LogprobTopLogprob",
    "OutputTokensDetails",
    "Response",
    "ResponseContentPartOther",
    "ResponseCustomToolCall",
    "ResponseError",
    "ResponseFunctionToolCall",
    "ResponseOutputItem",
    "ResponseOutputItemOther",
    "ResponseOutputMessage",
    "ResponseOutputMessageContent",
    "ResponseOutputRefusal",
    "ResponseOutputText",
    "ResponseReasoningItem",
    "ResponseUsage",
    "SparseModel",
    "Summary",
    "parse_response",
]


def _is_wire(context: Any) -> bool:
    return isinstance(context, dict) and bool(context.get("rxresponses_wire"))


def _tag_of(value: Any, known: frozenset[str], fallback: str) -> str:
    """The union tag of ``value``: its ``type`` when known, else ``fallback``.

    Dicts (wire input) are tagged by their ``type`` key; model instances (Python input) by their
    ``type`` attribute, except instances of the fallback model, which always stay in it.
    """
    if isinstance(value, dict):
        t = value.get("type")
    elif getattr(type(value), "_is_fallback", False):
        return fallback
    else:
        t = getattr(value, "type", None)
    return t if t in known else fallback


class SparseModel(WireModel):
    """A :class:`WireModel` whose rarely-sent optional fields are dumped only when not ``None``.

    The names listed in ``_sparse`` are removed from the set of dumped fields of a model built in
    Python while their value is ``None``. Models parsed off the wire are unaffected (they dump
    exactly the fields they were given).
    """

    _sparse: ClassVar[tuple[str, ...]] = ()

    @buildable_post_init
    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        if not _is_wire(context):
            fields_set = self.model_fields_set
            for name in self._sparse:
                if getattr(self, name) is None:
                    fields_set.discard(name)


# --------------------------------------------------------------------------------------------
# Message content: logprobs, annotations, output_text / refusal parts
# --------------------------------------------------------------------------------------------


class LogprobTopLogprob(WireModel):
    """One alternative token of a :class:`Logprob`."""

    token: str = ""
    bytes: list[int] = Field(default_factory=list)
    logprob: float = 0.0


class Logprob(WireModel):
    """The log probability of one output token (used by ``output_text`` parts and text events).

    The SDK has two shapes: the one on ``output_text`` parts requires ``bytes`` and
    ``top_logprobs``; the one on ``response.output_text.delta/done`` events has neither. Real
    servers send ``bytes`` on both; defaulting both to ``[]`` satisfies both shapes.
    """

    token: str
    bytes: list[int] = Field(default_factory=list)
    logprob: float
    top_logprobs: list[LogprobTopLogprob] | None = Field(default_factory=list)


class AnnotationFileCitation(WireModel):
    """A citation of an uploaded file (``file_search``)."""

    type: Literal["file_citation"] = "file_citation"
    file_id: str
    filename: str = ""
    index: int = 0


class AnnotationURLCitation(WireModel):
    """A citation of a web page (``web_search``)."""

    type: Literal["url_citation"] = "url_citation"
    url: str
    title: str = ""
    start_index: int = 0
    end_index: int = 0


class AnnotationContainerFileCitation(WireModel):
    """A citation of a file in a code-interpreter container."""

    type: Literal["container_file_citation"] = "container_file_citation"
    container_id: str
    file_id: str
    filename: str = ""
    start_index: int = 0
    end_index: int = 0


class AnnotationFilePath(WireModel):
    """A path to a file generated by a tool."""

    type: Literal["file_path"] = "file_path"
    file_id: str
    index: int = 0


class AnnotationOther(WireModel):
    """An annotation of a type rxresponses does not model; every field is kept as an extra."""

    _is_fallback: ClassVar[bool] = True
    type: str


_ANNOTATION_TYPES = frozenset(
    {"file_citation", "url_citation", "container_file_citation", "file_path"}
)


def _annotation_tag(value: Any) -> str:
    return _tag_of(value, _ANNOTATION_TYPES, "other")


#: An annotation on an ``output_text`` part; unknown types parse into :class:`AnnotationOther`.
Annotation = Annotated[
    Annotated[AnnotationFileCitation, Tag("file_citation")]
    | Annotated[AnnotationURLCitation, Tag("url_citation")]
    | Annotated[AnnotationContainerFileCitation, Tag("container_file_citation")]
    | Annotated[AnnotationFilePath, Tag("file_path")]
    | Annotated[AnnotationOther, Tag("other")],
    Discriminator(_annotation_tag),
]


class ResponseOutputText(WireModel):
    """An ``output_text`` content part of a message.

    ``logprobs`` defaults to ``[]`` (what OpenAI sends when logprobs were not requested);
    ``null`` is accepted too.
    """

    type: Literal["output_text"] = "output_text"
    annotations: list[Annotation] = Field(default_factory=list)
    logprobs: list[Logprob] | None = Field(default_factory=list)
    text: str = ""


class ResponseOutputRefusal(WireModel):
    """A ``refusal`` content part of a message."""

    type: Literal["refusal"] = "refusal"
    refusal: str = ""


class ResponseContentPartOther(WireModel):
    """A content part of a type rxresponses does not model; every field is kept as an extra.

    The fallback of both :data:`ResponseOutputMessageContent` and the ``part`` of
    ``content_part.added/done`` events.
    """

    _is_fallback: ClassVar[bool] = True
    type: str


_MESSAGE_CONTENT_TYPES = frozenset({"output_text", "refusal"})


def _message_content_tag(value: Any) -> str:
    return _tag_of(value, _MESSAGE_CONTENT_TYPES, "other")


#: A content part of a message: ``output_text``, ``refusal``, or any other type (kept as is).
ResponseOutputMessageContent = Annotated[
    Annotated[ResponseOutputText, Tag("output_text")]
    | Annotated[ResponseOutputRefusal, Tag("refusal")]
    | Annotated[ResponseContentPartOther, Tag("other")],
    Discriminator(_message_content_tag),
]


# --------------------------------------------------------------------------------------------
# Output items
# --------------------------------------------------------------------------------------------


class ResponseOutputMessage(SparseModel):
    """An assistant ``message`` output item.

    ``status`` is ``"in_progress"``, ``"completed"`` or ``"incomplete"`` (kept as ``str``);
    it defaults to ``"in_progress"``, the state in which a message item is opened.
    ``phase`` (``"commentary"`` | ``"final_answer"``) is only dumped when set.
    """

    _sparse: ClassVar[tuple[str, ...]] = ("phase",)

    id: str
    type: Literal["message"] = "message"
    status: str = "in_progress"
    content: list[ResponseOutputMessageContent] = Field(default_factory=list)
    role: str = "assistant"
    phase: str | None = None


class ResponseFunctionToolCall(SparseModel):
    """A ``function_call`` output item.

    ``id`` is the item id (``fc_...``, the ``item_id`` of its events); ``call_id`` is the id a
    ``function_call_output`` answers. ``arguments`` is JSON text (``""`` while streaming).
    ``status`` is ``"in_progress"``, ``"completed"`` or ``"incomplete"``. The optional fields
    (``id``, ``status``, ``async``, ``caller``, ``namespace``) are only dumped when set.
    """

    _sparse: ClassVar[tuple[str, ...]] = ("id", "status", "async_", "caller", "namespace")

    id: str | None = None
    type: Literal["function_call"] = "function_call"
    status: str | None = None
    arguments: str = ""
    call_id: str
    name: str
    namespace: str | None = None
    caller: dict[str, Any] | None = None
    async_: bool | None = Field(default=None, alias="async")


class Summary(WireModel):
    """One ``summary_text`` part of a reasoning item (also the ``part`` of summary-part events)."""

    type: Literal["summary_text"] = "summary_text"
    text: str = ""


class Content(WireModel):
    """One ``reasoning_text`` part (raw chain of thought) of a reasoning item."""

    type: Literal["reasoning_text"] = "reasoning_text"
    text: str = ""


class ResponseReasoningItem(SparseModel):
    """A ``reasoning`` output item.

    ``summary`` is required by the SDK (and defaults to ``[]``); ``content`` (raw reasoning text),
    ``encrypted_content`` and ``status`` are optional and only dumped when set: OpenAI never sends
    ``status`` on reasoning items, third-party servers do.
    """

    _sparse: ClassVar[tuple[str, ...]] = ("content", "encrypted_content", "status")

    id: str
    type: Literal["reasoning"] = "reasoning"
    summary: list[Summary] = Field(default_factory=list)
    content: list[Content] | None = None
    encrypted_content: str | None = None
    status: str | None = None


class ResponseCustomToolCall(SparseModel):
    """A ``custom_tool_call`` output item (free-form tool input in ``input``).

    The optional fields (``id``, ``async``, ``caller``, ``namespace``) are only dumped when set.
    The wire also carries an untyped ``status``, kept as an extra.
    """

    _sparse: ClassVar[tuple[str, ...]] = ("id", "async_", "caller", "namespace")

    id: str | None = None
    type: Literal["custom_tool_call"] = "custom_tool_call"
    call_id: str
    name: str
    input: str = ""
    namespace: str | None = None
    caller: dict[str, Any] | None = None
    async_: bool | None = Field(default=None, alias="async")


class ResponseOutputItemOther(SparseModel):
    """Any output item rxresponses does not model in detail.

    Hosted tool calls (``web_search_call``, ``file_search_call``, ``code_interpreter_call``,
    ``image_generation_call``, ``mcp_call``, ``mcp_list_tools``, ``shell_call``,
    ``local_shell_call``, ``apply_patch_call``...), their outputs, and types not invented yet.
    Every field besides ``type``, ``id`` and ``status`` is kept as an extra (``model_extra``).
    """

    _is_fallback: ClassVar[bool] = True
    _sparse: ClassVar[tuple[str, ...]] = ("id", "status")

    type: str
    id: str | None = None
    status: str | None = None


_OUTPUT_ITEM_TYPES = frozenset({"message", "function_call", "reasoning", "custom_tool_call"})


def _output_item_tag(value: Any) -> str:
    return _tag_of(value, _OUTPUT_ITEM_TYPES, "other")


#: An item of ``Response.output`` (and of ``output_item.added/done``); unknown types parse into
#: :class:`ResponseOutputItemOther`.
ResponseOutputItem = Annotated[
    Annotated[ResponseOutputMessage, Tag("message")]
    | Annotated[ResponseFunctionToolCall, Tag("function_call")]
    | Annotated[ResponseReasoningItem, Tag("reasoning")]
    | Annotated[ResponseCustomToolCall, Tag("custom_tool_call")]
    | Annotated[ResponseOutputItemOther, Tag("other")],
    Discriminator(_output_item_tag),
]


# --------------------------------------------------------------------------------------------
# Usage, error, incomplete details
# --------------------------------------------------------------------------------------------


class InputTokensDetails(SparseModel):
    """Breakdown of the input tokens.

    ``cache_write_tokens`` is required by the SDK since 2.45.0 (2026-07) but missing from every
    stream recorded before; it defaults to ``0``.
    """

    _sparse: ClassVar[tuple[str, ...]] = ("cache_write_tokens_details",)

    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_tokens_details: dict[str, Any] | None = None


class OutputTokensDetails(WireModel):
    """Breakdown of the output tokens."""

    reasoning_tokens: int = 0


class ResponseUsage(WireModel):
    """Token usage of a response (``total_tokens = input_tokens + output_tokens``)."""

    input_tokens: int = 0
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int = 0
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int = 0


class ResponseError(WireModel):
    """The ``error`` of a failed response.

    ``code`` is a closed ``Literal`` in the SDK (``server_error``, ``rate_limit_exceeded``,
    ``invalid_prompt``, ``vector_store_timeout``, ``invalid_image``...), but servers send others
    (``insufficient_quota``), so it is a ``str`` here. It defaults to ``"server_error"`` when
    built in Python; ``null`` from a nonconforming server is accepted rather than losing the
    terminal event.
    """

    code: str | None = "server_error"
    message: str = ""


class IncompleteDetails(WireModel):
    """Why a response is incomplete.

    ``reason``: ``"max_output_tokens"``, ``"content_filter"``, ``"max_messages"``,
    ``"steered"``... (a ``str``, so new reasons never raise).
    """

    reason: str | None = None


# --------------------------------------------------------------------------------------------
# Response
# --------------------------------------------------------------------------------------------


class Response(SparseModel):
    """A Responses API response: the payload of ``response.created`` ... ``response.completed``.

    Required: ``id``, ``created_at``, ``model``. Every other field has the default the SDK expects
    (``object="response"``, ``output=[]``, ``parallel_tool_calls=True``, ``tool_choice="auto"``,
    ``tools=[]``) or ``None``. ``status`` is ``"in_progress"``, ``"queued"``, ``"completed"``,
    ``"incomplete"``, ``"failed"`` or ``"cancelled"``; ``service_tier`` is ``"auto"``,
    ``"default"``, ``"flex"``, ``"scale"``, ``"priority"``...; both are kept as ``str``.

    Fields OpenAI sends only sometimes (``conversation``, ``prompt``, ``moderation``,
    ``tool_usage``...) are dumped only when set. Undeclared fields (``store``,
    ``frequency_penalty``, ``billing``, OpenRouter's ``output_text``...) are kept as extras.
    """

    _sparse: ClassVar[tuple[str, ...]] = (
        "conversation",
        "prompt",
        "prompt_cache_retention",
        "moderation",
        "tool_usage",
        "access_programs",
        "image",
        "input_transformations",
        "prompt_cache_diagnostics",
        "prompt_cache_options",
    )

    id: str
    object: Literal["response"] = "response"
    created_at: int | float
    status: str | None = None
    background: bool | None = None
    completed_at: int | float | None = None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | list[dict[str, Any]] | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    model: str
    output: list[ResponseOutputItem] = Field(default_factory=list)
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    prompt_cache_key: str | None = None
    reasoning: dict[str, Any] | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None
    temperature: int | float | None = None
    text: dict[str, Any] | None = None
    tool_choice: str | dict[str, Any] = "auto"
    tools: list[dict[str, Any]] = Field(default_factory=list)
    top_logprobs: int | None = None
    top_p: int | float | None = None
    truncation: str | None = None
    usage: ResponseUsage | None = None
    user: str | None = None
    metadata: dict[str, Any] | None = None
    # Sent only sometimes: dumped only when set.
    conversation: dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None
    prompt_cache_retention: str | None = None
    moderation: dict[str, Any] | None = None
    tool_usage: dict[str, Any] | None = None
    access_programs: dict[str, Any] | None = None
    image: dict[str, Any] | None = None
    input_transformations: list[dict[str, Any]] | None = None
    prompt_cache_diagnostics: dict[str, Any] | None = None
    prompt_cache_options: dict[str, Any] | None = None

    @property
    def output_text(self) -> str:
        """The text of every ``output_text`` part of every ``message`` item, concatenated."""
        return "".join(
            part.text
            for item in self.output
            if isinstance(item, ResponseOutputMessage)
            for part in item.content
            if isinstance(part, ResponseOutputText)
        )


def parse_response(data: str | bytes | bytearray | dict[str, Any]) -> Response:
    """Parse a ``Response`` from JSON text/bytes or a decoded dict, as received on the wire.

    The result dumps (:func:`~rxresponses.types._base.to_dict`) back to exactly ``data``.
    """
    if isinstance(data, dict):
        return Response.model_validate(data, context=WIRE)
    return Response.model_validate_json(data, context=WIRE)

"""Item signals: what :func:`~rxresponses.operators.split_by_item` makes of Chat chunks.

Signals sit between the provider-specific side (chunks, with all their quirks) and the
Responses side (typed events). They are small frozen dataclasses, cheap to build on the hot path and
easy to rewrite with :func:`dataclasses.replace` in an operator of your own::

    upper = ops.map(lambda s: replace(s, text=s.text.upper()) if isinstance(s, TextDelta) else s)

A rewrite of one delta at a time suits changes of one character at a time: a string can be cut
between two deltas. :func:`~rxresponses.operators.redact_text` masks strings wherever they are cut.

Every item signal carries the item's ``item_id`` (stable from start to end, and the ``id`` of the
final output item) and a provisional ``output_index`` (order of opening). ``kind`` tells which item
operator owns it: ``"message"`` (:func:`accumulate_text`), ``"reasoning"``
(:func:`collect_reasoning`) or ``"function_call"`` (:func:`join_tool_args`).

Guarantees made by :func:`split_by_item`, which the item operators rely on:

* every item gets exactly one :class:`ItemStarted` before its deltas and one :class:`ItemFinished`
  after them, and :class:`StreamFinished` comes after every item has finished;
* :class:`StreamStarted` comes first, :class:`StreamFinished` last, each exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal, TypeVar, cast

from .response import ResponseUsage

__all__ = [
    "CitedSource",
    "ItemFinished",
    "ItemKind",
    "ItemStatus",
    "ItemStarted",
    "ReasoningDelta",
    "RefusalDelta",
    "Signal",
    "StreamFinished",
    "StreamStarted",
    "StreamStatus",
    "TextDelta",
    "ToolCallDelta",
    "UrlCitation",
]

_S = TypeVar("_S")

ItemKind = Literal["message", "reasoning", "function_call"]
#: How an item ended: ``incomplete`` when it was cut short.
ItemStatus = Literal["completed", "incomplete"]
#: How a stream ended.
StreamStatus = Literal["completed", "incomplete", "failed"]


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """The upstream stream started. Carries what the response lifecycle needs.

    Sent for the first chunk that has a ``model`` or ``choices`` (a leading chunk with neither,
    like Azure's prompt-filter chunk, is not used), or when the upstream ends before one came.
    """

    model: str
    created_at: int
    upstream_id: str = ""


@dataclass(frozen=True, slots=True)
class ItemStarted:
    """An output item opens. ``call_id`` and ``name`` are set for function calls."""

    kind: ItemKind
    item_id: str
    output_index: int
    call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A fragment of assistant text (an ``output_text`` part of a message item)."""

    kind: ClassVar[ItemKind] = "message"
    item_id: str
    output_index: int
    text: str
    #: Token log probabilities in the Responses shape (``token``, ``logprob``, ``bytes``,
    #: ``top_logprobs``), when the upstream chunk had them.
    logprobs: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class RefusalDelta:
    """A fragment of a refusal (a ``refusal`` part of a message item)."""

    kind: ClassVar[ItemKind] = "message"
    item_id: str
    output_index: int
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A fragment of reasoning text (a ``reasoning`` item)."""

    kind: ClassVar[ItemKind] = "reasoning"
    item_id: str
    output_index: int
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a function call's JSON arguments."""

    kind: ClassVar[ItemKind] = "function_call"
    item_id: str
    output_index: int
    arguments: str


@dataclass(frozen=True, slots=True)
class CitedSource:
    """A source the upstream listed for the answer (Perplexity's ``citations`` /
    ``search_results``): the text cites the ``n``-th of them as ``[n]``."""

    url: str
    title: str


@dataclass(frozen=True, slots=True)
class UrlCitation:
    """A web citation with its place in the message text (OpenAI search models'
    ``delta.annotations``): ``text[start_index:end_index]`` is the cited span."""

    url: str
    title: str
    start_index: int
    end_index: int


@dataclass(frozen=True, slots=True)
class ItemFinished:
    """An output item closes. ``status`` is ``"incomplete"`` for an item cut short.

    What the upstream reported for the item as a whole comes with it:

    Attributes:
        sources: For a message: the numbered sources its ``[n]`` markers refer to;
            :func:`accumulate_text` turns each marker, and each source no marker cites, into a
            ``url_citation`` annotation (see "Providers" in the README).
        citations: For a message: ``url_citation`` annotations whose place the upstream gave.
        encrypted_content: For reasoning: the opaque reasoning state the upstream sent
            (OpenRouter's ``reasoning.encrypted``), the item's ``encrypted_content``.
    """

    kind: ItemKind
    item_id: str
    output_index: int
    status: ItemStatus = "completed"
    sources: tuple[CitedSource, ...] = ()
    citations: tuple[UrlCitation, ...] = ()
    encrypted_content: str | None = None


@dataclass(frozen=True, slots=True)
class StreamFinished:
    """The upstream ended. Decides the terminal event.

    Attributes:
        status: ``completed``, ``incomplete`` (``incomplete_reason`` says why) or ``failed``
            (``error_code`` and ``error_message`` say why).
        usage: Token usage, when the upstream reported it (on any status).
    """

    status: StreamStatus
    usage: ResponseUsage | None = None
    incomplete_reason: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _fast_constructor(cls: type[_S], *names: str) -> Callable[..., _S]:
    """A function of the values of ``names`` (every field of ``cls``, in order) that makes the
    instance ``cls(*values)`` makes, without the frozen dataclass's ``__init__`` (which sets each
    slot through ``object.__setattr__``: most of a delta signal's cost). The slots are set
    through their own descriptors; checked here once against the constructor, else the
    constructor itself."""
    setters = [cls.__dict__[name].__set__ for name in names]
    new = object.__new__

    def make(*values: Any) -> _S:
        obj = new(cls)
        for setter, value in zip(setters, values, strict=True):
            setter(obj, value)
        return obj

    probe = tuple(f"probe-{name}" for name in names)
    declared = [f.name for f in fields(cast(Any, cls))]
    if declared != list(names) or make(*probe) != cls(*probe):
        return cls  # pragma: no cover - dataclasses changed how they lay out slots
    if len(names) == 3:
        s0, s1, s2 = setters

        def make3(a: Any, b: Any, c: Any) -> _S:
            obj = new(cls)
            s0(obj, a)
            s1(obj, b)
            s2(obj, c)
            return obj

        return make3
    return make


#: The per-token signals, built the fast way (same instances; see :func:`_fast_constructor`):
#: what the splitter builds for almost every chunk of a stream.
new_reasoning_delta: Callable[[str, int, str], ReasoningDelta] = _fast_constructor(
    ReasoningDelta, "item_id", "output_index", "text"
)
new_tool_call_delta: Callable[[str, int, str], ToolCallDelta] = _fast_constructor(
    ToolCallDelta, "item_id", "output_index", "arguments"
)


def _text_delta_constructor() -> Callable[[str, int, str], TextDelta]:
    """``TextDelta(item_id, output_index, text)`` (no logprobs) the fast way."""
    make = _fast_constructor(TextDelta, "item_id", "output_index", "text", "logprobs")
    if make is TextDelta:  # pragma: no cover
        return TextDelta
    setters = [TextDelta.__dict__[n].__set__ for n in ("item_id", "output_index", "text")]
    s0, s1, s2 = setters
    s3 = TextDelta.__dict__["logprobs"].__set__
    new = object.__new__

    def make_text(item_id: str, output_index: int, text: str) -> TextDelta:
        obj = new(TextDelta)
        s0(obj, item_id)
        s1(obj, output_index)
        s2(obj, text)
        s3(obj, None)
        return obj

    return make_text


new_text_delta: Callable[[str, int, str], TextDelta] = _text_delta_constructor()


def _run_constructor(
    cls: type[_S], text_name: str, *, logprobs: bool = False
) -> Callable[[str, int, list[str]], list[_S]]:
    """A function that makes ``[cls(item_id, output_index, text) for text in texts]`` (a
    ``logprobs`` field, if ``logprobs``, left ``None``) the way :func:`_fast_constructor` makes
    one, in one loop: the signals of a run of chunks that each add a string to the same open
    item. Checked here once against the constructor, else the constructor itself."""
    names = ("item_id", "output_index", text_name)
    s0, s1, s2 = (cls.__dict__[name].__set__ for name in names)
    s3 = cls.__dict__["logprobs"].__set__ if logprobs else None
    new = object.__new__

    def make_run(item_id: str, output_index: int, texts: list[str]) -> list[_S]:
        out: list[_S] = []
        append = out.append
        for text in texts:
            obj = new(cls)
            s0(obj, item_id)
            s1(obj, output_index)
            s2(obj, text)
            append(obj)
        return out

    def make_run_logprobs(item_id: str, output_index: int, texts: list[str]) -> list[_S]:
        out: list[_S] = []
        append = out.append
        for text in texts:
            obj = new(cls)
            s0(obj, item_id)
            s1(obj, output_index)
            s2(obj, text)
            s3(obj, None)  # type: ignore[misc]
            append(obj)
        return out

    def slow(item_id: str, output_index: int, texts: list[str]) -> list[_S]:
        return [cls(item_id, output_index, text) for text in texts]  # type: ignore[call-arg]

    made = make_run_logprobs if logprobs else make_run
    declared = [f.name for f in fields(cast(Any, cls))]
    expected = [*names, "logprobs"] if logprobs else list(names)
    probe = ["probe-a", "probe-b"]
    if declared != expected or made("probe-id", 7, probe) != slow("probe-id", 7, probe):
        return slow  # pragma: no cover - dataclasses changed how they lay out slots
    return made


#: The signals of a run of chunks that add text to one open item (see :func:`_run_constructor`):
#: ``new_text_deltas(item_id, output_index, texts)``, one signal per string.
new_text_deltas: Callable[[str, int, list[str]], list[TextDelta]] = _run_constructor(
    TextDelta, "text", logprobs=True
)
new_reasoning_deltas: Callable[[str, int, list[str]], list[ReasoningDelta]] = _run_constructor(
    ReasoningDelta, "text"
)


#: Every value :func:`split_by_item` emits.
Signal = (
    StreamStarted
    | ItemStarted
    | TextDelta
    | RefusalDelta
    | ReasoningDelta
    | ToolCallDelta
    | ItemFinished
    | StreamFinished
)

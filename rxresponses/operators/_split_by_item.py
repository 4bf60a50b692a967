"""Chat chunks -> item signals: all provider quirks are handled here, and only here.

:class:`ChunkSplitter` is a plain state machine (``handle(chunk)``, ``fail(exc)``, ``finish()``,
each returning a list of signals); :func:`split_by_item` wraps one per subscription. The fused SSE
pipeline also calls ``handle_fast(fields)`` for the common chunk shapes it reads without a
``ChatCompletionChunk`` (see :class:`~rxresponses.types.chat.FastChunkReader`); it runs the same
helpers as ``handle``.

Decisions (each documented in the README's "Mapping" section):

* **Items never interleave across kinds.** Reasoning, text and tool calls arrive in runs; a new run
  closes the open items of the previous one. Parallel tool calls stay open together until the run
  ends (some providers interleave their fragments by ``index``), so their events can overlap;
  consumers route by ``item_id`` / ``output_index``, as the protocol requires.
* **Only one choice is converted** (``choice_index``, default 0): the Responses API has no ``n``.
  Other choices are counted in :attr:`ChunkSplitter.dropped_choices` and never mixed in.
* **Reasoning** comes from ``reasoning_content``, else ``reasoning``, else the text entries of
  ``reasoning_details``: providers that send the same text in two of them count it once.
* **Reasoning** from OpenRouter's ``reasoning_details`` of type ``reasoning.encrypted`` (``data``)
  becomes the reasoning item's ``encrypted_content`` (carried by its :class:`ItemFinished`); such
  a detail alone opens a reasoning item, as reasoning text does, and a second one in the same
  run closes the item and opens the next (one opaque value per item, never joined).
* **Inline ``<think>``** at the start of the content (leading whitespace allowed) is split out as
  reasoning while streaming, tags cut across chunks included; whitespace after ``</think>`` is
  dropped. On by default (``think_tags=False`` turns it off). Only the start counts: once other
  text came, a ``<think>`` later in the content (or a ``</think>`` with no opening tag) is text,
  tags included, as models also write these tags as text (HTML, docs about them), and telling
  the two apart later would mean holding back every ``<`` of every answer.
* **Citations**: Perplexity's top-level ``citations`` (URLs) and ``search_results`` (``{title,
  url, date}``), repeated on every chunk, are the numbered sources the text cites as ``[n]``
  (the last list seen; titles from ``search_results``, else the URL); OpenAI search models'
  ``delta.annotations`` (``url_citation`` with its place) are kept for the open message. Both
  travel on the message's :class:`ItemFinished`; :func:`accumulate_text`, which alone holds the
  whole text, turns them into ``url_citation`` annotations with :func:`url_annotations`.
* **Terminal status**: ``stop`` / ``tool_calls`` / ``function_call`` -> completed; ``length`` ->
  incomplete (``max_output_tokens``); ``content_filter`` -> incomplete (``content_filter``); an
  ``error`` in a chunk, an upstream error or undecodable data -> failed; the upstream ending with no
  ``finish_reason`` -> failed (``server_error``): "ended before a finish_reason" when the input
  just completed (a cut connection, or a source with no ``[DONE]``), "sent [DONE] without a
  finish_reason for choice N" when the ``[DONE]`` message came (``parse_chunks()`` passes it on).
  Items open at that moment close with status ``incomplete``; text that arrived is kept.
* **Usage** is the last non-null ``usage`` (or ``x_groq.usage``) seen anywhere in the stream,
  mapped as the Responses API counts it: ``output_tokens`` includes the reasoning tokens. Most
  providers already count them in ``completion_tokens``; xAI counts them beside it, which its
  own numbers show (``prompt + completion + reasoning == total`` while ``prompt + completion !=
  total``): then ``output_tokens = completion + reasoning``, so ``input + output == total``.
  Numbers that do not show that gap are kept as given.
* **The stream starts** (:class:`StreamStarted`, with the model and creation time) at the first
  chunk that has a ``model`` or ``choices``: Azure's leading prompt-filter chunk (empty ``id``,
  ``model`` and ``created``, no choices) does not blank them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from reactivex import Observable

from ..errors import RxResponsesError
from ..sse import SSEMessage
from ..types.aliases import IdFactory
from ..types.chat import ChatCompletionChunk, ChoiceDelta, ChoiceLogprobs, FastDelta
from ..types.response import (
    AnnotationURLCitation,
    InputTokensDetails,
    OutputTokensDetails,
    ResponseUsage,
)
from ..types.signals import (
    CitedSource,
    ItemFinished,
    ItemKind,
    ItemStarted,
    ItemStatus,
    ReasoningDelta,
    RefusalDelta,
    Signal,
    StreamFinished,
    StreamStarted,
    StreamStatus,
    TextDelta,
    ToolCallDelta,
    UrlCitation,
    new_reasoning_delta,
    new_reasoning_deltas,
    new_text_delta,
    new_text_deltas,
    new_tool_call_delta,
)
from ._core import random_ids, stage_operator

__all__ = [
    "ChunkSplitter",
    "IdFactory",
    "ThinkTagSplitter",
    "random_ids",
    "split_by_item",
    "url_annotations",
]

_OPEN, _CLOSE = "<think>", "</think>"


class ThinkTagSplitter:
    """Splits ``<think>...</think>`` at the start of streamed content into reasoning and text.

    ``feed(text)`` returns ``(is_reasoning, text)`` pieces; a tag cut across calls is held back
    until it is decided. ``flush()`` releases what is held at the end of the stream.
    """

    __slots__ = ("_pending", "_state")

    def __init__(self) -> None:
        self._state = "start"  # start -> think -> after -> text, or start -> text
        self._pending = ""

    @property
    def in_text(self) -> bool:
        """True once the tag is decided and past: :meth:`feed` passes text on unchanged."""
        return self._state == "text"

    def feed(self, text: str) -> list[tuple[bool, str]]:
        state = self._state
        if state == "text":
            return [(False, text)] if text else []
        s = self._pending + text
        self._pending = ""
        out: list[tuple[bool, str]] = []
        if state == "start":
            rest = s.lstrip()
            if not rest or (len(rest) < len(_OPEN) and _OPEN.startswith(rest)):
                self._pending = s
                return out
            if not rest.startswith(_OPEN):
                self._state = "text"
                return [(False, s)]
            s = rest[len(_OPEN) :]
            state = self._state = "think"
        if state == "think":
            end = s.find(_CLOSE)
            if end < 0:
                keep = 0
                for k in range(min(len(_CLOSE) - 1, len(s)), 0, -1):
                    if s.endswith(_CLOSE[:k]):
                        keep = k
                        break
                if keep:
                    self._pending = s[-keep:]
                    s = s[:-keep]
                if s:
                    out.append((True, s))
                return out
            if end:
                out.append((True, s[:end]))
            s = s[end + len(_CLOSE) :]
            state = self._state = "after"
        # state == "after": drop whitespace between </think> and the answer
        s = s.lstrip()
        if s:
            self._state = "text"
            out.append((False, s))
        return out

    def flush(self) -> list[tuple[bool, str]]:
        pending, self._pending = self._pending, ""
        if not pending:
            return []
        return [(self._state == "think", pending)]


class _Item:
    __slots__ = (
        "call_id",
        "encrypted",
        "index",
        "item_id",
        "kind",
        "name",
        "output_index",
        "started",
    )

    def __init__(self, kind: ItemKind, item_id: str, output_index: int) -> None:
        self.kind: ItemKind = kind
        self.item_id = item_id
        self.output_index = output_index
        self.started = False
        self.call_id: str | None = None
        self.name: str | None = None
        self.index: int | None = None
        self.encrypted: str | None = None  # a reasoning item's encrypted_content


class _ToolCall(_Item):
    __slots__ = ("args_len", "args_parts", "buffered", "cumulative", "upstream_id")

    def __init__(self, item_id: str, output_index: int) -> None:
        super().__init__("function_call", item_id, output_index)
        self.upstream_id: str | None = None
        self.args_parts: list[str] = []
        self.args_len = 0
        self.cumulative = False
        self.buffered: list[str] = []  # fragments that came before the name


class ChunkSplitter:
    """The state machine behind :func:`split_by_item` (see the module docstring for the rules).

    Args:
        choice_index: Which choice to convert when the upstream sends several (``n > 1``).
        think_tags: Split a leading ``<think>...</think>`` out of the content as reasoning.
        ids: Makes item and call ids; pass a deterministic factory for reproducible output.
    """

    def __init__(
        self, *, choice_index: int = 0, think_tags: bool = True, ids: IdFactory = random_ids
    ) -> None:
        self._choice = choice_index
        self._think = ThinkTagSplitter() if think_tags else None
        self._ids = ids
        #: True once :class:`StreamStarted` was sent.
        self.started = False
        #: True once :class:`StreamFinished` was sent.
        self.ended = False
        self._next_index = 0
        self._message: _Item | None = None
        self._reasoning: _Item | None = None
        self._tools: list[_ToolCall] = []
        self._tools_by_index: dict[int, _ToolCall] = {}
        self._tools_by_upstream_id: dict[str, _ToolCall] = {}
        self._finish_reason: str | None = None
        self._usage: ResponseUsage | None = None
        # Sources the answer cites as [n] (the last list seen), and the upstream's own
        # url_citation annotations for the open message (or the next one).
        self._sources: tuple[CitedSource, ...] = ()
        self._sources_seen: tuple[Any, Any] = (None, None)
        self._citations: list[UrlCitation] = []
        #: Chunks of other choices that were not converted (``n > 1``).
        self.dropped_choices = 0

    # -- public API ---------------------------------------------------------------------------

    name = "split_by_item()"
    fresh_output = True

    @property
    def choice_index(self) -> int:
        """The choice this splitter converts."""
        return self._choice

    def handle(self, chunk: ChatCompletionChunk | SSEMessage) -> list[Signal]:
        """Consume one chunk; return the signals it produces.

        The ``[DONE]`` message (:func:`parse_chunks` passes it on) ends the stream as
        :meth:`finish` does. A chunk this splitter cannot read fails the stream
        (``StreamFinished("failed")``); a value that is not a :class:`ChatCompletionChunk` at all
        is a ``TypeError``.
        """
        if not isinstance(chunk, ChatCompletionChunk):
            if isinstance(chunk, SSEMessage) and chunk.is_done:
                return self.finish(done=True)
            raise TypeError(
                f"split_by_item() takes rxresponses ChatCompletionChunk values (parse_chunks() "
                f"makes them), got {type(chunk).__module__}.{type(chunk).__qualname__}"
            )
        try:
            return self._handle(chunk)
        except Exception as exc:  # a chunk we cannot read: fail the stream
            return self.fail(exc)

    def _handle(self, chunk: ChatCompletionChunk) -> list[Signal]:
        out: list[Signal] = []
        if self.ended:
            return out
        if not self.started and (chunk.model or chunk.choices or chunk.error is not None):
            # A leading chunk with no model and no choices (Azure's prompt-filter chunk) does
            # not start the stream: the model and creation time come from the next one.
            self._start(chunk, out)
        usage = chunk.usage if chunk.usage is not None else chunk.effective_usage
        if usage is not None:
            self._usage = _map_usage(usage)
        extra = chunk.model_extra
        if extra and ("citations" in extra or "search_results" in extra):
            self._read_sources(extra.get("citations"), extra.get("search_results"))
        if chunk.error is not None:
            err = chunk.error
            code = err.get("code")
            message = str(err.get("message") or err)  # providers send dicts, numbers...
            self._end(out, "failed", code=str(code) if code is not None else None, message=message)
            return out
        for choice in chunk.choices:
            if choice.index != self._choice:
                self.dropped_choices += 1
                continue
            if self._finish_reason is None:
                self._delta(choice.delta, choice.logprobs, out)
            if choice.finish_reason:
                self._on_finish_reason(choice.finish_reason, out)
        return out

    def handle_fast(self, fields: FastDelta) -> list[Signal]:
        """:meth:`handle` for a chunk that :class:`~rxresponses.types.chat.FastChunkReader` read,
        once the stream has started (:attr:`started`).

        Such a chunk has no ``usage``, ``error``, ``finish_reason``, ``logprobs``, ``refusal``,
        ``reasoning_details`` or ``function_call``, and one choice, the converted one: of
        :meth:`handle` only the part below is left, calling the same helpers.
        """
        content, reasoning, tool = fields
        if self.ended or self._finish_reason is not None:
            return []
        # One more fragment of the open item (the usual chunk): what the calls below come to
        # for it, without them. Only one item is open then (the others were closed when it
        # opened; parallel tool calls are all function calls).
        if tool is None:
            if content and not reasoning:
                message = self._message
                think = self._think
                if message is not None and (think is None or think._state == "text"):
                    return [new_text_delta(message.item_id, message.output_index, content)]
            elif reasoning and not content:
                item = self._reasoning
                if item is not None:
                    return [new_reasoning_delta(item.item_id, item.output_index, reasoning)]
        elif (
            not content
            and not reasoning
            and tool[1] is None
            and tool[2] is None
            and type(tool[0]) is int
            and self._reasoning is None
            and self._message is None
        ):
            call = self._tools_by_index.get(tool[0])
            if call is not None and call.started:
                fragment = tool[3]
                if fragment:
                    fragment = self._new_arguments(call, fragment)
                if fragment:
                    return [new_tool_call_delta(call.item_id, call.output_index, fragment)]
                return []
        out: list[Signal] = []
        if reasoning:
            self._reasoning_text(reasoning, out)
        if content:
            self._content(content, None, out)
        if tool is not None:
            self._tool(*tool, out)
        return out

    def handle_run(self, slot: int, index: int | None, texts: list[str]) -> list[Signal] | None:
        """:meth:`handle_fast` for a run of chunks that each add one string to the same slot
        (what :meth:`~rxresponses.types.chat.FastChunkReader.read_run` reads: ``slot`` 0
        content, 1 reasoning, 2 the arguments of tool call ``index``), when each of them is one
        more fragment of the open item: the signals of all of them, built in one loop. ``None``
        where :meth:`handle_fast` would do more than that for the first of them (open or close
        an item, the ``<think>`` splitter): then give each to :meth:`handle_fast`."""
        if self.ended or self._finish_reason is not None:
            return []
        if slot == 0:
            message = self._message
            think = self._think
            if message is not None and (think is None or think._state == "text"):
                return new_text_deltas(message.item_id, message.output_index, texts)  # type: ignore[return-value]
        elif slot == 1:
            item = self._reasoning
            if item is not None:
                return new_reasoning_deltas(item.item_id, item.output_index, texts)  # type: ignore[return-value]
        elif type(index) is int and self._reasoning is None and self._message is None:
            call = self._tools_by_index.get(index)
            if call is not None and call.started:
                out: list[Signal] = []
                for text in texts:
                    fragment = self._new_arguments(call, text)
                    if fragment:
                        out.append(new_tool_call_delta(call.item_id, call.output_index, fragment))
                return out
        return None

    def fail(self, exc: Exception) -> list[Signal]:
        """The upstream raised ``exc``: close everything and report a failed stream."""
        out: list[Signal] = []
        if self.ended:
            return out
        if not self.started:
            self._start(None, out)
        code = exc.code if isinstance(exc, RxResponsesError) else "server_error"
        self._end(out, "failed", code=code, message=str(exc) or type(exc).__name__)
        return out

    def finish(self, *, done: bool = False) -> list[Signal]:
        """The upstream completed (``done``: with ``data: [DONE]``): close what is open and
        report the terminal status."""
        out: list[Signal] = []
        if self.ended:
            return out
        if not self.started:
            self._start(None, out)
        self._flush_think(out)
        reason = self._finish_reason
        if reason is None:
            message = (
                f"upstream sent [DONE] without a finish_reason for choice {self._choice}"
                if done
                else "upstream stream ended before a finish_reason"
            )
            self._end(out, "failed", code="server_error", message=message)
        elif reason in ("length", "content_filter"):
            self._end(
                out,
                "incomplete",
                reason="max_output_tokens" if reason == "length" else "content_filter",
            )
        else:
            self._end(out, "completed")
        return out

    # -- internals ----------------------------------------------------------------------------

    def _start(self, chunk: ChatCompletionChunk | None, out: list[Signal]) -> None:
        self.started = True
        if chunk is None:
            out.append(StreamStarted(model="", created_at=0))
        else:
            out.append(StreamStarted(chunk.model, int(chunk.created), chunk.id))

    def start_fast(self, top: dict[str, Any]) -> list[Signal]:
        """What :meth:`handle` does first with the stream's first chunk, when
        :class:`~rxresponses.types.chat.FastChunkReader` read it (``top``: its top level,
        checked): start the stream. Then :meth:`handle_fast` takes the chunk's fields."""
        if self.started or self.ended:
            return []
        self.started = True
        get = top.get
        return [StreamStarted(get("model", ""), int(get("created", 0)), get("id", ""))]

    def handle_end(self, reason: str | None, usage: dict[str, Any] | None) -> list[Signal]:
        """:meth:`handle` for a chunk that
        :meth:`~rxresponses.types.chat.FastChunkReader.read_end` read, once the stream has
        started: its ``usage``, then the converted choice's ``finish_reason`` (its delta adds
        nothing); the same helpers."""
        out: list[Signal] = []
        if self.ended:
            return out
        if usage is not None:
            self._usage = _map_usage_dict(usage)
        if reason:
            self._on_finish_reason(reason, out)
        return out

    def _new(self, kind: ItemKind) -> _Item:
        prefix = {"message": "msg", "reasoning": "rs", "function_call": "fc"}[kind]
        item = _Item(kind, self._ids(prefix), self._next_index)
        self._next_index += 1
        return item

    def _delta(
        self, delta: ChoiceDelta, logprobs: ChoiceLogprobs | None, out: list[Signal]
    ) -> None:
        # Reasoning first: within one chunk it precedes the answer it leads to.
        reasoning = delta.reasoning_content or delta.reasoning
        if not reasoning and delta.reasoning_details:
            reasoning = "".join(_detail_text(d) for d in delta.reasoning_details)
        if reasoning:
            self._reasoning_text(reasoning, out)
        if delta.reasoning_details:
            for detail in delta.reasoning_details:
                if detail.get("type") == "reasoning.encrypted" and detail.get("data"):
                    self._encrypted_reasoning(str(detail["data"]), out)
        content = delta.content
        if content:
            if isinstance(content, str):
                lp = _map_logprobs(logprobs.content) if logprobs and logprobs.content else None
                self._content(content, lp, out)
            else:
                for is_reasoning, piece in _content_blocks(content):
                    if is_reasoning:
                        self._reasoning_text(piece, out)
                    else:
                        self._text(piece, None, out)
        if delta.refusal:
            self._refusal(delta.refusal, out)
        if delta.tool_calls:
            for tc in delta.tool_calls:
                fn = tc.function
                if fn is None:
                    self._tool(tc.index, tc.id, None, None, out)
                else:
                    self._tool(tc.index, tc.id, fn.name, fn.arguments, out)
        elif delta.function_call is not None:  # the deprecated single-call form
            fc = delta.function_call
            self._tool(0, None, fc.name, fc.arguments, out)
        annotations = delta.model_extra.get("annotations") if delta.model_extra else None
        if annotations and isinstance(annotations, list):
            for citation in _url_citations(annotations):
                if citation not in self._citations:
                    self._citations.append(citation)

    def _read_sources(self, citations: Any, search_results: Any) -> None:
        """Perplexity's top-level ``citations`` (URLs) and ``search_results`` (``{title, url,
        date}``), repeated on every chunk: the sources ``[n]`` refers to, with their titles."""
        if (citations, search_results) == self._sources_seen:
            return
        self._sources_seen = (citations, search_results)
        titles: dict[str, str] = {}
        urls: list[str] = []
        if isinstance(search_results, list):
            for result in search_results:
                if isinstance(result, dict) and isinstance(result.get("url"), str):
                    title = result.get("title")
                    titles.setdefault(result["url"], title if isinstance(title, str) else "")
                    urls.append(result["url"])
        if isinstance(citations, list) and citations:
            if not all(isinstance(url, str) for url in citations):
                return  # not a list of URLs: numbering would be a guess
            urls = citations
        if urls:  # cumulative: a chunk without them does not forget them
            self._sources = tuple(CitedSource(url, titles.get(url) or url) for url in urls)

    def _encrypted_reasoning(self, data: str, out: list[Signal]) -> None:
        """OpenRouter's ``reasoning.encrypted``: the reasoning item's ``encrypted_content``. One
        blob per item: a second one closes the item and opens the next."""
        item = self._reasoning
        if item is not None and item.encrypted is not None:
            self._close_reasoning(out)
            item = None
        if item is None:
            self._close_message(out)
            self._close_tools(out)
            item = self._reasoning = self._new("reasoning")
            out.append(ItemStarted("reasoning", item.item_id, item.output_index))
        item.encrypted = data

    def _content(self, content: str, lp: list[dict[str, Any]] | None, out: list[Signal]) -> None:
        """Non-empty string content: through the ``<think>`` splitter until it is decided."""
        think = self._think
        if think is None or think.in_text:  # the splitter would pass it on whole
            self._text(content, lp, out)
            return
        for is_reasoning, piece in think.feed(content):
            if is_reasoning:
                self._reasoning_text(piece, out)
            else:
                self._text(piece, lp, out)
                lp = None

    def _reasoning_text(self, text: str, out: list[Signal]) -> None:
        self._close_message(out)
        self._close_tools(out)
        item = self._reasoning
        if item is None:
            item = self._reasoning = self._new("reasoning")
            out.append(ItemStarted("reasoning", item.item_id, item.output_index))
        out.append(ReasoningDelta(item.item_id, item.output_index, text))

    def _open_message(self, out: list[Signal]) -> _Item:
        self._close_reasoning(out)
        self._close_tools(out)
        item = self._message
        if item is None:
            item = self._message = self._new("message")
            out.append(ItemStarted("message", item.item_id, item.output_index))
        return item

    def _text(self, text: str, logprobs: list[dict[str, Any]] | None, out: list[Signal]) -> None:
        item = self._open_message(out)
        out.append(TextDelta(item.item_id, item.output_index, text, logprobs))

    def _refusal(self, text: str, out: list[Signal]) -> None:
        item = self._open_message(out)
        out.append(RefusalDelta(item.item_id, item.output_index, text))

    def _tool(
        self,
        index: int | None,
        upstream_id: str | None,
        name: str | None,
        arguments: str | None,
        out: list[Signal],
    ) -> None:
        """One tool-call fragment (the fields of a ``ChoiceDeltaToolCall`` and its function)."""
        self._close_reasoning(out)
        self._close_message(out)
        call = self._find_tool(index, upstream_id)
        if call is None:
            call = _ToolCall(self._ids("fc"), self._next_index)
            self._next_index += 1
            self._tools.append(call)
            if index is not None:
                self._tools_by_index[index] = call
        if upstream_id and call.upstream_id is None:
            call.upstream_id = upstream_id
            self._tools_by_upstream_id[upstream_id] = call
        if name and not call.name:
            call.name = name  # a re-sent name is not appended
        fragment = arguments or ""
        if fragment:
            fragment = self._new_arguments(call, fragment)
        if not call.started:
            if call.name is None:
                if fragment:
                    call.buffered.append(fragment)
                return
            self._start_tool(call, out)
            if call.buffered:
                fragment = "".join(call.buffered) + fragment
                call.buffered.clear()
        if fragment:
            out.append(ToolCallDelta(call.item_id, call.output_index, fragment))

    def _find_tool(self, index: int | None, upstream_id: str | None) -> _ToolCall | None:
        if upstream_id and upstream_id in self._tools_by_upstream_id:
            return self._tools_by_upstream_id[upstream_id]
        if index is not None:
            call = self._tools_by_index.get(index)
            if (
                call is not None
                and upstream_id
                and call.upstream_id
                and upstream_id != call.upstream_id
            ):
                return None  # one index reused for another call (Ollama, some proxies)
            return call
        if upstream_id:
            return None  # no index, unseen id: a new call
        return self._tools[-1] if self._tools else None

    @staticmethod
    def _new_arguments(call: _ToolCall, fragment: str) -> str:
        """Return the new part of ``fragment``; providers that resend everything so far are
        detected (a fragment longer than, and starting with, all arguments seen)."""
        if call.cumulative or (call.args_len >= 2 and len(fragment) > call.args_len):
            so_far = "".join(call.args_parts)
            if fragment.startswith(so_far):
                call.cumulative = True
                fragment = fragment[len(so_far) :]
            elif call.cumulative and so_far.startswith(fragment):
                return ""  # a repeat of what we have
        if fragment:
            call.args_parts.append(fragment)
            call.args_len += len(fragment)
        return fragment

    def _start_tool(self, call: _ToolCall, out: list[Signal]) -> None:
        call.started = True
        call.call_id = call.upstream_id or self._ids("call")
        out.append(
            ItemStarted(
                "function_call", call.item_id, call.output_index, call.call_id, call.name or ""
            )
        )

    def _close_reasoning(self, out: list[Signal], status: ItemStatus = "completed") -> None:
        item = self._reasoning
        if item is not None:
            self._reasoning = None
            out.append(
                ItemFinished(
                    "reasoning",
                    item.item_id,
                    item.output_index,
                    status,
                    encrypted_content=item.encrypted,
                )
            )

    def _close_message(self, out: list[Signal], status: ItemStatus = "completed") -> None:
        item = self._message
        if item is not None:
            self._message = None
            citations, self._citations = tuple(self._citations), []
            out.append(
                ItemFinished(
                    "message",
                    item.item_id,
                    item.output_index,
                    status,
                    sources=self._sources,
                    citations=citations,
                )
            )

    def _close_tools(self, out: list[Signal], status: ItemStatus = "completed") -> None:
        if not self._tools:
            return
        for call in self._tools:
            if not call.started:  # never named: open it now so its arguments are not lost
                self._start_tool(call, out)
                if call.buffered:
                    out.append(
                        ToolCallDelta(call.item_id, call.output_index, "".join(call.buffered))
                    )
            out.append(ItemFinished("function_call", call.item_id, call.output_index, status))
        self._tools = []
        self._tools_by_index.clear()
        self._tools_by_upstream_id.clear()

    def _close_all(self, out: list[Signal], status: ItemStatus) -> None:
        self._close_reasoning(out, status)
        self._close_message(out, status)
        self._close_tools(out, status)

    def _flush_think(self, out: list[Signal]) -> None:
        if self._think is not None:
            for is_reasoning, piece in self._think.flush():
                if is_reasoning:
                    self._reasoning_text(piece, out)
                else:
                    self._text(piece, None, out)

    def _on_finish_reason(self, reason: str, out: list[Signal]) -> None:
        self._finish_reason = reason
        self._flush_think(out)
        cut = reason in ("length", "content_filter")
        self._close_all(out, "incomplete" if cut else "completed")

    def _end(
        self,
        out: list[Signal],
        status: StreamStatus,
        *,
        reason: str | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        self.ended = True
        if status == "failed":
            self._flush_think(out)
        self._close_all(out, "completed" if status == "completed" else "incomplete")
        out.append(
            StreamFinished(
                status,
                usage=self._usage,
                incomplete_reason=reason,
                error_code=code,
                error_message=message,
            )
        )


def _detail_text(detail: dict[str, Any]) -> str:
    kind = detail.get("type")
    if kind == "reasoning.text":
        return str(detail.get("text") or "")
    if kind == "reasoning.summary":
        return str(detail.get("summary") or "")
    return ""


def _url_citations(annotations: list[Any]) -> list[UrlCitation]:
    """``delta.annotations`` of OpenAI search models (``{type: "url_citation", url_citation:
    {url, title, start_index, end_index}}``; the same fields unnested are read too)."""
    out: list[UrlCitation] = []
    for entry in annotations:
        if not isinstance(entry, dict) or entry.get("type") != "url_citation":
            continue
        fields = entry.get("url_citation")
        if not isinstance(fields, dict):
            fields = entry
        url, title = fields.get("url"), fields.get("title")
        start, end = fields.get("start_index"), fields.get("end_index")
        if isinstance(url, str) and type(start) is int and type(end) is int:
            out.append(
                UrlCitation(url, title if isinstance(title, str) and title else url, start, end)
            )
    return out


#: A citation marker: ``[n]``, the ``n``-th source (1-based).
_MARKER = re.compile(r"\[([1-9][0-9]{0,3})\]")


def url_annotations(
    text: str, sources: tuple[CitedSource, ...], citations: tuple[UrlCitation, ...]
) -> list[AnnotationURLCitation]:
    """The ``url_citation`` annotations of a message's ``text``, in the order of their place.

    ``citations`` are placed where the upstream said. Each ``[n]`` marker with ``1 <= n <=
    len(sources)`` cites ``sources[n - 1]`` over the marker's span (``text[start:end] ==
    "[n]"``); a source that no marker cites is listed after them, zero-width at the end of the
    text (``start_index == end_index == len(text)``), so no source the upstream gave is lost.
    Offsets count characters (Unicode code points, Python string indexes), as OpenAI does.
    """
    placed = [
        AnnotationURLCitation.build(
            url=c.url, title=c.title, start_index=c.start_index, end_index=c.end_index
        )
        for c in citations
    ]
    if not sources:
        return placed
    cited: set[int] = set()
    for marker in _MARKER.finditer(text) if "[" in text else ():
        n = int(marker.group(1))
        if n <= len(sources):
            source = sources[n - 1]
            cited.add(n - 1)
            placed.append(
                AnnotationURLCitation.build(
                    url=source.url,
                    title=source.title,
                    start_index=marker.start(),
                    end_index=marker.end(),
                )
            )
    placed.sort(key=lambda a: a.start_index)
    end = len(text)
    placed.extend(
        AnnotationURLCitation.build(url=s.url, title=s.title, start_index=end, end_index=end)
        for k, s in enumerate(sources)
        if k not in cited
    )
    return placed


def _content_blocks(blocks: list[Any]) -> list[tuple[bool, str]]:
    """Content given as a list of blocks (Mistral): text blocks and thinking blocks."""
    out: list[tuple[bool, str]] = []
    for block in blocks:
        if isinstance(block, str):
            out.append((False, block))
        elif isinstance(block, dict):
            kind = block.get("type")
            if kind == "text" and block.get("text"):
                out.append((False, str(block["text"])))
            elif kind == "thinking":
                thinking = block.get("thinking")
                if isinstance(thinking, str):
                    out.append((True, thinking))
                elif isinstance(thinking, list):
                    out.extend(
                        (True, str(t.get("text", ""))) for t in thinking if isinstance(t, dict)
                    )
    return [(r, t) for r, t in out if t]


def _map_logprobs(entries: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "token": e.token,
            "logprob": e.logprob,
            "bytes": e.bytes or [],
            "top_logprobs": [
                {"token": t.token, "logprob": t.logprob, "bytes": t.bytes or []}
                for t in e.top_logprobs
            ],
        }
        for e in entries
    ]


def _map_usage(usage: Any) -> ResponseUsage:
    """Chat ``usage`` -> :class:`ResponseUsage` (see "Usage" in the module docstring)."""
    return _map_usage_fields(
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.total_tokens,
        usage.prompt_tokens_details or {},
        usage.completion_tokens_details or {},
        usage.model_extra or {},
    )


def _map_usage_dict(usage: dict[str, Any]) -> ResponseUsage:
    """:func:`_map_usage` for the ``usage`` object of a chunk
    :meth:`~rxresponses.types.chat.FastChunkReader.read_end` read (its fields of the types a
    :class:`~rxresponses.types.chat.CompletionUsage` keeps; the others its extras)."""
    get = usage.get
    return _map_usage_fields(
        get("prompt_tokens", 0),
        get("completion_tokens", 0),
        get("total_tokens", 0),
        get("prompt_tokens_details") or {},
        get("completion_tokens_details") or {},
        usage,  # the declared fields are never read as extras
    )


def _map_usage_fields(
    prompt_tokens: Any,
    completion_tokens: Any,
    total_tokens: Any,
    prompt_details: dict[str, Any],
    completion_details: dict[str, Any],
    extra: dict[str, Any],
) -> ResponseUsage:
    cached = prompt_details.get("cached_tokens")
    if cached is None:
        cached = extra.get("prompt_cache_hit_tokens")  # DeepSeek
    total = total_tokens or (prompt_tokens + completion_tokens)
    input_details = {
        "cached_tokens": int(cached or 0),
        "cache_write_tokens": int(prompt_details.get("cache_write_tokens") or 0),
    }
    reasoning = int(completion_details.get("reasoning_tokens") or 0)
    output_details = {"reasoning_tokens": reasoning}
    output = completion_tokens
    if reasoning and type(output) is int and type(prompt_tokens) is int:
        # xAI counts reasoning tokens beside completion_tokens, not in them; its own total
        # shows it (prompt + completion + reasoning == total). The Responses API counts them in
        # output_tokens, so input + output == total. Other providers' numbers stay as given.
        given = prompt_tokens + output
        if given != total and given + reasoning == total:
            output += reasoning
    values: dict[str, Any] = {
        "input_tokens": prompt_tokens,
        "input_tokens_details": input_details,
        "output_tokens": output,
        "output_tokens_details": output_details,
        "total_tokens": total,
    }
    if not (type(prompt_tokens) is int and type(output) is int and type(total) is int):
        return ResponseUsage(**values)  # a chunk built without validation: pydantic judges
    # The counts of a validated chunk are ints: build without validating them again.
    values["input_tokens_details"] = InputTokensDetails.build(**input_details)
    values["output_tokens_details"] = OutputTokensDetails.build(**output_details)
    return ResponseUsage.build(**values)


def split_by_item(
    *, choice_index: int = 0, think_tags: bool = True, ids: IdFactory = random_ids
) -> Callable[[Observable[ChatCompletionChunk | SSEMessage]], Observable[Signal]]:
    """Implementation of :func:`rxresponses.operators.split_by_item`."""
    return stage_operator(
        lambda: ChunkSplitter(choice_index=choice_index, think_tags=think_tags, ids=ids)
    )

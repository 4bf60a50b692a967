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
* **Inline ``<think>``** at the start of the content (leading whitespace allowed) is split out as
  reasoning while streaming, tags cut across chunks included; whitespace after ``</think>`` is
  dropped. On by default (``think_tags=False`` turns it off).
* **Terminal status**: ``stop`` / ``tool_calls`` / ``function_call`` -> completed; ``length`` ->
  incomplete (``max_output_tokens``); ``content_filter`` -> incomplete (``content_filter``); an
  ``error`` in a chunk, an upstream error or undecodable data -> failed; the upstream ending with no
  ``finish_reason`` -> failed (``server_error``): "ended before a finish_reason" when the input
  just completed (a cut connection, or a source with no ``[DONE]``), "sent [DONE] without a
  finish_reason for choice N" when the ``[DONE]`` message came (``parse_chunks()`` passes it on).
  Items open at that moment close with status ``incomplete``; text that arrived is kept.
* **Usage** is the last non-null ``usage`` (or ``x_groq.usage``) seen anywhere in the stream.
* **The stream starts** (:class:`StreamStarted`, with the model and creation time) at the first
  chunk that has a ``model`` or ``choices``: Azure's leading prompt-filter chunk (empty ``id``,
  ``model`` and ``created``, no choices) does not blank them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable

from ..errors import RxResponsesError
from ..sse import SSEMessage
from ..types.aliases import IdFactory
from ..types.chat import ChatCompletionChunk, ChoiceDelta, ChoiceLogprobs, FastDelta
from ..types.response import InputTokensDetails, OutputTokensDetails, ResponseUsage
from ..types.signals import (
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
)
from ._core import random_ids, stage_operator

__all__ = ["ChunkSplitter", "IdFactory", "ThinkTagSplitter", "random_ids", "split_by_item"]

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
    __slots__ = ("call_id", "index", "item_id", "kind", "name", "output_index", "started")

    def __init__(self, kind: ItemKind, item_id: str, output_index: int) -> None:
        self.kind: ItemKind = kind
        self.item_id = item_id
        self.output_index = output_index
        self.started = False
        self.call_id: str | None = None
        self.name: str | None = None
        self.index: int | None = None


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
        self._started = False
        self._ended = False
        self._next_index = 0
        self._message: _Item | None = None
        self._reasoning: _Item | None = None
        self._tools: list[_ToolCall] = []
        self._tools_by_index: dict[int, _ToolCall] = {}
        self._tools_by_upstream_id: dict[str, _ToolCall] = {}
        self._finish_reason: str | None = None
        self._usage: ResponseUsage | None = None
        #: Chunks of other choices that were not converted (``n > 1``).
        self.dropped_choices = 0

    # -- public API ---------------------------------------------------------------------------

    name = "split_by_item()"
    fresh_output = True

    @property
    def started(self) -> bool:
        """True once :class:`StreamStarted` was sent."""
        return self._started

    @property
    def ended(self) -> bool:
        """True once :class:`StreamFinished` was sent."""
        return self._ended

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
        if self._ended:
            return out
        if not self._started and (chunk.model or chunk.choices or chunk.error is not None):
            # A leading chunk with no model and no choices (Azure's prompt-filter chunk) does
            # not start the stream: the model and creation time come from the next one.
            self._start(chunk, out)
        usage = chunk.usage if chunk.usage is not None else chunk.effective_usage
        if usage is not None:
            self._usage = _map_usage(usage)
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
        message = self._message
        if (
            message is not None
            and content
            and not reasoning
            and tool is None
            and (self._think is None or self._think.in_text)
            and not self._ended
            and self._finish_reason is None
        ):
            # Text for the open message (no reasoning or tool call is open beside it): what
            # _content() -> _text() -> _open_message() come to, without the calls.
            return [TextDelta(message.item_id, message.output_index, content, None)]
        out: list[Signal] = []
        if self._ended or self._finish_reason is not None:
            return out
        if reasoning:
            self._reasoning_text(reasoning, out)
        if content:
            self._content(content, None, out)
        if tool is not None:
            self._tool(*tool, out)
        return out

    # -- for the fused pipeline's fast lane (rxresponses.operators._fused) ----------------------

    def text_passes_whole(self) -> bool:
        """True when :meth:`handle_fast` turns string content into one :class:`TextDelta`
        unchanged (the ``<think>`` splitter is off or has decided), given an open message."""
        think = self._think
        return think is None or think.in_text

    def arguments_lane(self, index: int, item_id: str) -> Callable[[str], str] | None:
        """For the started call ``item_id`` at tool-call ``index``: a function doing what
        :meth:`handle_fast` does with a fragment that names no id and no function name for that
        index (the new part of the arguments, ``""`` when there is none), or ``None`` if such
        a fragment would not reach that call. Right while no other chunk changes the calls."""
        call = self._tools_by_index.get(index)
        if call is None or call.item_id != item_id or not call.started:
            return None
        new_arguments = self._new_arguments

        def arguments(fragment: str) -> str:
            return new_arguments(call, fragment)

        return arguments

    def fail(self, exc: Exception) -> list[Signal]:
        """The upstream raised ``exc``: close everything and report a failed stream."""
        out: list[Signal] = []
        if self._ended:
            return out
        if not self._started:
            self._start(None, out)
        code = exc.code if isinstance(exc, RxResponsesError) else "server_error"
        self._end(out, "failed", code=code, message=str(exc) or type(exc).__name__)
        return out

    def finish(self, *, done: bool = False) -> list[Signal]:
        """The upstream completed (``done``: with ``data: [DONE]``): close what is open and
        report the terminal status."""
        out: list[Signal] = []
        if self._ended:
            return out
        if not self._started:
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
        self._started = True
        if chunk is None:
            out.append(StreamStarted(model="", created_at=0))
        else:
            out.append(StreamStarted(chunk.model, int(chunk.created), chunk.id))

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
            out.append(ItemFinished("reasoning", item.item_id, item.output_index, status))

    def _close_message(self, out: list[Signal], status: ItemStatus = "completed") -> None:
        item = self._message
        if item is not None:
            self._message = None
            out.append(ItemFinished("message", item.item_id, item.output_index, status))

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
        self._ended = True
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
    prompt_details = usage.prompt_tokens_details or {}
    completion_details = usage.completion_tokens_details or {}
    extra = usage.model_extra or {}
    cached = prompt_details.get("cached_tokens")
    if cached is None:
        cached = extra.get("prompt_cache_hit_tokens")  # DeepSeek
    total = usage.total_tokens or (usage.prompt_tokens + usage.completion_tokens)
    input_details = {
        "cached_tokens": int(cached or 0),
        "cache_write_tokens": int(prompt_details.get("cache_write_tokens") or 0),
    }
    output_details = {"reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)}
    values: dict[str, Any] = {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": input_details,
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": output_details,
        "total_tokens": total,
    }
    counts = (usage.prompt_tokens, usage.completion_tokens, total)
    if not all(type(count) is int for count in counts):
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

"""``split_by_item | collect_reasoning | accumulate_text | join_tool_args | assemble`` in one hop.

Composing the five operators costs five Rx subscriptions and an observer call per hop per chunk.
:func:`fused_chat_to_responses` drives the *same* state machines (:class:`ChunkSplitter`,
:class:`ReasoningStage`, :class:`TextStage`, :class:`ToolCallStage`, :class:`Assembler`) back to
back inside one subscription, with the same error semantics as the composed chain:

* an exception from the splitter fails the stream through the splitter (``error`` +
  ``response.failed`` with everything open closed and kept);
* an exception from an item stage reaches the assembler as an upstream error (``error`` +
  ``response.failed``);
* a :class:`~rxresponses.errors.PipelineError` from the assembler goes to ``on_error``.

It is what :func:`rxresponses.pipelines.chat_to_responses` returns. Compose the operators yourself
when you want a stage of your own between them; the output is the same (a test holds them equal).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reactivex import Observable, abc

from ..errors import PipelineError
from ..types.chat import ChatCompletionChunk
from ..types.signals import StreamFinished
from ._accumulate_text import TextStage
from ._assemble import Assembler, check_echo
from ._collect_reasoning import ReasoningStage
from ._join_tool_args import ToolCallStage
from ._split_by_item import ChunkSplitter, IdFactory, random_ids

__all__ = ["fused_chat_to_responses"]


def fused_chat_to_responses(
    *,
    response_id: str | None = None,
    model: str | None = None,
    created_at: int | None = None,
    echo: Mapping[str, Any] | None = None,
    choice_index: int = 0,
    think_tags: bool = True,
    reasoning_as_summary: bool = False,
    ids: IdFactory = random_ids,
) -> Callable[[Observable[ChatCompletionChunk]], Observable[Any]]:
    """The five conversion stages in one subscription (see the module docstring)."""

    check_echo(echo)  # invalid echoed fields raise now, not mid-stream

    def _fused(source: Observable[ChatCompletionChunk]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            splitter = ChunkSplitter(choice_index=choice_index, think_tags=think_tags, ids=ids)
            asm = Assembler(
                response_id=response_id, model=model, created_at=created_at, echo=echo, ids=ids
            )
            on_next_down = observer.on_next
            split_done = False

            reasoning, text, tools = (
                ReasoningStage(as_summary=reasoning_as_summary).handle,
                TextStage().handle,
                ToolCallStage().handle,
            )
            out: list[Any] = []
            to_asm = asm.handle

            # One function per stage boundary: a value a stage does not own (None) goes on as is.
            def after_tools(value: Any) -> None:
                res = tools(value)
                if res is None:
                    out.extend(to_asm(value))
                else:
                    for v in res:
                        out.extend(to_asm(v))

            def after_text(value: Any) -> None:
                res = text(value)
                if res is None:
                    after_tools(value)
                else:
                    for v in res:
                        after_tools(v)

            def after_reasoning(value: Any) -> None:
                res = reasoning(value)
                if res is None:
                    after_text(value)
                else:
                    for v in res:
                        after_text(v)

            def run_stages(signals: list[Any]) -> None:
                """Push the splitter's signals through the item stages and the assembler."""
                try:
                    for signal in signals:
                        after_reasoning(signal)
                        if asm.ended:
                            break
                except PipelineError as exc:
                    flush()
                    asm.ended = True
                    observer.on_error(exc)
                    return
                except Exception as exc:  # an item stage failed: the assembler closes the stream
                    out.extend(asm.fail(exc))
                flush()
                if asm.ended:
                    observer.on_completed()

            def flush() -> None:
                for value in out:
                    on_next_down(value)
                out.clear()

            def after_split(signals: list[Any]) -> None:
                nonlocal split_done
                if signals and isinstance(signals[-1], StreamFinished):
                    split_done = True
                run_stages(signals)

            def on_next(chunk: ChatCompletionChunk) -> None:
                if split_done or asm.ended:
                    return
                try:
                    signals = splitter.handle(chunk)
                except Exception as exc:
                    signals = splitter.fail(exc)
                after_split(signals)

            def on_error(exc: Exception) -> None:
                if not (split_done or asm.ended):
                    after_split(splitter.fail(exc))

            def on_completed() -> None:
                if not (split_done or asm.ended):
                    after_split(splitter.finish())

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _fused

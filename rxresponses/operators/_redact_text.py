"""Masking secrets in streamed text, correct across fragment boundaries.

:class:`RedactStage` is the state machine; :func:`redact_text` its operator shell. A secret may
arrive split over any number of deltas (``"sk-li"`` + ``"ve-123"``): replacing it in each delta
on its own lets it through. The stage keeps, per part of each item, only the text that may still
become a secret: the longest end of what arrived that is the start of a secret. Everything before
it is final and goes on at once, with every whole secret replaced; the rest waits for the next
delta or, at the latest, the item's end. The text that comes out, joined, is exactly the joined
input with every secret replaced (leftmost first; of secrets starting at the same place, the
longest).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from reactivex import Observable

from ..types.aliases import SignalOrEvent
from ..types.signals import ItemFinished, ReasoningDelta, RefusalDelta, TextDelta
from ._core import stage_operator

__all__ = ["RedactStage", "redact_text"]

_TextSignal = TextDelta | RefusalDelta | ReasoningDelta
_TEXT_SIGNALS = (TextDelta, RefusalDelta, ReasoningDelta)


class RedactStage:
    """Replaces every occurrence of the given strings in text, refusal and reasoning deltas.

    Args:
        secrets: The strings to mask (non-empty).
        replacement: What each occurrence becomes.

    A delta whose text changed or waited (part of a possible secret) loses its ``logprobs``:
    they name the tokens, so they would repeat the secret.
    """

    name = "redact_text()"
    handles = frozenset({TextDelta, RefusalDelta, ReasoningDelta, ItemFinished})

    def __init__(self, secrets: Iterable[str], replacement: str = "[redacted]") -> None:
        words = sorted(set(secrets), key=len, reverse=True)
        if not words or any(not w for w in words):
            raise ValueError("redact_text() needs at least one secret, and no empty one")
        # Longest first: of the secrets starting at one place, the alternation takes the longest.
        self._pattern = re.compile("|".join(re.escape(w) for w in words))
        self._prefixes = frozenset(w[:k] for w in words for k in range(1, len(w)))
        self._longest = len(words[0])
        self._replacement = replacement
        # (signal type, item id) -> (held text, the last signal of that part)
        self._held: dict[tuple[type, str], tuple[str, _TextSignal]] = {}

    def handle(self, value: Any) -> list[Any] | None:
        if isinstance(value, ItemFinished):
            out = self._flush(lambda key: key[1] == value.item_id)
            if not out:
                return None
            out.append(value)
            return out
        if not isinstance(value, _TEXT_SIGNALS):
            return None
        key = (type(value), value.item_id)
        held, _ = self._held.pop(key, ("", value))
        text = held + value.text
        final, rest = self._split(text)
        if rest:
            self._held[key] = (rest, value)
        if final == value.text:
            return None  # nothing held, nothing masked: the delta as it came, logprobs and all
        return [self._signal(value, final)] if final else []

    def finish(self) -> list[Any]:
        return self._flush(lambda key: True)

    def fail(self, exc: Exception) -> list[Any]:
        return self._flush(lambda key: True)

    def _split(self, text: str) -> tuple[str, str]:
        """(final text with the secrets masked, the end that may still become a secret)."""
        out: list[str] = []
        pos = 0
        while True:
            hold = self._hold_start(text, pos)
            # A whole secret that starts before the held end is final (no longer one can start
            # there: that start would be held), even if it reaches into the held end.
            match = self._pattern.search(text, pos)
            if match is None or match.start() >= hold:
                out.append(text[pos:hold])
                return "".join(out), text[hold:]
            out.append(text[pos : match.start()])
            out.append(self._replacement)
            pos = match.end()

    def _hold_start(self, text: str, pos: int) -> int:
        """Where the longest end of ``text[pos:]`` that starts a secret begins (else its end)."""
        for start in range(max(pos, len(text) - self._longest + 1), len(text)):
            if text[start:] in self._prefixes:
                return start
        return len(text)

    def _flush(self, which: Callable[[tuple[type, str]], bool]) -> list[Any]:
        out: list[Any] = []
        for key in [k for k in self._held if which(k)]:
            held, last = self._held.pop(key)
            text = self._pattern.sub(lambda _m: self._replacement, held)
            if text:
                out.append(self._signal(last, text))
        return out

    @staticmethod
    def _signal(template: _TextSignal, text: str) -> _TextSignal:
        if isinstance(template, TextDelta):
            return replace(template, text=text, logprobs=None)
        return replace(template, text=text)


def redact_text(
    secrets: Iterable[str], replacement: str = "[redacted]"
) -> Callable[[Observable[SignalOrEvent]], Observable[SignalOrEvent]]:
    """See :func:`rxresponses.operators.redact_text`."""
    words = list(secrets)
    RedactStage(words, replacement)  # check the arguments when the pipeline is built
    return stage_operator(lambda: RedactStage(words, replacement))

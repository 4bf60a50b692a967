"""Type aliases shared by the operators, the pipelines and the sinks, kept in one place.

>>> def redact(source: Observable[SignalOrEvent]) -> Observable[SignalOrEvent]: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeAlias

from .events import ResponseStreamEvent
from .signals import Signal

__all__ = ["IdFactory", "ReasoningEventNames", "SignalOrEvent"]

#: Makes an id from a prefix (``msg``, ``rs``, ``fc``, ``call``, ``resp``).
IdFactory: TypeAlias = Callable[[str], str]

#: What flows between :func:`~rxresponses.operators.split_by_item` and
#: :func:`~rxresponses.operators.assemble`: item signals, and the events the item operators made
#: of them.
SignalOrEvent: TypeAlias = Signal | ResponseStreamEvent

#: The names written for raw reasoning text events: ``"openai"`` (``response.reasoning_text.delta``
#: / ``.done``, what OpenAI and its SDKs send) or ``"open-responses"`` (``response.reasoning.delta``
#: / ``.done``, the names the Open Responses specification's streaming schema used). Both are
#: always read.
ReasoningEventNames: TypeAlias = Literal["openai", "open-responses"]

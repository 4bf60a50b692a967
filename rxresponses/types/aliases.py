"""Type aliases shared by the operators, the pipelines and the sinks, kept in one place.

>>> def redact(source: Observable[SignalOrEvent]) -> Observable[SignalOrEvent]: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from .events import ResponseStreamEvent
from .signals import Signal

__all__ = ["IdFactory", "SignalOrEvent"]

#: Makes an id from a prefix (``msg``, ``rs``, ``fc``, ``call``, ``resp``).
IdFactory: TypeAlias = Callable[[str], str]

#: What flows between :func:`~rxresponses.operators.split_by_item` and
#: :func:`~rxresponses.operators.assemble`: item signals, and the events the item operators made
#: of them.
SignalOrEvent: TypeAlias = Signal | ResponseStreamEvent

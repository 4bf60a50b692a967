"""The one registry of event kinds, derived from the ``event_kind`` each event class declares.

Every place that needs to know "is this a delta, a ``.done``, a terminal event; which field holds
the text; which part does it fill" reads it here: the fold (``final_response()``), the assembler,
the terminal renderer, the logging sink and the server. A new event class declares its
:class:`~rxresponses.types.events.EventKind` once, and all of them learn it.
"""

from __future__ import annotations

from typing import Final

from ._base import WireModel
from .events import _EVENT_CLASSES, EventKind, EventRole

__all__ = [
    "DELTA_CLASSES",
    "DELTA_TYPES",
    "DONE_TYPES",
    "EVENT_KINDS",
    "LIFECYCLE_TYPES",
    "TERMINAL_TYPES",
    "EventKind",
    "event_type",
    "kind_of",
    "types_with_role",
]


def _kinds() -> dict[str, EventKind]:
    kinds: dict[str, EventKind] = {}
    for type_, cls in _EVENT_CLASSES.items():
        kind = getattr(cls, "event_kind", None)
        if isinstance(kind, EventKind):
            kinds[type_] = kind
    return kinds


#: Event ``type`` -> its kind, for every modelled event that declares one.
EVENT_KINDS: Final[dict[str, EventKind]] = _kinds()


def event_type(cls: type[WireModel]) -> str:
    """The ``type`` string of an event class: the default of its ``type`` field, the one place
    each event's name is written. Stages resolve it once (per stage or per part), not per event.
    """
    field = cls.model_fields.get("type")
    value = None if field is None else field.default
    if not isinstance(value, str):
        raise TypeError(f"{cls.__name__} declares no type string")
    return value


def kind_of(event_type: str) -> EventKind | None:
    """The kind of an event ``type`` (``None`` for events with no role in the fold)."""
    return EVENT_KINDS.get(event_type)


def types_with_role(*roles: EventRole) -> frozenset[str]:
    """The event types whose kind has one of ``roles``."""
    return frozenset(t for t, k in EVENT_KINDS.items() if k.role in roles)


#: ``response.created``, ``response.queued``, ``response.in_progress``.
LIFECYCLE_TYPES: Final = types_with_role("lifecycle")
#: ``response.completed``, ``response.incomplete``, ``response.failed``: exactly one ends a stream.
TERMINAL_TYPES: Final = types_with_role("terminal")
#: The events that carry a ``delta`` fragment of an item's text.
DELTA_TYPES: Final = types_with_role("delta")
#: The events that carry an item's whole text (replacing the fragments).
DONE_TYPES: Final = types_with_role("done")
#: The classes of :data:`DELTA_TYPES`.
DELTA_CLASSES: Final[frozenset[type[WireModel]]] = frozenset(_EVENT_CLASSES[t] for t in DELTA_TYPES)

"""A stdlib :mod:`logging` sink: one structured record per event.

>>> events.subscribe(LoggingSink("myapp.llm"))                           # doctest: +SKIP
>>> events.subscribe(LoggingSink(logger, aggregate_deltas=True))        # doctest: +SKIP

Every record carries these ``extra`` attributes (``None`` when the event has no such field), ready
for a structured formatter (``%(event_type)s``, or a JSON formatter that reads the record's dict):

* ``event_type``, ``sequence_number``, ``output_index``, ``item_id``;
* when present: ``content_index``, ``delta`` (delta events), ``text`` (``*.done`` events and
  aggregated items), ``item_type``, ``status``, ``response_id``, ``model``, ``usage`` (a dict),
  ``error_code`` and ``error_message``.

Levels: ``error`` and ``response.failed`` log at ``ERROR``, ``response.incomplete`` at
``WARNING``, deltas at ``delta_level`` (``DEBUG``), everything else at ``level`` (``INFO``).

With ``aggregate_deltas=True`` the deltas of an item are not logged one by one: the item's
``response.output_item.done`` record carries their joined text (``text``) and their number
(``deltas``) instead. An item that never finished (a cut stream) is logged once when the stream
ends, with what arrived.
"""

from __future__ import annotations

import logging
from typing import Any

from reactivex import abc

from ..types._base import to_dict
from ..types.registry import DELTA_TYPES, EVENT_KINDS, LIFECYCLE_TYPES, TERMINAL_TYPES

__all__ = ["DELTA_EVENT_TYPES", "LoggingSink", "logging_sink"]

#: The event types that carry a ``delta`` fragment of an item (from the registry).
DELTA_EVENT_TYPES = DELTA_TYPES
_LIFECYCLE = LIFECYCLE_TYPES | TERMINAL_TYPES


class LoggingSink(abc.ObserverBase[Any]):
    """An observer that logs every event as one structured :class:`logging.LogRecord`.

    Args:
        logger: A logger or a logger name (default: ``"rxresponses.events"``).
        level: Level of ordinary events.
        delta_level: Level of delta events (ignored for aggregated deltas).
        aggregate_deltas: Log one record per item with the joined text of its deltas, at the
            item's ``output_item.done``, instead of one record per delta.
    """

    def __init__(
        self,
        logger: logging.Logger | str | None = None,
        *,
        level: int = logging.INFO,
        delta_level: int = logging.DEBUG,
        aggregate_deltas: bool = False,
    ) -> None:
        if logger is None or isinstance(logger, str):
            logger = logging.getLogger(logger or "rxresponses.events")
        self.logger = logger
        self.level = level
        self.delta_level = delta_level
        self.aggregate_deltas = aggregate_deltas
        # item_id -> (last delta type, output_index, fragments)
        self._pending: dict[str, tuple[str, int | None, list[str]]] = {}

    # -- the observer ------------------------------------------------------------------------

    def on_next(self, value: Any) -> None:
        """Log one event (or buffer it, for an aggregated delta)."""
        kind = str(getattr(value, "type", type(value).__name__))
        if kind in DELTA_EVENT_TYPES:
            item_id = getattr(value, "item_id", None)
            if self.aggregate_deltas and item_id is not None:
                if not self.logger.isEnabledFor(self.level):
                    return
                _, _, fragments = self._pending.get(item_id, (kind, None, []))
                fragments.append(str(getattr(value, "delta", "")))
                self._pending[item_id] = (kind, getattr(value, "output_index", None), fragments)
                return
            if not self.logger.isEnabledFor(self.delta_level):
                return
            extra = self._fields(value, kind)
            extra["delta"] = getattr(value, "delta", None)
            self.logger.log(
                self.delta_level,
                "%s #%s item=%s delta=%r",
                kind,
                extra["sequence_number"],
                extra["item_id"],
                extra["delta"],
                extra=extra,
            )
            return
        level = self._level(kind)
        if not self.logger.isEnabledFor(level):
            if kind == "response.output_item.done":
                self._pending.pop(str(getattr(getattr(value, "item", None), "id", None)), None)
            return
        extra = self._fields(value, kind)
        message = "%s #%s"
        args: list[Any] = [kind, extra["sequence_number"]]
        if kind in _LIFECYCLE:
            message += " response=%s status=%s"
            args += [extra["response_id"], extra["status"]]
        elif kind == "error":
            message += " %s: %s"
            args += [extra["error_code"], extra["error_message"]]
        elif kind in ("response.output_item.added", "response.output_item.done"):
            message += " item=%s type=%s"
            args += [extra["item_id"], extra["item_type"]]
            if kind.endswith(".done"):
                pending = self._pending.pop(str(extra["item_id"]), None)
                if pending is not None:
                    extra["text"] = "".join(pending[2])
                    extra["deltas"] = len(pending[2])
                    message += " deltas=%d text=%r"
                    args += [extra["deltas"], extra["text"]]
        elif extra["item_id"] is not None:
            message += " item=%s"
            args.append(extra["item_id"])
        self.logger.log(level, message, *args, extra=extra)

    def on_error(self, error: Exception) -> None:
        """Log the exception the stream ended with (after any unfinished items)."""
        self._flush_pending()
        self.logger.error(
            "stream error: %s",
            error,
            extra={
                "event_type": "rxresponses.stream_error",
                "sequence_number": None,
                "output_index": None,
                "item_id": None,
                "error_code": getattr(error, "code", None),
                "error_message": str(error),
            },
        )

    def on_completed(self) -> None:
        """Log the items that never finished, when deltas are aggregated."""
        self._flush_pending()

    # -- helpers -----------------------------------------------------------------------------

    def _level(self, kind: str) -> int:
        if kind in ("error", "response.failed"):
            return logging.ERROR
        if kind == "response.incomplete":
            return logging.WARNING
        return self.level

    def _fields(self, event: Any, kind: str) -> dict[str, Any]:
        extra: dict[str, Any] = {
            "event_type": kind,
            "sequence_number": getattr(event, "sequence_number", None),
            "output_index": getattr(event, "output_index", None),
            "item_id": getattr(event, "item_id", None),
        }
        for name in ("content_index", "summary_index"):
            value = getattr(event, name, None)
            if value is not None:
                extra[name] = value
        done = EVENT_KINDS.get(kind)
        if done is not None and done.role == "done" and done.text_field is not None:
            value = getattr(event, done.text_field, None)
            if isinstance(value, str):
                extra["text"] = value
        item = getattr(event, "item", None)
        if item is not None:
            extra["item_id"] = getattr(item, "id", None)
            extra["item_type"] = getattr(item, "type", None)
            extra["status"] = getattr(item, "status", None)
        response = getattr(event, "response", None)
        if response is not None:
            extra["response_id"] = response.id
            extra["model"] = response.model
            extra["status"] = response.status
            if response.usage is not None:
                extra["usage"] = to_dict(response.usage)
            if response.error is not None:
                extra["error_code"] = response.error.code
                extra["error_message"] = response.error.message
            if response.incomplete_details is not None:
                extra["incomplete_reason"] = response.incomplete_details.reason
        if kind == "error":
            extra["error_code"] = getattr(event, "error_code", None)
            extra["error_message"] = getattr(event, "error_message", "")
        return extra

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for item_id, (kind, output_index, fragments) in pending.items():
            text = "".join(fragments)
            self.logger.log(
                self.level,
                "%s x%d item=%s (item not finished) text=%r",
                kind,
                len(fragments),
                item_id,
                text,
                extra={
                    "event_type": kind,
                    "sequence_number": None,
                    "output_index": output_index,
                    "item_id": item_id,
                    "text": text,
                    "deltas": len(fragments),
                },
            )


def logging_sink(
    logger: logging.Logger | str | None = None,
    *,
    level: int = logging.INFO,
    delta_level: int = logging.DEBUG,
    aggregate_deltas: bool = False,
) -> LoggingSink:
    """An observer logging every event (see :class:`LoggingSink`)."""
    return LoggingSink(
        logger, level=level, delta_level=delta_level, aggregate_deltas=aggregate_deltas
    )

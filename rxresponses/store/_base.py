"""The storage contract: records, errors, the :class:`ResponseStore` protocol and small helpers.

Everything here is backend-neutral. Events travel as :class:`StoredEvent` (sequence number, type,
the event's wire JSON text): the store never re-serializes them, so the bytes a client gets on a
replay are the bytes it would have got live.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple, Protocol, runtime_checkable

from ..errors import RxResponsesError
from ..types._base import to_json
from ..types.events import ResponseCompletedEvent, ResponseFailedEvent, ResponseIncompleteEvent
from ..types.registry import TERMINAL_TYPES
from ..types.response import Response, ResponseError

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_EVENT_TYPES",
    "InputItemsPage",
    "InvalidPageError",
    "ResponseStore",
    "RunState",
    "StoreError",
    "StoreFullError",
    "StoreStats",
    "StoreUnavailableError",
    "StoredEvent",
    "StoredResponse",
    "event_from_json",
    "owner_key",
    "terminal_event_for",
]

#: The event types that end a Responses stream (exactly one per stream).
TERMINAL_EVENT_TYPES: Final = TERMINAL_TYPES
#: Statuses of a response whose run has not finished.
ACTIVE_STATUSES: Final = frozenset({"queued", "in_progress"})
#: ``limit`` bounds of the input-items list (OpenAI's: 1 to 100, default 20).
MAX_PAGE_LIMIT: Final = 100


class StoreError(RxResponsesError):
    """Base class of the errors raised by :mod:`rxresponses.store`."""


class StoreUnavailableError(StoreError):
    """The backend (database or Redis) cannot be reached or refused the operation.

    The server answers a new stored request with 503; a stream already running goes on without
    storing (its log ends where the backend went away).
    """


class StoreFullError(StoreError):
    """The store reached its size cap (``max_responses`` / ``max_bytes``): nothing new is stored.

    The server answers 503. Old responses leave through the retention period or ``delete``.
    """


class InvalidPageError(StoreError, ValueError):
    """A pagination argument is invalid; :attr:`param` names it (the server answers 400).

    Attributes:
        param: ``"limit"``, ``"order"`` or ``"after"``.
    """

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class StoredEvent(NamedTuple):
    """One event of a response's log: its sequence number, its ``type`` and its wire JSON."""

    sequence_number: int
    type: str
    data: str

    @property
    def terminal(self) -> bool:
        """Whether this event ends the stream (``response.completed/incomplete/failed``)."""
        return self.type in TERMINAL_EVENT_TYPES


def event_from_json(data: str) -> StoredEvent:
    """A :class:`StoredEvent` from an event's wire JSON (reads ``sequence_number`` and ``type``).

    Raises:
        ValueError: ``data`` is not a JSON object with an integer ``sequence_number``.
    """
    obj = json.loads(data)
    seq = obj.get("sequence_number") if isinstance(obj, dict) else None
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ValueError("an event needs an integer sequence_number to be logged")
    return StoredEvent(seq, str(obj.get("type", "")), data)


class RunState(NamedTuple):
    """Where a response's run stands: what a tail checks when the live events pause."""

    status: str
    lease_until: float | None
    last_sequence_number: int

    @property
    def active(self) -> bool:
        """Whether the run has not finished (``queued`` or ``in_progress``)."""
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A stored response as the store returns it.

    Attributes:
        id: The response id (``resp_...``).
        owner: :func:`owner_key` of the credential that created it.
        status: ``queued``, ``in_progress``, ``completed``, ``incomplete``, ``failed`` or
            ``cancelled``.
        created_at: Unix time of the create call.
        expires_at: Unix time after which the response is gone (``None``: kept until deleted).
        request: The create body as the client sent it (a JSON object).
        response: The latest ``Response`` snapshot as a JSON object (the final one once the run
            ended), or ``None`` before the first lifecycle event.
        previous_response_id: The ``previous_response_id`` of the request, if any.
        last_sequence_number: The highest sequence number logged (``-1``: none yet).
    """

    id: str
    owner: str
    status: str
    created_at: float
    expires_at: float | None
    request: dict[str, Any]
    response: dict[str, Any] | None
    previous_response_id: str | None
    last_sequence_number: int

    @property
    def active(self) -> bool:
        """Whether the run has not finished (``queued`` or ``in_progress``)."""
        return self.status in ACTIVE_STATUSES

    def parsed_response(self) -> Response | None:
        """The :attr:`response` snapshot as a typed :class:`~rxresponses.types.Response`."""
        if self.response is None:
            return None
        return Response.model_validate(self.response, context={"rxresponses_wire": True})


@dataclass(frozen=True, slots=True)
class InputItemsPage:
    """One page of a response's input items, shaped as OpenAI's ``input_items`` list.

    Attributes:
        data: The items (JSON objects, each with an ``id``).
        first_id: ``id`` of the first item of the page (``None`` when empty).
        last_id: ``id`` of the last item of the page (the ``after`` of the next page).
        has_more: Whether items follow this page in the requested order.
    """

    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool

    def to_dict(self) -> dict[str, Any]:
        """The body of ``GET /v1/responses/{id}/input_items``."""
        return {
            "object": "list",
            "data": self.data,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "has_more": self.has_more,
        }


@dataclass(slots=True)
class StoreStats:
    """Counters a store keeps, for tests and benchmarks.

    Attributes:
        transactions: Write transactions committed (one per create, per batch of events...).
        events_written: Events inserted into the log.
    """

    transactions: int = 0
    events_written: int = 0


def owner_key(credential: str | bytes | None) -> str:
    """The owner of a stored response: a SHA-256 of the client's credential, never the credential.

    ``None`` or an empty credential (a server without keys) maps to one shared anonymous owner.
    API keys have enough entropy that a plain hash cannot be reversed; the store keeps only this.
    """
    if not credential:
        return "anonymous"
    raw = credential.encode("utf-8") if isinstance(credential, str) else credential
    return hashlib.sha256(b"rxresponses-owner\x00" + raw).hexdigest()


def new_item_id(item: dict[str, Any]) -> str:
    """An id for an input item that came without one (``msg_...`` for messages)."""
    prefix = "msg" if item.get("type", "message") == "message" else "item"
    return f"{prefix}_{secrets.token_hex(24)}"


def terminal_event_for(
    response_id: str,
    sequence_number: int,
    snapshot: dict[str, Any] | None,
    *,
    status: str = "failed",
    message: str = "the server stopped before this response finished",
) -> StoredEvent:
    """A terminal event that closes a log whose run ended without one (a crashed worker).

    ``status`` ``completed`` / ``incomplete`` give ``response.completed`` /
    ``response.incomplete``; anything else gives ``response.failed`` with a ``server_error``.
    The payload is the last ``snapshot`` with its status replaced, or a minimal ``Response``.
    """
    values: dict[str, Any] = dict(snapshot or {})
    values.setdefault("id", response_id)
    values.setdefault("created_at", int(time.time()))
    values.setdefault("model", "")
    values["status"] = status
    if status not in {"completed", "incomplete"}:
        values["status"] = "cancelled" if status == "cancelled" else "failed"
        values["error"] = ResponseError(code="server_error", message=message).model_dump()
    response = Response.model_validate(values)
    event: ResponseCompletedEvent | ResponseIncompleteEvent | ResponseFailedEvent
    if status == "completed":
        event = ResponseCompletedEvent(sequence_number=sequence_number, response=response)
    elif status == "incomplete":
        event = ResponseIncompleteEvent(sequence_number=sequence_number, response=response)
    else:
        event = ResponseFailedEvent(sequence_number=sequence_number, response=response)
    return StoredEvent(sequence_number, event.type, to_json(event))


PageOrder = Literal["asc", "desc"]


def check_page(after: object, limit: object, order: object) -> tuple[str | None, int, PageOrder]:
    """Validate pagination arguments (raises :class:`InvalidPageError`)."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidPageError("limit", "limit must be an integer between 1 and 100")
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise InvalidPageError("limit", f"limit must be between 1 and 100, got {limit}")
    if order not in ("asc", "desc"):
        raise InvalidPageError("order", "order must be 'asc' or 'desc'")
    if after is not None and (not isinstance(after, str) or not after):
        raise InvalidPageError("after", "after must be an item id")
    return after, limit, order


@runtime_checkable
class ResponseStore(Protocol):
    """What ``rxresponses serve`` (and a library user) needs from a response store.

    Every method is a coroutine; a backend that cannot be reached raises
    :class:`StoreUnavailableError`. Methods taking ``owner`` treat a response of another owner
    exactly as an unknown one (``None`` / ``False``). Expired responses are unknown too.
    """

    stats: StoreStats

    async def open(self) -> None:
        """Connect and create the schema if needed (idempotent)."""

    async def close(self) -> None:
        """Release connections and threads (idempotent)."""

    async def create(
        self,
        response_id: str,
        *,
        owner: str,
        request: dict[str, Any],
        input_items: Sequence[dict[str, Any]] = (),
        status: str = "in_progress",
        previous_response_id: str | None = None,
        now: float | None = None,
    ) -> list[dict[str, Any]]:
        """Record a new response before its run starts; returns the input items as stored.

        Items without an ``id`` get one. Raises :class:`StoreFullError` at the size cap.
        """

    async def get(self, response_id: str, *, owner: str) -> StoredResponse | None:
        """The response ``response_id`` of ``owner``, or ``None``."""

    async def get_status(self, response_id: str) -> RunState | None:
        """The run state of ``response_id`` (not owner-scoped, like :meth:`read_events`)."""

    async def append_events(
        self,
        response_id: str,
        events: Sequence[StoredEvent],
        *,
        snapshot: dict[str, Any] | None = None,
        status: str | None = None,
        lease: float | None = None,
    ) -> str | None:
        """Append a batch of events in one transaction; returns the record's status now.

        ``snapshot`` / ``status`` update the stored ``Response`` (a terminal status ends the
        lease and keeps ``cancelled``); ``lease`` renews the run's lease for that many seconds.
        An event already logged (same sequence number) is skipped. Returns ``None`` when the
        response no longer exists (deleted or expired), ``"cancelled"`` when a client cancelled it.
        """

    async def read_events(
        self, response_id: str, *, after: int = -1, limit: int | None = None
    ) -> list[StoredEvent]:
        """The logged events with ``sequence_number > after``, in order.

        Not owner-scoped: call it for an id that :meth:`get` returned to the caller's owner.
        """

    async def finish(
        self, response_id: str, *, status: str, response: dict[str, Any] | None
    ) -> None:
        """Set the final status and ``Response`` of a run that did not stream its events."""

    async def list_input_items(
        self,
        response_id: str,
        *,
        owner: str,
        after: str | None = None,
        limit: int = 20,
        order: PageOrder = "desc",
    ) -> InputItemsPage | None:
        """A page of the input items (OpenAI's ``after`` / ``limit`` / ``order``).

        Returns ``None`` for an unknown response; raises :class:`InvalidPageError` for a
        ``limit`` outside 1..100, an ``order`` other than ``asc``/``desc``, or an ``after`` that
        is not an item of this response.
        """

    async def get_input_items(self, response_id: str, *, owner: str) -> list[dict[str, Any]] | None:
        """All input items in order (for ``previous_response_id`` chains), or ``None``."""

    async def mark_cancelled(self, response_id: str, *, owner: str) -> StoredResponse | None:
        """Set a ``queued`` / ``in_progress`` response to ``cancelled``; returns the record.

        A finished response is returned unchanged (its status tells the caller). The worker
        running the response learns of it from :meth:`append_events`' result and logs the
        terminal event; the run keeps its lease until then, so readers wait for that event.
        """

    async def delete(self, response_id: str, *, owner: str) -> bool:
        """Delete a response, its input items and its log; ``False`` when unknown."""

    async def purge_expired(self, *, now: float | None = None) -> int:
        """Delete the responses past their ``expires_at``; returns how many."""

    async def recover(self, *, include_leased: bool = False, now: float | None = None) -> list[str]:
        """Close the runs a dead worker left ``queued`` / ``in_progress``; returns their ids.

        A run whose lease lapsed (or every active run, with ``include_leased``: a single-worker
        server at startup) gets a terminal ``response.failed`` event at the end of its log and
        status ``failed``, so no response stays ``in_progress`` forever and every replay ends
        with exactly one terminal event.
        """

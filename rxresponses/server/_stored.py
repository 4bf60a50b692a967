"""Stored responses in ``rxresponses serve``: the store and bus of a worker, and the routes that
read them (retrieve, resume a stream, cancel, delete, list input items).

The store (:mod:`rxresponses.store`) is opened on first use (and at startup): a store that is
down makes the stored requests answer 503 until it is back, the rest of the server goes on.
Every record is owned by a SHA-256 of the client's ``Authorization`` header (no header: one
anonymous owner); another owner's id answers exactly as an unknown one (404).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Mapping
from typing import Any, Final

import anyio
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ..store import (
    EventBus,
    EventLogWriter,
    InvalidPageError,
    SQLiteStore,
    SQLStore,
    StoredResponse,
    StoreError,
    StoreFullError,
    StoreUnavailableError,
    open_bus,
    open_store,
    owner_key,
    read_event_log,
    terminal_event_for,
)
from ._request import error_body
from .config import ServerConfig

__all__ = ["Stored", "sse_frame", "stored_routes"]

logger = logging.getLogger("rxresponses.server")

#: What a response id looks like (``resp_`` + letters, digits, ``_``, ``-``); anything else is 400.
_RESPONSE_ID: Final = re.compile(r"resp_[A-Za-z0-9_-]{1,200}")
#: Most turns a ``previous_response_id`` chain is followed back.
MAX_CHAIN: Final = 1000
#: Seconds between two housekeeping passes (expired responses purged, dead runs recovered).
HOUSEKEEPING_SECONDS: Final = 60.0
#: Seconds the end of a run may spend writing its last events before it gives up on the store.
_FLUSH_GRACE: Final = 10.0


def error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An OpenAI-style error answer."""
    return JSONResponse(
        error_body(message, type=type, param=param, code=code),
        status_code=status,
        headers=dict(headers) if headers else None,
    )


def store_error(exc: StoreError) -> JSONResponse:
    """503 for a store that is down or full (the SDKs retry 503)."""
    if isinstance(exc, StoreFullError):
        message = "The response store is full: new stored responses are refused for now."
        code = "store_full"
    else:
        message = "The response store is unavailable. Retry shortly, or send store: false."
        code = "store_unavailable"
    return error(503, message, type="server_error", code=code, headers={"retry-after": "1"})


def not_found(
    response_id: str, param: str = "response_id", code: str = "not_found"
) -> JSONResponse:
    """404 for an unknown (or another owner's, or expired) response."""
    return error(404, f"No response found with id {response_id!r}.", param=param, code=code)


def sse_frame(event_type: str, data: str) -> bytes:
    """One SSE frame (``event:`` + ``data:``), as the live stream sends it."""
    return f"event: {event_type}\ndata: {data}\n\n".encode()


def owner_of(request: HTTPConnection) -> str:
    """The owner of what this request stores: a hash of its ``Authorization`` header."""
    return owner_key(request.headers.get("authorization"))


class Stored:
    """A worker's store, bus and background runs.

    Args:
        config: The server configuration (``config.store`` must be set).
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.store: SQLStore | None = None
        self.bus: EventBus | None = None
        self._lock = asyncio.Lock()
        #: Writers of the runs of this process, by response id (a local cancel is immediate).
        self.writers: dict[str, EventLogWriter] = {}
        #: Background runs of this process.
        self.tasks: set[asyncio.Task[None]] = set()
        self._housekeeping: asyncio.Task[None] | None = None

    async def get_store(self) -> SQLStore:
        """The open store (opened on first use).

        Raises:
            StoreUnavailableError: It cannot be opened now.
        """
        if self.store is not None:
            return self.store
        async with self._lock:
            if self.store is None:
                config = self.config
                retention = config.store_retention_days * 86400 or None
                try:
                    store = await open_store(
                        config.store, retention=retention, max_bytes=config.store_max_bytes or None
                    )
                except StoreError:
                    raise
                except Exception as exc:  # a bad path, a driver not installed...
                    raise StoreUnavailableError(f"cannot open the store: {exc}") from exc
                if self.bus is None:
                    self.bus = open_bus(config.bus)
                self.store = store
        return self.store

    async def start(self) -> None:
        """At startup: open the store, close the runs a dead worker left, start housekeeping."""
        try:
            store = await self.get_store()
            # A single worker on its own SQLite file: every active run at startup is dead.
            single = os.environ.get("RXRESPONSES_WORKERS") == "1" and isinstance(store, SQLiteStore)
            recovered = await store.recover(include_leased=single)
            if recovered:
                logger.warning("%d unfinished stored response(s) marked failed", len(recovered))
        except (StoreError, ValueError) as exc:
            logger.error("response store unavailable at startup: %s", exc)
        self._housekeeping = asyncio.get_running_loop().create_task(self._keep_house())

    async def _keep_house(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            try:
                store = await self.get_store()
                await store.purge_expired()
                await store.recover()
            except StoreError as exc:
                logger.warning("store housekeeping failed: %s", exc)

    async def stop(self) -> None:
        """At shutdown: end the background runs (each logs its terminal event), close all."""
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_FLUSH_GRACE)
        with contextlib.suppress(Exception):
            if self.bus is not None:
                await self.bus.close()
        with contextlib.suppress(Exception):
            if self.store is not None:
                await self.store.close()

    def spawn(self, run: Any) -> asyncio.Task[None]:
        """Run a background response as a task of this process."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(run)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def history(self, response_id: str, owner: str) -> list[dict[str, Any]] | None:
        """The items of a ``previous_response_id`` chain ending at ``response_id``, oldest
        first: each turn's input items, then its output items. ``None``: unknown id.

        Raises:
            StoreUnavailableError: The store cannot be reached.
        """
        store = await self.get_store()
        turns: list[list[dict[str, Any]]] = []
        seen: set[str] = set()
        current: str | None = response_id
        while current is not None and current not in seen and len(turns) < MAX_CHAIN:
            seen.add(current)
            record = await store.get(current, owner=owner)
            items = await store.get_input_items(current, owner=owner) if record else None
            if record is None or items is None:
                if not turns:
                    return None
                break  # an older turn expired or was deleted: the chain starts after it
            output = (record.response or {}).get("output") or []
            turns.append([*items, *(item for item in output if isinstance(item, dict))])
            current = record.previous_response_id
        return [item for turn in reversed(turns) for item in turn]


def _snapshot(record: StoredResponse) -> dict[str, Any]:
    """The stored ``Response`` with the record's status (a cancel or a recovery changes it)."""
    request = record.request
    snapshot = dict(record.response or {})
    if not snapshot:
        snapshot = {
            "id": record.id,
            "object": "response",
            "created_at": int(record.created_at),
            "model": request.get("model", ""),
            "output": [],
            "background": request.get("background"),
        }
    snapshot["status"] = record.status
    return snapshot


def _check_id(response_id: str) -> JSONResponse | None:
    if _RESPONSE_ID.fullmatch(response_id):
        return None
    return error(
        400,
        f"Invalid response id {response_id[:100]!r}: expected 'resp_' followed by letters, "
        "digits, '_' or '-'.",
        param="response_id",
        code="invalid_value",
    )


def _int_param(request: Request, name: str) -> int | JSONResponse | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not re.fullmatch(r"-?[0-9]{1,18}", raw):
        return error(400, f"{name} must be an integer, got {raw[:50]!r}.", param=name)
    return int(raw)


async def retrieve(stored: Stored, request: Request) -> Response:
    """``GET /v1/responses/{id}`` (``?stream=true&starting_after=N`` resumes the stream)."""
    response_id = request.path_params["response_id"]
    if (bad := _check_id(response_id)) is not None:
        return bad
    streamed = request.query_params.get("stream", "false").lower()
    if streamed not in ("true", "false", "1", "0"):
        return error(400, "stream must be true or false.", param="stream")
    after = _int_param(request, "starting_after")
    if isinstance(after, JSONResponse):
        return after
    if after is not None and after < 0:
        return error(400, "starting_after must not be negative.", param="starting_after")
    try:
        store = await stored.get_store()
        record = await store.get(response_id, owner=owner_of(request))
    except StoreError as exc:
        return store_error(exc)
    if record is None:
        return not_found(response_id)
    if streamed in ("false", "0"):
        return JSONResponse(_snapshot(record))
    if after is not None and not record.active and after > record.last_sequence_number:
        return error(
            400,
            f"starting_after {after} is past the end of the stream (its last event is "
            f"{record.last_sequence_number}).",
            param="starting_after",
        )
    return LogStream(stored, response_id, -1 if after is None else after)


async def delete(stored: Stored, request: Request) -> Response:
    """``DELETE /v1/responses/{id}``: the response, its items and log are gone (a run stops)."""
    response_id = request.path_params["response_id"]
    if (bad := _check_id(response_id)) is not None:
        return bad
    try:
        store = await stored.get_store()
        deleted = await store.delete(response_id, owner=owner_of(request))
    except StoreError as exc:
        return store_error(exc)
    if not deleted:
        return not_found(response_id)
    writer = stored.writers.get(response_id)
    if writer is not None:
        writer.cancelled.set()
    return JSONResponse({"id": response_id, "object": "response.deleted", "deleted": True})


async def cancel(stored: Stored, request: Request) -> Response:
    """``POST /v1/responses/{id}/cancel``: a background run ends ``cancelled``.

    As OpenAI: only a background response can be cancelled (400 otherwise); cancelling one that
    already finished returns it unchanged (idempotent).
    """
    response_id = request.path_params["response_id"]
    if (bad := _check_id(response_id)) is not None:
        return bad
    owner = owner_of(request)
    try:
        store = await stored.get_store()
        record = await store.get(response_id, owner=owner)
        if record is None:
            return not_found(response_id)
        if record.request.get("background") is not True:
            return error(
                400,
                "Only responses created with background: true can be cancelled.",
                param="response_id",
                code="invalid_request",
            )
        if record.active:
            record = await store.mark_cancelled(response_id, owner=owner) or record
    except StoreError as exc:
        return store_error(exc)
    writer = stored.writers.get(response_id)
    if writer is not None:
        writer.cancelled.set()  # this worker runs it: stop now (another one notices on write)
    return JSONResponse(_snapshot(record))


async def input_items(stored: Stored, request: Request) -> Response:
    """``GET /v1/responses/{id}/input_items`` (``after``, ``limit``, ``order``)."""
    response_id = request.path_params["response_id"]
    if (bad := _check_id(response_id)) is not None:
        return bad
    limit = _int_param(request, "limit")
    if isinstance(limit, JSONResponse):
        return limit
    params = request.query_params
    try:
        store = await stored.get_store()
        page = await store.list_input_items(
            response_id,
            owner=owner_of(request),
            after=params.get("after"),
            limit=20 if limit is None else limit,
            order=params.get("order", "desc"),  # type: ignore[arg-type]
        )
    except InvalidPageError as exc:
        return error(400, str(exc), param=exc.param)
    except StoreError as exc:
        return store_error(exc)
    if page is None:
        return not_found(response_id)
    return JSONResponse(page.to_dict())


class LogStream(Response):
    """SSE of a stored response's events after ``starting_after``: replayed from the log, then
    live, ending with exactly one terminal event (a store that fails meanwhile: a
    ``response.failed`` made here). The client leaving ends only this reader, never the run."""

    def __init__(self, stored: Stored, response_id: str, starting_after: int) -> None:
        self.status_code = 200
        self.background = None
        self._stored = stored
        self._response_id = response_id
        self._after = starting_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                    (b"x-request-id", self._response_id.encode()),
                ],
            }
        )
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            try:
                await self._relay(send)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                pass  # the client is gone
            finally:
                tg.cancel_scope.cancel()

    async def _relay(self, send: Send) -> None:
        stored = self._stored
        last = self._after
        keepalive = stored.config.keepalive_seconds or math.inf
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=64)
        _DONE = object()

        async def produce() -> None:
            try:
                store = await stored.get_store()
                async for event in read_event_log(
                    store, self._response_id, starting_after=self._after, bus=stored.bus
                ):
                    await queue.put(event)
            except StoreError as exc:
                await queue.put(exc)
            await queue.put(_DONE)

        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            try:
                while True:
                    item: Any = None
                    with anyio.move_on_after(keepalive):
                        item = await queue.get()
                    if item is None:
                        await send(_body(b": keep-alive\n\n"))
                        continue
                    if item is _DONE:
                        return
                    if isinstance(item, StoreError):
                        logger.warning("%s resume: store failed: %s", self._response_id, item)
                        end = terminal_event_for(
                            self._response_id,
                            last + 1,
                            None,
                            message="the response store became unavailable",
                        )
                        await send(_body(sse_frame(end.type, end.data)))
                        return
                    last = item.sequence_number
                    if item.terminal:
                        await self._stored_to_the_end()
                    await send(_body(sse_frame(item.type, item.data)))
            finally:
                tg.cancel_scope.cancel()

    async def _stored_to_the_end(self) -> None:
        """Before the terminal event goes out: wait (up to 2 s) until the store has the end of
        the run, so a client that saw the terminal event live and then retrieves the response
        gets its final state (the bus runs ahead of the batched store writes)."""
        store = self._stored.store
        if store is None:
            return
        with anyio.move_on_after(2.0):
            while True:
                try:
                    state = await store.get_status(self._response_id)
                except StoreError:
                    return
                if state is None or not state.active:
                    return
                await asyncio.sleep(0.01)


def _body(data: bytes) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": True}


def snapshot_json(value: Any) -> dict[str, Any]:
    """A typed ``Response`` as a JSON object (for a terminal event made by the server)."""
    from ..types._base import to_json

    result = json.loads(to_json(value))
    return result if isinstance(result, dict) else {}


def now() -> int:
    """Unix time, whole seconds."""
    return int(time.time())


stored_routes = (retrieve, delete, cancel, input_items)

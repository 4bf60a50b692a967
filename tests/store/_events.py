"""A small typed Responses stream for the store tests: created, in_progress, deltas, completed."""

from __future__ import annotations

from rxresponses.types import Response
from rxresponses.types._base import WireModel
from rxresponses.types.events import (
    ResponseCompletedEvent,
    ResponseCreatedEvent,
    ResponseInProgressEvent,
    ResponseTextDeltaEvent,
)


def stream(response_id: str, deltas: int, *, terminal: bool = True) -> list[WireModel]:
    """``response.created`` (0), ``response.in_progress`` (1), ``deltas`` text deltas
    (2..deltas+1, text ``"t<i> "``), then ``response.completed`` (deltas+2)."""

    def resp(status: str) -> Response:
        return Response(id=response_id, created_at=1_700_000_000, model="m", status=status)

    events: list[WireModel] = [
        ResponseCreatedEvent(sequence_number=0, response=resp("in_progress")),
        ResponseInProgressEvent(sequence_number=1, response=resp("in_progress")),
    ]
    for i in range(deltas):
        events.append(
            ResponseTextDeltaEvent(
                sequence_number=2 + i,
                item_id="msg_1",
                output_index=0,
                content_index=0,
                delta=f"t{i} ",
            )
        )
    if terminal:
        events.append(
            ResponseCompletedEvent(sequence_number=deltas + 2, response=resp("completed"))
        )
    return events

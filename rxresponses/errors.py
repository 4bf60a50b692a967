"""Typed errors raised (or sent through ``on_error``) by rxresponses.

Every error rxresponses produces derives from :class:`RxResponsesError`, so one ``except`` clause
catches them all. Errors that happen *inside* a Chat -> Responses conversion do not escape as
exceptions: :func:`rxresponses.operators.split_by_item` turns them into an ``error`` event followed
by ``response.failed`` (see :meth:`RxResponsesError.error_code`).
"""

from __future__ import annotations

import reprlib

__all__ = [
    "ChunkDecodeError",
    "PipelineError",
    "RxResponsesError",
    "SSEDecodeError",
    "SSELineTooLongError",
    "StageError",
    "UpstreamError",
    "UpstreamStatusError",
]


class RxResponsesError(Exception):
    """Base class of every error rxresponses raises."""

    #: The ``code`` written into an ``error`` event and ``response.error`` for this error.
    code: str = "server_error"


class SSEDecodeError(RxResponsesError):
    """The bytes could not be decoded as a ``text/event-stream``."""


class SSELineTooLongError(SSEDecodeError):
    """One SSE line grew past the decoder's ``max_line_bytes`` without a line break."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"SSE line longer than {limit} bytes without a line break")
        self.limit = limit


class ChunkDecodeError(RxResponsesError):
    """An SSE ``data`` payload is not the JSON object it should be."""

    def __init__(self, message: str, data: str) -> None:
        super().__init__(f"{message}: {data[:200]!r}")
        self.data = data


class UpstreamError(RxResponsesError):
    """The upstream server could not be reached or broke the connection."""


class UpstreamStatusError(UpstreamError):
    """The upstream answered with a non-2xx HTTP status.

    Attributes:
        status_code: The HTTP status code.
        body: The response body as text (may be JSON, HTML or empty).
    """

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(f"upstream returned HTTP {status_code}: {body[:500]}")
        self.status_code = status_code
        self.body = body

    @property
    def code(self) -> str:  # type: ignore[override]
        """``rate_limit_exceeded`` for 429, ``server_error`` otherwise (the Responses codes)."""
        return "rate_limit_exceeded" if self.status_code == 429 else "server_error"


class PipelineError(RxResponsesError):
    """The operators were combined in a way that cannot produce a valid stream.

    For example a signal reached :func:`~rxresponses.operators.assemble` that no stage converted
    (a pipeline without :func:`~rxresponses.operators.join_tool_args` meeting a tool call).
    """


class StageError(PipelineError):
    """A stage raised on a value: a programming error, not a fault of the stream.

    A value of the wrong type (an ``SSEMessage`` fed to a pipeline that takes bytes, an openai
    SDK chunk object fed to :func:`~rxresponses.pipelines.chat_to_responses`) or a bug in a stage
    of your own. It reaches the subscriber's ``on_error`` (it is not turned into
    ``response.failed``, which is kept for faults of the upstream and its data).

    Attributes:
        operator: The operator whose stage raised (``split_by_item()``...).
        element: The value it was handling (``None`` while finishing).
    """

    def __init__(self, operator: str, element: object, cause: BaseException) -> None:
        shown = reprlib.repr(element)
        what = "finishing" if element is None else f"{type(element).__name__} {shown}"
        super().__init__(f"{operator} raised {type(cause).__name__} on {what}: {cause}")
        self.operator = operator
        self.element = element
        self.__cause__ = cause

"""The request translation of the server: it lives in the library, :mod:`rxresponses.translate`.

Re-exported here for the server's modules (the client uses the same code).
"""

from __future__ import annotations

from ..translate import (
    ECHO_FIELDS,
    MAX_JSON_DEPTH,
    MAX_JSON_VALUES,
    RequestError,
    ToolName,
    Translation,
    error_body,
    flat_tool_name,
    input_items,
    is_large_body,
    parse_body,
    translate_request,
)

__all__ = [
    "ECHO_FIELDS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_VALUES",
    "RequestError",
    "ToolName",
    "Translation",
    "error_body",
    "flat_tool_name",
    "input_items",
    "is_large_body",
    "parse_body",
    "translate_request",
]

"""Responses request -> Chat Completions request, and the Chat answer back into Responses events.

Pure functions, no I/O: the one translation both ``rxresponses serve`` and the client
(:mod:`rxresponses.responses`) use.

:func:`translate_request` takes the decoded JSON body of ``POST /v1/responses`` and returns a
:class:`Translation`: the Chat Completions request to send upstream, and what the conversion back
needs (the model name, the fields to echo on the ``Response``, whether reasoning becomes a summary,
how flattened tool names map back to namespaced ones). A request it cannot honour raises
:class:`RequestError` (the server answers it with 400); what it can only partly honour is dropped
and listed in :attr:`Translation.dropped`, which the server logs in one line per request.
:func:`translation_pipeline` is the conversion back: Chat SSE bytes -> typed Responses events for
one translated request, with the calls of namespaced and custom tools given their Responses shape
again (:func:`restore_tool_names`).

The table in the README ("rxresponses serve: request translation") documents each field; the
decisions are also written next to the code that makes them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from json.scanner import py_make_scanner  # type: ignore[attr-defined]
from typing import Any, Final, Literal, NamedTuple

import reactivex
from pydantic import ValidationError
from reactivex import Observable

from . import operators as rxo
from .operators._core import stage_operator
from .types.aliases import ReasoningEventNames
from .types.events import (
    ResponseCustomToolCallInputDeltaEvent,
    ResponseCustomToolCallInputDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseStreamEvent,
)
from .types.response import Response, ResponseCustomToolCall, ResponseFunctionToolCall
from .types.signals import StreamFinished

__all__ = [
    "ECHO_FIELDS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_VALUES",
    "RequestError",
    "ToolName",
    "ToolNameStage",
    "Translation",
    "custom_input",
    "error_body",
    "flat_tool_name",
    "input_items",
    "is_large_body",
    "parse_body",
    "redact_errors",
    "response_fields",
    "restore_tool_names",
    "translate_request",
    "translation_pipeline",
]

#: Request fields echoed on the ``Response`` (as the Responses API does), when the request has them.
ECHO_FIELDS: Final = (
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "temperature",
    "top_p",
    "max_output_tokens",
    "max_tool_calls",
    "top_logprobs",
    "reasoning",
    "metadata",
    "store",
    "text",
    "truncation",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "background",
)

# Fields that need state this server does not keep (it stores nothing): 400.
_STATEFUL: Final = {
    "previous_response_id": (
        "previous_response_id is not supported: this server is stateless and stores no "
        "responses. Send the whole conversation in `input` (and set `store: false`)."
    ),
    "conversation": (
        "conversation is not supported: this server is stateless and stores no conversations. "
        "Send the whole conversation in `input`."
    ),
    "prompt": (
        "prompt (a stored prompt template) is not supported: this server stores nothing. "
        "Send `instructions` and `input` instead."
    ),
}

# Accepted, echoed, but not sent upstream (most Chat servers do not know them).
_ECHO_ONLY: Final = (
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "max_tool_calls",
)

# Accepted and ignored: they do not change the answer, and nothing upstream can use them.
_DROPPED_FIELDS: Final = ("client_metadata", "service_tier", "context_management")

# Everything translate_request() reads; any other top-level field is dropped (and logged).
_KNOWN: Final = frozenset(
    {
        "model",
        "input",
        "instructions",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "temperature",
        "top_p",
        "reasoning",
        "text",
        "include",
        "top_logprobs",
        "metadata",
        "store",
        "truncation",
        "user",
        "background",
        *_STATEFUL,
        *_ECHO_ONLY,
        *_DROPPED_FIELDS,
    }
)

_NAME_CHARS: Final = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME: Final = 64  # OpenAI's limit on Chat function names (^[a-zA-Z0-9_-]{1,64}$)
#: Most namespace description text copied into grouped tools' descriptions, in total (each tool
#: of a namespace repeats it): real namespaces use a few KB; this keeps a small request small.
_MAX_NAMESPACE_TEXT: Final = 1024 * 1024
_TEXT_PARTS: Final = frozenset({"input_text", "output_text", "text"})
_OMITTED_MEDIA: Final = "[{kind} omitted: a Chat Completions tool result can only carry text]"
_LOGPROBS_INCLUDE: Final = "message.output_text.logprobs"


class RequestError(Exception):
    """The request cannot be honoured; the server answers ``status`` with :meth:`body`.

    Attributes:
        message: What is wrong, for the client.
        param: The offending parameter (``"input[3].content[0].type"``), if any.
        code: A machine-readable code (``"invalid_json"``, ``"unsupported_parameter"``...).
        status: The HTTP status (400 unless said otherwise).
    """

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = "invalid_value",
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status

    def body(self) -> dict[str, Any]:
        """The OpenAI-style error body."""
        return error_body(self.message, param=self.param, code=self.code)


def error_body(
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """An OpenAI-style error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class ToolName(NamedTuple):
    """The Responses tool behind a Chat function name."""

    #: The tool's name in the request.
    name: str
    #: The ``namespace`` tool it was grouped in, if any.
    namespace: str | None = None
    #: Whether it is a ``custom`` (free-form input) tool.
    custom: bool = False


@dataclass(frozen=True)
class Translation:
    """A Responses request, translated.

    Attributes:
        chat: The Chat Completions request body (always ``stream: true`` with usage requested).
        model: The requested model, reported on the ``Response``.
        stream: Whether the client asked for an SSE stream.
        echo: Request fields to echo on every ``Response`` (see :data:`ECHO_FIELDS`).
        response_fields: What every ``Response`` of this request carries besides its id, model,
            time, output and status: :attr:`echo` plus concrete values for the fields the request
            left out (see :func:`response_fields`).
        reasoning_as_summary: Emit reasoning as summary events (the request set
            ``reasoning.summary``).
        tool_names: Chat function name -> the Responses tool, for calls the server must map
            back (tools flattened out of a ``namespace`` tool, ``custom`` tools).
        dropped: What was accepted but not honoured, for the log line.
    """

    chat: dict[str, Any]
    model: str
    stream: bool
    echo: dict[str, Any]
    response_fields: dict[str, Any] = field(default_factory=dict)
    reasoning_as_summary: bool = False
    tool_names: Mapping[str, ToolName] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()


def flat_tool_name(namespace: str, name: str) -> str:
    """The Chat function name of tool ``name`` in ``namespace``: ``namespace__name``.

    Characters Chat servers reject in function names become ``_``; a name longer than 64 characters
    is shortened and made unique with a hash. The server keeps the mapping, so any name works.
    """
    flat = _NAME_CHARS.sub("_", f"{namespace}__{name}")
    if len(flat) > _MAX_NAME:
        digest = hashlib.sha1(f"{namespace}\x00{name}".encode()).hexdigest()[:8]
        flat = f"{flat[: _MAX_NAME - 9]}_{digest}"
    return flat


# ------------------------------------------------------------------------------------------------
# The body: bytes -> checked JSON
# ------------------------------------------------------------------------------------------------

#: Deepest JSON nesting accepted in a request body (the body object is level 1). Real requests
#: stay far below (a Codex request: 8 levels; a tool's JSON schema nested 10 objects deep: about
#: 25); deeper bodies would hit recursion limits of the JSON and pydantic code that handles them.
MAX_JSON_DEPTH: Final = 100
#: Most JSON values (array elements and object members, at any depth) accepted in a request
#: body. A large real request holds tens of thousands (a Codex request of 40 KB: about 200; a
#: long agent session of 1 MB: about 20,000). Every value costs work on the event loop later (the
#: echoed fields are encoded on every lifecycle event, the request again for the upstream), so
#: bodies made of millions of tiny values are refused (413).
MAX_JSON_VALUES: Final = 200_000
#: Bodies with more ``,`` ``[`` ``{`` bytes than this are parsed by the pure-Python JSON scanner,
#: in small steps that let other threads run (see :func:`parse_body`).
_FAST_PARSE_TOKENS: Final = 20_000
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89abcdefABCDEF]")


class _Decoder(json.JSONDecoder):
    """``json.JSONDecoder`` with the pure-Python scanner: it runs bytecode, so the interpreter
    can switch threads while it works (the C scanner holds the GIL for a whole document).

    It counts the arrays, objects, strings and numbers it parses, and stops with a 413 as soon
    as there are more than :data:`MAX_JSON_VALUES` (the body would be refused for them anyway).
    """

    def __init__(self) -> None:
        super().__init__(parse_constant=_reject_constant)
        self._values = 0

        def counted(parse: Any) -> Any:
            def parse_counted(*args: Any) -> Any:
                self._values += 1
                if self._values > MAX_JSON_VALUES + 1:
                    raise _too_many_values()
                return parse(*args)

            return parse_counted

        attrs = self.__dict__  # (set by JSONDecoder.__init__; read by py_make_scanner)
        for name in ("parse_array", "parse_object", "parse_string", "parse_int", "parse_float"):
            attrs[name] = counted(attrs[name])
        self.scan_once = py_make_scanner(self)


def _too_many_values() -> RequestError:
    return RequestError(
        f"The JSON body holds too many values: the limit is {MAX_JSON_VALUES} (array "
        "elements and object members, counted together).",
        code="request_too_large",
        status=413,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def is_large_body(raw: bytes) -> bool:
    """Whether parsing ``raw`` is worth doing off the event loop (many small JSON values)."""
    return raw.count(b",") + raw.count(b"[") + raw.count(b"{") > _FAST_PARSE_TOKENS


def parse_body(raw: bytes) -> Any:
    """Decode and check a request body: the JSON value, or :class:`RequestError` (400).

    * The bytes must be valid UTF-8 (or UTF-16/32, which JSON allows) without encoded
      surrogates.
    * The JSON must parse: ``NaN``, ``Infinity`` and numbers too large for a float (``1e999``)
      are rejected.
    * Nesting is at most :data:`MAX_JSON_DEPTH` levels, checked without recursion.
    * At most :data:`MAX_JSON_VALUES` values in all (else the error's status is 413).
    * Every string (keys too) is valid Unicode: a ``\\udc00`` escape without its pair is
      rejected, so whatever is built from the body can always be encoded.

    The error's ``param`` names the offending place (``metadata.a[2]``) where there is one.
    Linear in the size of the body. A body with many small values (see :func:`is_large_body`)
    is parsed by the pure-Python scanner, slower but interruptible: run it in a worker thread.
    """
    try:
        text = raw.decode(json.detect_encoding(raw))
    except (UnicodeDecodeError, LookupError):
        raise RequestError("The request body is not valid UTF-8.", code="invalid_json") from None
    try:
        if is_large_body(raw):
            body, end = _Decoder().raw_decode(text, _skip_space(text, 0))
            if _skip_space(text, end) != len(text):
                raise ValueError("extra data")
        else:
            body = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise RequestError(
            f"The JSON body is nested too deeply: the limit is {MAX_JSON_DEPTH} levels.",
            code="invalid_json",
        ) from None
    except ValueError:  # JSONDecodeError, and too many digits for an int
        raise RequestError(
            "We could not parse the JSON body of your request. The body must be a JSON object.",
            code="invalid_json",
        ) from None
    # A lone surrogate can only come from a \\udXXX escape: the text decoded strictly.
    _check_json(body, surrogates=_SURROGATE_ESCAPE.search(text) is not None)
    return body


_SPACE: Final = re.compile(r"[ \t\n\r]*")


def _skip_space(text: str, pos: int) -> int:
    match = _SPACE.match(text, pos)
    return match.end() if match else pos


def _check_json(body: Any, *, surrogates: bool) -> None:
    """Depth, finite numbers and (when ``surrogates``) valid strings, over the whole value."""
    if type(body) is str:
        _check_str(body, None, surrogates)
    if type(body) is not dict and type(body) is not list:
        return
    skip = _SCALARS if surrogates else _SCALARS | {str}  # nothing to check in these
    stack: list[tuple[Any, str, int]] = [(body, "", 1)]
    values = 1
    while stack:
        value, path, depth = stack.pop()
        values += len(value)
        if values > MAX_JSON_VALUES:
            raise _too_many_values()
        if depth > MAX_JSON_DEPTH:
            raise RequestError(
                f"The JSON body is nested too deeply: the limit is {MAX_JSON_DEPTH} levels.",
                param=path or None,
                code="invalid_json",
            )
        if type(value) is dict:
            for key, item in value.items():
                here = f"{path}.{key}" if path else key
                if surrogates:
                    _check_str(key, path or None, surrogates)  # (not `here`: it holds the key)
                _check_item(item, here, depth, stack, surrogates)
        else:
            for index, item in enumerate(value):
                if type(item) not in skip:
                    _check_item(item, f"{path}[{index}]", depth, stack, surrogates)


_SCALARS: Final = frozenset({int, bool, type(None)})


def _check_item(
    item: Any, here: str, depth: int, stack: list[tuple[Any, str, int]], surrogates: bool
) -> None:
    kind = type(item)
    if kind is dict or kind is list:
        stack.append((item, here, depth + 1))
    elif kind is str:
        if surrogates:
            _check_str(item, here, surrogates)
    elif kind is float and math.isinf(item):
        raise RequestError(
            f"Invalid value for '{here}': the number is too large.",
            param=here,
            code="invalid_value",
        )


def _check_str(value: str, param: str | None, surrogates: bool) -> None:
    if not surrogates:
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        where = f" in '{param}'" if param else ""
        raise RequestError(
            f"Invalid string{where}: it holds a lone UTF-16 surrogate "
            f"(\\u{_lone_surrogate(value):04x}), which is not valid Unicode.",
            param=param,
            code="invalid_value",
        ) from None


def _lone_surrogate(value: str) -> int:
    return next(ord(c) for c in value if 0xD800 <= ord(c) <= 0xDFFF)


# ------------------------------------------------------------------------------------------------
# The entry point
# ------------------------------------------------------------------------------------------------


def translate_request(
    body: Any,
    *,
    system_role: Literal["system", "developer"] = "system",
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
    stateful: bool = False,
    history: Sequence[Mapping[str, Any]] = (),
) -> Translation:
    """Translate a ``POST /v1/responses`` body into a Chat Completions request.

    Args:
        body: The decoded JSON body.
        system_role: Chat role for ``instructions`` and ``system``/``developer`` messages.
        max_tokens_field: Chat field for ``max_output_tokens``.
        stateful: The server stores responses: ``previous_response_id`` and ``background`` are
            accepted (the caller resolves the chain and runs the response in the background).
        history: The items of the earlier turns of a ``previous_response_id`` chain (their
            inputs and outputs, oldest first), sent upstream before this request's ``input``.

    Raises:
        RequestError: The request is malformed or asks for something this server cannot do.
    """
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.", code="invalid_json")
    dropped: list[str] = []

    for name, message in _STATEFUL.items():
        if stateful and name == "previous_response_id":
            _optional(body, name, str)
            continue
        if body.get(name) is not None:
            raise RequestError(message, param=name, code="unsupported_parameter")
    if stateful:
        _optional(body, "background", bool)
    elif body.get("background"):
        raise RequestError(
            "background: true is not supported: this server stores no responses to poll. "
            "Use stream: true for long responses.",
            param="background",
            code="unsupported_parameter",
        )

    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    stream = _optional(body, "stream", bool) or False

    chat: dict[str, Any] = {"model": model}

    # Tools first: input items need the namespace mapping to name their function calls.
    tools = _Tools()
    raw_tools = _optional(body, "tools", list)
    if raw_tools is not None:
        tools.add_all(raw_tools, "tools", dropped)
    raw_input = body.get("input")
    if isinstance(raw_input, list):
        for i, item in enumerate(raw_input):
            if isinstance(item, dict) and item.get("type") == "additional_tools":
                extra = item.get("tools")
                if not isinstance(extra, list):
                    raise RequestError("tools must be an array", param=f"input[{i}].tools")
                tools.add_all(extra, f"input[{i}].tools", dropped)

    if tools.namespace_text_cut:
        dropped.append(
            f"namespace descriptions past {_MAX_NAMESPACE_TEXT} characters in total (the "
            "tools name their namespace only)"
        )

    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise RequestError(
            "instructions must be a string.", param="instructions", code="invalid_type"
        )
    if history and raw_input is not None:
        raw_input = [*history, *input_items(raw_input)]
    chat["messages"] = _messages(raw_input, instructions, system_role, tools, dropped)

    _tool_fields(body, tools, chat, dropped)
    _sampling_fields(body, chat, max_tokens_field)
    reasoning_as_summary = _reasoning(body, chat, dropped)
    _text(body, chat, dropped)
    _include(body, chat, dropped)

    user = _optional(body, "user", str)
    if user is not None:
        chat["user"] = user
    for name in ("metadata", "store", "truncation"):
        _optional(body, name, {"metadata": dict, "store": bool, "truncation": str}[name])
    if body.get("store") is True and not stateful:
        dropped.append("store=true (this server stores nothing)")
    if body.get("truncation") == "auto":
        dropped.append("truncation=auto (nothing is truncated; the upstream may reject long input)")
    for name in (*_ECHO_ONLY, *_DROPPED_FIELDS):
        if body.get(name) is not None:
            dropped.append(name)
    for name in body:
        if name not in _KNOWN:
            dropped.append(f"unknown field {name!r}")

    chat["stream"] = True
    chat["stream_options"] = {"include_usage": True}

    echo = {name: body[name] for name in ECHO_FIELDS if body.get(name) is not None}
    if stateful and body.get("previous_response_id") is not None:
        echo["previous_response_id"] = body["previous_response_id"]
    _check_echo(echo, model)
    return Translation(
        chat=chat,
        model=model,
        stream=stream,
        echo=echo,
        response_fields=response_fields(echo, stored=stateful),
        reasoning_as_summary=reasoning_as_summary,
        tool_names=dict(tools.names),
        dropped=tuple(dropped),
    )


def response_fields(echo: Mapping[str, Any], *, stored: bool) -> dict[str, Any]:
    """``echo`` plus a concrete value for each field the Open Responses ``ResponseResource``
    requires that the request left out, each the value this server applied.

    The openai SDK's ``Response`` lets these be null or absent; the Open Responses schema does not
    (``presence_penalty``, ``frequency_penalty``, ``store``, ``background``, ``service_tier``,
    ``temperature``, ``text``, ``top_logprobs``, ``top_p``, ``truncation``; ``strict`` on function
    tools). The values: ``temperature`` / ``top_p`` 1.0 (OpenAI's defaults, also what it echoes);
    ``presence_penalty`` / ``frequency_penalty`` 0.0 (never sent upstream); ``store`` whether the
    response is stored (false on a server that stores nothing, whatever the request said);
    ``background`` false; ``service_tier`` ``"default"`` (a requested tier is not passed on);
    ``text`` a plain-text format; ``top_logprobs`` 0; ``truncation`` ``"disabled"`` (nothing is
    truncated); a function tool's ``strict`` false (strict schemas are asked upstream only when the
    request sets ``strict``), its ``description`` / ``parameters`` null when left out (as OpenAI
    echoes them).

    Args:
        echo: The request fields echoed (see :data:`ECHO_FIELDS`).
        stored: The server stores responses (``store`` then defaults to true, as on OpenAI).
            ``echo`` keeps the request's ``store``; the ``Response`` says what was done.
    """
    fields = dict(echo)
    fields.setdefault("temperature", 1.0)
    fields.setdefault("top_p", 1.0)
    fields["presence_penalty"] = 0.0
    fields["frequency_penalty"] = 0.0
    fields["store"] = stored and echo.get("store") is not False
    fields.setdefault("background", False)
    fields["service_tier"] = "default"
    text = dict(fields.get("text") or {})
    text.setdefault("format", {"type": "text"})
    fields["text"] = text
    fields.setdefault("top_logprobs", 0)
    fields.setdefault("truncation", "disabled")
    tools = fields.get("tools")
    if isinstance(tools, list):
        fields["tools"] = [_function_tool_echo(tool) for tool in tools]
    return fields


def _function_tool_echo(tool: Any) -> Any:
    """A function tool as echoed: ``description`` / ``parameters`` null if left out; ``strict``."""
    if not isinstance(tool, dict) or tool.get("type") != "function":
        return tool
    echoed = dict(tool)
    echoed.setdefault("description", None)
    echoed.setdefault("parameters", None)
    echoed["strict"] = tool.get("strict") is True
    return echoed


# ------------------------------------------------------------------------------------------------
# Small validators
# ------------------------------------------------------------------------------------------------

_TYPE_NAMES: Final = {
    bool: "a boolean",
    str: "a string",
    list: "an array",
    dict: "an object",
    int: "an integer",
}


def _optional(body: Mapping[str, Any], name: str, kind: type[Any], param: str | None = None) -> Any:
    """``body[name]`` when present and not null, after a type check (bool is not a number)."""
    value = body.get(name)
    if value is None:
        return None
    ok = isinstance(value, kind)
    if kind is int and isinstance(value, bool):
        ok = False
    if not ok:
        raise RequestError(
            f"Invalid type for '{param or name}': expected {_TYPE_NAMES.get(kind, kind.__name__)}.",
            param=param or name,
            code="invalid_type",
        )
    return value


def _number(body: Mapping[str, Any], name: str) -> int | float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(
            f"Invalid type for '{name}': expected a number.", param=name, code="invalid_type"
        )
    return value


def _check_echo(echo: dict[str, Any], model: str) -> None:
    """Answer 400 now if the echoed fields do not build a valid ``Response``.

    ``assemble()`` builds the ``Response`` of every lifecycle event from them; a value it cannot
    validate must be the client's error, not a broken stream later.
    """
    try:
        Response(id="resp_check", created_at=0, model=model, **echo)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise RequestError(
            f"Invalid value for '{param}': {first['msg']}.", param=param, code="invalid_type"
        ) from None


# ------------------------------------------------------------------------------------------------
# Tools
# ------------------------------------------------------------------------------------------------


class _Tools:
    """Collects Chat function tools from Responses tools.

    * ``function`` tools pass as Chat function tools (the Responses shape, or leniently the Chat
      one with a nested ``function``).
    * ``namespace`` tools are flattened: each grouped tool becomes a function named
      ``namespace__name`` (:func:`flat_tool_name`); the server maps calls back.
    * ``custom`` (free-form) tools become a function with one string parameter, ``input``, whose
      description carries the tool's grammar; the server turns calls back into
      ``custom_tool_call`` items.
    * Hosted tools (``web_search``, ``file_search``, ``mcp``, ``code_interpreter``...) run on
      OpenAI's side: dropped (and logged).
    """

    def __init__(self) -> None:
        self.chat: list[dict[str, Any]] = []
        #: Chat name -> the Responses tool, for the tools whose calls must be mapped back.
        self.names: dict[str, ToolName] = {}
        self._by_pair: dict[tuple[str | None, str], str] = {}
        self._custom: set[str] = set()
        self._taken: set[str] = set()  # every Chat name given out
        # stem -> the next suffix number worth trying for ``stem + "_" + n``: the names below it
        # are taken (see _unique()).
        self._next_suffix: dict[str, int] = {}
        # Namespace description text still allowed (see _tool()).
        self._namespace_budget = _MAX_NAMESPACE_TEXT
        #: Whether a namespace description was left out of some tools (the budget ran out).
        self.namespace_text_cut = False

    def add_all(self, tools: Sequence[Any], param: str, dropped: list[str]) -> None:
        for i, tool in enumerate(tools):
            self.add(tool, f"{param}[{i}]", dropped)

    def add(self, tool: Any, param: str, dropped: list[str]) -> None:
        if not isinstance(tool, dict):
            raise RequestError("Each tool must be an object.", param=param, code="invalid_type")
        kind = tool.get("type")
        if kind in ("function", "custom"):
            self._tool(tool, param, None, None)
        elif kind == "namespace":
            namespace = tool.get("name")
            if not isinstance(namespace, str) or not namespace:
                raise RequestError(
                    "A namespace tool needs a 'name'.",
                    param=f"{param}.name",
                    code="missing_required_parameter",
                )
            # Accept any grouping key a client may use for the grouped tools.
            inner = tool.get("tools") or tool.get("functions") or []
            if not isinstance(inner, list):
                raise RequestError(
                    "A namespace tool's 'tools' must be an array.", param=f"{param}.tools"
                )
            description = tool.get("description")
            for j, sub in enumerate(inner):
                sub_param = f"{param}.tools[{j}]"
                if isinstance(sub, dict) and sub.get("type", "function") in ("function", "custom"):
                    self._tool(sub, sub_param, namespace, description)
                else:
                    sub_kind = sub.get("type") if isinstance(sub, dict) else type(sub).__name__
                    dropped.append(f"{sub_param} (type {sub_kind!r} in namespace {namespace!r})")
        else:
            dropped.append(f"{param} (type {kind!r})")

    def _tool(
        self,
        tool: Mapping[str, Any],
        param: str,
        namespace: str | None,
        namespace_description: Any,
    ) -> None:
        inner = tool.get("function")
        spec: Mapping[str, Any] = inner if isinstance(inner, dict) else tool
        custom = tool.get("type") == "custom"
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise RequestError(
                f"A {'custom' if custom else 'function'} tool needs a 'name'.",
                param=f"{param}.name",
                code="missing_required_parameter",
            )
        chat_name = self._unique(name if namespace is None else flat_tool_name(namespace, name))
        self._taken.add(chat_name)
        self._by_pair[(namespace, name)] = chat_name
        if namespace is not None or custom or chat_name != name:
            self.names[chat_name] = ToolName(name, namespace, custom)
        if custom:
            self._custom.add(chat_name)
        function: dict[str, Any] = {"name": chat_name}
        description = spec.get("description")
        if custom:
            description = _custom_description(description, spec.get("format"))
        if namespace is not None and isinstance(namespace_description, str):
            ns_text = namespace_description.strip()
            if len(ns_text) > self._namespace_budget:
                # Each grouped tool repeats its namespace's description: a long description
                # times many tools would make a small request huge. Past the budget, the tool
                # only names its namespace.
                self.namespace_text_cut = True
                ns_text = ""
                if not description:
                    description = f"({namespace})"
            self._namespace_budget -= len(ns_text)
            if ns_text:
                description = (
                    f"{description}\n\n({namespace}: {ns_text})" if description else ns_text
                )
        if description is not None:
            function["description"] = description
        if custom:
            function["parameters"] = {
                "type": "object",
                "properties": {
                    "input": {"type": "string", "description": "The tool's free-form input."}
                },
                "required": ["input"],
                "additionalProperties": False,
            }
        else:
            parameters = spec.get("parameters")
            if parameters is not None:
                if not isinstance(parameters, dict):
                    raise RequestError(
                        f"Invalid type for '{param}.parameters': expected an object (a JSON "
                        "schema).",
                        param=f"{param}.parameters",
                        code="invalid_type",
                    )
                function["parameters"] = parameters
            if spec.get("strict") is not None:
                function["strict"] = spec["strict"]
        self.chat.append({"type": "function", "function": function})

    def _unique(self, chat_name: str) -> str:
        """``chat_name``, or when it is taken, the first free ``chat_name_2``, ``_3``...

        Suffixed names keep to 64 characters, so long names are cut before the suffix and two
        names can share a stem. The next number to try is kept per stem, so each taken name is
        tried at most once in the whole request: linear work, however many names collide.
        """
        if chat_name not in self._taken:
            return chat_name
        n = 2
        while True:
            suffix = f"_{n}"
            stem = chat_name[: _MAX_NAME - len(suffix)]
            known = self._next_suffix.get(stem, 2)
            if known > n:  # stem_2 .. stem_{known-1} are taken: skip them
                n = known
                continue  # (the new suffix may be longer, and so the stem shorter)
            self._next_suffix[stem] = n + 1
            candidate = stem + suffix
            if candidate not in self._taken:
                return candidate
            n += 1

    def chat_name(self, name: str, namespace: str | None) -> str:
        """The Chat name of a tool named (with its namespace, if any) in input or tool_choice."""
        if not isinstance(namespace, str):  # a client's wrong type names no namespace
            namespace = None
        found = self._by_pair.get((namespace or None, name))
        if found is not None:
            return found
        return flat_tool_name(namespace, name) if namespace else name

    def has(self, chat_name: str, *, custom: bool = False) -> bool:
        if custom:
            return chat_name in self._custom
        return chat_name in self._taken and chat_name not in self._custom


def _custom_description(description: Any, fmt: Any) -> str:
    """A custom tool's description, plus how to fill ``input`` (its grammar, when it has one)."""
    text = description if isinstance(description, str) else ""
    note = "Put the tool's whole free-form input in the `input` argument, as a string."
    if isinstance(fmt, dict) and fmt.get("type") == "grammar" and fmt.get("definition"):
        note += f" The input must match this {fmt.get('syntax', '')} grammar:\n{fmt['definition']}"
    return f"{text}\n\n{note}" if text else note


def _tool_fields(
    body: Mapping[str, Any], tools: _Tools, chat: dict[str, Any], dropped: list[str]
) -> None:
    """``tools``, ``tool_choice`` and ``parallel_tool_calls``."""
    parallel = _optional(body, "parallel_tool_calls", bool)
    choice = body.get("tool_choice")
    chat_tools = tools.chat
    chat_choice: Any = None
    if choice is None:
        pass
    elif isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise RequestError(f"Invalid value for 'tool_choice': {choice!r}.", param="tool_choice")
        chat_choice = choice
    elif isinstance(choice, dict):
        kind = choice.get("type")
        if kind in ("function", "custom"):
            name = choice.get("name")
            if not isinstance(name, str):
                raise RequestError(
                    f"tool_choice of type {kind!r} needs a 'name'.", param="tool_choice.name"
                )
            chat_name = tools.chat_name(name, choice.get("namespace"))
            if not tools.has(chat_name, custom=kind == "custom"):
                raise RequestError(
                    f"tool_choice names {kind} tool {name!r}, which is not in `tools`.",
                    param="tool_choice.name",
                )
            chat_choice = {"type": "function", "function": {"name": chat_name}}
        elif kind == "allowed_tools":
            # Honoured exactly: only the allowed functions are sent, with the given mode.
            mode = choice.get("mode", "auto")
            allowed = choice.get("tools")
            if mode not in ("auto", "required") or not isinstance(allowed, list):
                raise RequestError(
                    "tool_choice of type 'allowed_tools' needs 'mode' (auto|required) and 'tools'.",
                    param="tool_choice",
                )
            keep = {
                tools.chat_name(str(t.get("name")), t.get("namespace"))
                for t in allowed
                if isinstance(t, dict) and t.get("type", "function") in ("function", "custom")
            }
            chat_tools = [t for t in chat_tools if t["function"]["name"] in keep]
            chat_choice = mode
        else:
            raise RequestError(
                f"tool_choice of type {kind!r} cannot be honoured: only function and custom "
                "tools reach a Chat Completions upstream.",
                param="tool_choice",
                code="unsupported_parameter",
            )
    else:
        raise RequestError(
            "Invalid type for 'tool_choice': expected a string or an object.",
            param="tool_choice",
            code="invalid_type",
        )

    if not chat_tools:
        if chat_choice == "required" or isinstance(chat_choice, dict):
            raise RequestError(
                "tool_choice requires a tool call, but the request has no function tools a "
                "Chat Completions upstream can call.",
                param="tool_choice",
                code="unsupported_parameter",
            )
        # Chat servers reject tool_choice / parallel_tool_calls without tools.
        if choice is not None and chat_choice != "none" and _tool_count(body) > 0:
            dropped.append("tool_choice (no function tools left)")
        return
    chat["tools"] = chat_tools
    if chat_choice is not None:
        chat["tool_choice"] = chat_choice
    if parallel is not None:
        chat["parallel_tool_calls"] = parallel


def _tool_count(body: Mapping[str, Any]) -> int:
    """How many tools the request lists (hosted ones included)."""
    tools = body.get("tools")
    return len(tools) if isinstance(tools, list) else 0


# ------------------------------------------------------------------------------------------------
# Sampling, reasoning, text format, include
# ------------------------------------------------------------------------------------------------


def _sampling_fields(
    body: Mapping[str, Any],
    chat: dict[str, Any],
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"],
) -> None:
    for name in ("temperature", "top_p"):
        value = _number(body, name)
        if value is not None:
            chat[name] = value
    limit = _optional(body, "max_output_tokens", int)
    if limit is not None:
        if limit < 1:
            raise RequestError("max_output_tokens must be at least 1.", param="max_output_tokens")
        chat[max_tokens_field] = limit
    top = _optional(body, "top_logprobs", int)
    if top is not None and top > 0:
        chat["logprobs"] = True
        chat["top_logprobs"] = top


def _reasoning(body: Mapping[str, Any], chat: dict[str, Any], dropped: list[str]) -> bool:
    """``reasoning.effort`` -> ``reasoning_effort``; ``reasoning.summary`` -> summary events."""
    reasoning = _optional(body, "reasoning", dict)
    if reasoning is None:
        return False
    effort = _optional(reasoning, "effort", str, "reasoning.effort")
    if effort is not None:
        chat["reasoning_effort"] = effort
    summary = _optional(reasoning, "summary", str, "reasoning.summary")
    legacy = _optional(reasoning, "generate_summary", str, "reasoning.generate_summary")
    for key in reasoning:
        if key not in ("effort", "summary", "generate_summary") and reasoning[key] is not None:
            dropped.append(f"reasoning.{key}")
    return (summary or legacy) is not None


def _text(body: Mapping[str, Any], chat: dict[str, Any], dropped: list[str]) -> None:
    """``text.format`` -> ``response_format``; ``text.verbosity`` is dropped."""
    text = _optional(body, "text", dict)
    if text is None:
        return
    fmt = _optional(text, "format", dict, "text.format")
    if fmt is not None:
        kind = fmt.get("type")
        if kind == "json_object":
            chat["response_format"] = {"type": "json_object"}
        elif kind == "json_schema":
            schema = fmt.get("schema")
            if not isinstance(schema, dict):
                raise RequestError(
                    "text.format of type 'json_schema' needs a 'schema' object.",
                    param="text.format.schema",
                )
            spec: dict[str, Any] = {"name": fmt.get("name") or "response", "schema": schema}
            for key in ("strict", "description"):
                if fmt.get(key) is not None:
                    spec[key] = fmt[key]
            chat["response_format"] = {"type": "json_schema", "json_schema": spec}
        elif kind != "text":
            raise RequestError(
                f"Unsupported text.format type {kind!r} (use text, json_object or json_schema).",
                param="text.format.type",
            )
    if text.get("verbosity") is not None:
        dropped.append("text.verbosity")
    for key in text:
        if key not in ("format", "verbosity") and text[key] is not None:
            dropped.append(f"text.{key}")


def _include(body: Mapping[str, Any], chat: dict[str, Any], dropped: list[str]) -> None:
    include = _optional(body, "include", list)
    for value in include or ():
        if value == _LOGPROBS_INCLUDE:
            chat["logprobs"] = True
        else:
            # reasoning.encrypted_content: there is no Chat parameter to ask for it. Most Chat
            # servers have none to give; OpenRouter's `reasoning.encrypted` details become the
            # reasoning item's encrypted_content whether or not it was asked for.
            dropped.append(f"include[{value}]")


# ------------------------------------------------------------------------------------------------
# Input -> messages
# ------------------------------------------------------------------------------------------------


def input_items(raw: Any) -> list[Any]:
    """A request's ``input`` as stored and listed (as OpenAI lists them): a list of items, where a
    string is one user message and a message's string content one text part."""
    if isinstance(raw, str):
        raw = [{"role": "user", "content": raw}]
    if not isinstance(raw, list):
        return []
    items: list[Any] = []
    for item in raw:
        if isinstance(item, dict) and item.get("type", "message") == "message" and "role" in item:
            item = {"type": "message", **item}
            if isinstance(item.get("content"), str):
                part = "output_text" if item["role"] == "assistant" else "input_text"
                item["content"] = [{"type": part, "text": item["content"]}]
        items.append(item)
    return items


def _messages(
    raw: Any,
    instructions: str | None,
    system_role: str,
    tools: _Tools,
    dropped: list[str],
) -> list[dict[str, Any]]:
    """``instructions`` + ``input`` -> Chat ``messages``.

    * ``instructions`` and the ``system``/``developer`` messages that come before the first
      user/assistant message are merged (blank line between) into one leading system message:
      many chat templates accept a system message only in first place. Later ones stay in place.
    * ``function_call`` items become ``tool_calls`` of an assistant message (consecutive calls,
      and a call right after an assistant message, share one message); ``function_call_output``
      items become ``tool`` messages.
    * ``reasoning`` items are dropped: Chat servers take no reasoning in the input (DeepSeek
      rejects ``reasoning_content`` there) and their templates strip earlier reasoning anyway.
    """
    if raw is None:
        raise RequestError(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    if isinstance(raw, str):
        items: list[Any] = [{"role": "user", "content": raw}]
    elif isinstance(raw, list):
        items = raw
    else:
        raise RequestError(
            "Invalid type for 'input': expected a string or an array of items.",
            param="input",
            code="invalid_type",
        )

    leading: list[str] = [instructions] if instructions else []
    messages: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}

    for i, item in enumerate(items):
        param = f"input[{i}]"
        if not isinstance(item, dict):
            raise RequestError("Each input item must be an object.", param=param)
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                content = _text_content(item.get("content"), param)
                if not messages:
                    leading.append(content)
                else:
                    messages.append({"role": system_role, "content": content})
            elif role == "user":
                messages.append({"role": "user", "content": _content(item.get("content"), param)})
            elif role == "assistant":
                content = _text_content(item.get("content"), param)
                messages.append({"role": "assistant", "content": content})
            else:
                raise RequestError(
                    f"Invalid value for 'role': {role!r} (use user, assistant, system or "
                    "developer).",
                    param=f"{param}.role",
                )
        elif kind == "function_call":
            name = _required_str(item, "name", param)
            namespace = item.get("namespace")
            arguments = item.get("arguments", "")
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments)
            _add_tool_call(
                messages,
                _required_str(item, "call_id", param),
                tools.chat_name(name, namespace if isinstance(namespace, str) else None),
                arguments,
            )
        elif kind == "custom_tool_call":
            # A custom tool is sent as a function with one argument, ``input``: so is its call.
            namespace = item.get("namespace")
            _add_tool_call(
                messages,
                _required_str(item, "call_id", param),
                tools.chat_name(
                    _required_str(item, "name", param),
                    namespace if isinstance(namespace, str) else None,
                ),
                json.dumps({"input": item.get("input", "")}, ensure_ascii=False),
            )
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": _required_str(item, "call_id", param),
                    "content": _tool_output(item.get("output"), param, dropped),
                }
            )
        elif kind == "item_reference":
            raise RequestError(
                "item_reference is not supported: send the items themselves (or continue a "
                "stored response with previous_response_id).",
                param=f"{param}.type",
                code="unsupported_parameter",
            )
        elif kind == "additional_tools":
            pass  # its tools were added to the request's tools
        else:
            # reasoning (see the docstring), hosted-tool calls and their outputs (web_search_call,
            # mcp_call, ...), compaction...: nothing a Chat upstream can read.
            label = str(kind)
            skipped[label] = skipped.get(label, 0) + 1

    for label, count in skipped.items():
        dropped.append(f"input: {count} {label} item(s)")
    if leading:
        messages.insert(0, {"role": system_role, "content": "\n\n".join(leading)})
    if not messages:
        raise RequestError("The request has no input messages.", param="input")
    return messages


def _add_tool_call(messages: list[dict[str, Any]], call_id: str, name: str, arguments: str) -> None:
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _required_str(item: Mapping[str, Any], key: str, param: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise RequestError(
            f"Missing required parameter: '{param}.{key}'.",
            param=f"{param}.{key}",
            code="missing_required_parameter",
        )
    return value


def _kind(part: Mapping[str, Any]) -> str | None:
    """A part's ``type`` when it is a string (anything else matches no known type)."""
    kind = part.get("type")
    return kind if isinstance(kind, str) else None


def _text_of(part: Mapping[str, Any], param: str) -> str:
    text = part.get("refusal") if part.get("type") == "refusal" else part.get("text")
    if not isinstance(text, str):
        raise RequestError("A text part needs a 'text' string.", param=f"{param}.text")
    return text


def _text_content(content: Any, param: str) -> str:
    """Content that must be text (system, developer, assistant): parts joined with newlines."""
    result = _content(content, param)
    if isinstance(result, str):
        return result
    raise RequestError(
        "Only text content is supported in system, developer and assistant messages.",
        param=f"{param}.content",
    )


def _content(content: Any, param: str) -> str | list[dict[str, Any]]:
    """Message content -> Chat content.

    Text-only content becomes one string (parts joined with ``\\n``): every Chat server and chat
    template takes a string. Content with images, files or audio stays a list of Chat parts.
    """
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RequestError(
            "Invalid type for 'content': expected a string or an array of parts.",
            param=f"{param}.content",
            code="invalid_type",
        )
    parts: list[dict[str, Any]] = []
    text_only = True
    for j, part in enumerate(content):
        part_param = f"{param}.content[{j}]"
        if isinstance(part, str):
            parts.append({"type": "text", "text": part})
            continue
        if not isinstance(part, dict):
            raise RequestError("Each content part must be an object.", param=part_param)
        kind = _kind(part)
        if kind in _TEXT_PARTS or kind == "refusal":
            parts.append({"type": "text", "text": _text_of(part, part_param)})
        elif kind == "input_image":
            text_only = False
            url = part.get("image_url")
            if not isinstance(url, str):
                raise RequestError(
                    "input_image needs an 'image_url' (an https or data: URL); file_id cannot "
                    "be resolved by this server.",
                    param=f"{part_param}.image_url",
                    code="unsupported_parameter",
                )
            image: dict[str, Any] = {"url": url}
            if part.get("detail") is not None:
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            text_only = False
            if part.get("file_url") is not None:
                raise RequestError(
                    "input_file with file_url is not supported; send file_data.",
                    param=f"{part_param}.file_url",
                    code="unsupported_parameter",
                )
            file = {k: part[k] for k in ("file_data", "file_id", "filename") if k in part}
            parts.append({"type": "file", "file": file})
        elif kind == "input_audio":
            text_only = False
            parts.append({"type": "input_audio", "input_audio": part.get("input_audio")})
        else:
            raise RequestError(
                f"Unsupported content part type {kind!r}.",
                param=f"{part_param}.type",
                code="unsupported_parameter",
            )
    if text_only:
        return "\n".join(p["text"] for p in parts)
    return parts


def _tool_output(output: Any, param: str, dropped: list[str]) -> str:
    """A function call's output -> ``tool`` message content (text only in Chat Completions).

    Images and files in the output cannot reach the model: each is replaced by a short note saying
    so (the model knows it did not see them) and the drop is logged.
    """
    if isinstance(output, str):
        return output
    if output is None:
        return ""
    if not isinstance(output, list):
        return json.dumps(output)
    texts: list[str] = []
    for j, part in enumerate(output):
        part_param = f"{param}.output[{j}]"
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            raise RequestError("Each output part must be an object.", param=part_param)
        kind = _kind(part)
        if kind in _TEXT_PARTS:
            texts.append(_text_of(part, part_param))
        else:
            media = {"input_image": "image", "input_file": "file"}.get(str(kind), str(kind))
            texts.append(_OMITTED_MEDIA.format(kind=media))
            dropped.append(f"{part_param} ({kind} in a tool result)")
    return "\n".join(texts)


# ------------------------------------------------------------------------------------------------
# The answer: Chat SSE bytes -> Responses events for one translated request
# ------------------------------------------------------------------------------------------------


class ToolNameStage:
    """The state machine of :func:`restore_tool_names` (one per subscription).

    * A call of a namespaced function: ``name`` and ``namespace`` restored on the
      ``output_item.added`` / ``.done`` items; the argument events pass unchanged.
    * A call of a custom tool: the items become ``custom_tool_call`` items; the argument deltas
      (JSON text of ``{"input": ...}``) are held back, and ``function_call_arguments.done``
      becomes ``custom_tool_call_input.delta`` (the whole input) + ``custom_tool_call_input.done``.
      Arguments that are not that JSON object are taken as the input itself.
    """

    name = "restore_tool_names()"
    #: The events it acts on; the driver passes the others (text, reasoning...) on unseen.
    handles = frozenset(
        {
            ResponseOutputItemAddedEvent,
            ResponseOutputItemDoneEvent,
            ResponseFunctionCallArgumentsDeltaEvent,
            ResponseFunctionCallArgumentsDoneEvent,
        }
    )

    def __init__(self, names: Mapping[str, ToolName]) -> None:
        self._names = names
        self._custom: dict[str, ToolName] = {}  # item id -> tool, for open custom calls

    def handle(self, event: Any) -> list[Any]:
        if isinstance(event, ResponseOutputItemAddedEvent | ResponseOutputItemDoneEvent):
            item = event.item
            if isinstance(item, ResponseFunctionToolCall):
                tool = self._names.get(item.name)
                if tool is not None:  # a new event: the one received is left as it was
                    restored = self._item(item, tool, added=event.type.endswith(".added"))
                    return [event.model_copy(update={"item": restored})]
            return [event]
        if isinstance(event, ResponseFunctionCallArgumentsDeltaEvent):
            return [] if event.item_id in self._custom else [event]
        if isinstance(event, ResponseFunctionCallArgumentsDoneEvent):
            if event.item_id not in self._custom:
                return [event]
            text = custom_input(event.arguments)
            out: list[Any] = []
            if text:
                out.append(
                    ResponseCustomToolCallInputDeltaEvent(
                        item_id=event.item_id, output_index=event.output_index, delta=text
                    )
                )
            out.append(
                ResponseCustomToolCallInputDoneEvent(
                    item_id=event.item_id, output_index=event.output_index, input=text
                )
            )
            return out
        return [event]

    def finish(self) -> list[Any]:
        return []

    def fail(self, exc: Exception) -> None:
        return None

    def _item(self, item: ResponseFunctionToolCall, tool: ToolName, *, added: bool) -> Any:
        if not tool.custom:
            return item.model_copy(update={"name": tool.name, "namespace": tool.namespace})
        item_id = item.id or ""
        if added:
            self._custom[item_id] = tool
        else:
            self._custom.pop(item_id, None)
        return ResponseCustomToolCall(
            id=item.id,
            call_id=item.call_id,
            name=tool.name,
            namespace=tool.namespace,
            input="" if added else custom_input(item.arguments),
            status=item.status,
        )


def custom_input(arguments: str) -> str:
    """The free-form input of a custom tool call sent as ``{"input": "..."}`` arguments."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    value = parsed.get("input") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else arguments


def restore_tool_names(
    names: Mapping[str, ToolName],
) -> Callable[[Observable[Any]], Observable[Any]]:
    """Give calls of flattened namespace tools and of custom tools their Responses shape back.

    .. code-block:: text

        item.added(fc crm__lookup) - arguments.delta - arguments.done - item.done(fc crm__lookup) -|
        [              restore_tool_names({"crm__lookup": ToolName("lookup", "crm")})           ]
        item.added(fc lookup, namespace=crm) - arguments.delta - arguments.done - item.done(...) --|

    Args:
        names: Chat function name -> the Responses tool (see :class:`ToolNameStage`).
    """

    return stage_operator(lambda: ToolNameStage(names))


def redact_errors(redact: Callable[[str], str]) -> Callable[[Observable[Any]], Observable[Any]]:
    """Mask secrets in the error message that ends a stream.

    The message can quote what the upstream sent, and upstreams echo keys (``Invalid key
    sk-...``), inside a 200 stream as in an error body: the message goes through ``redact``
    before it becomes the ``error`` event and ``response.error``.
    """

    return stage_operator(lambda: _RedactStage(redact))


class _RedactStage:
    name = "redact_errors()"
    #: The one signal it acts on; the driver passes the others (every delta) on unseen.
    handles = frozenset({StreamFinished})

    def __init__(self, redact: Callable[[str], str]) -> None:
        self._redact = redact

    def handle(self, value: Any) -> list[Any] | None:
        if isinstance(value, StreamFinished) and value.error_message:
            return [replace(value, error_message=self._redact(value.error_message))]
        return None

    def finish(self) -> list[Any]:
        return []

    def fail(self, exc: Exception) -> None:
        return None


def translation_pipeline(
    translation: Translation,
    *,
    response_id: str,
    created_at: int,
    redact: Callable[[str], str] | None = None,
    start_immediately: bool = False,
    reasoning_events: ReasoningEventNames = "openai",
) -> Callable[[Observable[bytes]], Observable[ResponseStreamEvent]]:
    """Chat SSE bytes -> Responses events for one translated request (the server's pipeline).

    :func:`rxresponses.chat_sse_to_responses` with :func:`restore_tool_names` inserted before
    ``assemble()`` when the translation flattened tools, so the final ``Response`` and the terminal
    event carry the calls in the shape the request offered them.

    Args:
        translation: The translated request (model, echo, summary mode, tool names).
        response_id: The ``resp_...`` id (logged with the request).
        created_at: Unix time the request arrived.
        redact: Masks secrets in the stream's error message (see :func:`redact_errors`).
        start_immediately: ``response.created`` and ``response.in_progress`` on subscribe, before
            the upstream answers (see :func:`rxresponses.operators.assemble`).
        reasoning_events: ``"open-responses"`` names the raw reasoning text events
            ``response.reasoning.delta`` / ``.done`` (see
            :func:`rxresponses.operators.collect_reasoning`).
    """
    stages: list[Callable[[Observable[Any]], Observable[Any]]] = [
        rxo.decode_sse(),
        rxo.parse_chunks(),
        rxo.split_by_item(),
        *([redact_errors(redact)] if redact is not None else []),
        rxo.collect_reasoning(
            as_summary=translation.reasoning_as_summary, event_names=reasoning_events
        ),
        rxo.accumulate_text(),
        rxo.join_tool_args(),
    ]
    if translation.tool_names:
        stages.append(restore_tool_names(translation.tool_names))
    stages.append(
        rxo.assemble(
            response_id=response_id,
            model=translation.model,
            created_at=created_at,
            echo=translation.response_fields or translation.echo,
            start_immediately=start_immediately,
            reasoning_events=reasoning_events,
        )
    )
    return reactivex.compose(*stages)

"""``POST /v1/responses/compact`` in ``rxresponses serve``, and the ``compaction`` items it makes.

A Chat Completions upstream has no compaction of its own, so this server asks the upstream model
for a summary of the conversation window (the request's ``input``, after the turns of its
``previous_response_id`` chain) and answers what OpenAI's ``/v1/responses/compact`` answers (the
SDK's ``CompactedResponse``): the window's user messages, kept verbatim, followed by one opaque
``compaction`` item. That item's ``encrypted_content`` holds the summary sealed with AES-256-GCM
(authenticated encryption) under a key only this server has (:class:`CompactionSealer`), so a
client can neither read it nor forge one, and an item another server made does not open here.

When a ``compaction`` item comes back in a later ``input`` (or in the turns of a
``previous_response_id`` chain), :func:`expand_compactions` puts its summary where the history it
replaced was: everything before the latest ``compaction`` item except the user, system and
developer messages is left out (the summary covers it), and the item itself becomes a user message
carrying the summary. An item that does not open (tampered, truncated, made by another server or
under another key) is answered 400 ``invalid_encrypted_content``.

The summary is asked for as one ordinary Chat request (streamed, converted by the same pipeline as
``/v1/responses``), under the same limits: the body size and time of the request, a slot of
``max_concurrent_streams``, ``max_stream_seconds``, ``max_stream_bytes`` and the upstream deadline.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import anyio
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from reactivex.subject import Subject
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import UpstreamError, UpstreamStatusError
from ..operators import final_response
from ..store import StoreError
from ..types._base import to_dict
from ..types.response import Response as ResponseModel
from ._pipeline import server_pipeline
from ._request import RequestError, Translation, error_body, input_items, translate_request
from ._stored import Stored, not_found, owner_of, store_error
from ._upstream import Redactor, Upstream, UpstreamReply
from .config import Secret, ServerConfig

__all__ = [
    "COMPACTION_PROMPT",
    "SUMMARY_PREFIX",
    "CompactionSealer",
    "compact",
    "expand_compactions",
]

logger = logging.getLogger("rxresponses.server")

#: What the upstream model is told to do (its system message; the request's ``instructions``, if
#: any, follow it).
COMPACTION_PROMPT: Final = (
    "You compact conversations. The user message holds the transcript of a conversation between a "
    "user and an AI assistant that may call tools. Write a summary that lets the assistant carry "
    "on the conversation without the transcript: the user's goals and requests, decisions made, "
    "facts learned (including tool results that still matter: names, numbers, paths, errors), "
    "what was done, what is in progress and what remains to do. Keep exact identifiers. Write "
    "plain text, no preamble, and do not answer or continue the conversation yourself."
)
#: The first words of the user message a ``compaction`` item becomes when it is sent upstream.
SUMMARY_PREFIX: Final = (
    "Summary of the earlier conversation (it was compacted; this summary replaces the turns "
    "before this point):\n\n"
)
#: The format of :class:`CompactionSealer`'s tokens: ``rxc1.`` + base64url(nonce + ciphertext).
_TOKEN_PREFIX: Final = "rxc1."
#: Authenticated (not encrypted) data bound to every token: a token of another format or purpose
#: does not open.
_AAD: Final = b"rxresponses compaction item v1"
#: Most characters of one message, tool call or tool result copied into the transcript.
_MAX_ITEM_CHARS: Final = 100_000


class CompactionSealer:
    """Seals and opens the ``encrypted_content`` of compaction items (AES-256-GCM).

    Args:
        secret: The server secret; the key is derived from it with HKDF-SHA256, so any text of
            at least 16 characters will do. ``None``: a random key for this object's lifetime.
    """

    def __init__(self, secret: Secret | None) -> None:
        if secret is None:
            key = AESGCM.generate_key(bit_length=256)
        else:
            key = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=None,
                info=b"rxresponses compaction key v1",
            ).derive(secret.reveal().encode())
        self._aead = AESGCM(key)

    def seal(self, payload: Mapping[str, Any]) -> str:
        """``payload`` (JSON) encrypted and authenticated, as URL-safe text."""
        nonce = secrets.token_bytes(12)
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        sealed = nonce + self._aead.encrypt(nonce, data, _AAD)
        return _TOKEN_PREFIX + base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, token: str) -> dict[str, Any] | None:
        """The payload of a token this sealer made, else ``None`` (never raises)."""
        if not token.startswith(_TOKEN_PREFIX):
            return None
        text = token[len(_TOKEN_PREFIX) :]
        try:
            sealed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(sealed) < 12 + 16:
            return None
        try:
            data = self._aead.decrypt(sealed[:12], sealed[12:], _AAD)
            payload = json.loads(data)
        except (InvalidTag, ValueError):
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("summary"), str):
            return None
        return payload


# ------------------------------------------------------------------------------------------------
# Compaction items in an input window
# ------------------------------------------------------------------------------------------------


def _is_compaction(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == "compaction"


def _is_message(item: Any, *roles: str) -> bool:
    if not isinstance(item, dict) or item.get("type", "message") != "message":
        return False
    return item.get("role") in roles


def _summary_message(summary: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": SUMMARY_PREFIX + summary}],
    }


def _open_item(item: Mapping[str, Any], sealer: CompactionSealer, param: str) -> dict[str, Any]:
    token = item.get("encrypted_content")
    payload = sealer.open(token) if isinstance(token, str) else None
    if payload is None:
        raise RequestError(
            "The encrypted content of this compaction item could not be verified: it was not "
            "made by this server (or under its current secret), or it was changed. Compact the "
            "conversation again, or send its items instead.",
            param=param,
            code="invalid_encrypted_content",
        )
    return payload


def expand_compactions(
    body: Any, history: Sequence[Mapping[str, Any]], sealer: CompactionSealer
) -> tuple[Any, Sequence[Mapping[str, Any]]]:
    """``(body, history)`` with every ``compaction`` item of the window opened and the latest one
    put in place of the history it replaced (see the module docstring).

    Without a compaction item, both are returned unchanged. With one, the window (``history``
    then ``body["input"]``) becomes the new ``input`` and the history is empty.

    Raises:
        RequestError: A compaction item does not open (400 ``invalid_encrypted_content``).
    """
    if not isinstance(body, dict):
        return body, history
    raw_input = body.get("input")
    items = raw_input if isinstance(raw_input, list) else []
    if not any(map(_is_compaction, items)) and not any(map(_is_compaction, history)):
        return body, history
    window: list[Any] = [*history, *input_items(raw_input)]
    latest = max(i for i, item in enumerate(window) if _is_compaction(item))
    summary = ""
    for i, item in enumerate(window[: latest + 1]):
        if _is_compaction(item):
            where = i - len(history)
            param = f"input[{where}].encrypted_content" if where >= 0 else "previous_response_id"
            summary = _open_item(item, sealer, param)["summary"]
    kept = [item for item in window[:latest] if _is_message(item, "user", "system", "developer")]
    expanded = [*kept, _summary_message(summary), *window[latest + 1 :]]
    return {**body, "input": expanded}, ()


# ------------------------------------------------------------------------------------------------
# The transcript the upstream model summarises
# ------------------------------------------------------------------------------------------------


def _clip(text: str) -> str:
    if len(text) <= _MAX_ITEM_CHARS:
        return text
    return text[:_MAX_ITEM_CHARS] + f" [... {len(text) - _MAX_ITEM_CHARS} characters cut]"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return "" if content is None else json.dumps(content, ensure_ascii=False)
    pieces = []
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if isinstance(part.get("text"), str):
            pieces.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            pieces.append(f"[refused: {part['refusal']}]")
        elif kind == "input_image":
            pieces.append("[an image]")
        elif kind == "input_file":
            pieces.append(f"[a file: {part.get('filename') or 'unnamed'}]")
        elif kind == "input_audio":
            pieces.append("[audio]")
    return "\n".join(pieces)


def transcript(window: Sequence[Any]) -> str:
    """The conversation ``window`` (input items) as plain text, one block per item."""
    blocks = []
    for item in window:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message":
            blocks.append(f"[{item.get('role')}]\n{_clip(_text_of(item.get('content')))}")
        elif kind in ("function_call", "custom_tool_call"):
            name = item.get("name")
            if isinstance(item.get("namespace"), str):
                name = f"{item['namespace']}.{name}"
            args = item.get("arguments", item.get("input", ""))
            if not isinstance(args, str):
                args = json.dumps(args, ensure_ascii=False)
            blocks.append(
                f"[assistant called the tool {name} (call {item.get('call_id')})]\n{_clip(args)}"
            )
        elif kind in ("function_call_output", "custom_tool_call_output"):
            output = _text_of(item.get("output"))
            blocks.append(f"[tool result of call {item.get('call_id')}]\n{_clip(output)}")
        elif kind == "reasoning":
            continue  # the assistant's private reasoning: not part of the conversation
        else:
            blocks.append(f"[{kind} item]")
    return "\n\n".join(blocks)


# ------------------------------------------------------------------------------------------------
# The route
# ------------------------------------------------------------------------------------------------


def _bad_request(exc: RequestError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def compact(
    request: Request,
    raw: bytes,
    *,
    config: ServerConfig,
    upstream: Upstream,
    stored: Stored | None,
    sealer: CompactionSealer,
    authorization: str | None,
    redact: Redactor,
) -> Response:
    """Answer ``POST /v1/responses/compact`` whose body ``raw`` was read within the limits (the
    caller holds a ``max_concurrent_streams`` slot for it)."""
    from ._request import parse_body

    started = time.perf_counter()
    compaction_id = f"cmp_{secrets.token_hex(16)}"
    try:
        body = parse_body(raw)
        if not isinstance(body, dict):
            raise RequestError("The request body must be a JSON object.", code="invalid_json")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise RequestError(
                "Missing required parameter: 'model'.",
                param="model",
                code="missing_required_parameter",
            )
        instructions = body.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise RequestError(
                "instructions must be a string.", param="instructions", code="invalid_type"
            )
        previous = body.get("previous_response_id")
        history: Sequence[Mapping[str, Any]] = ()
        if previous is not None:
            if not isinstance(previous, str):
                raise RequestError(
                    "Invalid type for 'previous_response_id': expected a string.",
                    param="previous_response_id",
                    code="invalid_type",
                )
            if stored is None:
                raise RequestError(
                    "previous_response_id is not supported: this server stores no responses. "
                    "Send the conversation in `input`.",
                    param="previous_response_id",
                    code="unsupported_parameter",
                )
            try:
                found = await stored.history(previous, owner_of(request))
            except StoreError as exc:
                return store_error(exc)
            if found is None:
                return not_found(
                    previous, param="previous_response_id", code="previous_response_not_found"
                )
            history = found
        raw_input = body.get("input")
        if raw_input is None and not history:
            raise RequestError(
                "Missing required parameter: 'input' (or 'previous_response_id').",
                param="input",
                code="missing_required_parameter",
            )
        if raw_input is not None and not isinstance(raw_input, str | list):
            raise RequestError(
                "Invalid type for 'input': expected a string or an array of items.",
                param="input",
                code="invalid_type",
            )
        window = [*history, *input_items(raw_input)]
        expanded, rest = expand_compactions({"input": input_items(raw_input)}, history, sealer)
        window_seen = [*rest, *expanded["input"]]
        # The same checks as POST /v1/responses (item shapes, roles, item_reference...).
        translate_request({"model": model, "input": window_seen}, stateful=True)
    except RequestError as exc:
        logger.info("%s compact rejected (%d): %s", compaction_id, exc.status, exc.message)
        return _bad_request(exc)

    system = COMPACTION_PROMPT + (f"\n\n{instructions}" if instructions else "")
    chat = {
        "model": model,
        "messages": [
            {"role": config.system_role, "content": system},
            {
                "role": "user",
                "content": "<transcript>\n" + transcript(window_seen) + "\n</transcript>\n\n"
                "Write the summary of this conversation now.",
            },
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    translation = Translation(chat=chat, model=model, stream=False, echo={})
    outcome = await _summarise(
        request, translation, compaction_id, config, upstream, authorization, redact
    )
    if isinstance(outcome, Response):
        return outcome
    final = outcome
    summary = final.output_text.strip()
    if final.status != "completed" or not summary:
        reason = final.error.message if final.error is not None else f"status {final.status}"
        logger.warning("%s compact failed: no summary (%s)", compaction_id, redact(reason))
        return JSONResponse(
            error_body(
                f"The upstream model did not write a summary ({redact(reason)[:500]}).",
                type="server_error",
                code="compaction_failed",
            ),
            status_code=502,
        )
    created_at = int(time.time())
    token = sealer.seal(
        {"id": compaction_id, "summary": summary, "model": model, "created_at": created_at}
    )
    kept = [_output_message(item) for item in window if _is_message(item, "user")]
    usage = to_dict(final.usage) if final.usage is not None else _ZERO_USAGE
    answer = {
        "id": f"resp_{secrets.token_hex(12)}",
        "object": "response.compaction",
        "created_at": created_at,
        "output": [*kept, {"id": compaction_id, "type": "compaction", "encrypted_content": token}],
        "usage": usage,
    }
    logger.info(
        "%s compact model=%s items=%d kept=%d summary_chars=%d %.3fs",
        compaction_id,
        model,
        len(window),
        len(kept),
        len(summary),
        time.perf_counter() - started,
    )
    return JSONResponse(answer)


_ZERO_USAGE: Final = {
    "input_tokens": 0,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 0,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 0,
}


def _output_message(item: Mapping[str, Any]) -> dict[str, Any]:
    """A user message of the window as the compacted output lists it (with an id and status)."""
    return {"id": f"msg_{secrets.token_hex(16)}", "status": "completed", **item}


async def _summarise(
    request: Request,
    translation: Translation,
    compaction_id: str,
    config: ServerConfig,
    upstream: Upstream,
    authorization: str | None,
    redact: Redactor,
) -> ResponseModel | Response:
    """Ask the upstream for the summary: the final ``Response`` of the Chat stream, or the HTTP
    answer to give (upstream unreachable or refusing). A client that disconnects cancels it."""
    from .app import _upstream_status, _upstream_unreachable

    finals: list[ResponseModel] = []
    subject: Subject[bytes] = Subject()
    pipeline = server_pipeline(
        translation, response_id=compaction_id, created_at=int(time.time()), redact=redact
    )
    subscription = subject.pipe(pipeline, final_response()).subscribe(finals.append)
    reply: UpstreamReply | None = None
    answer: Response | None = None
    deadline = (
        anyio.current_time() + config.max_stream_seconds if config.max_stream_seconds else math.inf
    )
    try:
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                while (await request.receive())["type"] != "http.disconnect":
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            with anyio.CancelScope(deadline=deadline) as limit:
                try:
                    reply = await upstream.open_chat(translation.chat, authorization, redact)
                except UpstreamError as exc:
                    logger.warning("%s compact: upstream unreachable: %s", compaction_id, exc)
                    answer = _upstream_unreachable(exc)
                if reply is not None and not reply.ok:
                    answer = _upstream_status(reply)
                elif reply is not None and reply.body is not None:
                    received = 0
                    try:
                        async for chunk in reply.body:
                            received += len(chunk)
                            if config.max_stream_bytes and received > config.max_stream_bytes:
                                subject.on_error(
                                    UpstreamStatusError(
                                        502, "the upstream answer exceeded max_stream_bytes"
                                    )
                                )
                                break
                            subject.on_next(chunk)
                            if finals:
                                break
                        else:
                            subject.on_completed()
                    except Exception as exc:
                        subject.on_error(exc)
            if limit.cancelled_caught:
                subject.on_error(
                    UpstreamStatusError(504, "the summary took longer than max_stream_seconds")
                )
            tg.cancel_scope.cancel()
    finally:
        if reply is not None:
            with anyio.CancelScope(shield=True):
                await reply.aclose()
        subscription.dispose()
    if answer is not None:
        return answer
    if not finals:  # the client went away: nobody reads this
        return Response(status_code=499)
    return finals[0]

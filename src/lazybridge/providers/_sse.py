"""Small pieces shared by the wire-format translations.

The SSE byte stream itself is split into ``(event, data)`` pairs by
``httpx-sse`` in the HTTP layer; the helpers here start from those strings:

* :func:`load_event` -- a ``data:`` payload to JSON (tolerant of the trailing
  spaces Anthropic pads lines with, strict about anything else);
* :func:`parse_arguments` -- a model's JSON-encoded tool arguments to a dict,
  keeping invalid JSON so the engine can report it back to the model;
* :func:`error_message` / :func:`error_kind` -- the provider's own message and
  error type/code from an error body of any of the shapes we know;
* :func:`stream_error` -- the :class:`~lazybridge.errors.ProviderError` for an
  error that arrived inside a 200 stream;
* :func:`stop_reason` and :func:`synthetic_call_id`, used by several formats.

Everything is pure: no I/O, no clocks, no randomness.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..errors import OverloadedError, ProviderError, RateLimitError, StreamError
from ..messages import StopReason
from . import _shape

#: Key under which :func:`parse_arguments` keeps arguments that were not a JSON object.
RAW_ARGUMENTS_KEY = "__raw_arguments__"

_MAX_ERROR_CHARS = 500

# Error types/codes that mean "too many requests" or "overloaded", across providers.
# Quota exhaustion is a rate-limit error that retrying will not fix.
_RATE_LIMIT_KINDS = frozenset({"rate_limit_error", "rate_limit_exceeded", "RESOURCE_EXHAUSTED"})
_QUOTA_KINDS = frozenset({"insufficient_quota", "enforced_spend_limit_reached"})
_OVERLOADED_KINDS = frozenset({"overloaded_error", "UNAVAILABLE"})


def load_event(data: str, *, provider: str) -> Any:
    """Decode one ``data:`` payload; ``None`` for an empty one.

    A payload that is not JSON means the stream is corrupt, which is a
    :class:`~lazybridge.errors.MalformedResponseError` rather than something
    to skip silently.
    """
    text = data.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        error = _shape.malformed("a JSON stream event", text, raw=True)
        raise _shape.restate(error, provider=provider) from None


def parse_arguments(raw: str | None) -> dict[str, Any]:
    """Tool arguments as a dict.

    ``""`` (a tool without parameters, streamed as no fragments) is ``{}``.
    Anything that is not a JSON object is kept verbatim under
    :data:`RAW_ARGUMENTS_KEY`, so the engine can tell the model its arguments
    were invalid instead of the whole call failing here.
    """
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {RAW_ARGUMENTS_KEY: raw}
    if isinstance(value, dict):
        return value
    return {RAW_ARGUMENTS_KEY: raw}


def dump_arguments(arguments: Mapping[str, Any]) -> str:
    """Inverse of :func:`parse_arguments`: invalid arguments go back exactly as the model wrote them."""
    raw = arguments.get(RAW_ARGUMENTS_KEY)
    if isinstance(raw, str) and len(arguments) == 1:
        return raw
    return json.dumps(dict(arguments), ensure_ascii=False)


def _error_object(body: str) -> tuple[Any, Any]:
    """``(error, whole)`` from an error body: the ``error`` member if any, and the decoded body."""
    try:
        whole = json.loads(body)
    except ValueError:
        return None, None
    # Gemini's non-SSE streaming wraps bodies in a JSON array.
    if isinstance(whole, list) and whole:
        whole = whole[0]
    if not isinstance(whole, dict):
        return None, whole
    return whole.get("error"), whole


def error_message(body: str) -> str:
    """The provider's own message from an error body.

    Understands ``{"error": {"message": ...}}`` (Anthropic, OpenAI, Gemini,
    OpenRouter), ``{"error": "<string>"}`` (Ollama and other local servers)
    and a top-level ``message`` / ``detail`` string; anything else yields the
    body itself, cut to 500 characters.
    """
    error, whole = _error_object(body)
    if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
        return str(error["message"])
    if isinstance(error, str) and error:
        return error
    if isinstance(whole, dict):
        for key in ("message", "detail"):
            if isinstance(whole.get(key), str) and whole[key]:
                return str(whole[key])
    return body.strip()[:_MAX_ERROR_CHARS]


def error_kind_of(error: Any) -> str | None:
    """The most specific error type/code in an ``error`` object, or ``None``.

    Order: Anthropic's ``details.error_code`` (spend limit), a string
    ``code`` (OpenAI: ``insufficient_quota``), ``status`` (Gemini:
    ``RESOURCE_EXHAUSTED``), ``type`` (Anthropic: ``overloaded_error``).
    Integer codes (Gemini, OpenRouter) repeat the HTTP status and are skipped.
    """
    if not isinstance(error, dict):
        return None
    details = error.get("details")
    if isinstance(details, dict) and isinstance(details.get("error_code"), str):
        return str(details["error_code"])
    for key in ("code", "status", "type"):
        value = error.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def error_kind(body: str) -> str | None:
    """The provider's error type/code from an error body (see :func:`error_kind_of`)."""
    return error_kind_of(_error_object(body)[0])


def stream_error(error: Any, *, provider: str) -> ProviderError:
    """The exception for an error object that arrived inside a 200 stream.

    Rate limits and overload keep their own classes (so "retryable" follows
    from the class, as for an HTTP status); anything else is a
    :class:`StreamError`.
    """
    if isinstance(error, dict):
        message = error.get("message")
        text = message if isinstance(message, str) and message else json.dumps(error)[:_MAX_ERROR_CHARS]
    else:
        text = str(error)[:_MAX_ERROR_CHARS]
    kind = error_kind_of(error)
    code = error.get("code") if isinstance(error, dict) else None
    if kind in _QUOTA_KINDS:
        return RateLimitError(text, provider=provider, status_code=429, retryable=False)
    if kind in _RATE_LIMIT_KINDS or code == 429:
        return RateLimitError(text, provider=provider, status_code=429)
    if kind in _OVERLOADED_KINDS or code in (503, 529):
        return OverloadedError(text, provider=provider)
    return StreamError(text, provider=provider)


def stop_reason(raw: str | None, table: Mapping[str, StopReason], *, has_tool_calls: bool) -> StopReason:
    """Normalise a provider stop reason.

    Tool calls win over a plain "stop" (or an unknown/missing reason): Gemini
    has no tool finish reason at all and several OpenAI-compatible servers
    say ``stop`` after calling tools.  A truncation or filter is kept.
    """
    mapped = table.get(raw or "")
    if has_tool_calls and mapped in (None, "stop"):
        return "tool_calls"
    return mapped or "stop"


def synthetic_call_id(prefix: str, index: int, seed: str) -> str:
    """A deterministic tool-call id for a provider that sent none (or a useless one).

    ``index`` keeps ids unique within a response; ``seed`` (the response id)
    keeps them unique across the turns of a conversation.
    """
    digest = hashlib.blake2s(seed.encode(), digest_size=4).hexdigest()
    return f"{prefix}{index}_{digest}"


def as_int(value: Any) -> int:
    """A token count from JSON: missing, ``null`` or non-numeric counts are 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0

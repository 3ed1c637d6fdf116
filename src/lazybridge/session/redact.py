"""Redaction: secrets are masked in every event before a Session stores or exports it.

:func:`redact_event` is a :class:`~lazybridge.Session`'s default ``redact=``.
It walks the event's ``data`` and, in every string, replaces what looks like
a credential with ``[REDACTED]``:

* provider keys by shape: ``sk-...`` and ``sk-ant-...`` (OpenAI, Anthropic,
  DeepSeek), ``AIza...`` (Google), ``ghp_...`` and friends (GitHub),
  ``AKIA...`` (AWS access key ids), ``xoxb-...`` (Slack);
* ``Bearer <token>``;
* the value after a secret-sounding key in text: ``x-api-key: ...``,
  ``api_key=...``, ``"api_key": "..."``, ``Authorization: Basic ...``,
  ``password=...``, ``client_secret=...``, ``access_token=...``;
* in mappings, the whole value of a key with such a name
  (``{"api_key": ...}``, ``{"Authorization": ...}``).

Values that are not JSON-like (strings, numbers, booleans, ``None``, lists,
mappings) are turned into JSON-like data first -- attrs values through the
shared converter, anything else through ``str`` -- so no object can carry a
secret past the redactor inside its ``repr``.

A custom ``Session(redact=fn)`` replaces this with ``fn(event) -> event``;
it can call :func:`redact_value` or :func:`redact_text` to keep these rules
and add its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from ..envelope import converter
from ..events import Event

__all__ = ["REDACTED", "redact_event", "redact_text", "redact_value"]

REDACTED = "[REDACTED]"

_KEY_NAMES = (
    r"x-api-key|x-goog-api-key|api[-_]?key|apikey|authorization|proxy-authorization|"
    r"access[-_]?token|refresh[-_]?token|auth[-_]?token|id[-_]?token|"
    r"client[-_]?secret|secret[-_]?key|secret|password|passwd"
)

_SECRETS = re.compile(
    # key: value, key=value, "key": "value" -- keep the key, mask the value
    rf"""(?P<key>["']?\b(?i:{_KEY_NAMES})["']?\s*[:=]\s*["']?(?i:(?:bearer|basic|token)\s+)?)"""
    r"""(?P<value>[^\s"',;&}\]]{3,})"""
    # Bearer tokens anywhere
    r"|(?P<scheme>\bBearer\s+)(?P<token>[A-Za-z0-9._~+/=-]{12,})"
    # keys recognisable by their shape
    r"|\bsk-(?:ant-)?[A-Za-z0-9_-]{16,}"
    r"|\bAIza[0-9A-Za-z_-]{30,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"
)

_SECRET_KEY = re.compile(rf"(?i)^(?:{_KEY_NAMES})$")


def _replace(match: re.Match[str]) -> str:
    if match.group("key") is not None:
        return match.group("key") + REDACTED
    if match.group("scheme") is not None:
        return match.group("scheme") + REDACTED
    return REDACTED


def redact_text(text: str) -> str:
    """``text`` with every credential-shaped substring replaced by ``[REDACTED]``."""
    return _SECRETS.sub(_replace, text)


def redact_value(value: Any) -> Any:
    """A JSON-like copy of ``value`` with every string redacted and every secret-named key masked."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = redact_text(str(key))
            if _SECRET_KEY.match(name) and item is not None and not isinstance(item, bool):
                out[name] = REDACTED
            else:
                out[name] = redact_value(item)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact_value(item) for item in value]
    if attrs.has(type(value)):
        return redact_value(converter.unstructure(value))
    return redact_text(str(value))


def redact_event(event: Event) -> Event:
    """``event`` with its data redacted (the default ``Session(redact=...)``)."""
    data = redact_value(event.data)
    return Event(event.kind, event.run_id, event.parent_run_id, event.agent, event.branch, event.time, data)

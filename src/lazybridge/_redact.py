"""Redaction: secrets are masked in every event before a Session stores or exports it.

:func:`redact_event` is a :class:`~lazybridge.Session`'s default ``redact=``.
It walks the event's own fields (those of its kind, ``event.data``; not the
ids and names of the envelope) and, in every string, replaces what looks
like a credential with ``[REDACTED]``:

* the API keys configured in this process (every key an engine holds,
  whatever its shape; see :mod:`lazybridge._secrets`);
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
and add its own, and return ``attrs.evolve(event, field=new_value, ...)``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ._secrets import configured_keys, mask_configured
from .envelope import converter
from .events import Event, UntypedEvent

__all__ = ["REDACTED", "is_secret_name", "redact_event", "redact_text", "redact_value"]

REDACTED = "[REDACTED]"

# Names whose value is a secret, compared with the end of a key name
# lower-cased, ``-`` read as ``_``: ``OPENAI_API_KEY``, ``x-api-key``,
# ``client_secret`` and ``Authorization`` all qualify.
_SECRET_NAMES = (
    "api_key",
    "apikey",
    "authorization",
    "access_token",
    "accesstoken",
    "refresh_token",
    "auth_token",
    "authtoken",
    "id_token",
    "client_secret",
    "secret_key",
    "private_key",
    "secret",
    "password",
    "passwd",
)

# Secrets recognisable by their shape.  No ``\b``: it makes the regex try
# every position several times over; a match that starts inside a word is
# let through by _mask_shape instead.  _SHAPE_HINTS are substrings one of
# which must be present for any shape to match (a cheap test first).
_SHAPES = re.compile(
    r"(?=[BsAgx])(?:(?P<scheme>Bearer\s+)[A-Za-z0-9._~+/=-]{12,}"
    r"|sk-(?:ant-)?[A-Za-z0-9_-]{16,}"
    r"|AIza[0-9A-Za-z_-]{30,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,})"
)
_SHAPE_HINTS = ("Bearer", "sk-", "AIza", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "AKIA", "xox")

# ``name: value``, ``name=value``, ``"name": "value"``: every name that
# precedes a separator, then the value after it when the name is a secret's.
_NAMED = re.compile(r"""(?<![A-Za-z0-9_-])(?P<name>[A-Za-z0-9_-]{1,64}+)["']?\s*[:=]""")
_VALUE = re.compile(r"""\s*["']?(?i:(?:bearer|basic|token)\s+)?(?P<value>[^\s"',;&}\]]{3,})""")


def is_secret_name(name: str) -> bool:
    """Whether a key called ``name`` holds a secret (``api_key``, ``X-Api-Key``, ``password`` ...)."""
    return name.lower().replace("-", "_").endswith(_SECRET_NAMES)


def _mask_shape(match: re.Match[str]) -> str:
    start = match.start()
    if start and (match.string[start - 1].isalnum() or match.string[start - 1] in "_-"):
        return match.group()  # inside a longer word ("task-management-..."), not a key
    scheme = match.group("scheme")
    return REDACTED if scheme is None else scheme + REDACTED


def _mask_named_values(text: str) -> str:
    parts: list[str] = []
    done = 0
    for named in _NAMED.finditer(text):
        if named.start() < done or not is_secret_name(named.group("name")):
            continue
        value = _VALUE.match(text, named.end())
        if value is None or text.startswith(REDACTED, value.start("value")):
            continue
        parts += (text[done : value.start("value")], REDACTED)
        done = value.end("value")
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def redact_text(text: str) -> str:
    """``text`` with every configured key and credential-shaped substring replaced by ``[REDACTED]``."""
    return _redact_text(text, configured_keys())


def _redact_text(text: str, keys: tuple[str, ...]) -> str:
    if keys:
        text = mask_configured(text, keys, REDACTED)
    if any(hint in text for hint in _SHAPE_HINTS):
        text = _SHAPES.sub(_mask_shape, text)
    if ":" in text or "=" in text:
        text = _mask_named_values(text)
    return text


@functools.lru_cache(maxsize=1024)  # mapping keys repeat: the event schema's, tool parameters
def _key(key: str) -> tuple[str, bool]:
    # Configured keys are masked before this cache (see _walk): it must never hold one.
    name = _redact_text(key, ())
    return name, is_secret_name(name)


def redact_value(value: Any) -> Any:
    """A JSON-like copy of ``value`` with every string redacted and every secret-named key masked."""
    return _walk(value, configured_keys())


def _walk(value: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return _redact_text(value, keys)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            text = key if isinstance(key, str) else str(key)
            name, secret = _key(mask_configured(text, keys, REDACTED) if keys else text)
            if secret and item is not None and not isinstance(item, bool):
                out[name] = REDACTED
            else:
                out[name] = _walk(item, keys)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_walk(item, keys) for item in value]
    if attrs.has(type(value)):
        return _walk(converter.unstructure(value), keys)
    return _redact_text(str(value), keys)


def redact_event(event: Event) -> Event:
    """``event`` with its own fields redacted (the default ``Session(redact=...)``).

    The result is an event of the same class; a field that is not JSON-like
    data comes back as its redacted JSON form (see :func:`redact_value`).
    """
    keys = configured_keys()  # once per event, not once per string
    if isinstance(event, UntypedEvent):
        return attrs.evolve(event, data=_walk(event.data, keys))
    fields = {}
    for name in event.data_fields:
        value = getattr(event, name)
        # Numbers, booleans and None carry no secret: skip the walk for most fields.
        fields[name] = value if value is None or isinstance(value, (bool, int, float)) else _walk(value, keys)
    return type(event)(event.run_id, event.parent_run_id, event.agent, event.branch, event.time, **fields)

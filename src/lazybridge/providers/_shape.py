"""Typed reads of decoded provider JSON: a wrong shape is a :class:`MalformedResponseError`.

The wire formats read answers only through these helpers, so every
assumption about a shape is checked where it is made:

* a member that is missing or ``null`` reads as its default (``{}``, ``[]``,
  ``None``) -- providers omit and null fields freely;
* a member of the wrong type raises
  :class:`~lazybridge.errors.MalformedResponseError` naming what was
  expected, where, and a short excerpt of what came.

The helpers know neither the provider nor the API key: :func:`parsing` (the
guard around each parser's entry point) names the provider, and the HTTP
layer masks the key with :func:`restate`.  The guard also turns a stray
``AttributeError``/``KeyError``/... into the same error (original as
``__cause__``) as a last line of defence; the fuzz tests
(``tests/unit/test_fuzz_wires.py``) check that none is left to need it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from ..errors import MalformedResponseError

T = TypeVar("T")

#: The longest excerpt of a malformed answer an error carries.
EXCERPT_CHARS = 120

_TYPE_NAMES: dict[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "an integer",
    bool: "a boolean",
}


def excerpt(value: Any) -> str:
    """``value`` as short JSON text (at most :data:`EXCERPT_CHARS` characters)."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=repr)
        except (ValueError, RecursionError):
            text = repr(value)
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def malformed(expected: str, got: Any, *, raw: bool = False) -> MalformedResponseError:
    """The error for ``got`` where ``expected`` (``"an object at content[0]"``) was needed.

    ``raw``: ``got`` is the answer's text itself (not JSON), quoted as is.
    The provider is named later, by :func:`parsing`.
    """
    shown = (got[: EXCERPT_CHARS - 1] + "…" if len(got) > EXCERPT_CHARS else got) if raw else excerpt(got)
    error = MalformedResponseError("", expected=expected, excerpt=shown)
    _set_message(error)
    return error


def _set_message(error: MalformedResponseError) -> None:
    who = error.provider or "provider"
    error.message = f"{who}: malformed response: expected {error.expected}, got {error.excerpt}"
    error.args = (error.message,)


def restate(
    error: MalformedResponseError,
    *,
    provider: str | None = None,
    scrub: Callable[[str], str] | None = None,
    status_code: int | None = None,
) -> MalformedResponseError:
    """``error`` with its provider named, its excerpt passed through ``scrub``
    (the endpoint's API-key masking) and its status set; returned for ``raise``."""
    if provider is not None:
        error.provider = provider
    if scrub is not None:
        error.excerpt = scrub(error.excerpt)
    if status_code is not None:
        error.status_code = status_code
    _set_message(error)
    return error


#: What a parser may raise when it read a shape it did not check: turned into
#: MalformedResponseError by :func:`parsing` (RecursionError: absurdly deep JSON).
_FOREIGN = (AttributeError, TypeError, KeyError, IndexError, ValueError, RecursionError)


@contextmanager
def parsing(provider: str, what: str) -> Iterator[None]:
    """Guard one parser entry point: its ``MalformedResponseError`` names ``provider``.

    ``what`` ("a Messages response", "a stream event") is the expectation
    reported for a foreign exception that escaped the typed reads (with the
    original as ``__cause__``).  Other errors (``ProviderError``s such as an
    error event's) pass through unchanged.
    """
    try:
        yield
    except MalformedResponseError as exc:
        if exc.provider is None:
            restate(exc, provider=provider)
        raise
    except _FOREIGN as exc:
        error = malformed(what, f"{type(exc).__name__}: {exc}", raw=True)
        raise restate(error, provider=provider) from exc


def obj(value: Any, where: str) -> Mapping[str, Any]:
    """``value`` as an object; ``None`` is ``{}``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise malformed(f"an object at {where}", value)
    return value


def field(parent: Mapping[str, Any], key: str, kind: type[T], where: str) -> T | None:
    """``parent[key]`` if it is a ``kind`` (``bool`` is no ``int``); ``None`` if missing or null."""
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        name = _TYPE_NAMES.get(kind, kind.__name__)
        raise malformed(f"{name} at {where}", value)
    return value


def member(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    """``parent[key]`` as an object; ``{}`` if missing or null."""
    return obj(parent.get(key), where)


def items(parent: Mapping[str, Any], key: str, where: str) -> list[Any]:
    """``parent[key]`` as an array; ``[]`` if missing or null."""
    return field(parent, key, list, where) or []


def objects(parent: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    """``parent[key]`` as an array of objects (``[]`` if missing or null; a null element is skipped)."""
    out = []
    for i, value in enumerate(items(parent, key, where)):
        if value is not None:
            out.append(obj(value, f"{where}[{i}]"))
    return out


def text(parent: Mapping[str, Any], key: str, where: str) -> str:
    """``parent[key]`` as a string; ``""`` if missing or null."""
    return field(parent, key, str, where) or ""


def index(parent: Mapping[str, Any], key: str, where: str, default: int) -> int:
    """``parent[key]`` as an integer (a stream index); ``default`` if missing or null."""
    value = field(parent, key, int, where)
    return default if value is None else value

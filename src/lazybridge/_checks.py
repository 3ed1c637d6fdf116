"""Argument checks shared by the public constructors.

Each raises :class:`~lazybridge.errors.ConfigurationError` (a ``ValueError``)
naming the argument and what was expected, at construction, so a bad value
never reaches a run -- where it would become a confusing run-time error, or
worse, a request that hangs or is retried.  A value of the wrong *type* is
refused the same way unless a caller documents ``TypeError``.

The checks return the value normalised (``float`` for seconds and floats), so
a constructor can write ``self.timeout = check_seconds(timeout, "timeout")``.
"""

from __future__ import annotations

import math
import unicodedata
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import ConfigurationError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "check_api_key",
    "check_float",
    "check_limits",
    "check_name",
    "check_seconds",
    "check_timeout",
    "check_url",
    "check_whole",
]


def _is_number(value: object) -> bool:
    # bool is an int to Python, never a number to a user: True seconds is a bug.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_whole(value: int | None, argument: str, *, minimum: int = 1, optional: bool = False) -> int | None:
    """A whole number ``>= minimum`` (``None`` too when ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        none = " or None" if optional else ""
        raise ConfigurationError(f"{argument} must be a whole number >= {minimum}{none}, not {value!r}")
    return value


def check_seconds(value: float | None, argument: str, *, optional: bool = True) -> float | None:
    """A positive, finite number of seconds (``None`` too when ``optional``).

    ``nan`` and ``inf`` are refused: a deadline of ``nan`` never fires and
    compares false to everything, and "no deadline" is spelt ``None``.
    """
    if value is None and optional:
        return None
    none = " or None" if optional else ""
    if not _is_number(value):
        raise ConfigurationError(f"{argument} must be a positive number of seconds{none}, not {value!r}")
    assert value is not None
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{argument} must be a finite number of seconds > 0{none}, not {value!r}")
    return float(value)


def check_timeout(value: float | None, argument: str) -> float | None:
    """A ``*timeout`` argument: ``None`` or a positive, finite number of seconds."""
    return check_seconds(value, argument)


def check_float(
    value: float | None, argument: str, *, low: float, high: float, optional: bool = True
) -> float | None:
    """A finite number in ``[low, high]`` (``None`` too when ``optional``).

    ``nan`` would be sent as the invalid JSON token ``NaN``; ``inf`` as
    ``Infinity``: both are refused here rather than by the provider.
    """
    if value is None and optional:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not (
        math.isfinite(value) and low <= value <= high
    ):
        none = " or None" if optional else ""
        raise ConfigurationError(f"{argument} must be a number from {low:g} to {high:g}{none}, not {value!r}")
    return float(value)


def check_name(value: str | None, argument: str, *, optional: bool = False) -> str | None:
    """A non-empty string (``None`` too when ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{argument} must be a non-empty string, not {value!r}")
    return value


def check_url(value: str, argument: str) -> str:
    """An ``http://`` or ``https://`` URL with a host, a port from 1 to 65535 if any, and no whitespace.

    Caught here, ``"http://"`` or ``"http://host:99999"`` would otherwise fail
    only when a run sends its first request -- and, being "connection"
    errors, be retried first.
    """
    if not isinstance(value, str):
        raise ConfigurationError(f"{argument} must be a URL string, not {type(value).__name__}")
    problem = _url_problem(value)
    if problem:
        raise ConfigurationError(
            f"{argument} must start with http:// or https:// and name a host (and a port from 1 to "
            f"65535, if any): {problem} in {_shown(value)!r}"
        )
    return value


def _shown(url: str) -> str:
    """``url`` with any ``user:password@`` taken out: it may hold a secret."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}{sep}{authority}{slash}{path}"


def _url_problem(url: str) -> str | None:
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in url):
        return "whitespace or a control character"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number or is out of 0-65535
        return "the port is not a number from 1 to 65535"
    if parts.scheme.lower() not in ("http", "https"):
        return "the scheme is not http or https"
    if not parts.hostname:
        return "no host"
    if port == 0:
        return "the port is not a number from 1 to 65535"
    return None


def check_limits(value: httpx.Limits | None, argument: str = "limits") -> httpx.Limits | None:
    """An ``httpx.Limits`` that can ever send a request.

    ``max_connections=0`` is a pool with no room: every request would wait
    for a connection forever (LazyBridge's pool waits without a timeout).
    """
    import httpx  # only constructors that take limits pay for it, and they have it already

    if value is None:
        return None
    if not isinstance(value, httpx.Limits):
        raise ConfigurationError(f"{argument} must be an httpx.Limits, not {type(value).__name__}")
    if value.max_connections is not None:
        check_whole(value.max_connections, f"{argument}.max_connections")
    if value.max_keepalive_connections is not None:
        check_whole(value.max_keepalive_connections, f"{argument}.max_keepalive_connections", minimum=0)
    expiry = value.keepalive_expiry
    if expiry is not None and (not _is_number(expiry) or not math.isfinite(expiry) or expiry < 0):
        raise ConfigurationError(
            f"{argument}.keepalive_expiry must be a finite number of seconds >= 0 or None, not {expiry!r}"
        )
    return value


_NAMED = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", " ": "a space"}


def check_api_key(value: str | None, argument: str = "api_key") -> str | None:
    """``None`` or a key of printable ASCII: no whitespace, control or non-ASCII character.

    The classic case is the trailing newline of a key copied from a file:
    httpx refuses the header, and its error message -- key included, in a
    form the scrubbers do not recognise -- would become the run's error.
    The message here says which character and where, never the key.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{argument} must be a string or None, not {type(value).__name__}")
    for index, char in enumerate(value):
        # Non-ASCII too: httpx refuses it in a header, with a UnicodeEncodeError at the first request.
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf") or not char.isascii():
            kind = _NAMED.get(char) or f"the character U+{ord(char):04X}"
            if index == len(value) - 1:
                where = "at its end"
            elif index == 0:
                where = "at its start"
            else:
                where = "inside it"
            raise ConfigurationError(
                f"{argument} has {kind} {where} (a key is printable ASCII, with no whitespace or "
                "control characters; "
                "a key copied from a file often ends with a newline): strip it"
            )
    return value

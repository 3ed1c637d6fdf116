"""Argument checks shared by the public constructors.

Each raises :class:`~lazybridge.errors.ConfigurationError` naming the argument
and what was expected, at construction, so a bad value never reaches a run.
"""

from __future__ import annotations

import math

from .errors import ConfigurationError


def check_timeout(value: float | None, argument: str) -> float | None:
    """Validate a ``*timeout`` argument: ``None`` or a positive number of seconds."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{argument} must be a positive number of seconds or None, not {value!r}")
    if math.isnan(value) or value <= 0:
        raise ConfigurationError(f"{argument} must be > 0 seconds, got {value!r}")
    return float(value)

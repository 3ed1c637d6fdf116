"""Credential masking for events, trace lines and exported text.

The rules live in :mod:`lazybridge._redact`, below the session package, so
that the verbose trace (which the session's console exporter uses) can mask
its lines without importing the session package; this module is their
public home.
"""

from .._redact import REDACTED, is_secret_name, redact_event, redact_text, redact_value

__all__ = ["REDACTED", "is_secret_name", "redact_event", "redact_text", "redact_value"]

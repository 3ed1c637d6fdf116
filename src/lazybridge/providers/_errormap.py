"""Provider error answers -> the exception tree of :mod:`lazybridge.errors`.

Pure functions (no I/O): the class and ``retryable`` follow from the status
code and the provider's error *kind* (``WireFormat.error_kind``), never from
the message text; the message is the provider's own, with any echo of the
API key masked.  See :mod:`lazybridge.providers._http` for the retry policy
these feed.
"""

from __future__ import annotations

import email.utils
import json
import math
import ssl
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, TypeVar

import httpx

from ..errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServerError,
)

if TYPE_CHECKING:
    from ._http import Endpoint

__all__ = ["QUOTA_KINDS", "RETRY_STATUSES", "retry_delay", "scrubbed", "status_error", "transport_error"]

E = TypeVar("E", bound=BaseException)

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
#: Error kinds (``WireFormat.error_kind``) of a 429 that waiting will not fix.
QUOTA_KINDS = frozenset({"insufficient_quota", "enforced_spend_limit_reached", "billing_error"})


def retry_delay(headers: Mapping[str, str], body: str = "", *, now: float | None = None) -> float | None:
    """Seconds the provider asked us to wait: ``retry-after-ms``, ``retry-after``, ``RetryInfo``.

    ``retry-after`` may be a number of seconds or an HTTP date.  ``None``
    when the provider said nothing usable.
    """
    raw = headers.get("retry-after-ms")
    if raw:
        try:
            return max(float(raw) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw:
        try:
            return max(float(raw), 0.0)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                when = None
            if when is not None and when.tzinfo is not None:
                return max(when.timestamp() - (time.time() if now is None else now), 0.0)
    return _google_details(body)[0]


def _google_details(body: str) -> tuple[float | None, bool, bool]:
    """``(RetryInfo delay, daily quota exhausted, API key invalid)`` of a google.rpc error body.

    Defensive about every member: a detail of an unexpected shape is skipped,
    so a malformed 429 is still a retryable 429.
    """
    if "type.googleapis.com" not in body:
        return None, False, False
    try:
        error = json.loads(body)
        if isinstance(error, list):
            error = error[0]
        details = error["error"]["details"]
    except (ValueError, KeyError, TypeError, IndexError, RecursionError):
        return None, False, False
    delay: float | None = None
    daily = key_invalid = False
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, dict):
            continue
        kind = str(detail.get("@type", ""))
        if kind.endswith("RetryInfo"):
            raw = str(detail.get("retryDelay", "")).removesuffix("s")
            try:
                seconds = float(raw)
            except ValueError:
                continue
            if math.isfinite(seconds):  # "nans" would make a NaN wait
                delay = max(seconds, 0.0)
        elif kind.endswith("QuotaFailure"):
            violations = detail.get("violations")
            for violation in violations if isinstance(violations, list) else ():
                if not isinstance(violation, dict):
                    continue
                quota = str(violation.get("quotaId", "")) + str(violation.get("quotaMetric", ""))
                if "PerDay" in quota or "per_day" in quota.lower():
                    daily = True
        elif kind.endswith("ErrorInfo") and detail.get("reason") == "API_KEY_INVALID":
            key_invalid = True
    return delay, daily, key_invalid


def status_error(
    endpoint: Endpoint, status: int, headers: Mapping[str, str], body: str
) -> tuple[ProviderError, float | None]:
    """The exception for an error status, with the provider's own message, and
    the delay the provider asked for before a retry (seconds, or ``None``)."""
    wire = endpoint.wire
    message = endpoint.scrub(
        wire.error_message(body) if body.strip() else ""
    ) or httpx.codes.get_reason_phrase(status)
    kind = wire.error_kind(body) if body.strip() else None
    delay, daily, key_invalid = _google_details(body)
    detail = f"{endpoint.provider} HTTP {status}" + (f" {kind}" if kind else "")
    cls: type[APIStatusError]
    retryable = status in RETRY_STATUSES
    if status == 401 or key_invalid:
        cls = AuthenticationError
    elif status == 403:
        cls = PermissionDeniedError
    elif status == 404:
        cls = NotFoundError
    elif status == 402 or status == 429:
        cls = RateLimitError
        if status == 402 or kind in QUOTA_KINDS or daily:
            retryable = False
    elif status in (503, 529):
        cls = OverloadedError
    elif status >= 500 or status in (408, 409):
        cls = ServerError
    else:
        cls = BadRequestError
    should_retry = headers.get("x-should-retry")
    if should_retry == "true":
        retryable = True
    elif should_retry == "false":
        retryable = False
    if delay is None:
        delay = retry_delay(headers)
    error = cls(
        f"{message} ({detail})",
        provider=endpoint.provider,
        status_code=status,
        retryable=retryable,
        retry_after=delay,
    )
    return error, delay


def transport_error(endpoint: Endpoint, exc: httpx.TransportError) -> ProviderError:
    """The exception for a request that got no HTTP answer.

    Its message is the first non-empty one along the exception's causes (on
    Trio, httpx's own ``ConnectError`` says nothing and the reason -- refused,
    a certificate that failed verification -- is in what caused it).  A
    certificate that failed verification is not retryable: it fails the same
    way every time.
    """
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(
            f"{endpoint.provider}: request timed out ({type(exc).__name__})", provider=endpoint.provider
        )
    causes = list(_causes(exc))
    what = next((str(cause) for cause in causes if str(cause)), type(exc).__name__)
    untrusted = any(isinstance(cause, ssl.SSLCertVerificationError) for cause in causes)
    return APIConnectionError(
        f"{endpoint.provider}: could not reach {endpoint.base_url}: {endpoint.scrub(what)}",
        provider=endpoint.provider,
        retryable=False if untrusted else None,
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from or during, nearest first (each once: chains can loop)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def scrubbed(endpoint: Endpoint, error: E) -> E:
    """``error`` with every echo of ``endpoint``'s key masked, in place, and returned.

    For errors built from what a provider sent inside a 200 answer (a stream's
    error event or corrupt data line, an unparsable body): the parsers that
    build them are pure and do not know the key.  Masks every string in the
    exception's ``args`` and attributes (``message``, an excerpt...), and the
    same in the exceptions it was raised from or during, since a traceback
    prints those too.
    """
    for exc in _causes(error):
        exc.args = tuple(endpoint.scrub(a) if isinstance(a, str) else a for a in exc.args)
        for name, value in list(getattr(exc, "__dict__", {}).items()):
            if isinstance(value, str):
                setattr(exc, name, endpoint.scrub(value))
    return error

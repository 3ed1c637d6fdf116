"""The HTTP layer's policy: status -> error class and retryability, provider-named delays, pooling."""

from __future__ import annotations

import email.utils
import json

import anyio
import httpx
import pytest

import lazybridge
from lazybridge.providers import _http, _pool
from lazybridge.providers.registry import wire_format


def endpoint(provider: str = "anthropic", key: str | None = "sk-unit-secret-999") -> _http.Endpoint:
    return _http.Endpoint(
        provider, wire_format(provider), "http://127.0.0.1:1", _http.Secret(key) if key else None
    )


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, "BadRequestError", False),
        (401, "AuthenticationError", False),
        (402, "RateLimitError", False),
        (403, "PermissionDeniedError", False),
        (404, "NotFoundError", False),
        (408, "ServerError", True),
        (409, "ServerError", True),
        (413, "BadRequestError", False),
        (422, "BadRequestError", False),
        (429, "RateLimitError", True),
        (500, "ServerError", True),
        (501, "ServerError", False),
        (502, "ServerError", True),
        (503, "OverloadedError", True),
        (504, "ServerError", True),
        (529, "OverloadedError", True),
    ],
)
def test_status_mapping(status: int, cls: str, retryable: bool) -> None:
    """Every status maps to one class of the error tree, retryable exactly per the schedule."""
    body = json.dumps({"type": "error", "error": {"type": "x", "message": "provider words"}})
    error, _ = _http.status_error(endpoint(), status, {}, body)
    assert (type(error).__name__, error.retryable, error.status_code) == (cls, retryable, status)
    assert str(error).startswith("provider words")


def test_quota_429_and_should_retry_header() -> None:
    body = json.dumps(
        {"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}}
    )
    error, _ = _http.status_error(endpoint("openai"), 429, {}, body)
    assert not error.retryable
    error, _ = _http.status_error(endpoint(), 400, {"x-should-retry": "true"}, "{}")
    assert error.retryable


def test_gemini_bad_key_is_an_authentication_error() -> None:
    body = json.dumps(
        {
            "error": {
                "code": 400,
                "message": "API key not valid.",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
                ],
            }
        }
    )
    error, _ = _http.status_error(endpoint("gemini"), 400, {}, body)
    assert type(error).__name__ == "AuthenticationError" and not error.retryable


def test_echoed_key_is_scrubbed_and_non_json_bodies_survive() -> None:
    error, _ = _http.status_error(endpoint(), 401, {}, '{"error": {"message": "bad key sk-unit-secret-999"}}')
    assert "sk-unit-secret-999" not in str(error) and "********" in str(error)
    error, _ = _http.status_error(endpoint(), 502, {}, "<html>Bad Gateway</html>")
    assert "Bad Gateway" in str(error)
    error, _ = _http.status_error(endpoint(), 503, {}, "")
    assert "Service Unavailable" in str(error)


def test_retry_delay_sources() -> None:
    """retry-after-ms beats retry-after; seconds, HTTP dates and Gemini RetryInfo all count."""
    assert _http.retry_delay({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert _http.retry_delay({"retry-after": "2"}) == 2.0
    assert _http.retry_delay({"retry-after": "1.5"}) == 1.5
    date = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert _http.retry_delay({"retry-after": date}, now=1_000_000.0) == pytest.approx(30.0)
    gemini = json.dumps(
        {"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "23.5s"}]}}
    )
    assert _http.retry_delay({}, gemini) == 23.5
    assert _http.retry_delay({"retry-after": "soon"}) is None
    assert _http.retry_delay({}) is None


def test_should_retry_hook() -> None:
    """The retry verdict: provider delay used as is up to 60 s, longer ones and non-retryables refused."""
    error, _ = _http.status_error(endpoint(), 429, {}, "{}")
    assert _http._should_retry(_http._Failure(error, None)) is True
    assert _http._should_retry(_http._Failure(error, 0.2)) == 0.2
    assert _http._should_retry(_http._Failure(error, 61.0)) is False
    fatal, _ = _http.status_error(endpoint(), 401, {}, "{}")
    assert _http._should_retry(_http._Failure(fatal, 0.1)) is False
    assert _http._should_retry(ValueError("bug")) is False


def test_backoff_schedule() -> None:
    """wait(n) = min(8, 0.5 * 2 ** (n - 1) + random(0, 0.5)) seconds, as documented."""
    for retry, low in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)):
        waits = [_http._backoff(retry) for _ in range(50)]
        assert all(low <= w <= low + 0.5 for w in waits)
    assert _http._backoff(5) == _http._backoff(30) == 8.0


def test_secret_and_endpoint_reprs_hide_the_key() -> None:
    ep = endpoint()
    assert (
        "sk-unit" not in repr(ep) and "sk-unit" not in repr(ep.api_key) and "sk-unit" not in str(ep.api_key)
    )
    assert ep.api_key is not None and ep.api_key.reveal() == "sk-unit-secret-999"


def test_ssl_context_is_built_once() -> None:
    assert _pool.ssl_context() is _pool.ssl_context()


@pytest.mark.anyio
async def test_pool_per_loop_and_origin() -> None:
    """One client per origin and limits in a loop, bounded, no pool timeout; aclose() closes them."""
    a = _pool.pooled_client("https://api.openai.com/v1")
    assert a is _pool.pooled_client("https://api.openai.com/v2")
    assert a is not _pool.pooled_client("https://api.anthropic.com")
    custom = httpx.Limits(max_connections=5, max_keepalive_connections=1)
    assert _pool.pooled_client("https://api.openai.com/v1", custom) is not a
    assert a.timeout.pool is None
    h = _pool.pooled_client("https://api.openai.com/v1", transport="httpx")
    assert h is not a  # one client per transport setting ("auto" above)
    pool = h._transport._pool  # type: ignore[attr-defined]
    assert (pool._max_connections, pool._max_keepalive_connections) == (100, 20)
    await lazybridge.aclose()
    assert a.is_closed
    b = _pool.pooled_client("https://api.openai.com/v1")
    assert b is not a and not b.is_closed
    await lazybridge.aclose()


def test_each_loop_gets_its_own_client() -> None:
    """Clients are never shared across event loops (sync calls start a new one each time)."""
    seen: list[httpx.AsyncClient] = []

    async def grab() -> None:
        seen.append(_pool.pooled_client("https://api.deepseek.com"))
        await lazybridge.aclose()

    anyio.run(grab)
    anyio.run(grab, backend="trio")
    assert seen[0] is not seen[1] and all(c.is_closed for c in seen)

"""Sending model requests: the pooled clients, retries and error mapping.

Every provider call goes through this module; the wire formats
(:mod:`lazybridge.providers.base`) only translate.

Client pool
    One :class:`httpx.AsyncClient` per event loop per origin and
    :class:`httpx.Limits`, shared by every agent (an ``anyio.lowlevel.RunVar``
    holds them).  The pool is bounded (:data:`DEFAULT_LIMITS`: 100
    connections, 20 kept alive).  Requests in flight per client are capped
    at ``max_connections`` by an :class:`anyio.CapacityLimiter`; the rest
    wait on it (first come, first served, never timing out), so a large
    fan-out queues cheaply instead of failing with ``PoolTimeout`` -- or
    crowding httpcore's pool, whose bookkeeping costs grow with queued
    requests times connections (1,000 requests queued there: ~20 ms of CPU
    each).
    The clients are closed by :func:`lazybridge.aclose` (sync calls do it for
    their private loop).  The SSL context is built once per process.  A
    client passed by the user is used as is and never closed here.

Retry schedule
    Retried: connection errors and timeouts, and the statuses 408, 409,
    429, 500, 502, 503, 504 and 529 -- but not a 429 that says the quota
    or spend limit is exhausted (``insufficient_quota``, a daily Gemini
    quota).  Never retried: 400, 401, 403, 404, 413, 422 and every other
    status.  ``x-should-retry: true|false`` overrides the status.  With
    ``max_retries`` = *m* (default 2) there are at most *m* + 1 attempts, and
    no retry starts more than 120 s after the first attempt.  The wait before
    retry *n* (1-based) is, in stamina's notation::

        wait(n) = min(8.0, 0.5 * 2 ** (n - 1) + random(0, 0.5))   seconds

    unless the provider named a delay -- ``retry-after-ms``, ``retry-after``
    (seconds or an HTTP date), Gemini's ``RetryInfo.retryDelay`` -- which is
    used as is when it is at most 60 s.  A longer one is not waited for: the
    error comes back at once, with ``retryable=True``.  ``stamina.set_testing``
    turns every wait to zero (the tests do).

Errors
    Every failure is one class of the tree in :mod:`lazybridge.errors`,
    carrying the provider's own message, the status code and a truthful
    ``retryable``.  API keys never appear in a message: they are sent only
    in headers, and scrubbed from any provider message that echoes them.
"""

from __future__ import annotations

import collections
import email.utils
import json
import ssl
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Mapping
from typing import Any

import anyio
import attrs
import httpx
import stamina
from anyio.lowlevel import RunVar

from .._resources import on_loop_close
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
    StreamError,
)
from ..messages import ModelRequest, ModelResponse
from .base import StreamDecoder, WireFormat

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "Endpoint",
    "EventStream",
    "Secret",
    "complete",
    "open_stream",
    "pooled_client",
    "retry_delay",
    "ssl_context",
    "status_error",
]

#: The pool bounds (httpx's own defaults; see DESIGN.md rule 6 before changing them).
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
#: Seconds a request may take to connect, or wait for the next bytes of its answer.
DEFAULT_TIMEOUT = 600.0
#: Longest provider-named delay we wait for before retrying.
MAX_RETRY_DELAY = 60.0
#: No retry starts later than this many seconds after the first attempt.
RETRY_BUDGET = 120.0
WAIT_INITIAL = 0.5
WAIT_MAX = 8.0
WAIT_JITTER = 0.5
USER_AGENT = "lazybridge/0.1"

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
#: Error kinds (``WireFormat.error_kind``) of a 429 that waiting will not fix.
QUOTA_KINDS = frozenset({"insufficient_quota", "enforced_spend_limit_reached", "billing_error"})

_CLOSE_TIMEOUT = 5.0
_DRAIN_LIMIT = 100_000


# -- secrets -------------------------------------------------------------------


@attrs.frozen(repr=False)
class Secret:
    """An API key.  Its repr and str are masked; :meth:`reveal` is the only way in."""

    _value: str

    def reveal(self) -> str:
        return self._value

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of the secret masked."""
        if len(self._value) >= 4 and self._value in text:
            return text.replace(self._value, "********")
        return text

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


# -- the client pool -------------------------------------------------------------

_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def ssl_context() -> ssl.SSLContext:
    """The process-wide SSL context (loading the CA bundle costs ~20 ms: do it once)."""
    global _ssl_context
    if _ssl_context is None:
        with _ssl_lock:
            if _ssl_context is None:
                _ssl_context = httpx.create_ssl_context()
    return _ssl_context


class _Pool:
    """This loop's clients, each with the limiter that queues requests for it."""

    __slots__ = ("clients", "open", "user_limiters")

    def __init__(self) -> None:
        self.clients: dict[tuple[Any, ...], tuple[httpx.AsyncClient, anyio.CapacityLimiter]] = {}
        self.user_limiters: weakref.WeakKeyDictionary[httpx.AsyncClient, anyio.CapacityLimiter] = (
            weakref.WeakKeyDictionary()
        )
        self.open = True

    async def aclose(self) -> None:
        self.open = False
        clients, self.clients = list(self.clients.values()), {}
        for client, _ in clients:
            with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
                await client.aclose()


_pool: RunVar[_Pool] = RunVar("lazybridge_http_pool")


def _current_pool() -> _Pool:
    pool = _pool.get(None)
    if pool is None or not pool.open:
        pool = _Pool()
        _pool.set(pool)
        on_loop_close(pool.aclose)
    return pool


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.host}:{url.port or ''}"


def pooled_client(base_url: str, limits: httpx.Limits = DEFAULT_LIMITS) -> httpx.AsyncClient:
    """The shared client of this event loop for ``base_url``'s origin and ``limits``.

    Must be called inside a running event loop.  The client lives until
    :func:`lazybridge.aclose` runs in this loop.
    """
    return _pooled(base_url, limits)[0]


def _pool_key(base_url: str, limits: httpx.Limits) -> tuple[Any, ...]:
    return (
        _origin(httpx.URL(base_url)),
        limits.max_connections,
        limits.max_keepalive_connections,
        limits.keepalive_expiry,
    )


def _pooled(
    base_url: str, limits: httpx.Limits, key: tuple[Any, ...] | None = None
) -> tuple[httpx.AsyncClient, anyio.CapacityLimiter]:
    pool = _current_pool()
    key = key or _pool_key(base_url, limits)
    entry = pool.clients.get(key)
    if entry is None:
        client = httpx.AsyncClient(
            limits=limits,
            timeout=httpx.Timeout(DEFAULT_TIMEOUT, pool=None),
            verify=ssl_context(),
            headers={"user-agent": USER_AGENT},
        )
        entry = pool.clients[key] = (client, anyio.CapacityLimiter(limits.max_connections or 100))
    return entry


# -- where a model's requests go ----------------------------------------------------


@attrs.frozen(eq=False)
class Endpoint:
    """Everything needed to send one model's requests (value object; no I/O).

    ``provider`` is the registry name ("anthropic", "ollama", ...), ``wire``
    its translation.  ``timeout`` bounds connecting and every wait for bytes
    of a non-streamed answer; ``stall_timeout`` (default: ``timeout``) is
    how long a stream may stay silent.  ``http_client``, when given, is used
    instead of the pool and never closed here.
    """

    provider: str
    wire: WireFormat = attrs.field(repr=False)
    base_url: str
    api_key: Secret | None = attrs.field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    stall_timeout: float | None = None
    max_retries: int = 2
    limits: httpx.Limits = attrs.field(default=DEFAULT_LIMITS, repr=False)
    http_client: httpx.AsyncClient | None = attrs.field(default=None, repr=False)
    _headers: dict[str, str] = attrs.field(init=False, repr=False)
    _timeouts: tuple[httpx.Timeout, httpx.Timeout] = attrs.field(init=False, repr=False)
    _pool_key: tuple[Any, ...] = attrs.field(init=False, repr=False)
    _urls: dict[tuple[str, bool], httpx.URL] = attrs.field(init=False, repr=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        headers = {"content-type": "application/json", **self.wire.extra_headers()}
        if self.api_key is not None:
            headers.update(self.wire.auth_headers(self.api_key.reveal()))
        object.__setattr__(self, "_headers", headers)
        object.__setattr__(self, "_pool_key", _pool_key(self.base_url, self.limits))
        stall = self.timeout if self.stall_timeout is None else self.stall_timeout
        object.__setattr__(
            self,
            "_timeouts",
            (httpx.Timeout(self.timeout, pool=None), httpx.Timeout(self.timeout, read=stall, pool=None)),
        )

    def client(self) -> httpx.AsyncClient:
        """The client requests go through (the pooled one unless ``http_client`` was given)."""
        return self.connection()[0]

    def connection(self) -> tuple[httpx.AsyncClient, anyio.CapacityLimiter]:
        """The client and the limiter that bounds its requests in flight.

        Requests beyond ``limits.max_connections`` wait on the limiter (FIFO,
        no timeout) rather than in httpcore's pool, whose bookkeeping grows
        with the number of queued requests times connections.
        """
        if self.http_client is None:
            return _pooled(self.base_url, self.limits, self._pool_key)
        pool = _current_pool()
        limiter = pool.user_limiters.get(self.http_client)
        if limiter is None:
            limiter = pool.user_limiters[self.http_client] = anyio.CapacityLimiter(
                self.limits.max_connections or 100
            )
        return self.http_client, limiter

    def build(self, client: httpx.AsyncClient, request: ModelRequest, *, stream: bool) -> httpx.Request:
        body = json.dumps(self.wire.build_body(request, stream=stream), ensure_ascii=False).encode()
        url = self._urls.get((request.model, stream))
        if url is None:  # parsed once per model: URL parsing is a visible part of a request's CPU
            url = self._urls[request.model, stream] = httpx.URL(
                self.base_url + self.wire.path(request.model, stream=stream)
            )
        headers = self._headers if not stream else {**self._headers, "accept": "text/event-stream"}
        return client.build_request(
            "POST", url, content=body, headers=headers, timeout=self._timeouts[stream]
        )

    def scrub(self, text: str) -> str:
        return self.api_key.scrub(text) if self.api_key is not None else text


# -- error mapping ------------------------------------------------------------------


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
    """``(RetryInfo delay, daily quota exhausted, API key invalid)`` of a google.rpc error body."""
    if "type.googleapis.com" not in body:
        return None, False, False
    try:
        error = json.loads(body)
        if isinstance(error, list):
            error = error[0]
        details = error["error"]["details"]
    except (ValueError, KeyError, TypeError, IndexError):
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
                delay = max(float(raw), 0.0)
            except ValueError:
                pass
        elif kind.endswith("QuotaFailure"):
            for violation in detail.get("violations") or ():
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
    error_kind = getattr(wire, "error_kind", None)
    kind: str | None = error_kind(body) if error_kind is not None and body.strip() else None
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
    error = cls(f"{message} ({detail})", provider=endpoint.provider, status_code=status, retryable=retryable)
    return error, retry_delay(headers) if delay is None else delay


def transport_error(endpoint: Endpoint, exc: httpx.TransportError) -> ProviderError:
    """The exception for a request that got no HTTP answer."""
    what = endpoint.scrub(str(exc)) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(
            f"{endpoint.provider}: request timed out ({type(exc).__name__})", provider=endpoint.provider
        )
    return APIConnectionError(
        f"{endpoint.provider}: could not reach {endpoint.base_url}: {what}", provider=endpoint.provider
    )


# -- retries ------------------------------------------------------------------------


class _Failure(Exception):
    """Carries a ProviderError through stamina; unwrapped when retrying ends."""

    def __init__(self, error: ProviderError, delay: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


def _should_retry(exc: Exception) -> bool | float:
    if not isinstance(exc, _Failure) or not exc.error.retryable:
        return False
    delay = exc.delay
    if delay is None:
        return True
    if delay > MAX_RETRY_DELAY:
        return False
    return delay


def _attempts(endpoint: Endpoint) -> AsyncIterable[stamina.Attempt]:
    return stamina.retry_context(
        on=_should_retry,
        attempts=endpoint.max_retries + 1,
        timeout=RETRY_BUDGET,
        wait_initial=WAIT_INITIAL,
        wait_max=WAIT_MAX,
        wait_jitter=WAIT_JITTER,
        wait_exp_base=2,
    )


async def complete(endpoint: Endpoint, request: ModelRequest) -> ModelResponse:
    """Send ``request`` (non-streamed), retrying per the module's schedule.

    The request first waits for a slot in its client's limiter (at most
    ``limits.max_connections`` requests in flight per client) and keeps it
    through its retries.  Raises a :class:`~lazybridge.errors.ProviderError`
    subclass when every attempt failed (the last attempt's error).

    Cancellation: the request in flight is aborted -- its connection is
    closed, not returned to the pool, so the server sees the disconnect --
    and a wait (for a slot, or between attempts) ends at once; the slot is
    released.  Whether the provider already started (and bills) the
    generation is unknowable.
    """
    client, limiter = endpoint.connection()
    http_request = endpoint.build(client, request, stream=False)
    borrower = object()  # a token per request, not per task: a task may hold several
    await limiter.acquire_on_behalf_of(borrower)
    try:
        async for attempt in _attempts(endpoint):
            with attempt:
                return await _complete_once(endpoint, client, http_request)
    except _Failure as failure:
        raise failure.error from failure.error.__cause__
    finally:
        limiter.release_on_behalf_of(borrower)
    raise AssertionError("unreachable")  # pragma: no cover


async def _complete_once(endpoint: Endpoint, client: httpx.AsyncClient, request: httpx.Request) -> ModelResponse:
    try:
        response = await client.send(request)
    except httpx.TransportError as exc:
        raise _Failure(transport_error(endpoint, exc)) from exc
    if response.status_code >= 300:
        raise _Failure(*status_error(endpoint, response.status_code, response.headers, response.text))
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        snippet = endpoint.scrub(response.text[:200])
        raise _Failure(
            ProviderError(
                f"{endpoint.provider}: the response is not a JSON object: {snippet!r}",
                provider=endpoint.provider,
                status_code=response.status_code,
                retryable=False,
            )
        )
    return endpoint.wire.parse_response(body)


# -- streaming ----------------------------------------------------------------------


async def open_stream(endpoint: Endpoint, request: ModelRequest) -> EventStream:
    """Send ``request`` streamed; the :class:`EventStream` of its reply once it answers 200.

    Opening (connect, send, status) is retried like :func:`complete`; once
    the stream is open nothing is retried.  The stream keeps its slot in the
    client's limiter until it is closed.  The caller must
    :meth:`EventStream.aclose` it (it closes itself when exhausted or broken).

    Cancellation: as for :func:`complete`; no stream is left open.
    """
    client, limiter = endpoint.connection()
    http_request = endpoint.build(client, request, stream=True)
    borrower = object()
    await limiter.acquire_on_behalf_of(borrower)
    stream: EventStream | None = None
    try:
        async for attempt in _attempts(endpoint):
            with attempt:
                response = await _open_once(endpoint, client, http_request)
                stream = EventStream(endpoint, response, release=lambda: limiter.release_on_behalf_of(borrower))
                return stream
    except _Failure as failure:
        raise failure.error from failure.error.__cause__
    finally:
        if stream is None:
            limiter.release_on_behalf_of(borrower)
    raise AssertionError("unreachable")  # pragma: no cover


async def _open_once(endpoint: Endpoint, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    try:
        response = await client.send(request, stream=True)
    except httpx.TransportError as exc:
        raise _Failure(transport_error(endpoint, exc)) from exc
    if response.status_code < 300:
        return response
    body = ""
    try:
        await response.aread()
        body = response.text
    except httpx.TransportError:
        pass
    finally:
        await _close_response(response)
    raise _Failure(*status_error(endpoint, response.status_code, response.headers, body))


async def _close_response(response: httpx.Response) -> None:
    with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
        await response.aclose()


class EventStream:
    """The text deltas of one streamed reply, then its :class:`ModelResponse`.

    ``await stream.__anext__()`` returns the next text delta (raising
    ``StopAsyncIteration`` at the end); :meth:`finish` then returns the
    accumulated response, equal to the non-streamed parse of the same reply.
    A plain object rather than an async generator, so no cancel scope is
    ever held across a yield; the HTTP response is closed when the stream
    ends, breaks, is cancelled mid-read, or :meth:`aclose` is called.

    Errors: a stream silent for longer than the stall timeout raises
    :class:`~lazybridge.errors.APITimeoutError`; one that breaks off raises
    :class:`~lazybridge.errors.StreamError`; an error event raises the
    class the wire format chose.
    """

    def __init__(
        self, endpoint: Endpoint, response: httpx.Response, *, release: Callable[[], None] | None = None
    ) -> None:
        self._endpoint = endpoint
        self._response = response
        self._release = release
        self._decoder: StreamDecoder = endpoint.wire.stream_decoder()
        self._pending: collections.deque[str] = collections.deque()
        self._events: AsyncGenerator[Any, None] | None = None
        self._final: ModelResponse | None = None
        self._exhausted = False
        self._closed = False

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> str:
        while not self._pending:
            if self._exhausted or self._closed:
                raise StopAsyncIteration
            await self._read_event()
        return self._pending.popleft()

    async def _read_event(self) -> None:
        done = False
        try:
            if self._events is None:
                self._events = await self._start()
                if self._events is None:
                    done = True
                    return
            try:
                sse = await self._events.__anext__()
            except StopAsyncIteration:
                self._exhausted = True
                done = True
                await self.aclose()
                return
            except httpx.TimeoutException as exc:
                stall = self._endpoint.stall_timeout or self._endpoint.timeout
                raise APITimeoutError(
                    f"{self._endpoint.provider}: the stream stalled: nothing received for {stall:g}s",
                    provider=self._endpoint.provider,
                ) from exc
            except httpx.TransportError as exc:
                raise StreamError(
                    f"{self._endpoint.provider}: the stream broke off: "
                    f"{self._endpoint.scrub(str(exc)) or type(exc).__name__}",
                    provider=self._endpoint.provider,
                    retryable=True,
                ) from exc
            event = "" if sse.event == "message" else sse.event
            self._pending.extend(self._decoder.feed(event, sse.data))
            done = True
        finally:
            if not done:
                await self.aclose()

    async def _start(self) -> AsyncGenerator[Any, None] | None:
        """The SSE events of the response; ``None`` if a server answered with plain JSON."""
        content_type = self._response.headers.get("content-type", "")
        if "json" in content_type and "event-stream" not in content_type:
            # Some compatible servers ignore "stream": true.  One chunk, same result.
            await self._response.aread()
            await self.aclose()
            try:
                body = json.loads(self._response.content)
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise StreamError(
                    f"{self._endpoint.provider}: expected an event stream, got an invalid JSON body",
                    provider=self._endpoint.provider,
                )
            self._final = self._endpoint.wire.parse_response(body)
            self._exhausted = True
            if self._final.text:
                self._pending.append(self._final.text)
            return None
        from httpx_sse import EventSource

        return EventSource(self._response).aiter_sse()

    def finish(self) -> ModelResponse:
        """The whole reply; call after the stream is exhausted.

        Raises :class:`~lazybridge.errors.StreamError` if the stream ended
        before the provider said the reply was complete.
        """
        if self._final is not None:
            return self._final
        if not self._exhausted:
            raise StreamError("the stream was not read to its end", provider=self._endpoint.provider)
        self._final = self._decoder.finish()
        return self._final

    async def aclose(self) -> None:
        """Close the HTTP response (idempotent).  A response not read to its end
        closes its connection rather than returning it to the pool."""
        if self._closed:
            return
        self._closed = True
        if self._release is not None:
            self._release()  # the request's slot in the client's limiter
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            await self._response.aclose()
            events = self._events
            if events is not None:
                # Run the closed stream to its end (it fails at once, or yields
                # what was already buffered), so that every async generator
                # nested inside httpx and httpx-sse finishes here instead of
                # being garbage collected half-way (which Trio warns about).
                for _ in range(_DRAIN_LIMIT):
                    try:
                        await events.__anext__()
                    except Exception:  # StopAsyncIteration, or the closed connection's error
                        break
                await events.aclose()

"""Sending model requests: admission, retries and error mapping.

Every provider call goes through this module; the wire formats
(:mod:`lazybridge.providers.base`) only translate.

Client pool
    One shared client per event loop, origin, limits and transport: see
    :mod:`._pool`.  A client passed by the user is used as is and never
    closed here.

Retry schedule
    Retried: connection errors and timeouts, a stream that breaks off or
    stalls before it produced any text (see :class:`EventStream`), and the statuses 408, 409,
    429, 500, 502, 503, 504 and 529 -- but not a 429 that says the quota
    or spend limit is exhausted (``insufficient_quota``, a daily Gemini
    quota).  Never retried: 400, 401, 403, 404, 413, 422 and every other
    status.  ``x-should-retry: true|false`` overrides the status.  With
    ``max_retries`` = *m* (default 2) there are at most *m* + 1 attempts, and
    no retry starts more than 120 s after the first failure.  The wait before
    retry *n* (1-based) is, in stamina's notation::

        wait(n) = min(8.0, 0.5 * 2 ** (n - 1) + random(0, 0.5))   seconds

    unless the provider named a delay -- ``retry-after-ms``, ``retry-after``
    (seconds or an HTTP date), Gemini's ``RetryInfo.retryDelay`` -- which is
    used as is when it is at most 60 s.  A longer one is not waited for: the
    error comes back at once, with ``retryable=True``.  ``stamina.set_testing``
    turns every wait to zero (the tests do); ``stamina.set_active(False)``
    turns retries off.

    Each retry is told to the caller's ``on_retry`` (the engine emits a
    ``model_retry`` event) and logged at INFO on the ``lazybridge.providers``
    logger; nothing is printed unless the application configured logging.
    The loop is LazyBridge's own, so stamina's process-wide retry hooks are
    neither called nor changed.

Errors
    Every failure is one class of the tree in :mod:`lazybridge.errors`,
    carrying the provider's own message, the status code and a truthful
    ``retryable``.  An answer the wire format cannot read (not JSON, or JSON
    of another shape) is a :class:`~lazybridge.errors.MalformedResponseError`
    quoting a short, key-masked excerpt; a malformed *error* body keeps the
    class its status gives.  API keys never appear in a message: they are sent only
    in headers, and scrubbed from any provider message that echoes them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import attrs
import httpx
import stamina

from .._deadlines import deadlines_paused
from .._secrets import Secret
from ..budget import estimate_input_tokens
from ..errors import MalformedResponseError, ProviderError
from ..messages import ModelRequest, ModelResponse
from ._errormap import retry_delay, scrubbed, status_error, transport_error
from ._eventstream import EventStream, _close_response
from ._pool import DEFAULT_LIMITS, DEFAULT_TIMEOUT, pool_key, pooled, user_client_limiter
from ._ratelimit import Account, Permit, RateLimit, account, rate_wait_reporter
from ._shape import malformed, obj, restate
from ._transport import Transport, setting
from .base import OnRetry, RetryNotice, WireFormat

T = TypeVar("T")

__all__ = [
    "Endpoint",
    "EventStream",
    "OnRetry",
    "RetryNotice",
    "Secret",
    "complete",
    "open_stream",
    "retry_delay",
    "status_error",
]

#: Longest provider-named delay we wait for before retrying.
MAX_RETRY_DELAY = 60.0
#: No retry starts later than this many seconds after the first attempt.
RETRY_BUDGET = 120.0
WAIT_INITIAL = 0.5
WAIT_MAX = 8.0
WAIT_JITTER = 0.5

logger = logging.getLogger("lazybridge.providers")
# The library's loggers print nothing unless the application configures
# logging (without a handler, Python's last resort prints WARNING and above).
logging.getLogger("lazybridge").addHandler(logging.NullHandler())


# -- where a model's requests go ----------------------------------------------------


@attrs.frozen(eq=False)
class Endpoint:
    """Everything needed to send one model's requests (value object; no I/O).

    ``provider`` is the registry name ("anthropic", "ollama", ...), ``wire``
    its translation.  ``timeout`` bounds connecting and every wait for bytes
    of a non-streamed answer; ``stall_timeout`` (default: ``timeout``) is
    how long a stream may stay silent.  ``http_client``, when given, is used
    instead of the pool and never closed here.  ``http_transport`` picks the
    pooled client's transport (see :mod:`._transport`); ``None`` reads
    ``LAZYBRIDGE_HTTP_TRANSPORT`` here, at construction.
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
    rate_limit: RateLimit | None = attrs.field(default=None, repr=False)
    http_transport: Transport | None = attrs.field(default=None, repr=False)
    #: The provider account's shared rate limiter (see :mod:`._ratelimit`).
    account: Account = attrs.field(init=False, repr=False)
    _headers: dict[str, str] = attrs.field(init=False, repr=False)
    _timeouts: tuple[httpx.Timeout, httpx.Timeout] = attrs.field(init=False, repr=False)
    _pool_key: tuple[Any, ...] = attrs.field(init=False, repr=False)
    _urls: dict[tuple[str, bool], httpx.URL] = attrs.field(init=False, repr=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        headers = {"content-type": "application/json", **self.wire.extra_headers()}
        if self.api_key is not None:
            headers.update(self.wire.auth_headers(self.api_key.reveal()))
        object.__setattr__(self, "_headers", headers)
        object.__setattr__(
            self, "_pool_key", pool_key(self.base_url, self.limits, self._transport_setting())
        )
        digest = hashlib.sha256(self.api_key.reveal().encode()).digest() if self.api_key is not None else None
        object.__setattr__(self, "account", account(self._pool_key[0], digest, self.rate_limit))
        stall = self.timeout if self.stall_timeout is None else self.stall_timeout
        object.__setattr__(
            self,
            "_timeouts",
            (httpx.Timeout(self.timeout, pool=None), httpx.Timeout(self.timeout, read=stall, pool=None)),
        )

    def _transport_setting(self) -> Transport:
        # A user's client is used as is: the variable is not even read for it.
        return setting(self.http_transport) if self.http_client is None else "httpx"

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
            return pooled(self.base_url, self.limits, self._pool_key)
        return self.http_client, user_client_limiter(self.http_client, self.limits)

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


_shared: weakref.WeakValueDictionary[tuple[Any, ...], Endpoint] = weakref.WeakValueDictionary()


def shared_endpoint(
    provider: str,
    wire: WireFormat,
    base_url: str,
    api_key: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    stall_timeout: float | None = None,
    max_retries: int = 2,
    limits: httpx.Limits = DEFAULT_LIMITS,
    http_client: httpx.AsyncClient | None = None,
    rate_limit: RateLimit | None = None,
    http_transport: Transport | None = None,
) -> Endpoint:
    """An :class:`Endpoint`, shared by every engine configured the same way.

    A fan-out of a thousand agents on one model then holds one endpoint (its
    headers, timeouts and parsed URLs) instead of a thousand copies.  Keyed
    by a digest of the key, never the key itself.  Endpoints of one origin
    and key share one rate-limit :class:`~._ratelimit.Account` whatever
    their other settings.
    """
    secret = Secret(api_key) if api_key else None
    if http_client is not None:
        return Endpoint(
            provider, wire, base_url, secret, timeout, stall_timeout, max_retries, limits, http_client, rate_limit
        )
    digest = hashlib.sha256(api_key.encode()).digest() if api_key else None
    transport = setting(http_transport)
    key = (
        provider, wire, base_url, digest, timeout, stall_timeout, max_retries,
        pool_key(base_url, limits, transport)[1:], rate_limit,
    )
    endpoint = _shared.get(key)
    if endpoint is None:
        endpoint = Endpoint(
            provider, wire, base_url, secret, timeout, stall_timeout, max_retries, limits,
            rate_limit=rate_limit, http_transport=transport,
        )
        _shared[key] = endpoint
    return endpoint


# -- retries ------------------------------------------------------------------------




class _Failure(Exception):
    """Carries a ProviderError out of one attempt, with the delay the provider named."""

    def __init__(self, error: ProviderError, delay: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


def _should_retry(exc: Exception) -> bool | float:
    """Whether a failure may be retried: ``True``, the provider's delay (seconds), or ``False``."""
    if not isinstance(exc, _Failure) or not exc.error.retryable:
        return False
    delay = exc.delay
    if delay is None:
        return True
    if delay > MAX_RETRY_DELAY:
        return False
    return delay


def _backoff(retry: int) -> float:
    """The wait before retry number ``retry`` (1-based) when the provider named none."""
    return float(min(WAIT_MAX, WAIT_INITIAL * 2 ** (retry - 1) + random.uniform(0, WAIT_JITTER)))


class _Retries:
    """One request's retry budget, shared by every way it can fail before the caller saw output.

    The loop is ours rather than ``stamina.retry_context``'s because stamina
    reports every retry through its *process-wide* hooks -- by default a bare
    ``stamina.retry_scheduled`` warning that lands on stderr in any program
    that has not configured logging.  A library must stay quiet unasked and
    must not reconfigure stamina for the rest of the process, so retries are
    told to ``on_retry`` (the engine turns it into a ``model_retry`` event) and
    to the ``lazybridge.providers`` logger at INFO.  stamina's switches still
    hold: ``stamina.set_active(False)`` turns retries off and
    ``stamina.set_testing(True)`` makes every wait zero.
    """

    __slots__ = ("attempt", "endpoint", "first_failure", "on_retry")

    def __init__(self, endpoint: Endpoint, on_retry: OnRetry | None) -> None:
        self.endpoint = endpoint
        self.on_retry = on_retry
        self.attempt = 1
        self.first_failure: float | None = None

    async def wait(self, failure: _Failure) -> bool:
        """Wait before the next attempt and return ``True``; ``False`` if ``failure`` is final.

        Cancellation: the wait ends at once.
        """
        verdict = _should_retry(failure)
        if verdict is False or not stamina.is_active() or self.attempt > self.endpoint.max_retries:
            return False
        now = anyio.current_time()
        if self.first_failure is None:
            self.first_failure = now
        wait = _backoff(self.attempt) if verdict is True else float(verdict)
        if stamina.is_testing():
            wait = 0.0
        if now + wait - self.first_failure > RETRY_BUDGET:
            return False
        self.attempt += 1
        error = failure.error
        logger.info(
            "%s: retrying (attempt %d of %d) in %.2fs after %s: %s",
            self.endpoint.provider,
            self.attempt,
            self.endpoint.max_retries + 1,
            wait,
            type(error).__name__,
            error,
        )
        if self.on_retry is not None:
            self.on_retry(RetryNotice(self.attempt, wait, error))
        await anyio.sleep(wait)
        return True


async def _with_retries(retries: _Retries, send: Callable[[], Awaitable[T]]) -> T:
    """``await send()``, retried per the module's schedule (see :class:`_Retries`)."""
    while True:
        try:
            return await send()
        except _Failure as failure:
            if not await retries.wait(failure):
                raise failure.error from failure.error.__cause__


async def complete(
    endpoint: Endpoint, request: ModelRequest, *, on_retry: OnRetry | None = None
) -> ModelResponse:
    """Send ``request`` (non-streamed), retrying per the module's schedule.

    The request first waits for a slot in its client's limiter (at most
    ``limits.max_connections`` requests in flight per client) and keeps it
    through its retries.  Raises a :class:`~lazybridge.errors.ProviderError`
    subclass when every attempt failed (the last attempt's error).
    ``on_retry`` is called before each retry's wait; it must not raise.

    Cancellation: the request in flight is aborted -- its connection is
    closed, not returned to the pool, so the server sees the disconnect --
    and a wait (for a slot, or between attempts) ends at once; the slot is
    released.  Whether the provider already started (and bills) the
    generation is unknowable.
    """
    client, limiter = endpoint.connection()
    http_request = endpoint.build(client, request, stream=False)
    borrower = object()  # a token per request, not per task: a task may hold several
    turns = _Turns(endpoint, request)
    await turns.admit(limiter, borrower)
    try:
        retries = _Retries(endpoint, on_retry)
        return await _with_retries(retries, lambda: _complete_once(endpoint, client, http_request, turns))
    finally:
        limiter.release_on_behalf_of(borrower)


class _Turns:
    """One request's turns in its account's rate limit: the first attempt's, then one per retry.

    Every attempt is a request the provider counts, so a retry waits for the
    account's turn again (and for the end of any pause a 429 started).
    """

    __slots__ = ("account", "first", "report", "tokens")

    def __init__(self, endpoint: Endpoint, request: ModelRequest) -> None:
        self.account = endpoint.account
        self.tokens = estimate_input_tokens(request)
        self.first: Permit | None = None
        # Who hears of this request's rate waits: read now, because a stream is
        # reopened later, while its reader iterates, outside the call that opened it.
        self.report = rate_wait_reporter.get()

    async def admit(self, limiter: anyio.CapacityLimiter, borrower: object) -> None:
        """Wait for the account's turn, then for a slot of the client.

        The rate wait comes first, so a request waiting for its turn holds no
        connection slot that another account on the same client could use.
        Both waits pause step deadlines and end at once on cancellation,
        giving back what was taken.
        """
        permit = await self.account.acquire(self.tokens)
        try:
            await _acquire(limiter, borrower)
        except BaseException:
            self.account.settle(permit, None, None)
            raise
        self.first = permit

    async def next(self) -> Permit:
        """The permit of the next attempt."""
        permit, self.first = self.first, None
        if permit is not None:
            return permit
        heard = rate_wait_reporter.set(self.report)
        try:
            return await self.account.acquire(self.tokens)
        finally:
            rate_wait_reporter.reset(heard)


def _answered(endpoint: Endpoint, permit: Permit, response: httpx.Response, used: int | None) -> None:
    """Tell the account what an answer said; a 429/529 naming a delay pauses the account."""
    endpoint.account.settle(permit, response.headers, used)


def _pause_for(endpoint: Endpoint, status: int, error: ProviderError, delay: float | None) -> None:
    if status in (429, 529) and error.retryable and delay is not None:
        endpoint.account.pause(delay)


async def _acquire(limiter: anyio.CapacityLimiter, borrower: object) -> None:
    """Take a slot of ``limiter`` for ``borrower``; while waiting for one, step deadlines stand still.

    The pool cap is a concurrency limit the caller did not ask for: time
    spent queued behind other requests is not the run's execution, so it
    must not count against ``step_timeout`` (see :mod:`lazybridge._deadlines`).
    An agent's own ``timeout`` and any cancellation still end the wait.
    """
    try:
        limiter.acquire_on_behalf_of_nowait(borrower)
    except anyio.WouldBlock:
        with deadlines_paused():
            await limiter.acquire_on_behalf_of(borrower)


async def _complete_once(
    endpoint: Endpoint, client: httpx.AsyncClient, request: httpx.Request, turns: _Turns
) -> ModelResponse:
    permit = await turns.next()
    permit.sent = time.time()
    try:
        response = await client.send(request)
    except httpx.TransportError as exc:
        endpoint.account.settle(permit, None, 0)
        raise _Failure(transport_error(endpoint, exc)) from exc
    except BaseException:
        endpoint.account.settle(permit, None, None)
        raise
    if response.status_code >= 300:
        _answered(endpoint, permit, response, 0)
        error, delay = status_error(endpoint, response.status_code, response.headers, response.text)
        _pause_for(endpoint, response.status_code, error, delay)
        raise _Failure(error, delay)
    # The answer's headers and usage count whatever the body turns out to be.
    used: int | None = None
    try:
        try:
            body = json.loads(response.content)
        except (ValueError, RecursionError):
            raise malformed("a JSON object", response.text, raw=True) from None
        answer = endpoint.wire.parse_response(obj(body, "the response"))
        if answer.usage.reported:
            used = answer.usage.input_tokens + answer.usage.output_tokens
        return answer
    except MalformedResponseError as exc:
        # The parsers cannot know the key: the excerpt is masked here.
        restate(exc, provider=endpoint.provider, scrub=endpoint.scrub, status_code=response.status_code)
        raise _Failure(exc) from exc.__cause__
    except Exception as exc:  # a parser's message may quote the body, and the body the key
        scrubbed(endpoint, exc)
        raise
    finally:
        _answered(endpoint, permit, response, used)


# -- streaming ----------------------------------------------------------------------


async def open_stream(
    endpoint: Endpoint, request: ModelRequest, *, on_retry: OnRetry | None = None
) -> EventStream:
    """Send ``request`` streamed; the :class:`EventStream` of its reply once it answers 200.

    Opening (connect, send, status) is retried like :func:`complete`, and so
    is a stream whose connection breaks off or stalls before it produced its
    first text delta (the :class:`EventStream` reopens it, within the same
    attempts and time budget); once a delta was returned nothing is retried.
    The stream keeps its slot in the client's limiter until it is closed.
    The caller must :meth:`EventStream.aclose` it (it closes itself when
    exhausted or broken).

    Cancellation: as for :func:`complete`; no stream is left open.
    """
    client, limiter = endpoint.connection()
    http_request = endpoint.build(client, request, stream=True)
    borrower = object()
    turns = _Turns(endpoint, request)
    await turns.admit(limiter, borrower)
    retries = _Retries(endpoint, on_retry)

    def send() -> Awaitable[httpx.Response]:
        return _open_once(endpoint, client, http_request, turns)

    async def reopen(error: ProviderError) -> httpx.Response | None:
        if not await retries.wait(_Failure(error)):
            return None
        return await _with_retries(retries, send)

    opened = False
    try:
        response = await _with_retries(retries, send)
        opened = True
    finally:
        if not opened:
            limiter.release_on_behalf_of(borrower)
    return EventStream(
        endpoint, response, release=lambda: limiter.release_on_behalf_of(borrower), reopen=reopen
    )


async def _open_once(
    endpoint: Endpoint, client: httpx.AsyncClient, request: httpx.Request, turns: _Turns
) -> httpx.Response:
    permit = await turns.next()
    permit.sent = time.time()
    try:
        response = await client.send(request, stream=True)
    except httpx.TransportError as exc:
        endpoint.account.settle(permit, None, 0)
        raise _Failure(transport_error(endpoint, exc)) from exc
    except BaseException:
        endpoint.account.settle(permit, None, None)
        raise
    # A stream's usage arrives at its end, past this layer: its tokens stay the estimate.
    _answered(endpoint, permit, response, None if response.status_code < 300 else 0)
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
    error, delay = status_error(endpoint, response.status_code, response.headers, body)
    _pause_for(endpoint, response.status_code, error, delay)
    raise _Failure(error, delay)

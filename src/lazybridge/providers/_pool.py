"""The shared HTTP clients: one per event loop, origin, limits and transport.

One :class:`httpx.AsyncClient` per event loop per origin,
:class:`httpx.Limits` and transport setting, shared by every agent (an
``anyio.lowlevel.RunVar`` holds them).  On asyncio with the ``aiohttp``
extra aiohttp does their I/O (see :mod:`._transport`).  The pool is
bounded (:data:`DEFAULT_LIMITS`: 100 connections, 20 kept alive on
httpx's transport, all 100 on aiohttp's).  Requests in flight per client are capped
at ``max_connections`` by an :class:`anyio.CapacityLimiter`; the rest
wait on it (first come, first served, never timing out), so a large
fan-out queues cheaply instead of failing with ``PoolTimeout`` -- or
crowding httpcore's pool, whose bookkeeping costs grow with queued
requests times connections (1,000 requests queued there: ~20 ms of CPU
each).  Time spent waiting on that limiter does not count against a
branch's ``step_timeout`` (:mod:`lazybridge._deadlines`).
The clients are closed by :func:`lazybridge.aclose` (sync calls do it for
their private loop), or when their loop shuts down (see
:mod:`lazybridge._resources`).  The SSL context is built once per process.  A
client passed by the user is used as is and never closed here.
"""

from __future__ import annotations

import ssl
import threading
import weakref
from typing import Any

import anyio
import httpx
from anyio.lowlevel import RunVar

from .._resources import on_loop_close
from ._eventstream import CLOSE_TIMEOUT
from ._transport import Transport, aiohttp_client, chosen, setting

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "USER_AGENT",
    "pool_key",
    "pooled",
    "pooled_client",
    "ssl_context",
    "user_client_limiter",
]

#: The pool bounds (httpx's own defaults; see DESIGN.md rule 6 before changing them).
#: The keep-alive count differs per transport (benchmarks/keepalive.py: a 1,000-branch
#: fan-out over loopback, 100 ms answers).  httpx's transport keeps 20: with 100 kept
#: alive it opened fewer connections (0.25 per request instead of 0.99) but httpcore's
#: hand-off cost ~9.6 ms of client CPU per request instead of ~2.1, and 3.7x the wall
#: time.  aiohttp's connector has no count bound: it keeps every idle connection (up
#: to ``max_connections``) for ``keepalive_expiry``, and opened exactly 100 (0.1 per
#: request) at ~0.9-1.0 ms per request -- so on aiohttp "20" means "all 100", and the
#: count only tells "none" (0: close each after use) from "some".  Numbers from the
#: 2-core VM under load (benchmarks/RESULTS.md, "Transports").
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
#: Seconds a request may take to connect, or wait for the next bytes of its answer.
DEFAULT_TIMEOUT = 600.0
USER_AGENT = "lazybridge/0.1"

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
            with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
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


def pooled_client(
    base_url: str, limits: httpx.Limits = DEFAULT_LIMITS, transport: Transport | None = None
) -> httpx.AsyncClient:
    """The shared client of this event loop for ``base_url``'s origin, ``limits`` and transport.

    Must be called inside a running event loop.  The client lives until
    :func:`lazybridge.aclose` runs in this loop, or the loop shuts down.
    ``transport`` (default: ``LAZYBRIDGE_HTTP_TRANSPORT``, else ``"auto"``)
    picks the transport as :mod:`._transport` says; raises
    ``ConfigurationError`` for ``"aiohttp"`` on asyncio without the extra.
    """
    return pooled(base_url, limits, transport=setting(transport))[0]


def pool_key(base_url: str, limits: httpx.Limits, transport: Transport) -> tuple[Any, ...]:
    return (
        _origin(httpx.URL(base_url)),
        limits.max_connections,
        limits.max_keepalive_connections,
        limits.keepalive_expiry,
        transport,
    )


def pooled(
    base_url: str, limits: httpx.Limits, key: tuple[Any, ...] | None = None, *, transport: Transport = "auto"
) -> tuple[httpx.AsyncClient, anyio.CapacityLimiter]:
    pool = _current_pool()
    key = key or pool_key(base_url, limits, transport)
    entry = pool.clients.get(key)
    if entry is None:
        settings: dict[str, Any] = {
            "limits": limits,
            "timeout": httpx.Timeout(DEFAULT_TIMEOUT, pool=None),
            "verify": ssl_context(),
            "headers": {"user-agent": USER_AGENT},
        }
        client = aiohttp_client(**settings) if chosen(key[-1]) == "aiohttp" else httpx.AsyncClient(**settings)
        entry = pool.clients[key] = (client, anyio.CapacityLimiter(limits.max_connections or 100))
    return entry


def user_client_limiter(client: httpx.AsyncClient, limits: httpx.Limits) -> anyio.CapacityLimiter:
    """The limiter bounding this loop's requests in flight on a client the user passed."""
    pool = _current_pool()
    limiter = pool.user_limiters.get(client)
    if limiter is None:
        limiter = pool.user_limiters[client] = anyio.CapacityLimiter(limits.max_connections or 100)
    return limiter

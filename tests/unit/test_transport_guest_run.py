"""Trio in guest mode on an asyncio host loop: the pooled clients keep httpx's transport.

Trio's guest run executes inside the host loop's callbacks, so "is an asyncio
loop running?" answers yes there; its tasks are still Trio's, and aiohttp
(asyncio only) would fail in them.  The library asks whether the current task
is an asyncio task instead.
"""

from __future__ import annotations

import asyncio

import httpx
import trio

from lazybridge.providers import _pool


async def _pooled_is_aiohttp() -> bool:
    client = _pool.pooled_client("https://api.example.test", transport="auto")
    try:
        return type(client._transport).__module__.startswith("httpx_aiohttp") or not isinstance(
            client._transport, httpx.AsyncHTTPTransport
        )
    finally:
        await client.aclose()


def test_a_trio_guest_run_on_an_asyncio_host_keeps_httpx() -> None:
    async def host() -> bool:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        trio.lowlevel.start_guest_run(
            _pooled_is_aiohttp,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=lambda outcome: done.set_result(outcome.unwrap()),
        )
        return await done

    assert asyncio.run(host()) is False


def test_plain_asyncio_uses_aiohttp_when_installed() -> None:
    """The same check in a plain asyncio task: aiohttp (the extra is installed in the test env)."""
    assert asyncio.run(_pooled_is_aiohttp()) is True

"""The seam lazybridge.ray uses: a permit source outside the process, consulted after the account's own turn.

Real requests to the fake provider on loopback; the source is a gate the
test opens, so "the request waited for the source" is observed, not timed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import anyio
import pytest

from lazybridge import Agent, LLMEngine, RateLimit
from lazybridge.providers import _ratelimit
from lazybridge.testing import FakeProvider

pytestmark = pytest.mark.anyio


class Gate:
    """A permit source that lets requests through only once opened."""

    def __init__(self) -> None:
        self.waiting = 0
        self.reached = anyio.Event()
        self.opened = anyio.Event()

    async def take(self, tokens: int) -> None:
        self.waiting += 1
        self.reached.set()
        await self.opened.wait()


@pytest.fixture
def sources() -> Iterator[list[tuple[str, bytes | None, RateLimit]]]:
    calls: list[tuple[str, bytes | None, RateLimit]] = []
    gate = Gate()

    def factory(origin: str, digest: bytes | None, configured: RateLimit) -> Gate:
        calls.append((origin, digest, configured))
        return gate

    _ratelimit.set_permit_sources(factory)
    try:
        yield calls
    finally:
        _ratelimit.set_permit_sources(None)


async def test_a_configured_account_waits_for_its_permit_source(
    shared_fake_provider: tuple[FakeProvider, str], sources: list[tuple[str, bytes | None, RateLimit]]
) -> None:
    fake, base_url = shared_fake_provider
    fake.reset()
    limit = RateLimit(requests_per_minute=6000)
    engine = LLMEngine("gpt-5.4-mini", base_url=base_url, api_key="key-of-the-source-test", rate_limit=limit)
    ((origin, digest, configured),) = sources
    assert origin == base_url and configured == limit
    assert digest == hashlib.sha256(b"key-of-the-source-test").digest()  # a digest, never the key
    account = _ratelimit.account(origin, digest)
    gate = account.source
    assert isinstance(gate, Gate)

    async with anyio.create_task_group() as group:
        done = anyio.Event()

        async def ask() -> None:
            assert (await Agent(engine=engine).run("hello")).ok
            done.set()

        group.start_soon(ask)
        await gate.reached.wait()
        assert fake.requests == []  # the account's own turn came, the source's not yet
        gate.opened.set()
        await done.wait()
    assert len(fake.requests) == 1


async def test_a_request_cancelled_at_the_source_gives_its_place_back() -> None:
    now = 1000.0
    account = _ratelimit.Account(clock=lambda: now)
    account.configure(RateLimit(requests_per_minute=60))  # one a second, no burst
    account.source = gate = Gate()
    with anyio.move_on_after(0.05):
        await account.acquire(10)
    assert gate.waiting == 1  # it had its own turn, and was waiting at the source
    assert account.requests.tat == now  # the second it booked is free again: the next goes at once


def test_an_account_without_a_configured_limit_gets_no_source(
    sources: list[tuple[str, bytes | None, RateLimit]],
) -> None:
    account = _ratelimit.account("http://127.0.0.1:9", b"unconfigured-digest")
    assert account.source is None and sources == []

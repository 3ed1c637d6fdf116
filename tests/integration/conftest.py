"""Fixtures shared by the integration tests: the fake provider on loopback, scripted per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import stamina

import lazybridge
from lazybridge.testing import FakeProvider, reset_rate_limits


@pytest.fixture
def fake(shared_fake_provider: tuple[FakeProvider, str]) -> Iterator[FakeProvider]:
    """The session's fake provider, emptied of earlier scripts and records; retries do not wait."""
    shared_fake_provider[0].reset()
    reset_rate_limits()  # the tests share one server, so one rate-limit account per key
    with stamina.set_testing(True, attempts=10, cap=True):
        yield shared_fake_provider[0]


@pytest.fixture
def base_url(shared_fake_provider: tuple[FakeProvider, str]) -> str:
    return shared_fake_provider[1]


@pytest.fixture
async def close_pool(anyio_backend: object) -> AsyncIterator[None]:
    """Close the test loop's pooled HTTP clients, as an application does before its loop ends."""
    yield
    await lazybridge.aclose()

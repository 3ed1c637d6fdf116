"""Fixtures shared by the integration tests: the fake provider on loopback, scripted per test.

The async tests of the HTTP layer (:data:`BOTH_TRANSPORTS`) run three times:
on asyncio with the aiohttp transport (``[asyncio-aiohttp]``, what
``lazybridge[aiohttp]`` users get), on asyncio with httpx's own transport
(``[asyncio-httpx]``), and on Trio (``[trio]``, always httpx's transport).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import stamina

import lazybridge
from lazybridge.providers._transport import ENV_VAR
from lazybridge.testing import FakeProvider, reset_rate_limits

#: The modules whose tests run on both asyncio transports: those about the HTTP
#: layer itself (sending, streaming, retries, timeouts, cancellation reaching the
#: socket, errors, rate-limit headers).  The others run on asyncio with the
#: default transport (aiohttp, which the test extra installs) and on Trio.
BOTH_TRANSPORTS = {
    "test_budget_loopback",
    "test_error_keeps_exception",
    "test_policies_http",
    "test_providers_cancel",
    "test_providers_errors",
    "test_providers_local_servers",
    "test_providers_malformed",
    "test_providers_retries",
    "test_providers_tls",
    "test_providers_wire",
    "test_rate_limits",
    "test_resources",
    "test_secrets",
    "test_transport",
}
_TRANSPORT_BACKENDS = [
    pytest.param(("asyncio", "aiohttp"), id="asyncio-aiohttp"),
    pytest.param(("asyncio", "httpx"), id="asyncio-httpx"),
    pytest.param(("trio", "httpx"), id="trio"),
]


@pytest.hookimpl(tryfirst=True)  # before pytest reads the parametrize marks
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if module in BOTH_TRANSPORTS and "anyio_backend" in metafunc.fixturenames:
        # As a mark, which pytest applies instead of the fixture's own params.
        metafunc.definition.add_marker(
            pytest.mark.parametrize("anyio_backend", _TRANSPORT_BACKENDS, indirect=True)
        )


@pytest.fixture(
    params=[
        pytest.param(("asyncio", None), id="asyncio"),
        pytest.param(("trio", None), id="trio"),
    ]
)
def anyio_backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, object]]:
    """The backend; in :data:`BOTH_TRANSPORTS` also the pooled clients' transport.

    The transport is set through ``LAZYBRIDGE_HTTP_TRANSPORT``.  ``aiohttp``
    is required there, not ``auto``: a missing ``httpx-aiohttp`` fails those
    tests instead of silently running httpx twice.
    """
    backend, transport = request.param
    if transport is None:
        monkeypatch.delenv(ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(ENV_VAR, transport)
    return backend, {"debug": True} if backend == "asyncio" else {}


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

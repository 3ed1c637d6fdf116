"""The pooled clients' transport: aiohttp on asyncio when installed and allowed, httpx's own otherwise.

Runs on asyncio-aiohttp, asyncio-httpx and Trio (see ``BOTH_TRANSPORTS`` in
conftest.py, which sets ``LAZYBRIDGE_HTTP_TRANSPORT`` per case); the
explicit ``http_transport=`` settings below override that variable.
"""

from __future__ import annotations

import os
import sys

import anyio
import httpx
import httpx_aiohttp
import pytest

from lazybridge import Agent
from lazybridge.engines.llm import LLMEngine
from lazybridge.errors import ConfigurationError
from lazybridge.providers import _pool
from lazybridge.providers._transport import ENV_VAR
from lazybridge.testing import FakeProvider, Reply

pytestmark = pytest.mark.usefixtures("close_pool")

KEY = "sk-transport-test-0123456789"


def engine(base_url: str, **kwargs: object) -> LLMEngine:
    return LLMEngine("gpt-5.4-mini", base_url=base_url, api_key=KEY, **kwargs)  # type: ignore[arg-type]


def is_aiohttp(client: httpx.AsyncClient) -> bool:
    transport = client._transport
    assert isinstance(transport, (httpx_aiohttp.AiohttpTransport, httpx.AsyncHTTPTransport))
    return isinstance(transport, httpx_aiohttp.AiohttpTransport)


@pytest.mark.anyio
@pytest.mark.parametrize("setting", [None, "auto", "httpx", "aiohttp"])
async def test_the_pooled_client_uses_aiohttp_on_asyncio_unless_told_otherwise(
    setting: str | None, anyio_backend: tuple[str, object], fake: FakeProvider, base_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """None reads the variable; "auto" and "aiohttp" mean aiohttp on asyncio; Trio always keeps httpx."""
    fake.push(Reply(text="hello"))
    e = engine(base_url, http_transport=setting)
    wanted = setting or _transport_env()
    expected = anyio_backend[0] == "asyncio" and wanted in ("auto", "aiohttp")
    client = e.endpoint().client()
    assert is_aiohttp(client) is expected
    env = await Agent(engine=e).run("hi")
    assert env.ok, env.error
    assert env.payload == "hello"
    if expected:  # the request really went through aiohttp: its session holds the connection
        session = client._transport.client  # type: ignore[attr-defined]
        assert session is not None and not session.closed


@pytest.mark.anyio
async def test_the_variable_picks_the_transport_of_pooled_client(
    anyio_backend: tuple[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, "httpx")
    assert not is_aiohttp(_pool.pooled_client("https://api.example.test"))
    monkeypatch.setenv(ENV_VAR, "auto")
    assert is_aiohttp(_pool.pooled_client("https://api.example.test")) is (anyio_backend[0] == "asyncio")


@pytest.mark.anyio
@pytest.mark.parametrize("setting", ["aiohttp", "auto"])
async def test_without_the_package(
    setting: str, anyio_backend: tuple[str, object], fake: FakeProvider, base_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """httpx-aiohttp not installed: "aiohttp" is a clear error on asyncio; "auto" and Trio use httpx."""
    monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)  # `import httpx_aiohttp` raises ImportError
    fake.push(Reply(text="hello"))
    env = await Agent(engine=engine(base_url, http_transport=setting)).run("hi")
    if setting == "aiohttp" and anyio_backend[0] == "asyncio":
        assert env.error is not None and env.error.type == "ConfigurationError"
        assert "httpx-aiohttp is not installed" in env.error.message
        assert "pip install 'lazybridge[aiohttp]'" in env.error.message
        assert fake.requests == []
    else:
        assert env.ok, env.error
        assert not is_aiohttp(_pool.pooled_client(base_url, transport=setting))  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_cancelled_stream_closes_its_connection(
    anyio_backend: tuple[str, object], fake: FakeProvider, base_url: str
) -> None:
    """On every transport (aiohttp included) the server sees the cancelled stream's connection close."""
    fake.push(Reply(text="one two three four five six seven eight", stall_after=3))
    e = engine(base_url)
    assert is_aiohttp(e.endpoint().client()) is (anyio_backend[0] == "asyncio" and _transport_env() == "aiohttp")
    got: list[str] = []
    with anyio.move_on_after(0.5) as scope:
        async with Agent(engine=e).stream("x") as stream:
            async for delta in stream:
                got.append(delta)
    assert scope.cancelled_caught and got
    assert await anyio.to_thread.run_sync(fake.disconnected.wait, 5.0)
    assert fake.disconnects == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("limits", "connector"),
    [
        (httpx.Limits(max_connections=7, max_keepalive_connections=3, keepalive_expiry=9.0), (7, False, 9.0)),
        (httpx.Limits(max_connections=None, max_keepalive_connections=0), (0, True, None)),
    ],
    ids=["bounded", "unbounded-no-keepalive"],
)
async def test_limits_reach_the_connection_pool(
    limits: httpx.Limits, connector: tuple[int, bool, float | None], anyio_backend: tuple[str, object],
    fake: FakeProvider, base_url: str,
) -> None:
    """max_connections and keep-alive reach aiohttp's connector (0 = unbounded there) or httpcore's pool."""
    fake.push(Reply(text="hello"))
    e = engine(base_url, limits=limits)
    assert (await Agent(engine=e).run("hi")).ok
    client = e.endpoint().client()
    if is_aiohttp(client):
        c = client._transport.client.connector  # type: ignore[attr-defined]
        assert (c.limit, c.force_close, c._keepalive_timeout) == connector
    else:
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert pool._max_connections == (limits.max_connections or sys.maxsize)
        assert pool._max_keepalive_connections == min(
            limits.max_keepalive_connections or 0, limits.max_connections or sys.maxsize
        )


@pytest.mark.anyio
async def test_a_server_that_hangs_up_is_a_connection_error(anyio_backend: tuple[str, object]) -> None:
    """A peer that reads the request and closes without answering: APIConnectionError, retried."""
    accepted = 0

    async def hang_up(conn: anyio.abc.SocketStream) -> None:
        nonlocal accepted
        accepted += 1
        async with conn:
            await conn.receive()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, hang_up)
        env = await Agent(engine=engine(f"http://127.0.0.1:{port}", max_retries=1)).run("hi")
        tg.cancel_scope.cancel()
    assert env.error is not None
    assert (env.error.type, env.error.retryable) == ("APIConnectionError", True)
    assert accepted == 2  # the first attempt and its retry


def _transport_env() -> str:
    return os.environ.get(ENV_VAR, "auto")


def test_a_bad_setting_is_refused_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="http_transport must be one of 'auto', 'httpx', 'aiohttp'"):
        engine("http://127.0.0.1:1", http_transport="curl")
    with pytest.raises(ConfigurationError, match=r"http_transport= .* does not apply with http_client="):
        engine("http://127.0.0.1:1", http_transport="httpx", http_client=httpx.AsyncClient())
    monkeypatch.setenv(ENV_VAR, "urllib")
    with pytest.raises(ConfigurationError, match=f"{ENV_VAR} must be one of .* not 'urllib'"):
        engine("http://127.0.0.1:1")


def test_a_user_client_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """http_client= is never changed, and the variable is not even read for it."""
    monkeypatch.setenv(ENV_VAR, "urllib")
    client = httpx.AsyncClient()
    assert engine("http://127.0.0.1:1", http_client=client).endpoint().http_client is client


"""HTTPS to a provider whose certificate a private CA signed, on both asyncio transports and Trio.

Real providers are HTTPS; the rest of the suite is plain HTTP on loopback.
Here the fake provider serves TLS with a certificate from a throw-away CA
(``trustme``), and the pooled clients trust it only through
``SSL_CERT_FILE``, as docs/providers.md tells users with a private CA to do.
The process builds its SSL context once; the tests below drop that cache
so each builds it again from the environment they set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from lazybridge import Agent, LLMEngine, Session
from lazybridge.providers import _pool
from lazybridge.testing import FakeProvider, Reply, serve_fake_provider

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-tls-test-0123456789"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def https_fake(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeProvider, str]]:
    folder = tmp_path_factory.mktemp("tls")
    chain, key = folder / "server.pem", folder / "server.key"
    certificate = ca.issue_cert("127.0.0.1")
    certificate.private_key_pem.write_to_path(str(key))
    certificate.cert_chain_pems[0].write_to_path(str(chain))
    for blob in certificate.cert_chain_pems[1:]:
        blob.write_to_path(str(chain), append=True)
    fake = FakeProvider()
    with serve_fake_provider(fake, ssl_certfile=str(chain), ssl_keyfile=str(key)) as url:
        yield fake, url


@pytest.fixture
def fresh_ssl_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next pooled client builds the process's SSL context again, from this test's environment."""
    monkeypatch.setattr(_pool, "_ssl_context", None)


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_ssl_context: None) -> None:
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))


@pytest.mark.usefixtures("trusted")
async def test_a_private_ca_named_in_ssl_cert_file_is_trusted(https_fake: tuple[FakeProvider, str]) -> None:
    fake, url = https_fake
    fake.reset()
    fake.push(Reply(text="over TLS"))
    assert url.startswith("https://")
    env = await Agent(engine=LLMEngine("gpt-5.4-mini", base_url=url, api_key=KEY)).run("hi")
    assert env.ok, env.error
    assert env.text() == "over TLS"


@pytest.mark.usefixtures("trusted")
async def test_a_streamed_answer_over_tls(https_fake: tuple[FakeProvider, str]) -> None:
    fake, url = https_fake
    fake.reset()
    fake.push(Reply(text="streamed over TLS"))
    agent = Agent(engine=LLMEngine("claude-haiku-4-5", base_url=url, api_key=KEY))
    text = "".join([delta async for delta in agent.stream("hi")])
    assert text == "streamed over TLS"


@pytest.mark.usefixtures("fresh_ssl_context")
async def test_an_untrusted_certificate_is_a_connection_error_not_a_retry_storm(
    https_fake: tuple[FakeProvider, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the CA the handshake fails: an APIConnectionError envelope that names the
    certificate, not retried (it would fail the same way), and no request reaches the app."""
    other = trustme.CA()  # a bundle that does not hold the server's CA
    pem = tmp_path / "other.pem"
    other.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    fake, url = https_fake
    fake.reset()
    session = Session()
    engine = LLMEngine("gpt-5.4-mini", base_url=url, api_key=KEY, max_retries=3)
    env = await Agent(engine=engine, session=session).run("hi")
    assert not env.ok
    assert env.error is not None and env.error.type == "APIConnectionError", env.error
    assert "certificate verify failed" in env.error.message.lower(), env.error.message
    assert env.error.retryable is False
    assert session.events.query("model_retry") == []
    assert fake.requests == []

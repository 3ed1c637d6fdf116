"""Every async test runs on asyncio (in debug mode) and on Trio."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lazybridge.testing import FakeProvider, serve_fake_provider


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"debug": True}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    return request.param  # type: ignore[no-any-return]


REAL_SERVERS = Path(__file__).parent / "real"
RAY = Path(__file__).parent / "ray"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The real-server suite (tests/real) and the Ray suite (tests/ray) run only when named.

    ``pytest tests/real`` needs compiled model servers (tests/real/install.sh),
    ``pytest tests/ray`` the ``ray`` extra and a local Ray cluster it starts;
    the main suite stays fast and needs none of them.
    """
    if collection_path not in (REAL_SERVERS, RAY):
        return None
    here = config.invocation_params.dir
    named = (Path(here, arg.split("::")[0]).resolve() for arg in config.invocation_params.args if not arg.startswith("-"))
    return not any(path == collection_path or collection_path in path.parents for path in named)


PROVIDER_ENV = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "DEEPSEEK_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_BASE_URL",
    "GEMINI_BASE_URL",
    "DEEPSEEK_BASE_URL",
    "OLLAMA_BASE_URL",
)


@pytest.fixture(scope="session")
def shared_fake_provider() -> Iterator[tuple[FakeProvider, str]]:
    """One fake provider server on loopback for the whole run: (app, base URL)."""
    fake = FakeProvider()
    with serve_fake_provider(fake) as base_url:
        yield fake, base_url


@pytest.fixture
def fake_provider_env(
    shared_fake_provider: tuple[FakeProvider, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeProvider]:
    """Every provider's key and base URL point at the fake server, as a user's environment would.

    Code that builds ``LLMEngine("claude-haiku-4-5")`` with no arguments --
    the docs and examples -- then talks HTTP to loopback, never to the internet.
    """
    fake, base_url = shared_fake_provider
    fake.reset()
    for name in PROVIDER_ENV:
        monkeypatch.setenv(name, "test-key-not-a-secret" if name.endswith("_KEY") else base_url)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_GEMINI_BASE_URL", raising=False)
    yield fake

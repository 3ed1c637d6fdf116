"""LLMEngine(anthropic_version=): the API version is the user's choice, and a dropped temperature is said once."""

from __future__ import annotations

import warnings

import httpx
import pytest

from lazybridge import Agent, ConfigurationError, LLMEngine
from lazybridge.engines import llm
from lazybridge.engines.llm import ParameterNotSentWarning
from lazybridge.messages import Message
from lazybridge.testing import FakeProvider

KEY = "sk-version-test-0123456789"


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the once-per-process warning as a new process would."""
    monkeypatch.setattr(llm, "_warned", set())


def sent_version(engine: LLMEngine) -> str:
    request = engine.request((Message.user("x"),))
    built = engine.endpoint().build(httpx.AsyncClient(), request, stream=False)
    return built.headers["anthropic-version"]


@pytest.mark.anyio
@pytest.mark.usefixtures("close_pool")
async def test_an_older_version_is_sent_and_takes_temperature(fake: FakeProvider, base_url: str) -> None:
    engine = LLMEngine(
        "claude-haiku-4-5", base_url=base_url, api_key=KEY, anthropic_version="2023-06-01", temperature=0.3
    )
    assert sent_version(engine) == "2023-06-01"
    assert (await Agent(engine=engine).run("x")).ok
    assert fake.requests[0].body["temperature"] == 0.3


def test_the_default_version_is_the_newest() -> None:
    assert sent_version(LLMEngine("claude-haiku-4-5", api_key=KEY)) == "2026-10-21"


def test_a_dropped_temperature_warns_once_naming_the_argument_and_version() -> None:
    with pytest.warns(ParameterNotSentWarning, match=r"temperature= is not sent: .*2026-10-21"):
        LLMEngine("claude-haiku-4-5", api_key=KEY, temperature=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LLMEngine("claude-haiku-4-5", api_key=KEY, temperature=0.5)  # said already
        LLMEngine("claude-haiku-4-5", api_key=KEY, temperature=0.3, anthropic_version="2023-06-01")
        LLMEngine("gpt-5.4-mini", api_key=KEY, temperature=0.3)


@pytest.mark.parametrize("model", ["gpt-5.4-mini", "gemini-3-flash-preview", "deepseek-v4-flash"])
def test_anthropic_version_for_another_provider_raises(model: str) -> None:
    with pytest.raises(ConfigurationError, match="anthropic_version= applies to Anthropic models only"):
        LLMEngine(model, api_key=KEY, anthropic_version="2023-06-01")


@pytest.mark.parametrize("version", ["2023/06/01", "latest", "", 20230601])
def test_a_malformed_version_raises(version: object) -> None:
    with pytest.raises(ConfigurationError, match="anthropic_version must be an API version date"):
        LLMEngine("claude-haiku-4-5", api_key=KEY, anthropic_version=version)  # type: ignore[arg-type]

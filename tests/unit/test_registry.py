"""Model string -> provider routing and configuration from arguments and environment."""

from __future__ import annotations

import pytest

from lazybridge.errors import ConfigurationError
from lazybridge.providers.registry import resolve, wire_format


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ANTHROPIC_BASE_URL",
        "OPENAI_BASE_URL",
        "GEMINI_BASE_URL",
        "GOOGLE_GEMINI_BASE_URL",
        "DEEPSEEK_BASE_URL",
        "OLLAMA_BASE_URL",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("model", "provider", "bare", "base_url"),
    [
        ("claude-haiku-4-5", "anthropic", "claude-haiku-4-5", "https://api.anthropic.com"),
        ("gpt-5.4-mini", "openai", "gpt-5.4-mini", "https://api.openai.com/v1"),
        ("o3-mini", "openai", "o3-mini", "https://api.openai.com/v1"),
        ("o1", "openai", "o1", "https://api.openai.com/v1"),
        (
            "gemini-3-flash-preview",
            "gemini",
            "gemini-3-flash-preview",
            "https://generativelanguage.googleapis.com",
        ),
        ("deepseek-v4-flash", "deepseek", "deepseek-v4-flash", "https://api.deepseek.com"),
        ("ollama/llama3.2", "ollama", "llama3.2", "http://localhost:11434/v1"),
        ("openai/my-finetune", "openai", "my-finetune", "https://api.openai.com/v1"),
        ("google/gemini-2.5-pro", "gemini", "gemini-2.5-pro", "https://generativelanguage.googleapis.com"),
        ("anthropic/gpt-lookalike", "anthropic", "gpt-lookalike", "https://api.anthropic.com"),
    ],
)
def test_routing(model: str, provider: str, bare: str, base_url: str) -> None:
    """Name patterns pick the provider; an explicit prefix wins and is stripped."""
    route = resolve(model)
    assert (route.provider.name, route.model, route.base_url) == (provider, bare, base_url)


def test_unknown_model_is_refused_with_the_known_list() -> None:
    """An unknown model raises at construction and says what would work."""
    with pytest.raises(ConfigurationError, match=r"unknown model 'mistral-large'.*claude-\*.*compat/"):
        resolve("mistral-large")


def test_compat_needs_a_base_url() -> None:
    """compat/ has no public endpoint: base_url= is required."""
    with pytest.raises(ConfigurationError, match="base_url"):
        resolve("compat/qwen")
    assert resolve("compat/qwen", base_url="http://gpu:8000/v1/").base_url == "http://gpu:8000/v1"


def test_base_url_from_argument_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An argument beats the variable; Gemini also reads the google-genai SDK's variable name."""
    monkeypatch.setenv("OPENAI_BASE_URL", "http://proxy.local/v1")
    assert resolve("gpt-5.4-mini").base_url == "http://proxy.local/v1"
    assert resolve("gpt-5.4-mini", base_url="http://other/v1").base_url == "http://other/v1"
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://gem.local")
    assert resolve("gemini-3-flash-preview").base_url == "http://gem.local"
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://box:11434/v1")
    assert resolve("ollama/qwen3").base_url == "http://box:11434/v1"


def test_api_key_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """GEMINI_API_KEY, else GOOGLE_API_KEY; the message names both when neither is set."""
    route = resolve("gemini-3-flash-preview")
    assert route.api_key() is None
    assert "GEMINI_API_KEY or GOOGLE_API_KEY" in route.missing_key_message()
    monkeypatch.setenv("GOOGLE_API_KEY", "g")
    assert route.api_key() == "g"
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    assert route.api_key() == "k"
    assert route.api_key("explicit") == "explicit"


@pytest.mark.parametrize("bad", ["", "  ", "ollama/", "deepseek/"])
def test_bad_model_strings(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        resolve(bad)


def test_bad_base_url() -> None:
    with pytest.raises(ConfigurationError, match="http"):
        resolve("claude-haiku-4-5", base_url="api.anthropic.com")


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini", "deepseek", "ollama", "compat"])
def test_every_provider_has_a_wire_format(provider: str) -> None:
    assert wire_format(provider).name in {"anthropic", "openai", "gemini", "deepseek", "compat"}

"""Cost from usage: genai-prices (lazily imported), overrides, free local models, unknown models."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from lazybridge.errors import ConfigurationError
from lazybridge.messages import Usage
from lazybridge.providers import pricing


def test_import_lazybridge_does_not_import_the_price_package() -> None:
    """genai-prices (and pydantic) load on the first cost computation, never on import."""
    code = (
        "import sys, lazybridge, lazybridge.testing; from lazybridge import Agent; "
        "from lazybridge.engines.llm import LLMEngine; LLMEngine('claude-haiku-4-5', api_key='k'); "
        "print(sorted(m for m in ('genai_prices', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_known_models_are_priced() -> None:
    """claude-haiku-4-5 at $1 / $5 per million tokens, cache reads at $0.10."""
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert pricing.cost_usd("anthropic", "claude-haiku-4-5", usage) == pytest.approx(6.0)
    cached = Usage(input_tokens=1000, output_tokens=0, cache_read_tokens=500)
    assert pricing.cost_usd("anthropic", "claude-haiku-4-5", cached) == pytest.approx(0.00055)
    for provider, model in [
        ("openai", "gpt-5.4-mini"),
        ("google", "gemini-3-flash-preview"),
        ("deepseek", "deepseek-v4-flash"),
    ]:
        assert pricing.cost_usd(provider, model, Usage(100, 100)) > 0


def test_tiered_prices_use_the_package() -> None:
    """A tiered price (long-context surcharge) is computed by genai-prices, not flattened."""
    short = pricing.cost_usd("google", "gemini-2.5-pro", Usage(100_000, 0))
    long = pricing.cost_usd("google", "gemini-2.5-pro", Usage(300_000, 0))
    assert long > 3 * short


def test_override_wins_and_local_models_are_free() -> None:
    model = f"house-model-{uuid.uuid4().hex}"
    pricing.set_price("openai", model, pricing.Price(input=2.0, output=8.0))
    assert pricing.cost_usd("openai", model, Usage(1_000_000, 500_000)) == pytest.approx(6.0)
    assert pricing.cost_usd("free", "llama3.2", Usage(10**6, 10**6)) == 0.0


def test_unknown_model_costs_zero_with_one_warning() -> None:
    """One UnknownPriceWarning per model per process; later calls are silent."""
    model = f"mystery-{uuid.uuid4().hex}"
    with pytest.warns(pricing.UnknownPriceWarning, match=model):
        assert pricing.cost_usd("openai", model, Usage(10, 10)) == 0.0
    assert pricing.cost_usd("openai", model, Usage(10, 10)) == 0.0  # no second warning (-W error)
    with pytest.warns(pricing.UnknownPriceWarning):
        pricing.cost_usd(None, f"compat-{model}", Usage(1, 1))  # compat servers are never guessed


def test_older_price_keys_still_work() -> None:
    """Prices set under genai-prices' id or the old internal keys still apply."""
    gemini, local = f"gemini-house-{uuid.uuid4().hex}", f"local-{uuid.uuid4().hex}"
    pricing.set_price("google", gemini, pricing.Price(input=1.0, output=0.0))
    assert pricing.cost_usd("gemini", gemini, Usage(1_000_000, 0)) == pytest.approx(1.0)
    pricing.OVERRIDES[("", local)] = pricing.Price(input=2.0, output=0.0)
    assert pricing.cost_usd("compat", local, Usage(1_000_000, 0)) == pytest.approx(2.0)


def test_set_price_refuses_an_unknown_provider() -> None:
    with pytest.raises(ConfigurationError, match=r"provider must be one of .*'compat'.*not 'llamacpp'"):
        pricing.set_price("llamacpp", "smollm2", pricing.Price(input=1.0, output=1.0))
    with pytest.raises(ConfigurationError, match=r"price must be a lazybridge\.providers\.Price"):
        pricing.set_price("compat", "smollm2", (1.0, 1.0))  # type: ignore[arg-type]

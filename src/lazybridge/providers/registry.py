"""Model string -> provider: which wire format, base URL and credentials a model uses.

::

    resolve("claude-haiku-4-5")          -> Route(provider="anthropic", model="claude-haiku-4-5", ...)
    resolve("gpt-5.4-mini")              -> openai      (also o1, o3-mini, o4-mini ...)
    resolve("gemini-3-flash-preview")    -> gemini
    resolve("deepseek-v4-flash")         -> deepseek
    resolve("ollama/llama3.2")           -> ollama      (OpenAI-compatible, no key needed)
    resolve("compat/my-model", base_url="http://localhost:8000/v1")  -> compat

An explicit ``provider/`` prefix (``openai/``, ``anthropic/``, ``google/``
or ``gemini/``, ``deepseek/``, ``ollama/``, ``compat/``) wins over the name
patterns.  An unknown model raises :class:`~lazybridge.errors.ConfigurationError`
at construction, listing what is known.

Configuration comes from arguments first, then the providers' conventional
environment variables (see :data:`PROVIDERS`), then the public defaults.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import attrs

from .._checks import check_api_key, check_url
from ..errors import ConfigurationError
from .base import WireFormat

__all__ = ["PROVIDERS", "Provider", "Route", "resolve", "wire_format"]


@attrs.frozen
class Provider:
    """Static facts about one provider: where it lives and how it is configured."""

    name: str
    title: str
    default_base_url: str | None
    key_env: tuple[str, ...]
    base_url_env: tuple[str, ...]
    key_required: bool = True
    #: The provider id genai-prices knows it by (``None``: priced only by ``set_price``;
    #: ``"free"``: local).  Prices themselves are keyed by ``name``, see :mod:`.pricing`.
    price_provider: str | None = None


PROVIDERS: Mapping[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            "anthropic",
            "Anthropic",
            "https://api.anthropic.com",
            ("ANTHROPIC_API_KEY",),
            ("ANTHROPIC_BASE_URL",),
            price_provider="anthropic",
        ),
        Provider(
            "openai",
            "OpenAI",
            "https://api.openai.com/v1",
            ("OPENAI_API_KEY",),
            ("OPENAI_BASE_URL",),
            price_provider="openai",
        ),
        Provider(
            "gemini",
            "Gemini",
            "https://generativelanguage.googleapis.com",
            ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
            ("GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL"),
            price_provider="google",
        ),
        Provider(
            "deepseek",
            "DeepSeek",
            "https://api.deepseek.com",
            ("DEEPSEEK_API_KEY",),
            ("DEEPSEEK_BASE_URL",),
            price_provider="deepseek",
        ),
        Provider(
            "ollama",
            "Ollama",
            "http://localhost:11434/v1",
            ("OLLAMA_API_KEY",),
            ("OLLAMA_BASE_URL",),
            key_required=False,
            price_provider="free",
        ),
        Provider("compat", "OpenAI-compatible server", None, (), (), key_required=False),
    )
}

_PREFIXES: Mapping[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gemini",
    "gemini": "gemini",
    "deepseek": "deepseek",
    "ollama": "ollama",
    "compat": "compat",
}

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"claude-"), "anthropic"),
    (re.compile(r"gpt-|chatgpt-|o\d"), "openai"),
    (re.compile(r"gemini-"), "gemini"),
    (re.compile(r"deepseek-"), "deepseek"),
)

_KNOWN = (
    "claude-* (Anthropic), gpt-* and o<digit>* such as o3-mini (OpenAI), "
    "gemini-* (Gemini), deepseek-* (DeepSeek); or name the provider explicitly: "
    "openai/<model>, anthropic/<model>, google/<model>, deepseek/<model>, "
    "ollama/<model>, compat/<model> with {base_url}"
)


@attrs.frozen
class Route:
    """Where one model's requests go.  Holds no secret: keys are read separately."""

    provider: Provider
    model: str
    base_url: str

    def api_key(self, explicit: str | None = None) -> str | None:
        """``explicit`` if given, else the first non-empty key variable, else ``None``."""
        if explicit:
            return explicit
        for name in self.provider.key_env:
            value = os.environ.get(name)
            if value:
                return check_api_key(value, name)
        return None

    def missing_key_message(self) -> str:
        names = " or ".join(self.provider.key_env)
        return f"no API key for {self.provider.title} ({self.model!r}): pass api_key= or set {names}"


def resolve(model: str, *, base_url: str | None = None, base_url_name: str = "base_url=") -> Route:
    """The :class:`Route` for ``model``; raises ``ConfigurationError`` for an unknown one.

    ``base_url_name`` is how error messages name the base-URL setting: the
    keyword for Python callers, ``--base-url`` for the command line.
    """
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError(
            f"model must be a non-empty string such as 'claude-haiku-4-5', not {model!r}"
        )
    name = model.strip()
    provider_name: str | None = None
    prefix, slash, rest = name.partition("/")
    if slash and prefix.lower() in _PREFIXES:
        provider_name, name = _PREFIXES[prefix.lower()], rest
        if not name:
            raise ConfigurationError(f"model {model!r} names a provider but no model after the '/'")
    else:
        lowered = name.lower()
        for pattern, candidate in _PATTERNS:
            if pattern.match(lowered):
                provider_name = candidate
                break
    if provider_name is None:
        raise ConfigurationError(
            f"unknown model {model!r}: known models are {_KNOWN.format(base_url=base_url_name)}"
        )
    provider = PROVIDERS[provider_name]
    url = base_url or _env(provider.base_url_env) or provider.default_base_url
    if not url:
        raise ConfigurationError(
            f"model {model!r} needs {base_url_name} (the server's OpenAI-compatible base URL, "
            "such as http://localhost:8080/v1)"
        )
    setting = base_url_name.rstrip("=") if base_url else f"the base URL in {' or '.join(provider.base_url_env)}"
    check_url(url, setting)
    return Route(provider, name, url.rstrip("/"))


def _env(names: tuple[str, ...]) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def wire_format(provider: str, *, anthropic_version: str | None = None) -> WireFormat:
    """The :class:`~lazybridge.providers.base.WireFormat` for ``provider`` (imported on first use)."""
    if provider == "anthropic":
        from .anthropic import AnthropicFormat

        return AnthropicFormat(anthropic_version) if anthropic_version else AnthropicFormat()
    if provider == "openai":
        from .openai_chat import OpenAIChatFormat

        return OpenAIChatFormat()
    if provider == "gemini":
        from .gemini import GeminiFormat

        return GeminiFormat()
    if provider == "deepseek":
        from .deepseek import DeepSeekFormat

        return DeepSeekFormat()
    if provider in ("ollama", "compat"):
        from .openai_compat import OpenAICompatFormat

        return OpenAICompatFormat()
    raise ConfigurationError(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}")

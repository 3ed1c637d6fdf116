"""Model providers: pure wire translations, plus the shared HTTP layer.

* :mod:`.registry` -- model string -> provider, base URL and credentials;
* :mod:`._http` -- pooled clients, retries, error mapping, SSE streams;
* :mod:`.pricing` -- cost in USD from token usage;
* one module per wire format (:mod:`.anthropic`, :mod:`.openai_chat`,
  :mod:`.gemini`, :mod:`.deepseek`, :mod:`.openai_compat`).

Importing this package imports none of them: each is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names are, for type checkers and the API reference; loaded lazily below
    from .pricing import Price, UnknownPriceWarning, set_price
    from .registry import resolve

__all__ = ["Price", "UnknownPriceWarning", "resolve", "set_price"]


def __getattr__(name: str) -> Any:
    if name in ("Price", "UnknownPriceWarning", "set_price"):
        from . import pricing

        return getattr(pricing, name)
    if name == "resolve":
        from .registry import resolve

        return resolve
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

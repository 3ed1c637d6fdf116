"""What a model call cost, in US dollars, from its token usage.

Prices are keyed by ``(provider, model)`` exactly as an envelope shows them
in ``metadata.provider`` and ``metadata.model``: ``("compat", "smollm2")``
for ``LLMEngine("compat/smollm2", base_url=...)``, ``("gemini",
"gemini-3-flash-preview")``, ``("ollama", "llama3.2")``.  They come from, in
order:

1. :data:`OVERRIDES` -- a table for models the price package lacks, and
   anything :func:`set_price` registered;
2. the maintained ``genai-prices`` package, imported on the first cost
   computation (it pulls in pydantic, so ``import lazybridge`` never imports
   it) -- call :func:`load` from async code to do that import in a worker
   thread instead of blocking the event loop;
3. nothing: a model nobody knows costs ``0.0`` and triggers one
   :class:`UnknownPriceWarning` per (provider, model) per process, which
   spells out the :func:`set_price` call that fixes it.

Local servers (``ollama/``) are free unless given a price; a ``compat/``
server's models are priced only by :data:`OVERRIDES` (guessing from the
model name could price a local model at some cloud's rate).  The price of
each (provider, model) is looked up once and cached; for the usual flat
per-token prices the cost of a call is then four multiplications.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import attrs
from anyio.lowlevel import RunVar

from ..errors import ConfigurationError
from ..messages import Usage
from .registry import PROVIDERS

__all__ = [
    "OVERRIDES",
    "Price",
    "UnknownPriceWarning",
    "cost_usd",
    "load",
    "price_for",
    "set_price",
    "unknown_price_message",
]


class UnknownPriceWarning(UserWarning):
    """A model's price is unknown, so its calls are counted as costing $0."""


@attrs.frozen
class Price:
    """Flat prices in USD per million tokens.

    ``cache_read`` / ``cache_write`` default to the input price.  Token
    counts follow :class:`~lazybridge.messages.Usage`: ``input_tokens`` is the
    whole prompt, cached tokens included.
    """

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None

    def cost(self, usage: Usage) -> float:
        cache_read = usage.cache_read_tokens
        cache_write = usage.cache_write_tokens
        uncached = max(usage.input_tokens - cache_read - cache_write, 0)
        total = (
            uncached * self.input
            + cache_read * (self.input if self.cache_read is None else self.cache_read)
            + cache_write * (self.input if self.cache_write is None else self.cache_write)
            + usage.output_tokens * self.output
        )
        return total / 1_000_000


#: (provider, model) -> Price, consulted before genai-prices.  Empty today:
#: genai-prices knows every model the registry routes by name.  Add a row when
#: a provider ships a model before the package does (or call :func:`set_price`).
#: Keys are ``metadata.provider`` names; rows under the older keys (``"google"``,
#: ``"free"``, ``""``) are still read.
OVERRIDES: dict[tuple[str, str], Price] = {}

#: Other names a provider was priced under: genai-prices' ids and the keys
#: this module used before prices were keyed by ``metadata.provider``.
_ALIASES = {"google": "gemini", "free": "ollama", "": "compat"}

_Calc = Callable[[Usage], float]

_lock = threading.Lock()
_cache: dict[tuple[str, str], _Calc | None] = {}
_warned: set[tuple[str, str]] = set()
_prices_module: Any = None
#: The import in flight in this event loop, if any (an Event set when it ends).
_loading: RunVar[anyio.Event | None] = RunVar("lazybridge_prices_loading")


def set_price(provider: str, model: str, price: Price) -> None:
    """Use ``price`` for ``model`` of ``provider`` from now on (overrides genai-prices).

    ``provider`` and ``model`` are spelled as envelopes show them in
    ``metadata.provider`` / ``metadata.model`` -- for ``"compat/smollm2"``
    that is ``set_price("compat", "smollm2", Price(input=0.0, output=0.0))``.
    Raises :class:`~lazybridge.errors.ConfigurationError` for a provider
    LazyBridge does not know, or a ``price`` that is not a :class:`Price`.
    """
    name = _canonical(provider)
    if name not in PROVIDERS:
        raise ConfigurationError(
            f"provider must be one of {', '.join(map(repr, PROVIDERS))} (as envelope.metadata.provider "
            f"shows it), not {provider!r}"
        )
    if not isinstance(price, Price):
        raise ConfigurationError(f"price must be a lazybridge.providers.Price, not {type(price).__name__}")
    with _lock:
        OVERRIDES[(name, model)] = price
        _cache.pop((name, model), None)


def _canonical(provider: str | None) -> str:
    """``provider`` as ``metadata.provider`` spells it (``None``, the old key of ``compat``, too)."""
    name = "" if provider is None else provider
    return _ALIASES.get(name, name)


def _import_prices() -> Any:
    global _prices_module
    if _prices_module is None:
        import genai_prices

        _prices_module = genai_prices
    return _prices_module


def load_now() -> None:
    """Import genai-prices in this thread now (once): for callers outside an event loop."""
    _import_prices()


def loaded() -> bool:
    """Whether genai-prices is imported (so a lookup cannot block on the import)."""
    return _prices_module is not None


async def load() -> None:
    """Import genai-prices in a worker thread (once); later lookups then never block the loop.

    Concurrent callers in one event loop share one import: the first fan-out
    of a hundred branches makes one worker-thread call, not a hundred.

    Cancellation: if cancelled, the import may still finish in its thread;
    nothing else happens.  Callers that were waiting for a cancelled import
    start their own.
    """
    while _prices_module is None:
        pending = _loading.get(None)
        if pending is not None:
            await pending.wait()
            continue
        done = anyio.Event()
        _loading.set(done)
        try:
            await anyio.to_thread.run_sync(_import_prices, abandon_on_cancel=True)
        finally:
            _loading.set(None)
            done.set()


def _lookup(name: str, model: str) -> _Calc | None:
    known = PROVIDERS.get(name)
    price_id = known.price_provider if known is not None else name
    old_keys = [old for old, new in _ALIASES.items() if new == name]
    for key in (name, *old_keys):
        override = OVERRIDES.get((key, model))
        if override is not None:
            return override.cost
    if price_id == "free":
        return _free
    if price_id is None:
        # An arbitrary OpenAI-compatible server: guessing from the model name
        # alone could price a local model at some cloud's rate.
        return None
    genai_prices = _import_prices()
    try:
        # The public entry point, once with zero usage, for the model's current prices.
        calculation = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=0, output_tokens=0), model, provider_id=price_id
        )
    except LookupError:
        return None
    prices = calculation.model_price
    flat = _flat(prices)
    if flat is not None:
        return flat.cost
    return _tiered(genai_prices, prices)


def _free(usage: Usage) -> float:
    return 0.0


def _flat(prices: Any) -> Price | None:
    """A :class:`Price` when every token price is a plain number (no tiers)."""
    from decimal import Decimal

    values = {}
    for key in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok"):
        value = getattr(prices, key, None)
        if value is not None and not isinstance(value, Decimal):
            return None
        values[key] = None if value is None else float(value)
    if values["input_mtok"] is None or values["output_mtok"] is None:
        return None
    return Price(
        values["input_mtok"], values["output_mtok"], values["cache_read_mtok"], values["cache_write_mtok"]
    )


def _tiered(genai_prices: Any, prices: Any) -> _Calc:
    def cost(usage: Usage) -> float:
        wire = genai_prices.Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
        )
        return float(prices.calc_price(wire)["total_price"])

    return cost


def price_for(provider: str | None, model: str) -> _Calc | None:
    """The cost function of ``model`` (cached), or ``None`` if nobody knows its price.

    ``provider`` is the ``metadata.provider`` name (``"compat"``, ``"gemini"``
    ...); the older keys (``None``, ``"google"``, ``"free"``) are accepted too.
    """
    key = (_canonical(provider), model)
    try:
        return _cache[key]
    except KeyError:
        pass
    calc = _lookup(*key)
    with _lock:
        _cache[key] = calc
    return calc


def cost_usd(provider: str | None, model: str, usage: Usage) -> float:
    """The cost of one call; ``0.0`` with one :class:`UnknownPriceWarning` for an unknown model."""
    calc = price_for(provider, model)
    if calc is not None:
        return calc(usage)
    key = (_canonical(provider), model)
    if key not in _warned:
        _warned.add(key)
        warnings.warn(unknown_price_message(*key), UnknownPriceWarning, stacklevel=2)
    return 0.0


def unknown_price_message(provider: str, model: str) -> str:
    """What :class:`UnknownPriceWarning` says: the price is unknown, and the call that sets it."""
    return (
        f"no price known for model {model!r} of provider {provider!r}, so its calls are counted as $0. "
        "Set one (USD per million tokens) with: from lazybridge.providers import Price, set_price; "
        f"set_price({provider!r}, {model!r}, Price(input=..., output=...))"
    )

"""HTTPModelClient: the :class:`~lazybridge.providers.base.ModelClient` that speaks HTTP.

It joins what a model call needs: the route (provider, model, base URL), the
wire format, the credentials and the shared :mod:`~lazybridge.providers._http`
layer (pooled clients, retries, error mapping, streams), and prices usage
with :mod:`~lazybridge.providers.pricing`.  ``LLMEngine`` builds one from its
arguments; the agent loop only sees the protocol.
"""

from __future__ import annotations

from typing import Any

from ..errors import AuthenticationError
from ..messages import ModelRequest, ModelResponse, Usage
from . import _http, pricing
from ._eventstream import EventStream
from ._http import Endpoint, Secret
from .base import OnRetry, WireFormat
from .registry import Route

__all__ = ["NATIVE_OUTPUT_WIRES", "HTTPModelClient"]

#: Wire formats with a schema mode of their own (DeepSeek's is JSON mode plus the schema in the prompt).
NATIVE_OUTPUT_WIRES = frozenset({"anthropic", "openai", "gemini", "deepseek", "compat"})


class HTTPModelClient:
    """Requests for one model of one provider, over that provider's HTTP API.

    The API key is read when the first request needs it (so a variable set
    after construction is found); a missing one raises
    :class:`~lazybridge.errors.AuthenticationError` naming the variable, at
    the request.  The key appears in no repr, event, log or error message.
    """

    def __init__(self, route: Route, wire: WireFormat, api_key: str | None, settings: dict[str, Any]) -> None:
        self._route = route
        self._wire = wire
        self._explicit_key = Secret(api_key) if api_key else None
        self._settings = settings
        self._endpoint = self._make_endpoint()

    @property
    def provider(self) -> str:
        return self._route.provider.name

    @property
    def model(self) -> str:
        return self._route.model

    @property
    def base_url(self) -> str:
        return self._route.base_url

    @property
    def wire(self) -> WireFormat:
        return self._wire

    def __repr__(self) -> str:
        return f"HTTPModelClient({self.model!r}, provider={self.provider!r}, base_url={self.base_url!r})"

    def _make_endpoint(self) -> Endpoint | None:
        key = self._explicit_key.reveal() if self._explicit_key else self._route.api_key()
        if key is None and self._route.provider.key_required:
            return None
        return _http.shared_endpoint(self.provider, self._wire, self._route.base_url, key, **self._settings)

    def endpoint(self) -> Endpoint:
        """Where requests go; raises :class:`AuthenticationError` if no key is configured."""
        endpoint = self._endpoint
        if endpoint is None:
            # The variable may have been set since construction.
            endpoint = self._endpoint = self._make_endpoint()
            if endpoint is None:
                raise AuthenticationError(
                    self._route.missing_key_message(), provider=self.provider, retryable=False
                )
        return endpoint

    def native_output(self, *, with_tools: bool) -> bool:
        if self._wire.name not in NATIVE_OUTPUT_WIRES:
            return False
        return not with_tools or self._wire.native_output_with_tools(self.model)

    async def complete(self, request: ModelRequest, *, on_retry: OnRetry | None = None) -> ModelResponse:
        """See :func:`lazybridge.providers._http.complete` (retries, cancellation)."""
        return await _http.complete(self.endpoint(), request, on_retry=on_retry)

    async def open_stream(self, request: ModelRequest, *, on_retry: OnRetry | None = None) -> EventStream:
        """See :func:`lazybridge.providers._http.open_stream` (retries, cancellation)."""
        return await _http.open_stream(self.endpoint(), request, on_retry=on_retry)

    async def cost_usd(self, usage: Usage) -> float:
        if not pricing.loaded():
            await pricing.load()
        return pricing.cost_usd(self.provider, self.model, usage)

    async def price_known(self) -> bool:
        """Whether this model has a price (a free local model has one: 0); a cost budget needs it."""
        if not pricing.loaded():
            await pricing.load()
        return pricing.price_for(self.provider, self.model) is not None

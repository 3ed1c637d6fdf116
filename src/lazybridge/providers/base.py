"""The seam between the shared HTTP layer and one provider's wire format.

A :class:`WireFormat` is a set of *pure* translations -- no I/O:

* neutral :class:`~lazybridge.messages.ModelRequest` -> path, headers, JSON body;
* JSON body -> :class:`~lazybridge.messages.ModelResponse`;
* SSE events -> text deltas, then the same ``ModelResponse`` (a
  :class:`StreamDecoder` is a state machine fed one event at a time);
* error body -> the provider's own message.

Sending, pooling, retrying and mapping statuses to exceptions live once, in
:mod:`lazybridge.providers._http`.

A :class:`ModelClient` is the seam above that: what the agent loop talks to
(send a request, open a streamed one, price a usage).  The HTTP
implementation is :class:`~lazybridge.providers.client.HTTPModelClient`;
:class:`~lazybridge.testing.ScriptedModel` is one with no socket at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from ..errors import ProviderError
from ..messages import ModelRequest, ModelResponse, Usage


@attrs.frozen
class RetryNotice:
    """A retry about to happen: told to the caller's ``on_retry`` before the wait.

    ``attempt`` is the attempt that will follow the wait (2 for the first
    retry), ``wait`` the seconds until it starts, ``error`` the failure that
    caused it (its class, message and status say why).
    """

    attempt: int
    wait: float
    error: ProviderError


#: Called before each retry's wait; must not raise.
OnRetry = Callable[[RetryNotice], None]


class ModelStream(Protocol):
    """One streamed reply: its text deltas (``async for``), then :meth:`finish`."""

    def __aiter__(self) -> ModelStream: ...

    async def __anext__(self) -> str:
        """The next text delta; ``StopAsyncIteration`` at the end of the reply.

        Errors: the provider's :class:`~lazybridge.errors.ProviderError`.
        Cancellation: the response is closed before the cancellation propagates.
        """
        ...

    def finish(self) -> ModelResponse:
        """The whole reply, once the deltas are exhausted (equal to the non-streamed answer)."""
        ...

    async def aclose(self) -> None:
        """Close the response (idempotent; shielded, so it also runs while cancelled)."""
        ...


@runtime_checkable
class ModelClient(Protocol):
    """What the agent loop sends requests through.

    ``provider`` and ``model`` are what envelopes and events show.  A client
    may also have ``async def price_known(self) -> bool``: under a
    ``Budget(max_cost_usd=...)`` a model whose price is unknown is then
    refused instead of counted as free (:class:`HTTPModelClient
    <lazybridge.providers.client.HTTPModelClient>` has it).
    """

    @property
    def provider(self) -> str: ...

    @property
    def model(self) -> str: ...

    def native_output(self, *, with_tools: bool) -> bool:
        """Whether a request may carry an output schema (``with_tools``: next to tools).

        When it may not, ``output_mode="auto"`` asks for structured output
        through a forced ``final_answer`` tool.
        """
        ...

    async def complete(self, request: ModelRequest, *, on_retry: OnRetry | None = None) -> ModelResponse:
        """Send ``request`` and return the reply.

        Errors: a :class:`~lazybridge.errors.ProviderError` subclass when it
        failed (after the client's retries, each told to ``on_retry``).
        Cancellation: the request in flight is aborted before it propagates.
        """
        ...

    async def open_stream(self, request: ModelRequest, *, on_retry: OnRetry | None = None) -> ModelStream:
        """Send ``request`` streamed; the reply's :class:`ModelStream` once it answers.

        The caller must ``aclose()`` it.  Errors and cancellation: as :meth:`complete`.
        """
        ...

    async def cost_usd(self, usage: Usage) -> float:
        """What ``usage`` of this model costs, in USD (0 when the price is unknown)."""
        ...


class StreamDecoder(Protocol):
    def feed(self, event: str, data: str) -> list[str]:
        """Consume one SSE event (``event`` is ``""`` when the stream names none).

        Returns the text deltas it carried, in order.  Raises
        :class:`~lazybridge.errors.ProviderError` (a subclass chosen from the
        error's type) for an in-stream error event, and
        :class:`~lazybridge.errors.MalformedResponseError` for an event it
        cannot read -- never another exception.
        """
        ...

    def finish(self) -> ModelResponse:
        """The accumulated response; equal to the non-streamed parse of the same reply."""
        ...


class WireFormat(Protocol):
    #: "anthropic", "openai", "gemini", "deepseek" or "compat"
    name: str

    def path(self, model: str, *, stream: bool) -> str:
        """Path (and query) relative to the base URL."""
        ...

    def auth_headers(self, api_key: str) -> dict[str, str]: ...

    def extra_headers(self) -> dict[str, str]:
        """Non-secret headers every request carries (API version, ...)."""
        ...

    def build_body(self, request: ModelRequest, *, stream: bool) -> dict[str, Any]: ...

    def parse_response(self, body: Mapping[str, Any]) -> ModelResponse:
        """The response in ``body``; :class:`~lazybridge.errors.MalformedResponseError`
        (never another exception) for a body of a shape the format does not know."""
        ...

    def stream_decoder(self) -> StreamDecoder: ...

    def error_message(self, body: str) -> str:
        """The provider's own message from an error body (defensive: any shape)."""
        ...

    def native_output_with_tools(self, model: str) -> bool:
        """Whether ``model`` takes a native output schema in a request that also has tools.

        When it does not, ``output_mode="auto"`` asks for structured output
        with the ``final_answer`` tool instead (for an agent with tools).
        """
        ...

    def error_kind(self, body: str) -> str | None:
        """The provider's own error type or code (``"insufficient_quota"``,
        ``"overloaded_error"``, ``"RESOURCE_EXHAUSTED"``), if the body has one.

        Lets the HTTP layer tell a retryable 429 from an exhausted quota
        without matching on messages.
        """
        ...

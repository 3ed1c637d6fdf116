"""The seam between the shared HTTP layer and one provider's wire format.

A :class:`WireFormat` is a set of *pure* translations -- no I/O:

* neutral :class:`~lazybridge.messages.ModelRequest` -> path, headers, JSON body;
* JSON body -> :class:`~lazybridge.messages.ModelResponse`;
* SSE events -> text deltas, then the same ``ModelResponse`` (a
  :class:`StreamDecoder` is a state machine fed one event at a time);
* error body -> the provider's own message.

Sending, pooling, retrying and mapping statuses to exceptions live once, in
:mod:`lazybridge.providers._http`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..messages import ModelRequest, ModelResponse


class StreamDecoder(Protocol):
    def feed(self, event: str, data: str) -> list[str]:
        """Consume one SSE event (``event`` is ``""`` when the stream names none).

        Returns the text deltas it carried, in order.  Raises
        :class:`~lazybridge.errors.ProviderError` (a subclass chosen from the
        error's type) for an in-stream error event.
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

    def parse_response(self, body: Mapping[str, Any]) -> ModelResponse: ...

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

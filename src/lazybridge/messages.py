"""The neutral message model shared by engines and providers.

Engines speak only these types; each provider module translates them to its
wire JSON and back.  Nothing here knows about HTTP or about any one provider.

::

    Message(role, parts)            role: "user" | "assistant" | "tool"
      parts: TextPart | ImagePart | ToolCall | ToolResult | ReasoningPart

    ModelRequest  -> provider -> ModelResponse(parts, stop_reason, usage)

Provider-opaque state that must be echoed back on the next turn (Anthropic
thinking signatures, Gemini ``thoughtSignature``, DeepSeek
``reasoning_content``) is carried on the parts themselves, so a history built
from responses round-trips without the engine knowing what is inside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

Role = Literal["user", "assistant", "tool"]

#: Normalised stop reasons (see the wire-format cheat sheet, §7.2).
StopReason = Literal["stop", "tool_calls", "length", "content_filter", "pause", "error"]


@attrs.frozen
class TextPart:
    """Plain text.  ``signature`` is provider-opaque state (Gemini ``thoughtSignature``)."""

    text: str
    signature: str | None = None


@attrs.frozen
class ImagePart:
    """An image, either inline (base64 ``data``) or by ``url``."""

    media_type: str = "image/png"
    data: str | None = None
    url: str | None = None


@attrs.frozen
class ToolCall:
    """A tool call requested by the model.

    ``arguments`` is the parsed JSON object.  ``signature`` carries Gemini's
    ``thoughtSignature`` for the part that held the call.
    """

    id: str
    name: str
    arguments: Mapping[str, Any] = attrs.field(factory=dict)
    signature: str | None = None


@attrs.frozen
class ToolResult:
    """The result of one tool call, sent back to the model."""

    call_id: str
    name: str
    content: str
    is_error: bool = False


@attrs.frozen
class ReasoningPart:
    """Model reasoning that must round-trip to the provider that produced it.

    ``provider`` names the wire format that produced it ("anthropic",
    "deepseek", ...); other providers drop it when translating a history.
    ``signature`` is Anthropic's thinking signature; ``redacted`` holds the
    opaque ``data`` of a ``redacted_thinking`` block.
    """

    text: str
    provider: str
    signature: str | None = None
    redacted: str | None = None


@attrs.frozen
class OpaquePart:
    """A block of a reply that LazyBridge does not interpret but must send back as is.

    Anthropic's server-tool blocks (``server_tool_use``,
    ``web_search_tool_result``, ...) are the case: a turn paused with
    ``pause_turn`` is continued by sending them back unchanged.  ``provider``
    names the wire format that produced ``data``; others drop it.
    """

    provider: str
    data: Mapping[str, Any]


Part = TextPart | ImagePart | ToolCall | ToolResult | ReasoningPart | OpaquePart


@attrs.frozen
class Message:
    role: Role
    parts: tuple[Part, ...]

    @classmethod
    def user(cls, text: str) -> Message:
        return cls("user", (TextPart(text),))

    @classmethod
    def assistant(cls, text: str) -> Message:
        return cls("assistant", (TextPart(text),))

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(p for p in self.parts if isinstance(p, ToolCall))


@attrs.frozen
class ToolSpec:
    """A tool as offered to a model: name, description, JSON Schema of its parameters."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    strict: bool = False


ToolChoiceMode = Literal["auto", "none", "required"]


@attrs.frozen
class ToolChoice:
    """``mode`` auto / none / required, or ``name`` to force one tool."""

    mode: ToolChoiceMode = "auto"
    name: str | None = None


@attrs.frozen
class OutputSchema:
    """A JSON Schema the model's answer must follow (native structured output)."""

    name: str
    schema: Mapping[str, Any]


@attrs.frozen
class ModelRequest:
    """Everything one model call needs, independent of the wire format."""

    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    output_schema: OutputSchema | None = None
    temperature: float | None = None
    max_tokens: int | None = None


@attrs.frozen
class Usage:
    """Token counts of one model call, normalised (wire-format cheat sheet, §7.3).

    ``input_tokens`` is the whole prompt including cached tokens;
    ``output_tokens`` includes reasoning tokens.  ``reported`` is ``False``
    when the provider sent no usage at all (a local server's stream, say):
    the counts are then 0 but *unknown*, not zero.  A sum is reported only
    if every part was.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    reported: bool = True

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.reported and other.reported,
        )


@attrs.frozen
class ModelResponse:
    """A model's reply, normalised.  ``parts`` keep the order the provider sent."""

    parts: tuple[Part, ...]
    stop_reason: StopReason
    usage: Usage = Usage()
    model: str = ""
    raw_stop_reason: str | None = None
    response_id: str | None = None

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(p for p in self.parts if isinstance(p, ToolCall))

    def as_message(self) -> Message:
        """The assistant turn to append to the history, opaque state included."""
        return Message("assistant", self.parts)

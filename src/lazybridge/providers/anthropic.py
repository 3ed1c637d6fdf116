"""Anthropic Messages API (``POST /v1/messages``): pure translations.

Wire reference: ``shared/docs/provider-wire-formats.md`` §1.  The streamed
reply is rebuilt into the shape of a non-streamed ``message`` body and parsed
by the same code, so both paths yield equal :class:`ModelResponse` values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..errors import StreamError
from ..messages import (
    ImagePart,
    Message,
    ModelRequest,
    ModelResponse,
    OpaquePart,
    Part,
    ReasoningPart,
    StopReason,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
)
from . import _shape, _sse

#: Used when the request sets no ``max_tokens``: the API has no default and requires one.
DEFAULT_MAX_TOKENS = 4096

# The first API version without temperature/top_p/top_k (sending one is a 400).
# Versions are ISO dates, so plain string comparison orders them.
_SAMPLING_REMOVED_IN = "2026-10-21"

_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
    "pause_turn": "pause",
}


@attrs.frozen
class AnthropicFormat:
    """The Anthropic Messages wire format, for API ``version`` (the ``anthropic-version`` header).

    * ``max_tokens`` is required by the API; a request without one gets
      :data:`DEFAULT_MAX_TOKENS` (4096).
    * **Sampling:** the default version, ``2026-10-21``, removed
      ``temperature`` (and ``top_p``/``top_k``): for it and later versions the
      request's ``temperature`` is *dropped silently*, because the API would
      reject the whole call.  Older versions (``"2023-06-01"``) send it.
    * ``pause_turn`` (a server tool paused a long turn) is stop reason
      ``"pause"``; the loop continues it by sending the paused assistant
      content back as is (server-tool blocks are kept as ``OpaquePart``).
    * Tool results go back as one ``user`` message whose ``tool_result``
      blocks come before any text; ``thinking`` / ``redacted_thinking`` blocks
      round-trip verbatim (with their signature) as
      ``ReasoningPart(provider="anthropic")``; reasoning from other providers
      is dropped.
    * Usage: ``input_tokens`` counts the whole prompt (uncached + cache
      writes + cache reads); the cache fields carry the split.
    """

    version: str = "2026-10-21"
    name = "anthropic"

    @property
    def sends_sampling(self) -> bool:
        """Whether this API version still accepts ``temperature``."""
        return self.version < _SAMPLING_REMOVED_IN

    def path(self, model: str, *, stream: bool) -> str:
        return "/v1/messages"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key}

    def extra_headers(self) -> dict[str, str]:
        return {"anthropic-version": self.version}

    def build_body(self, request: ModelRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": DEFAULT_MAX_TOKENS if request.max_tokens is None else request.max_tokens,
        }
        if request.system:
            body["system"] = request.system
        body["messages"] = _messages(request.messages)
        if request.temperature is not None and self.sends_sampling:
            body["temperature"] = request.temperature
        if request.tools:
            body["tools"] = [
                {
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": dict(tool.parameters),
                    **({"strict": True} if tool.strict else {}),
                }
                for tool in request.tools
            ]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.output_schema is not None:
            body["output_config"] = {
                "format": {"type": "json_schema", "schema": dict(request.output_schema.schema)}
            }
        if stream:
            body["stream"] = True
        return body

    def parse_response(self, body: Mapping[str, Any]) -> ModelResponse:
        """A ``message`` body as a response.

        Raises :class:`~lazybridge.errors.MalformedResponseError` for a body
        of another shape (missing or null members are tolerated).
        """
        with _shape.parsing(self.name, "a Messages response"):
            body = _shape.obj(body, "the response")
            blocks = _shape.objects(body, "content", "content")
            parts = [part for i, block in enumerate(blocks) if (part := _part(block, f"content[{i}]")) is not None]
            raw = _shape.field(body, "stop_reason", str, "stop_reason")
            has_calls = any(isinstance(p, ToolCall) for p in parts)
            return ModelResponse(
                parts=tuple(parts),
                stop_reason=_sse.stop_reason(raw, _STOP_REASONS, has_tool_calls=has_calls),
                usage=_usage(_shape.member(body, "usage", "usage")),
                model=_shape.text(body, "model", "model"),
                raw_stop_reason=raw,
                response_id=_shape.field(body, "id", str, "id"),
            )

    def stream_decoder(self) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder(self)

    def native_output_with_tools(self, model: str) -> bool:
        return True

    def error_message(self, body: str) -> str:
        """``error.message`` of ``{"type":"error","error":{"type","message"}}``; else the body, cut."""
        return _sse.error_message(body)

    def error_kind(self, body: str) -> str | None:
        """``error.details.error_code`` (spend limit) or ``error.type`` (``overloaded_error``, ...)."""
        return _sse.error_kind(body)


class AnthropicStreamDecoder:
    """Rebuilds a ``message`` body from ``message_start`` / ``content_block_*`` / ``message_delta``.

    The event type is read from the JSON ``type`` (the ``event:`` name agrees
    with it and may be missing or defaulted by the SSE parser).  ``ping`` and
    unknown events are ignored; ``message_stop`` is not required, because the
    stream is complete once ``message_delta`` carried the stop reason.
    """

    def __init__(self, wire: AnthropicFormat) -> None:
        self._wire = wire
        self._message: dict[str, Any] = {}
        self._usage: dict[str, Any] = {}
        self._blocks: dict[int, dict[str, Any]] = {}
        self._json: dict[int, list[str]] = {}

    def feed(self, event: str, data: str) -> list[str]:
        """See :class:`~lazybridge.providers.base.StreamDecoder`; an event of an
        unknown shape raises :class:`~lazybridge.errors.MalformedResponseError`."""
        with _shape.parsing(self._wire.name, "a Messages stream event"):
            return self._feed(event, data)

    def _feed(self, event: str, data: str) -> list[str]:
        payload = _sse.load_event(data, provider="anthropic")
        if payload is None:
            return []
        payload = _shape.obj(payload, "a stream event")
        kind = _shape.text(payload, "type", "event.type") or event
        if kind == "error":
            raise _sse.stream_error(payload.get("error"), provider="anthropic")
        if kind == "message_start":
            self._message = dict(_shape.member(payload, "message", "message_start.message"))
            self._merge_usage(_shape.member(self._message, "usage", "message_start.message.usage"))
        elif kind == "content_block_start":
            block = dict(_shape.member(payload, "content_block", "content_block_start.content_block"))
            self._blocks[_shape.index(payload, "index", "content_block_start.index", len(self._blocks))] = block
            text = _shape.text(block, "text", "content_block_start.content_block.text")
            if block.get("type") == "text" and text:
                return [text]
        elif kind == "content_block_delta":
            return self._delta(
                _shape.index(payload, "index", "content_block_delta.index", 0),
                _shape.member(payload, "delta", "content_block_delta.delta"),
            )
        elif kind == "message_delta":
            delta = _shape.member(payload, "delta", "message_delta.delta")
            for key in ("stop_reason", "stop_sequence"):
                value = _shape.field(delta, key, str, f"message_delta.delta.{key}")
                if value is not None:
                    self._message[key] = value
            self._merge_usage(_shape.member(payload, "usage", "message_delta.usage"))
        return []

    def _delta(self, index: int, delta: Mapping[str, Any]) -> list[str]:
        block = self._blocks.setdefault(index, {"type": "text", "text": ""})
        kind = _shape.text(delta, "type", "content_block_delta.delta.type")
        where = f"content block {index}"
        if kind == "text_delta":
            text = _shape.text(delta, "text", "text_delta.text")
            block["text"] = _shape.text(block, "text", f"{where}.text") + text
            return [text] if text else []
        if kind == "input_json_delta":
            self._json.setdefault(index, []).append(_shape.text(delta, "partial_json", "input_json_delta.partial_json"))
        elif kind == "thinking_delta":
            thinking = _shape.text(delta, "thinking", "thinking_delta.thinking")
            block["thinking"] = _shape.text(block, "thinking", f"{where}.thinking") + thinking
        elif kind == "signature_delta":
            signature = _shape.text(delta, "signature", "signature_delta.signature")
            block["signature"] = _shape.text(block, "signature", f"{where}.signature") + signature
        return []

    def _merge_usage(self, usage: Mapping[str, Any]) -> None:
        # message_delta usage is cumulative, but may carry only output_tokens:
        # keep the input/cache counts from message_start unless repeated.
        self._usage.update({k: v for k, v in usage.items() if v is not None})

    def finish(self) -> ModelResponse:
        """The response; :class:`~lazybridge.errors.StreamError` if the stream
        ended before the stop reason, ``MalformedResponseError`` if what it
        carried does not add up to a ``message``."""
        if self._message.get("stop_reason") is None:
            raise StreamError("stream ended before the message was complete", provider="anthropic")
        content = []
        for index in sorted(self._blocks):
            block = dict(self._blocks[index])
            if block.get("type") in ("tool_use", "server_tool_use") and index in self._json:
                block["input"] = _sse.parse_arguments("".join(self._json[index]))
            content.append(block)
        return self._wire.parse_response({**self._message, "content": content, "usage": self._usage})


def _tool_choice(choice: ToolChoice) -> dict[str, Any]:
    if choice.name is not None:
        return {"type": "tool", "name": choice.name}
    return {"type": {"auto": "auto", "none": "none", "required": "any"}[choice.mode]}


def _messages(messages: Iterable[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = [b for part in message.parts if (b := _block(part, role)) is not None]
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            # Tool results (role "tool") and a following user text are one user
            # turn on this wire; merging avoids relying on the API's own merge.
            blocks = out.pop()["content"] + blocks
        if role == "user":
            # tool_result blocks must precede any other block of the turn (else 400).
            blocks.sort(key=lambda b: b["type"] != "tool_result")
        out.append({"role": role, "content": blocks})
    return out


def _block(part: Part, role: str) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        # The API rejects empty text blocks.
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ImagePart):
        if part.url is not None:
            return {"type": "image", "source": {"type": "url", "url": part.url}}
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": part.media_type, "data": part.data or ""},
        }
    if role == "assistant":
        if isinstance(part, ToolCall):
            return {"type": "tool_use", "id": part.id, "name": part.name, "input": dict(part.arguments)}
        if isinstance(part, ReasoningPart) and part.provider == "anthropic":
            if part.redacted is not None:
                return {"type": "redacted_thinking", "data": part.redacted}
            return {"type": "thinking", "thinking": part.text, "signature": part.signature or ""}
        if isinstance(part, OpaquePart) and part.provider == "anthropic":
            return dict(part.data)
        return None
    if isinstance(part, ToolResult):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.call_id, "content": part.content}
        if part.is_error:
            block["is_error"] = True
        return block
    return None


def _part(block: Mapping[str, Any], where: str) -> Part | None:
    kind = _shape.text(block, "type", f"{where}.type")
    if kind == "text":
        text = _shape.text(block, "text", f"{where}.text")
        return TextPart(text) if text else None
    if kind == "tool_use":
        return ToolCall(
            id=_shape.text(block, "id", f"{where}.id"),
            name=_shape.text(block, "name", f"{where}.name"),
            arguments=_shape.member(block, "input", f"{where}.input"),
        )
    if kind == "thinking":
        return ReasoningPart(
            _shape.text(block, "thinking", f"{where}.thinking"),
            "anthropic",
            signature=_shape.text(block, "signature", f"{where}.signature") or None,
        )
    if kind == "redacted_thinking":
        return ReasoningPart("", "anthropic", redacted=_shape.text(block, "data", f"{where}.data"))
    # Server-tool blocks (server_tool_use, web_search_tool_result, ...) and future
    # block types are opaque to us, but go back as they came: a paused turn
    # (pause_turn) is continued from them, and a history must keep them.
    return OpaquePart("anthropic", dict(block)) if kind else None


def _usage(usage: Mapping[str, Any]) -> Usage:
    # input_tokens counts only the uncached part of the prompt.
    fresh = _sse.as_int(usage.get("input_tokens"))
    write = _sse.as_int(usage.get("cache_creation_input_tokens"))
    read = _sse.as_int(usage.get("cache_read_input_tokens"))
    details = _shape.member(usage, "output_tokens_details", "usage.output_tokens_details")
    reasoning = _sse.as_int(details.get("reasoning_tokens"))
    return Usage(
        input_tokens=fresh + write + read,
        output_tokens=_sse.as_int(usage.get("output_tokens")),
        cache_read_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=reasoning,
    )

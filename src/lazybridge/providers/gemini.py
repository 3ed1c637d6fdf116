"""Google Gemini ``generateContent`` / ``streamGenerateContent?alt=sse``: pure translations.

Wire reference: ``shared/docs/provider-wire-formats.md`` §4.  Streamed chunks
are merged into the shape of one non-streamed response and parsed by the
same code, so both paths yield equal :class:`ModelResponse` values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..errors import StreamError
from ..messages import (
    ImagePart,
    Message,
    ModelRequest,
    ModelResponse,
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

# Ids we make up for calls Gemini sent without one.  They are never sent back
# (Gemini matches responses by name and order then); real ids are echoed.
_SYNTHETIC_PREFIX = "gemini_"
_SYNTHETIC_ID = re.compile(r"gemini_\d+_[0-9a-f]{8}")

_FINISH_REASONS: dict[str, StopReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
    "OTHER": "error",
    "FINISH_REASON_UNSPECIFIED": "error",
}


_GEMINI_VERSION = re.compile(r"gemini-(\d+)(?:\.\d+)?(?:-|$)")


@attrs.frozen
class GeminiFormat:
    """The Gemini (Generative Language API, v1beta) wire format.

    * Roles are ``user`` / ``model``; the system prompt is ``systemInstruction``.
    * Tools are one ``functionDeclarations`` entry with ``parametersJsonSchema``;
      ``toolConfig.functionCallingConfig`` carries the tool choice (a named
      tool is ``ANY`` restricted by ``allowedFunctionNames``).
    * Gemini usually omits call ids: the parser then makes up deterministic
      ones (``gemini_<n>_<hash of responseId>``) which are *not* sent back;
      a ``functionResponse`` is matched by tool name and order instead, and
      carries the call's id only when Gemini gave one.  Tool results are
      wrapped as ``{"result": content}`` or ``{"error": content}``.
    * ``thoughtSignature`` rides on the :class:`ToolCall`/:class:`TextPart`
      ``signature`` (thought-summary parts become
      ``ReasoningPart(provider="gemini")``) and is echoed on the same part.
    * Usage: output = candidates + thoughts tokens, reasoning = thoughts,
      input = prompt (+ tool-use prompt) tokens, cache read =
      ``cachedContentTokenCount``.
    """

    name = "gemini"

    def path(self, model: str, *, stream: bool) -> str:
        model = model.removeprefix("models/")
        if stream:
            return f"/v1beta/models/{model}:streamGenerateContent?alt=sse"
        return f"/v1beta/models/{model}:generateContent"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-goog-api-key": api_key}

    def extra_headers(self) -> dict[str, str]:
        return {}

    def build_body(self, request: ModelRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": request.system}]}
        body["contents"] = _contents(request.messages)
        if request.tools:
            body["tools"] = [
                {
                    "functionDeclarations": [
                        {
                            "name": tool.name,
                            "description": tool.description,
                            "parametersJsonSchema": dict(tool.parameters),
                        }
                        for tool in request.tools
                    ]
                }
            ]
        if request.tool_choice is not None:
            body["toolConfig"] = {"functionCallingConfig": _calling_config(request.tool_choice)}
        config: dict[str, Any] = {}
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.max_tokens is not None:
            config["maxOutputTokens"] = request.max_tokens
        if request.output_schema is not None:
            config["responseMimeType"] = "application/json"
            config["responseJsonSchema"] = dict(request.output_schema.schema)
        if config:
            body["generationConfig"] = config
        return body

    def parse_response(self, body: Mapping[str, Any]) -> ModelResponse:
        """A ``GenerateContentResponse`` as a response (candidate 0).

        Raises :class:`~lazybridge.errors.MalformedResponseError` for a body
        of another shape (missing or null members are tolerated).
        """
        with _shape.parsing(self.name, "a GenerateContentResponse"):
            return self._parse(_shape.obj(body, "the response"))

    def _parse(self, body: Mapping[str, Any]) -> ModelResponse:
        candidates = _shape.objects(body, "candidates", "candidates")
        candidate = candidates[0] if candidates else {}
        seed = _shape.text(body, "responseId", "responseId")
        parts: list[Part] = []
        content = _shape.member(candidate, "content", "candidates[0].content")
        for i, raw in enumerate(_shape.objects(content, "parts", "candidates[0].content.parts")):
            calls_so_far = sum(isinstance(p, ToolCall) for p in parts)
            part = _part(raw, f"candidates[0].content.parts[{i}]", seed=seed, calls_so_far=calls_so_far)
            if part is not None:
                parts.append(part)
        raw_reason = _shape.field(candidate, "finishReason", str, "candidates[0].finishReason")
        feedback = _shape.member(body, "promptFeedback", "promptFeedback")
        block_reason = _shape.field(feedback, "blockReason", str, "promptFeedback.blockReason")
        stop: StopReason
        if not candidates and block_reason:
            # The prompt itself was blocked: no candidate at all.
            stop, raw_reason = "content_filter", block_reason
        elif raw_reason is not None and raw_reason.startswith("IMAGE_"):
            stop = "content_filter"
        else:
            has_calls = any(isinstance(p, ToolCall) for p in parts)
            stop = _sse.stop_reason(raw_reason, _FINISH_REASONS, has_tool_calls=has_calls)
        return ModelResponse(
            parts=tuple(parts),
            stop_reason=stop,
            usage=_usage(_shape.member(body, "usageMetadata", "usageMetadata")),
            model=_shape.text(body, "modelVersion", "modelVersion"),
            raw_stop_reason=raw_reason,
            response_id=seed or None,
        )

    def stream_decoder(self) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(self)

    def native_output_with_tools(self, model: str) -> bool:
        # Gemini 1.x and 2.x refuse function declarations next to
        # responseMimeType "application/json" (400 "Function calling with a
        # response mime type: 'application/json' is unsupported"); Gemini 3
        # takes both.  A name without a version (an alias) is taken as current.
        version = _GEMINI_VERSION.match(model.removeprefix("models/"))
        return version is None or int(version.group(1)) >= 3

    def error_message(self, body: str) -> str:
        """``error.message`` of the google.rpc.Status envelope; else the body, cut."""
        return _sse.error_message(body)

    def error_kind(self, body: str) -> str | None:
        """``error.status`` (``RESOURCE_EXHAUSTED``, ``NOT_FOUND``, ...)."""
        return _sse.error_kind(body)


class GeminiStreamDecoder:
    """Merges ``GenerateContentResponse`` chunks (``data:`` only, no ``[DONE]``).

    Text parts are appended (adjacent text of the same kind is joined into one
    part, keeping a ``thoughtSignature`` that arrives on a later, often empty,
    fragment); ``functionCall`` parts arrive whole.  ``usageMetadata`` is
    cumulative on every chunk: the last one wins.  A chunk with an ``error``
    raises.
    """

    def __init__(self, wire: GeminiFormat) -> None:
        self._wire = wire
        self._head: dict[str, Any] = {}
        self._parts: list[dict[str, Any]] = []
        self._finish_reason: str | None = None
        self._seen_candidate = False

    def feed(self, event: str, data: str) -> list[str]:
        """See :class:`~lazybridge.providers.base.StreamDecoder`; a chunk of an
        unknown shape raises :class:`~lazybridge.errors.MalformedResponseError`."""
        with _shape.parsing(self._wire.name, "a GenerateContentResponse chunk"):
            return self._feed(data)

    def _feed(self, data: str) -> list[str]:
        chunk = _sse.load_event(data, provider="gemini")
        if chunk is None:
            return []
        chunk = _shape.obj(chunk, "a stream chunk")
        if chunk.get("error"):
            raise _sse.stream_error(chunk["error"], provider="gemini")
        for key in ("usageMetadata", "promptFeedback"):
            value: Any = _shape.member(chunk, key, key)
            if value:
                self._head[key] = value
        for key in ("modelVersion", "responseId"):
            value = _shape.text(chunk, key, key)
            if value:
                self._head[key] = value
        deltas: list[str] = []
        for i, candidate in enumerate(_shape.objects(chunk, "candidates", "candidates")):
            where = f"candidates[{i}]"
            if _shape.index(candidate, "index", f"{where}.index", 0) != 0:
                continue
            self._seen_candidate = True
            content = _shape.member(candidate, "content", f"{where}.content")
            for j, raw in enumerate(_shape.objects(content, "parts", f"{where}.content.parts")):
                text = _shape.field(raw, "text", str, f"{where}.content.parts[{j}].text")
                self._append(dict(raw))
                if text and not raw.get("thought"):
                    deltas.append(text)
            finish_reason = _shape.text(candidate, "finishReason", f"{where}.finishReason")
            if finish_reason:
                self._finish_reason = finish_reason
        return deltas

    def _append(self, raw: dict[str, Any]) -> None:
        last = self._parts[-1] if self._parts else None
        if (
            last is not None
            and isinstance(raw.get("text"), str)
            and isinstance(last.get("text"), str)
            and bool(raw.get("thought")) == bool(last.get("thought"))
            and not (raw.get("thoughtSignature") and last.get("thoughtSignature"))
        ):
            last["text"] += raw["text"]
            if raw.get("thoughtSignature"):
                last["thoughtSignature"] = raw["thoughtSignature"]
            return
        self._parts.append(raw)

    def finish(self) -> ModelResponse:
        """The response; :class:`~lazybridge.errors.StreamError` if the stream
        ended before a finish reason (and was not a blocked prompt)."""
        blocked = bool((self._head.get("promptFeedback") or {}).get("blockReason"))
        if self._finish_reason is None and not blocked:
            raise StreamError("stream ended before the reply was complete", provider="gemini")
        candidates = []
        if self._seen_candidate:
            content = {"role": "model", "parts": self._parts}
            candidates.append({"content": content, "finishReason": self._finish_reason, "index": 0})
        return self._wire.parse_response({**self._head, "candidates": candidates})


def _calling_config(choice: ToolChoice) -> dict[str, Any]:
    if choice.name is not None:
        return {"mode": "ANY", "allowedFunctionNames": [choice.name]}
    return {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice.mode]}


def _contents(messages: Iterable[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # call id -> tool name, for results that lack it
    for message in messages:
        role = "model" if message.role == "assistant" else "user"
        parts = [wire for part in message.parts if (wire := _wire_part(part, role, names)) is not None]
        if not parts:
            continue
        if out and out[-1]["role"] == role:
            # Tool results and a following user text form one user turn.
            parts = out.pop()["parts"] + parts
        if role == "user":
            parts.sort(key=lambda p: "functionResponse" not in p)
        out.append({"role": role, "parts": parts})
    return out


def _wire_part(part: Part, role: str, names: dict[str, str]) -> dict[str, Any] | None:
    sig = getattr(part, "signature", None)
    signature = {"thoughtSignature": sig} if sig else {}
    if role == "model":
        if isinstance(part, TextPart) and (part.text or signature):
            return {"text": part.text, **signature}
        if isinstance(part, ToolCall):
            names[part.id] = part.name
            call: dict[str, Any] = {"name": part.name, "args": dict(part.arguments)}
            if not _SYNTHETIC_ID.fullmatch(part.id):
                call["id"] = part.id
            return {"functionCall": call, **signature}
        if isinstance(part, ReasoningPart) and part.provider == "gemini":
            return {"text": part.text, "thought": True, **signature}
        return None
    if isinstance(part, TextPart) and part.text:
        return {"text": part.text}
    if isinstance(part, ImagePart):
        if part.url is not None:
            return {"fileData": {"mimeType": part.media_type, "fileUri": part.url}}
        return {"inlineData": {"mimeType": part.media_type, "data": part.data or ""}}
    if isinstance(part, ToolResult):
        # `response` must be an object; Google suggests these two keys.
        response: dict[str, Any] = {
            "name": part.name or names.get(part.call_id, ""),
            "response": {"error" if part.is_error else "result": part.content},
        }
        if not _SYNTHETIC_ID.fullmatch(part.call_id):
            response["id"] = part.call_id
        return {"functionResponse": response}
    return None


def _part(raw: Mapping[str, Any], where: str, *, seed: str, calls_so_far: int) -> Part | None:
    signature = _shape.text(raw, "thoughtSignature", f"{where}.thoughtSignature") or None
    if raw.get("functionCall") is not None:
        call = _shape.member(raw, "functionCall", f"{where}.functionCall")
        return ToolCall(
            id=_shape.text(call, "id", f"{where}.functionCall.id")
            or _sse.synthetic_call_id(_SYNTHETIC_PREFIX, calls_so_far, seed),
            name=_shape.text(call, "name", f"{where}.functionCall.name"),
            arguments=_shape.member(call, "args", f"{where}.functionCall.args"),
            signature=signature,
        )
    if "text" in raw or signature:
        text = _shape.text(raw, "text", f"{where}.text")
        if _shape.field(raw, "thought", bool, f"{where}.thought"):
            return ReasoningPart(text, "gemini", signature=signature)
        # An empty text part matters only when it carries a signature to echo back.
        return TextPart(text, signature=signature) if text or signature else None
    return None


def _usage(usage: Mapping[str, Any]) -> Usage:
    thoughts = _sse.as_int(usage.get("thoughtsTokenCount"))
    return Usage(
        # Tool-use prompt tokens are billed as input but counted apart from the prompt.
        input_tokens=_sse.as_int(usage.get("promptTokenCount"))
        + _sse.as_int(usage.get("toolUsePromptTokenCount")),
        output_tokens=_sse.as_int(usage.get("candidatesTokenCount")) + thoughts,
        cache_read_tokens=_sse.as_int(usage.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )

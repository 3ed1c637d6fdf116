"""OpenAI Chat Completions (``POST /chat/completions``): pure translations.

Wire reference: ``shared/docs/provider-wire-formats.md`` §2.  This module is
also the base of the chat-completions dialects (:mod:`.deepseek`,
:mod:`.openai_compat`), so the quirk handling that is harmless against
OpenAI itself lives here, once:

* tool calls without a usable id (empty, missing, repeated within the reply,
  or a bare index such as OpenRouter's ``"0"``, which repeats across turns)
  get a deterministic synthetic id;
* ``content: ""`` next to ``tool_calls`` is no text; a ``stop`` (or missing)
  finish reason with tool calls means ``tool_calls``;
* streamed tool-call fragments are keyed by ``index``; ``id``/``name`` are
  set only when non-empty (some servers repeat them), ``arguments`` are
  always appended;
* streamed ``usage`` is taken from any chunk that has one, the last winning;
  a reply with none (llama-cpp-python's streams ignore
  ``stream_options.include_usage``) has ``Usage(reported=False)``;
* cached-prompt counts are read from ``prompt_tokens_details.cached_tokens``
  or DeepSeek's ``prompt_cache_hit_tokens``.

The streamed reply is rebuilt into the shape of a non-streamed body and
parsed by the same code, so both paths yield equal responses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from ..errors import StreamError
from ..messages import (
    ImagePart,
    Message,
    ModelRequest,
    ModelResponse,
    OutputSchema,
    Part,
    ReasoningPart,
    StopReason,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolResult,
    ToolSpec,
    Usage,
)
from . import _shape, _sse
from ._strict import strict_schema

_STOP_REASONS: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


@attrs.frozen
class OpenAIChatFormat:
    """The OpenAI Chat Completions wire format.

    The system prompt is the first message (role ``system``), the output cap
    is ``max_completion_tokens``, tool results are one ``tool`` message per
    call, structured output is a strict ``json_schema`` ``response_format``,
    and streams ask for ``stream_options.include_usage``.  Tool-call
    arguments that are not a JSON object are kept as
    ``{"__raw_arguments__": "<raw>"}`` and sent back verbatim.

    Dialects subclass it and override the class-level knobs below or the
    small ``_``-prefixed hooks; the translation itself exists once.
    """

    name = "openai"
    #: Body field of the output cap (local servers and DeepSeek want ``max_tokens``).
    max_tokens_field: ClassVar[str] = "max_completion_tokens"
    #: Message/delta fields holding reasoning text, parsed into ``ReasoningPart(provider=name)``.
    reasoning_fields: ClassVar[tuple[str, ...]] = ()
    #: Send ``ToolCall.signature`` back as ``extra_content.google.thought_signature``.
    echo_signatures: ClassVar[bool] = False
    #: ``content`` of an assistant turn that has tool calls but no text.  OpenAI
    #: documents ``null`` (wire notes §2.5); some compatible servers refuse it.
    empty_assistant_content: ClassVar[str | None] = None

    def path(self, model: str, *, stream: bool) -> str:
        return "/chat/completions"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def extra_headers(self) -> dict[str, str]:
        return {}

    # -- request ---------------------------------------------------------------

    def build_body(self, request: ModelRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "messages": self._messages(request)}
        if request.max_tokens is not None:
            body[self.max_tokens_field] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.tools:
            body["tools"] = [{"type": "function", "function": _function(tool)} for tool in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.output_schema is not None:
            body["response_format"] = self._response_format(request.output_schema)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _system(self, request: ModelRequest) -> str | None:
        return request.system

    def _response_format(self, schema: OutputSchema) -> dict[str, Any]:
        # The API restricts the name to [A-Za-z0-9_-]{1,64}.
        name = re.sub(r"[^A-Za-z0-9_-]", "_", schema.name)[:64] or "output"
        # Strict mode refuses a schema with optional properties or defaults
        # (400); rewritten, it decodes against the schema.  A map cannot be
        # strict: it goes as a hint, and the answer is still checked on parse.
        strict = strict_schema(schema.schema)
        return {
            "type": "json_schema",
            "json_schema": {
                "name": name,
                "schema": strict if strict is not None else dict(schema.schema),
                "strict": strict is not None,
            },
        }

    def _assistant_extras(self, message: Message) -> dict[str, Any]:
        """Extra fields of an assistant message (DeepSeek's ``reasoning_content``)."""
        return {}

    def _messages(self, request: ModelRequest) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        system = self._system(request)
        if system:
            out.append({"role": "system", "content": system})
        for message in request.messages:
            if message.role == "assistant":
                assistant = self._assistant(message)
                if assistant is not None:
                    out.append(assistant)
                continue
            # One "tool" message per result, before any text of the same turn.
            for part in message.parts:
                if isinstance(part, ToolResult):
                    out.append({"role": "tool", "tool_call_id": part.call_id, "content": part.content})
            content = _user_content(message.parts)
            if content is not None:
                out.append({"role": "user", "content": content})
        return out

    def _assistant(self, message: Message) -> dict[str, Any] | None:
        text = message.text
        calls = [self._tool_call(call) for call in message.tool_calls]
        extras = self._assistant_extras(message)
        if not text and not calls and not extras:
            return None
        wire: dict[str, Any] = {"role": "assistant", "content": text or self.empty_assistant_content}
        if calls:
            wire["tool_calls"] = calls
        wire.update(extras)
        return wire

    def _tool_call(self, call: ToolCall) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": _sse.dump_arguments(call.arguments)},
        }
        if self.echo_signatures and call.signature is not None:
            wire["extra_content"] = {"google": {"thought_signature": call.signature}}
        return wire

    # -- response --------------------------------------------------------------

    def parse_response(self, body: Mapping[str, Any]) -> ModelResponse:
        """A ``chat.completion`` body as a response (choice 0).

        Raises :class:`~lazybridge.errors.MalformedResponseError` for a body
        of another shape (missing or null members are tolerated).
        """
        with _shape.parsing(self.name, "a chat completion"):
            return self._parse(_shape.obj(body, "the response"))

    def _parse(self, body: Mapping[str, Any]) -> ModelResponse:
        choices = _shape.objects(body, "choices", "choices")
        choice = choices[0] if choices else {}
        message = _shape.member(choice, "message", "choices[0].message")
        parts: list[Part] = []
        reasoning = self._reasoning_text(message, "choices[0].message")
        if reasoning:
            parts.append(ReasoningPart(reasoning, self.name))
        text = _content_text(message.get("content"), "choices[0].message.content")
        if text:
            parts.append(TextPart(text))
        refusal = _shape.text(message, "refusal", "choices[0].message.refusal")
        if refusal:
            parts.append(TextPart(refusal))
        seed = _shape.text(body, "id", "id")
        calls = _tool_calls(_shape.items(message, "tool_calls", "choices[0].message.tool_calls"), seed=seed)
        parts.extend(calls)
        raw = _shape.field(choice, "finish_reason", str, "choices[0].finish_reason")
        stop = _sse.stop_reason(raw, _STOP_REASONS, has_tool_calls=bool(calls))
        if refusal and stop == "stop":
            stop = "content_filter"
        return ModelResponse(
            parts=tuple(parts),
            stop_reason=stop,
            usage=_usage(_shape.member(body, "usage", "usage")),
            model=_shape.text(body, "model", "model"),
            raw_stop_reason=raw,
            response_id=seed or None,
        )

    def _reasoning_text(self, message: Mapping[str, Any], where: str) -> str:
        # Servers in transition may send the same text under two names: take one.
        for name in self.reasoning_fields:
            value = _shape.text(message, name, f"{where}.{name}")
            if value:
                return value
        return ""

    def stream_decoder(self) -> ChatStreamDecoder:
        return ChatStreamDecoder(self)

    def native_output_with_tools(self, model: str) -> bool:
        return True

    def error_message(self, body: str) -> str:
        """``error.message`` (or a string ``error``); else the body, cut to 500 characters."""
        return _sse.error_message(body)

    def error_kind(self, body: str) -> str | None:
        """``error.code`` when it is a string (``insufficient_quota``), else ``error.type``."""
        return _sse.error_kind(body)


class ChatStreamDecoder:
    """Accumulates ``chat.completion.chunk`` events into a non-streamed body.

    Ends at ``data: [DONE]`` or at a finish reason (OpenRouter may send no
    finish reason at all, only ``[DONE]``).  A chunk with a top-level
    ``error`` raises.  Only choice 0 is followed.
    """

    def __init__(self, wire: OpenAIChatFormat) -> None:
        self._wire = wire
        self._head: dict[str, Any] = {}
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._finish_reason: str | None = None
        self._usage: Mapping[str, Any] | None = None
        self._done = False

    def feed(self, event: str, data: str) -> list[str]:
        """See :class:`~lazybridge.providers.base.StreamDecoder`; a chunk of an
        unknown shape raises :class:`~lazybridge.errors.MalformedResponseError`."""
        with _shape.parsing(self._wire.name, "a chat.completion.chunk"):
            return self._feed(data)

    def _feed(self, data: str) -> list[str]:
        if data.strip() == "[DONE]":
            self._done = True
            return []
        chunk = _sse.load_event(data, provider=self._wire.name)
        if chunk is None:
            return []
        chunk = _shape.obj(chunk, "a stream chunk")
        if chunk.get("error"):
            raise _sse.stream_error(chunk["error"], provider=self._wire.name)
        for key in ("id", "model"):
            value = _shape.text(chunk, key, key)
            if value and key not in self._head:
                self._head[key] = value
        usage = _shape.member(chunk, "usage", "usage")
        if usage:
            self._usage = usage
        deltas: list[str] = []
        for i, choice in enumerate(_shape.objects(chunk, "choices", "choices")):
            where = f"choices[{i}]"
            if _shape.index(choice, "index", f"{where}.index", 0) != 0:
                continue
            delta = _shape.member(choice, "delta", f"{where}.delta")
            reasoning = self._wire._reasoning_text(delta, f"{where}.delta")
            if reasoning:
                self._reasoning.append(reasoning)
            content = _content_text(delta.get("content"), f"{where}.delta.content")
            if content:
                self._text.append(content)
                deltas.append(content)
            refusal = _shape.field(delta, "refusal", str, f"{where}.delta.refusal")
            if refusal is not None:
                self._refusal.append(refusal)
            for j, fragment in enumerate(_shape.objects(delta, "tool_calls", f"{where}.delta.tool_calls")):
                self._tool_fragment(fragment, f"{where}.delta.tool_calls[{j}]")
            finish_reason = _shape.text(choice, "finish_reason", f"{where}.finish_reason")
            if finish_reason:
                self._finish_reason = finish_reason
        return deltas

    def _tool_fragment(self, fragment: Mapping[str, Any], where: str) -> None:
        index = _shape.field(fragment, "index", int, f"{where}.index")
        if index is None:
            # No index (rare servers): a new id opens a call, otherwise continue the last one.
            last = max(self._calls, default=None)
            same = last is not None and fragment.get("id") in (None, "", self._calls[last]["id"])
            index = last if same and last is not None else len(self._calls)
        call = self._calls.setdefault(
            index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
        )
        if fragment.get("id"):
            call["id"] = fragment["id"]
        function = _shape.member(fragment, "function", f"{where}.function")
        name = _shape.text(function, "name", f"{where}.function.name")
        if name:
            call["function"]["name"] = name
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call["function"]["arguments"] += arguments
        elif isinstance(arguments, dict):
            call["function"]["arguments"] = json.dumps(arguments)
        elif arguments is not None:
            raise _shape.malformed(f"a string at {where}.function.arguments", arguments)
        extra = _shape.member(fragment, "extra_content", f"{where}.extra_content")
        if extra:
            call["extra_content"] = extra

    def finish(self) -> ModelResponse:
        """The response; :class:`~lazybridge.errors.StreamError` if the stream
        ended before a finish reason or ``[DONE]``."""
        if self._finish_reason is None and not self._done:
            raise StreamError("stream ended before the reply was complete", provider=self._wire.name)
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self._text) or None}
        if self._reasoning and self._wire.reasoning_fields:
            message[self._wire.reasoning_fields[0]] = "".join(self._reasoning)
        if self._refusal:
            message["refusal"] = "".join(self._refusal)
        if self._calls:
            message["tool_calls"] = [self._calls[i] for i in sorted(self._calls)]
        choice = {"index": 0, "message": message, "finish_reason": self._finish_reason}
        return self._wire.parse_response({**self._head, "choices": [choice], "usage": self._usage})


def _function(tool: ToolSpec) -> dict[str, Any]:
    """A tool's ``function`` object; a strict tool's parameters in the strict subset."""
    out: dict[str, Any] = {"name": tool.name, "description": tool.description}
    strict = strict_schema(tool.parameters) if tool.strict else None
    out["parameters"] = strict if strict is not None else dict(tool.parameters)
    if strict is not None:
        out["strict"] = True
    return out


def _tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.name is not None:
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def _user_content(parts: tuple[Part, ...]) -> str | list[dict[str, Any]] | None:
    wire: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart) and part.text:
            wire.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            url = part.url if part.url is not None else f"data:{part.media_type};base64,{part.data or ''}"
            wire.append({"type": "image_url", "image_url": {"url": url}})
    if not wire:
        return None
    # A plain string is the one shape every OpenAI-compatible server accepts.
    if len(wire) == 1 and wire[0]["type"] == "text":
        return str(wire[0]["text"])
    return wire


def _content_text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers answer with content parts
        parts = _shape.objects({"content": content}, "content", where)
        return "".join(_shape.text(p, "text", f"{where}[].text") for p in parts)
    raise _shape.malformed(f"a string or an array at {where}", content)


def _tool_calls(raw_calls: list[Any], *, seed: str) -> list[ToolCall]:
    calls: list[ToolCall] = []
    seen: set[str] = set()
    for position, value in enumerate(raw_calls):
        where = f"choices[0].message.tool_calls[{position}]"
        raw = _shape.obj(value, where)
        function = _shape.member(raw, "function", f"{where}.function")
        # Any unusable id (not a string, empty, repeated, an index) is replaced: a quirk, not an error.
        call_id = raw.get("id")
        if not isinstance(call_id, str) or not call_id or call_id in seen or call_id.isdigit():
            call_id = _sse.synthetic_call_id("call_", position, seed)
        seen.add(call_id)
        arguments = function.get("arguments")
        if not isinstance(arguments, (dict, str)) and arguments is not None:
            raise _shape.malformed(f"a string at {where}.function.arguments", arguments)
        extra = _shape.member(raw, "extra_content", f"{where}.extra_content")
        google = _shape.member(extra, "google", f"{where}.extra_content.google")
        signature = _shape.field(google, "thought_signature", str, f"{where}.extra_content.google.thought_signature")
        calls.append(
            ToolCall(
                id=call_id,
                name=_shape.text(function, "name", f"{where}.function.name"),
                arguments=arguments if isinstance(arguments, dict) else _sse.parse_arguments(arguments),
                signature=signature,
            )
        )
    return calls


def _usage(usage: Mapping[str, Any]) -> Usage:
    if not usage:
        return Usage(reported=False)  # unknown, which is not zero
    prompt_details = _shape.member(usage, "prompt_tokens_details", "usage.prompt_tokens_details")
    completion_details = _shape.member(usage, "completion_tokens_details", "usage.completion_tokens_details")
    # DeepSeek's own counter is authoritative where present; it also fills cached_tokens.
    if "prompt_cache_hit_tokens" in usage:
        cached = _sse.as_int(usage["prompt_cache_hit_tokens"])
    else:
        cached = _sse.as_int(prompt_details.get("cached_tokens"))
    return Usage(
        input_tokens=_sse.as_int(usage.get("prompt_tokens")),
        output_tokens=_sse.as_int(usage.get("completion_tokens")),
        cache_read_tokens=cached,
        cache_write_tokens=_sse.as_int(prompt_details.get("cache_write_tokens")),
        reasoning_tokens=_sse.as_int(completion_details.get("reasoning_tokens")),
    )

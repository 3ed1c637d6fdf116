"""Scripted replies that carry provider reasoning state, for the fake provider.

The real APIs answer 400 when a tool loop drops this state, so tests script
a tool call that carries it and check, in the next recorded request, that it
came back:

* :func:`anthropic_thinking` -- a ``thinking`` block with its ``signature``
  (and optionally a ``redacted_thinking`` block) before a ``tool_use``;
* :func:`gemini_signed_call` -- a ``functionCall`` part with a
  ``thoughtSignature`` (Gemini 3 puts it on the first call of a step);
* :func:`deepseek_reasoning` -- a message with ``reasoning_content`` and
  ``tool_calls``.

Each returns a :class:`~lazybridge.testing.Reply` with a raw body, shaped
like the provider's recorded responses (wire reference §1.4, §4.4, §5):
the JSON body by default, or with ``stream=True`` the same reply as the
provider streams it (SSE, split the way the recorded streams split it:
thinking and signature deltas, a signed ``functionCall`` chunk followed by
an empty finishing one, ``reasoning_content`` deltas before the tool call).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .fake_provider import Reply

__all__ = ["anthropic_thinking", "deepseek_reasoning", "gemini_signed_call"]


def _reply(body: Mapping[str, Any]) -> Reply:
    return Reply(body=json.dumps(body).encode())


def _sse(events: list[tuple[str | None, Mapping[str, Any] | str]], separator: str = "\n\n") -> Reply:
    lines = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        lines.append((f"event: {name}\n" if name else "") + f"data: {payload}")
    body = separator.join(lines) + separator
    return Reply(body=body.encode(), content_type="text/event-stream")


def _halves(text: str) -> list[str]:
    return [text[: len(text) // 2], text[len(text) // 2 :]]


def anthropic_thinking(
    name: str,
    arguments: Mapping[str, Any],
    *,
    thinking: str,
    signature: str,
    redacted: str | None = None,
    model: str = "claude-haiku-4-5",
    stream: bool = False,
) -> Reply:
    """A Messages reply: thinking (signed), optional redacted thinking, then one tool call."""
    content: list[dict[str, Any]] = [{"type": "thinking", "thinking": thinking, "signature": signature}]
    if redacted is not None:
        content.append({"type": "redacted_thinking", "data": redacted})
    content.append({"type": "tool_use", "id": "toolu_think_0", "name": name, "input": dict(arguments)})
    message = {
        "id": "msg_think",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": 30},
    }
    if not stream:
        return _reply(message)
    start = {**message, "content": [], "stop_reason": None, "usage": {"input_tokens": 20, "output_tokens": 1}}
    events: list[tuple[str | None, Mapping[str, Any] | str]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]

    def event(kind: str, **data: Any) -> None:
        events.append((kind, {"type": kind, **data}))

    for index, block in enumerate(content):
        kind = block["type"]
        if kind == "thinking":
            event(
                "content_block_start",
                index=index,
                content_block={"type": "thinking", "thinking": "", "signature": ""},
            )
            for piece in _halves(thinking):
                event("content_block_delta", index=index, delta={"type": "thinking_delta", "thinking": piece})
            event(
                "content_block_delta", index=index, delta={"type": "signature_delta", "signature": signature}
            )
        elif kind == "tool_use":
            event("content_block_start", index=index, content_block={**block, "input": {}})
            for piece in _halves(json.dumps(dict(arguments))):
                event(
                    "content_block_delta",
                    index=index,
                    delta={"type": "input_json_delta", "partial_json": piece},
                )
        else:  # redacted_thinking arrives whole
            event("content_block_start", index=index, content_block=block)
        event("content_block_stop", index=index)
    event(
        "message_delta", delta={"stop_reason": "tool_use", "stop_sequence": None}, usage={"output_tokens": 30}
    )
    event("message_stop")
    return _sse(events)


def gemini_signed_call(
    name: str,
    arguments: Mapping[str, Any],
    *,
    signature: str,
    model: str = "gemini-3-flash-preview",
    stream: bool = False,
) -> Reply:
    """A generateContent reply whose ``functionCall`` part carries a ``thoughtSignature``."""
    call = {"functionCall": {"name": name, "args": dict(arguments)}, "thoughtSignature": signature}
    usage = {"promptTokenCount": 20, "candidatesTokenCount": 10, "thoughtsTokenCount": 20}

    def chunk(parts: list[Any], finish: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = "STOP"
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": "resp_signed",
        }

    if not stream:
        return _reply(chunk([call], True))
    # As recorded: the signed call, then an empty text part that finishes the reply.
    return _sse([(None, chunk([call], False)), (None, chunk([{"text": ""}], True))], "\r\n\r\n")


def deepseek_reasoning(
    name: str,
    arguments: Mapping[str, Any],
    *,
    reasoning: str,
    model: str = "deepseek-v4-flash",
    stream: bool = False,
) -> Reply:
    """A chat-completions reply with ``reasoning_content`` next to its ``tool_calls``."""
    if stream:
        return _deepseek_stream(name, arguments, reasoning, model)
    return _reply(
        {
            "id": "chatcmpl-reasoning",
            "object": "chat.completion",
            "created": 1760000000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "",
                        "reasoning_content": reasoning,
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_00_reason",
                                "type": "function",
                                "function": {"name": name, "arguments": json.dumps(dict(arguments))},
                            }
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {"prompt_tokens": 20, "completion_tokens": 30, "total_tokens": 50},
        }
    )


def _deepseek_stream(name: str, arguments: Mapping[str, Any], reasoning: str, model: str) -> Reply:
    head = {
        "id": "chatcmpl-reasoning",
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": model,
    }

    def chunk(delta: Mapping[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **head,
            "choices": [{"index": 0, "delta": dict(delta), "finish_reason": finish}],
            "usage": None,
        }

    events: list[tuple[str | None, Mapping[str, Any] | str]] = [
        (None, chunk({"role": "assistant", "content": None, "reasoning_content": ""}))
    ]
    events += [(None, chunk({"content": None, "reasoning_content": piece})) for piece in _halves(reasoning)]
    opening = {
        "index": 0,
        "id": "call_00_reason",
        "type": "function",
        "function": {"name": name, "arguments": ""},
    }
    events.append((None, chunk({"tool_calls": [opening]})))
    for piece in _halves(json.dumps(dict(arguments))):
        events.append((None, chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})))
    events.append((None, chunk({}, "tool_calls")))
    usage = {"prompt_tokens": 20, "completion_tokens": 30, "total_tokens": 50}
    events.append((None, {**head, "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return _sse(events)

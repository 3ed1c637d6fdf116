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

Each returns a non-streamed :class:`~lazybridge.testing.Reply` with a raw
body, shaped like the provider's recorded responses (wire reference §1.4,
§4.4, §5).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .fake_provider import Reply

__all__ = ["anthropic_thinking", "deepseek_reasoning", "gemini_signed_call"]


def _reply(body: Mapping[str, Any]) -> Reply:
    return Reply(body=json.dumps(body).encode())


def anthropic_thinking(
    name: str,
    arguments: Mapping[str, Any],
    *,
    thinking: str,
    signature: str,
    redacted: str | None = None,
    model: str = "claude-haiku-4-5",
) -> Reply:
    """A Messages reply: thinking (signed), optional redacted thinking, then one tool call."""
    content: list[dict[str, Any]] = [{"type": "thinking", "thinking": thinking, "signature": signature}]
    if redacted is not None:
        content.append({"type": "redacted_thinking", "data": redacted})
    content.append({"type": "tool_use", "id": "toolu_think_0", "name": name, "input": dict(arguments)})
    return _reply(
        {
            "id": "msg_think",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 20, "output_tokens": 30},
        }
    )


def gemini_signed_call(
    name: str, arguments: Mapping[str, Any], *, signature: str, model: str = "gemini-3-flash-preview"
) -> Reply:
    """A generateContent reply whose ``functionCall`` part carries a ``thoughtSignature``."""
    return _reply(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {
                                "functionCall": {"name": name, "args": dict(arguments)},
                                "thoughtSignature": signature,
                            }
                        ],
                    },
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 10, "thoughtsTokenCount": 20},
            "modelVersion": model,
            "responseId": "resp_signed",
        }
    )


def deepseek_reasoning(
    name: str, arguments: Mapping[str, Any], *, reasoning: str, model: str = "deepseek-v4-flash"
) -> Reply:
    """A chat-completions reply with ``reasoning_content`` next to its ``tool_calls``."""
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

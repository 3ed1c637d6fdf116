"""DeepSeek: the chat-completions dialect (wire reference §5).

Everything is :class:`~.openai_chat.OpenAIChatFormat` except:

* ``reasoning_content`` (message and stream deltas) becomes a
  ``ReasoningPart(provider="deepseek")`` placed before the text;
* in a history, an assistant turn **with** tool calls carries its
  ``reasoning_content`` back (the API answers 400 otherwise); a turn without
  tool calls drops it, as the API asks;
* structured output is ``response_format: {"type": "json_object"}`` only, so
  the schema goes into the system prompt instead;
* the output cap is ``max_tokens``;
* cached prompt tokens come from ``prompt_cache_hit_tokens`` (handled by the
  shared usage parser).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import attrs

from ..messages import Message, ModelRequest, OutputSchema, ReasoningPart
from .openai_chat import OpenAIChatFormat


@attrs.frozen
class DeepSeekFormat(OpenAIChatFormat):
    """The DeepSeek chat-completions dialect (``POST /chat/completions``, Bearer auth)."""

    name = "deepseek"
    max_tokens_field: ClassVar[str] = "max_tokens"
    reasoning_fields: ClassVar[tuple[str, ...]] = ("reasoning_content",)

    def _system(self, request: ModelRequest) -> str | None:
        if request.output_schema is None:
            return request.system
        # JSON mode needs the word "JSON" in the prompt and knows no schema:
        # the schema is the instruction.
        instruction = (
            "Answer with a single JSON object that conforms to this JSON Schema "
            f"(named {request.output_schema.name!r}):\n"
            + json.dumps(dict(request.output_schema.schema), ensure_ascii=False)
        )
        return f"{request.system}\n\n{instruction}" if request.system else instruction

    def _response_format(self, schema: OutputSchema) -> dict[str, Any]:
        return {"type": "json_object"}

    def _assistant_extras(self, message: Message) -> dict[str, Any]:
        if not message.tool_calls:
            return {}
        reasoning = "".join(
            p.text for p in message.parts if isinstance(p, ReasoningPart) and p.provider == self.name
        )
        return {"reasoning_content": reasoning} if reasoning else {}

"""Generic OpenAI-compatible servers: Ollama, vLLM, LM Studio, llama.cpp, OpenRouter (§6).

The tolerant parsing these servers need (synthetic tool-call ids, ``content:
""`` next to tool calls, ``stop`` with tool calls, usage in any chunk, a
stream without finish reason, string or integer-coded error bodies) is
harmless against OpenAI itself and so lives in :mod:`.openai_chat`.  What is
left here is what would *not* be right for OpenAI:

* the output cap is sent as ``max_tokens`` (what local servers understand);
* an assistant turn with tool calls and no text is sent back with
  ``content: ""``, not OpenAI's ``null``: llama-cpp-python's server (0.3)
  answers ``null`` with a 500 ("Input should be a valid string"), while
  llama.cpp, vLLM and Ollama (which itself answers ``""`` next to tool
  calls) take the empty string;
* ``reasoning_content`` (vLLM, llama.cpp, LM Studio) or ``reasoning``
  (Ollama, newer vLLM) is parsed into ``ReasoningPart(provider="compat")``,
  and not sent back;
* a tool call's ``thoughtSignature`` is echoed as
  ``extra_content.google.thought_signature`` -- Gemini's OpenAI-compatible
  endpoint needs it back, other servers ignore unknown fields.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from .openai_chat import OpenAIChatFormat


@attrs.frozen
class OpenAICompatFormat(OpenAIChatFormat):
    """A chat-completions server that is not OpenAI (``base_url`` decides which)."""

    name = "compat"
    max_tokens_field: ClassVar[str] = "max_tokens"
    reasoning_fields: ClassVar[tuple[str, ...]] = ("reasoning_content", "reasoning")
    echo_signatures: ClassVar[bool] = True
    empty_assistant_content: ClassVar[str | None] = ""

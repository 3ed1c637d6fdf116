"""Structured output: ``Agent(output=T)`` -- the schema sent, the answer checked.

The accepted types are the ones tool parameters accept
(:func:`lazybridge.schema.schema_for_type`): attrs classes, dataclasses,
TypedDicts, pydantic models (duck-typed), ``Enum``, ``Literal``, containers
and scalars.  An answer is parsed as JSON and converted with the shared
cattrs converter, *strictly*, exactly as tool arguments are
(:mod:`lazybridge._arguments`): ``"3"`` is not an ``int``, unknown and
missing fields are errors, and every problem is reported as one
``<problem> @ $.path`` line -- the text sent back to the model when it must
try again.

Providers' schema modes want an *object* at the root, so a type whose
schema is not an object (``list[City]``, ``int``, a ``Literal``, a
self-referencing class) is wrapped as ``{"value": <schema>}`` and unwrapped
after parsing.

Two ways to ask for it (``LLMEngine(output_mode=...)``):

* ``"native"``: the provider's own schema mode
  (:class:`~lazybridge.messages.OutputSchema` in the request: Anthropic
  ``output_config.format``, OpenAI ``response_format`` ``json_schema``, Gemini
  ``responseJsonSchema``; DeepSeek has JSON mode only, so its wire format
  puts the schema in the system prompt).  The final text is the JSON.
* ``"tool"``: an extra tool, :data:`FINAL_ANSWER`, whose parameters are the
  schema, which the model is made to call; its arguments are the answer.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs

from .._arguments import _describe, _strict
from ..envelope import converter
from ..messages import OutputSchema, ToolSpec
from ..schema import schema_for_type

__all__ = ["FINAL_ANSWER", "InvalidOutput", "OutputSpec"]

#: The name of the tool that carries the answer in ``output_mode="tool"``.
FINAL_ANSWER = "final_answer"

_WRAP_KEY = "value"
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


class InvalidOutput(Exception):
    """An answer that does not fit the output type; ``problems`` are ``<problem> @ $.path`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


@attrs.frozen
class OutputSpec:
    """What ``output=T`` means for one type: its schema, name and strict converter type."""

    type: Any
    name: str
    schema: Mapping[str, Any]
    wrapped: bool
    strict_type: Any = attrs.field(repr=False)

    @classmethod
    def for_type(cls, tp: Any) -> OutputSpec:
        """The spec of ``tp`` (cached per type).

        Raises :class:`~lazybridge.errors.ConfigurationError` for a type
        that has no JSON Schema.
        """
        try:
            cached = _cache.get(tp)
        except TypeError:  # unhashable (Annotated with unhashable metadata): no caching
            return cls._build(tp)
        if cached is None:
            cached = cls._build(tp)
            with _cache_lock:
                _cache[tp] = cached
        return cached

    @classmethod
    def _build(cls, tp: Any) -> OutputSpec:
        schema = schema_for_type(tp)
        wrapped = schema.get("type") != "object"
        if wrapped:
            inner = {k: v for k, v in schema.items() if k != "$defs"}
            outer: dict[str, Any] = {
                "type": "object",
                "properties": {_WRAP_KEY: inner},
                "required": [_WRAP_KEY],
                "additionalProperties": False,
            }
            if "$defs" in schema:
                outer["$defs"] = schema["$defs"]  # "#/$defs/..." references stay valid at the root
            schema = outer
        raw_name = getattr(tp, "__name__", None) or "output"
        name = re.sub(r"[^A-Za-z0-9_-]", "_", str(raw_name))[:64] or "output"
        return cls(tp, name, schema, wrapped, _strict(tp))

    def output_schema(self) -> OutputSchema:
        """The request field for the provider's native schema mode."""
        return OutputSchema(self.name, self.schema)

    def tool_spec(self) -> ToolSpec:
        """The :data:`FINAL_ANSWER` tool of ``output_mode="tool"``."""
        return ToolSpec(
            FINAL_ANSWER,
            f"Give your final answer as a {self.name}. Call this exactly once, when you are done.",
            self.schema,
        )

    def parse_text(self, text: str) -> Any:
        """The instance the answer ``text`` (JSON, optionally in a code fence) describes.

        Raises :class:`InvalidOutput` naming every problem.
        """
        fenced = _FENCE.match(text)
        if fenced is not None:
            text = fenced.group(1)
        try:
            value = json.loads(text)
        except ValueError as exc:
            shown = text.strip()
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            raise InvalidOutput([f"the answer is not valid JSON ({exc.args[0]}): {shown!r}"]) from None
        return self.parse_value(value)

    def parse_value(self, value: Any) -> Any:
        """The instance a JSON value describes (the arguments of a :data:`FINAL_ANSWER` call)."""
        if self.wrapped:
            if not isinstance(value, Mapping):
                raise InvalidOutput([f"expected an object with the key {_WRAP_KEY!r} @ $"])
            extra = [f"unexpected field @ $.{key}" for key in value if key != _WRAP_KEY]
            if _WRAP_KEY not in value:
                raise InvalidOutput([*extra, f"required field missing @ $.{_WRAP_KEY}"])
            if extra:
                raise InvalidOutput(extra)
            value, root = value[_WRAP_KEY], f"$.{_WRAP_KEY}"
        else:
            root = "$"
        try:
            return converter.structure(value, self.strict_type)
        except Exception as exc:  # cattrs' validation errors, pydantic's, our strict mismatches
            raise InvalidOutput(cattrs.transform_error(exc, root, _describe)) from None

    def repair_prompt(self, error: InvalidOutput) -> str:
        """The user message asking the model to answer again after ``error``."""
        return (
            f"Your answer does not match the required {self.name} schema:\n"
            + "\n".join(f"- {line}" for line in error.problems)
            + "\nAnswer again with only the corrected JSON."
        )


_cache: dict[Any, OutputSpec] = {}
_cache_lock = threading.Lock()

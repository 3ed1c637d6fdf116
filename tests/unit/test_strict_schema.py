"""OpenAI strict mode: schemas rewritten into the subset it accepts, or sent as a hint when they cannot be."""

from __future__ import annotations

import copy
import json
from typing import Any

import pydantic
import pytest

from lazybridge.engines._output import OutputSpec
from lazybridge.messages import ModelRequest, OutputSchema
from lazybridge.providers._strict import strict_schema
from lazybridge.providers.openai_chat import OpenAIChatFormat

from .wire_helpers import Owner, Pet


class Order(pydantic.BaseModel):
    item: str
    quantity: int = 1
    note: str | None = None


def objects(node: Any) -> list[dict[str, Any]]:
    """Every object schema in ``node``, however deep."""
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found += objects(value)
    elif isinstance(node, list):
        for value in node:
            found += objects(value)
    return found


@pytest.mark.parametrize("tp", [Pet, Owner, Order, list[Pet]], ids=["flat", "nested", "pydantic", "wrapped-list"])
def test_every_object_is_closed_lists_every_property_and_has_no_default(tp: Any) -> None:
    schema = OutputSpec.for_type(tp).schema
    strict = strict_schema(schema)
    assert strict is not None
    assert objects(strict), "the type has objects to check"
    for obj in objects(strict):
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj.get("properties", {}))
    assert '"default"' not in json.dumps(strict)


def test_optional_values_stay_nullable_and_types_are_unchanged() -> None:
    strict = strict_schema(OutputSpec.for_type(Pet).schema)
    assert strict is not None
    assert strict["properties"]["nickname"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert strict["properties"]["legs"] == {"type": "integer"}


def test_properties_named_like_keywords_are_kept() -> None:
    schema = {
        "type": "object",
        "properties": {"default": {"type": "string", "default": "x"}, "required": {"type": "boolean"}},
        "required": [],
        "additionalProperties": False,
    }
    before = copy.deepcopy(schema)
    assert strict_schema(schema) == {
        "type": "object",
        "properties": {"default": {"type": "string"}, "required": {"type": "boolean"}},
        "required": ["default", "required"],
        "additionalProperties": False,
    }
    assert schema == before, "the input is not modified"


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "additionalProperties": {"type": "integer"}},
        {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": True},
        {"type": "object"},
        {"type": "object", "properties": {"m": {"type": "object", "patternProperties": {"^x": {}}}}},
    ],
    ids=["map", "open", "bare", "pattern"],
)
def test_a_schema_with_a_map_cannot_be_strict(schema: dict[str, Any]) -> None:
    assert strict_schema(schema) is None


def test_a_map_output_goes_as_a_non_strict_hint() -> None:
    """dict[str, int] has no fixed keys: the original schema is sent with strict false, not refused with a 400."""
    spec = OutputSpec.for_type(dict[str, int])
    body = OpenAIChatFormat().build_body(
        ModelRequest(model="gpt-5.4-mini", messages=(), output_schema=OutputSchema(spec.name, spec.schema)), stream=False
    )
    fmt = body["response_format"]["json_schema"]
    assert fmt["strict"] is False and fmt["schema"] == spec.schema


def test_an_already_strict_schema_is_unchanged() -> None:
    schema = strict_schema(OutputSpec.for_type(Owner).schema)
    assert schema is not None and strict_schema(schema) == schema

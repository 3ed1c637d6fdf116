"""Snapshots of the ``tools`` section each wire format sends for a function and for an agent.

The parameters schema is generated once (``Tool.from_function``) and must
reach every provider unchanged, wrapped the way its API wants (§7.1 of the
wire reference: ``input_schema`` / ``function.parameters`` /
``functionDeclarations[].parametersJsonSchema``).  A change here changes
what every model is offered: update the snapshot deliberately.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

import attrs
import pytest

from lazybridge import Tool
from lazybridge.engines._output import OutputSpec
from lazybridge.messages import Message, ModelRequest, ToolSpec
from lazybridge.providers import registry
from lazybridge.testing import MockAgent


class Unit(enum.Enum):
    CELSIUS = "C"
    FAHRENHEIT = "F"


@attrs.frozen
class Place:
    """A place on Earth."""

    city: str
    country: str | None = None


def forecast(
    place: Place,
    days: Annotated[int, "How many days ahead, 1 to 7."],
    unit: Unit = Unit.CELSIUS,
    detail: Literal["brief", "full"] = "brief",
    hours: list[int] | None = None,
    threshold: float = 0.5,
    alerts: bool = False,
) -> str:
    """Forecast the weather for a place.

    Args:
        place: Where.
        hours: Hours of the day to report, 0-23.
    """
    return ""


FORECAST_PARAMETERS = {
    "type": "object",
    "properties": {
        "place": {"$ref": "#/$defs/Place", "description": "Where."},
        "days": {"type": "integer", "description": "How many days ahead, 1 to 7."},
        "unit": {"type": "string", "enum": ["C", "F"], "default": "C"},
        "detail": {"type": "string", "enum": ["brief", "full"], "default": "brief"},
        "hours": {
            "anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}],
            "description": "Hours of the day to report, 0-23.",
            "default": None,
        },
        "threshold": {"type": "number", "default": 0.5},
        "alerts": {"type": "boolean", "default": False},
    },
    "required": ["place", "days"],
    "additionalProperties": False,
    "$defs": {
        "Place": {
            "type": "object",
            "description": "A place on Earth.",
            "properties": {
                "city": {"type": "string"},
                "country": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            },
            "required": ["city"],
            "additionalProperties": False,
        }
    },
}

AGENT_PARAMETERS = {
    "type": "object",
    "properties": {"task": {"type": "string", "description": "The task for the agent."}},
    "required": ["task"],
    "additionalProperties": False,
}

FORECAST_DESCRIPTION = "Forecast the weather for a place."
AGENT_DESCRIPTION = "Look things up on the web."


def openai_style(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


SNAPSHOTS: dict[str, Any] = {
    "anthropic": [
        {"name": "forecast", "description": FORECAST_DESCRIPTION, "input_schema": FORECAST_PARAMETERS},
        {"name": "researcher", "description": AGENT_DESCRIPTION, "input_schema": AGENT_PARAMETERS},
    ],
    "openai": [
        openai_style("forecast", FORECAST_DESCRIPTION, FORECAST_PARAMETERS),
        openai_style("researcher", AGENT_DESCRIPTION, AGENT_PARAMETERS),
    ],
    "deepseek": [
        openai_style("forecast", FORECAST_DESCRIPTION, FORECAST_PARAMETERS),
        openai_style("researcher", AGENT_DESCRIPTION, AGENT_PARAMETERS),
    ],
    "ollama": [
        openai_style("forecast", FORECAST_DESCRIPTION, FORECAST_PARAMETERS),
        openai_style("researcher", AGENT_DESCRIPTION, AGENT_PARAMETERS),
    ],
    "gemini": [
        {
            "functionDeclarations": [
                {
                    "name": "forecast",
                    "description": FORECAST_DESCRIPTION,
                    "parametersJsonSchema": FORECAST_PARAMETERS,
                },
                {
                    "name": "researcher",
                    "description": AGENT_DESCRIPTION,
                    "parametersJsonSchema": AGENT_PARAMETERS,
                },
            ]
        }
    ],
}


def specs() -> tuple[ToolSpec, ...]:
    researcher = MockAgent("found", name="researcher", description=AGENT_DESCRIPTION)
    return (Tool.from_function(forecast).spec(), researcher.as_tool().spec())


@pytest.mark.parametrize("provider", list(SNAPSHOTS))
def test_tools_section_per_wire_format(provider: str) -> None:
    """The request body's tools section, exactly, for each wire format."""
    body = registry.wire_format(provider).build_body(
        ModelRequest("m", (Message.user("x"),), tools=specs()), stream=False
    )
    assert body["tools"] == SNAPSHOTS[provider]


def test_the_schema_is_json_and_the_same_everywhere() -> None:
    """No Python values leak into the schema; every wire sends the identical parameters object."""
    import json

    spec = Tool.from_function(forecast).spec()
    assert json.loads(json.dumps(spec.parameters)) == FORECAST_PARAMETERS


def test_final_answer_tool_and_native_schema_of_an_output_type() -> None:
    """output=Place: the same schema as a native output schema and as the final_answer tool."""
    spec = OutputSpec.for_type(Place)
    expected = FORECAST_PARAMETERS["$defs"]["Place"]  # type: ignore[index]
    assert spec.output_schema().schema == expected
    assert spec.output_schema().name == "Place"
    tool = spec.tool_spec()
    assert tool.name == "final_answer" and tool.parameters == expected
    body = registry.wire_format("anthropic").build_body(
        ModelRequest("m", (Message.user("x"),), output_schema=spec.output_schema()), stream=False
    )
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": expected}}


def test_a_non_object_output_is_wrapped_under_value() -> None:
    """Schema modes want an object root: list[Place] becomes {"value": [...]}, $defs at the root."""
    spec = OutputSpec.for_type(list[Place])
    assert spec.schema == {
        "type": "object",
        "properties": {"value": {"type": "array", "items": {"$ref": "#/$defs/Place"}}},
        "required": ["value"],
        "additionalProperties": False,
        "$defs": {"Place": FORECAST_PARAMETERS["$defs"]["Place"]},  # type: ignore[index]
    }
    assert spec.parse_value({"value": [{"city": "Rome"}]}) == [Place("Rome")]

"""Agent(output=T) over real loopback HTTP: native schema modes, the final_answer tool, re-prompts."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal, TypedDict

import attrs
import pydantic
import pytest

import lazybridge
from lazybridge import Agent, LLMEngine, Memory
from lazybridge.testing import FakeProvider, Reply

from ..unit.wire_helpers import Owner, Pet

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-output-test-0123456789"


@attrs.frozen
class CityA:
    name: str
    population: int
    tags: list[str] = attrs.Factory(list)


@dataclasses.dataclass
class CityD:
    name: str
    population: int


class CityT(TypedDict):
    name: str
    population: int


class CityP(pydantic.BaseModel):
    name: str
    population: int


@attrs.frozen
class Verdict:
    label: Literal["good", "bad"]
    score: float


def agent(base_url: str, output: Any, model: str = "claude-haiku-4-5", **kwargs: Any) -> Agent:
    tools = kwargs.pop("tools", ())
    memory = kwargs.pop("memory", None)
    engine = LLMEngine(model, base_url=base_url, api_key=KEY, **kwargs)
    return Agent(engine=engine, output=output, tools=tools, memory=memory, name="extract")


def native_schema(model: str, body: dict[str, Any]) -> Any:
    """Where each wire format puts the output schema."""
    if model.startswith("claude"):
        fmt = body["output_config"]["format"]
        assert fmt["type"] == "json_schema"
        return fmt["schema"]
    if model.startswith("gpt"):
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
        return fmt["json_schema"]["schema"]
    if model.startswith("gemini"):
        assert body["generationConfig"]["responseMimeType"] == "application/json"
        return body["generationConfig"]["responseJsonSchema"]
    assert body["response_format"] == {"type": "json_object"}  # DeepSeek: the schema is in the prompt
    system = body["messages"][0]["content"]
    return json.loads(system[system.index("\n") + 1 :])


CITY = {"name": "Rome", "population": 2800000}


@pytest.mark.parametrize(
    "output", [CityA, CityD, CityT, CityP], ids=["attrs", "dataclass", "TypedDict", "pydantic"]
)
@pytest.mark.parametrize(
    "model", ["claude-haiku-4-5", "gpt-5.4-mini", "gemini-3-flash-preview", "deepseek-v4-flash"]
)
async def test_native_structured_output(model: str, output: Any, fake: FakeProvider, base_url: str) -> None:
    """The schema goes in the provider's native field; the answer comes back as the typed instance."""
    fake.push(json.dumps(CITY))
    env = await agent(base_url, output, model).run("Rome's population?")
    assert env.ok, env.error
    if output is CityT:
        assert env.payload == CITY
    else:
        assert isinstance(env.payload, output)
        assert (env.payload.name, env.payload.population) == ("Rome", 2800000)
    assert json.loads(env.text())["population"] == 2800000
    schema = native_schema(model, fake.requests[0].body)
    assert schema["type"] == "object" and {"name", "population"} <= set(schema["required"])
    if model.startswith("gpt"):
        # Strict mode: every property listed (CityA's optional tags too), the object closed.
        assert set(schema["required"]) == set(schema["properties"]) and schema["additionalProperties"] is False
    else:
        assert set(schema["required"]) == {"name", "population"}


async def test_a_non_object_type_is_wrapped_and_unwrapped(fake: FakeProvider, base_url: str) -> None:
    """list[CityA] travels as {"value": [...]} (schema modes want an object root); payload is the list."""
    fake.push(json.dumps({"value": [CITY, {"name": "Oslo", "population": 700000, "tags": ["cold"]}]}))
    env = await agent(base_url, list[CityA], "gpt-5.4-mini").run("two cities")
    assert env.ok, env.error
    assert env.payload == [CityA("Rome", 2800000), CityA("Oslo", 700000, ["cold"])]
    schema = native_schema("gpt-5.4-mini", fake.requests[0].body)
    assert schema["required"] == ["value"] and schema["properties"]["value"]["type"] == "array"
    assert "CityA" in schema["$defs"]


async def test_an_invalid_answer_is_sent_back_then_corrected(fake: FakeProvider, base_url: str) -> None:
    """The re-prompt names the bad field; the corrected answer is the payload; memory keeps only it."""
    fake.push('```json\n{"label": "great", "score": "high"}\n```', '{"label": "good", "score": 0.9}')
    memory = Memory()
    env = await agent(base_url, Verdict, memory=memory).run("judge this")
    assert env.ok, env.error
    assert env.payload == Verdict("good", 0.9)
    assert env.metadata.input_tokens == 24  # both calls are counted
    retry = fake.requests[1].body["messages"]
    assert [m["role"] for m in retry] == ["user", "assistant", "user"]
    repair = retry[-1]["content"][0]["text"]
    assert 'expected one of "good", "bad", got "great" @ $.label' in repair
    assert "expected number, got string @ $.score" in repair
    assert [m.text for m in memory.messages] == ["judge this", '{"label": "good", "score": 0.9}']


async def test_retries_run_out_into_a_structured_output_error(fake: FakeProvider, base_url: str) -> None:
    """After max_output_retries re-prompts the run returns StructuredOutputError, keeping its cost."""
    fake.respond = lambda request: "not json at all"
    env = await agent(base_url, Verdict, max_output_retries=1).run("judge")
    assert env.error is not None and env.error.type == "StructuredOutputError"
    assert "Verdict" in env.error.message and "not valid JSON" in env.error.message
    assert len(fake.requests) == 2 and env.metadata.cost_usd > 0
    assert env.payload is None


async def test_retries_do_not_use_up_turns(fake: FakeProvider, base_url: str) -> None:
    """max_turns=1 still allows re-asking for a structured answer."""
    fake.push("{}", '{"label": "bad", "score": 0}')
    env = await agent(base_url, Verdict, max_turns=1).run("judge")
    assert env.ok and env.payload == Verdict("bad", 0.0)


async def test_tools_run_first_then_the_final_answer_is_validated(fake: FakeProvider, base_url: str) -> None:
    """With tools and output=, the model calls tools, then answers in the schema."""

    def population(city: str) -> int:
        """Population of a city."""
        return 2800000

    fake.push(Reply.tool_call("population", {"city": "Rome"}), json.dumps(CITY))
    env = await agent(base_url, CityA, "gemini-3-flash-preview", tools=[population]).run("Rome?")
    assert env.ok and env.payload == CityA("Rome", 2800000)
    first, second = fake.requests
    assert "responseJsonSchema" in first.body["generationConfig"] and "tools" in first.body
    assert second.body["contents"][2]["parts"][0]["functionResponse"]["response"] == {"result": "2800000"}


async def test_gemini_2_with_tools_answers_through_the_final_answer_tool(fake: FakeProvider, base_url: str) -> None:
    """Gemini 2.x refuses tools next to a JSON schema (the fake too): auto mode uses final_answer instead."""

    def population(city: str) -> int:
        """Population of a city."""
        return 2800000

    fake.push(Reply.tool_call("population", {"city": "Rome"}), Reply.tool_call("final_answer", CITY))
    env = await agent(base_url, CityA, "gemini-2.5-flash", tools=[population]).run("Rome?")
    assert env.ok, env.error
    assert env.payload == CityA("Rome", 2800000)
    first = fake.requests[0].body
    assert "responseMimeType" not in first.get("generationConfig", {})
    names = [d["name"] for d in first["tools"][0]["functionDeclarations"]]
    assert names == ["population", "final_answer"]


async def test_gemini_2_without_tools_keeps_its_native_schema(fake: FakeProvider, base_url: str) -> None:
    fake.push(json.dumps(CITY))
    env = await agent(base_url, CityA, "gemini-2.5-flash").run("Rome?")
    assert env.ok and env.payload == CityA("Rome", 2800000)
    assert "responseJsonSchema" in fake.requests[0].body["generationConfig"]


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "gpt-5.4-mini", "gemini-3-flash-preview"])
async def test_tool_mode_forces_the_final_answer_tool(model: str, fake: FakeProvider, base_url: str) -> None:
    """output_mode="tool": a final_answer tool with the schema, forced; its arguments are the answer."""
    fake.push(Reply.tool_call("final_answer", CITY))
    env = await agent(base_url, CityD, model, output_mode="tool").run("Rome?")
    assert env.ok, env.error
    assert env.payload == CityD("Rome", 2800000)
    body = fake.requests[0].body
    if model.startswith("claude"):
        assert body["tool_choice"] == {"type": "tool", "name": "final_answer"}
        assert body["tools"][0]["input_schema"]["required"] == ["name", "population"]
        assert "output_config" not in body
    elif model.startswith("gpt"):
        assert body["tool_choice"] == {"type": "function", "function": {"name": "final_answer"}}
        assert "response_format" not in body
    else:
        assert body["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"] == ["final_answer"]


async def test_tool_mode_with_tools_and_a_bad_final_answer(fake: FakeProvider, base_url: str) -> None:
    """With user tools the choice is "required"; a final_answer that does not fit is a tool error."""

    def population(city: str) -> int:
        """Population of a city."""
        return 2800000

    fake.push(
        Reply.tool_call("population", {"city": "Rome"}),
        Reply.tool_call("final_answer", {"name": "Rome"}),
        Reply.tool_call("final_answer", CITY),
    )
    memory = Memory()
    extractor = agent(base_url, CityA, "gpt-5.4-mini", output_mode="tool", tools=[population], memory=memory)
    env = await extractor.run("Rome?")
    assert env.ok, env.error
    assert env.payload == CityA("Rome", 2800000)
    assert [r.body["tool_choice"] for r in fake.requests] == ["required"] * 3
    bad = fake.requests[2].body["messages"][-1]
    assert bad["role"] == "tool" and "required field missing @ $.population" in bad["content"]
    assert memory.messages[-1].role == "tool"  # the final call is answered in the remembered history


async def test_streaming_structured_output_yields_the_json_once(fake: FakeProvider, base_url: str) -> None:
    """A stream with output= yields the validated answer's JSON as one chunk."""
    fake.push("{broken", '{"label": "good", "score": 1}')
    async with agent(base_url, Verdict).stream("judge") as stream:
        chunks = [c async for c in stream]
    assert chunks == ['{"label": "good", "score": 1.0}']
    assert stream.envelope is not None and stream.envelope.payload == Verdict("good", 1.0)


async def test_an_unsupported_output_type_is_a_configuration_error(fake: FakeProvider, base_url: str) -> None:
    """output= with a type that has no JSON Schema raises at construction, before any request."""
    with pytest.raises(lazybridge.ConfigurationError):
        agent(base_url, object())
    assert fake.requests == []


@pytest.mark.parametrize("output", [CityD, CityT, CityP], ids=["dataclass", "TypedDict", "pydantic"])
async def test_re_prompt_names_the_missing_field_for_every_kind_of_type(
    output: Any, fake: FakeProvider, base_url: str
) -> None:
    """Dataclass, TypedDict and pydantic answers are checked as strictly as attrs ones."""
    fake.push('{"name": "Rome", "population": "many"}', '{"name": "Rome"}', json.dumps(CITY))
    env = await agent(base_url, output, "gpt-5.4-mini").run("Rome?")
    assert env.ok, env.error
    first_repair = fake.requests[1].body["messages"][-1]["content"]
    second_repair = fake.requests[2].body["messages"][-1]["content"]
    assert "@ $.population" in first_repair and ("integer" in first_repair or "int" in first_repair)
    assert "$.population" in second_repair and "required" in second_repair.lower()


async def test_openai_strict_output_with_optional_and_defaulted_fields(fake: FakeProvider, base_url: str) -> None:
    """The fake refuses what the real API refuses (optional properties in strict mode); the rewritten schema passes."""
    answer = {"name": "Ada", "pets": [{"name": "Rex", "nickname": None, "legs": 3}]}
    fake.push(json.dumps(answer))
    env = await agent(base_url, Owner, "gpt-5.4-mini").run("Ada's pets?")
    assert env.ok, env.error
    assert env.payload == Owner("Ada", [Pet("Rex", None, 3)])
    fmt = fake.requests[0].body["response_format"]["json_schema"]
    assert fmt["strict"] is True
    assert fmt["schema"]["$defs"]["Pet"]["required"] == ["name", "nickname", "legs"]


async def test_openai_map_output_is_sent_as_a_hint_and_still_checked(fake: FakeProvider, base_url: str) -> None:
    fake.push(json.dumps({"Rome": 2800000, "Oslo": 700000}))  # an object root travels unwrapped
    env = await agent(base_url, dict[str, int], "gpt-5.4-mini").run("populations")
    assert env.ok, env.error
    assert env.payload == {"Rome": 2800000, "Oslo": 700000}
    assert fake.requests[0].body["response_format"]["json_schema"]["strict"] is False

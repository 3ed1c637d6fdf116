"""The real agent loop driven by ScriptedModel: tools, structured output, memory, streaming, limits.

No socket: ``LLMEngine(ScriptedModel([...]))`` swaps the HTTP client for a
scripted one, so these tests exercise the loop's logic alone.  What goes over
the wire (bodies, streams, retries, disconnects) is tested against the fake
provider server on loopback in ``tests/integration/``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import anyio
import pytest

from lazybridge import Agent, ConfigurationError, LLMEngine, Memory, Session, events
from lazybridge.errors import RateLimitError
from lazybridge.messages import ModelRequest, ToolResult
from lazybridge.testing import ScriptedModel

pytestmark = pytest.mark.anyio

reply = ScriptedModel.reply


@dataclasses.dataclass
class City:
    name: str
    population: int


def tool_results(request: ModelRequest) -> list[ToolResult]:
    return [p for p in request.messages[-1].parts if isinstance(p, ToolResult)]


async def test_tool_calls_of_one_turn_run_concurrently_and_go_back_in_call_order() -> None:
    started = 0
    both = anyio.Event()

    async def weather(city: str) -> str:
        """Current weather for a city."""
        nonlocal started
        started += 1
        if started == 2:
            both.set()
        with anyio.fail_after(5):  # a sequential loop would wait here forever
            await both.wait()
        return f"sunny in {city}"

    model = ScriptedModel(
        [reply(tool_calls=[("weather", {"city": "Rome"}), ("weather", {"city": "Tokyo"})]), "Both sunny."]
    )
    env = await Agent(engine=LLMEngine(model), tools=[weather], name="w").run("Rome and Tokyo?")
    assert env.ok and env.text() == "Both sunny."
    assert [r.content for r in tool_results(model.requests[1])] == ["sunny in Rome", "sunny in Tokyo"]
    assert [spec.name for spec in model.requests[0].tools] == ["weather"]


async def test_a_failing_tool_is_reported_to_the_model_and_the_run_goes_on() -> None:
    def broken() -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    model = ScriptedModel([reply(tool_calls=[("broken", {})]), "Sorry, it failed."])
    env = await Agent(engine=LLMEngine(model), tools=[broken]).run("go")
    assert env.ok and env.text() == "Sorry, it failed."
    [result] = tool_results(model.requests[1])
    assert result.is_error and "disk on fire" in str(result.content)


async def test_native_structured_output_is_parsed_and_a_bad_answer_is_sent_back() -> None:
    model = ScriptedModel(['{"name": "Rome"}', json.dumps({"name": "Rome", "population": 2_800_000})])
    env = await Agent(engine=LLMEngine(model), output=City).run("Biggest Italian city?")
    assert env.ok and env.payload == City("Rome", 2_800_000)
    assert model.requests[0].output_schema is not None
    repair = model.requests[1].messages[-1]
    assert repair.role == "user" and "population" in repair.text


async def test_structured_output_through_the_final_answer_tool_when_native_is_not_offered() -> None:
    model = ScriptedModel(
        [reply(tool_calls=[("final_answer", {"name": "Oslo", "population": 700_000})])], native_output=False
    )
    env = await Agent(engine=LLMEngine(model), output=City).run("Capital of Norway?")
    assert env.ok and env.payload == City("Oslo", 700_000)
    assert model.requests[0].output_schema is None
    assert [spec.name for spec in model.requests[0].tools] == ["final_answer"]


async def test_memory_carries_the_conversation_to_the_next_run() -> None:
    model = ScriptedModel(["Nice to meet you, Ada.", "Your name is Ada."])
    agent = Agent(engine=LLMEngine(model), memory=Memory())
    await agent.run("I am Ada.")
    env = await agent.run("What is my name?")
    assert env.text() == "Your name is Ada."
    texts = [m.text for m in model.requests[1].messages]
    assert texts == ["I am Ada.", "Nice to meet you, Ada.", "What is my name?"]


async def test_streaming_yields_the_deltas_and_ends_with_the_runs_envelope() -> None:
    model = ScriptedModel(["one two three"], input_price=0.001)
    agent = Agent(engine=LLMEngine(model), name="s")
    deltas = []
    async with agent.stream("count") as stream:
        async for delta in stream:
            deltas.append(delta)
    assert deltas == ["one ", "two ", "three"]
    assert stream.envelope is not None and stream.envelope.text() == "one two three"
    assert stream.envelope.metadata.cost_usd == pytest.approx(0.01)


async def test_max_turns_ends_a_run_that_keeps_calling_tools_and_keeps_its_spend() -> None:
    def again() -> str:
        """Once more."""
        return "more"

    model = ScriptedModel(lambda request: reply(tool_calls=[("again", {})]), input_price=0.5)
    env = await Agent(engine=LLMEngine(model, max_turns=3), tools=[again]).run("loop")
    assert env.error is not None and env.error.type == "MaxTurnsExceeded"
    assert len(model.requests) == 3
    assert env.metadata.input_tokens == 30 and env.metadata.cost_usd == pytest.approx(15.0)


async def test_a_model_failure_after_a_turn_keeps_the_spend_and_the_failure_type() -> None:
    def look() -> str:
        """Look."""
        return "seen"

    model = ScriptedModel([reply(tool_calls=[("look", {})]), RateLimitError("slow down", status_code=429)])
    env = await Agent(engine=LLMEngine(model), tools=[look]).run("go")
    assert env.error is not None and env.error.type == "RateLimitError" and "slow down" in env.error.message
    assert (env.metadata.input_tokens, env.metadata.provider, env.metadata.model) == (10, "scripted", "scripted-model")


async def test_an_exhausted_script_is_a_clear_error() -> None:
    env = await Agent(engine=LLMEngine(ScriptedModel([]))).run("go")
    assert env.error is not None and env.error.type == "LookupError"
    assert "ran out" in env.error.message


async def test_a_timeout_keeps_the_spend_of_the_turns_received() -> None:
    async def stall() -> str:
        """Never answers."""
        await anyio.sleep_forever()
        return "never"

    model = ScriptedModel([reply(tool_calls=[("stall", {})])], input_price=0.25)
    env = await Agent(engine=LLMEngine(model), tools=[stall], timeout=0.2).run("go")
    assert env.error is not None and env.error.type == "TimeoutError"
    assert env.metadata.cost_usd == pytest.approx(2.5) and env.metadata.provider == "scripted"


async def test_the_loop_emits_its_model_events() -> None:
    session = Session()
    model = ScriptedModel(["hi"])
    await Agent(engine=LLMEngine(model), session=session, name="e").run("hello")
    kinds = [e.kind for e in session.events]
    assert kinds == [events.AGENT_START, events.MODEL_REQUEST, events.MODEL_RESPONSE, events.AGENT_FINISH]
    await session.aclose()


async def test_the_function_form_sees_every_request() -> None:
    seen: list[int] = []

    async def answer(request: ModelRequest) -> Any:
        seen.append(len(request.messages))
        return f"{len(request.messages)} message(s)"

    env = await Agent(engine=LLMEngine(ScriptedModel(answer))).run("count")
    assert env.text() == "1 message(s)" and seen == [1]


def test_connection_arguments_are_refused_with_a_scripted_model() -> None:
    with pytest.raises(ConfigurationError, match="base_url= does not apply"):
        LLMEngine(ScriptedModel(["x"]), base_url="http://localhost:1")
    with pytest.raises(ConfigurationError, match="replies must be"):
        ScriptedModel("just a string")  # type: ignore[arg-type]

"""The Engine contract: prepare() once at construction, run(task, *, prepared, run), no Agent."""

from __future__ import annotations

from typing import Any

import pytest

from lazybridge import Agent, ConfigurationError, Envelope, EnvelopeMetadata, Plan, Step
from lazybridge.engines.base import Engine, EngineBase
from lazybridge.engines.llm import LLMEngine
from lazybridge.events import RunContext
from lazybridge.testing import ScriptedEngine, ScriptedModel

pytestmark = pytest.mark.anyio


class Counting(EngineBase[tuple[str, ...]]):
    """Prepares the names of its 'tools' once, then answers with them."""

    def __init__(self) -> None:
        self.prepared = 0
        self.seen: list[Any] = []

    def prepare(self, *, tools: tuple[Any, ...], output: Any, memory: Any) -> tuple[str, ...]:
        self.prepared += 1
        if output is not None:
            raise ConfigurationError("output= is not supported by Counting")
        return tuple(getattr(tool, "__name__", "?") for tool in tools)

    async def run(self, task: Envelope, *, prepared: tuple[str, ...], run: RunContext) -> Envelope:
        self.seen.append(prepared)
        return Envelope(payload=",".join(prepared), metadata=EnvelopeMetadata(model="counting"))


def search() -> str:
    """Search."""
    return "found"


async def test_prepare_runs_once_at_construction_and_every_run_receives_its_value() -> None:
    engine = Counting()
    agent = Agent(engine=engine, tools=[search])
    assert engine.prepared == 1
    for _ in range(3):
        assert (await agent.run("t")).text() == "search"
    assert engine.prepared == 1 and engine.seen == [("search",)] * 3


def test_prepare_errors_are_raised_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="output= is not supported"):
        Agent(engine=Counting(), output=int)


def test_engine_base_refuses_the_arguments_it_would_ignore() -> None:
    class Plain(EngineBase[None]):
        async def run(self, task: Envelope, *, prepared: None, run: RunContext) -> Envelope:
            return Envelope(payload="x")

    for argument, value in (("tools", [search]), ("output", int), ("memory", object())):
        with pytest.raises(ConfigurationError, match=f"Plain does not use the agent's {argument}="):
            Agent(engine=Plain(), **{argument: value})


def test_built_in_engines_satisfy_the_protocol() -> None:
    for engine in (LLMEngine(ScriptedModel(["x"])), Plan(Step(Agent(engine=ScriptedEngine()))), ScriptedEngine()):
        assert isinstance(engine, Engine)


async def test_an_engine_written_before_prepare_still_works() -> None:
    """The earlier documented contract: run(task, *, agent, run), agent_arguments, starts_nested_runs(agent)."""

    class Legacy:
        model = "legacy-1"
        agent_arguments = frozenset({"tools"})

        def __init__(self) -> None:
            self.asked: list[Any] = []

        async def run(self, task: Envelope, *, agent: Agent, run: object) -> Envelope:
            return Envelope(payload=f"{agent.name} has {len(agent.tools)} tool(s)")

        def starts_nested_runs(self, agent: Agent) -> bool:
            self.asked.append(agent)
            return False

    engine = Legacy()
    agent = Agent(engine=engine, tools=[search], name="old")  # type: ignore[arg-type]
    assert (await agent.run("t")).text() == "old has 1 tool(s)"
    assert engine.asked == [agent]
    with pytest.raises(ConfigurationError, match="does not use the agent's output="):
        Agent(engine=Legacy(), output=int)  # type: ignore[arg-type]


async def test_an_engine_never_receives_the_agent() -> None:
    engine = Counting()
    await Agent(engine=engine, name="a").run("t")
    assert engine.seen == [()]  # only what prepare() made: no Agent anywhere

"""Agent(tool_concurrency=): a cap on one turn's tool calls, queued in call order, results in call order.

The real agent loop driven by ScriptedModel (no socket), on asyncio and Trio.
"""

from __future__ import annotations

import anyio
import pytest

from lazybridge import Agent, ConfigurationError, LLMEngine
from lazybridge.messages import ModelRequest, ToolResult
from lazybridge.testing import MockAgent, ScriptedEngine, ScriptedModel

pytestmark = pytest.mark.anyio

reply = ScriptedModel.reply


def tool_results(request: ModelRequest) -> list[ToolResult]:
    return [p for p in request.messages[-1].parts if isinstance(p, ToolResult)]


async def test_tool_concurrency_caps_a_turns_calls_and_starts_them_in_call_order() -> None:
    n, cap = 40, 3
    running = peak = 0
    order: list[int] = []
    release = anyio.Event()

    async def fetch(i: int) -> str:
        """Fetch item i."""
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        order.append(i)
        await release.wait()
        running -= 1
        return f"item {i}"

    model = ScriptedModel([reply(tool_calls=[("fetch", {"i": i}) for i in range(n)]), "all fetched"])
    agent = Agent(engine=LLMEngine(model), tools=[fetch], tool_concurrency=cap)
    result: list[str] = []

    async def go() -> None:
        result.append((await agent.run("fetch everything")).text())

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(go)
            await anyio.wait_all_tasks_blocked()
            assert running == cap and order == [0, 1, 2]  # three run, the others queue
            release.set()
    assert peak == cap
    assert order == list(range(n))  # queued calls start in the order the model made them
    assert [r.content for r in tool_results(model.requests[1])] == [f"item {i}" for i in range(n)]
    assert result == ["all fetched"]


async def test_without_tool_concurrency_every_call_of_a_turn_runs_at_once() -> None:
    n = 12
    running = 0
    all_in = anyio.Event()

    async def fetch(i: int) -> str:
        """Fetch item i."""
        nonlocal running
        running += 1
        if running == n:
            all_in.set()
        with anyio.fail_after(5):
            await all_in.wait()
        return str(i)

    model = ScriptedModel([reply(tool_calls=[("fetch", {"i": i}) for i in range(n)]), "done"])
    env = await Agent(engine=LLMEngine(model), tools=[fetch]).run("go")
    assert env.text() == "done"


async def test_the_limit_is_per_run() -> None:
    """Two runs of one agent each get their own cap: together they run twice as many calls."""
    running = peak = 0
    four = anyio.Event()

    async def fetch(i: int) -> str:
        """Fetch item i."""
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 4:
            four.set()
        await four.wait()
        running -= 1
        return str(i)

    calls = reply(tool_calls=[("fetch", {"i": i}) for i in range(3)])
    model = ScriptedModel([calls, calls, "a", "b"])  # both runs' first turns call three tools
    agent = Agent(engine=LLMEngine(model), tools=[fetch], tool_concurrency=2)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(agent.run, "one")
            tg.start_soon(agent.run, "two")
    assert peak == 4


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: Agent(engine=LLMEngine(ScriptedModel(["x"])), tools=[len], tool_concurrency=0), ConfigurationError,
         "tool_concurrency"),
        (lambda: Agent(engine=LLMEngine(ScriptedModel(["x"])), tools=[len], tool_concurrency=True),
         ConfigurationError, "tool_concurrency"),
        (lambda: Agent(engine=LLMEngine(ScriptedModel(["x"])), tool_concurrency=2), ConfigurationError,
         "no tools"),
        (lambda: Agent(engine=ScriptedEngine("x"), tool_concurrency=2), ConfigurationError, "tool_concurrency"),
    ],
    ids=["zero", "bool", "no-tools", "engine-without-tools"],
)
def test_bad_tool_concurrency_is_refused_at_construction(make: object, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        make()  # type: ignore[operator]


def test_a_mock_agent_is_unaffected() -> None:
    assert MockAgent("ok").tool_concurrency is None

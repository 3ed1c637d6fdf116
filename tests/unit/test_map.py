"""Agent.map: one agent fanned out over the items of the previous step's list."""

from __future__ import annotations

import anyio
import pytest

from lazybridge import Agent, Envelope
from lazybridge.testing import MockAgent

pytestmark = pytest.mark.anyio


async def test_a_chain_stage_runs_once_per_item_of_the_previous_list() -> None:
    splitter = MockAgent(Envelope(payload=["red", "green", {"colour": "blue"}]), name="split")
    describe = MockAgent(lambda item: f"<{item}>", name="describe", cost_usd=0.01)
    env = await Agent.chain(splitter, Agent.map(describe, concurrency=2)).run("colours")
    assert env.ok
    items = list(env.payload)
    assert [item.text() for item in items] == ["<red>", "<green>", '<{"colour": "blue"}>']
    assert sorted(describe.calls) == sorted(["red", "green", '{"colour": "blue"}'])
    assert env.metadata.cost_usd == pytest.approx(0.03)


async def test_an_items_failure_stays_in_its_place_and_the_rest_run() -> None:
    worker = MockAgent(lambda item: ValueError("no") if item == "b" else item.upper())
    env = await Agent.map(worker).run('["a", "b", "c"]')
    assert not env.ok and env.error is not None and env.error.type == "ValueError"
    assert [item.ok for item in env] == [True, False, True]
    assert env[2].text() == "C"


async def test_the_concurrency_bound_holds() -> None:
    running = most = 0
    release = anyio.Event()

    async def slow(item: str) -> str:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1
        return item

    async with anyio.create_task_group() as group:
        group.start_soon(Agent.map(MockAgent(slow), concurrency=3).run, '["1","2","3","4","5","6"]')
        await anyio.wait_all_tasks_blocked()
        assert running == 3
        release.set()
    assert most == 3


async def test_an_input_that_is_not_a_list_is_an_error_envelope() -> None:
    env = await Agent.map(MockAgent("x")).run("not a list")
    assert not env.ok and env.error is not None and env.error.type == "ValueError"
    assert "list" in env.error.message

"""Completion policies with LLM agents over loopback: the fake provider sees the losers' connections close.

The branches that must be stopped have a reply that would take a minute;
the test waits on the fake provider's ``disconnected`` event (set by the
server when a client drops a pending reply), never on a sleep.
"""

from __future__ import annotations

import anyio
import anyio.to_thread
import pytest

from lazybridge import Agent, LLMEngine, Session, events
from lazybridge.envelope import Envelope
from lazybridge.testing import FakeProvider, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-policy-test-0123456789"
SLOW = Reply(text="too late", delay=60)


def llm(model: str, base_url: str, *, tools: list[object] | None = None, name: str | None = None) -> Agent:
    return Agent(engine=LLMEngine(model, base_url=base_url, api_key=KEY), tools=tools or [], name=name or model)


async def disconnects(fake: FakeProvider, expected: int) -> int:
    """The provider's count of dropped connections, once it reached ``expected`` (the server runs in a thread)."""
    with anyio.fail_after(5):
        while True:
            fake.disconnected.clear()  # cleared before the count is read: no set is missed
            if fake.disconnects >= expected:
                return fake.disconnects
            await anyio.to_thread.run_sync(fake.disconnected.wait, 0.5)


async def run(agent: Agent | object, task: str = "go") -> Envelope:
    with anyio.fail_after(20):
        return await agent.run(task)  # type: ignore[attr-defined, no-any-return]


async def test_race_winner_answers_and_the_losers_connections_close(fake: FakeProvider, base_url: str) -> None:
    fake.push(SLOW, model="claude-haiku-4-5")
    fake.push(SLOW, model="gemini-3-flash-preview")
    # The fast answer starts only once every racer's request has reached the server.
    fake.push(Reply(text="fast answer", after_requests=3), model="gpt-5.4-mini")
    race = Agent.race(
        llm("claude-haiku-4-5", base_url), llm("gemini-3-flash-preview", base_url), llm("gpt-5.4-mini", base_url)
    )
    env = await run(race)

    assert env.ok and env.text() == "fast answer"
    assert env.metadata.winner == "gpt-5.4-mini" and env.metadata.provider == "openai"
    assert env.metadata.agent == "race"
    assert len(fake.requests) == 3
    assert await disconnects(fake, 2) == 2


async def test_race_cost_includes_what_a_loser_spent_before_it_was_cancelled(
    fake: FakeProvider, base_url: str
) -> None:
    loser_waiting = anyio.Event()

    async def wait_forever() -> str:
        """Wait for ever."""
        loser_waiting.set()
        await anyio.sleep_forever()
        return "unreachable"

    async def look_up() -> str:
        """Look something up."""
        await loser_waiting.wait()  # the winner answers only after the loser has paid for a turn
        return "found"

    fake.push(Reply(tool_calls=(("wait_forever", {}),)), model="claude-haiku-4-5")
    fake.push(Reply(tool_calls=(("look_up", {}),)), "done", model="gpt-5.4-mini")
    session = Session()
    loser = llm("claude-haiku-4-5", base_url, tools=[wait_forever], name="loser")
    winner = llm("gpt-5.4-mini", base_url, tools=[look_up], name="winner")
    race = Agent.race(loser, winner, session=session)

    env = await run(race)

    assert env.text() == "done" and env.metadata.winner == "winner"
    # 3 turns of 12 input / 7 output tokens: the loser's one and the winner's two.
    assert (env.metadata.input_tokens, env.metadata.output_tokens) == (36, 21)
    assert env.metadata.nested_input_tokens == 36 and env.metadata.cost_usd > 0
    finishes = [e for e in session.events if isinstance(e, events.AgentFinishEvent)]
    [loser_finish] = [e for e in finishes if e.agent == "loser"]
    assert loser_finish.error_type == "BranchCancelled" and loser_finish.input_tokens == 12
    assert session.usage_summary().total.cost_usd == pytest.approx(env.metadata.cost_usd)
    await session.aclose()


async def test_fail_fast_closes_the_other_branches_connections(fake: FakeProvider, base_url: str) -> None:
    fake.push(SLOW, model="claude-haiku-4-5")
    fake.push(SLOW, model="gemini-3-flash-preview")
    fake.push(Reply.error(400, "bad request body"), model="gpt-5.4-mini")
    panel = Agent.parallel(
        llm("claude-haiku-4-5", base_url), llm("gemini-3-flash-preview", base_url), llm("gpt-5.4-mini", base_url),
        fail_fast=True,
    )
    env = await run(panel)

    assert env.error is not None and env.error.type == "BadRequestError"
    assert [b.error.type for b in env if b.error] == ["BranchCancelled", "BranchCancelled", "BadRequestError"]
    assert await disconnects(fake, 2) == 2


async def test_quorum_closes_the_connections_it_no_longer_needs(fake: FakeProvider, base_url: str) -> None:
    fake.push(SLOW, model="claude-haiku-4-5")
    fake.push("one", model="gemini-3-flash-preview")
    fake.push("two", model="gpt-5.4-mini")
    panel = Agent.parallel(
        llm("claude-haiku-4-5", base_url), llm("gemini-3-flash-preview", base_url), llm("gpt-5.4-mini", base_url),
        quorum=2,
    )
    env = await run(panel)
    assert env.ok and [b.ok for b in env] == [False, True, True]
    assert await disconnects(fake, 1) == 1


async def test_staggered_race_sends_one_request_when_the_first_racer_is_fast(
    fake: FakeProvider, base_url: str
) -> None:
    fake.push("quick", model="claude-haiku-4-5")
    race = Agent.race(llm("claude-haiku-4-5", base_url), llm("gpt-5.4-mini", base_url), stagger=30)
    env = await run(race)
    assert env.text() == "quick"
    assert len(fake.requests) == 1


async def test_staggered_race_sends_two_requests_when_the_first_racer_is_slow(
    fake: FakeProvider, base_url: str
) -> None:
    fake.push(SLOW, model="claude-haiku-4-5")
    fake.push("hedged", model="gpt-5.4-mini")
    race = Agent.race(llm("claude-haiku-4-5", base_url), llm("gpt-5.4-mini", base_url), stagger=0.1)
    env = await run(race)
    assert env.text() == "hedged" and env.metadata.winner == "gpt-5.4-mini"
    assert len(fake.requests) == 2
    assert await disconnects(fake, 1) == 1

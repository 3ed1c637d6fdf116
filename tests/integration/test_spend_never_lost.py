"""Spend is never lost: a run that ends early still reports what its model responses cost.

Over real loopback HTTP: an agent answers one model turn (12 input, 7 output
tokens, priced), then is stopped -- by ``Agent(timeout=)``, by a parallel's
``step_timeout`` or by a cancel scope around it -- while a tool waits.  Its
envelope, its finish event and ``Session.usage_summary()`` still carry that
turn, under the run id of its start event, with ``provider`` and ``model``.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from lazybridge import Agent, LLMEngine, Session, events
from lazybridge.envelope import Envelope
from lazybridge.testing import FakeProvider, MockAgent, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-spend-test-0123456789"
MODEL = "claude-haiku-4-5"
#: Long enough that one loopback model turn always fits before it, by a wide margin.
DEADLINE = 1.0


def engine(base_url: str) -> LLMEngine:
    return LLMEngine(MODEL, base_url=base_url, api_key=KEY)


async def wait_forever() -> str:
    """A tool that never returns (until it is cancelled)."""
    await anyio.sleep_forever()
    return "unreachable"


def one_turn_cost() -> float:
    from lazybridge.messages import Usage
    from lazybridge.providers import pricing

    return pricing.cost_usd("anthropic", MODEL, Usage(12, 7))


def finish_events(session: Session) -> dict[str, events.Event]:
    return {e.run_id: e for e in session.events if e.kind == events.AGENT_FINISH}


def start_event(session: Session, agent: str) -> events.Event:
    [start] = [e for e in session.events if e.kind == events.AGENT_START and e.agent == agent]
    return start


def assert_one_turn(env: Envelope) -> None:
    meta = env.metadata
    assert (meta.input_tokens, meta.output_tokens) == (12, 7)
    assert meta.cost_usd == pytest.approx(one_turn_cost()) and meta.cost_usd > 0
    assert (meta.provider, meta.model) == ("anthropic", MODEL)


async def test_agent_timeout_keeps_the_spend_of_the_turns_it_received(fake: FakeProvider, base_url: str) -> None:
    fake.push(Reply(tool_calls=(("wait_forever", {}),)))
    session = Session()
    agent = Agent(engine=engine(base_url), tools=[wait_forever], name="slow", timeout=DEADLINE, session=session)

    env = await agent.run("go")

    assert env.error is not None and env.error.type == "TimeoutError"
    assert_one_turn(env)
    assert env.metadata.run_id == start_event(session, "slow").run_id
    finish = finish_events(session)[env.metadata.run_id]
    assert finish.data["error_type"] == "TimeoutError" and finish.data["cost_usd"] == env.metadata.cost_usd
    total = session.usage_summary().total
    assert (total.input_tokens, total.output_tokens) == (12, 7)
    assert total.cost_usd == pytest.approx(env.metadata.cost_usd)
    await session.aclose()


async def test_step_timeout_keeps_the_branch_spend_and_the_wrapper_adds_it(fake: FakeProvider, base_url: str) -> None:
    fake.push(Reply(tool_calls=(("wait_forever", {}),)))
    session = Session()
    slow = Agent(engine=engine(base_url), tools=[wait_forever], name="slow")
    quick = MockAgent("fine", name="quick", input_tokens=1, output_tokens=1, cost_usd=0.5)
    panel = Agent.parallel(slow, quick, step_timeout=DEADLINE, session=session)

    env = await panel.run("go")

    timed_out, fine = env.payload
    assert timed_out.error is not None and timed_out.error.type == "TimeoutError"
    assert "step_timeout" in timed_out.error.message
    assert fine.ok
    assert_one_turn(timed_out)
    assert timed_out.metadata.run_id == start_event(session, "slow").run_id
    assert env.metadata.cost_usd == pytest.approx(timed_out.metadata.cost_usd + 0.5)
    assert env.metadata.input_tokens == 13 and env.metadata.nested_input_tokens == 13
    assert session.usage_summary().total.cost_usd == pytest.approx(env.metadata.cost_usd)
    await session.aclose()


async def test_a_sub_agent_stopped_with_its_caller_still_counts_in_the_callers_envelope(
    fake: FakeProvider, base_url: str
) -> None:
    # boss asks helper (an agent used as a tool); helper answers one turn, then waits on a tool.
    fake.push(Reply(tool_calls=(("helper", {"task": "dig"}),)), Reply(tool_calls=(("wait_forever", {}),)))
    session = Session()
    helper = Agent(engine=engine(base_url), tools=[wait_forever], name="helper")
    boss = Agent(engine=engine(base_url), tools=[helper], name="boss", timeout=DEADLINE, session=session)

    env = await boss.run("go")

    assert env.error is not None and env.error.type == "TimeoutError"
    meta = env.metadata
    assert (meta.input_tokens, meta.output_tokens) == (24, 14)
    assert (meta.nested_input_tokens, meta.nested_output_tokens) == (12, 7)
    assert meta.cost_usd == pytest.approx(2 * one_turn_cost())
    assert meta.nested_cost_usd == pytest.approx(one_turn_cost())
    helper_finish = finish_events(session)[start_event(session, "helper").run_id]
    assert helper_finish.data["error_type"] == "RunCancelled"
    assert helper_finish.data["cost_usd"] == pytest.approx(one_turn_cost())
    total = session.usage_summary().total  # no double counting between boss and helper
    assert (total.input_tokens, total.output_tokens) == (24, 14)
    await session.aclose()


async def test_a_run_cancelled_from_outside_reports_its_spend_in_its_finish_event(
    fake: FakeProvider, base_url: str
) -> None:
    fake.push(Reply(tool_calls=(("wait_forever", {}),)))
    session = Session()
    agent = Agent(engine=engine(base_url), tools=[wait_forever], name="slow", session=session)

    with anyio.move_on_after(DEADLINE):
        await agent.run("go")

    run_id = start_event(session, "slow").run_id
    finish = finish_events(session)[run_id]
    assert finish.data["ok"] is False and finish.data["error_type"] == "RunCancelled"
    assert (finish.data["input_tokens"], finish.data["output_tokens"]) == (12, 7)
    assert (finish.data["provider"], finish.data["model"]) == ("anthropic", MODEL)
    assert session.usage_summary().total.cost_usd == pytest.approx(one_turn_cost())
    await session.aclose()


async def test_a_failed_first_call_names_its_provider_and_model(fake: FakeProvider, base_url: str) -> None:
    fake.push(Reply.error(400, "bad request, says the provider"))
    env = await Agent(engine=engine(base_url), name="a").run("go")
    assert env.error is not None and "says the provider" in env.error.message
    assert (env.metadata.provider, env.metadata.model) == ("anthropic", MODEL)


async def test_a_streamed_run_that_times_out_keeps_its_spend(fake: FakeProvider, base_url: str) -> None:
    fake.push(Reply(tool_calls=(("wait_forever", {}),)))
    agent = Agent(engine=engine(base_url), tools=[wait_forever], name="slow", timeout=DEADLINE)
    stream = agent.stream("go")
    with pytest.raises(TimeoutError):
        async with stream:
            async for _ in stream:
                pass
    assert stream.envelope is not None
    assert_one_turn(stream.envelope)


async def test_mock_spend_reaches_an_ancestor_stopped_later() -> None:
    """An engine that only reports spend in its envelope (a test double) still rolls up live."""
    session = Session()

    async def script(task: str) -> Any:
        await MockAgent("x", name="leaf", input_tokens=5, output_tokens=3, cost_usd=0.25).run(task)
        await anyio.sleep_forever()

    outer = MockAgent(script, name="outer", timeout=DEADLINE, session=session)
    env = await outer.run("go")
    assert env.error is not None and env.error.type == "TimeoutError"
    assert (env.metadata.input_tokens, env.metadata.cost_usd) == (5, 0.25)
    assert env.metadata.nested_cost_usd == 0.25
    await session.aclose()

"""Agents as tools: the model calls sub-agents (Agent, ParallelAgent, Plan-backed) and their spend rolls up."""

from __future__ import annotations

import anyio
import pytest

import lazybridge
from lazybridge import Agent, LLMEngine, Plan, Session, Step, events
from lazybridge.messages import Usage
from lazybridge.providers import pricing
from lazybridge.testing import FakeProvider, MockAgent, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-subagent-test-0123456789"


def own_cost(engine: LLMEngine, calls: int, input_tokens: int = 12, output_tokens: int = 7) -> float:
    """What ``calls`` fake-server replies (default usage 12 in / 7 out) cost on ``engine``'s model."""
    assert engine.model is not None
    usage = Usage(input_tokens, output_tokens)
    return calls * pricing.cost_usd(engine.provider, engine.model, usage)


async def test_two_sub_agents_called_in_one_turn_roll_up_exactly(fake: FakeProvider, base_url: str) -> None:
    """cost_usd = own model calls + every sub-agent's cost; nested_* = the sub-agents' part."""
    entered = 0
    both = anyio.Event()

    async def meet(task: str) -> str:
        nonlocal entered
        entered += 1
        if entered == 2:
            both.set()
        with anyio.fail_after(5):  # both sub-agents run at once, or this times out
            await both.wait()
        return f"notes on {task}"

    eu = MockAgent(
        meet, name="eu", description="EU policy desk.", input_tokens=100, output_tokens=40, cost_usd=0.002
    )
    us = MockAgent(
        meet, name="us", description="US policy desk.", input_tokens=50, output_tokens=10, cost_usd=0.0005
    )
    fake.push(
        Reply(tool_calls=(("eu", {"task": "AI act"}), ("us", {"task": "executive order"}))),
        "EU and US summarised.",
    )
    orchestrator_engine = LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY)
    orchestrator = Agent(engine=orchestrator_engine, tools=[eu, us], name="lead")
    env = await orchestrator.run("AI policy news?")

    assert env.ok, env.error
    assert eu.calls == ["AI act"] and us.calls == ["executive order"]
    meta = env.metadata
    own = own_cost(orchestrator_engine, calls=2)
    assert own > 0
    assert meta.nested_cost_usd == pytest.approx(0.0025, abs=1e-15)
    assert meta.cost_usd == pytest.approx(own + 0.0025, abs=1e-15)
    assert (meta.nested_input_tokens, meta.nested_output_tokens) == (150, 50)
    assert (meta.input_tokens, meta.output_tokens) == (2 * 12 + 150, 2 * 7 + 50)
    tools = fake.requests[0].body["tools"]
    assert [(t["name"], t["description"]) for t in tools] == [
        ("eu", "EU policy desk."),
        ("us", "US policy desk."),
    ]
    assert tools[0]["input_schema"]["required"] == ["task"]


async def test_parallel_plan_and_llm_agents_as_tools(fake: FakeProvider, base_url: str) -> None:
    """Agent, ParallelAgent and Plan-backed agents in tools=[...] become tools; their spend rolls up."""
    panel = Agent.parallel(
        MockAgent("a says", name="a", cost_usd=0.001, input_tokens=10, output_tokens=1),
        MockAgent("b says", name="b", cost_usd=0.002, input_tokens=20, output_tokens=2),
        name="panel",
        description="Ask the panel.",
    )
    pipeline = Agent(
        engine=Plan(
            Step(MockAgent("drafted", name="drafter", cost_usd=0.004, input_tokens=40, output_tokens=4))
        ),
        name="pipeline",
        description="Run the drafting pipeline.",
    )
    sub_engine = LLMEngine("gpt-5.4-mini", base_url=base_url, api_key=KEY)
    researcher = Agent(engine=sub_engine, name="researcher", description="Research with a model.")
    fake.push("researched", model="gpt-5.4-mini")
    fake.push(
        Reply(
            tool_calls=(
                ("panel", {"task": "q"}),
                ("pipeline", {"task": "q"}),
                ("researcher", {"task": "q"}),
            )
        ),
        "All three answered.",
        model="claude-haiku-4-5",
    )
    lead_engine = LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY)
    env = await Agent(engine=lead_engine, tools=[panel, pipeline, researcher], name="lead").run("go")

    assert env.ok, env.error
    nested = 0.001 + 0.002 + 0.004 + own_cost(sub_engine, calls=1)
    assert env.metadata.nested_cost_usd == pytest.approx(nested, abs=1e-15)
    assert env.metadata.cost_usd == pytest.approx(nested + own_cost(lead_engine, calls=2), abs=1e-15)
    assert env.metadata.nested_input_tokens == 10 + 20 + 40 + 12
    second = [r for r in fake.requests if r.model == "claude-haiku-4-5"][1]
    results = [b for m in second.body["messages"] for b in m["content"] if b["type"] == "tool_result"]
    assert [r["content"] for r in results] == ["[a]\na says\n\n[b]\nb says", "drafted", "researched"]


async def test_a_failing_sub_agent_is_a_tool_error_that_still_counts(
    fake: FakeProvider, base_url: str
) -> None:
    """A sub-agent's error envelope reaches the model as a tool error; what it spent still rolls up."""
    failing = MockAgent(
        lazybridge.Envelope.error_envelope(
            RuntimeError("desk closed"), metadata=lazybridge.EnvelopeMetadata(cost_usd=0.003)
        ),
        name="desk",
    )
    fake.push(Reply.tool_call("desk", {"task": "x"}), "The desk is closed.")
    env = await Agent(
        engine=LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY), tools=[failing]
    ).run("x")
    assert env.ok and env.metadata.nested_cost_usd == pytest.approx(0.003)
    blocks = fake.requests[1].body["messages"][-1]["content"]
    assert blocks == [
        {
            "type": "tool_result",
            "tool_use_id": blocks[0]["tool_use_id"],
            "content": "RuntimeError: desk closed",
            "is_error": True,
        }
    ]


async def test_a_sub_agent_without_a_session_reports_to_the_callers(
    fake: FakeProvider, base_url: str
) -> None:
    """The nested run inherits the caller's session; usage_summary counts each model call once."""
    sub_engine = LLMEngine("gpt-5.4-mini", base_url=base_url, api_key=KEY)
    sub = Agent(engine=sub_engine, name="sub", description="A sub-agent.")
    assert sub.session is None
    fake.push("sub answer", model="gpt-5.4-mini")
    fake.push(Reply.tool_call("sub", {"task": "help"}), "done", model="claude-haiku-4-5")
    session = Session()
    lead = Agent(
        engine=LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY),
        tools=[sub],
        name="lead",
        session=session,
    )
    env = await lead.run("go")
    assert env.ok
    finishes = {e.agent: e for e in session.events if e.kind == events.AGENT_FINISH}
    assert set(finishes) == {"lead", "sub"}
    assert finishes["sub"].parent_run_id == env.metadata.run_id
    summary = session.usage_summary()
    assert summary.total.cost_usd == pytest.approx(env.metadata.cost_usd)
    assert summary.total.model_calls == 3
    assert summary.by_agent["sub"].cost_usd == pytest.approx(env.metadata.nested_cost_usd)


async def test_a_tool_called_agent_with_its_own_session_names_its_untraced_caller_as_parent(
    fake: FakeProvider, base_url: str
) -> None:
    """The caller has no session: it still publishes its run for its tools, so the link holds."""
    sub_session = Session()
    sub = Agent(
        engine=LLMEngine("gpt-5.4-mini", base_url=base_url, api_key=KEY),
        name="sub",
        description="A sub-agent.",
        session=sub_session,
    )
    fake.push("sub answer", model="gpt-5.4-mini")
    fake.push(Reply.tool_call("sub", {"task": "help"}), "done", model="claude-haiku-4-5")
    lead = Agent(engine=LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY), tools=[sub], name="lead")
    env = await lead.run("go")
    assert env.ok
    [start] = sub_session.events.query(events.AGENT_START)
    assert start.parent_run_id == env.metadata.run_id

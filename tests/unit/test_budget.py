"""Budgets driven through the real agent loop with ScriptedModel (no socket).

What must stay true: a request the budget cannot cover is never sent; the
run that was stopped ends with a ``BudgetExceededError`` envelope that still
reports what it spent; ``max_tokens`` is lowered to what is left; the
reservation goes back when the reply arrives; every budget from the request's
run up to the root applies (the tighter wins), across agents used as tools,
chain stages, parallel branches and sync tools that start an agent in a thread.
Over real HTTP, under concurrency: ``tests/integration/test_budget_loopback.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from lazybridge import Agent, Budget, BudgetExceededError, ConfigurationError, LLMEngine
from lazybridge.budget import DEFAULT_OUTPUT_RESERVE, estimate_input_tokens
from lazybridge.messages import Message, ModelRequest
from lazybridge.testing import ScriptedModel

pytestmark = pytest.mark.anyio

reply = ScriptedModel.reply


def looping_model(**options: Any) -> ScriptedModel:
    """A model that calls the ``ping`` tool forever (10 input, 5 output tokens a reply)."""
    return ScriptedModel(lambda request: reply(tool_calls=[("ping", {})]), **options)


def ping() -> str:
    """Ping."""
    return "pong"


def test_budget_is_a_frozen_value_checked_at_construction() -> None:
    budget = Budget(max_cost_usd=0.5, max_tokens=1000, max_requests=3)
    assert (budget.max_cost_usd, budget.max_tokens, budget.max_requests) == (0.5, 1000, 3)
    with pytest.raises(AttributeError):
        budget.max_requests = 4  # type: ignore[misc]
    with pytest.raises(ConfigurationError, match="budget"):
        Agent(engine=LLMEngine(ScriptedModel(["x"])), budget={"max_requests": 1})  # type: ignore[arg-type]


async def test_max_requests_stops_the_tool_loop_before_the_next_request() -> None:
    model = looping_model()
    agent = Agent(engine=LLMEngine(model, max_turns=50), tools=[ping], name="looper", budget=Budget(max_requests=3))
    env = await agent.run("go")
    assert len(model.requests) == 3
    assert env.error is not None and env.error.type == "BudgetExceededError"
    assert "max_requests=3" in env.error.message and "'looper'" in env.error.message
    # What the three replies spent is still reported.
    assert (env.metadata.input_tokens, env.metadata.output_tokens) == (30, 15)


async def test_a_spent_budget_refuses_the_first_request_and_reports_nothing_spent() -> None:
    model = ScriptedModel(["never"])
    env = await Agent(engine=LLMEngine(model), budget=Budget(max_requests=0)).run("go")
    assert model.requests == []
    assert env.error is not None and env.error.type == "BudgetExceededError"
    assert isinstance(env.error.exception, BudgetExceededError)
    assert env.metadata.cost_usd == 0 and env.metadata.input_tokens == 0


async def test_max_tokens_is_lowered_to_what_the_token_budget_leaves() -> None:
    model = ScriptedModel(["ok"])
    env = await Agent(engine=LLMEngine(model, max_tokens=500), budget=Budget(max_tokens=100)).run("hi")
    assert env.ok
    [request] = model.requests
    assert request.max_tokens == 100 - estimate_input_tokens(request)


async def test_a_request_without_max_tokens_gets_the_default_reserve_under_a_cost_budget() -> None:
    model = ScriptedModel(["ok"], input_price=1e-6, output_price=1e-6)
    env = await Agent(engine=LLMEngine(model), budget=Budget(max_cost_usd=100.0)).run("hi")
    assert env.ok and model.requests[0].max_tokens == DEFAULT_OUTPUT_RESERVE


async def test_a_requests_only_budget_leaves_max_tokens_alone() -> None:
    model = ScriptedModel(["ok"])
    await Agent(engine=LLMEngine(model), budget=Budget(max_requests=5)).run("hi")
    assert model.requests[0].max_tokens is None


async def test_the_reservation_goes_back_when_the_usage_arrives() -> None:
    # Worst case of one request: its input estimate + max_tokens=200.  Were a
    # reservation kept after its reply, the second request would already be
    # lowered far below 200; with the real usage (15 tokens a reply) counted
    # instead, the first six go out whole and only then is max_tokens lowered.
    model = looping_model()
    engine = LLMEngine(model, max_tokens=200, max_turns=50)
    env = await Agent(engine=engine, tools=[ping], budget=Budget(max_tokens=360)).run("go")
    assert env.error is not None and env.error.type == "BudgetExceededError"
    sent = [request.max_tokens for request in model.requests]
    assert sent[:6] == [200] * 6 and sent[-1] is not None and sent[-1] < 200
    assert env.metadata.input_tokens + env.metadata.output_tokens == 15 * len(sent) <= 360
    # Each request's worst case fitted in what was left when it was sent.
    for before, request in enumerate(model.requests):
        assert estimate_input_tokens(request) + (request.max_tokens or 0) <= 360 - 15 * before


async def test_a_cost_budget_refuses_a_request_whose_worst_case_it_cannot_cover() -> None:
    # $1 per token: a reply costs $15; the worst case of a request with
    # max_tokens=20 is its input estimate + 20 tokens.
    model = looping_model(input_price=1.0, output_price=1.0)
    engine = LLMEngine(model, max_tokens=20, max_turns=50)
    env = await Agent(engine=engine, tools=[ping], budget=Budget(max_cost_usd=60.0)).run("go")
    assert env.error is not None and env.error.type == "BudgetExceededError"
    assert env.metadata.cost_usd <= 60.0
    assert env.metadata.cost_usd == 15.0 * len(model.requests)
    assert "max_cost_usd=60" in env.error.message


async def test_a_sub_agent_used_as_a_tool_draws_on_the_callers_budget() -> None:
    inner_model = looping_model()
    inner = Agent(engine=LLMEngine(inner_model, max_turns=50), tools=[ping], name="inner")
    outer_model = ScriptedModel(lambda request: reply(tool_calls=[("inner", {"task": "dig"})]))
    outer = Agent(engine=LLMEngine(outer_model), tools=[inner], name="outer", budget=Budget(max_requests=4))
    env = await outer.run("go")
    # outer's first request, then the sub-agent's three: the budget is gone.
    assert (len(outer_model.requests), len(inner_model.requests)) == (1, 3)
    assert env.error is not None and env.error.type == "BudgetExceededError"
    assert env.metadata.input_tokens == 40 and env.metadata.nested_input_tokens == 30


async def test_a_sync_tool_that_runs_an_agent_in_its_thread_draws_on_the_budget() -> None:
    inner_model = looping_model()
    inner = Agent(engine=LLMEngine(inner_model, max_turns=50), tools=[ping], name="inner")

    def delegate(task: str) -> str:
        """Ask the inner agent (synchronously, from the tool's worker thread)."""
        return inner(task).text() or "stopped"

    outer_model = ScriptedModel(lambda request: reply(tool_calls=[("delegate", {"task": "dig"})]))
    outer = Agent(engine=LLMEngine(outer_model), tools=[delegate], name="outer", budget=Budget(max_requests=5))
    env = await outer.run("go")
    assert len(outer_model.requests) + len(inner_model.requests) == 5
    assert len(inner_model.requests) == 4
    assert env.error is not None and env.error.type == "BudgetExceededError"


async def test_nested_budgets_all_apply_and_the_tighter_wins() -> None:
    inner_model = looping_model()
    inner = Agent(
        engine=LLMEngine(inner_model, max_turns=50), tools=[ping], name="inner", budget=Budget(max_requests=2)
    )
    outer_model = ScriptedModel(lambda request: reply(tool_calls=[("inner", {"task": "dig"})]))
    outer = Agent(engine=LLMEngine(outer_model), tools=[inner], name="outer", budget=Budget(max_requests=6))
    env = await outer.run("go")
    # Each call of the sub-agent stops at its own 2; the outer budget stops the whole at 6.
    assert len(outer_model.requests) + len(inner_model.requests) == 6
    assert len(outer_model.requests) == 2 and len(inner_model.requests) == 4
    assert env.error is not None and "'outer'" in env.error.message


async def test_a_chain_budget_covers_every_stage() -> None:
    first, second = ScriptedModel(["one"]), ScriptedModel(["two"])
    chain = Agent.chain(
        Agent(engine=LLMEngine(first), name="a"),
        Agent(engine=LLMEngine(second), name="b"),
        budget=Budget(max_requests=1),
    )
    env = await chain.run("go")
    assert (len(first.requests), len(second.requests)) == (1, 0)
    assert env.error is not None and env.error.type == "BudgetExceededError"


async def test_a_parallel_budget_is_one_account_for_every_branch() -> None:
    models = [ScriptedModel(["ok"]) for _ in range(10)]
    panel = Agent.parallel(
        *(Agent(engine=LLMEngine(m), name=f"b{i}") for i, m in enumerate(models)), budget=Budget(max_requests=4)
    )
    env = await panel.run("go")
    assert sum(len(m.requests) for m in models) == 4
    assert sum(1 for branch in env if branch.ok) == 4
    assert {b.error.type for b in env if b.error is not None} == {"BudgetExceededError"}


async def test_a_streamed_run_is_held_to_its_budget() -> None:
    model = looping_model()
    agent = Agent(engine=LLMEngine(model, max_turns=50), tools=[ping], budget=Budget(max_requests=2))
    stream = agent.stream("go")
    with pytest.raises(BudgetExceededError):
        async for _ in stream:
            pass
    assert len(model.requests) == 2
    assert stream.envelope is not None and stream.envelope.metadata.input_tokens == 20


def test_the_input_estimate_counts_system_tools_and_messages() -> None:
    bare = ModelRequest("m", (Message.user("x" * 400),))
    assert estimate_input_tokens(bare) == 100 + 4
    with_system = ModelRequest("m", (Message.user("x" * 400),), system="y" * 400)
    assert estimate_input_tokens(with_system) == 200 + 4

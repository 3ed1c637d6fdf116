"""Budgets over real loopback HTTP, under concurrency: the fake provider counts what was sent.

Every reply of the fake costs 12 input and 7 output tokens, priced as
``claude-haiku-4-5``.  Fifty branches start at once, so without a
reservation taken *before* each request every branch would see an unspent
budget and send.
"""

from __future__ import annotations

import warnings

import pytest

from lazybridge import Agent, Budget, BudgetExceededError, LLMEngine, Session
from lazybridge.messages import Usage
from lazybridge.providers import pricing
from lazybridge.testing import FakeProvider, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-budget-test-0123456789"
MODEL = "claude-haiku-4-5"
WIDTH = 50


def one_turn_cost() -> float:
    return pricing.cost_usd("anthropic", MODEL, Usage(12, 7))


def branches(base_url: str, n: int = WIDTH, **engine: object) -> list[Agent]:
    return [
        Agent(engine=LLMEngine(MODEL, base_url=base_url, api_key=KEY, **engine), name=f"b{i}")  # type: ignore[arg-type]
        for i in range(n)
    ]


async def test_fifty_branches_under_max_requests_10_send_exactly_10(fake: FakeProvider, base_url: str) -> None:
    session = Session()
    panel = Agent.parallel(*branches(base_url), budget=Budget(max_requests=10), session=session)
    env = await panel.run("hello")
    assert len(fake.requests) == 10
    ok = [b for b in env if b.ok]
    refused = [b for b in env if not b.ok]
    assert len(ok) == 10 and len(refused) == WIDTH - 10
    assert {b.error.type for b in refused if b.error is not None} == {"BudgetExceededError"}
    # The accounting of the stopped fan-out is exact: ten replies, no more, no less.
    meta = env.metadata
    assert (meta.input_tokens, meta.output_tokens) == (120, 70)
    assert meta.cost_usd == pytest.approx(10 * one_turn_cost())
    assert all(b.metadata.cost_usd == 0 for b in refused)
    assert session.usage_summary().total.cost_usd == pytest.approx(10 * one_turn_cost())


async def test_fifty_concurrent_branches_never_spend_more_than_a_cost_budget(fake: FakeProvider, base_url: str) -> None:
    # Room for the worst case of about three requests (max_tokens=20 each).
    worst = pricing.cost_usd("anthropic", MODEL, Usage(20, 20))
    cap = 3.5 * worst
    panel = Agent.parallel(*branches(base_url, max_tokens=20), budget=Budget(max_cost_usd=cap))
    env = await panel.run("hi")
    sent = len(fake.requests)
    assert 1 <= sent < WIDTH
    assert env.metadata.cost_usd <= cap
    assert env.metadata.cost_usd == pytest.approx(sent * one_turn_cost())
    assert sum(1 for b in env if b.ok) == sent
    assert {b.error.type for b in env if b.error is not None} == {"BudgetExceededError"}
    # Each request that went out carried a max_tokens its share of the budget could pay for.
    assert all(0 < r.body["max_tokens"] <= 20 for r in fake.requests)


async def test_a_nested_tighter_budget_wins(fake: FakeProvider, base_url: str) -> None:
    inner = [
        Agent.parallel(*branches(base_url, 5), name=f"team{t}", budget=Budget(max_requests=1)) for t in range(4)
    ]
    outer = Agent.parallel(*inner, name="all", budget=Budget(max_requests=10))
    env = await outer.run("hi")
    assert len(fake.requests) == 4  # one per team: each team's own budget is the tighter
    assert env.metadata.input_tokens == 4 * 12


async def test_an_outer_budget_stops_inner_teams_that_have_room(fake: FakeProvider, base_url: str) -> None:
    inner = [
        Agent.parallel(*branches(base_url, 5), name=f"team{t}", budget=Budget(max_requests=5)) for t in range(4)
    ]
    outer = Agent.parallel(*inner, name="all", budget=Budget(max_requests=7))
    env = await outer.run("hi")
    assert len(fake.requests) == 7
    assert env.metadata.input_tokens == 7 * 12


async def test_a_model_with_no_known_price_is_refused_under_a_cost_budget(fake: FakeProvider, base_url: str) -> None:
    agent = Agent(engine=LLMEngine("compat/unpriced-model", base_url=base_url), budget=Budget(max_cost_usd=1.0))
    env = await agent.run("hi")
    assert fake.requests == []
    assert env.error is not None and env.error.type == "BudgetExceededError"
    assert "no price is known" in env.error.message and "set_price('compat', 'unpriced-model'" in env.error.message
    # Without a cost cap the same model runs (a requests cap needs no price; it is counted as $0, with a warning).
    unpriced = Agent(engine=LLMEngine("compat/unpriced-model", base_url=base_url), budget=Budget(max_requests=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pricing.UnknownPriceWarning)
        ok = await unpriced.run("hi")
    assert ok.ok and len(fake.requests) == 1


def ping() -> str:
    """Ping."""
    return "pong"


async def test_a_streamed_run_sends_no_request_past_its_budget(fake: FakeProvider, base_url: str) -> None:
    fake.push(Reply.tool_call("ping"), Reply.tool_call("ping"), "done")
    engine = LLMEngine(MODEL, base_url=base_url, api_key=KEY)
    agent = Agent(engine=engine, tools=[ping], budget=Budget(max_requests=2))
    stream = agent.stream("go")
    with pytest.raises(BudgetExceededError):
        async for _ in stream:
            pass
    assert len(fake.requests) == 2
    assert stream.envelope is not None and stream.envelope.metadata.input_tokens == 24

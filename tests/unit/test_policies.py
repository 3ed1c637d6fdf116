"""Completion policies with MockAgent: fail_fast, quorum, Agent.race (accept, stagger), on asyncio and Trio.

No sleeps-and-hope: branches that must be stopped wait forever, and a
counter of live branches proves that nothing is left running on return.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from lazybridge import Agent, BranchCancelled, Envelope, RaceAgent
from lazybridge.errors import NoWinner, QuorumUnreachable
from lazybridge.testing import MockAgent

pytestmark = pytest.mark.anyio


class Live:
    """Counts the replies still running; each one that must be stopped waits forever."""

    def __init__(self, wait_for: int = 0) -> None:
        self.running = 0
        self.started = 0
        self.wait_for = wait_for
        #: Set once ``wait_for`` replies have started.
        self.ready = anyio.Event()

    def forever(self, name: str, **kwargs: Any) -> MockAgent:
        async def reply(task: str) -> str:
            self.running += 1
            self.started += 1
            if self.started == self.wait_for:
                self.ready.set()
            try:
                await anyio.sleep_forever()
            finally:
                self.running -= 1
            return "unreachable"

        return MockAgent(reply, name=name, **kwargs)


def failing(name: str, message: str = "boom", *, after: anyio.Event | None = None) -> MockAgent:
    """An agent that fails (once ``after`` is set, if given)."""
    if after is None:
        return MockAgent(ValueError(message), name=name)

    async def reply(task: str) -> str:
        assert after is not None
        await after.wait()
        raise ValueError(message)

    return MockAgent(reply, name=name)


async def run(agent: Any, task: str = "go") -> Envelope:
    with anyio.fail_after(10):  # a policy that did not stop the others would hang here
        result: Envelope = await agent.run(task)
    return result


# -- fail_fast --------------------------------------------------------------------


async def test_fail_fast_cancels_running_and_queued_branches_and_reports_the_failure() -> None:
    # Four branches, three slots.  Which branches get a slot is the backend's
    # choice, so roles go by arrival: the third to start fails (two are then
    # running), the fourth waits for a slot that never frees.
    started = running = 0

    async def reply(task: str) -> str:
        nonlocal started, running
        started += 1
        if started == 3:
            raise ValueError("disk on fire")
        running += 1
        try:
            await anyio.sleep_forever()
        finally:
            running -= 1
        return "unreachable"

    panel = Agent.parallel(*(MockAgent(reply, name=f"b{i}") for i in range(4)), concurrency_limit=3, fail_fast=True)
    env = await run(panel)

    assert running == 0  # nothing the call started is still running
    assert started == 3  # the queued branch never got a slot
    assert env.error is not None and env.error.type == "ValueError" and env.error.message == "disk on fire"
    [bad] = [slot for slot in env if slot.error is not None and slot.error.type == "ValueError"]
    cancelled = [slot for slot in env if slot.error is not None and slot.error.type == "BranchCancelled"]
    assert len(cancelled) == 3
    for slot in cancelled:
        assert slot.error is not None
        assert f"{bad.metadata.agent!r} failed" in slot.error.message and "disk on fire" in slot.error.message
        assert isinstance(slot.error.exception, BranchCancelled)
        assert slot.metadata.run_id  # a cancelled branch still reports who it is


async def test_without_fail_fast_a_failure_does_not_stop_the_others() -> None:
    panel = Agent.parallel(failing("bad"), MockAgent("fine", name="ok", delay=0.05))
    env = await run(panel)
    assert env.error is not None and env.error.type == "ValueError"
    assert env[1].ok and env[1].text() == "fine"


async def test_fail_fast_counts_a_timeout_as_a_failure() -> None:
    live = Live()
    slow = MockAgent("late", name="late", delay=60, timeout=0.05)
    panel = Agent.parallel(slow, live.forever("other"), fail_fast=True)
    env = await run(panel)
    assert env.error is not None and env.error.type == "TimeoutError"
    assert env[1].error is not None and env[1].error.type == "BranchCancelled"
    assert "'late' failed (TimeoutError" in env[1].error.message
    assert live.running == 0


# -- quorum -----------------------------------------------------------------------


async def test_quorum_returns_once_k_succeeded_and_cancels_the_rest() -> None:
    live = Live()
    panel = Agent.parallel(
        MockAgent("a", name="a"), live.forever("s1"), MockAgent("b", name="b"), live.forever("s2"), quorum=2
    )
    env = await run(panel)
    assert env.ok and env.error is None
    assert live.running == 0
    assert [slot.ok for slot in env] == [True, False, True, False]
    assert env[1].error is not None and env[1].error.type == "BranchCancelled"
    assert "quorum of 2" in env[1].error.message


async def test_quorum_returns_at_once_when_it_can_no_longer_be_reached() -> None:
    live = Live()
    panel = Agent.parallel(failing("x"), live.forever("s1"), failing("y"), live.forever("s2"), quorum=3)
    env = await run(panel)
    assert live.running == 0
    assert env.error is not None and env.error.type == "QuorumUnreachable"
    assert isinstance(env.error.exception, QuorumUnreachable)
    assert "quorum=3 of 4" in env.error.message and "2 failed ('x', 'y')" in env.error.message
    assert env[1].error is not None and env[1].error.type == "BranchCancelled"


async def test_quorum_of_all_with_fail_fast_is_all_or_nothing() -> None:
    live = Live()
    panel = Agent.parallel(MockAgent("a", name="a"), failing("bad"), live.forever("s"), quorum=3, fail_fast=True)
    env = await run(panel)
    assert env.error is not None and env.error.type == "ValueError"
    assert live.running == 0
    ok = await run(Agent.parallel(MockAgent("a", name="a"), MockAgent("b", name="b"), quorum=2, fail_fast=True))
    assert ok.ok and ok.text() == "[a]\na\n\n[b]\nb"


# -- race -------------------------------------------------------------------------


async def test_race_first_ok_answer_wins_and_the_losers_are_cancelled() -> None:
    live = Live()
    race = Agent.race(live.forever("slow"), MockAgent("fast answer", name="fast", model="m-fast"), name="hedge")
    env = await run(race)
    assert live.running == 0
    assert env.ok and env.text() == "fast answer" and env.payload == "fast answer"
    assert env.metadata.agent == "hedge" and env.metadata.winner == "fast"
    assert env.metadata.model == "m-fast"


async def test_race_spend_includes_every_racer() -> None:
    race = Agent.race(
        MockAgent(ValueError("no"), name="bad"),
        MockAgent("yes", name="good", delay=0.05, input_tokens=3, output_tokens=2, cost_usd=0.25),
    )
    bad_spend = MockAgent("x", name="bad2", input_tokens=5, output_tokens=1, cost_usd=0.5)
    refused = Agent.race(bad_spend, MockAgent("good", name="good", delay=0.05, cost_usd=0.25, input_tokens=1),
                         accept=lambda env: env.text() == "good")
    env = await run(race)
    assert env.metadata.cost_usd == 0.25 and env.metadata.nested_cost_usd == 0.25
    env = await run(refused)
    assert env.metadata.winner == "good" and env.text() == "good"
    assert env.metadata.cost_usd == pytest.approx(0.75) and env.metadata.input_tokens == 6


async def test_race_where_every_racer_fails_is_an_error_envelope() -> None:
    race = Agent.race(failing("a", "first"), MockAgent("meh", name="b"), accept=lambda env: False)
    env = await run(race)
    assert env.error is not None and env.error.type == "NoWinner"
    assert isinstance(env.error.exception, NoWinner)
    assert "'a': ValueError: first" in env.error.message and "'b': refused by accept" in env.error.message


async def test_an_accept_that_raises_refuses_that_answer() -> None:
    def accept(env: Envelope) -> bool:
        if env.text() == "bad":
            raise RuntimeError("cannot judge")
        return True

    race = Agent.race(MockAgent("bad", name="a"), MockAgent("good", name="b", delay=0.05), accept=accept)
    env = await run(race)
    assert env.text() == "good" and env.metadata.winner == "b"


async def test_run_branches_of_a_race_shows_every_racer() -> None:
    live = Live()
    race = Agent.race(live.forever("slow"), MockAgent("win", name="fast"))
    slow, fast = await race.run_branches("go")
    assert fast.text() == "win"
    assert slow.error is not None and slow.error.type == "BranchCancelled" and "'fast' won" in slow.error.message
    assert live.running == 0


async def test_a_race_chains_nests_and_works_as_a_tool() -> None:
    race = Agent.race(MockAgent(lambda t: f"r({t})", name="r1"), MockAgent(ValueError("x"), name="r2"))
    chained = await run(Agent.chain(race, MockAgent(lambda t: f"next({t})", name="n")))
    assert chained.text() == "next(r(go))"
    nested = await run(Agent.parallel(race, MockAgent("p", name="p")))
    assert nested.ok and nested[0].text() == "r(go)" and nested[0].metadata.winner == "r1"
    outer = await run(Agent.race(Agent.race(MockAgent("inner", name="i"), name="inner"), name="outer"))
    assert outer.text() == "inner" and outer.metadata.winner == "inner"
    tool = race.as_tool()
    result = await tool.call({"task": "t"})
    assert isinstance(race, RaceAgent) and tool.name == "race"
    assert isinstance(result, Envelope) and result.text() == "r(t)" and result.metadata.winner == "r1"


async def test_caller_cancellation_cancels_every_racer() -> None:
    live = Live()
    race = Agent.race(live.forever("a"), live.forever("b"))
    with anyio.move_on_after(0.05) as scope:
        await race.run("go")
    assert scope.cancelled_caught
    assert live.running == 0 and live.started == 2


# -- stagger (hedged requests) ------------------------------------------------------


async def test_staggered_race_starts_one_racer_when_the_first_is_fast() -> None:
    live = Live()
    race = Agent.race(MockAgent("quick", name="first"), live.forever("hedge"), stagger=30)
    env = await run(race)
    assert env.text() == "quick"
    assert live.started == 0  # the hedge never started


async def test_staggered_race_starts_the_hedge_when_the_first_is_slow() -> None:
    live = Live()
    hedge_started = anyio.Event()

    async def hedge(task: str) -> str:
        hedge_started.set()
        return "hedged"

    race = Agent.race(live.forever("first"), MockAgent(hedge, name="hedge"), live.forever("third"), stagger=0.05)
    started = anyio.current_time()
    env = await run(race)
    assert env.text() == "hedged" and env.metadata.winner == "hedge"
    assert anyio.current_time() - started >= 0.05  # not before its turn
    assert live.started == 1 and live.running == 0  # the third racer's turn (0.1 s) never came


async def test_a_failed_racer_hands_its_turn_on_at_once() -> None:
    live = Live()
    race = Agent.race(failing("first"), MockAgent("second", name="second"), live.forever("third"), stagger=30)
    env = await run(race)  # without the hand-on this would wait 30 s
    assert env.text() == "second"
    assert live.started == 0


@pytest.mark.parametrize("traced", [False, True], ids=["untraced", "traced"])
async def test_a_stopped_racers_slot_is_its_own_runs_error_envelope(traced: bool) -> None:
    # Untraced, a racer's run is started by the policy itself; traced, through
    # the branch wrapper that labels its events.  The slot is the same.
    from lazybridge import Session, events

    session = Session() if traced else None
    live = Live(wait_for=1)
    slow = live.forever("slow", model="m-slow", provider="p-slow")

    async def fast_reply(task: str) -> str:
        await live.ready.wait()  # slow is running: it is stopped, not prevented from starting
        return "win"

    race = Agent.race(slow, MockAgent(fast_reply, name="fast"), session=session)
    slot, fast = await race.run_branches("go", context="background")
    assert fast.text() == "win" and live.running == 0
    assert slot.error is not None and slot.error.type == "BranchCancelled"
    assert slot.error.message == "branch 'slow' was cancelled: racer 'fast' won"
    assert isinstance(slot.error.exception, BranchCancelled) and slot.error.exception.cause == "racer 'fast' won"
    assert slot.payload is None and slot.task == "go" and slot.context == "background"
    meta = slot.metadata
    assert (meta.agent, meta.model, meta.provider) == ("slow", "m-slow", "p-slow")
    assert meta.run_id and meta.run_id != fast.metadata.run_id and meta.latency_ms > 0
    assert (meta.cost_usd, meta.input_tokens, meta.output_tokens) == (0.0, 0, 0)
    if session is not None:
        [start] = [e for e in session.events.query(events.AGENT_START) if e.agent == "slow"]
        [finish] = [e for e in session.events.query(events.AGENT_FINISH) if e.agent == "slow"]
        assert start.run_id == finish.run_id == meta.run_id
        assert finish.error_type == "BranchCancelled" and finish.error_message == slot.error.message

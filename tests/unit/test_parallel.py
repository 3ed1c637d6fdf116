"""Agent.parallel: every promise of the seed documents, on asyncio and Trio."""

from __future__ import annotations

import math
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from lazybridge import Agent, ConfigurationError, Envelope, LLMEngine, Memory, ParallelAgent, Plan, Step
from lazybridge.testing import MockAgent

pytestmark = pytest.mark.anyio


def mocks(*names: str, **kwargs: Any) -> list[MockAgent]:
    return [MockAgent(f"{name} says hi", name=name, **kwargs) for name in names]


async def test_branches_run_concurrently() -> None:
    """Every branch is in flight at once: each waits until all have started."""
    n = 25
    started = 0
    all_started = anyio.Event()

    async def reply(task: str) -> str:
        nonlocal started
        started += 1
        if started == n:
            all_started.set()
        with anyio.fail_after(5):  # sequential execution would never get here
            await all_started.wait()
        return task.upper()

    panel = Agent.parallel(*(MockAgent(reply, name=f"b{i}") for i in range(n)))
    env = await panel.run("go")
    assert env.ok
    assert [b.text() for b in env] == ["GO"] * n


async def test_n_sleeping_branches_take_about_one_sleep() -> None:
    n, delay = 20, 0.2
    panel = Agent.parallel(*(MockAgent("x", name=f"b{i}", delay=delay) for i in range(n)))
    started = time.perf_counter()
    await panel.run("t")
    elapsed = time.perf_counter() - started
    assert elapsed < n * delay / 4  # generous: sequential would be 4 s


async def test_concurrency_limit_caps_in_flight_branches() -> None:
    in_flight = peak = 0
    release = anyio.Event()

    async def reply(task: str) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await release.wait()
        in_flight -= 1
        return "done"

    panel = Agent.parallel(*(MockAgent(reply, name=f"b{i}") for i in range(7)), concurrency_limit=3)
    result: list[Envelope] = []

    async def run() -> None:
        result.append(await panel.run("t"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        assert in_flight == 3  # three hold a slot, four queue
        release.set()
    assert peak == 3
    assert result[0].ok and len(result[0]) == 7


async def test_step_timeout_cancels_the_slow_branch_and_siblings_finish() -> None:
    observed_cancel = anyio.Event()

    async def hang(task: str) -> str:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            observed_cancel.set()
            raise
        raise AssertionError("unreachable")

    slow = MockAgent(hang, name="slow")
    fast_a, fast_b = mocks("fast_a", "fast_b")
    env = await Agent.parallel(fast_a, slow, fast_b, step_timeout=0.2).run("t")
    assert observed_cancel.is_set()
    assert [b.ok for b in env] == [True, False, True]
    assert env[1].error is not None and env[1].error.type == "TimeoutError"
    assert "step_timeout=0.2s" in env[1].error.message
    assert env[1].metadata.agent == "slow"
    assert env.error == env[1].error and not env.ok
    assert env.text() == "[fast_a]\nfast_a says hi\n\n[slow]\n(error) " + env[1].error.message + (
        "\n\n[fast_b]\nfast_b says hi"
    )


async def test_step_timeout_does_not_count_the_wait_for_a_slot() -> None:
    # One slot, three branches of 0.15 s: the last waits 0.3 s for its slot,
    # which must not count against its 0.25 s execution budget.
    panel = Agent.parallel(
        *(MockAgent("ok", name=f"b{i}", delay=0.15) for i in range(3)),
        concurrency_limit=1,
        step_timeout=0.25,
    )
    env = await panel.run("t")
    assert [b.ok for b in env] == [True, True, True]


async def test_results_come_back_in_input_order_not_finish_order() -> None:
    finished: list[str] = []

    def agent(name: str, delay: float) -> MockAgent:
        async def reply(task: str) -> str:
            await anyio.sleep(delay)
            finished.append(name)
            return name

        return MockAgent(reply, name=name)

    panel = Agent.parallel(agent("a", 0.3), agent("b", 0.2), agent("c", 0.0))
    branches = await panel.run_branches("t")
    assert finished == ["c", "b", "a"]
    assert [b.text() for b in branches] == ["a", "b", "c"]
    assert [b.metadata.agent for b in branches] == ["a", "b", "c"]


async def test_a_failing_branch_is_isolated_and_the_first_error_is_the_wrappers() -> None:
    boom = MockAgent(RuntimeError("boom"), name="boom")
    bad = MockAgent(ValueError("bad"), name="bad")
    ok = MockAgent("fine", name="ok")
    env = await Agent.parallel(ok, bad, boom).run("t")
    assert [b.ok for b in env] == [True, False, False]
    assert env.error is not None and (env.error.type, env.error.message) == ("ValueError", "bad")
    assert env[2].error is not None and env[2].error.type == "RuntimeError"
    assert env[0].text() == "fine"


class _RaisingAgent(MockAgent):
    """A subclass whose own run() raises instead of returning an error envelope."""

    async def run(self, task: str | Envelope, *, context: str | None = None) -> Envelope:
        raise LookupError(f"no answer for {Envelope.from_task(task).task!r}")


@pytest.mark.parametrize("options", [{}, {"step_timeout": 5.0}, {"concurrency_limit": 1}])
async def test_a_branch_whose_run_override_raises_is_isolated(options: dict[str, Any]) -> None:
    """The raise lands in that branch's slot as an error envelope; the call itself does not raise."""
    panel = Agent.parallel(MockAgent("fine", name="ok"), _RaisingAgent(name="custom"), **options)
    env = await panel.run("t")
    assert env[0].text() == "fine"
    assert env[1].error is not None and (env[1].error.type, env[1].error.message) == ("LookupError", "no answer for 't'")
    assert env[1].metadata.agent == "custom" and env[1].metadata.run_id
    assert env.error == env[1].error


class _BrokenHookEngine:
    """An engine whose optional starts_nested_runs hook is buggy."""

    model = "broken-1"

    async def run(self, task: Envelope, *, agent: Agent, run: object) -> Envelope:
        return Envelope(payload="never")

    def starts_nested_runs(self, agent: Agent) -> bool:
        raise RuntimeError("hook is broken")


async def test_an_engine_whose_nested_runs_hook_raises_fails_its_run_not_the_fan_out() -> None:
    broken = Agent(engine=_BrokenHookEngine(), name="broken")
    alone = await broken.run("t")
    assert alone.error is not None and (alone.error.type, alone.error.message) == ("RuntimeError", "hook is broken")
    env = await Agent.parallel(broken, MockAgent("fine", name="ok")).run("t")
    assert [b.ok for b in env] == [False, True]
    assert env[0].error == alone.error and env[1].text() == "fine"


@pytest.mark.parametrize("options", [{}, {"step_timeout": 5.0}, {"concurrency_limit": 2}])
async def test_branch_tasks_are_named_after_the_panel_and_their_agent(options: dict[str, Any]) -> None:
    seen: list[str] = []
    release = anyio.Event()

    async def wait(task: str) -> str:
        await release.wait()
        return task

    async def run_panel() -> None:
        await Agent.parallel(*(MockAgent(wait, name=n) for n in ("a", "b")), name="panel", **options).run("t")

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_panel)
        await anyio.wait_all_tasks_blocked()
        seen = [t.name for t in anyio.get_running_tasks() if t.name.startswith("panel/")]
        release.set()
    assert sorted(seen) == ["panel/a", "panel/b"]


async def test_wrapper_sums_costs_and_tokens_and_fills_nested() -> None:
    a = MockAgent("a", name="a", cost_usd=0.00009, input_tokens=10, output_tokens=5)
    b = MockAgent("b", name="b", cost_usd=0.00012, input_tokens=20, output_tokens=7)
    env = await Agent.parallel(a, b).run("t")
    meta = env.metadata
    assert math.isclose(meta.cost_usd, 0.00021)
    assert meta.cost_usd == meta.nested_cost_usd
    assert (meta.input_tokens, meta.output_tokens) == (30, 12)
    assert (meta.nested_input_tokens, meta.nested_output_tokens) == (30, 12)
    assert meta.agent == "parallel" and meta.run_id is not None and meta.run_id.startswith("run_")
    assert len({meta.run_id, env[0].metadata.run_id, env[1].metadata.run_id}) == 3


async def test_latency_is_the_fan_out_wall_time_not_the_sum() -> None:
    a = MockAgent("a", name="a", delay=0.2)
    b = MockAgent("b", name="b", delay=0.2)
    env = await Agent.parallel(a, b).run("t")
    slowest = max(x.metadata.latency_ms for x in env)
    assert slowest >= 200
    assert slowest <= env.metadata.latency_ms < sum(x.metadata.latency_ms for x in env)


async def test_parallel_of_parallel_rolls_costs_up_without_double_counting() -> None:
    inner = Agent.parallel(
        MockAgent("x", name="x", cost_usd=1.0, input_tokens=1),
        MockAgent("y", name="y", cost_usd=2.0, input_tokens=2),
        name="inner",
    )
    outer = Agent.parallel(inner, MockAgent("z", name="z", cost_usd=4.0, input_tokens=4), name="outer")
    env = await outer.run("t")
    assert env.metadata.cost_usd == env.metadata.nested_cost_usd == 7.0
    assert env.metadata.input_tokens == 7
    assert env[0].metadata.cost_usd == 3.0
    assert env.text() == "[inner]\n[x]\nx\n\n[y]\ny\n\n[z]\nz"


async def test_parallel_inside_a_chain_feeds_the_labelled_join_and_rolls_costs_up() -> None:
    fanout = Agent.parallel(
        MockAgent("alpha", name="a", cost_usd=1.0, output_tokens=1),
        MockAgent("beta", name="b", cost_usd=2.0, output_tokens=2),
    )
    synth = MockAgent(lambda task: f"synthesised {task!r}", name="synth", cost_usd=4.0, output_tokens=4)
    pipeline = Agent.chain(fanout, synth)
    env = await pipeline.run("q")
    assert synth.calls == ["[a]\nalpha\n\n[b]\nbeta"]
    assert env.text() == "synthesised '[a]\\nalpha\\n\\n[b]\\nbeta'"
    assert env.metadata.cost_usd == env.metadata.nested_cost_usd == 7.0
    assert env.metadata.output_tokens == 7
    assert env.metadata.agent == "chain"


async def test_outer_cancellation_cancels_every_branch_and_leaves_nothing_running() -> None:
    n = 5
    entered = 0
    cancelled = 0
    finished_after_cancel = False

    async def hang(task: str) -> str:
        nonlocal entered, cancelled, finished_after_cancel
        entered += 1
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled += 1
            raise
        finished_after_cancel = True
        return "never"

    panel = Agent.parallel(*(MockAgent(hang, name=f"b{i}") for i in range(n)))
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(panel.run, "t")
            await anyio.wait_all_tasks_blocked()
            assert entered == n
            scope.cancel()
    # The call has ended: every branch saw the cancellation before it did.
    assert cancelled == n
    assert not finished_after_cancel
    await anyio.wait_all_tasks_blocked()
    assert cancelled == n


async def test_outer_cancel_propagates_out_of_run_branches() -> None:
    panel = Agent.parallel(*mocks("a", "b", delay=10))
    with anyio.move_on_after(0.05) as scope:
        await panel.run_branches("t")
        raise AssertionError("run_branches returned despite the cancel")
    assert scope.cancelled_caught


async def test_run_branches_returns_the_list_and_accepts_an_envelope() -> None:
    panel = Agent.parallel(*mocks("a", "b"))
    branches = await panel.run_branches(Envelope(payload="from upstream"))
    assert isinstance(branches, list)
    assert [b.task for b in branches] == ["from upstream", "from upstream"]
    assert [b.text() for b in branches] == ["a says hi", "b says hi"]


async def test_each_branch_receives_the_exact_same_task() -> None:
    agents = mocks("a", "b", "c")
    await Agent.parallel(*agents).run("What are the trade-offs?")
    assert [a.calls for a in agents] == [["What are the trade-offs?"]] * 3


async def test_agent_timeout_returns_a_timeout_envelope() -> None:
    agent = MockAgent("late", name="late", delay=5, timeout=0.05)
    env = await agent.run("t")
    assert env.error is not None and env.error.type == "TimeoutError"
    assert "timeout of 0.05s" in env.error.message


async def test_as_tool_runs_the_panel_and_returns_its_envelope() -> None:
    panel = Agent.parallel(*mocks("a", "b"), name="panel", description="Ask both")
    tool = panel.as_tool()
    assert (tool.name, tool.description) == ("panel", "Ask both")
    assert tool.parameters["required"] == ["task"]
    env = await tool.call({"task": "t"})
    assert isinstance(env, Envelope) and env.text() == "[a]\na says hi\n\n[b]\nb says hi"
    named = mocks("solo")[0].as_tool(name="ask_solo", description="Ask solo")
    assert (named.name, named.description) == ("ask_solo", "Ask solo")
    assert (await named.call({"task": "t"})).text() == "solo says hi"


async def test_chain_stops_at_the_first_failing_stage() -> None:
    first = MockAgent("one", name="first", cost_usd=1.0)
    broken = MockAgent(RuntimeError("stage broke"), name="broken")
    never = MockAgent("three", name="never")
    env = await Agent.chain(first, broken, never).run("t")
    assert env.error is not None and env.error.message == "stage broke"
    assert never.calls == []
    assert env.metadata.cost_usd == 1.0


# -- construction errors --------------------------------------------------------


def test_parallel_needs_agents() -> None:
    with pytest.raises(ConfigurationError, match="needs at least one agent"):
        Agent.parallel()


def test_parallel_names_the_position_of_a_non_agent() -> None:
    with pytest.raises(TypeError, match="argument 1 must be an Agent"):
        Agent.parallel(MockAgent(), "not an agent")  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "2"])
def test_parallel_rejects_bad_concurrency_limits(limit: Any) -> None:
    with pytest.raises(ConfigurationError, match="concurrency_limit must be a whole number >= 1"):
        Agent.parallel(MockAgent(), concurrency_limit=limit)


@pytest.mark.parametrize("timeout", [0, -2.0, float("nan"), "30", False])
def test_parallel_rejects_bad_step_timeouts(timeout: Any) -> None:
    with pytest.raises(ConfigurationError, match="step_timeout must be"):
        Agent.parallel(MockAgent(), step_timeout=timeout)


def test_chain_validates_like_parallel() -> None:
    with pytest.raises(ConfigurationError, match=r"Agent\.chain needs at least one agent"):
        Agent.chain()
    with pytest.raises(TypeError, match=r"Agent\.chain: argument 0"):
        Agent.chain(len)  # type: ignore[arg-type]


def test_parallel_is_a_sibling_of_agent_not_a_subclass() -> None:
    panel = Agent.parallel(MockAgent())
    assert isinstance(panel, ParallelAgent)
    assert not isinstance(panel, Agent)
    assert (panel.name, panel.concurrency_limit, panel.step_timeout) == ("parallel", None, None)


def test_agent_rejects_an_undescribable_tool_at_construction() -> None:
    def untyped(x):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(ConfigurationError, match="untyped"):
        Agent(engine=LLMEngine("claude-haiku-4-5", api_key="k"), tools=[untyped])


def test_agent_rejects_a_bad_memory_at_construction() -> None:
    with pytest.raises(ConfigurationError, match=r"memory must be a lazybridge\.Memory"):
        Agent(engine=LLMEngine("claude-haiku-4-5", api_key="k"), memory=[])


def _search(query: str) -> str:
    """Search."""
    return query


@pytest.mark.parametrize(
    ("argument", "value"), [("tools", [_search]), ("output", dict), ("memory", Memory())], ids=["tools", "output", "memory"]
)
@pytest.mark.parametrize("engine", ["plan", "scripted"])
def test_an_argument_the_engine_would_ignore_is_refused_at_construction(engine: str, argument: str, value: Any) -> None:
    """Plan and the test doubles use none of tools=, output=, memory=: silently dropping them would mislead."""
    inner = MockAgent("x", name="inner")
    chosen = Plan(Step(inner)) if engine == "plan" else MockAgent().engine
    with pytest.raises(ConfigurationError, match=rf"{type(chosen).__name__} does not use the agent's {argument}="):
        Agent(engine=chosen, **{argument: value})


def test_an_engine_that_does_not_say_may_take_every_argument() -> None:
    """A custom engine without agent_arguments is assumed to read tools=, output= and memory= itself."""

    class Custom:
        model = None

        async def run(self, task: Envelope, *, agent: Agent, run: object) -> Envelope:
            return Envelope(payload=str(len(agent.tools)))

    assert Agent(engine=Custom(), tools=[_search], output=dict, memory=Memory())("t").text() == "1"


# -- isolation of a branch's own exceptions, whatever their class ---------------------


async def test_a_branch_raising_cancelled_error_itself_fails_alone() -> None:
    """A buggy library's ``raise asyncio.CancelledError()`` is that branch's failure, not a cancellation."""
    import asyncio  # the buggy library's exception, raised on both backends

    healthy_done = anyio.Event()

    async def buggy(task: str) -> str:
        await healthy_done.wait()  # the sibling is still running when this one blows up
        raise asyncio.CancelledError()

    async def healthy(task: str) -> str:
        healthy_done.set()
        await anyio.lowlevel.checkpoint()
        return "fine"

    for options in ({}, {"step_timeout": 30.0}, {"concurrency_limit": 2}):
        healthy_done = anyio.Event()
        panel = Agent.parallel(MockAgent(buggy, name="buggy"), MockAgent(healthy, name="healthy"), **options)
        env = await panel.run("t")
        assert [b.ok for b in env] == [False, True], options
        assert env[0].error is not None and env[0].error.type == "CancelledError"
        assert env[1].text() == "fine"
        assert env.error is env[0].error
        assert env.text().startswith("[buggy]\n(error)")


async def test_a_real_cancellation_from_outside_still_propagates_through_the_isolation() -> None:
    panel = Agent.parallel(*mocks("a", "b", delay=10), step_timeout=30.0)
    with anyio.move_on_after(0.05) as scope:
        await panel.run("t")
        raise AssertionError("run returned despite the cancel")
    assert scope.cancelled_caught


# -- labels: unique, and a nested branch's path ------------------------------------------


async def test_the_same_agent_three_times_is_labelled_apart() -> None:
    sampler = MockAgent(["first", "second", "third"], name="a")
    panel = Agent.parallel(sampler, sampler, sampler)
    env = await panel.run("t")
    # Which branch got which sample depends on scheduling (Trio's order is random).
    texts = [b.text() for b in env]
    assert sorted(texts) == ["first", "second", "third"]
    assert env.text() == "\n\n".join(f"[a#{i}]\n{text}" for i, text in enumerate(texts, 1))
    assert panel.labels == ("a#1", "a#2", "a#3")
    assert [b.metadata.agent for b in env] == ["a", "a", "a"]  # the agent's name stays its name


def test_labels_number_only_repeated_names_and_never_collide() -> None:
    from lazybridge.envelope import branch_labels

    assert branch_labels(["a", "b", "a"]) == ["a#1", "b", "a#2"]
    assert branch_labels(["a", "a#1", "a"]) == ["a#2", "a#1", "a#3"]
    assert branch_labels(["x", None]) == ["x", "branch_1"]


def test_a_native_asyncio_task_cancel_is_not_mistaken_for_a_stray_one() -> None:
    """``task.cancel()`` (no anyio scope involved) is a real cancellation: it must propagate."""
    import asyncio

    async def main() -> None:
        entered = anyio.Event()

        async def hang(task: str) -> str:
            entered.set()
            await anyio.sleep_forever()
            return "never"

        panel = Agent.parallel(MockAgent(hang, name="a"), MockAgent(hang, name="b"), step_timeout=30.0)
        running = asyncio.ensure_future(panel.run("t"))
        await entered.wait()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(main())

"""Plan: named steps, parallel bands joined by from_parallel_all, routes and loops, on asyncio and Trio."""

from __future__ import annotations

import math
from typing import Any

import anyio
import attrs
import pytest

from lazybridge import (
    Agent,
    Envelope,
    Event,
    Plan,
    Step,
    Tool,
    from_parallel,
    from_parallel_all,
    from_prev,
    from_start,
    from_step,
)
from lazybridge.events import ToolErrorEvent
from lazybridge.testing import MockAgent

pytestmark = pytest.mark.anyio


class Recorder:
    """A sink that keeps every event (what a Session does, without the Session)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self, *kinds: str) -> list[Event]:
        return [e for e in self.events if e.kind in kinds]


def traced(agent: Agent) -> Recorder:
    recorder = Recorder()
    agent._sinks = (*agent._sinks, recorder)
    return recorder


def search_agents(**kwargs: Any) -> list[MockAgent]:
    return [
        MockAgent(lambda q, n=name: f"[{n} docs result for {q!r}]", name=f"{name}_search", **kwargs)
        for name in ("anthropic", "openai", "google")
    ]


# -- the seed's multi-source search, as a Plan ---------------------------------------


async def test_a_band_of_three_joined_by_from_parallel_all_reads_like_agent_parallel() -> None:
    """The join step receives the same labelled text Agent.parallel would have produced."""
    searches = search_agents(cost_usd=1.0, input_tokens=3, output_tokens=1)
    synthesiser = MockAgent(lambda task: f"synthesis of {len(task)} chars", name="synthesiser", cost_usd=4.0)
    plan = Plan(
        *(Step(agent, parallel=True) for agent in searches),
        Step(synthesiser, task=from_parallel_all("anthropic_search")),
    )
    pipeline = Agent(engine=plan, name="research")
    env = await pipeline.run("How does each provider implement structured output?")

    expected = (
        await Agent.parallel(*search_agents()).run("How does each provider implement structured output?")
    ).text()
    assert synthesiser.calls == [expected]
    assert expected.startswith("[anthropic_search]\n[anthropic docs result for")
    assert env.ok and env.text() == f"synthesis of {len(expected)} chars"
    meta = env.metadata
    assert meta.cost_usd == meta.nested_cost_usd == 7.0
    assert (meta.input_tokens, meta.output_tokens) == (9, 3)
    assert meta.agent == "research" and meta.model == "mock-model"


async def test_band_members_run_concurrently() -> None:
    """Each member waits until all three have started: a sequential plan would never finish."""
    started = 0
    all_started = anyio.Event()

    async def reply(task: str) -> str:
        nonlocal started
        started += 1
        if started == 3:
            all_started.set()
        with anyio.fail_after(5):
            await all_started.wait()
        return task

    plan = Plan(
        *(Step(MockAgent(reply, name=f"m{i}"), parallel=True) for i in range(3)), Step(MockAgent(name="join"))
    )
    env = await Agent(engine=plan).run("go")
    assert env.ok and started == 3


async def test_after_a_band_from_prev_is_the_bands_labelled_join() -> None:
    a, b = MockAgent("alpha", name="a"), MockAgent("beta", name="b")
    join = MockAgent(lambda task: task, name="join")
    await Agent(engine=Plan(Step(a, parallel=True), Step(b, parallel=True), Step(join))).run("q")
    assert join.calls == ["[a]\nalpha\n\n[b]\nbeta"]


async def test_every_band_member_gets_the_envelope_before_the_band() -> None:
    first = MockAgent("prepared query", name="first")
    a, b = MockAgent("A", name="a"), MockAgent("B", name="b")
    plan = Plan(Step(first), Step(a, parallel=True), Step(b, parallel=True, task=from_start))
    env = await Agent(engine=plan).run("raw query")
    assert a.calls == ["prepared query"] and b.calls == ["raw query"]
    assert env.text() == "[a]\nA\n\n[b]\nB"  # a plan ending on a band returns the join
    assert [x.text() for x in env] == ["A", "B"]


async def test_from_parallel_reads_one_member_of_a_band() -> None:
    a, b = MockAgent("A", name="a"), MockAgent("B", name="b")
    join = MockAgent(lambda task: task, name="join")
    await Agent(
        engine=Plan(Step(a, parallel=True), Step(b, parallel=True), Step(join, task=from_parallel("b")))
    ).run("q")
    assert join.calls == ["B"]


async def test_a_failing_member_fails_the_band_after_its_siblings_finish() -> None:
    ok = MockAgent("fine", name="ok", cost_usd=1.0, delay=0.05)
    broken = MockAgent(RuntimeError("backend down"), name="broken")
    join = MockAgent("never", name="join")
    env = await Agent(engine=Plan(Step(ok, parallel=True), Step(broken, parallel=True), Step(join))).run("q")
    assert env.error is not None and (env.error.type, env.error.message) == ("RuntimeError", "backend down")
    assert ok.calls == ["q"] and join.calls == []
    assert env.metadata.cost_usd == 1.0


async def test_on_error_continue_lets_the_join_see_the_failure() -> None:
    ok = MockAgent("fine", name="ok")
    broken = MockAgent(RuntimeError("backend down"), name="broken")
    join = MockAgent(lambda task: task, name="join")
    plan = Plan(Step(ok, parallel=True), Step(broken, parallel=True, on_error="continue"), Step(join))
    env = await Agent(engine=plan).run("q")
    assert env.ok
    assert join.calls == ["[ok]\nfine\n\n[broken]\n(error) backend down"]


# -- sentinels, context and targets -----------------------------------------------------


async def test_from_step_from_start_literal_tasks_and_mixed_context() -> None:
    research = MockAgent("the facts", name="research")
    outline = MockAgent("the outline", name="outline")
    seen: list[tuple[str | None, str | None]] = []

    async def capture(task: str) -> str:
        return "done"

    writer = MockAgent(capture, name="writer")
    writer_engine_run = writer.engine.run

    async def spy(task: Envelope, **kw: Any) -> Envelope:
        seen.append((task.task, task.context))
        return await writer_engine_run(task, **kw)

    writer.engine.run = spy  # type: ignore[method-assign]
    plan = Plan(
        Step(research),
        Step(outline, task="Outline it."),
        Step(writer, task=from_step("research"), context=["Be brief.", from_start, from_prev]),
    )
    env = await Agent(engine=plan).run("the question")
    assert outline.calls == ["Outline it."]
    assert seen == [("the facts", "Be brief.\n\nthe question\n\nthe outline")]
    assert env.text() == "done"


async def test_context_given_at_the_call_reaches_the_first_step() -> None:
    first = MockAgent("x", name="first")
    seen: list[str | None] = []
    original = first.engine.run

    async def spy(task: Envelope, **kw: Any) -> Envelope:
        seen.append(task.context)
        return await original(task, **kw)

    first.engine.run = spy  # type: ignore[method-assign]
    await Agent(engine=Plan(Step(first))).run("t", context="background")
    assert seen == ["background"]


async def test_functions_and_tools_are_steps() -> None:
    def shout(query: str) -> str:
        """Sync: runs in a worker thread."""
        return query.upper()

    async def wrap(task: str, context: str | None = None) -> str:
        return f"<{task}|{context}>"

    def count(text: str) -> int:
        return len(text)

    tool = Tool.from_schema(
        "exclaim",
        "Add an exclamation mark.",
        {"type": "object", "properties": {"task": {"type": "string"}}, "required": ["task"]},
        lambda task: task + "!",
    )
    plan = Plan(Step(shout), Step(tool), Step(wrap, context="ctx"), Step(count))
    agent = Agent(engine=plan)
    recorder = traced(agent)
    env = await agent.run("hi")
    assert env.payload == len("<HI!|ctx>")
    calls = [(e.data["name"], e.data["arguments"]) for e in recorder.kinds("tool_call")]
    assert calls == [
        ("shout", {"query": "hi"}),
        ("exclaim", {"task": "HI"}),
        ("wrap", {"task": "HI!", "context": "ctx"}),
        ("count", {"text": "<HI!|ctx>"}),
    ]
    assert [e.data["result"] for e in recorder.kinds("tool_result")] == ["HI", "HI!", "<HI!|ctx>", "9"]


async def test_a_function_step_may_have_any_step_name() -> None:
    def lookup(query: str) -> str:
        return f"found {query}"

    agent = Agent(engine=Plan(Step(lookup, name="look it up!")))
    recorder = traced(agent)
    env = await agent.run("x")
    assert env.text() == "found x"
    assert [e.data["name"] for e in recorder.kinds("tool_call")] == ["look_it_up_"]
    assert [e.data["step"] for e in recorder.kinds("step_start")] == ["look it up!"]


async def test_a_raising_function_fails_its_step_with_a_tool_error_event() -> None:
    def broken(task: str) -> str:
        raise ValueError("no such record")

    after = MockAgent("never", name="after")
    agent = Agent(engine=Plan(Step(broken), Step(after)))
    recorder = traced(agent)
    env = await agent.run("t")
    assert env.error is not None and env.error.type == "ValueError"
    assert after.calls == []
    [error] = recorder.kinds("tool_error")
    assert isinstance(error, ToolErrorEvent)
    assert (error.name, error.call_id, error.error_type, error.message) == (
        "broken", None, "ValueError", "no such record"
    )


async def test_an_agent_envelope_returned_by_a_tool_step_counts_as_nested() -> None:
    helper = MockAgent("helped", name="helper", cost_usd=2.0, input_tokens=5)
    plan = Plan(
        Step(helper.as_tool(), name="ask_helper"), Step(MockAgent("final", name="last", cost_usd=1.0))
    )
    env = await Agent(engine=plan).run("t")
    assert env.metadata.cost_usd == env.metadata.nested_cost_usd == 3.0
    assert env.metadata.input_tokens == 5


@attrs.frozen
class Verdict:
    approved: bool
    reason: str


async def test_output_parses_a_json_answer_and_rejects_a_misfit() -> None:
    judge = MockAgent('{"approved": true, "reason": "solid"}', name="judge")
    routed = MockAgent("shipped", name="ship")
    plan = Plan(Step(judge, output=Verdict, routes={"ship": lambda env: env.payload.approved}), Step(routed))
    env = await Agent(engine=plan).run("t")
    assert env.text() == "shipped"

    bad = Plan(Step(MockAgent("not json", name="judge"), output=Verdict), Step(MockAgent(name="never")))
    env = await Agent(engine=bad).run("t")
    assert env.error is not None and env.error.type == "StructuredOutputError"
    assert "step 'judge'" in env.error.message and "output=Verdict" in env.error.message


# -- routes and loops -----------------------------------------------------------------


async def test_a_self_correction_loop_runs_until_the_checker_approves() -> None:
    drafts = iter(["draft with typo", "draft with typo again", "clean draft"])
    writer = MockAgent(lambda task: next(drafts), name="writer", cost_usd=1.0)
    checker = MockAgent(lambda task: "REJECT" if "typo" in task else "APPROVE", name="checker", cost_usd=0.5)
    publisher = MockAgent(lambda task: f"published: {task}", name="publisher")
    plan = Plan(
        Step(writer, task=from_start),
        Step(checker, routes={"writer": lambda env: env.text() == "REJECT"}),
        Step(publisher, task=from_step("writer")),
        max_iterations=5,
    )
    agent = Agent(engine=plan, name="editorial")
    recorder = traced(agent)
    env = await agent.run("write about Trio")
    assert env.text() == "published: clean draft"
    assert writer.calls == ["write about Trio"] * 3
    assert env.metadata.cost_usd == 3 * 1.0 + 3 * 0.5
    starts = [(e.data["step"], e.data["iteration"]) for e in recorder.kinds("step_start")]
    assert starts == [
        ("writer", 1),
        ("checker", 1),
        ("writer", 2),
        ("checker", 2),
        ("writer", 3),
        ("checker", 3),
        ("publisher", 1),
    ]


async def test_max_iterations_stops_a_cycle_that_never_converges() -> None:
    writer = MockAgent("still wrong", name="writer", cost_usd=1.0)
    checker = MockAgent("REJECT", name="checker")
    never = MockAgent("published", name="publisher")
    plan = Plan(
        Step(writer),
        Step(checker, routes={"writer": lambda env: env.text() == "REJECT"}),
        Step(never),
        max_iterations=3,
    )
    env = await Agent(engine=plan).run("t")
    assert env.error is not None and env.error.type == "MaxIterationsExceeded"
    assert "'writer'" in env.error.message and "max_iterations=3" in env.error.message
    assert len(writer.calls) == 3 and never.calls == []
    assert env.metadata.cost_usd == 3.0  # the spend of the loop is not lost


async def test_routes_skip_forward_and_reading_a_skipped_step_fails_cleanly() -> None:
    triage = MockAgent("spam", name="triage")
    urgent = MockAgent("escalated", name="urgent")
    archive = MockAgent(lambda task: f"archived {task}", name="archive")
    plan = Plan(
        Step(triage, routes={"archive": lambda env: env.text() == "spam"}),
        Step(urgent),
        Step(archive),
    )
    env = await Agent(engine=plan).run("mail")
    assert urgent.calls == [] and env.text() == "archived spam"

    reader = MockAgent("x", name="reader")
    plan = Plan(
        Step(MockAgent("skip", name="triage"), routes={"reader": lambda env: True}),
        Step(urgent, name="u"),
        Step(reader, task=from_step("u")),
    )
    env = await Agent(engine=plan).run("mail")
    assert env.error is not None and env.error.type == "LookupError"
    assert "from_step('u')" in env.error.message and reader.calls == []


async def test_async_predicates_and_a_predicate_that_raises() -> None:
    async def approve(env: Envelope) -> bool:
        await anyio.lowlevel.checkpoint()
        return True

    end = MockAgent("end", name="end")
    plan = Plan(
        Step(MockAgent("a", name="a"), routes={"end": approve}), Step(MockAgent(name="skipped")), Step(end)
    )
    assert (await Agent(engine=plan).run("t")).text() == "end"

    def broken(env: Envelope) -> bool:
        raise KeyError("verdict")

    plan = Plan(Step(MockAgent("a", name="a", cost_usd=1.0), routes={"end": broken}), Step(end))
    env = await Agent(engine=plan).run("t")
    assert env.error is not None and env.error.type == "KeyError" and env.metadata.cost_usd == 1.0


# -- events, deadlines, cancellation ----------------------------------------------------


async def test_steps_emit_start_and_finish_and_band_members_carry_their_branch_label() -> None:
    a, b = MockAgent("A", name="a", cost_usd=1.0), MockAgent("B", name="b")
    agent = Agent(
        engine=Plan(
            Step(a, parallel=True, name="sa"), Step(b, parallel=True, name="sb"), Step(MockAgent(name="j"))
        ),
        name="p",
    )
    recorder = traced(agent)
    await agent.run("t")
    finishes = {e.data["step"]: e for e in recorder.kinds("step_finish")}
    assert set(finishes) == {"sa", "sb", "j"}
    assert finishes["sa"].branch == "sa" and finishes["sa"].data["parallel"] is True
    assert finishes["sa"].data["cost_usd"] == 1.0 and finishes["sa"].data["ok"] is True
    assert finishes["j"].branch is None and finishes["j"].run_id == finishes["sa"].run_id
    a_start = next(e for e in recorder.kinds("agent_start") if e.agent == "a")
    assert a_start.branch == "sa" and a_start.parent_run_id == finishes["sa"].run_id


async def test_verbose_plan_prints_step_lines(capsys: pytest.CaptureFixture[str]) -> None:
    plan = Plan(
        Step(MockAgent("one", name="first", cost_usd=0.001)),
        Step(MockAgent(RuntimeError("nope"), name="second")),
    )
    await Agent(engine=plan, name="plan", verbose=True).run("t")
    out = capsys.readouterr().out.splitlines()
    assert "[plan] step first started" in out
    assert any(line.startswith("[plan] step first done cost=$0.00100 latency=") for line in out)
    assert "[plan] step second failed RuntimeError: nope" in out


async def test_verbose_band_members_read_like_parallel_branches(capsys: pytest.CaptureFixture[str]) -> None:
    plan = Plan(
        Step(MockAgent("found it", name="eu", model="m-1", cost_usd=0.0002), parallel=True),
        Step(MockAgent(RuntimeError("quota gone"), name="us"), parallel=True, on_error="continue"),
        Step(MockAgent("joined", name="join")),
    )
    await Agent(engine=plan, name="plan", verbose=True).run("t")
    out = capsys.readouterr().out.splitlines()
    assert "[branch eu model=m-1] started" in out
    assert "[branch eu] assistant: found it" in out
    assert "[branch eu] done cost=$0.00020" in out
    assert "[branch us] failed RuntimeError: quota gone" in out
    assert "[plan] step join started" in out


async def test_the_agents_timeout_cancels_the_running_band() -> None:
    cancelled = 0

    async def hang(task: str) -> str:
        nonlocal cancelled
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled += 1
            raise
        raise AssertionError("unreachable")

    plan = Plan(
        *(Step(MockAgent(hang, name=f"m{i}"), parallel=True) for i in range(3)), Step(MockAgent(name="j"))
    )
    env = await Agent(engine=plan, timeout=0.1).run("t")
    assert env.error is not None and env.error.type == "TimeoutError"
    assert cancelled == 3


async def test_cancelling_the_caller_cancels_every_member_and_propagates() -> None:
    entered = cancelled = 0

    async def hang(task: str) -> str:
        nonlocal entered, cancelled
        entered += 1
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled += 1
            raise
        raise AssertionError("unreachable")

    plan = Plan(*(Step(MockAgent(hang, name=f"m{i}"), parallel=True) for i in range(4)))
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(Agent(engine=plan).run, "t")
            await anyio.wait_all_tasks_blocked()
            assert entered == 4
            scope.cancel()
    assert cancelled == 4


# -- chain is sugar over Plan -----------------------------------------------------------


async def test_chain_is_a_plan_and_tolerates_stages_with_the_same_name() -> None:
    first = MockAgent(lambda t: t + " one", name="stage")
    second = MockAgent(lambda t: t + " two", name="stage", cost_usd=1.5)
    chain = Agent.chain(first, second)
    assert isinstance(chain.engine, Plan)
    assert [s.name for s in chain.engine.steps] == ["stage", "stage_2"]
    env = await chain.run("t")
    assert env.text() == "t one two" and math.isclose(env.metadata.nested_cost_usd, 1.5)


async def test_a_plan_can_be_a_branch_of_a_parallel_and_a_step_can_be_a_parallel() -> None:
    panel = Agent.parallel(
        MockAgent("x", name="x", cost_usd=1.0), MockAgent("y", name="y", cost_usd=1.0), name="panel"
    )
    inner = Agent(
        engine=Plan(Step(panel), Step(MockAgent(lambda t: t.replace("\n", " "), name="flat"))), name="inner"
    )
    outer = Agent.parallel(inner, MockAgent("z", name="z", cost_usd=2.0))
    env = await outer.run("t")
    assert env.text() == "[inner]\n[x] x  [y] y\n\n[z]\nz"
    assert env.metadata.cost_usd == 4.0


async def test_unknown_usage_of_a_step_makes_the_plan_unknown() -> None:
    """A step whose model sent no usage makes the plan's totals a lower bound, and says so."""
    known = MockAgent("a", name="a", input_tokens=5)
    unknown = MockAgent("b", name="b", usage_reported=False)
    env = await Agent(engine=Plan(Step(known), Step(unknown))).run("go")
    assert env.ok and env.metadata.input_tokens == 5
    assert env.metadata.usage_reported is False
    assert (await Agent(engine=Plan(Step(known))).run("go")).metadata.usage_reported is True

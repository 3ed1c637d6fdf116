"""Session: the event bus, nested inheritance, usage_summary and the writer thread's lifecycle."""

from __future__ import annotations

import gc
import math
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from lazybridge import Agent, Envelope, EnvelopeMetadata, Event, Plan, Session, Step, Tool, events
from lazybridge.events import RunContext
from lazybridge.session import SessionWarning
from lazybridge.testing import MockAgent

pytestmark = pytest.mark.anyio


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("lazybridge-session")]


@pytest.fixture(autouse=True)
def no_writer_thread_left() -> Iterator[None]:
    yield
    gc.collect()  # sessions a test dropped without closing are closed by their finalizer
    assert writer_threads() == []


class Orchestrator:
    """An engine shaped like an LLM tool loop: two model calls around one tool call.

    Its envelope follows the cost rule: inclusive totals, the tool's run as ``nested_*``.
    """

    model = "orchestrator-model"

    def __init__(self, tool: Tool, cost_usd: float, input_tokens: int) -> None:
        self.tool, self.cost_usd, self.input_tokens = tool, cost_usd, input_tokens

    async def run(self, task: Envelope, *, agent: Agent, run: RunContext) -> Envelope:
        run.emit(events.ModelResponseEvent, text="let me ask", model=self.model, turn=1)
        run.emit(events.ToolCallEvent, name=self.tool.name, call_id="call_1", arguments={"task": task.task})
        result = await self.tool.call({"task": task.task})
        run.emit(events.ToolResultEvent, name=self.tool.name, call_id="call_1", result=result.text(), latency_ms=0.0)
        run.emit(events.ModelResponseEvent, text="answered", model=self.model, turn=2)
        sub = result.metadata
        return Envelope(
            payload=f"orchestrated({result.text()})",
            metadata=EnvelopeMetadata(
                model=self.model,
                input_tokens=self.input_tokens + sub.input_tokens,
                output_tokens=sub.output_tokens,
                cost_usd=self.cost_usd + sub.cost_usd,
                nested_input_tokens=sub.input_tokens,
                nested_output_tokens=sub.output_tokens,
                nested_cost_usd=sub.cost_usd,
            ),
        )


def leaf(name: str, cost: float, tokens: int) -> MockAgent:
    return MockAgent(f"{name} answer", name=name, cost_usd=cost, input_tokens=tokens, output_tokens=1)


def usage_tree(session: Session) -> tuple[Agent, dict[str, tuple[float, int]]]:
    """chain(parallel(a, b), orchestrator[tool: helper], plan(c)) -- and each leaf's own spend."""
    a, b = leaf("a", 0.25, 10), leaf("b", 0.5, 20)
    helper = leaf("helper", 2.0, 40)
    orchestrator = Agent(engine=Orchestrator(helper.as_tool(), 1.0, 5), name="orchestrator")
    c = leaf("c", 4.0, 80)
    finisher = Agent(engine=Plan(Step(c)), name="finisher")
    pipeline = Agent.chain(Agent.parallel(a, b, name="fanout"), orchestrator, finisher, session=session)
    own = {"a": (0.25, 10), "b": (0.5, 20), "helper": (2.0, 40), "orchestrator": (1.0, 5), "c": (4.0, 80)}
    return pipeline, own


async def test_usage_summary_equals_the_sum_over_the_leaves() -> None:
    """chain + parallel + agent-as-tool + plan: every model call counted once, nothing lost."""
    session = Session()
    pipeline, own = usage_tree(session)
    env = await pipeline.run("q")
    assert env.ok
    summary = session.usage_summary()
    leaves_cost = sum(cost for cost, _ in own.values())
    assert math.isclose(summary.total.cost_usd, leaves_cost)
    assert math.isclose(summary.total.cost_usd, env.metadata.cost_usd)
    assert (
        summary.total.input_tokens == sum(tokens for _, tokens in own.values()) == env.metadata.input_tokens
    )
    assert summary.total.output_tokens == env.metadata.output_tokens == 4
    for name, (cost, tokens) in own.items():
        usage = summary.by_agent[name]
        assert math.isclose(usage.cost_usd, cost) and usage.input_tokens == tokens, name
        assert usage.calls == 1
    for wrapper in ("chain", "fanout", "finisher"):
        assert summary.by_agent[wrapper].cost_usd == 0.0 and summary.by_agent[wrapper].input_tokens == 0
    assert math.isclose(sum(u.cost_usd for u in summary.by_agent.values()), summary.total.cost_usd)
    # Runs: chain, fanout, a, b, orchestrator, helper, finisher, c.
    assert summary.total.calls == len(summary.by_run) == 8
    assert summary.total.model_calls == 6  # a, b, helper, c once; the orchestrator twice
    root = summary.by_run[env.metadata.run_id]  # type: ignore[index]
    assert root.parent_run_id is None and math.isclose(root.cost_usd, leaves_cost)
    assert math.isclose(summary.total.latency_ms, root.latency_ms)
    assert summary.to_dict()["by_agent"]["helper"]["cost_usd"] == 2.0


async def test_usage_summary_of_one_run_and_the_runs_nested_in_it() -> None:
    session = Session()
    pipeline, _ = usage_tree(session)
    await pipeline.run("q1")
    first = session.usage_summary()
    await pipeline.run("q2")
    both = session.usage_summary()
    assert math.isclose(both.total.cost_usd, 2 * first.total.cost_usd)
    orchestrator_run = next(r for r in both.by_run.values() if r.agent == "orchestrator")
    sub = session.usage_summary(run_id=orchestrator_run.run_id)
    assert {r.agent for r in sub.by_run.values()} == {"orchestrator", "helper"}
    assert math.isclose(sub.total.cost_usd, 3.0)
    assert math.isclose(orchestrator_run.own_cost_usd, 1.0) and orchestrator_run.own_input_tokens == 5


async def test_every_nested_run_reports_to_the_outer_session_as_one_tree() -> None:
    """Steps, branches, tool-called agents: each event's parent run is a run of the same session."""
    session = Session()
    pipeline, _ = usage_tree(session)
    env = await pipeline.run("q")
    starts = session.events.query(events.AGENT_START)
    run_ids = {e.run_id for e in starts}
    assert {e.agent for e in starts} == {
        "chain",
        "fanout",
        "a",
        "b",
        "orchestrator",
        "helper",
        "finisher",
        "c",
    }
    for event in session.events:
        assert event.run_id in run_ids
        assert event.parent_run_id is None or event.parent_run_id in run_ids, event
        assert event.agent and event.time > 0
    [root] = [e for e in starts if e.parent_run_id is None]
    assert root.run_id == env.metadata.run_id
    kinds = {e.kind for e in session.events}
    assert {"step_start", "step_finish", "branch_start", "branch_finish", "tool_call", "tool_result"} <= kinds
    helper_start = session.events.query(events.AGENT_START, agent="helper")[0]
    orchestrator_start = session.events.query(events.AGENT_START, agent="orchestrator")[0]
    assert helper_start.parent_run_id == orchestrator_start.run_id


async def test_a_nested_agent_with_its_own_session_reports_to_both() -> None:
    outer, inner = Session(), Session()
    own = MockAgent("x", name="own", session=inner)
    await Agent.parallel(own, MockAgent("y", name="other"), session=outer).run("t")
    assert {e.agent for e in inner.events} == {"own"}
    assert {e.agent for e in outer.events} == {"parallel", "own", "other"}
    assert [e for e in outer.events if e.agent == "own"] == list(inner.events)


async def test_the_in_memory_log_is_a_read_only_list_with_query() -> None:
    session = Session()
    agent = Agent(
        engine=Plan(Step(MockAgent("a", name="a")), Step(MockAgent("b", name="b"))), session=session
    )
    await agent.run("t")
    log = session.events
    assert (
        len(log) == len(list(log))
        and log[0].kind == events.AGENT_START
        and log[-1].kind == events.AGENT_FINISH
    )
    assert [e.data["step"] for e in log.query("step_finish")] == ["a", "b"]
    assert [e.agent for e in log.query(["agent_start", "agent_finish"], agent=("a", "b"))] == [
        "a",
        "a",
        "b",
        "b",
    ]
    assert len(log.query(limit=2)) == 2
    assert log.query(since=log[-1].time, until=log[-1].time)[-1] == log[-1]
    assert log.query(run_id="run_nope") == []
    assert "events" in repr(log) and session.id.startswith("ses_")


# -- the writer thread ---------------------------------------------------------------


class Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.closed = False

    def export(self, event: Event) -> None:
        self.events.append(event)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_the_writer_thread_starts_with_the_first_event_and_close_joins_it() -> None:
    collect = Collect()
    with Session(exporters=[collect]) as session:
        assert writer_threads() == []  # lazily started
        MockAgent("hi", name="a", session=session)("t")
        assert len(writer_threads()) == 1
        assert session.flush(timeout=5)
        assert [e.kind for e in collect.events] == [e.kind for e in session.events]
    assert writer_threads() == [] and collect.closed
    assert session.close() is True  # idempotent


def test_a_session_dropped_without_close_is_closed_by_its_finalizer() -> None:
    collect = Collect()
    session = Session(exporters=[collect])
    MockAgent("hi", name="a", session=session)("t")
    assert len(writer_threads()) == 1
    del session
    gc.collect()
    assert writer_threads() == [] and collect.closed
    assert [e.kind for e in collect.events] == ["agent_start", "model_response", "agent_finish"]


def test_a_session_that_never_exported_closes_its_exporters_without_a_thread() -> None:
    collect = Collect()
    Session(exporters=[collect]).close()
    assert collect.closed and writer_threads() == []


async def test_aclose_closes_from_async_code() -> None:
    collect = Collect()
    async with Session(exporters=[collect.export]) as session:
        await MockAgent("hi", name="a", session=session).run("t")
    assert writer_threads() == []
    assert len(collect.events) == 3


@pytest.mark.parametrize("started", [False, True])
def test_events_after_close_are_kept_in_memory_and_reported_once(started: bool) -> None:
    collect = Collect()
    session = Session(exporters=[collect])
    agent = MockAgent("hi", name="a", session=session)
    if started:
        agent("t")
    session.close()
    exported = len(collect.events)
    with pytest.warns(SessionWarning, match="is closed: later events are not exported") as record:
        agent("t")
        agent("t")
    assert len(record) == 1
    assert len(session.events) == exported + 6 and exported == (3 if started else 0)


async def test_a_slow_exporter_never_stalls_a_run() -> None:
    release = threading.Event()
    entered = threading.Event()

    def stuck(event: Event) -> None:
        entered.set()
        release.wait(10)

    session = Session(exporters=[stuck])
    try:
        with anyio.fail_after(5):  # the run must not wait for the exporter
            env = await MockAgent("hi", name="a", session=session).run("t")
        assert env.ok and entered.wait(5)
    finally:
        release.set()
        await session.aclose()


async def test_a_full_queue_drops_events_for_the_exporters_and_warns_once() -> None:
    release = threading.Event()
    seen: list[Event] = []

    def slow(event: Event) -> None:
        release.wait(10)
        seen.append(event)

    session = Session(exporters=[slow], queue_size=2)
    agent = MockAgent("hi", name="a", session=session)
    with pytest.warns(SessionWarning, match="event queue is full") as record:
        for _ in range(5):
            await agent.run("t")
    assert len(record) == 1
    assert len(session.events) == 15  # memory keeps everything
    release.set()
    await session.aclose()
    assert session.dropped_events > 0 and len(seen) == 15 - session.dropped_events


def test_an_exporter_that_raises_warns_once_and_the_others_carry_on() -> None:
    calls = 0

    def broken(event: Event) -> None:
        nonlocal calls
        calls += 1
        raise OSError("collector unreachable")

    collect = Collect()
    with pytest.warns(
        SessionWarning, match=r"failed in export\(\) with OSError: collector unreachable"
    ) as record:
        with Session(exporters=[broken, collect]) as session:
            env = MockAgent("hi", name="a", session=session)("t")
            MockAgent("hi", name="a", session=session)("t")
    assert env.ok
    assert len(record) == 1 and calls == 6
    assert len(collect.events) == 6


def test_bad_arguments_raise_at_construction() -> None:
    with pytest.raises(TypeError, match="an exporter needs an export"):
        Session(exporters=[42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="redact must be a function"):
        Session(redact="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="queue_size"):
        Session(queue_size=0)


def test_emit_from_many_threads_keeps_every_event() -> None:
    collect = Collect()
    with Session(exporters=[collect]) as session:
        run = RunContext("run_x", "a", sinks=(session.emit,))

        def burst() -> None:
            for i in range(200):
                run.emit(events.ToolCallEvent, name="burst", call_id=str(i), arguments={})

        threads = [threading.Thread(target=burst) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(session.events) == len(collect.events) == 800


def _calls_inner(inner: MockAgent) -> Any:
    async def reply(task: str) -> str:
        return (await inner.run(task)).text()

    return reply


@pytest.mark.parametrize("shape", ["callable", "dict", "list"])
async def test_an_agent_run_inside_a_scripted_reply_names_the_caller_as_its_parent(shape: str) -> None:
    """Only the inner agent has a session: its events still name the outer run as their parent."""
    inner_session = Session()
    inner = MockAgent("inner answer", name="inner", session=inner_session)
    reply = _calls_inner(inner)
    script = {"callable": reply, "dict": {"*": reply}, "list": [reply]}[shape]
    env = await MockAgent(script, name="outer").run("q")
    assert env.text() == "inner answer"
    [start] = inner_session.events.query(events.AGENT_START)
    assert start.parent_run_id == env.metadata.run_id



async def test_max_events_keeps_the_latest_in_memory_and_exports_them_all() -> None:
    """A long-lived Session stays bounded: the window slides, the exporters still see every event."""
    exported: list[Event] = []
    with Session(exporters=[exported.append], max_events=4) as session:
        agent = MockAgent("ok", name="bounded", session=session)
        envs = [await agent.run(f"task {i}") for i in range(50)]
        assert len(session.events) == 4
        kept = list(session.events)
        assert kept[-1].kind == events.AGENT_FINISH and kept[-1].run_id == envs[-1].metadata.run_id
        assert session.events[-1] == kept[-1] and session.events[1:3] == kept[1:3]
        assert session.events.query(events.AGENT_FINISH)[-1].run_id == envs[-1].metadata.run_id
    assert len(exported) == 150  # agent_start, model_response and agent_finish per run
    assert [e.run_id for e in exported[-4:]] == [e.run_id for e in kept]


async def test_max_events_zero_keeps_nothing_in_memory() -> None:
    exported: list[Event] = []
    with Session(exporters=[exported.append], max_events=0) as session:
        await MockAgent("ok", name="a", session=session).run("t")
        assert len(session.events) == 0 and session.usage_summary().total.calls == 0
    assert [e.kind for e in exported] == [events.AGENT_START, events.MODEL_RESPONSE, events.AGENT_FINISH]


@pytest.mark.parametrize("value", [-1, 2.5, True, "10"])
def test_max_events_must_be_a_whole_number_or_none(value: Any) -> None:
    with pytest.raises(ValueError, match="max_events must be a whole number >= 0 or None"):
        Session(max_events=value)

"""Session exporters (SQLite, JSON lines, console, OpenTelemetry) and redaction, on both backends."""

from __future__ import annotations

import gc
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from lazybridge import Agent, AgentBase, Event, Plan, Session, Step, events, from_parallel_all
from lazybridge.errors import ConfigurationError
from lazybridge.events import AgentStartEvent, RunContext
from lazybridge.session import JsonlExporter, SessionWarning
from lazybridge.session.otel import OTelExporter
from lazybridge.session.redact import REDACTED, redact_text
from lazybridge.testing import MockAgent

pytestmark = pytest.mark.anyio

ANTHROPIC_KEY = "sk-ant-api03-" + "Q" * 40
GOOGLE_KEY = "AIza" + "G" * 35
BEARER = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl"
TOOL_SECRET = "toolsecret12345"
SECRETS = (ANTHROPIC_KEY, GOOGLE_KEY, BEARER, TOOL_SECRET)


@pytest.fixture(autouse=True)
def no_writer_thread_left() -> Iterator[None]:
    yield
    gc.collect()
    assert [t for t in threading.enumerate() if t.name.startswith("lazybridge-session")] == []


class Tracing:
    """A TracerProvider whose finished spans are kept in memory (the SDK's InMemorySpanExporter)."""

    def __init__(self) -> None:
        sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")  # the lazybridge[otel] extra
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.memory = InMemorySpanExporter()
        self.provider = sdk_trace.TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))

    def exporter(self) -> OTelExporter:
        return OTelExporter(tracer_provider=self.provider)

    def spans(self) -> list[Any]:
        return list(self.memory.get_finished_spans())


@pytest.fixture
def tracing() -> Tracing:
    return Tracing()


def leaky_plan(session: Session) -> Agent:
    """A task carrying a key; a tool whose result carries a bearer token and an api_key; agents echoing both."""

    def fetch_config(task: str) -> str:
        return f"Authorization: Bearer {BEARER}\napi_key={TOOL_SECRET} for {task}"

    echo = MockAgent(lambda task: f"I saw: {task}", name="echo")
    return Agent(engine=Plan(Step(fetch_config), Step(echo)), name="leaky", session=session)


def read_files(directory: Path, pattern: str) -> bytes:
    return b"".join(p.read_bytes() for p in directory.glob(pattern))


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    assert REDACTED in text


# -- SQLite --------------------------------------------------------------------------------


async def test_the_sqlite_log_reads_back_after_a_run(tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite"
    session = Session(db=db)
    agent = Agent.parallel(MockAgent("a", name="a", cost_usd=1.0), MockAgent("b", name="b"), session=session)
    env = await agent.run("t")
    stored = session.events.query()
    assert [(e.kind, e.run_id, e.agent, e.branch) for e in stored] == [
        (e.kind, e.run_id, e.agent, e.branch) for e in session.events
    ]
    [finish] = session.events.query(events.AGENT_FINISH, run_id=env.metadata.run_id)
    assert finish.data["cost_usd"] == 1.0 and finish.data["ok"] is True
    assert [e.agent for e in session.events.query("agent_start", agent=["a", "b"])] in (
        ["a", "b"],
        ["b", "a"],
    )
    assert [e.kind for e in session.events.query(branch="a")] == [
        "branch_start",
        "agent_start",
        "model_response",
        "agent_finish",
        "branch_finish",
    ]
    assert len(session.events.query(limit=3)) == 3
    session.close()

    # A second session in the same file keeps its events apart.
    with Session(db=db) as other:
        await MockAgent("x", name="x", session=other).run("t")
        assert {e.agent for e in other.events.query()} == {"x"}
        assert {e.agent for e in other.events.query(all_sessions=True)} >= {"parallel", "a", "b", "x"}
    with sqlite3.connect(db) as conn:  # any SQLite client can read it
        (count,) = conn.execute("SELECT count(*) FROM lazybridge_events").fetchone()
    conn.close()
    assert count == len(session.events) + 3


def test_a_long_burst_is_stored_in_batches_and_flush_after_close_returns(tmp_path: Path) -> None:
    from lazybridge.events import RunContext, ToolCallEvent

    session = Session(db=tmp_path / "burst.sqlite")
    run = RunContext("run_burst", "burst", sinks=(session.emit,))
    for i in range(1234):
        run.emit(ToolCallEvent, name="burst", call_id=None, arguments={"i": i})
    assert [e.arguments["i"] for e in session.events.query("tool_call")] == list(range(1234))
    assert session.close() and session.flush(timeout=1)
    assert len(session.events.query(run_id="run_burst")) == 1234


def test_a_bad_db_path_raises_at_construction(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "events.sqlite"
    with pytest.raises(ConfigurationError, match=r"db=.*missing-dir.*cannot open or create") as caught:
        Session(db=path)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)


# -- JSON lines --------------------------------------------------------------------------


async def test_the_json_lines_file_has_one_event_per_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    async with Session(exporters=[JsonlExporter(path)]) as session:
        await Agent.chain(MockAgent("one", name="one"), MockAgent("two", name="two"), session=session).run(
            "t"
        )
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(session.events)
    assert [line["kind"] for line in lines] == [e.kind for e in session.events]
    first = lines[0]
    assert set(first) == {"kind", "run_id", "parent_run_id", "agent", "branch", "time", "data"}
    assert (first["kind"], first["agent"], first["parent_run_id"]) == ("agent_start", "chain", None)
    assert [line["data"]["step"] for line in lines if line["kind"] == "step_finish"] == ["one", "two"]


# -- console ---------------------------------------------------------------------------------


async def test_console_prints_the_verbose_trace(capsys: pytest.CaptureFixture[str]) -> None:
    async with Session(console=True) as session:
        await Agent.parallel(MockAgent("hello", name="x"), session=session).run("t")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[parallel ▶ 1 branch]"
    assert "[branch x] assistant: hello" in out and "[branch x] done cost=$0.00000" in out


# -- OpenTelemetry ---------------------------------------------------------------------------


async def spans_of(tracing: Tracing, run: AgentBase, task: str) -> list[Any]:
    async with Session(exporters=[tracing.exporter()]) as session:
        run.session = session
        run._sinks = run._make_sinks()
        await run.run(task)
    return tracing.spans()


async def test_otel_spans_follow_the_run_tree_with_one_span_per_branch(tracing: Tracing) -> None:
    started = 0
    all_started = anyio.Event()  # every branch waits until all three are in flight

    def slow(name: str) -> MockAgent:
        async def reply(task: str) -> str:
            nonlocal started
            started += 1
            if started == 3:
                all_started.set()
            with anyio.fail_after(5):
                await all_started.wait()
            return f"{name} result"

        return MockAgent(reply, name=name, cost_usd=0.5)

    searches = [slow(n) for n in ("s1", "s2", "s3")]
    synth = MockAgent("synthesis", name="synth")
    pipeline = Agent(
        engine=Plan(*(Step(s, parallel=True) for s in searches), Step(synth, task=from_parallel_all("s1"))),
        name="research",
    )
    spans = await spans_of(tracing, pipeline, "q")
    by_name = {s.name: s for s in spans}
    root = by_name["research"]
    assert root.parent is None
    steps = [by_name[f"step {n}"] for n in ("s1", "s2", "s3", "synth")]
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in steps)
    for name in ("s1", "s2", "s3", "synth"):  # each agent's run span sits under its step span
        run = by_name[name]
        assert run.parent is not None and run.parent.span_id == by_name[f"step {name}"].context.span_id
    band = steps[:3]
    for a in band:  # side by side: every pair of branch spans overlaps in time
        for b in band:
            assert a.start_time < b.end_time and b.start_time < a.end_time  # type: ignore[operator]
    assert steps[3].start_time >= max(s.end_time for s in band)  # type: ignore[operator,type-var]
    assert by_name["step s1"].attributes["lazybridge.cost_usd"] == 0.5  # type: ignore[index]
    assert root.attributes["lazybridge.cost_usd"] == 1.5  # type: ignore[index]
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    assert len(spans) == 9


async def test_otel_parallel_branches_tools_and_errors(tracing: Tracing) -> None:
    helper = MockAgent("helped", name="helper")
    broken = MockAgent(RuntimeError("quota gone"), name="broken")
    panel = Agent.parallel(
        Agent(engine=Plan(Step(helper.as_tool(), name="ask")), name="asker"), broken, name="panel"
    )
    spans = await spans_of(tracing, panel, "t")
    by_name = {s.name: s for s in spans}
    root = by_name["panel"]
    branch_asker, branch_broken = by_name["branch asker"], by_name["branch broken"]
    assert branch_asker.parent.span_id == root.context.span_id  # type: ignore[union-attr]
    assert by_name["asker"].parent.span_id == branch_asker.context.span_id  # type: ignore[union-attr]
    assert by_name["broken"].parent.span_id == branch_broken.context.span_id  # type: ignore[union-attr]
    # plan step -> the step's tool run -> its tool call -> the agent called as a tool
    tool_span = by_name["tool helper"]
    assert by_name["ask"].parent.span_id == by_name["step ask"].context.span_id  # type: ignore[union-attr]
    assert tool_span.parent.span_id == by_name["ask"].context.span_id  # type: ignore[union-attr]
    assert by_name["helper"].parent.span_id == tool_span.context.span_id  # type: ignore[union-attr]
    assert branch_broken.status.status_code.name == "ERROR"
    assert "quota gone" in (branch_broken.status.description or "")
    assert root.status.status_code.name == "ERROR"  # the wrapper carries the first branch error


async def test_otel_ends_the_span_of_a_run_cancelled_from_outside(tracing: Tracing) -> None:
    session = Session(exporters=[tracing.exporter()])
    with anyio.move_on_after(0.05):
        await MockAgent("late", name="late", delay=10, session=session).run("t")
    await session.aclose()
    [span] = tracing.spans()
    assert span.name == "late" and span.status.status_code.name == "ERROR"
    assert "RunCancelled" in (span.status.description or "")  # ended by the run's own finish event


async def test_otel_ends_spans_left_open_when_the_session_closes(tracing: Tracing) -> None:
    session = Session(exporters=[tracing.exporter()])
    run = RunContext("run_open", "open", sinks=(session.emit,))
    run.emit(events.AgentStartEvent, task="t", model=None, agent_kind="Agent")  # and never a finish
    await session.aclose()
    [span] = tracing.spans()
    assert span.name == "open" and span.status.status_code.name == "ERROR"
    assert "unfinished" in (span.status.description or "")


# -- redaction ---------------------------------------------------------------------------------


async def test_secrets_in_a_task_and_a_tool_result_reach_no_exporter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tracing: Tracing
) -> None:
    jsonl, db = tmp_path / "events.jsonl", tmp_path / "events.sqlite"
    session = Session(console=True, db=db, exporters=[JsonlExporter(jsonl), tracing.exporter()])
    task = f"use key {ANTHROPIC_KEY} and https://x.googleapis.com/?key={GOOGLE_KEY}"
    env = await leaky_plan(session).run(task)
    assert env.ok and BEARER in env.text()  # the result itself is the user's, untouched
    tool_results = session.events.query("tool_result")
    assert tool_results and BEARER not in str(tool_results[0].data)
    stored = session.events.query()  # flushes; reads SQLite
    await session.aclose()

    assert_no_secret(repr(list(session.events)))
    assert_no_secret(jsonl.read_text(encoding="utf-8"))
    assert_no_secret(repr([(e.kind, dict(e.data)) for e in stored]))
    raw_db = read_files(tmp_path, "events.sqlite*")  # the database and its WAL, as bytes
    for secret in SECRETS:
        assert secret.encode() not in raw_db
    assert_no_secret("\n".join(span.to_json() for span in tracing.spans()))
    console = capsys.readouterr().out
    assert console and all(secret not in console for secret in SECRETS)


async def test_a_custom_redactor_replaces_the_default() -> None:
    def upper_only(event: Event) -> Event:
        changes = {k: v.replace("hunter2", "***") for k, v in event.data.items() if isinstance(v, str)}
        return attrs.evolve(event, **changes)

    session = Session(redact=upper_only)
    await MockAgent("ok", name="a", session=session).run(f"password hunter2 and {ANTHROPIC_KEY}")
    [start] = session.events.query("agent_start")
    assert isinstance(start, AgentStartEvent)
    assert start.task == f"password *** and {ANTHROPIC_KEY}"  # the default rules are off

    plain = Session(redact=None)
    await MockAgent("ok", name="a", session=plain).run(ANTHROPIC_KEY)
    assert plain.events[0].data["task"] == ANTHROPIC_KEY


async def test_a_redactor_that_raises_drops_the_payload_instead_of_leaking_it(tmp_path: Path) -> None:
    def broken(event: Event) -> Event:
        raise ValueError("redactor bug")

    path = tmp_path / "events.jsonl"
    with pytest.warns(SessionWarning, match="the redactor raised ValueError") as record:
        session = Session(redact=broken, exporters=[JsonlExporter(path)])
        env = await MockAgent("fine", name="a", session=session).run(ANTHROPIC_KEY)
    await session.aclose()
    assert env.ok and len(record) == 1
    assert [e.kind for e in session.events] == ["agent_start", "model_response", "agent_finish"]
    assert all(dict(e.data) == {"redaction_failed": "ValueError"} for e in session.events)
    assert ANTHROPIC_KEY not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key {ANTHROPIC_KEY} end", f"key {REDACTED} end"),
        ("sk-proj-" + "a" * 30, REDACTED),
        (f"Authorization: Bearer {BEARER}", f"Authorization: Bearer {REDACTED}"),
        ("x-api-key: abc123secret", f"x-api-key: {REDACTED}"),
        ('{"api_key": "zzz999", "model": "m"}', f'{{"api_key": "{REDACTED}", "model": "m"}}'),
        (f"?key={GOOGLE_KEY}&alt=sse", f"?key={REDACTED}&alt=sse"),
        ("password=swordfish; user=me", f"password={REDACTED}; user=me"),
        ("ghp_" + "b" * 36, REDACTED),
        ("AKIAABCDEFGHIJKLMNOP", REDACTED),
        ("the bearer of good news, tokens used: 12", "the bearer of good news, tokens used: 12"),
    ],
)
def test_secret_shapes_are_masked(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_secret_named_keys_are_masked_in_structured_data() -> None:
    from lazybridge.session.redact import redact_value

    data = {
        "headers": {"Authorization": "Basic dXNlcjpwYXNz", "X-Api-Key": "k"},
        "usage": {"input_tokens": 3},
    }
    assert redact_value(data) == {
        "headers": {"Authorization": REDACTED, "X-Api-Key": REDACTED},
        "usage": {"input_tokens": 3},
    }
    assert redact_value(("a", 1, None, True, 2.5)) == ["a", 1, None, True, 2.5]

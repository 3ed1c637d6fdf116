"""One shape per event kind, whoever emits it: a Plan tool step and the LLM tool loop alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lazybridge import Agent, LLMEngine, Plan, Session, Step
from lazybridge.events import EVENT_TYPES, ToolErrorEvent
from lazybridge.session import JsonlExporter
from lazybridge.testing import FakeProvider, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-event-shape-0123456789"


def broken(city: str) -> str:
    """Weather."""
    raise ValueError(f"no station in {city}")


async def test_a_tool_error_has_one_shape_from_a_plan_step_and_from_the_tool_loop(
    fake: FakeProvider, base_url: str, tmp_path: Path
) -> None:
    fake.push(Reply.tool_call("broken", {"city": "Atlantis"}), "Sorry.")
    path = tmp_path / "events.jsonl"
    session = Session(exporters=[JsonlExporter(path)])
    looped = Agent(engine=LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY), tools=[broken])
    planned = Agent(engine=Plan(Step(looped), Step(broken)), session=session)
    env = await planned.run("Atlantis")
    await session.aclose()
    assert env.error is not None and env.error.type == "ValueError"

    from_loop, from_plan = session.events.query("tool_error")
    assert isinstance(from_loop, ToolErrorEvent) and isinstance(from_plan, ToolErrorEvent)
    assert from_loop.call_id is not None and from_plan.call_id is None  # a plan step is no model call
    for error in (from_loop, from_plan):
        assert (error.name, error.error_type) == ("broken", "ValueError")
        assert error.message.startswith("no station in") and error.latency_ms >= 0.0
    written = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    shapes = {tuple(record["data"]) for record in written if record["kind"] == "tool_error"}
    assert shapes == {("name", "call_id", "error_type", "message", "latency_ms")}


async def test_every_exported_record_has_the_fields_of_its_kind_class(
    fake: FakeProvider, base_url: str, tmp_path: Path
) -> None:
    """The JSONL shape: the envelope fields, ``kind``, and ``data`` keyed exactly by the class's fields."""
    fake.push(Reply.tool_call("broken", {"city": "Atlantis"}), "Sorry.")
    path = tmp_path / "events.jsonl"
    session = Session(exporters=[JsonlExporter(path)])
    looped = Agent(engine=LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY), tools=[broken])
    await Agent.parallel(looped, Agent(engine=Plan(Step(str.upper, name="up"))), session=session).run("x")
    await session.aclose()
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert {r["kind"] for r in records} >= {
        "agent_start", "agent_finish", "model_request", "model_response", "tool_call", "tool_error",
        "parallel_start", "parallel_finish", "branch_start", "branch_finish", "step_start", "step_finish",
        "tool_result",
    }
    for record in records:
        assert list(record) == ["kind", "run_id", "parent_run_id", "agent", "branch", "time", "data"]
        assert tuple(record["data"]) == EVENT_TYPES[record["kind"]].data_fields

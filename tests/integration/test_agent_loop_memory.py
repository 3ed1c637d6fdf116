"""Memory over real loopback HTTP: history across calls, tool turns kept whole, concurrent runs."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import lazybridge
from lazybridge import Agent, ConfigurationError, LLMEngine, Memory
from lazybridge.testing import FakeProvider, RecordedRequest, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-memory-test-0123456789"


def chat(base_url: str, memory: Memory, tools: list[Any] | None = None) -> Agent:
    return Agent(
        engine=LLMEngine("gpt-5.4-mini", base_url=base_url, api_key=KEY, system="Be brief."),
        tools=tools or [],
        memory=memory,
        name="chat",
    )


def shape(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(role, content or tool names) of each wire message, for comparing histories."""
    out = []
    for m in messages:
        if m.get("tool_calls"):
            out.append((m["role"], "calls " + ",".join(c["function"]["name"] for c in m["tool_calls"])))
        else:
            out.append((m["role"], m["content"]))
    return out


async def test_memory_keeps_three_calls_of_conversation(fake: FakeProvider, base_url: str) -> None:
    """The third request carries the first two exchanges, tool round included, in order."""

    def remember(fact: str) -> str:
        """Store a fact."""
        return "stored"

    fake.push(
        "Hello Ada.", Reply.tool_call("remember", {"fact": "Rome"}), "Noted: Rome.", "You are Ada, in Rome."
    )
    memory = Memory()
    agent = chat(base_url, memory, [remember])
    assert (await agent.run("My name is Ada.")).ok
    assert (await agent.run("I live in Rome.")).ok
    env = await agent.run("What do you know about me?")
    assert env.text() == "You are Ada, in Rome."
    assert shape(fake.requests[-1].body["messages"]) == [
        ("system", "Be brief."),
        ("user", "My name is Ada."),
        ("assistant", "Hello Ada."),
        ("user", "I live in Rome."),
        ("assistant", "calls remember"),
        ("tool", "stored"),
        ("assistant", "Noted: Rome."),
        ("user", "What do you know about me?"),
    ]
    assert len(memory) == 3


async def test_memory_cap_and_failed_runs(fake: FakeProvider, base_url: str) -> None:
    """max_turns keeps the newest turns; a failed run records nothing."""
    memory = Memory(max_turns=1)
    agent = chat(base_url, memory)
    fake.push("one", "two", Reply.error(400, "bad request"), "four")
    await agent.run("first")
    await agent.run("second")
    failed = await agent.run("third")
    assert not failed.ok
    await agent.run("fourth")
    assert shape(fake.requests[-1].body["messages"])[1:] == [
        ("user", "second"),
        ("assistant", "two"),
        ("user", "fourth"),
    ]
    assert [m.text for m in memory.messages] == ["fourth", "four"]


async def test_concurrent_runs_see_a_snapshot_and_append_whole_turns(
    fake: FakeProvider, base_url: str
) -> None:
    """Two overlapping runs each see the history as it was when they started, and never interleave."""
    arrived = 0
    both = anyio.Event()

    async def rendezvous() -> str:
        """Wait for the other run."""
        nonlocal arrived
        arrived += 1
        if arrived == 2:
            both.set()
        with anyio.fail_after(5):  # both runs are inside their tool round at once
            await both.wait()
        return "met"

    def respond(request: RecordedRequest) -> Reply | str:
        task = request.last_user_text
        if request.body["messages"][-1]["role"] == "tool":
            return f"answer to {task}"
        if task.startswith("concurrent"):
            return Reply.tool_call("rendezvous")
        return f"answer to {task}"

    fake.respond = respond
    memory = Memory()
    agent = chat(base_url, memory, [rendezvous])
    await agent.run("seed")
    results: dict[str, lazybridge.Envelope] = {}

    async def one(task: str) -> None:
        results[task] = await agent.run(task)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, "concurrent A")
        tg.start_soon(one, "concurrent B")
    assert all(env.ok for env in results.values())

    for task in ("concurrent A", "concurrent B"):
        [after_tools] = [
            r for r in fake.requests if r.last_user_text == task and r.body["messages"][-1]["role"] == "tool"
        ]
        assert shape(after_tools.body["messages"]) == [
            ("system", "Be brief."),
            ("user", "seed"),
            ("assistant", "answer to seed"),
            ("user", task),
            ("assistant", "calls rendezvous"),
            ("tool", "met"),
        ]
    turns = memory.turns
    assert len(turns) == 3
    for turn in turns[1:]:
        task = turn[0].text
        assert [m.role for m in turn] == ["user", "assistant", "tool", "assistant"]
        assert turn[-1].text == f"answer to {task}"
    assert {turn[0].text for turn in turns[1:]} == {"concurrent A", "concurrent B"}


async def test_streamed_runs_are_remembered_too(fake: FakeProvider, base_url: str) -> None:
    """A streamed run records its turn like run() does."""
    memory = Memory()
    agent = chat(base_url, memory)
    fake.push("streamed answer", "second")
    async with agent.stream("first question") as stream:
        assert "".join([d async for d in stream]) == "streamed answer"
    await agent.run("next")
    assert shape(fake.requests[-1].body["messages"])[1:3] == [
        ("user", "first question"),
        ("assistant", "streamed answer"),
    ]


async def test_memory_must_be_a_memory(fake: FakeProvider, base_url: str) -> None:
    """Anything else as memory= raises ConfigurationError at construction, before any request."""
    with pytest.raises(ConfigurationError, match=r"memory must be a lazybridge\.Memory"):
        Agent(engine=LLMEngine("gpt-5.4-mini", base_url=base_url, api_key=KEY), memory=[])
    assert fake.requests == []

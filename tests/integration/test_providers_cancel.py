"""Timeouts and cancellation really abort the HTTP request: the server sees the connection close."""

from __future__ import annotations

import time

import anyio
import pytest
import stamina

from lazybridge import Agent
from lazybridge.engines.llm import LLMEngine
from lazybridge.testing import FakeProvider, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-cancel-test-0123456789"


def agent(model: str, base_url: str, name: str = "a", **kwargs: object) -> Agent:
    return Agent(engine=LLMEngine(model, base_url=base_url, api_key=KEY), name=name, **kwargs)  # type: ignore[arg-type]


async def saw_disconnect(fake: FakeProvider) -> bool:
    return await anyio.to_thread.run_sync(fake.disconnected.wait, 5.0)


async def test_step_timeout_aborts_the_slow_request(fake: FakeProvider, base_url: str) -> None:
    """Agent.parallel(step_timeout=) cancels a slow branch's request; the others finish normally."""
    fake.push(Reply(text="too late", delay=30), model="gpt-5.4-mini")
    panel = Agent.parallel(
        agent("claude-haiku-4-5", base_url, "claude_view"),
        agent("gpt-5.4-mini", base_url, "gpt_view"),
        agent("gemini-3-flash-preview", base_url, "gemini_view"),
        step_timeout=0.5,
    )
    started = time.monotonic()
    env = await panel.run("question")
    assert time.monotonic() - started < 5
    claude, gpt, gemini = env
    assert claude.ok and gemini.ok
    assert gpt.error is not None and gpt.error.type == "TimeoutError"
    assert await saw_disconnect(fake)
    assert fake.disconnects == 1


async def test_caller_cancellation_aborts_the_request(fake: FakeProvider, base_url: str) -> None:
    """Cancelling the caller while the request is in flight closes its connection."""
    fake.push(Reply(text="never read", delay=30))
    a = agent("claude-haiku-4-5", base_url)
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.run, "x")
        assert await anyio.to_thread.run_sync(fake.received.wait, 5.0)
        tg.cancel_scope.cancel()
    assert await saw_disconnect(fake)


async def test_cancelled_retry_wait_ends_at_once(fake: FakeProvider, base_url: str) -> None:
    """A step_timeout during a retry-after wait ends the branch at once; no second attempt."""
    fake.push(Reply.error(429, headers={"retry-after": "30"}), "late")
    panel = Agent.parallel(agent("claude-haiku-4-5", base_url), step_timeout=0.5)
    started = time.monotonic()
    with stamina.set_testing(False):
        env = await panel.run("x")
    assert time.monotonic() - started < 5
    assert env[0].error is not None and env[0].error.type == "TimeoutError"
    assert len(fake.requests) == 1


async def test_cancelling_a_stream_closes_the_response(fake: FakeProvider, base_url: str) -> None:
    """A consumer cancelled while waiting for the next delta closes the HTTP response."""
    fake.push(Reply(text="one two three four five six seven eight", stall_after=3))
    a = agent("gpt-5.4-mini", base_url)
    got: list[str] = []
    with anyio.move_on_after(0.5) as scope:
        async with a.stream("x") as stream:
            async for delta in stream:
                got.append(delta)
    assert scope.cancelled_caught
    assert got  # the first events arrived before the server paused
    assert stream.envelope is None
    assert await saw_disconnect(fake)


async def test_breaking_out_of_a_stream_closes_the_response(fake: FakeProvider, base_url: str) -> None:
    """Leaving ``async with agent.stream()`` early drops the connection (no generator left behind)."""
    fake.push(Reply(text="one two three four five six seven eight", chunk_delay=0.2))
    a = agent("claude-haiku-4-5", base_url)
    async with a.stream("x") as stream:
        async for _ in stream:
            break
    assert stream.envelope is None
    assert await saw_disconnect(fake)


async def test_agent_timeout_applies_to_a_stream(fake: FakeProvider, base_url: str) -> None:
    """An agent's timeout= ends a stream that takes too long with TimeoutError and an error envelope."""
    fake.push(Reply(text="one two three four five six", stall_after=2))
    a = agent("gemini-3-flash-preview", base_url, timeout=0.5)
    with pytest.raises(TimeoutError, match="exceeded its timeout"):
        async with a.stream("x") as stream:
            async for _ in stream:
                pass
    assert stream.envelope is not None and stream.envelope.error is not None
    assert stream.envelope.error.type == "TimeoutError"
    assert await saw_disconnect(fake)


async def test_leaving_a_merged_stream_early_closes_every_branchs_response(fake: FakeProvider, base_url: str) -> None:
    """panel.stream(): the consumer stops after one delta; the still-streaming branch's connection closes."""
    fake.push(Reply(text="fast answer"), model="claude-haiku-4-5")
    fake.push(Reply(text="a slow answer in many small pieces", chunk_delay=30), model="gpt-5.4-mini")
    panel = Agent.parallel(
        agent("claude-haiku-4-5", base_url, "fast"),
        agent("gpt-5.4-mini", base_url, "slow"),
    )
    async with panel.stream("question") as stream:
        async for delta in stream:
            if delta.branch == "fast":
                break
    assert stream.envelope is None
    assert await saw_disconnect(fake)
    assert fake.disconnects == 1

"""Merged live streaming: panel.stream(task) yields every branch's deltas as they arrive."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from lazybridge import Agent, BranchDelta, Envelope, EnvelopeMetadata, LLMEngine
from lazybridge.engines.base import EngineBase
from lazybridge.events import RunContext
from lazybridge.testing import MockAgent, ScriptedModel

pytestmark = pytest.mark.anyio


def llm(name: str, text: str, **kwargs: Any) -> Agent:
    return Agent(engine=LLMEngine(ScriptedModel([text, text], **kwargs)), name=name)  # stream, then run


class Counting(EngineBase[None]):
    """Streams ``n`` numbered deltas and counts how many it has produced."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.produced = 0

    async def run(self, task: Envelope, *, prepared: None, run: RunContext) -> Envelope:
        return Envelope(payload=" ".join(str(i) for i in range(self.n)))

    def stream(self, task: Envelope, *, prepared: None, run: RunContext) -> Any:
        engine = self

        class Stream:
            async def __anext__(self) -> str:
                await anyio.lowlevel.checkpoint()
                if engine.produced >= engine.n:
                    raise StopAsyncIteration
                engine.produced += 1
                return f"{engine.produced - 1} "

            def result(self) -> Envelope:
                return Envelope(payload="".join(f"{i} " for i in range(engine.n)), metadata=EnvelopeMetadata())

            async def aclose(self) -> None:
                pass

        return Stream()


async def test_deltas_carry_their_branch_and_the_envelope_is_what_run_returns() -> None:
    panel = Agent.parallel(llm("a", "alpha beta gamma"), llm("b", "one two"), MockAgent("whole", name="c"))
    async with panel.stream("go") as stream:
        deltas = [delta async for delta in stream]
    assert all(isinstance(d, BranchDelta) for d in deltas)
    by_branch: dict[str, str] = {}
    for delta in deltas:
        assert delta.index == ["a", "b", "c"].index(delta.branch)
        by_branch[delta.branch] = by_branch.get(delta.branch, "") + delta
    assert by_branch == {"a": "alpha beta gamma", "b": "one two", "c": "whole"}
    assert stream.envelope is not None
    ran = await panel.run("go")
    assert stream.envelope.text() == ran.text() == "[a]\nalpha beta gamma\n\n[b]\none two\n\n[c]\nwhole"
    assert [b.text() for b in stream.envelope] == ["alpha beta gamma", "one two", "whole"]
    assert stream.envelope.metadata.input_tokens == ran.metadata.input_tokens == 20


async def test_a_stalled_branch_does_not_hold_back_the_others() -> None:
    release = anyio.Event()

    async def slow(task: str) -> str:
        await release.wait()
        return "late"

    panel = Agent.parallel(MockAgent(slow, name="slow"), llm("fast", "one two three"))
    seen: list[str] = []
    async with panel.stream("go") as stream:
        async for delta in stream:
            seen.append(delta.branch)
            if seen.count("fast") == 3:
                release.set()  # only now may the slow branch answer
    assert seen == ["fast", "fast", "fast", "slow"]


async def test_a_nested_parallel_streams_with_its_path() -> None:
    inner = Agent.parallel(llm("a", "x y"), llm("b", "z"), name="inner")
    panel = Agent.parallel(inner, llm("c", "w"))
    async with panel.stream("go") as stream:
        branches = {delta.branch async for delta in stream}
    assert branches == {"inner/a", "inner/b", "c"}
    assert stream.envelope is not None and stream.envelope.text() == (await panel.run("go")).text()


async def test_a_slow_consumer_keeps_at_most_one_delta_pending_per_branch() -> None:
    engine = Counting(1000)
    panel = Agent.parallel(Agent(engine=engine, name="many"))
    async with panel.stream("go") as stream:
        first = await stream.__anext__()
        await anyio.wait_all_tasks_blocked()
        assert first == "0 " and engine.produced <= 2  # not 1000: the branch waits for the consumer
        rest = [delta async for delta in stream]
    assert len(rest) == 999 and engine.produced == 1000


async def test_leaving_early_cancels_every_branch_and_waits_for_them() -> None:
    cancelled: list[str] = []

    async def forever(task: str) -> str:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(task)
        return "never"

    panel = Agent.parallel(llm("fast", "one two three"), MockAgent(forever, name="stuck"))
    async with panel.stream("go") as stream:
        async for _ in stream:
            break
    assert cancelled == ["go"]  # cancelled and awaited before the block ended
    assert stream.envelope is None


async def test_step_timeout_ends_a_stalled_branch_in_its_slot() -> None:
    async def forever(task: str) -> str:
        await anyio.sleep_forever()
        return "never"

    panel = Agent.parallel(MockAgent(forever, name="stuck"), llm("ok", "fine"), step_timeout=0.2)
    async with panel.stream("go") as stream:
        deltas = [delta async for delta in stream]
    assert [d.branch for d in deltas] == ["ok"]
    assert stream.envelope is not None
    stuck, ok = stream.envelope
    assert stuck.error is not None and stuck.error.type == "TimeoutError" and "step_timeout" in stuck.error.message
    assert ok.text() == "fine"


async def test_iterating_without_entering_is_a_clear_error() -> None:
    panel = Agent.parallel(llm("a", "x"))
    with pytest.raises(RuntimeError, match=r"async with panel\.stream"):
        async for _ in panel.stream("go"):
            pass


def test_a_branch_delta_is_its_text() -> None:
    delta = BranchDelta("hello ", branch="inner/a", index=2)
    assert delta == "hello " and delta.text == "hello " and type(delta.text) is str
    assert (delta.branch, delta.index) == ("inner/a", 2)
    assert "inner/a" in repr(delta)


async def test_a_race_streams_and_ends_with_the_winners_envelope() -> None:
    async def slow(task: str) -> str:
        await anyio.sleep_forever()
        return "never"

    race = Agent.race(MockAgent(slow, name="slow"), llm("quick", "first answer"))
    async with race.stream("go") as stream:
        deltas = [delta async for delta in stream]
    assert {d.branch for d in deltas} == {"quick"}
    assert stream.envelope is not None and stream.envelope.text() == "first answer"
    assert stream.envelope.metadata.winner == "quick"


async def test_fail_fast_applies_to_a_stream_as_to_run() -> None:
    async def slow(task: str) -> str:
        await anyio.sleep_forever()
        return "never"

    panel = Agent.parallel(MockAgent(RuntimeError("boom"), name="bad"), MockAgent(slow, name="slow"), fail_fast=True)
    async with panel.stream("go") as stream:
        assert [delta async for delta in stream] == []
    assert stream.envelope is not None
    bad, cancelled = stream.envelope
    assert bad.error is stream.envelope.error  # the failure that triggered the stop
    assert stream.envelope.error is not None and stream.envelope.error.type == "RuntimeError"
    assert cancelled.error is not None and cancelled.error.type == "BranchCancelled"

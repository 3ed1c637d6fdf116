"""Batches: agent.run_batch / agent.batch -- bounds, order, isolation, budget, checkpoint, progress."""

from __future__ import annotations

import io
import re
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from unittest import mock

import anyio
import pytest

from lazybridge import Agent, Budget, LLMEngine, read_checkpoint
from lazybridge._batch_progress import BatchProgress
from lazybridge.errors import ConfigurationError
from lazybridge.testing import MockAgent, ScriptedModel

pytestmark = pytest.mark.anyio


class Gate:
    """An agent script whose tasks wait for their own event; counts what runs."""

    def __init__(self) -> None:
        self.events: dict[str, anyio.Event] = {}
        self.running = 0
        self.most = 0

    def event(self, task: str) -> anyio.Event:
        return self.events.setdefault(task, anyio.Event())

    async def __call__(self, task: str) -> str:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.event(task).wait()
        finally:
            self.running -= 1
        return task.upper()


def counted(tasks: list[str], pulled: list[int]) -> Iterator[str]:
    for task in tasks:
        pulled.append(1)
        yield task


async def test_results_come_as_completed_with_their_index() -> None:
    gate = Gate()
    agent = MockAgent(gate)
    seen: list[int] = []
    async with agent.run_batch(["a", "b", "c"], concurrency=3) as results:
        stream = aiter(results)
        await anyio.wait_all_tasks_blocked()
        for task in "cba":
            gate.event(task).set()
            index, env = await anext(stream)
            seen.append(index)
            assert env.text() == task.upper()
    assert seen == [2, 1, 0]


async def test_input_is_pulled_only_as_slots_free_and_concurrency_is_bounded() -> None:
    gate = Gate()
    pulled: list[int] = []
    tasks = [f"t{i}" for i in range(50)]
    async with MockAgent(gate).run_batch(counted(tasks, pulled), concurrency=4) as results:
        await anyio.wait_all_tasks_blocked()
        assert gate.running == 4
        assert len(pulled) == 4  # lazily: no task pulled before a slot is free
        for task in tasks:
            gate.event(task).set()
        count = 0
        async for _ in results:
            count += 1
    assert count == 50
    assert gate.most == 4


async def test_a_slow_consumer_holds_back_the_input_so_memory_stays_flat() -> None:
    pulled: list[int] = []
    async with MockAgent("ok").run_batch(counted([str(i) for i in range(100)], pulled), concurrency=3) as results:
        await anyio.wait_all_tasks_blocked()
        # Every task in flight has finished, but none was taken: nothing more is pulled.
        assert len(pulled) == 3
        assert results.count == 3
    assert len(pulled) == 3  # leaving early cancels the rest


async def test_ordered_yields_in_input_order_within_a_bounded_window() -> None:
    gate = Gate()
    pulled: list[int] = []
    tasks = [f"t{i}" for i in range(20)]
    for task in tasks[1:]:
        gate.event(task).set()
    order: list[int] = []
    async with MockAgent(gate).run_batch(counted(tasks, pulled), concurrency=2, ordered=True, window=5) as results:
        await anyio.wait_all_tasks_blocked()
        # t0 is stuck: the others finish, but no task starts 5 or more places past it.
        assert len(pulled) == 5
        gate.event("t0").set()
        async for index, _ in results:
            order.append(index)
    assert order == list(range(20))


async def test_failures_are_envelopes_in_place_and_never_stop_the_batch() -> None:
    def script(task: str) -> str | Exception:
        return ValueError(f"bad {task}") if task.startswith("x") else task

    found = {}
    async with MockAgent(script).run_batch(["a", "x1", 42, "b", "x2", "c"], concurrency=2) as results:  # type: ignore[list-item]
        async for index, env in results:
            found[index] = env
    assert sorted(found) == list(range(6))
    assert [found[i].ok for i in range(6)] == [True, False, False, True, False, True]
    assert found[1].error is not None and found[1].error.type == "ValueError"
    assert found[2].error is not None and found[2].error.type == "TypeError"
    assert found[5].text() == "c"


async def test_an_async_iterable_of_tasks_is_consumed_lazily() -> None:
    async def source() -> AsyncIterator[str]:
        for i in range(10):
            yield f"q{i}"

    got = {}
    async with MockAgent(lambda t: t + "!").run_batch(source(), concurrency=3) as results:
        async for index, env in results:
            got[index] = env.text()
    assert got == {i: f"q{i}!" for i in range(10)}


async def test_a_batch_budget_is_one_account_shared_by_every_task() -> None:
    model = ScriptedModel(lambda request: ScriptedModel.reply("ok"))
    agent = Agent(engine=LLMEngine(model))
    found = {}
    async with agent.run_batch([f"t{i}" for i in range(10)], concurrency=4, budget=Budget(max_requests=3)) as results:
        async for index, env in results:
            found[index] = env
    assert len(found) == 10
    assert sum(env.ok for env in found.values()) == 3
    refused = [env for env in found.values() if not env.ok]
    assert all(env.error is not None and env.error.type == "BudgetExceededError" for env in refused)
    assert len(model.requests) == 3


async def test_resume_skips_what_the_checkpoint_has_and_reads_everything_back(tmp_path: Path) -> None:
    path = tmp_path / "batch.sqlite"
    tasks = [f"t{i}" for i in range(30)]
    first = MockAgent(lambda t: t.upper())
    taken = 0
    # A first run stopped early (as by Ctrl-C): what had finished is kept.
    async with first.run_batch(tasks, concurrency=4, checkpoint=path) as results:
        async for _ in results:
            taken += 1
            if taken == 10:
                break
    stored = dict(read_checkpoint(path))
    assert len(stored) >= 10
    second = MockAgent(lambda t: t.upper())
    async with second.run_batch(tasks, concurrency=4, checkpoint=path) as results:
        rerun = {index async for index, _ in results}
        assert results.skipped == len(stored)
    assert rerun.isdisjoint(stored)
    assert sorted(second.calls) == sorted(tasks[i] for i in rerun)
    everything = dict(read_checkpoint(path))
    assert sorted(everything) == list(range(30))
    assert all(everything[i].text() == f"T{i}" for i in range(30))


async def test_resume_reruns_a_task_whose_text_changed_and_failed_ones(tmp_path: Path) -> None:
    path = tmp_path / "batch.sqlite"
    script = {"boom": ValueError("no"), "*": "fine"}
    async with MockAgent(script).run_batch(["a", "boom", "c"], checkpoint=path) as results:
        async for _ in results:
            pass
    again = MockAgent("fine")
    async with again.run_batch(["a", "boom", "changed"], checkpoint=path) as results:
        async for _ in results:
            pass
    assert sorted(again.calls) == ["boom", "changed"]
    keep_failed = MockAgent("fine")
    async with keep_failed.run_batch(["a", "boom", "changed"], checkpoint=path, retry_failed=False) as results:
        async for _ in results:
            pass
    assert keep_failed.calls == []


async def test_cancelling_the_batch_keeps_every_finished_result(tmp_path: Path) -> None:
    path = tmp_path / "batch.sqlite"
    gate = Gate()
    tasks = [f"t{i}" for i in range(8)]
    finished: set[int] = set()
    with anyio.CancelScope() as scope:
        async with MockAgent(gate).run_batch(tasks, concurrency=4, checkpoint=path) as results:
            await anyio.wait_all_tasks_blocked()
            gate.event("t1").set()
            gate.event("t2").set()
            async for index, _ in results:
                finished.add(index)
                if len(finished) == 2:
                    scope.cancel()  # as Ctrl-C would: t0 and t3 are in flight
    assert finished == {1, 2}
    assert gate.running == 0  # in-flight tasks were cancelled and awaited
    assert sorted(index for index, _ in read_checkpoint(path)) == [1, 2]


def test_sync_batch_returns_the_whole_list_in_order_even_when_resumed(tmp_path: Path) -> None:
    path = tmp_path / "batch.sqlite"
    agent = MockAgent(lambda t: t * 2)
    first = agent.batch(["a", "b"], checkpoint=path)
    assert [env.text() for env in first] == ["aa", "bb"]
    again = MockAgent(lambda t: t * 3)
    envs = again.batch(["a", "b", "c"], checkpoint=path)
    assert [env.text() for env in envs] == ["aa", "bb", "ccc"]
    assert again.calls == ["c"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM results").fetchone() == (3,)


def test_batch_works_for_a_parallel_and_a_chain() -> None:
    panel = Agent.parallel(MockAgent("x", name="a"), MockAgent("y", name="b"))
    envs = panel.batch(["q1", "q2"], concurrency=2)
    assert [len(env) for env in envs] == [2, 2]
    chain = Agent.chain(MockAgent(lambda t: t + "1"), MockAgent(lambda t: t + "2"))
    assert [env.text() for env in chain.batch(["a", "b"])] == ["a12", "b12"]


async def test_progress_writes_log_lines_when_stderr_is_not_a_terminal() -> None:
    out = io.StringIO()
    progress = BatchProgress(3, stream=out, interval=0.0)
    script = {"bad": ValueError("no"), "*": "ok"}
    run = MockAgent(script, cost_usd=0.01).run_batch(["a", "bad", "c"], progress=True)
    run._progress_option = progress  # the display the batch would build, on a StringIO
    async with run as results:
        async for _ in results:
            pass
    lines = out.getvalue().splitlines()
    assert lines and all(line.startswith("batch: ") for line in lines)
    assert "3/3 done" in lines[-1] and "1 failed" in lines[-1] and "0 in flight" in lines[-1]
    assert "$0.0200" in lines[-1] and "tasks/s" in lines[-1]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_log_lines_carry_the_eta_measured_on_the_clock() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = BatchProgress(100, stream=out, interval=5.0, clock=clock)
    ok = MockAgent("ok")("x")
    for _ in range(10):
        progress.start()
    clock.now += 4.0
    progress.finish(ok)  # 4 s since the last line: no line yet
    assert out.getvalue() == ""
    clock.now += 1.0
    progress.finish(ok)  # 2 done in 5 s: 0.4 tasks/s, 98 left -> 245 s
    assert out.getvalue().splitlines() == [
        "batch: 2/100 done, 0 failed, 8 in flight, $0.0000, 0.4 tasks/s, ETA 4m05s"
    ]
    for _ in range(8):
        progress.finish(ok)
    clock.now += 5.0  # 10 done in 10 s: 1 task/s, 90 left
    progress.close()
    assert out.getvalue().splitlines()[-1].endswith("10/100 done, 0 failed, 0 in flight, $0.0000, 1.0 tasks/s, ETA 1m30s")


async def _batch_log(tasks: object, **options: object) -> list[str]:
    """The log lines of ``run_batch(tasks, progress=True, **options)`` with stderr not a terminal."""
    out = io.StringIO()
    run = MockAgent("ok").run_batch(tasks, progress=True, **options)  # type: ignore[arg-type]
    assert run._progress_option is True
    with mock.patch.object(sys, "stderr", out):
        async with run as results:
            async for _ in results:
                pass
    return out.getvalue().splitlines()


async def test_progress_eta_comes_from_len_or_total_and_is_absent_otherwise() -> None:
    def generator() -> Iterator[str]:
        yield from ["a", "b", "c"]

    assert re.fullmatch(r"batch: 3/3 done, .*, ETA 0s", (await _batch_log(["a", "b", "c"]))[-1])
    assert re.fullmatch(r"batch: 3/3 done, .*, ETA 0s", (await _batch_log(generator(), total=3))[-1])
    unknown = (await _batch_log(generator()))[-1]
    assert unknown.startswith("batch: 3 done, ") and "ETA" not in unknown


@pytest.mark.parametrize("total", [-1, 1.5, "3", True])
def test_total_must_be_a_whole_number(total: object) -> None:
    with pytest.raises(ConfigurationError, match="total must be a whole number >= 0"):
        MockAgent("ok").run_batch(["a"], total=total)  # type: ignore[arg-type]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_rich_bar_on_a_terminal() -> None:
    out = Terminal()
    progress = BatchProgress(4, stream=out)
    assert progress._rich is not None  # rich, not log lines
    for _ in range(4):
        progress.start()
        progress.finish(MockAgent("ok")("x"))
    progress.close()
    text = out.getvalue()
    assert "4/4" in text and "0 failed" in text


async def test_a_checkpoint_that_cannot_be_written_is_reported_when_the_batch_closes(tmp_path: Path) -> None:
    path = tmp_path / "batch.sqlite"
    got = []
    with pytest.raises(sqlite3.OperationalError):
        async with MockAgent("ok").run_batch([f"t{i}" for i in range(20)], concurrency=2, checkpoint=path) as results:
            with sqlite3.connect(path) as conn:
                conn.execute("DROP TABLE results")  # every later write fails
            async for index, _ in results:
                got.append(index)
    assert sorted(got) == list(range(20))  # the batch itself ran to the end

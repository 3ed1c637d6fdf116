"""verbose=True prints the interleaved trace of the tutorial seed."""

from __future__ import annotations

import re

import anyio
import pytest

from lazybridge import Agent
from lazybridge.testing import MockAgent

pytestmark = pytest.mark.anyio


def seed_panel(**kwargs: object) -> Agent | object:
    a = MockAgent(
        "Agent frameworks fall into three camps: graph-based, role-based and loop-based.",
        name="claude_view", model="claude-haiku-4-5", cost_usd=0.00009, delay=0.1,
    )
    b = MockAgent(
        "The trade-offs centre on flexibility versus determinism.",
        name="gpt_view", model="gpt-5.4-mini", cost_usd=0.00012, delay=0.01,
    )
    c = MockAgent(
        "You can think of agent frameworks along two axes: control and cost.",
        name="gemini_view", model="gemini-3-flash-preview", cost_usd=0.00008, delay=0.05,
    )
    return Agent.parallel(a, b, c, **kwargs)  # type: ignore[arg-type]


class _Finished:
    """A session-like sink that sets ``event`` when its agent's run has finished (its lines are printed by then)."""

    def __init__(self) -> None:
        self.event = anyio.Event()

    def emit(self, event: object) -> None:
        if getattr(event, "kind", None) == "agent_finish":
            self.event.set()


class _Script:
    """Replies that finish in a scripted order: the first once every branch has started, each next one after the
    previous branch's finish event (so its lines are printed)."""

    def __init__(self, branches: int) -> None:
        self.branches = branches
        self.started = 0
        self.all_started = anyio.Event()

    def after(self, previous: _Finished | None, text: str) -> object:
        async def reply(task: str) -> str:
            self.started += 1
            if self.started == self.branches:
                self.all_started.set()
            await (previous.event if previous is not None else self.all_started).wait()
            return text

        return reply


async def test_verbose_parallel_prints_the_seed_trace(capsys: pytest.CaptureFixture[str]) -> None:
    # The seed's branches finish gpt, gemini, claude (10 / 50 / 100 ms in the
    # tutorial); here each waits for the previous one's finish event instead of
    # a delay, so the completion order is fixed whatever the machine's load.
    gpt_done, gemini_done, script = _Finished(), _Finished(), _Script(3)
    claude = MockAgent(
        script.after(gemini_done, "Agent frameworks fall into three camps: graph-based, role-based and loop-based."),
        name="claude_view", model="claude-haiku-4-5", cost_usd=0.00009,
    )
    gpt = MockAgent(
        script.after(None, "The trade-offs centre on flexibility versus determinism."),
        name="gpt_view", model="gpt-5.4-mini", cost_usd=0.00012, session=gpt_done,  # type: ignore[arg-type]
    )
    gemini = MockAgent(
        script.after(gpt_done, "You can think of agent frameworks along two axes: control and cost."),
        name="gemini_view", model="gemini-3-flash-preview", cost_usd=0.00008, session=gemini_done,  # type: ignore[arg-type]
    )
    panel = Agent.parallel(claude, gpt, gemini, verbose=True)
    env = await panel.run("What are the trade-offs of agent frameworks in 2026?")
    lines = capsys.readouterr().out.splitlines()

    assert lines[0] == "[parallel ▶ 3 branches]"
    assert set(lines[1:4]) == {
        "[branch claude_view model=claude-haiku-4-5] started",
        "[branch gpt_view model=gpt-5.4-mini] started",
        "[branch gemini_view model=gemini-3-flash-preview] started",
    }
    max_latency = round(max(b.metadata.latency_ms for b in env))
    assert re.fullmatch(r"\[done\] branches=3 total_cost=\$0\.00029 max_latency=(\d+)ms", lines[-1])
    assert abs(int(re.findall(r"(\d+)ms", lines[-1])[0]) - max_latency) <= 1
    body = lines[4:-1]
    assert len(body) == 6
    for name, first_words, cost in [
        ("claude_view", "Agent frameworks fall into", "0.00009"),
        ("gpt_view", "The trade-offs centre on", "0.00012"),
        ("gemini_view", "You can think of agent", "0.00008"),
    ]:
        own = [line for line in body if line.startswith(f"[branch {name}]")]
        assert len(own) == 2
        assert own[0].startswith(f"[branch {name}] assistant: {first_words}")
        assert own[1] == f"[branch {name}] done cost=${cost}"
    # Each branch's two lines come together, in completion order (not the panel's order).
    assert [line.split("]")[0] for line in body] == [
        "[branch gpt_view", "[branch gpt_view",
        "[branch gemini_view", "[branch gemini_view",
        "[branch claude_view", "[branch claude_view",
    ]


async def test_long_answers_are_abbreviated(capsys: pytest.CaptureFixture[str]) -> None:
    agent = MockAgent("word " * 40, name="talker", verbose=True)
    await agent.run("t")
    out = capsys.readouterr().out.splitlines()
    assistant = next(line for line in out if "assistant:" in line)
    assert assistant.endswith(" ...") and len(assistant) < 100


async def test_a_failed_branch_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    panel = Agent.parallel(
        MockAgent(RuntimeError("quota gone"), name="broke"), MockAgent("fine", name="ok"), verbose=True
    )
    await panel.run("t")
    out = capsys.readouterr().out
    assert "[branch broke] failed RuntimeError: quota gone" in out


async def test_quiet_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    await seed_panel().run("t")  # type: ignore[attr-defined]
    assert capsys.readouterr().out == ""


async def test_nested_verbose_agents_print_each_line_once(capsys: pytest.CaptureFixture[str]) -> None:
    inner = MockAgent("hello there", name="inner", verbose=True)
    await Agent.parallel(inner, verbose=True).run("t")
    out = capsys.readouterr().out.splitlines()
    assert out.count("[branch inner] assistant: hello there") == 1


async def test_the_trace_masks_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "sk-ant-api03-" + "x" * 40
    agent = MockAgent(f"your key is {secret}", name="leaky", verbose=True)
    await agent.run(f"use Bearer {secret}")
    out = capsys.readouterr().out
    assert "assistant: your key is" in out
    assert secret not in out


async def test_the_same_agent_twice_traces_under_two_labels(capsys: pytest.CaptureFixture[str]) -> None:
    sampler = MockAgent("same", name="a")
    await Agent.parallel(sampler, sampler, verbose=True).run("t")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[parallel ▶ 2 branches]"
    assert sorted(line for line in lines if line.endswith("started")) == [
        "[branch a#1 model=mock-model] started",
        "[branch a#2 model=mock-model] started",
    ]
    assert "[branch a#1] done cost=$0.00000" in lines and "[branch a#2] done cost=$0.00000" in lines


async def test_a_nested_parallels_branches_trace_with_their_path(capsys: pytest.CaptureFixture[str]) -> None:
    inner = Agent.parallel(MockAgent("x", name="a"), MockAgent("y", name="b"), name="inner")
    await Agent.parallel(inner, MockAgent("z", name="c"), name="outer", verbose=True).run("t")
    lines = capsys.readouterr().out.splitlines()
    assert "[branch inner/a model=mock-model] started" in lines
    assert "[branch inner/b] done cost=$0.00000" in lines
    assert not any(line.startswith("[branch a") for line in lines)


async def test_a_verbose_agent_in_a_quiet_panel_prints_its_whole_trace(capsys: pytest.CaptureFixture[str]) -> None:
    loud = MockAgent("answer from the loud one", name="loud", verbose=True)
    await Agent.parallel(loud, MockAgent("quiet answer", name="quiet")).run("t")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[loud model=mock-model] started"
    assert lines[1] == "[loud] assistant: answer from the loud one"
    assert re.fullmatch(r"\[loud\] done cost=\$0\.00000 latency=\d+ms", lines[2])
    assert len(lines) == 3  # nothing of the quiet sibling

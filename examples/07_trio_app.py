"""LazyBridge inside a Trio application: structured concurrency all the way down.

A nursery runs two panels side by side with ``await panel.run_branches(...)``;
before the event loop ends, ``await lazybridge.aclose()`` closes the pooled
HTTP clients.

Run: python examples/07_trio_app.py
(Real APIs when ANTHROPIC_API_KEY and OPENAI_API_KEY are set.)
"""

from __future__ import annotations

import trio
from _support import providers

import lazybridge
from lazybridge import Agent, Envelope, LLMEngine, ParallelAgent


def make_panel() -> ParallelAgent:
    return Agent.parallel(
        Agent(engine=LLMEngine("claude-haiku-4-5"), name="claude_view"),
        Agent(engine=LLMEngine("gpt-5.4-mini"), name="gpt_view"),
        concurrency_limit=2,
        step_timeout=60.0,
    )


async def ask(panel: ParallelAgent, question: str, answers: dict[str, list[Envelope]]) -> None:
    answers[question] = await panel.run_branches(question)


async def app() -> int:
    panel = make_panel()
    questions = ["Is Rust memory safe?", "Is Python dynamically typed?"]
    answers: dict[str, list[Envelope]] = {}
    try:
        async with trio.open_nursery() as nursery:
            for question in questions:
                nursery.start_soon(ask, panel, question, answers)
    finally:
        await lazybridge.aclose()
    for question in questions:
        print(question)
        for branch in answers[question]:
            print(f"  [{branch.metadata.agent}] {branch.text()[:80]}")
    ok = all(b.ok for branches in answers.values() for b in branches)
    print(f"trio app done: {len(answers)} questions x 2 branches, all ok={ok}")
    return 0 if ok else 1


def main() -> int:
    with providers("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        return trio.run(app)


if __name__ == "__main__":
    raise SystemExit(main())

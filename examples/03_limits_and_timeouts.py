"""Production knobs: ``concurrency_limit`` caps simultaneous branches, ``step_timeout`` caps each branch.

Run: python examples/03_limits_and_timeouts.py   (real API when ANTHROPIC_API_KEY is set)
"""

from __future__ import annotations

import time

from _support import Reply, providers

from lazybridge import Agent, LLMEngine

LATENCY = 0.3  # the fake server's seconds per answer


def main() -> int:
    with providers("ANTHROPIC_API_KEY", latency=LATENCY) as fake:
        # 1) Four branches, at most two at once: about two answer-times of wall clock, not one.
        agents = [Agent(engine=LLMEngine("claude-haiku-4-5"), name=f"worker_{i}") for i in range(4)]
        panel = Agent.parallel(*agents, concurrency_limit=2)
        started = time.perf_counter()
        env = panel("Name one prime number.")
        wall = time.perf_counter() - started
        print(f"concurrency_limit=2: {len(env.payload)} branches, ok={env.ok}, wall {wall:.2f}s")

        # 2) A branch that is too slow is cancelled; its slot holds an error, the others complete.
        if fake is not None:  # offline: make the "slow" model really slow
            fake.push(Reply(text="too late", delay=5.0), model="claude-opus-4-7")
        fast = Agent(engine=LLMEngine("claude-haiku-4-5"), name="fast")
        slow = Agent(engine=LLMEngine("claude-opus-4-7", max_tokens=4000), name="slow")
        panel = Agent.parallel(fast, slow, step_timeout=1.0)
        env = panel("Write a detailed essay on the history of computing.")

    for branch in env.payload:
        if branch.ok:
            print(f"[{branch.metadata.agent}] ok in {branch.metadata.latency_ms:.0f}ms")
        else:
            assert branch.error is not None
            print(f"[{branch.metadata.agent}] {branch.error.type}: {branch.error.message}")
    print(f"wrapper ok={env.ok} (False when any branch failed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

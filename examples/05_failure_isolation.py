"""Failure isolation: one branch fails, the others still answer; the call never raises.

The failing branch points at a backend that is down (a closed loopback port),
so this example fails the same way online and offline.

Run: python examples/05_failure_isolation.py   (real API when ANTHROPIC_API_KEY is set)
"""

from __future__ import annotations

from _support import providers

from lazybridge import Agent, LLMEngine

DOWN = "http://127.0.0.1:9"  # the discard port: nothing listens there


def main() -> int:
    with providers("ANTHROPIC_API_KEY"):
        panel = Agent.parallel(
            Agent(engine=LLMEngine("claude-haiku-4-5"), name="primary"),
            Agent(engine=LLMEngine("claude-haiku-4-5", base_url=DOWN, max_retries=0), name="broken"),
            Agent(engine=LLMEngine("claude-haiku-4-5"), name="backup"),
        )
        env = panel("Summarise the CAP theorem in one sentence.")

    for branch in env.payload:  # always one envelope per branch, in input order
        if not branch.ok:
            assert branch.error is not None
            print(f"branch {branch.metadata.agent} failed ({branch.error.type}): {branch.error.message}")
        else:
            print(f"branch {branch.metadata.agent} ok: {branch.text()[:80]}")
    assert env.error is not None  # the first branch error is also the wrapper's error
    print(f"wrapper: ok={env.ok}, error={env.error.type}; {sum(b.ok for b in env.payload)} of 3 answered")
    return 0 if sum(b.ok for b in env.payload) == 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())

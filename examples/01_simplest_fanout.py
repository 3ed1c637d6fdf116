"""The simplest fan-out: the same question to three model families at once.

Run: python examples/01_simplest_fanout.py
(Uses the real APIs when ANTHROPIC_API_KEY, OPENAI_API_KEY and GEMINI_API_KEY
are set, otherwise the embedded fake provider server.)
"""

from __future__ import annotations

from _support import providers

from lazybridge import Agent, LLMEngine

KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY")


def main() -> int:
    with providers(*KEYS):
        researcher_a = Agent(engine=LLMEngine("claude-haiku-4-5"), name="claude_view")
        researcher_b = Agent(engine=LLMEngine("gpt-5.4-mini"), name="gpt_view")
        researcher_c = Agent(engine=LLMEngine("gemini-3-flash-preview"), name="gemini_view")
        panel = Agent.parallel(researcher_a, researcher_b, researcher_c)

        env = panel("What are the trade-offs of agent frameworks in 2026?")

    print(env.text())  # the labelled join: [claude_view] ... [gpt_view] ... [gemini_view] ...
    print()
    for branch in env.payload:  # one envelope per branch, in input order
        print(f"{branch.metadata.agent:<12} {branch.metadata.run_id}  ${branch.metadata.cost_usd:.5f}")
    print(f"total cost ${env.metadata.cost_usd:.5f}, wall {env.metadata.latency_ms:.0f}ms")
    return 0 if env.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""``verbose=True``: every branch's events, interleaved live, each line prefixed with its branch.

Run: python examples/04_verbose_trace.py
(Real APIs when ANTHROPIC_API_KEY, OPENAI_API_KEY and GEMINI_API_KEY are set.)
"""

from __future__ import annotations

from _support import providers

from lazybridge import Agent, LLMEngine


def main() -> int:
    with providers("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", latency=0.2):
        panel = Agent.parallel(
            Agent(engine=LLMEngine("claude-haiku-4-5"), name="claude_view"),
            Agent(engine=LLMEngine("gpt-5.4-mini"), name="gpt_view"),
            Agent(engine=LLMEngine("gemini-3-flash-preview"), name="gemini_view"),
            verbose=True,
        )
        env = panel("What are the trade-offs of agent frameworks in 2026?")
    # The trace above ends with "[done] branches=3 total_cost=... max_latency=...ms".
    print(f"\nall branches ok: {env.ok}")
    return 0 if env.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

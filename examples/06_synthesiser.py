"""Aggregation: regional briefings fanned out, then joined by a synthesiser agent.

``run_branches`` gives the typed per-branch envelopes; we build the
synthesiser's input ourselves from them (model-labelled), instead of using
the default ``[name]`` join.

Run: python examples/06_synthesiser.py
(Real APIs when DEEPSEEK_API_KEY and ANTHROPIC_API_KEY are set.)
"""

from __future__ import annotations

import asyncio

from _support import RecordedRequest, providers

import lazybridge
from lazybridge import Agent, Envelope, LLMEngine, ParallelAgent

REGIONS = ("us", "eu", "asia")


def fake_model(request: RecordedRequest) -> str:
    if "global summary" in str(request.body):
        regions = [r for r in REGIONS if f"[{r} via" in request.last_user_text]
        return f"Global summary drawn from {len(regions)} regional briefings: {', '.join(regions)}."
    for region in REGIONS:
        if f"{region.upper()} policy" in str(request.body):
            return f"{region.upper()} briefing: regulators published new AI guidance this week."
    return "briefing"


def join_branches(envs: list[Envelope]) -> str:
    return "\n\n".join(f"[{e.metadata.agent} via {e.metadata.model}] {e.text()}" for e in envs if e.ok)


async def fan_out(multi: ParallelAgent, task: str) -> list[Envelope]:
    try:
        return await multi.run_branches(task)
    finally:
        await lazybridge.aclose()  # we own this event loop: close its pooled HTTP clients


def main() -> int:
    with providers("DEEPSEEK_API_KEY", "ANTHROPIC_API_KEY", respond=fake_model):
        multi = Agent.parallel(
            *(
                Agent(
                    engine=LLMEngine(
                        "deepseek-v4-flash", system=f"You brief on {region.upper()} policy news."
                    ),
                    name=region,
                )
                for region in REGIONS
            ),
            concurrency_limit=3,
            step_timeout=30.0,
        )
        results = asyncio.run(fan_out(multi, "AI policy news"))
        for branch in results:
            print(f"[{branch.metadata.agent}] {branch.text()[:100]}")

        synthesiser = Agent(
            engine=LLMEngine(
                "claude-opus-4-7", system="Combine the regional briefings into one global summary."
            ),
            name="synth",
        )
        summary = synthesiser(join_branches(results))

    print(f"\nSummary: {summary.text()}")
    total = sum(b.metadata.cost_usd for b in results) + summary.metadata.cost_usd
    print(f"cost: branches + synthesiser = ${total:.5f}")
    return 0 if summary.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

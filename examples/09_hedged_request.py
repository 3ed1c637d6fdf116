"""A hedged request: the same question to two providers, the first answer wins.

The primary (Claude) is asked at once; the hedge (GPT) only if no answer has
arrived after ``stagger`` seconds.  Whichever answers first wins, and the
other request is cancelled -- its HTTP connection closed -- so a hedge costs
a second request only when the first is slow.

Run: python examples/09_hedged_request.py
(Uses the real APIs when ANTHROPIC_API_KEY and OPENAI_API_KEY are set,
otherwise the embedded fake provider server, where Claude is made slow today.)
"""

from __future__ import annotations

from _support import RecordedRequest, Reply, providers

from lazybridge import Agent, LLMEngine

KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")


def slow_claude(request: RecordedRequest) -> Reply:
    """The fake server's answers: Claude takes 5 s (a slow tail), GPT answers at once."""
    text = f"{request.model} says: {request.last_user_text}"
    return Reply(text=text, delay=5.0 if request.model.startswith("claude") else 0.0)


def main() -> int:
    with providers(*KEYS, respond=slow_claude) as fake:
        primary = Agent(engine=LLMEngine("claude-haiku-4-5"), name="claude")
        hedge = Agent(engine=LLMEngine("gpt-5.4-mini"), name="gpt")
        ask = Agent.race(primary, hedge, stagger=0.5, name="hedged")

        env = ask("In one sentence: why do hedged requests cut tail latency?")
        requests = len(fake.requests) if fake is not None else None

    print(env.text())
    print(f"winner: {env.metadata.winner} ({env.metadata.provider}/{env.metadata.model})")
    print(f"latency {env.metadata.latency_ms:.0f}ms, cost of both requests ${env.metadata.cost_usd:.5f}")
    if requests is not None:
        print(f"requests sent: {requests}")
    return 0 if env.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

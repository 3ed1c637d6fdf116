"""Multi-source search: three search agents with plain-function tools, in parallel, then a synthesiser.

``Agent.chain(Agent.parallel(...), synthesiser)``: the fan-out's labelled join
becomes the synthesiser's task.

Run: python examples/02_search_chain.py   (real API when ANTHROPIC_API_KEY is set)
"""

from __future__ import annotations

from _support import RecordedRequest, Reply, providers

from lazybridge import Agent, LLMEngine


def search_anthropic_docs(query: str) -> str:
    """Search Anthropic's docs portal."""
    return f"[anthropic docs result for {query!r}]"


def search_openai_docs(query: str) -> str:
    """Search OpenAI's platform docs."""
    return f"[openai docs result for {query!r}]"


def search_google_docs(query: str) -> str:
    """Search Google AI docs."""
    return f"[google ai docs result for {query!r}]"


SEARCHERS = {  # agent name -> (system prompt, tool)
    "anthropic_search": ("Look up Anthropic-specific facts.", search_anthropic_docs),
    "openai_search": ("Look up OpenAI-specific facts.", search_openai_docs),
    "google_search": ("Look up Google/Gemini-specific facts.", search_google_docs),
}


def fake_model(request: RecordedRequest) -> Reply | str:
    """Offline stand-in: each searcher calls its tool once, then reports; the synthesiser summarises."""
    body = str(request.body)
    if "synthesise" in body:
        return "Synthesis: " + request.last_user_text.replace("\n", " ")
    for system, tool in SEARCHERS.values():
        if system in body:
            if "docs result for" in body:  # the tool already answered
                return f"Found: {tool.__name__} reports its provider's structured-output mechanism."
            return Reply.tool_call(tool.__name__, {"query": "structured output"})
    return "?"


def main() -> int:
    with providers("ANTHROPIC_API_KEY", respond=fake_model):
        searchers = [
            Agent(engine=LLMEngine("claude-haiku-4-5", system=system), tools=[tool], name=name)
            for name, (system, tool) in SEARCHERS.items()
        ]
        fanout = Agent.parallel(*searchers, verbose=True)
        synthesiser = Agent(
            engine=LLMEngine(
                "claude-opus-4-7",
                system="You synthesise multi-source research into one tight paragraph. "
                "Cite each source by its label.",
            ),
            name="synthesiser",
        )
        pipeline = Agent.chain(fanout, synthesiser)

        env = pipeline("How does each provider implement structured output?")

    print("\nSynthesised answer:")
    print(env.text() if env.ok else f"failed: {env.error}")
    print(f"cost ${env.metadata.cost_usd:.5f}")
    return 0 if env.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

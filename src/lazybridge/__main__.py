"""``python -m lazybridge demo``: the multi-source search pipeline from the docs, end to end.

(``python -m lazybridge parallel --model M --model M2 "question"`` fans one
question out to several models: see :mod:`lazybridge._cli`.)

Three search agents are fanned out with ``Agent.parallel(verbose=True)`` and
their labelled join goes to a synthesiser through ``Agent.chain``.  Every
agent is a real :class:`~lazybridge.engines.llm.LLMEngine` speaking HTTP:
to Anthropic's API when ``ANTHROPIC_API_KEY`` is set, otherwise to the fake
provider server (``lazybridge.testing``) started on a loopback port.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from ._cli import add_parallel_parser, run_parallel

QUESTION = "How does each provider implement structured output?"

SEARCHERS = {
    "anthropic_search": "Look up Anthropic-specific facts.",
    "openai_search": "Look up OpenAI-specific facts.",
    "google_search": "Look up Google/Gemini-specific facts.",
}

SYNTHESISER = "You synthesise multi-source research into one tight paragraph. Cite each source by its label."

# What the fake server answers, keyed by a word of the system prompt.
_FAKE_FACTS = {
    "Anthropic": "Anthropic constrains Claude's answer with output_config.format (a JSON Schema), "
    "or by forcing a single tool call whose input_schema is the schema.",
    "OpenAI": "OpenAI takes response_format {type: json_schema, strict: true} on Chat Completions "
    "(text.format on the Responses API) and decodes against the schema.",
    "Google": "Gemini sets generationConfig.responseMimeType to application/json with a "
    "responseJsonSchema, and returns the JSON as the candidate's text.",
}


def _fake_answer(request: object) -> str:
    body = str(getattr(request, "body", ""))
    for word, fact in _FAKE_FACTS.items():
        if f"Look up {word}" in body:
            return fact
    return (
        "All three providers enforce a JSON Schema on the model's answer, differing only in where it goes: "
        "Anthropic in output_config.format or a forced tool [anthropic_search], OpenAI in a strict "
        "json_schema response_format [openai_search], and Gemini in responseJsonSchema with an "
        "application/json MIME type [google_search]."
    )


def _pipeline(base_url: str | None, api_key: str | None) -> object:
    from . import Agent
    from .engines.llm import LLMEngine

    def engine(model: str, system: str) -> LLMEngine:
        return LLMEngine(model, system=system, base_url=base_url, api_key=api_key)

    searchers = [
        Agent(engine=engine("claude-haiku-4-5", system), name=name) for name, system in SEARCHERS.items()
    ]
    fanout = Agent.parallel(*searchers, verbose=True)
    synthesiser = Agent(engine=engine("claude-opus-4-7", SYNTHESISER), name="synthesiser")
    return Agent.chain(fanout, synthesiser)


def demo(*, fake: bool = False, latency: float = 0.3) -> int:
    """Run the demo; 0 on success."""
    real = bool(os.environ.get("ANTHROPIC_API_KEY")) and not fake
    print("LazyBridge demo: multi-source search (Agent.parallel inside Agent.chain)")
    print(f"Question: {QUESTION}\n")
    if real:
        print("Providers: the real Anthropic API (ANTHROPIC_API_KEY is set)\n")
        return _run(_pipeline(None, None))
    try:
        from .testing import FakeProvider, serve_fake_provider
    except ImportError as exc:  # pragma: no cover - depends on the environment
        print(f"The fake provider server needs the testing extra: {exc}", file=sys.stderr)
        return 1
    server = FakeProvider(respond=_fake_answer, latency=latency)
    try:
        with serve_fake_provider(server) as base_url:
            print(
                f"Providers: the fake provider server on {base_url} ({latency:g}s per answer); "
                "set ANTHROPIC_API_KEY to use the real API\n"
            )
            return _run(_pipeline(base_url, "demo-key-not-a-secret"))
    except ImportError as exc:  # pragma: no cover - uvicorn missing
        print(
            f"The fake provider server needs uvicorn (pip install 'lazybridge[testing]'): {exc}",
            file=sys.stderr,
        )
        return 1


def _run(pipeline: object) -> int:
    from .agent import Agent

    assert isinstance(pipeline, Agent)
    started = time.perf_counter()
    env = pipeline(QUESTION)
    wall = time.perf_counter() - started
    print()
    if not env.ok:
        assert env.error is not None
        print(f"Failed: {env.error.type}: {env.error.message}")
        return 1
    meta = env.metadata
    print(f"Answer ({meta.model}):\n{env.text()}\n")
    print(
        f"4 model calls, {meta.input_tokens} tokens in, {meta.output_tokens} out, "
        f"cost ${meta.cost_usd:.5f}, wall {wall:.2f}s"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lazybridge", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    demo_parser = commands.add_parser("demo", help="run the multi-source search demo")
    demo_parser.add_argument("--fake", action="store_true", help="use the fake server even if keys are set")
    demo_parser.add_argument("--latency", type=float, default=0.3, help="fake server seconds per answer")
    add_parallel_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(fake=args.fake, latency=args.latency)
    if args.command == "parallel":
        return run_parallel(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())

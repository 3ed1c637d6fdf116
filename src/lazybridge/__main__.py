"""The ``lazybridge`` command (also ``python -m lazybridge``); ``demo`` is the search pipeline from the docs.

``lazybridge parallel --model M --model M2 "question"`` fans one question out
to several models: see ``lazybridge._cli``.

Three search agents, each with its search tool, are fanned out with
``Agent.parallel(verbose=True)`` and their labelled join goes to a
synthesiser through ``Agent.chain``.  Every
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
from typing import TYPE_CHECKING

from . import events
from ._cli import _seconds, add_parallel_parser, run_parallel
from ._cli_batch import add_batch_parser, run_batch_command

if TYPE_CHECKING:
    from .agent import Agent
    from .session import Session
    from .testing import RecordedRequest, Reply

QUESTION = "How does each provider implement structured output?"

def search_anthropic_docs(query: str) -> str:
    """Search Anthropic's docs portal."""
    return f"[anthropic docs result for {query!r}]"


def search_openai_docs(query: str) -> str:
    """Search OpenAI's platform docs."""
    return f"[openai docs result for {query!r}]"


def search_google_docs(query: str) -> str:
    """Search Google AI docs."""
    return f"[google ai docs result for {query!r}]"


# name -> (system prompt, search tool): the seed's three search agents.
SEARCHERS = {
    "anthropic_search": ("Look up Anthropic-specific facts.", search_anthropic_docs),
    "openai_search": ("Look up OpenAI-specific facts.", search_openai_docs),
    "google_search": ("Look up Google/Gemini-specific facts.", search_google_docs),
}

SYNTHESISER = "You synthesise multi-source research into one tight paragraph. Cite each source by its label."

# What the fake server answers, keyed by a word of the system prompt: each
# search agent first calls its search tool, then answers from the result.
_FAKE_FACTS = {
    "Anthropic": ("search_anthropic_docs", "Anthropic constrains Claude's answer with output_config.format "
                  "(a JSON Schema), or by forcing a single tool call whose input_schema is the schema."),
    "OpenAI": ("search_openai_docs", "OpenAI takes response_format {type: json_schema, strict: true} on "
               "Chat Completions (text.format on the Responses API) and decodes against the schema."),
    "Google": ("search_google_docs", "Gemini sets generationConfig.responseMimeType to application/json "
               "with a responseJsonSchema, and returns the JSON as the candidate's text."),
}


def _tool_result(body: object) -> str | None:
    """The tool result the (Anthropic-format) request sends back, if any."""
    messages = body.get("messages") if isinstance(body, dict) else None
    last = messages[-1] if isinstance(messages, list) and messages else None
    content = last.get("content") if isinstance(last, dict) else None
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict) and block.get("type") == "tool_result":
            return str(block.get("content"))
    return None


def _fake_answer(request: RecordedRequest) -> Reply | str:
    from .testing import Reply

    body = str(request.body)
    for word, (tool, fact) in _FAKE_FACTS.items():
        if f"Look up {word}" in body:
            found = _tool_result(request.body)
            if found is None:
                return Reply.tool_call(tool, {"query": request.last_user_text})
            return f"{fact} (from {found})"
    return (
        "All three providers enforce a JSON Schema on the model's answer, differing only in where it goes: "
        "Anthropic in output_config.format or a forced tool [anthropic_search], OpenAI in a strict "
        "json_schema response_format [openai_search], and Gemini in responseJsonSchema with an "
        "application/json MIME type [google_search]."
    )


def _pipeline(base_url: str | None, api_key: str | None, session: Session) -> Agent:
    from . import Agent
    from .engines.llm import LLMEngine

    def engine(model: str, system: str) -> LLMEngine:
        return LLMEngine(model, system=system, base_url=base_url, api_key=api_key)

    searchers = [
        Agent(engine=engine("claude-haiku-4-5", system), tools=[search], name=name)
        for name, (system, search) in SEARCHERS.items()
    ]
    fanout = Agent.parallel(*searchers, verbose=True)
    synthesiser = Agent(engine=engine("claude-opus-4-7", SYNTHESISER), name="synthesiser")
    return Agent.chain(fanout, synthesiser, session=session)


def demo(*, fake: bool = False, latency: float = 0.3) -> int:
    """Run the demo; 0 on success."""
    real = bool(os.environ.get("ANTHROPIC_API_KEY")) and not fake
    print("LazyBridge demo: multi-source search (Agent.parallel inside Agent.chain)")
    print(
        "Three search agents, all on claude-haiku-4-5, each named after the docs its tool searches;\n"
        "a synthesiser on claude-opus-4-7 joins their answers."
    )
    print(f"Question: {QUESTION}\n")
    if real:
        print("Providers: the real Anthropic API (ANTHROPIC_API_KEY is set)\n")
        return _run(None, None)
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
            return _run(base_url, "demo-key-not-a-secret")
    except ImportError as exc:  # pragma: no cover - uvicorn missing
        print(
            f"The fake provider server needs uvicorn (pip install 'lazybridge[testing]'): {exc}",
            file=sys.stderr,
        )
        return 1


def _run(base_url: str | None, api_key: str | None) -> int:
    from .session import Session

    with Session() as session:
        started = time.perf_counter()
        env = _pipeline(base_url, api_key, session)(QUESTION)
        wall = time.perf_counter() - started
        tool_calls = len(session.events.query(events.TOOL_CALL))
        usage = session.usage_summary().total
    print()
    if not env.ok:
        assert env.error is not None
        print(f"Failed: {env.error.type}: {env.error.message}")
        return 1
    meta = env.metadata
    print(f"Answer ({meta.model}):\n{env.text()}\n")
    print(
        f"{usage.model_calls} model calls, {tool_calls} tool calls, {meta.input_tokens} tokens in, "
        f"{meta.output_tokens} out, cost ${meta.cost_usd:.5f}, wall {wall:.2f}s"
    )
    return 0


DESCRIPTION = "LazyBridge from the command line: LLM agents on a structured-concurrency runtime."

EPILOG = """\
commands:
  demo       a multi-source search pipeline (Agent.parallel inside Agent.chain);
             real Anthropic API when ANTHROPIC_API_KEY is set, else a fake
             provider server on loopback (no key, no network)
  parallel   ask several models the same question concurrently; --fake answers
             from a fake provider server instead of the real APIs
  batch      run every task of a JSONL file through one or more models, with
             a concurrency bound, progress, --resume and --budget-usd

  "lazybridge COMMAND --help" describes a command's options.

exit codes:
  0  success (every branch answered)
  1  the run failed (some branch or stage returned an error)
  2  usage error: unknown command, flag or model, or a bad flag value
  130  interrupted (batch: every finished result is written first)
"""


def _prog() -> str:
    """``lazybridge`` for the console script, ``python -m lazybridge`` when run with -m."""
    return "python -m lazybridge" if os.path.basename(sys.argv[0]) == "__main__.py" else "lazybridge"


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (every command, --version)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("lazybridge")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        installed = "unknown"
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo_parser = commands.add_parser(
        "demo",
        help="run the multi-source search demo",
        description="Three search agents in Agent.parallel, joined by a synthesiser in Agent.chain.",
        allow_abbrev=False,
    )
    demo_parser.add_argument("--fake", action="store_true", help="use the fake server even if keys are set")
    demo_parser.add_argument(
        "--latency", type=_seconds, default=0.3, metavar="S", help="fake server seconds per answer (default 0.3)"
    )
    add_parallel_parser(commands)
    add_batch_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``lazybridge`` command; returns the exit code (see ``lazybridge --help``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(fake=args.fake, latency=args.latency)
    if args.command == "parallel":
        return run_parallel(args)
    if args.command == "batch":
        return run_batch_command(args)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""``python -m lazybridge parallel``: one question fanned out to several models.

One ``Agent(engine=LLMEngine(model), name=model)`` per ``--model``, run with
``Agent.parallel``.  On a terminal with rich installed (``lazybridge[cli]``)
the answers stream side by side into one panel per model (``_cli_live``,
over ``panel.stream``).  Otherwise human output is the plain trace
(``verbose=True``), the labelled join and one line per branch; ``--json``
prints one JSON object instead.  ``--fake`` serves the fake provider on a loopback port and points
every engine at it, so no key and no network are needed.  ``--base-url``
points every engine at one server instead (a ``compat/`` model needs it:
``--model compat/smollm2 --base-url http://localhost:8080/v1``), and
``--max-tokens`` caps every answer.

Exit codes: 0 every branch answered, 1 some branch failed, 2 usage or
configuration error (unknown model, bad flag value).  On a terminal failed
rows are red (unless ``NO_COLOR`` is set) and answers are wrapped to its
width.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import textwrap
from typing import Any, TextIO

from .errors import AuthenticationError

EXIT_OK = 0
EXIT_BRANCH_FAILED = 1
EXIT_USAGE = 2

_FAKE_KEY = "cli-fake-key-not-a-secret"


PARALLEL_EPILOG = """\
examples:
  lazybridge parallel --fake --model claude-haiku-4-5 --model gpt-5.4-mini "What is 2+3?"
  lazybridge parallel --model compat/smollm2 --base-url http://localhost:8080/v1 "What is 2+3?"

exit codes:
  0  every branch answered
  1  some branch failed (its error is listed on stderr)
  2  usage or configuration error (unknown model, bad flag value)
"""


def add_parallel_parser(commands: Any) -> None:
    """Register the ``parallel`` sub-command on an argparse sub-parsers object."""
    p: argparse.ArgumentParser = commands.add_parser(
        "parallel",
        help="ask several models the same question concurrently",
        description="Fan QUESTION out to one agent per --model with Agent.parallel, then print the "
        "labelled answers and one row per branch (model, status, cost, latency, tokens).",
        epilog=PARALLEL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("question", help="the task every branch receives")
    p.add_argument(
        "--model",
        dest="models",
        action="append",
        metavar="MODEL",
        help="a model per branch (repeat: --model claude-haiku-4-5 --model gpt-5.4-mini)",
    )
    p.add_argument(
        "--concurrency-limit", type=_positive_int, default=None, metavar="N", help="at most N branches at once"
    )
    p.add_argument(
        "--step-timeout", type=_positive_seconds, default=None, metavar="S", help="seconds each branch may run"
    )
    p.add_argument("--system", default=None, metavar="TEXT", help="system prompt for every branch")
    p.add_argument(
        "--base-url",
        default=None,
        metavar="URL",
        help="the server every branch talks to, e.g. http://localhost:8080/v1 for a compat/ model "
        "(default: each provider's own, or its *_BASE_URL variable)",
    )
    p.add_argument(
        "--max-tokens", type=_positive_int, default=None, metavar="N", help="cap each answer at N tokens"
    )
    p.add_argument("--json", action="store_true", help="print one machine-readable JSON object, no trace")
    p.add_argument("--fake", action="store_true", help="answer from the fake provider server on loopback")
    p.add_argument(
        "--latency", type=_seconds, default=0.1, metavar="S", help="with --fake: seconds per answer (default 0.1)"
    )


def _positive_int(text: str) -> int:
    """argparse type of ``--max-tokens``: a whole number >= 1 (argparse names the flag on error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {text!r}")
    return value


def _seconds(text: str) -> float:
    """argparse type of ``--latency``: a finite number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, not {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    """argparse type of ``--step-timeout``: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, not {text!r}")
    return value


def run_parallel(args: argparse.Namespace) -> int:
    """Run the ``parallel`` command for parsed ``args``; the exit code."""
    if not args.models:
        print(
            "usage: lazybridge parallel --model MODEL [--model MODEL ...] QUESTION\n"
            "lazybridge parallel: error: the following arguments are required: --model",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.fake and args.base_url is not None:
        print("lazybridge parallel: error: --fake and --base-url cannot be combined", file=sys.stderr)
        return EXIT_USAGE
    if not args.fake:
        return _fan_out(args, base_url=args.base_url, api_key=None)
    try:
        from .testing import FakeProvider, serve_fake_provider

        with serve_fake_provider(FakeProvider(latency=args.latency)) as base_url:
            if not args.json:
                print(f"(fake provider server on {base_url}, {args.latency:g}s per answer)\n")
            return _fan_out(args, base_url=base_url, api_key=_FAKE_KEY)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        print(
            f"lazybridge parallel: --fake needs uvicorn (pip install 'lazybridge[testing]'): {exc}",
            file=sys.stderr,
        )
        return EXIT_USAGE


def _branch_names(models: list[str]) -> list[str]:
    """The models as agent names, made unique (``m``, ``m#2``, ...) when a model repeats."""
    seen: dict[str, int] = {}
    names = []
    for model in models:
        seen[model] = seen.get(model, 0) + 1
        names.append(model if seen[model] == 1 else f"{model}#{seen[model]}")
    return names


def _fan_out(args: argparse.Namespace, *, base_url: str | None, api_key: str | None) -> int:
    from .agent import Agent
    from .engines.llm import LLMEngine
    from .errors import ConfigurationError
    from .providers.registry import resolve

    def engine(model: str) -> LLMEngine:
        # Checked first with the CLI's own words, so a message names --base-url, not base_url=.
        resolve(model, base_url=base_url, base_url_name="--base-url")
        return LLMEngine(
            model, system=args.system, base_url=base_url, api_key=api_key, max_tokens=args.max_tokens
        )

    names = _branch_names(args.models)
    # On a terminal (and with rich installed) every model answers side by side,
    # live; otherwise -- a pipe, a file, --json -- the plain trace, as before.
    live = not args.json and _live_view_wanted()
    view = session = None
    if live:
        from . import _cli_live
        from .session import Session

        view = _cli_live.LiveView(names, list(args.models))
        # The view learns that a branch finished (cost, latency) from its
        # branch_finish event; max_events=0: nothing is kept in memory.
        session = Session(exporters=[view.on_event], max_events=0)
    try:
        agents = [Agent(engine=engine(model), name=name) for model, name in zip(args.models, names, strict=True)]
        panel = Agent.parallel(
            *agents,
            concurrency_limit=args.concurrency_limit,
            step_timeout=args.step_timeout,
            verbose=not args.json and not live,
            session=session,
        )
    except ConfigurationError as exc:
        print(f"lazybridge parallel: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if live:
        assert view is not None and session is not None
        env = _run_live(panel, args.question, view, session)
        _print_total(env, list(env.payload))
        return EXIT_OK if env.ok else EXIT_BRANCH_FAILED
    env = panel(args.question)
    branches = list(env.payload)
    if args.json:
        print(json.dumps(_as_json(env, branches, args.models), indent=2))
    else:
        _print_human(env, branches, args.models)
    return EXIT_OK if env.ok else EXIT_BRANCH_FAILED


def _live_view_wanted() -> bool:
    """The live view needs a terminal on stdout and rich (the ``lazybridge[cli]`` extra)."""
    from . import _cli_live

    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty()) and _cli_live.available()


def _run_live(panel: Any, question: str, view: Any, session: Any) -> Any:
    from . import _cli_live
    from ._sync import run_sync

    console = _cli_live.make_console()
    try:
        return run_sync(_cli_live.stream_live, panel, question, view, console)
    finally:
        session.close(timeout=5.0)


def _as_json(env: Any, branches: list[Any], models: list[str]) -> dict[str, Any]:
    rows = []
    for branch, model in zip(branches, models, strict=True):
        meta = branch.metadata
        rows.append(
            {
                "agent": meta.agent,
                "model": meta.model or model,
                "ok": branch.ok,
                "text": branch.text() if branch.ok else None,
                "error_type": None if branch.error is None else branch.error.type,
                "error_message": None if branch.error is None else branch.error.message,
                "cost_usd": meta.cost_usd,
                "latency_ms": round(meta.latency_ms, 1),
                "input_tokens": meta.input_tokens,
                "output_tokens": meta.output_tokens,
            }
        )
    return {
        "text": env.text(),
        "ok": env.ok,
        "cost_usd": env.metadata.cost_usd,
        "latency_ms": round(env.metadata.latency_ms, 1),
        "branches": rows,
    }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}es" if word.endswith("ch") else f"{n} {word}s"


def _colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _paint(text: str, code: str, on: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if on else text


def _wrapped(text: str, width: int) -> str:
    """``text`` wrapped to ``width`` columns at word boundaries, its line breaks kept."""
    return "\n".join(
        textwrap.fill(line, width=width, break_long_words=False, break_on_hyphens=False) if line else ""
        for line in text.splitlines()
    )


def _print_human(env: Any, branches: list[Any], models: list[str]) -> None:
    colour_out = _colour(sys.stdout)
    width = max(40, shutil.get_terminal_size().columns - 1)
    print()
    # The join, with each failed branch pointing at the one line below that
    # names its error (the trace above has it too, as it happened).
    for i, branch in enumerate(branches):
        label = branch.metadata.agent or models[i]
        print(_paint(f"[{label}]", "1", colour_out))
        if branch.ok:
            print(_wrapped(branch.text(), width))
        else:
            print(_paint(f"(failed: {branch.error.type}, see below)", "31", colour_out))
        print()
    width_a = max([len("branch")] + [len(b.metadata.agent or "") for b in branches])
    width_m = max([len("model")] + [len(m) for m in models])
    print(f"{'branch':<{width_a}}  {'model':<{width_m}}  status  {'cost':>9}  {'latency':>8}  tokens in/out")
    for branch, model in zip(branches, models, strict=True):
        meta = branch.metadata
        status = _paint("ok    ", "32", colour_out) if branch.ok else _paint("FAILED", "1;31", colour_out)
        print(
            f"{meta.agent or '':<{width_a}}  {meta.model or model:<{width_m}}  {status}  "
            f"{'$' + format(meta.cost_usd, '.5f'):>9}  {meta.latency_ms:>6.0f}ms  {meta.input_tokens}/{meta.output_tokens}"
        )
    _print_total(env, branches)


def _print_total(env: Any, branches: list[Any]) -> None:
    """The totals line on stdout; then, on stderr, each failed branch's error."""
    print(
        f"total: {_plural(len(branches), 'branch')}, cost ${env.metadata.cost_usd:.5f}, "
        f"wall {env.metadata.latency_ms:.0f}ms"
    )
    sys.stdout.flush()
    failed = [b for b in branches if not b.ok]
    if failed:
        colour_err = _colour(sys.stderr)
        print(_paint(f"\n{len(failed)} of {_plural(len(branches), 'branch')} failed:", "1;31", colour_err), file=sys.stderr)
        for branch in failed:
            print(f"  [{branch.metadata.agent}] {branch.error.type}: {branch.error.message}", file=sys.stderr)
        if any(isinstance(b.error.exception, AuthenticationError) for b in failed):
            print(
                "Set the provider's API key named above, or try --fake (no key, no network).", file=sys.stderr
            )

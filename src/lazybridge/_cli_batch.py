"""``lazybridge batch``: a JSONL file of tasks through one model (or a panel of several).

Each input line is a JSON object with a ``task`` string; its other fields are
carried to the output line.  Each output line is one result, written as it
finishes (so not in input order): the input line's ``index`` (from 0), the
``text``, ``ok``, ``error_type`` / ``error_message``, tokens, ``cost_usd`` and
``latency_ms``.  One ``--model`` runs one agent per task; several run
``Agent.parallel`` over them (the text is the labelled join).

Each finished result is also stored in a checkpoint next to the output
(``--checkpoint``, by default ``<output>.checkpoint.sqlite``) before its
line is written.  ``--resume`` first cuts a half-written last line off the
output (a crash mid-write), then skips the indices whose line is in the
output, writes from the checkpoint the results that finished but never
reached the output, and runs the rest: no task runs twice, no line is
written twice.  With no checkpoint, the output alone is enough to resume.
Without ``--resume`` an existing output or checkpoint is refused rather than
overwritten.  A run that goes to the end removes the default checkpoint (the
output then holds everything); one named with ``--checkpoint`` is kept.
Ctrl-C cancels the tasks in flight and exits 130 once every finished result
is written.  Files are written from worker threads, never from the event
loop.

The progress display knows the total -- the input's non-blank lines, counted
in a quick pass that parses nothing, less those already done -- so it shows
an ETA.

Exit codes: 0 every task answered, 1 some task failed (or an input line was
not a task), 2 usage or configuration error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import anyio
import anyio.to_thread

from ._cli import _FAKE_KEY, EXIT_BRANCH_FAILED, EXIT_OK, EXIT_USAGE, _branch_names, _positive_int, _seconds
from ._result_row import result_row

EXIT_INTERRUPTED = 130

#: Output lines written per worker-thread hop.
_FLUSH_EVERY = 64

BATCH_EPILOG = """\
examples:
  lazybridge batch --fake --model claude-haiku-4-5 --input tasks.jsonl --output results.jsonl
  lazybridge batch --model gpt-5.4-mini --model claude-haiku-4-5 --input tasks.jsonl \\
      --output results.jsonl --concurrency 32 --budget-usd 5 --resume

input:  one JSON object a line, with a "task" string: {"task": "Label: my order never came", "id": 7}
output: one JSON object a line, as each task finishes: {"id": 7, "index": 0, "text": "...", "ok": true,
        "error_type": null, "error_message": null, "input_tokens": 12, "output_tokens": 3,
        "cost_usd": 0.00002, "latency_ms": 840.1}

exit codes:
  0    every task answered
  1    some task failed (its line has ok=false and the error)
  2    usage or configuration error (unknown model, bad flag value, output exists without --resume)
  130  interrupted (Ctrl-C): every finished result is written; run again with --resume

resume: each finished result goes to the checkpoint (default OUTPUT.checkpoint.sqlite) before its line is
        written; --resume drops a half-written last line, writes what the checkpoint has and the output
        lacks, and runs only the rest.  The default checkpoint is removed when a run goes to the end.
"""


def _positive_dollars(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number of dollars >= 0, not {text!r}")
    return value


def add_batch_parser(commands: Any) -> None:
    """Register the ``batch`` sub-command on an argparse sub-parsers object."""
    p: argparse.ArgumentParser = commands.add_parser(
        "batch",
        help="run every task of a JSONL file through one or more models",
        description="Run each line's task through one agent per --model (several: Agent.parallel) "
        "with at most --concurrency tasks at once; write one JSON result per line as each finishes.",
        epilog=BATCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("--model", dest="models", action="append", metavar="MODEL", help="a model (repeat for a panel)")
    p.add_argument("--input", required=True, metavar="FILE", help="tasks, one JSON object a line with a 'task' field")
    p.add_argument("--output", required=True, metavar="FILE", help="results, one JSON object a line")
    p.add_argument("--concurrency", type=_positive_int, default=16, metavar="N", help="tasks at once (default 16)")
    p.add_argument(
        "--resume", action="store_true",
        help="skip the indices already in --output or the checkpoint and append the rest",
    )
    p.add_argument(
        "--checkpoint", default=None, metavar="FILE",
        help="where finished results are stored for --resume (default: OUTPUT.checkpoint.sqlite, "
        "removed when the run goes to the end)",
    )
    p.add_argument(
        "--budget-usd", type=_positive_dollars, default=None, metavar="X", help="stop sending once X dollars are spent"
    )
    p.add_argument("--system", default=None, metavar="TEXT", help="system prompt for every task")
    p.add_argument("--max-tokens", type=_positive_int, default=None, metavar="N", help="cap each answer at N tokens")
    p.add_argument("--no-progress", action="store_true", help="no progress display on stderr")
    p.add_argument("--fake", action="store_true", help="answer from the fake provider server on loopback")
    p.add_argument(
        "--latency", type=_seconds, default=0.1, metavar="S", help="with --fake: seconds per answer (default 0.1)"
    )


def run_batch_command(args: argparse.Namespace) -> int:
    """Run the ``batch`` command for parsed ``args``; the exit code."""
    if not args.models:
        return _usage("the following arguments are required: --model")
    if not os.path.exists(args.input):
        return _usage(f"--input {args.input!r} does not exist")
    if os.path.exists(args.output) and not args.resume and os.path.getsize(args.output) > 0:
        return _usage(f"--output {args.output!r} exists: pass --resume to continue it, or remove it")
    checkpoint = _checkpoint_path(args)
    if os.path.exists(checkpoint) and not args.resume:
        return _usage(f"checkpoint {checkpoint!r} exists: pass --resume to continue that run, or remove it")
    if not args.fake:
        return _run(args, base_url=None, api_key=None)
    try:
        from .testing import FakeProvider, serve_fake_provider
    except ImportError as exc:  # pragma: no cover - depends on the environment
        return _usage(f"--fake needs uvicorn (pip install 'lazybridge[testing]'): {exc}")
    with serve_fake_provider(FakeProvider(latency=args.latency)) as base_url:
        return _run(args, base_url=base_url, api_key=_FAKE_KEY)


def _usage(message: str) -> int:
    print(f"lazybridge batch: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _checkpoint_path(args: argparse.Namespace) -> str:
    return str(args.checkpoint) if args.checkpoint is not None else f"{args.output}.checkpoint.sqlite"


def _cut_torn_line(path: str) -> None:
    """Drop a half-written last line (a crash mid-write), so that appending starts on a line of its own."""
    if not os.path.exists(path):
        return
    with open(path, "rb+") as out:
        size = out.seek(0, os.SEEK_END)
        if size == 0:
            return
        out.seek(size - 1)
        if out.read(1) == b"\n":
            return
        # Walk back to the last newline, a block at a time (the torn line is short).
        end = size
        while end > 0:
            start = max(end - 65536, 0)
            out.seek(start)
            block = out.read(end - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                out.truncate(start + cut + 1)
                return
            end = start
        out.truncate(0)


def _done_indices(path: str) -> set[int]:
    """Indices already in an output file (a line that is not a result, like a torn one, is ignored)."""
    done: set[int] = set()
    if not os.path.exists(path):
        return done
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            try:
                done.add(int(json.loads(line)["index"]))
            except (ValueError, KeyError, TypeError):
                continue
    return done


def _count_tasks(path: str) -> int:
    """The input's non-blank lines: a quick pass (~30 ms a 100,000 lines) that parses nothing."""
    count = 0
    with open(path, "rb") as lines:
        for line in lines:
            if not line.isspace():
                count += 1
    return count


def _line_key(line: str) -> str:
    """Which input line a stored result belongs to: a hash of its text (a changed line runs again)."""
    return hashlib.blake2b(line.strip().encode(), digest_size=16).hexdigest()


def _remove_checkpoint(path: str) -> None:
    for name in (path, path + "-wal", path + "-shm"):
        try:
            os.remove(name)
        except FileNotFoundError:
            pass


def _run(args: argparse.Namespace, *, base_url: str | None, api_key: str | None) -> int:
    from ._checkpoint import results_missing_from
    from ._sync import run_sync
    from .agent import Agent
    from .budget import Budget
    from .engines.llm import LLMEngine
    from .errors import ConfigurationError
    from .providers.registry import resolve

    try:
        agents = []
        for model, name in zip(args.models, _branch_names(args.models), strict=True):
            resolve(model, base_url=base_url)
            engine = LLMEngine(model, system=args.system, base_url=base_url, api_key=api_key, max_tokens=args.max_tokens)
            agents.append(Agent(engine=engine, name=name))
        agent = agents[0] if len(agents) == 1 else Agent.parallel(*agents)
    except ConfigurationError as exc:
        return _usage(str(exc))
    budget = None if args.budget_usd is None else Budget(max_cost_usd=args.budget_usd)
    checkpoint = _checkpoint_path(args)
    done: set[int] = set()
    stored: dict[int, tuple[str, Any]] = {}
    if args.resume:
        _cut_torn_line(args.output)
        done = _done_indices(args.output)
        stored = results_missing_from(checkpoint, done)
    total = None if args.no_progress else max(_count_tasks(args.input) - len(done) - len(stored), 0)
    state = _State(stored)
    with open(args.input, encoding="utf-8") as source, open(args.output, "a", encoding="utf-8") as out:
        try:
            run_sync(
                _batch, agent, _tasks(source, done, state), out, state, checkpoint,
                _Options(args.concurrency, budget, not args.no_progress, total),
            )
        except KeyboardInterrupt:
            print(
                f"\nlazybridge batch: interrupted; {state.written} results written to {args.output} "
                "(run again with --resume to finish)",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
    if args.checkpoint is None:
        _remove_checkpoint(checkpoint)  # the output holds everything now
    print(
        f"lazybridge batch: {state.written} results written to {args.output}"
        + (f" ({state.recovered} from the checkpoint)" if state.recovered else "")
        + (f", {len(done)} already there" if done else "")
        + f", {state.failed} failed, cost ${state.cost_usd:.5f}",
        file=sys.stderr,
    )
    return EXIT_OK if state.failed == 0 else EXIT_BRANCH_FAILED


class _Options:
    def __init__(self, concurrency: int, budget: Any, progress: bool, total: int | None) -> None:
        self.concurrency, self.budget, self.progress, self.total = concurrency, budget, progress, total


class _State:
    def __init__(self, stored: dict[int, tuple[str, Any]]) -> None:
        # batch index -> (input line index, line key, the line's other fields, or an error for a bad line):
        # only the tasks in flight are here, so it stays as small as the concurrency.
        self.pending: dict[int, tuple[int, str, dict[str, Any], str | None]] = {}
        #: Results in the checkpoint but not the output (from --resume), by input line index.
        self.stored = stored
        #: Output lines of stored results met in the input, waiting to be written.
        self.recovered_lines: list[str] = []
        self.written = self.failed = self.recovered = 0
        self.cost_usd = 0.0

    def line(self, line_index: int, fields: dict[str, Any], problem: str | None, env: Any) -> str:
        """The output line of a result, counted."""
        self.written += 1
        self.failed += problem is not None or not env.ok
        self.cost_usd += env.metadata.cost_usd
        return json.dumps(_record(line_index, fields, problem, env), ensure_ascii=False) + "\n"


def _tasks(source: TextIO, done: set[int], state: _State) -> Iterator[str | None]:
    """The input's tasks, lazily; a line that is not a task is yielded as ``None`` (an error result).

    Lines already in the output are skipped; a line whose result is in the
    checkpoint (and whose text is unchanged) becomes its output line without running.
    """
    position = 0
    for line_index, line in enumerate(source):
        if not line.strip() or line_index in done:
            continue
        fields: dict[str, Any] = {}
        problem = None
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("task"), str):
                raise ValueError("each line must be a JSON object with a 'task' string")
            fields = {k: v for k, v in record.items() if k != "task"}
        except ValueError as exc:
            problem = f"line {line_index + 1}: {exc}"
        key = _line_key(line)
        stored = state.stored.pop(line_index, None)
        if stored is not None and stored[0] == key:
            state.recovered += 1
            state.recovered_lines.append(state.line(line_index, fields, problem, stored[1]))
            continue
        state.pending[position] = (line_index, key, fields, problem)
        position += 1
        yield None if problem is not None else record["task"]


async def _batch(
    agent: Any, tasks: Iterator[str | None], out: TextIO, state: _State, checkpoint: str, options: _Options
) -> None:
    from ._checkpoint import CheckpointWriter

    lines: list[str] = []
    writer = CheckpointWriter(checkpoint)
    await writer.open()

    async def flush() -> None:
        lines.extend(state.recovered_lines)
        state.recovered_lines.clear()
        chunk, lines[:] = "".join(lines), []
        if chunk:
            await anyio.to_thread.run_sync(_write, out, chunk)

    try:
        async with agent.run_batch(
            tasks, concurrency=options.concurrency, budget=options.budget, progress=options.progress,
            total=options.total,
        ) as results:
            async for index, env in results:
                line_index, key, fields, problem = state.pending.pop(index)
                # The checkpoint first: a crash after it and before the line is
                # written is repaired by --resume from the checkpoint.
                await writer.put(line_index, key, env)
                lines.append(state.line(line_index, fields, problem, env))
                if len(lines) + len(state.recovered_lines) >= _FLUSH_EVERY:
                    await flush()
    finally:
        try:
            # Shielded: an interrupted batch still writes every result it finished.
            with anyio.CancelScope(shield=True):
                await flush()
        finally:
            await writer.close()


def _write(out: TextIO, chunk: str) -> None:
    out.write(chunk)
    out.flush()


def _record(line_index: int, fields: dict[str, Any], problem: str | None, env: Any) -> dict[str, Any]:
    row = {**fields, "index": line_index, **result_row(env)}
    if problem is not None:
        row.update(ok=False, error_type="InvalidInputLine", error_message=problem)
    return row

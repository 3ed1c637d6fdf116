"""The ``verbose=True`` trace: one line per event, prefixed with who emitted it.

Inside ``Agent.parallel`` every line of a branch is prefixed with
``[branch <name>]``, so interleaved concurrent branches can be followed by
filtering on the prefix::

    [parallel ▶ 3 branches]
    [branch claude_view model=claude-haiku-4-5] started
    [branch claude_view] waited 0.35s for the rate limit (requests)
    [branch claude_view] assistant: Agent frameworks fall into ...
    [branch claude_view] done cost=$0.00009
    [done] branches=3 total_cost=$0.00029 max_latency=812ms
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ._redact import redact_text
from .events import (
    AgentFinishEvent,
    AgentStartEvent,
    BranchFinishEvent,
    BranchStartEvent,
    Event,
    FinishEvent,
    ModelResponseEvent,
    ModelRetryEvent,
    ParallelFinishEvent,
    ParallelStartEvent,
    RateLimitWaitEvent,
    StepFinishEvent,
    StepStartEvent,
    ToolCallEvent,
    ToolErrorEvent,
    ToolResultEvent,
)

_SNIPPET = 60


def snippet(text: str, limit: int = _SNIPPET) -> str:
    """The first line of ``text``, cut at a word boundary near ``limit`` with `` ...``."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    if len(line) <= limit and line == text.strip():
        return line
    cut = line[:limit]
    if len(line) > limit and " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip() + " ..."


def cost(value: float) -> str:
    return f"${value:.5f}"


def _args(arguments: Any) -> str:
    try:
        text = json.dumps(arguments, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(arguments)
    return snippet(text, 80)


def _who(event: Event) -> str:
    """The line prefix: the agent, or the branch path (and the agent, where it is not the branch's own)."""
    branch = event.branch
    if branch is None:
        return event.agent
    last = branch.rsplit("/", 1)[-1]
    if last == event.agent or last.startswith(f"{event.agent}#"):
        return f"branch {branch}"
    return f"branch {branch}/{event.agent}"


class TracePrinter:
    """A sink that prints events to stdout.

    All printers compare equal, so a verbose agent nested in a verbose
    parallel prints each event once.  A printer remembers the runs it has
    seen start: a run whose parent it saw is already announced by the
    parent's lines (a branch line, a tool call), so its own start and finish
    are not repeated; a verbose agent inside a quiet one prints them.
    """

    def __init__(self) -> None:
        self._open: set[str] = set()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TracePrinter)

    def __hash__(self) -> int:
        return hash(TracePrinter)

    def __call__(self, event: Event) -> None:
        line = self.format(event)
        if line is not None:
            # The trace shows model text and tool arguments: mask credentials
            # in them with the same rules a Session applies to its events.
            print(redact_text(line), file=sys.stdout, flush=True)

    def format(self, event: Event) -> str | None:
        who = _who(event)
        match event:
            case ParallelStartEvent():
                prefix = f"[{who}] " if event.branch is not None else ""
                noun = "branch" if event.branches == 1 else "branches"
                return f"{prefix}[{event.agent} ▶ {event.branches} {noun}]"
            case ParallelFinishEvent():
                prefix = f"[{who}] " if event.branch is not None else ""
                return (
                    f"{prefix}[done] branches={event.branches} total_cost={cost(event.total_cost_usd)}"
                    f" max_latency={event.max_latency_ms:.0f}ms"
                )
            case BranchStartEvent():
                model = f" model={event.model}" if event.model else ""
                return f"[branch {event.branch}{model}] started"
            case BranchFinishEvent():
                if event.ok:
                    return f"[branch {event.branch}] done cost={cost(event.cost_usd)}"
                return f"[branch {event.branch}] failed {_failure(event)}"
            case AgentStartEvent() | AgentFinishEvent():
                return self._run_line(event, who)
            case ModelResponseEvent():
                return f"[{who}] assistant: {snippet(event.text)}" if event.text else None
            case ModelRetryEvent():
                return f"[{who}] retry (attempt {event.attempt}) in {event.wait_s:.2f}s after {snippet(event.reason)}"
            case RateLimitWaitEvent():
                return f"[{who}] waited {event.wait_s:.2f}s for the rate limit ({event.reason})"
            case ToolCallEvent():
                return f"[{who}] tool: {event.name}({_args(event.arguments)})"
            case ToolResultEvent():
                return f"[{who}] tool result: {event.name} -> {snippet(event.result)}"
            case ToolErrorEvent():
                return f"[{who}] tool error: {event.name} -> {snippet(f'{event.error_type}: {event.message}')}"
            case StepStartEvent(parallel=True):
                # A member of a plan's parallel band reads like a branch of Agent.parallel.
                model = f" model={event.model}" if event.model else ""
                return f"[branch {event.step}{model}] started"
            case StepFinishEvent(parallel=True):
                if event.ok:
                    return f"[branch {event.step}] done cost={cost(event.cost_usd)}"
                return f"[branch {event.step}] failed {_failure(event)}"
            case StepStartEvent():
                return f"[{who}] step {event.step} started"
            case StepFinishEvent():
                if event.ok:
                    return f"[{who}] step {event.step} done cost={cost(event.cost_usd)} latency={event.latency_ms:.0f}ms"
                return f"[{who}] step {event.step} failed {_failure(event)}"
        return None

    def _run_line(self, event: AgentStartEvent | AgentFinishEvent, who: str) -> str | None:
        if isinstance(event, AgentStartEvent):
            self._open.add(event.run_id)
        else:
            self._open.discard(event.run_id)
        if event.parent_run_id in self._open or event.agent_kind in ("ParallelAgent", "RaceAgent"):
            return None  # the parent's lines (a branch, a tool call) or the parallel header say it
        if isinstance(event, AgentStartEvent):
            model = f" model={event.model}" if event.model else ""
            return f"[{who}{model}] started"
        if event.ok:
            return f"[{who}] done cost={cost(event.cost_usd)} latency={event.latency_ms:.0f}ms"
        return f"[{who}] failed {_failure(event)}"


def _failure(event: FinishEvent) -> str:
    return f"{event.error_type}: {snippet(event.error_message or '')}"

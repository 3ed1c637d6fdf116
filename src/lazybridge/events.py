"""Run events and the run context that carries them.

Every run (an agent, a parallel wrapper, a chain stage, a tool call's
sub-agent) has a :class:`RunContext`: its run id, its parent's run id, the
agent's name, the label of the enclosing parallel branch, and the *sinks*
its events go to (a session, a verbose printer).  The current context lives
in a :class:`contextvars.ContextVar`, which both asyncio and Trio copy into
child tasks and which ``anyio.to_thread`` copies into worker threads, so
nested runs inherit their parent's sinks without being told.

Emitting with no sinks costs one attribute check: fan-outs of thousands of
branches pay nothing for tracing they did not ask for.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

Sink = Callable[["Event"], None]

#: Event kinds (a stable schema: exporters and tests rely on these names).
AGENT_START = "agent_start"
AGENT_FINISH = "agent_finish"
MODEL_REQUEST = "model_request"
MODEL_RESPONSE = "model_response"
MODEL_RETRY = "model_retry"
TOOL_CALL = "tool_call"
TOOL_RESULT = "tool_result"
TOOL_ERROR = "tool_error"
PARALLEL_START = "parallel_start"
PARALLEL_FINISH = "parallel_finish"
BRANCH_START = "branch_start"
BRANCH_FINISH = "branch_finish"
STEP_START = "step_start"
STEP_FINISH = "step_finish"


@attrs.frozen
class Event:
    """One thing that happened during a run."""

    kind: str
    run_id: str
    parent_run_id: str | None
    agent: str
    branch: str | None
    time: float
    data: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class RunContext:
    run_id: str
    agent: str
    parent_run_id: str | None = None
    branch: str | None = None
    sinks: tuple[Sink, ...] = ()

    def emit(self, kind: str, **data: Any) -> None:
        """Send an event to every sink.  A sink that raises is the sink's bug:
        sinks must not raise (Session wraps its exporters to guarantee it)."""
        if not self.sinks:
            return
        event = Event(kind, self.run_id, self.parent_run_id, self.agent, self.branch, time.time(), data)
        for sink in self.sinks:
            sink(event)


_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "lazybridge_run", default=None
)


def current_run() -> RunContext | None:
    """The innermost run that published its context, or ``None`` outside any run.

    Every run that may start nested runs publishes it; a leaf run (its engine's
    ``starts_nested_runs`` says ``False``) does not, so code inside a leaf
    engine sees the caller's run.
    """
    return _current.get()


def child_context(
    run_id: str, agent: str, *, extra_sinks: tuple[Sink, ...] = (), branch: str | None = None
) -> RunContext:
    """A context for a new run nested in the current one (if any)."""
    parent = _current.get()
    if parent is None:
        return RunContext(run_id, agent, None, branch, extra_sinks)
    sinks = parent.sinks
    for sink in extra_sinks:
        if sink not in sinks:
            sinks = (*sinks, sink)
    return RunContext(run_id, agent, parent.run_id, branch if branch is not None else parent.branch, sinks)


def enter(ctx: RunContext) -> contextvars.Token[RunContext | None]:
    return _current.set(ctx)


def leave(token: contextvars.Token[RunContext | None]) -> None:
    _current.reset(token)

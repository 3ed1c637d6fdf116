"""Run events and the run context that carries them.

Every run (an agent, a parallel wrapper, a chain stage, a tool call's
sub-agent) has a :class:`RunContext`: its run id, its parent's run id, the
agent's name, the label of the enclosing parallel branch, and the *sinks*
its events go to (a session, a verbose printer).  The current context lives
in a :class:`contextvars.ContextVar`, which both asyncio and Trio copy into
child tasks and which ``anyio.to_thread`` copies into worker threads, so
nested runs inherit their parent's sinks without being told.

Events are typed: one frozen attrs class per kind (:class:`AgentStartEvent`,
:class:`ToolErrorEvent`, ...; the base is :class:`Event`), with the run's
envelope fields and the kind's own.  ``run.emit(ToolErrorEvent, name=...,
...)`` builds one from the run's context.  Their JSON form and the reference
table in ``docs/session.md`` follow the classes (see
:mod:`lazybridge._events_schema`).

Emitting with no sinks costs one attribute check: fan-outs of thousands of
branches pay nothing for tracing they did not ask for.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Concatenate, ParamSpec

from ._events_schema import (
    EVENT_TYPES,
    AgentFinishEvent,
    AgentStartEvent,
    BranchFinishEvent,
    BranchStartEvent,
    Event,
    FinishEvent,
    ModelRequestEvent,
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
    UntypedEvent,
)
from ._spend import Spend

#: Guards every run's live spend counters (taken only when spend is recorded).
_accounts_lock = threading.Lock()

if TYPE_CHECKING:
    from .budget import Account

__all__ = [
    "AGENT_FINISH",
    "AGENT_START",
    "BRANCH_FINISH",
    "BRANCH_START",
    "EVENT_TYPES",
    "MODEL_REQUEST",
    "MODEL_RESPONSE",
    "MODEL_RETRY",
    "PARALLEL_FINISH",
    "PARALLEL_START",
    "RATE_LIMIT_WAIT",
    "STEP_FINISH",
    "STEP_START",
    "TOOL_CALL",
    "TOOL_ERROR",
    "TOOL_RESULT",
    "AgentFinishEvent",
    "AgentStartEvent",
    "BranchFinishEvent",
    "BranchStartEvent",
    "Event",
    "FinishEvent",
    "ModelRequestEvent",
    "ModelResponseEvent",
    "ModelRetryEvent",
    "ParallelFinishEvent",
    "ParallelStartEvent",
    "RateLimitWaitEvent",
    "RunContext",
    "Sink",
    "StepFinishEvent",
    "StepStartEvent",
    "ToolCallEvent",
    "ToolErrorEvent",
    "ToolResultEvent",
    "UntypedEvent",
    "child_context",
    "current_run",
    "enter",
    "leave",
]

Sink = Callable[[Event], None]
_P = ParamSpec("_P")

#: Event kinds (a stable schema: exporters, queries and tests rely on these names);
#: each is the ``kind`` of one class of :mod:`lazybridge._events_schema`.
AGENT_START = "agent_start"
AGENT_FINISH = "agent_finish"
MODEL_REQUEST = "model_request"
MODEL_RESPONSE = "model_response"
MODEL_RETRY = "model_retry"
RATE_LIMIT_WAIT = "rate_limit_wait"
TOOL_CALL = "tool_call"
TOOL_RESULT = "tool_result"
TOOL_ERROR = "tool_error"
PARALLEL_START = "parallel_start"
PARALLEL_FINISH = "parallel_finish"
BRANCH_START = "branch_start"
BRANCH_FINISH = "branch_finish"
STEP_START = "step_start"
STEP_FINISH = "step_finish"


class RunContext:
    """One run's identity, where its events go, and what it has spent so far.

    The spend counters are the run's *live* account, kept so that a run which
    ends early -- timed out, cancelled, failed -- can still report every token
    and dollar of the model responses it received ("spend is never lost").
    :meth:`record` adds a model response's usage to this run's own counters
    and to the ``nested_*`` counters of every run it is nested in, at once,
    so an ancestor that is stopped before its children return knows what they
    spent.  A run that finishes normally reports its engine's envelope, whose
    totals are the same numbers.

    A *labelled copy* (:meth:`labelled`: a parallel branch's or a plan band
    member's context) shares the counters of the run it copies.
    """

    __slots__ = (
        "_owner",
        "account",
        "agent",
        "branch",
        "cost_usd",
        "input_tokens",
        "nested_cost_usd",
        "nested_input_tokens",
        "nested_output_tokens",
        "output_tokens",
        "parent",
        "parent_run_id",
        "run_id",
        "sinks",
        "started",
    )

    def __init__(
        self,
        run_id: str,
        agent: str,
        parent_run_id: str | None = None,
        branch: str | None = None,
        sinks: tuple[Sink, ...] = (),
        *,
        parent: RunContext | None = None,
    ) -> None:
        self.run_id = run_id
        self.agent = agent
        self.parent_run_id = parent_run_id
        self.branch = branch
        self.sinks = sinks
        self.parent = parent
        self._owner: RunContext | None = None  # None: this context keeps its own counters
        #: The run's budget account (a lazybridge.budget.Account), if its agent has ``budget=``.
        self.account: Account | None = None
        self.started = 0.0  # time.perf_counter() at the run's start (see lazybridge._scope)
        self.input_tokens = self.output_tokens = 0
        self.nested_input_tokens = self.nested_output_tokens = 0
        self.cost_usd = self.nested_cost_usd = 0.0

    def __repr__(self) -> str:
        return f"RunContext(run_id={self.run_id!r}, agent={self.agent!r}, branch={self.branch!r})"

    def emit(
        self,
        event_type: Callable[Concatenate[str, str | None, str, str | None, float, _P], Event],
        /,
        *args: _P.args,
        **fields: _P.kwargs,
    ) -> None:
        """Send an ``event_type`` event with this run's envelope fields and ``fields`` to every sink.

        With no sinks nothing is built: a fan-out that traces nothing pays one
        attribute check per event.  A sink that raises is the sink's bug:
        sinks must not raise (Session wraps its exporters to guarantee it).
        """
        if not self.sinks:
            return
        event = event_type(self.run_id, self.parent_run_id, self.agent, self.branch, time.time(), *args, **fields)
        for sink in self.sinks:
            sink(event)

    def labelled(self, branch: str) -> RunContext:
        """This run's context with another branch label, sharing its spend counters."""
        copy = RunContext(self.run_id, self.agent, self.parent_run_id, branch, self.sinks, parent=self.parent)
        copy._owner = self._owner or self
        return copy

    def account_owner(self) -> RunContext:
        """The context that holds this run's counters and budget account (itself, unless a labelled copy)."""
        return self._owner or self

    def record(self, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
        """Count a model response's usage as this run's own and as nested spend of its ancestors."""
        (self._owner or self)._add(input_tokens, output_tokens, cost_usd)

    def settle(self, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
        """Reconcile the live account with the totals the run finished with.

        An engine that does not :meth:`record` as it goes (a scripted test
        double, a custom engine) reports its spend only in its envelope; the
        part of those totals not yet counted becomes nested spend of the
        ancestors, so that an ancestor stopped later still reports it.
        """
        own = self._owner or self
        di = input_tokens - own.input_tokens - own.nested_input_tokens
        do = output_tokens - own.output_tokens - own.nested_output_tokens
        dc = cost_usd - own.cost_usd - own.nested_cost_usd
        if di <= 0 and do <= 0 and dc <= 0:
            return
        own._add(max(di, 0), max(do, 0), max(dc, 0.0))

    def _add(self, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
        # Under a lock: a nested run started by a sync tool runs on its own loop
        # in a worker thread and adds to its ancestors' counters from there.
        with _accounts_lock:
            self.input_tokens += input_tokens
            self.output_tokens += output_tokens
            self.cost_usd += cost_usd
            ancestor = self.parent
            while ancestor is not None:
                ancestor = ancestor._owner or ancestor
                ancestor.nested_input_tokens += input_tokens
                ancestor.nested_output_tokens += output_tokens
                ancestor.nested_cost_usd += cost_usd
                ancestor = ancestor.parent

    @property
    def spent(self) -> Spend:
        """What the run has spent so far, its nested runs included (their part as ``nested_*``)."""
        own = self._owner or self
        ni, no, nc = own.nested_input_tokens, own.nested_output_tokens, own.nested_cost_usd
        return Spend(own.input_tokens + ni, own.output_tokens + no, own.cost_usd + nc, ni, no, nc)


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
    return RunContext(
        run_id, agent, parent.run_id, branch if branch is not None else parent.branch, sinks, parent=parent
    )


def enter(ctx: RunContext) -> contextvars.Token[RunContext | None]:
    return _current.set(ctx)


def leave(token: contextvars.Token[RunContext | None]) -> None:
    _current.reset(token)

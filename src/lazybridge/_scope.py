"""The run scope: what every run does at its start and at its end, whoever runs it.

``Agent.run``, ``Agent.stream``, ``Agent.parallel`` and ``Plan`` all go through
these functions, so a run has one shape whatever started it:

* :func:`begin_run` gives the run its id and its :class:`~lazybridge.events.RunContext`
  (nested in the current run, if any), opens its budget account (``budget=``)
  and emits ``agent_start``;
* :func:`end_run` stamps the result envelope with the run's id, agent, task
  and latency, reconciles the run's live spend account and emits
  ``agent_finish`` (:func:`end_stopped_run` for a run its fan-out stopped);
* :func:`cancel_run` is for a run cancelled from outside: it cannot return an
  envelope, but it still emits ``agent_finish`` (``RunCancelled``) with what
  it spent, before the cancellation propagates;
* :func:`spent_metadata` is the metadata of a run that ended early (timed
  out, failed): who it is and everything its responses cost.

They are functions over the run's context rather than a scope object: a
fan-out of ten thousand branches keeps ten thousand runs alive at once, and
each object per run is felt by the garbage collector.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import events
from ._ids import new_run_id
from .budget import Account
from .envelope import Envelope, EnvelopeMetadata
from .errors import RunCancelled
from .events import RunContext

if TYPE_CHECKING:
    from ._run import AgentBase


def begin_run(agent: AgentBase, task: Envelope) -> RunContext:
    """Open a run of ``agent`` on ``task``: its context, its clock, its start event."""
    ctx = events.child_context(new_run_id(), agent.name, extra_sinks=agent._sinks)
    ctx.started = time.perf_counter()
    if agent.budget is not None:
        ctx.account = Account(agent.budget, ctx)  # found by every request of this run and its nested runs
    if ctx.sinks:
        ctx.emit(events.AgentStartEvent, task=task.task, model=agent.model, agent_kind=type(agent).__name__)
    return ctx


def end_run(agent: AgentBase, ctx: RunContext, task: Envelope, result: Envelope) -> Envelope:
    """Close a run with ``result``: the stamped envelope, the settled account, the finish event."""
    latency_ms = (time.perf_counter() - ctx.started) * 1000.0
    return close_run(agent, ctx, finish_envelope(result, task, ctx.run_id, agent.name, latency_ms))


def end_stopped_run(agent: AgentBase, ctx: RunContext, task: Envelope, error: Exception) -> Envelope:
    """Close a run stopped early with ``error`` (its fan-out's halt): :func:`end_run` of its error envelope.

    The envelope is built stamped at once -- one metadata and one envelope,
    not an unstamped pair and then a stamped copy: a race that a racer won
    among a thousand builds a thousand of these while the caller waits.
    """
    latency_ms = (time.perf_counter() - ctx.started) * 1000.0
    metadata = EnvelopeMetadata.of_spend(
        ctx.spent, run_id=ctx.run_id, agent=agent.name, model=agent.model, provider=agent.provider,
        latency_ms=latency_ms,
    )
    return close_run(agent, ctx, Envelope.error_envelope(error, task=task.task, context=task.context, metadata=metadata))


def close_run(agent: AgentBase, ctx: RunContext, envelope: Envelope) -> Envelope:
    """Settle the run's account with its stamped ``envelope`` and emit its finish event."""
    meta = envelope.metadata
    if meta.cost_usd or meta.input_tokens or meta.output_tokens:
        ctx.settle(meta.input_tokens, meta.output_tokens, meta.cost_usd)
    if ctx.sinks:
        ctx.emit(events.AgentFinishEvent, agent_kind=type(agent).__name__, **finish_data(envelope))
    return envelope


def cancel_run(agent: AgentBase, ctx: RunContext, task: Envelope) -> None:
    """Report a run cancelled from outside: its finish event, with what it spent."""
    if not ctx.sinks:
        return
    error = RunCancelled(f"run of {agent.name!r} was cancelled")
    cancelled = Envelope.error_envelope(error, metadata=spent_metadata(agent, ctx))
    latency_ms = (time.perf_counter() - ctx.started) * 1000.0
    cancelled = finish_envelope(cancelled, task, ctx.run_id, agent.name, latency_ms)
    ctx.emit(events.AgentFinishEvent, agent_kind=type(agent).__name__, **finish_data(cancelled))


def spent_metadata(agent: AgentBase, ctx: RunContext) -> EnvelopeMetadata:
    """Metadata for a run that ended early: who it is and everything its responses cost."""
    return EnvelopeMetadata.of_spend(ctx.spent, model=agent.model, provider=agent.provider)


def agent_timeout(agent: AgentBase) -> TimeoutError:
    """The error of a run that ran past its agent's own ``timeout``."""
    return TimeoutError(f"agent {agent.name!r} exceeded its timeout of {agent.timeout or 0.0:g}s")


def finish_envelope(result: Envelope, task: Envelope, run_id: str, agent: str, latency_ms: float) -> Envelope:
    """``result`` stamped with the run's task, id, agent name and latency."""
    # Built field by field rather than with attrs.evolve: this runs once per
    # branch of every fan-out, and evolve costs several times as much.
    m = result.metadata
    meta = EnvelopeMetadata(
        run_id, agent, m.model, m.provider, m.input_tokens, m.output_tokens, m.cost_usd, latency_ms,
        m.nested_input_tokens, m.nested_output_tokens, m.nested_cost_usd, m.usage_reported, m.winner,
    )
    return Envelope(task.task, task.context, result.payload, meta, result.error)


def finish_data(env: Envelope) -> dict[str, Any]:
    """The fields of a finish event for ``env`` (:class:`~lazybridge.events.FinishEvent`: agents, branches, plan steps)."""
    meta = env.metadata
    return {
        "ok": env.ok,
        "error_type": env.error.type if env.error else None,
        "error_message": env.error.message if env.error else None,
        "model": meta.model,
        "provider": meta.provider,
        "input_tokens": meta.input_tokens,
        "output_tokens": meta.output_tokens,
        "cost_usd": meta.cost_usd,
        "nested_input_tokens": meta.nested_input_tokens,
        "nested_output_tokens": meta.nested_output_tokens,
        "nested_cost_usd": meta.nested_cost_usd,
        "usage_reported": meta.usage_reported,
        "latency_ms": meta.latency_ms,
    }

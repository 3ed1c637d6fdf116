"""usage_summary(): tokens, cost, calls and latency -- in total, per agent and per run.

Built from ``agent_finish`` events (:class:`~lazybridge.events.AgentFinishEvent`) only, with the envelope cost rule (see
:mod:`lazybridge.envelope`): a run's ``cost_usd`` and tokens are inclusive,
``nested_*`` is the part its nested runs spent, so what a run spent *itself*
is ``cost_usd - nested_cost_usd``.  Totals and per-agent figures add up that
own spend over every run, which counts each model call exactly once however
the runs nest -- chains, parallels, plans, agents called as tools.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..events import AgentFinishEvent, Event, ModelResponseEvent

__all__ = ["RunUsage", "Usage", "UsageSummary", "summarise"]


@attrs.frozen
class Usage:
    """Spend of a set of runs.

    ``input_tokens``, ``output_tokens``, ``cost_usd``: what these runs spent
    themselves (nested runs are counted under their own agent).
    ``calls``: how many runs finished.  ``model_calls``: how many model
    responses they received.  ``latency_ms``: the summed wall time of the
    runs (for the total: of the top-level runs only).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    model_calls: int = 0
    latency_ms: float = 0.0


@attrs.frozen
class RunUsage:
    """One finished run.  ``cost_usd`` and tokens are inclusive; ``own_*`` exclude nested runs."""

    run_id: str
    parent_run_id: str | None
    agent: str
    agent_kind: str | None
    model: str | None
    ok: bool
    input_tokens: int
    output_tokens: int
    cost_usd: float
    nested_input_tokens: int
    nested_output_tokens: int
    nested_cost_usd: float
    latency_ms: float
    model_calls: int

    @property
    def own_input_tokens(self) -> int:
        return self.input_tokens - self.nested_input_tokens

    @property
    def own_output_tokens(self) -> int:
        return self.output_tokens - self.nested_output_tokens

    @property
    def own_cost_usd(self) -> float:
        return self.cost_usd - self.nested_cost_usd


@attrs.frozen
class UsageSummary:
    """What ``Session.usage_summary()`` returns.

    ``total`` -- everything, each model call counted once;
    ``by_agent`` -- the same split by agent name (the values add up to
    ``total``, except ``latency_ms``); ``by_run`` -- every finished run by
    run id, in finishing order.
    """

    total: Usage
    by_agent: Mapping[str, Usage]
    by_run: Mapping[str, RunUsage]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON)."""
        return {
            "total": attrs.asdict(self.total),
            "by_agent": {name: attrs.asdict(usage) for name, usage in self.by_agent.items()},
            "by_run": {run_id: attrs.asdict(run) for run_id, run in self.by_run.items()},
        }


def summarise(events: Iterable[Event], run_id: str | None = None) -> UsageSummary:
    """The usage summary of ``events``; with ``run_id``, of that run and the runs nested in it."""
    model_calls: dict[str, int] = {}
    runs: dict[str, RunUsage] = {}
    for event in events:
        if isinstance(event, ModelResponseEvent):
            model_calls[event.run_id] = model_calls.get(event.run_id, 0) + 1
        elif isinstance(event, AgentFinishEvent):
            runs[event.run_id] = RunUsage(
                run_id=event.run_id,
                parent_run_id=event.parent_run_id,
                agent=event.agent,
                agent_kind=event.agent_kind,
                model=event.model,
                ok=event.ok,
                input_tokens=event.input_tokens,
                output_tokens=event.output_tokens,
                cost_usd=event.cost_usd,
                nested_input_tokens=event.nested_input_tokens,
                nested_output_tokens=event.nested_output_tokens,
                nested_cost_usd=event.nested_cost_usd,
                latency_ms=event.latency_ms,
                model_calls=0,
            )
    runs = {rid: attrs.evolve(run, model_calls=model_calls.get(rid, 0)) for rid, run in runs.items()}
    if run_id is not None:
        runs = _subtree(runs, run_id)

    by_agent: dict[str, Usage] = {}
    total = Usage()
    for run in runs.values():
        own = Usage(
            run.own_input_tokens, run.own_output_tokens, run.own_cost_usd, 1, run.model_calls, run.latency_ms
        )
        by_agent[run.agent] = _add(by_agent.get(run.agent, Usage()), own)
        top_level = run.parent_run_id not in runs
        total = _add(total, attrs.evolve(own, latency_ms=run.latency_ms if top_level else 0.0))
    return UsageSummary(total, by_agent, runs)


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(
        a.input_tokens + b.input_tokens,
        a.output_tokens + b.output_tokens,
        a.cost_usd + b.cost_usd,
        a.calls + b.calls,
        a.model_calls + b.model_calls,
        a.latency_ms + b.latency_ms,
    )


def _subtree(runs: Mapping[str, RunUsage], root: str) -> dict[str, RunUsage]:
    children: dict[str | None, list[str]] = {}
    for rid, run in runs.items():
        children.setdefault(run.parent_run_id, []).append(rid)
    keep: set[str] = set()
    stack = [root]
    while stack:
        rid = stack.pop()
        if rid in keep:
            continue
        keep.add(rid)
        stack.extend(children.get(rid, ()))
    return {rid: run for rid, run in runs.items() if rid in keep}

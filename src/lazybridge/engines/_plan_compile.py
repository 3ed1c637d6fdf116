"""Plan validation: every check that makes ``Plan(...)`` raise :class:`PlanCompileError`.

Checked at construction, before any model is called:

* every argument is a :class:`~lazybridge.Step` with a usable, unique name
  and a runnable target (an agent, a Tool or a callable);
* ``task=`` and ``context=`` hold sentinels or strings, and every sentinel
  names an existing step that runs *before* this one -- not a later step,
  not the step itself, not a sibling of the same parallel band;
* ``from_parallel`` names a parallel step, ``from_parallel_all`` the *first*
  member of a band;
* ``routes=`` is a mapping of existing step names to callables, is not on
  a parallel step, and does not jump into the middle of a band;
* ``max_iterations`` is a whole number >= 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .._run import AgentBase
from ..errors import PlanCompileError
from ..tools import Tool
from ._step import Step
from .sentinels import Sentinel


@attrs.frozen
class CompiledPlan:
    """What a plan knows about its shape once validated."""

    steps: tuple[Step, ...]
    #: step name -> declared position
    position: Mapping[str, int]
    #: position -> the position of its band's first member (``None``: not parallel)
    band_start: tuple[int | None, ...]
    #: band start position -> the position just after the band
    band_end: Mapping[int, int]
    #: position -> the step's ``context=`` as a tuple of parts
    contexts: tuple[tuple[Sentinel | str, ...], ...]


def compile_plan(steps: Sequence[Any], max_iterations: object) -> CompiledPlan:
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
        raise PlanCompileError(f"max_iterations must be a whole number >= 1, got {max_iterations!r}")
    if not steps:
        raise PlanCompileError("Plan needs at least one Step")
    position: dict[str, int] = {}
    for i, step in enumerate(steps):
        if not isinstance(step, Step):
            raise PlanCompileError(
                f"Plan argument {i} must be a Step, not {type(step).__name__} {step!r:.60}"
            )
        _check_step(i, step)
        if step.name in position:
            raise PlanCompileError(
                f"step {step.name!r} is defined twice (positions {position[step.name]} and {i}); "
                "step names must be unique: pass name= to tell them apart"
            )
        position[step.name] = i

    band_start: list[int | None] = []
    band_end: dict[int, int] = {}
    for i, step in enumerate(steps):
        if not step.parallel:
            band_start.append(None)
            continue
        start = i if i == 0 or not steps[i - 1].parallel else band_start[i - 1]
        band_start.append(start)
        assert start is not None
        band_end[start] = i + 1

    shape = CompiledPlan(tuple(steps), position, tuple(band_start), band_end, ())
    contexts = []
    for i, step in enumerate(steps):
        parts = _context_parts(step)
        for where, source in [("task", step.task), *((_slot(step, n), part) for n, part in enumerate(parts))]:
            if isinstance(source, Sentinel):
                _check_sentinel(shape, i, where, source)
        _check_routes(shape, i)
        contexts.append(parts)
    return attrs.evolve(shape, contexts=tuple(contexts))


def _check_step(i: int, step: Step) -> None:
    if not isinstance(step.name, str) or not step.name:
        raise PlanCompileError(
            f"step {i} ({type(step.target).__name__} {step.target!r:.40}) needs a name: pass Step(..., name='...')"
        )
    target = step.target
    if not isinstance(target, (AgentBase, Tool)) and not callable(target):
        raise PlanCompileError(
            f"step {step.name!r}: target must be an Agent, a ParallelAgent, a Tool or a function, "
            f"not {type(target).__name__}"
        )
    if not isinstance(step.task, (Sentinel, str)):
        raise PlanCompileError(
            f"step {step.name!r}: task= must be a sentinel (from_prev, from_step(...), ...) or a string, "
            f"not {type(step.task).__name__}"
        )
    if not isinstance(step.parallel, bool):
        raise PlanCompileError(f"step {step.name!r}: parallel= must be True or False, not {step.parallel!r}")
    if step.on_error not in ("fail", "continue"):
        raise PlanCompileError(
            f"step {step.name!r}: on_error= must be 'fail' or 'continue', not {step.on_error!r}"
        )


def _context_parts(step: Step) -> tuple[Sentinel | str, ...]:
    context = step.context
    if context is None:
        return ()
    parts = tuple(context) if isinstance(context, (list, tuple)) else (context,)
    for n, part in enumerate(parts):
        if not isinstance(part, (Sentinel, str)):
            raise PlanCompileError(
                f"step {step.name!r}: {_slot(step, n)} must be a sentinel or a string, not {type(part).__name__}"
            )
    return parts


def _slot(step: Step, n: int) -> str:
    return f"context[{n}]" if isinstance(step.context, (list, tuple)) else "context"


def _check_sentinel(shape: CompiledPlan, i: int, where: str, source: Sentinel) -> None:
    if source.name is None:  # from_prev, from_start: always available
        return
    step = shape.steps[i]
    said = f"step {step.name!r}: {where}={source!r}"
    target = shape.position.get(source.name)
    if target is None:
        known = ", ".join(repr(s.name) for s in shape.steps)
        raise PlanCompileError(f"{said} names no step of this plan (its steps: {known})")
    if target >= i:
        when = "is the step itself" if target == i else f"runs after {step.name!r}"
        raise PlanCompileError(f"{said} points forward: {source.name!r} {when}; sentinels read earlier steps")
    if shape.band_start[i] is not None and shape.band_start[i] == shape.band_start[target]:
        raise PlanCompileError(
            f"{said} points at {source.name!r}, a member of the same parallel band: "
            "band members run at the same time, so one cannot read another"
        )
    if source.kind == "parallel" and shape.band_start[target] is None:
        raise PlanCompileError(
            f"{said}: {source.name!r} is not a parallel step; use from_step({source.name!r})"
        )
    if source.kind == "parallel_all":
        start = shape.band_start[target]
        if start is None:
            raise PlanCompileError(
                f"{said}: {source.name!r} is not a parallel step, so it starts no band; "
                f"use from_step({source.name!r})"
            )
        if start != target:
            raise PlanCompileError(
                f"{said}: {source.name!r} is not at the start of its parallel band; "
                f"the band starts at {shape.steps[start].name!r}"
            )


def _check_routes(shape: CompiledPlan, i: int) -> None:
    step = shape.steps[i]
    routes = step.routes
    if routes is None:
        return
    if not isinstance(routes, Mapping):
        raise PlanCompileError(
            f"step {step.name!r}: routes= must be a dict of step name -> predicate, not {type(routes).__name__}"
        )
    if step.parallel:
        raise PlanCompileError(
            f"step {step.name!r}: routes= is not allowed on a parallel step (a band has no single "
            "outcome to route on); put the routes on the band's join step"
        )
    for target, predicate in routes.items():
        position = shape.position.get(target) if isinstance(target, str) else None
        if position is None:
            known = ", ".join(repr(s.name) for s in shape.steps)
            raise PlanCompileError(
                f"step {step.name!r}: routes to {target!r}, which names no step of this plan (its steps: {known})"
            )
        start = shape.band_start[position]
        if start is not None and start != position:
            raise PlanCompileError(
                f"step {step.name!r}: routes into the middle of a parallel band at {target!r}; "
                f"route to the band's first step, {shape.steps[start].name!r}"
            )
        if not callable(predicate):
            raise PlanCompileError(
                f"step {step.name!r}: the route to {target!r} needs a predicate (a function of the envelope), "
                f"not {type(predicate).__name__}"
            )

"""Plan: an explicit DAG of named steps -- sequences, parallel bands and routes.

::

    from lazybridge import Agent, Plan, Step, from_parallel_all, from_start

    pipeline = Agent(
        engine=Plan(
            Step(anthropic_search, parallel=True),
            Step(openai_search, parallel=True),
            Step(google_search, parallel=True),
            Step(synthesiser, task=from_parallel_all("anthropic_search"), context=from_start),
        ),
        name="research",
    )
    print(pipeline("How does each provider implement structured output?").text())

A plan is an :class:`~lazybridge.engines.base.Engine`: put it in an
``Agent(engine=Plan(...))`` and it gets the agent's run id, deadline,
session and ``verbose`` trace.  Every step's target runs as a nested run of
that agent, so its events and cost roll up (see :class:`Plan`).
"""

from __future__ import annotations

import inspect
import json
import re
import time
from collections.abc import Mapping
from typing import Any

import anyio
import attrs

from .. import events
from .._run import AgentBase
from .._scope import finish_data
from .._spend import Spend
from ..envelope import Envelope, EnvelopeMetadata, converter, fold_branches
from ..errors import ConfigurationError, MaxIterationsExceeded, PlanCompileError, StructuredOutputError
from ..events import RunContext
from ..tools import Tool
from ._plan_compile import CompiledPlan, compile_plan
from ._step import Step
from .base import EngineBase
from .sentinels import Sentinel

__all__ = ["Plan", "Step"]

class Plan(EngineBase[None]):
    """An engine that runs named :class:`Step` s: in order, in parallel bands, or routed.

    ``Plan(*steps, max_iterations=10)``; use it as ``Agent(engine=Plan(...))``.

    Args:
        *steps: the :class:`Step` s, in declared order (names unique).
        max_iterations: how many times any one step may run in one run.

    ``max_iterations`` is how many times any one step may run in one run of
    the plan: routes that loop back are stopped when a step is about to run
    once more than that (a plan without backward routes runs each step once).

    How it runs
        Steps run in declared order; each one's task defaults to the
        previous step's envelope (:data:`~lazybridge.from_prev`).
        Consecutive ``parallel=True`` steps form a *band* run in one task
        group; the next non-parallel step is the band's join and reads the
        band with ``from_parallel_all("<first member>")`` (or ``from_prev``,
        which after a band is the same labelled join).  A step with
        ``routes=`` picks the next step from its envelope.

    What you get back
        The envelope of the last step that ran (for a plan that ends on a
        band, the band's labelled join), with the plan's totals:
        ``cost_usd`` and the token counts add up every step run (a step that
        a loop ran three times counts three times), and since every step is
        a nested run the ``nested_*`` fields equal them.

    Errors
        An invalid plan raises :class:`~lazybridge.errors.PlanCompileError`
        (naming the step) at construction: duplicate names, unknown route
        targets, sentinels that point forward, at a sibling of the same
        band or at unknown steps, ``from_parallel_all`` not naming the start
        of a band.  At run time nothing raises: a failed step ends the plan
        with its error envelope (unless it says ``on_error="continue"``), a
        step about to run more than ``max_iterations`` times ends it with a
        ``MaxIterationsExceeded`` envelope, and a sentinel naming a step
        that a route skipped ends it with a ``LookupError`` envelope.  The
        cost spent up to that point is in the envelope either way.

    Events
        Each step emits ``step_start`` and ``step_finish`` (with the step's
        name, position, iteration and, on finish, the accounting of
        :func:`~lazybridge.agent.finish_data`); a band member's events carry
        its step name as the ``branch`` label, like a parallel branch.
    """

    # A plan has no model of its own (its steps do), and takes none of the agent's
    # tools=, output= or memory= (its steps have their own): EngineBase's defaults.

    def __init__(self, *steps: Step, max_iterations: int = 10) -> None:
        self._compiled: CompiledPlan = compile_plan(steps, max_iterations)
        self.steps: tuple[Step, ...] = self._compiled.steps
        self.max_iterations = max_iterations
        self._runners = tuple(_runner(step) for step in self.steps)

    def __repr__(self) -> str:
        return f"Plan({', '.join(step.name for step in self.steps)}, max_iterations={self.max_iterations})"

    async def run(self, task: Envelope, *, prepared: None = None, run: RunContext) -> Envelope:
        """Run the plan on ``task``; see the class docstring for the result.

        Cancellation: cancelling the caller (or the agent's ``timeout``)
        cancels the running step -- every member of a running band -- and
        awaits it before the cancellation propagates; no step starts after
        that and nothing keeps running.
        """
        return await _PlanRun(self, task, run).execute()


class _PlanRun:
    """The state of one run of a plan: the envelopes so far and the running totals."""

    def __init__(self, plan: Plan, start: Envelope, run: RunContext) -> None:
        self.plan = plan
        self.compiled = plan._compiled
        self.start = start
        self.run = run
        self.outputs: dict[str, Envelope] = {}
        self.bands: dict[str, Envelope] = {}
        self.visits = [0] * len(plan.steps)
        self.spend = Spend()  # the steps' spend so far: all of it nested

    async def execute(self) -> Envelope:
        steps = self.plan.steps
        prev = self.start
        i = 0
        while i < len(steps):
            step = steps[i]
            self.visits[i] += 1
            if self.visits[i] > self.plan.max_iterations:
                limit = self.plan.max_iterations
                exc = MaxIterationsExceeded(
                    f"step {step.name!r} has already run {limit} time{'s' if limit > 1 else ''}, "
                    f"the most max_iterations={limit} allows; the routes never left the cycle"
                )
                return self._result(Envelope.error_envelope(exc))
            if step.parallel:
                end = self.compiled.band_end[i]
                members = await self._run_band(i, end, prev)
                failed = None
                for position, env in zip(range(i, end), members, strict=True):
                    self._record(steps[position].name, env)
                    if failed is None and not env.ok and steps[position].on_error == "fail":
                        failed = env
                band = fold_branches(members, self.start)
                self.bands[step.name] = band
                if failed is not None:
                    return self._result(failed)
                prev, i = band, end
                continue
            env = await self._run_step(i, prev, self.run)
            self._record(step.name, env)
            if not env.ok and step.on_error == "fail":
                return self._result(env)
            prev = env
            try:
                i = await self._route(i, env)
            except Exception as exc:  # a predicate's bug ends the plan, with the cost so far
                return self._result(Envelope.error_envelope(exc))
        return self._result(prev)

    def _record(self, name: str, env: Envelope) -> None:
        self.outputs[name] = env
        self.spend += env.metadata.spend.as_nested()

    def _result(self, env: Envelope) -> Envelope:
        m = env.metadata
        metadata = EnvelopeMetadata.of_spend(self.spend, model=m.model, provider=m.provider)
        return Envelope(self.start.task, self.start.context, env.payload, metadata, env.error)

    async def _route(self, i: int, env: Envelope) -> int:
        routes = self.plan.steps[i].routes
        if routes:
            for target, predicate in routes.items():
                decision = predicate(env)
                if inspect.isawaitable(decision):
                    decision = await decision
                if decision:
                    return self.compiled.position[target]
        return i + 1

    async def _run_band(self, start: int, end: int, prev: Envelope) -> list[Envelope]:
        results: list[Envelope | None] = [None] * (end - start)

        async def member(k: int) -> None:
            # Label what this member emits with its step name, like a parallel
            # branch.  Entering the context here changes only this child
            # task's copy of it, so siblings keep their own labels.
            run = self.run
            ctx = run.labelled(self.plan.steps[start + k].name)
            events.enter(ctx)
            results[k] = await self._run_step(start + k, prev, ctx)

        async with anyio.create_task_group() as tg:
            for k in range(end - start):
                tg.start_soon(member, k)
        return results  # type: ignore[return-value]  # every slot is filled

    async def _run_step(self, i: int, prev: Envelope, ctx: RunContext) -> Envelope:
        step, runner = self.plan.steps[i], self.plan._runners[i]
        traced = bool(ctx.sinks)
        info: dict[str, Any] = {}
        if traced:
            band_start = self.compiled.band_start[i]
            iteration = self.visits[band_start if band_start is not None else i]
            info = {"step": step.name, "index": i, "iteration": iteration, "parallel": step.parallel}
            ctx.emit(events.StepStartEvent, **info, target=runner.name, model=runner.model)
        try:
            task, context = self._inputs(i, prev)
        except LookupError as exc:
            env = Envelope.error_envelope(exc, metadata=EnvelopeMetadata(agent=runner.name))
        else:
            try:
                env = await runner.run(task, context=context)
            except Exception as exc:  # AgentBase.run returns errors; this guards custom subclasses
                env = Envelope.error_envelope(exc, metadata=EnvelopeMetadata(agent=runner.name))
            if step.output is not None and env.ok:
                env = _coerce_output(step, env)
        if traced:
            ctx.emit(events.StepFinishEvent, **info, **finish_data(env))
        return env

    def _inputs(self, i: int, prev: Envelope) -> tuple[Envelope | str, str | None]:
        step = self.plan.steps[i]
        task = self._resolve(step.name, step.task, prev)
        parts = self.compiled.contexts[i]
        if not parts:
            return task, None
        return task, "\n\n".join(_text_of(self._resolve(step.name, part, prev)) for part in parts)

    def _resolve(self, step: str, source: Sentinel | str, prev: Envelope) -> Envelope | str:
        if isinstance(source, str):
            return source
        if source.kind == "prev":
            return prev
        if source.kind == "start":
            return self.start
        found = (self.bands if source.kind == "parallel_all" else self.outputs).get(source.name or "")
        if found is None:
            raise LookupError(f"step {step!r} reads {source!r}, which has not run (a route skipped it)")
        return found


def _text_of(value: Envelope | str) -> str:
    if isinstance(value, str):
        return value
    if value.payload is None and value.error is None:  # an input envelope: its task
        return value.task or ""
    return value.text()


def _coerce_output(step: Step, env: Envelope) -> Envelope:
    kind, payload = step.output, env.payload
    if isinstance(kind, type) and isinstance(payload, kind):
        return env
    try:
        if isinstance(payload, str):
            validate_json = getattr(kind, "model_validate_json", None)  # pydantic, duck-typed
            value = (
                validate_json(payload) if validate_json else converter.structure(json.loads(payload), kind)
            )
        else:
            validate = getattr(kind, "model_validate", None)
            value = validate(payload) if validate else converter.structure(payload, kind)
    except Exception as exc:
        name = getattr(kind, "__name__", repr(kind))
        error = StructuredOutputError(f"step {step.name!r}: the payload does not fit output={name}: {exc}")
        return Envelope.error_envelope(error, task=env.task, metadata=env.metadata)
    return attrs.evolve(env, payload=value)


# -- step targets ---------------------------------------------------------------


def _runner(step: Step) -> AgentBase:
    target = step.target
    if isinstance(target, AgentBase):
        return target
    if not isinstance(target, Tool):
        try:
            tool_name = re.sub(r"[^A-Za-z0-9_-]", "_", step.name)[:64]  # what a tool name may hold
            target = Tool.from_function(target, name=tool_name, strict=False)
        except ConfigurationError as exc:
            raise PlanCompileError(
                f"step {step.name!r}: its function cannot be called as a step: {exc}"
            ) from exc
    return _ToolStep(step.name, target)


class _ToolStep(AgentBase):
    """A Tool (or a function made one) run as a plan step: one nested run, with tool events.

    The task text goes to the tool's ``task`` parameter, or to its first
    parameter when it has none of that name; the context to its ``context``
    parameter if it has one.
    """

    def __init__(self, name: str, tool: Tool) -> None:
        super().__init__(name=name, description=None, session=None, verbose=False, timeout=None)
        self.tool = tool
        props = tool.parameters.get("properties")
        names = [n for n in props if n != "context"] if isinstance(props, Mapping) else []
        required = [n for n in tool.parameters.get("required", ()) if n != "context"]
        self._task_key = "task" if "task" in names else next(iter(required or names), None)
        self._context_key = "context" if isinstance(props, Mapping) and "context" in props else None

    async def _execute(self, task: Envelope, run: RunContext) -> Envelope:
        arguments: dict[str, Any] = {}
        if self._task_key is not None:
            arguments[self._task_key] = task.task or ""
        if self._context_key is not None and task.context is not None:
            arguments[self._context_key] = task.context
        traced = bool(run.sinks)
        if traced:  # a tool step is no model call: it has no call id
            run.emit(events.ToolCallEvent, name=self.tool.name, call_id=None, arguments=arguments)
        started = time.perf_counter()
        try:
            result = await self.tool.call(arguments)
        except Exception as exc:
            if traced:
                run.emit(
                    events.ToolErrorEvent,
                    name=self.tool.name,
                    call_id=None,
                    error_type=type(exc).__name__,
                    message=str(exc) or type(exc).__name__,
                    latency_ms=(time.perf_counter() - started) * 1000.0,
                )
            raise
        env = _as_envelope(result)
        if traced:
            run.emit(
                events.ToolResultEvent,
                name=self.tool.name,
                call_id=None,
                result=_text_of(env) if env.ok else "",
                latency_ms=(time.perf_counter() - started) * 1000.0,
            )
        return env


def _as_envelope(result: Any) -> Envelope:
    """A tool's result as a step envelope; an Envelope that came from a run counts as nested."""
    if not isinstance(result, Envelope):
        return Envelope(payload=result)
    m = result.metadata
    spend = m.spend
    if m.run_id is not None:  # it came from a run, which reported its own cost
        spend = spend.as_nested()
    metadata = EnvelopeMetadata.of_spend(spend, model=m.model, provider=m.provider)
    return Envelope(payload=result.payload, error=result.error, metadata=metadata)

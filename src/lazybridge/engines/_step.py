"""Step: one node of a :class:`~lazybridge.Plan` (re-exported there and at the top level).

Its own module, below both the plan runner and the plan compiler, so that
each can import it without importing the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from ..envelope import Envelope
from ..errors import PlanCompileError
from ..tools import Tool
from .sentinels import Sentinel, from_prev

__all__ = ["ContextSpec", "OnError", "Step"]

OnError = Literal["fail", "continue"]
ContextSpec = Sentinel | str | list[Sentinel | str] | tuple[Sentinel | str, ...] | None


def _default_name(step: Step) -> str:
    target = step.target
    name = getattr(target, "name", None)  # agents and Tools
    if isinstance(name, str) and name:
        return name
    name = getattr(target, "__name__", None)  # functions
    if isinstance(name, str) and name and name != "<lambda>":
        return name
    return ""  # the plan reports the missing name, with the step's position


def _check_target(step: Step, attribute: attrs.Attribute[Any], target: Any) -> None:
    # What the plan can run; anything else is refused here, before a name is
    # looked for (a missing name would otherwise be the complaint).
    # Validators run once every field is set, so a given name is known here.
    if not isinstance(target, Tool) and not callable(target):
        said = f"step {step.name!r}:" if step.name else "Step"
        raise PlanCompileError(
            f"{said} target must be an Agent, a ParallelAgent, a Tool or a function, "
            f"not {type(target).__name__} {target!r:.40}"
        )


@attrs.frozen(eq=False)
class Step:
    """One node of a :class:`Plan`.

    ::

        Step(researcher)                                   # task = the previous step's text
        Step(writer, task=from_step("research"), context=["Be brief.", from_start])
        Step(checker, routes={"writer": lambda env: "REJECT" in env.text()})
        Step(search_eu, parallel=True)                     # a member of a parallel band

    Arguments:
        target: what the step runs -- an :class:`~lazybridge.Agent`, a
            :class:`~lazybridge.ParallelAgent`, a :class:`~lazybridge.Tool`
            or a plain function (sync or async), which becomes a Tool with
            ``Tool.from_function(fn, strict=False)``.  A Tool step gets the
            task text in its ``task`` parameter (or else its first one) and
            the context in its ``context`` parameter if it has one; a sync
            function runs in a worker thread, as :meth:`Tool.call
            <lazybridge.Tool.call>` describes.  A Tool may return an
            Envelope (an agent's, say): the run that made it reported its
            own cost, so the step counts it as nested.
        name: the step's identity for routes and sentinels; defaults to the
            target's ``name`` (or a function's ``__name__``).  Unique in a plan.
        task: where the task comes from: a sentinel (default
            :data:`~lazybridge.from_prev`) or a literal string.
        context: extra context: a sentinel, a string, or a list mixing both;
            the parts are joined with blank lines.  Without it, an envelope
            handed on as the task keeps the context it already had.
        parallel: ``True`` makes the step a member of a *band*: consecutive
            parallel steps run concurrently, each on the envelope before the
            band, and the next non-parallel step is the band's join (its
            ``from_prev`` is the band's labelled join).
        routes: ``{"step_name": predicate, ...}``: after the step, each
            predicate is called with its envelope in order, and the first
            that returns true sends the plan to that step (backwards makes a
            loop, bounded by ``Plan(max_iterations=)``).  When none matches
            the plan goes on with the next declared step.  Predicates may
            be async.  Not allowed on parallel steps.
        output: a type the step's payload must have.  A string payload is
            parsed as JSON into it (pydantic models are used duck-typed); a
            payload that does not fit fails the step with
            ``StructuredOutputError``.  For an LLM agent prefer
            ``Agent(output=...)``, which asks the model for that shape.
        on_error: ``"fail"`` (the default): a failure of this step ends the
            plan and its error envelope is the plan's outcome -- for a band
            member, once the whole band has finished.  ``"continue"``: the
            failure is kept (a band's join shows it as ``(error) message``)
            and the plan goes on; routes see the error envelope, so a route
            such as ``{"fallback": lambda env: not env.ok}`` handles it.
    """

    target: Any = attrs.field(validator=_check_target)
    name: str = attrs.field(kw_only=True, default=attrs.Factory(_default_name, takes_self=True))
    task: Sentinel | str = attrs.field(kw_only=True, default=from_prev)
    context: ContextSpec = attrs.field(kw_only=True, default=None)
    parallel: bool = attrs.field(kw_only=True, default=False)
    routes: Mapping[str, Callable[[Envelope], Any]] | None = attrs.field(kw_only=True, default=None)
    output: Any = attrs.field(kw_only=True, default=None)
    on_error: OnError = attrs.field(kw_only=True, default="fail")

"""``Agent.chain`` as sugar over :class:`~lazybridge.engines.plan.Plan`: one step per stage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .plan import Plan, Step

if TYPE_CHECKING:
    from .._run import AgentBase


def chain_plan(stages: Sequence[AgentBase]) -> Plan:
    """The plan of ``Agent.chain(*stages)``: each stage a step reading ``from_prev``.

    Step names are the stages' names, made unique with a ``_2``, ``_3``
    suffix when two stages share one (a chain, unlike a plan, does not ask
    its stages for distinct names).
    """
    steps = []
    taken: set[str] = set()
    for stage in stages:
        name, n = stage.name, 1
        while name in taken:
            n += 1
            name = f"{stage.name}_{n}"
        taken.add(name)
        steps.append(Step(stage, name=name))
    return Plan(*steps, max_iterations=1)

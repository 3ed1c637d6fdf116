"""MapAgent (``Agent.map``): one agent fanned out over the items of its input list.

The runtime-width fan-out: a chain stage or a Plan step whose previous step
produced a list (structured output, or a JSON array as text) runs the agent
once per item, with a concurrency bound and each item's failure kept in its
place.  It is a batch (:meth:`~lazybridge.AgentBase.run_batch`) inside one
run, and its result has the parallel result shape.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ._checks import check_whole
from ._run import AgentBase
from .batch import DEFAULT_CONCURRENCY
from .budget import Budget
from .envelope import Envelope, fold_branches
from .events import RunContext

if TYPE_CHECKING:
    from .session import Session

__all__ = ["MapAgent"]


class MapAgent(AgentBase):
    """Runs ``agent`` on every item of the list its task holds; one envelope back.

    Args:
        agent: the agent run once per item (any agent: an Agent, a parallel,
            a chain...).
        concurrency: the most items in flight at once.
        name, description, session, verbose, timeout, budget: as for any agent.

    The task is the previous step's result: an envelope whose payload is a
    list (``text()`` is then its JSON), or a JSON array as text.  Each item
    becomes one task: a string as it is, anything else as its JSON.

    Returns one envelope shaped like ``Agent.parallel``'s: ``payload`` (and
    iteration) is the list of item envelopes in item order, ``text()`` their
    labelled join, ``error`` the first item error (``ok`` is ``False`` if any
    item failed), cost and tokens the items' totals, as nested spend.  An
    input that is not a list is a ``ValueError`` envelope; an empty list gives
    an empty result.

    Cancellation: cancelling the run cancels every item in flight and waits
    for it, as for any batch.
    """

    def __init__(
        self,
        agent: AgentBase,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        name: str = "map",
        description: str | None = None,
        session: Session | None = None,
        verbose: bool = False,
        timeout: float | None = None,
        budget: Budget | None = None,
    ) -> None:
        super().__init__(
            name=name, description=description, session=session, verbose=verbose, timeout=timeout, budget=budget
        )
        if not isinstance(agent, AgentBase):
            raise TypeError(f"agent must be an Agent (or ParallelAgent...), not {type(agent).__name__} {agent!r:.40}")
        self.agent = agent
        size = check_whole(concurrency, "concurrency", minimum=1)
        assert size is not None
        self.concurrency = size

    async def _execute(self, task: Envelope, run: RunContext) -> Envelope:
        items = _items(task.task)
        found: list[Envelope | None] = [None] * len(items)
        async with self.agent.run_batch(items, concurrency=self.concurrency) as results:
            async for index, envelope in results:
                found[index] = envelope
        branches = [env for env in found if env is not None]
        return fold_branches(branches, task)


def _items(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "")
    except ValueError:
        value = None
    if not isinstance(value, list):
        raise ValueError(f"map needs a list to map over (a list payload or a JSON array), got {text!r:.80}")
    return [item if isinstance(item, str) else json.dumps(item, ensure_ascii=False) for item in value]


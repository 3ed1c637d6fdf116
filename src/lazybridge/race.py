"""RaceAgent: the same task to N agents, the first good answer wins (``Agent.race``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._checks import check_seconds
from ._policies import Accept, FanOutPolicy, RacePolicy
from ._run import AgentBase
from .envelope import Envelope
from .parallel import ParallelAgent

if TYPE_CHECKING:
    from .budget import Budget
    from .session import Session

__all__ = ["RaceAgent"]


class RaceAgent(ParallelAgent):
    """Runs every racer on the same task; the first good answer wins and the rest are cancelled.

    Build it with :meth:`Agent.race(a, b, ...) <lazybridge.Agent.race>`.

    ``await race.run(task)`` (or ``race(task)``) returns ONE Envelope:

    * the winner's answer: its ``payload`` and ``text()``;
    * ``metadata.agent`` is the race's name; ``metadata.winner`` the label of
      the racer that won (its agent's name, numbered if names repeat), and
      ``metadata.model`` / ``provider`` are the winner's;
    * ``metadata.cost_usd`` / ``input_tokens`` / ``output_tokens`` include
      what *every* racer spent, the losers' responses received before they
      were cancelled too (all of it as ``nested_*``).

    A racer wins when its envelope is ok and ``accept(envelope)`` (if given)
    returns true; an ``accept`` that raises refuses that answer.  When no
    racer wins (each failed or was refused), the envelope is an error,
    :class:`~lazybridge.errors.NoWinner`, listing every racer's outcome -- the
    call never raises for it.  ``await race.run_branches(task)`` returns every
    racer's own envelope instead (the losers' slots hold
    :class:`~lazybridge.BranchCancelled` errors).

    Arguments:
        accept: ``fn(envelope) -> bool``, called in the event loop's thread
            as each ok answer arrives (keep it quick; it must not block).
        stagger: hedged requests.  With ``s`` seconds, racer ``i`` starts
            only if no racer has won ``i * s`` seconds after the start; a
            racer that fails (or is refused) starts the next waiting racer
            at once.  So a hedge costs a second request only when the first
            is slow.  ``None``: every racer starts at once.
        step_timeout: seconds each racer may *execute* (a racer over it fails,
            and the race goes on).
        concurrency_limit: at most this many racers run at once.

    Cancellation: when a racer wins, every other racer is cancelled at once --
    its HTTP requests aborted (the provider sees the connection close), its
    tools cancelled -- and awaited before the call returns; racers still
    waiting for their turn or a slot never start.  If the *caller* is
    cancelled, every racer is cancelled and awaited before the cancellation
    propagates.  Nothing the race started keeps running after it returns.
    """

    def __init__(
        self,
        *agents: AgentBase,
        accept: Accept | None = None,
        stagger: float | None = None,
        step_timeout: float | None = None,
        concurrency_limit: int | None = None,
        name: str = "race",
        description: str | None = None,
        session: Session | None = None,
        verbose: bool = False,
        budget: Budget | None = None,
    ) -> None:
        if accept is not None and not callable(accept):
            raise TypeError(f"accept must be a function of an Envelope returning a bool, or None, not {accept!r:.60}")
        self.accept = accept
        self.stagger = check_seconds(stagger, "stagger")
        super().__init__(
            *agents,
            concurrency_limit=concurrency_limit,
            step_timeout=step_timeout,
            name=name,
            description=description,
            session=session,
            verbose=verbose,
            budget=budget,
        )

    def _policy(self) -> RacePolicy:
        return RacePolicy(self.labels, accept=self.accept, stagger=self.stagger)

    def _conclude(self, branches: list[Envelope], task: Envelope, policy: FanOutPolicy | None) -> Envelope:
        assert isinstance(policy, RacePolicy)
        return policy.result(branches, task)

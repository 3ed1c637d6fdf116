"""ParallelAgent: deterministic fan-out of one task to N agents (``Agent.parallel``)."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio

from . import events
from ._cancellation import is_stray_cancellation
from ._checks import check_timeout, check_whole
from ._halt import Halt
from ._ids import new_run_id
from ._parallel_stream import ParallelStream
from ._policies import CompletionPolicy, FanOutPolicy
from ._run import AgentBase, check_agents
from ._scope import finish_data
from .budget import Account, Budget
from .envelope import Envelope, EnvelopeMetadata, branch_labels, fold_branches
from .errors import ConfigurationError
from .events import RunContext

if TYPE_CHECKING:
    from .session import Session


class ParallelAgent(AgentBase):
    """Runs every branch agent concurrently on the same task.

    Build it with :meth:`Agent.parallel(a, b, c, ...) <lazybridge.Agent.parallel>`.

    ``await panel.run(task)`` (or ``panel(task)``) returns ONE Envelope:

    * ``text()`` is the labelled join ``"[a]\\n<a text>\\n\\n[b]\\n<b text>"``
      (a failed branch reads ``(error) <message>``);
    * ``payload`` is the list of branch envelopes in input order, and the
      envelope itself is a sequence of them (``len(env)``, ``env[0]``,
      ``for branch in env``);
    * ``metadata.cost_usd`` / ``input_tokens`` / ``output_tokens`` are the
      sums over branches, equal to the ``nested_*`` fields;
      ``latency_ms`` is the fan-out's wall time (about the slowest branch);
    * ``error`` is the first branch error in input order, so ``ok`` is
      ``False`` if any branch failed -- unless a completion policy below
      decided the call.

    ``await panel.run_branches(task)`` returns the branch list directly.

    Arguments:
        concurrency_limit: at most this many branches run at once (a
            :class:`anyio.CapacityLimiter` created per call, so the cap
            applies to each call separately).  ``None``: all at once.
        step_timeout: seconds each branch may *execute*; the time it waits
            for a ``concurrency_limit`` slot does not count.  A branch over
            the limit is cancelled (its HTTP requests aborted) and its slot
            holds an error envelope with ``error.type == "TimeoutError"``;
            the other branches go on.
        budget: a :class:`~lazybridge.Budget` shared by every branch of one
            call (one account): no branch starts a model request the budget
            cannot cover, and a refused branch's slot holds a
            ``BudgetExceededError`` envelope.
        fail_fast: with ``True``, the first branch that fails (an error
            envelope, a ``step_timeout`` included) cancels every branch still
            running or waiting for a slot.  Their slots hold
            :class:`~lazybridge.BranchCancelled` error envelopes naming that
            failure (with what they spent before they stopped); the
            wrapper's ``error`` is the failure itself.
        quorum: with ``k``, the call returns as soon as ``k`` branches have
            succeeded: the others are cancelled the same way and the wrapper
            is ``ok``.  As soon as so many branches failed that ``k``
            successes are impossible, it returns with a
            :class:`~lazybridge.errors.QuorumUnreachable` error saying how many
            failed and which.  ``k`` must be in ``1..len(agents)``;
            ``quorum=len(agents), fail_fast=True`` is all-or-nothing.

    Errors and cancellation: a failing or timed-out branch never raises; the
    call returns normally with the error in that branch's slot.  If the
    *caller* is cancelled, every branch is cancelled and awaited before the
    cancellation propagates: nothing keeps running after the call returns.
    """

    def __init__(
        self,
        *agents: AgentBase,
        concurrency_limit: int | None = None,
        step_timeout: float | None = None,
        fail_fast: bool = False,
        quorum: int | None = None,
        name: str = "parallel",
        description: str | None = None,
        session: Session | None = None,
        verbose: bool = False,
        budget: Budget | None = None,
    ) -> None:
        self.agents = check_agents(agents, "Agent.parallel")
        self.concurrency_limit = check_whole(concurrency_limit, "concurrency_limit", optional=True)
        self.step_timeout = check_timeout(step_timeout, "step_timeout")
        if not isinstance(fail_fast, bool):
            raise TypeError(f"fail_fast must be True or False, not {fail_fast!r}")
        self.fail_fast = fail_fast
        self.quorum = check_whole(quorum, "quorum", optional=True)
        if self.quorum is not None and self.quorum > len(self.agents):
            raise ConfigurationError(
                f"quorum must be from 1 to the number of agents ({len(self.agents)}), not {quorum!r}"
            )
        #: Each branch's label in the join and the trace: its agent's name,
        #: numbered where the same name appears more than once.
        self.labels: tuple[str, ...] = tuple(branch_labels([agent.name for agent in self.agents]))
        super().__init__(
            name=name, description=description, session=session, verbose=verbose, timeout=None, budget=budget
        )

    def stream(self, task: str | Envelope, *, context: str | None = None) -> ParallelStream:
        """Every branch's answer as it arrives, interleaved; then the envelope ``run`` would return.

        ::

            async with panel.stream("What changed?") as stream:
                async for delta in stream:          # BranchDelta: a str with .branch and .index
                    print(f"[{delta.branch}] {delta}")
            env = stream.envelope                   # the labelled join, as run() returns it

        Use it with ``async with``: the branches run in a task group the block
        owns.  Back-pressure, errors and cancellation: see
        :class:`~lazybridge._parallel_stream.ParallelStream`.
        """
        return ParallelStream(self, task, context)

    def _branch_stream(self, task: Envelope, step_timeout: float | None, label: str) -> ParallelStream:
        return ParallelStream(self, task)

    async def run_branches(self, task: str | Envelope, *, context: str | None = None) -> list[Envelope]:
        """Run every branch on ``task``; the branch envelopes in input order.

        Same semantics as :meth:`run` (errors in their slots, cancellation
        propagated), without the folding into one envelope.
        """
        task_env = Envelope.from_task(task, context)
        ctx = events.child_context(new_run_id(), self.name, extra_sinks=self._sinks)
        if self.budget is not None:
            ctx.account = Account(self.budget, ctx)
        token = events.enter(ctx)
        try:
            branches = await self._fan_out(task_env, ctx, self._policy())
        finally:
            events.leave(token)
        return branches

    def _policy(self) -> FanOutPolicy | None:
        """This call's completion policy, or ``None``: every branch runs to its end."""
        if not self.fail_fast and self.quorum is None:
            return None
        return CompletionPolicy(self.labels, fail_fast=self.fail_fast, quorum=self.quorum)

    async def _execute(self, task: Envelope, run: RunContext) -> Envelope:
        policy = self._policy()
        return self._conclude(await self._fan_out(task, run, policy), task, policy)

    def _conclude(self, branches: list[Envelope], task: Envelope, policy: FanOutPolicy | None) -> Envelope:
        """The call's envelope from its branch envelopes (run and stream alike)."""
        folded = fold_branches(branches, task)
        if isinstance(policy, CompletionPolicy) and policy.decided:
            # The policy's verdict, not the first branch error: the failure that
            # triggered fail_fast, a reached quorum (ok), or an unreachable one.
            return Envelope(folded.task, folded.context, folded.payload, folded.metadata, policy.error)
        return folded

    async def _fan_out(self, task: Envelope, run: RunContext, policy: FanOutPolicy | None = None) -> list[Envelope]:
        n = len(self.agents)
        limiter = anyio.CapacityLimiter(self.concurrency_limit) if self.concurrency_limit else None
        traced = bool(run.sinks)
        if traced:
            run.emit(events.ParallelStartEvent, branches=n, names=list(self.labels))
        branch_run = run if traced else None
        started = time.perf_counter()
        # Each branch is a task whose return value is its envelope, named
        # after its agent so that a task dump of a live fan-out reads well.
        async with anyio.create_task_group() as tg:
            if policy is None:
                handles = [
                    tg.create_task(self._branch(index, agent, task, limiter, branch_run), name=f"{self.name}/{label}")
                    for index, (agent, label) in enumerate(zip(self.agents, self.labels, strict=True))
                ]
            else:
                policy.begin()
                handles = [
                    tg.create_task(
                        self._policy_branch(index, agent, task, limiter, branch_run, policy),
                        name=f"{self.name}/{label}",
                    )
                    for index, (agent, label) in enumerate(zip(self.agents, self.labels, strict=True))
                ]
        wall_ms = (time.perf_counter() - started) * 1000.0
        branches = [handle.return_value for handle in handles]
        if traced:
            run.emit(
                events.ParallelFinishEvent,
                branches=n,
                total_cost_usd=sum(b.metadata.cost_usd for b in branches),
                max_latency_ms=max(b.metadata.latency_ms for b in branches),
                wall_ms=wall_ms,
                failed=sum(1 for b in branches if not b.ok),
            )
        return branches

    def _branch(
        self,
        index: int,
        agent: AgentBase,
        task: Envelope,
        limiter: anyio.CapacityLimiter | None,
        run: RunContext | None,
    ) -> Coroutine[Any, Any, Envelope]:
        """The coroutine of one branch's task.

        A branch that needs no slot, deadline or trace label is the agent's
        own run (which returns errors as envelopes), with no coroutine around
        it: at ten thousand branches the frame and its allocations show.
        """
        if limiter is not None:
            return self._limited_branch(index, agent, task, limiter, run)
        if run is None and self.step_timeout is None and type(agent).run is AgentBase.run:
            return agent._run(task)  # the run itself: task is already an Envelope
        return self._execute_branch(index, agent, task, run)

    async def _limited_branch(
        self,
        index: int,
        agent: AgentBase,
        task: Envelope,
        limiter: anyio.CapacityLimiter,
        run: RunContext | None,
    ) -> Envelope:
        async with limiter:  # waiting here is outside the branch's step_timeout
            return await self._execute_branch(index, agent, task, run)

    def _policy_branch(
        self,
        index: int,
        agent: AgentBase,
        task: Envelope,
        limiter: anyio.CapacityLimiter | None,
        run: RunContext | None,
        policy: FanOutPolicy,
    ) -> Coroutine[Any, Any, Envelope]:
        """The coroutine of a branch under a completion policy: it may be stopped before or while it runs.

        The policy's own coroutine, running the agent's own run where
        :meth:`_branch` would (no trace label, ``run()`` not overridden): each
        frame fewer is one fewer for the cancellation of every loser of a race
        to pass through.
        """
        started = time.perf_counter()
        label, step_timeout = self.labels[index], self.step_timeout
        branch: Callable[[Halt], Awaitable[Envelope]]
        if run is None and type(agent).run is AgentBase.run:
            def branch(halt: Halt) -> Awaitable[Envelope]:
                return agent._run(task, step_timeout=step_timeout, step_label=label, halt=halt)
        else:
            def branch(halt: Halt) -> Awaitable[Envelope]:
                return self._execute_branch(index, agent, task, run, halt)
        return policy.run_branch(
            index, limiter, branch, lambda error: self._error_envelope(error, agent, task, started)
        )

    async def _execute_branch(
        self,
        index: int,
        agent: AgentBase,
        task: Envelope,
        run: RunContext | None,
        halt: Halt | None = None,
    ) -> Envelope:
        label = self.labels[index]
        branch_ctx = None
        if run is not None:
            # Label everything this branch emits (its agent, that agent's
            # sub-agents) with the branch's path: a parallel nested in a branch
            # labels its own branches "outer/inner".  The context is this child
            # task's own copy, so the label does not leak to siblings.
            branch_ctx = run.labelled(f"{run.branch}/{label}" if run.branch else label)
            events.enter(branch_ctx)
            branch_ctx.emit(events.BranchStartEvent, index=index, model=agent.model)
        started = time.perf_counter()
        try:
            if type(agent).run is AgentBase.run:
                # The deadline is enforced inside the branch's own run, so a
                # timed-out branch still reports its run id, spend and finish event.
                env = await agent._run(task, step_timeout=self.step_timeout, step_label=label, halt=halt)
            elif self.step_timeout is None and halt is None:
                env = await agent.run(task)
            else:
                env = await self._run_overridden(agent, task, label, halt, started)
        except Exception as exc:  # AgentBase.run returns errors; this guards subclasses that override it
            env = self._error_envelope(exc, agent, task, started)
        except BaseException as exc:
            if not is_stray_cancellation(exc):  # a real cancellation propagates
                raise
            env = self._error_envelope(exc, agent, task, started)
        if branch_ctx is not None:
            branch_ctx.emit(events.BranchFinishEvent, index=index, **finish_data(env))
        return env

    async def _run_overridden(
        self, agent: AgentBase, task: Envelope, label: str, halt: Halt | None, started: float
    ) -> Envelope:
        """An agent with its own ``run()``, under the branch's deadline and halt, stopped from outside."""
        with anyio.move_on_after(math.inf if self.step_timeout is None else self.step_timeout) as scope:
            if halt is not None:
                halt.watch(scope)
            try:
                return await agent.run(task)
            finally:
                if halt is not None:
                    halt.unwatch(scope)
        if halt is not None and halt.stopped:
            return self._error_envelope(halt.error(label), agent, task, started)
        timeout = TimeoutError(f"branch {label!r} exceeded step_timeout={self.step_timeout or 0.0:g}s")
        return self._error_envelope(timeout, agent, task, started)

    def _error_envelope(self, error: BaseException, agent: AgentBase, task: Envelope, started: float) -> Envelope:
        """The slot of a branch whose overridden ``run()`` raised or was timed out from outside."""
        return Envelope.error_envelope(
            error,
            task=task.task,
            metadata=EnvelopeMetadata(
                run_id=new_run_id(),
                agent=agent.name,
                model=agent.model,
                provider=agent.provider,
                latency_ms=(time.perf_counter() - started) * 1000.0,
            ),
        )

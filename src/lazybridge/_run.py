"""AgentBase: what every runnable agent shares, and how a run is run.

``await agent.run(task)`` returns an :class:`~lazybridge.envelope.Envelope`
and never raises for a failure of the run itself (a provider error, a
timeout, a tool loop that ran out of turns): those come back as error
envelopes.  ``agent(task)`` is the synchronous twin.

This module is below every composition primitive (``parallel``, ``Plan``,
``chain``) and the :class:`~lazybridge.Agent` facade: they import it, it
imports none of them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from . import events
from ._cancellation import is_stray_cancellation
from ._checkpoint import read_checkpoint
from ._checks import check_name, check_timeout, check_whole
from ._deadlines import StepDeadline
from ._halt import Halt
from ._scope import agent_timeout, begin_run, cancel_run, end_run, end_stopped_run, spent_metadata
from ._stream import AgentStream, EngineStream
from ._sync import run_sync
from ._trace import TracePrinter
from .batch import DEFAULT_CONCURRENCY, BatchRun, Tasks, check_batch_arguments
from .budget import Budget, check_budget
from .envelope import Envelope
from .errors import ConfigurationError
from .events import RunContext, Sink
from .tools import Tool

if TYPE_CHECKING:
    from .session import Session

__all__ = ["AgentBase", "check_agents"]


def check_agents(agents: Sequence[object], what: str) -> tuple[AgentBase, ...]:
    """Validate the agents handed to a composition primitive."""
    if not agents:
        raise ConfigurationError(f"{what} needs at least one agent")
    for position, agent in enumerate(agents):
        if not isinstance(agent, AgentBase):
            raise TypeError(
                f"{what}: argument {position} must be an Agent (or ParallelAgent), "
                f"not {type(agent).__name__} {agent!r:.60}"
            )
    return tuple(agents)  # type: ignore[arg-type]


async def _collect(run: BatchRun, checkpoint: str | os.PathLike[str] | None) -> list[Envelope]:
    found: dict[int, Envelope] = {}
    async with run as results:
        async for index, envelope in results:
            found[index] = envelope
    if run.skipped and checkpoint is not None:
        stored = await anyio.to_thread.run_sync(_read_missing, checkpoint, found, run.count)
        found.update(stored)
    return [found[index] for index in range(run.count)]


def _read_missing(path: str | os.PathLike[str], found: dict[int, Envelope], count: int) -> dict[int, Envelope]:
    return {index: env for index, env in read_checkpoint(path) if index < count and index not in found}


class AgentBase:
    """What every runnable agent shares: name, session, tracing, the sync twin and ``as_tool``.

    Subclasses implement :meth:`_execute`; :meth:`run` owns the run id, the
    run context, the deadline and the conversion of exceptions into error
    envelopes.
    """

    name: str
    description: str | None
    session: Session | None
    verbose: bool
    timeout: float | None
    budget: Budget | None

    def __init__(
        self,
        *,
        name: str,
        description: str | None,
        session: Session | None,
        verbose: bool,
        timeout: float | None,
        budget: Budget | None = None,
    ) -> None:
        self.name: str = check_name(name, "name")  # type: ignore[assignment]
        if description is not None and not isinstance(description, str):
            raise TypeError(f"description must be a string or None, not {type(description).__name__}")
        self.description = description
        if session is not None and not callable(getattr(session, "emit", None)):
            raise TypeError(f"session must be a lazybridge.Session or None, not {type(session).__name__} {session!r:.40}")
        self.session = session
        self.verbose = bool(verbose)
        self.timeout = check_timeout(timeout, "timeout")
        self.budget = check_budget(budget)
        self._sinks = self._make_sinks()

    def _make_sinks(self) -> tuple[Sink, ...]:
        sinks: list[Sink] = []
        if self.session is not None:
            sinks.append(self.session.emit)
        if self.verbose:
            sinks.append(TracePrinter())
        return tuple(sinks)

    @property
    def model(self) -> str | None:
        """The model shown in traces, if this agent has one."""
        return None

    @property
    def provider(self) -> str | None:
        """The provider this agent's model is reached through, if it has one."""
        return None

    # -- running -------------------------------------------------------------

    async def run(self, task: str | Envelope, *, context: str | None = None) -> Envelope:
        """Run the agent on ``task`` and return its envelope.

        Args:
            task: the question, or an Envelope whose ``text()`` is the task
                (so one agent's result can be the next one's input).
            context: extra text given to the model next to the task.

        Returns:
            The run's Envelope: ``text()``, ``payload``, ``metadata`` (model,
            tokens, ``cost_usd``, latency, run id) and ``error`` (``None``
            when ``ok``).

        Errors: a failure during the run (provider error, tool loop limit,
        ``timeout``) is returned as an error envelope, never raised.  A
        ``task`` that is neither a ``str`` nor an Envelope raises
        ``TypeError`` at once.

        Cancellation: if the caller is cancelled, the run -- every HTTP
        request, tool call and branch it started -- is cancelled and awaited
        before the cancellation propagates; nothing keeps running.  When
        ``timeout`` runs out the run is cancelled the same way and a
        ``TimeoutError`` envelope is returned.
        """
        return await self._run(Envelope.from_task(task, context))

    async def _run(
        self,
        task_env: Envelope,
        *,
        step_timeout: float | None = None,
        step_label: str | None = None,
        halt: Halt | None = None,
    ) -> Envelope:
        """:meth:`run`, with an optional second deadline and a halt set by whoever started it.

        ``Agent.parallel`` passes its ``step_timeout`` here, so that a timed-out
        branch is ended *inside* its own run: its envelope keeps the run id of
        its start event, what it spent and who it is, and its finish event is
        emitted like any other.  A completion policy (fail-fast, quorum, race)
        passes its ``halt`` for the same reason: a branch it stops returns a
        ``BranchCancelled`` envelope with its run id and spend.
        """
        ctx = begin_run(self, task_env)
        result: Envelope | None
        token = None
        finished = False
        try:
            try:
                # Only nested runs read the context variable; a run that cannot
                # start one leaves it alone (three objects fewer per branch of a
                # fan-out).  The engine's answer is its code, so it is asked
                # inside the try: if it raises, the run fails, not the caller.
                if self._starts_nested_runs():
                    token = events.enter(ctx)
                if self.timeout is None and step_timeout is None and halt is None:
                    result = await self._execute(task_env, ctx)
                else:
                    result = await self._execute_with_deadlines(task_env, ctx, step_timeout, step_label, halt)
            except Exception as exc:  # isolate the failure; cancellation is not an Exception
                result = Envelope.error_envelope(exc, metadata=spent_metadata(self, ctx))
            except BaseException as exc:
                # A CancelledError the run raised itself (a buggy library) is its
                # own failure; a real cancellation propagates (see _cancellation).
                if not is_stray_cancellation(exc):
                    raise
                result = Envelope.error_envelope(exc, metadata=spent_metadata(self, ctx))
            finished = True
            if result is None:  # stopped by the halt (so halt is set)
                assert halt is not None
                return end_stopped_run(self, ctx, task_env, halt.error(step_label or self.name))
            return end_run(self, ctx, task_env, result)
        finally:
            if token is not None:
                events.leave(token)
            if not finished:
                # Cancelled from outside (a caller's deadline, a sibling's
                # failure): the run still reports what it spent, under its own
                # run id, before the cancellation propagates.
                cancel_run(self, ctx, task_env)

    async def _execute_with_deadlines(
        self,
        task: Envelope,
        ctx: RunContext,
        step_timeout: float | None,
        step_label: str | None,
        halt: Halt | None = None,
    ) -> Envelope | None:
        """:meth:`_execute` under the run's deadlines: its envelope, or ``None`` if ``halt`` stopped it.

        A halted run's envelope is built by ``_run`` (:func:`end_stopped_run`),
        stamped in one go.
        """
        own = self.timeout
        step: StepDeadline | None = None
        with anyio.CancelScope() as scope:
            cap = math.inf if own is None else anyio.current_time() + own
            scope.deadline = cap
            if halt is not None:
                halt.watch(scope)
            try:
                if step_timeout is None:
                    return await self._execute(task, ctx)
                # The step deadline stands still while the run waits for a pooled
                # connection, as it does for a concurrency_limit slot (_deadlines).
                with StepDeadline(scope, step_timeout, cap=cap) as step:
                    return await self._execute(task, ctx)
            finally:
                if halt is not None:
                    halt.unwatch(scope)
        # The scope's own deadline ran out or the halt cancelled it: only those land here.
        if halt is not None and halt.stopped:
            return None
        if step is not None and step.ran_out():
            message = f"branch {step_label or self.name!r} exceeded step_timeout={step_timeout:g}s"
            return Envelope.error_envelope(TimeoutError(message), metadata=spent_metadata(self, ctx))
        return Envelope.error_envelope(agent_timeout(self), metadata=spent_metadata(self, ctx))

    def _execute(self, task: Envelope, run: RunContext) -> Awaitable[Envelope]:
        raise NotImplementedError

    def _starts_nested_runs(self) -> bool:
        """Whether a run may start nested runs, which need this run's context published."""
        return True

    def _branch_stream(self, task: Envelope, step_timeout: float | None, label: str) -> AgentStream:
        """This agent's stream as a branch of a merged parallel stream (the step's deadline inside it)."""
        return AgentStream(self, task, step_timeout=step_timeout, step_label=label)

    def _engine_stream(self, task: Envelope, run: RunContext) -> EngineStream | None:
        """The run as its engine streams it, or ``None``: then :meth:`stream` yields the answer whole."""
        return None

    def __call__(self, task: str | Envelope, *, context: str | None = None) -> Envelope:
        """Synchronous :meth:`run`: works in scripts, notebooks and inside ``trio.run``.

        Args:
            task: the question, or an Envelope whose ``text()`` is the task.
            context: extra text given to the model next to the task.

        Returns:
            The same Envelope ``await agent.run(task)`` returns.

        Inside a running event loop it blocks that loop's thread while a
        private loop on a worker thread does the work; from async code
        prefer ``await agent.run(task)``.
        """
        return run_sync(self._run_positional, task, context)

    async def _run_positional(self, task: str | Envelope, context: str | None) -> Envelope:
        return await self.run(task, context=context)

    def stream(self, task: str | Envelope, *, context: str | None = None) -> AgentStream:
        """Run the agent on ``task``, yielding the answer's text as it arrives.

        Args:
            task: the question, or an Envelope whose ``text()`` is the task.
            context: extra text given to the model next to the task.

        ::

            async with agent.stream("Explain SSE") as stream:
                async for delta in stream:
                    print(delta, end="")
            env = stream.envelope       # what run() would have returned

        Nothing is sent until the first delta is awaited.  ``async for delta
        in agent.stream(task)`` alone also works and closes the response when
        the stream ends or fails; use ``async with`` whenever you may stop
        early.  An engine that cannot stream yields its answer as one chunk.

        Errors: a failed run raises from the iteration (the provider's
        exception, or ``TimeoutError`` for the agent's ``timeout``), and
        ``stream.envelope`` is then the error envelope.

        Cancellation: cancelling the consumer while it awaits a delta closes
        the HTTP response (the provider sees the connection drop) before the
        cancellation propagates.  See :class:`~lazybridge._stream.AgentStream`.
        """
        return AgentStream(self, task, context)

    def run_batch(
        self,
        tasks: Tasks,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        ordered: bool = False,
        window: int | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        budget: Budget | None = None,
        progress: bool = False,
        retry_failed: bool = True,
        total: int | None = None,
    ) -> BatchRun:
        """Run the agent on every task of ``tasks``, yielding ``(index, envelope)`` as each finishes.

        ::

            async with agent.run_batch(tickets, concurrency=64) as results:
                async for index, env in results:
                    print(index, env.ok, env.text())

        Args:
            tasks: an iterable or async iterable of tasks (str or Envelope),
                pulled lazily, one more each time a slot frees: a generator
                over a file of any size runs in flat memory.
            concurrency: the most tasks in flight at once.
            ordered: yield in input order instead of as completed.
            window: with ``ordered=True``, how far ahead of the oldest
                unfinished task new tasks may start (default
                ``2 * concurrency``); a slow task holds back at most this
                many results.
            checkpoint: a SQLite file where each finished envelope is stored
                under its index and a hash of its task, written from a
                thread (never blocking the event loop).  Running the batch
                again with the same file skips the tasks stored there and
                yields only the others; read everything back with
                :func:`lazybridge.read_checkpoint`.
            budget: one :class:`~lazybridge.Budget` for the whole batch, an
                account shared by every task (on top of the agent's own
                ``budget=``, which applies to each task's run).  Once it is
                spent the remaining tasks come back as
                ``BudgetExceededError`` envelopes without sending anything.
            progress: show done / failed / in flight, cost, throughput and
                ETA on stderr (a live bar with the ``progress`` extra on a
                terminal, log lines otherwise).  The ETA needs the number of
                tasks: ``len(tasks)`` when the input has a length, else
                ``total``; with neither there is no ETA.
            retry_failed: on a re-run from a checkpoint, run again the tasks
                whose stored envelope is an error (``False``: skip them too).
            total: the number of tasks, for the progress display's ETA when
                ``tasks`` has no ``len()`` (a generator, an async iterable);
                it only informs the display and never limits the batch.

        Errors: bad arguments raise at once, naming the argument.  A task's
        failure is its error envelope in its place, and never stops the batch.

        Cancellation: leaving the block early or cancelling the caller
        cancels the tasks in flight and waits for them; whatever finished is
        in the checkpoint first.  See :class:`~lazybridge.BatchRun`.
        """
        size, span, path, shared = check_batch_arguments(tasks, concurrency, ordered, window, checkpoint, budget)
        expected = check_whole(total, "total", minimum=0, optional=True)
        return BatchRun(
            self, tasks, concurrency=size, ordered=bool(ordered), window=span, checkpoint=path,
            budget=shared, progress=bool(progress), retry_failed=bool(retry_failed), total=expected,
        )

    def batch(
        self,
        tasks: Tasks,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        checkpoint: str | os.PathLike[str] | None = None,
        budget: Budget | None = None,
        progress: bool = False,
        retry_failed: bool = True,
        total: int | None = None,
    ) -> list[Envelope]:
        """Synchronous batch: every task's envelope, in input order (a list the size of the input).

        The arguments are :meth:`run_batch`'s.  Tasks skipped because the
        ``checkpoint`` had them are read back from it, so the list is always
        complete.  Ctrl-C cancels the tasks in flight, keeps what finished in
        the checkpoint, and raises ``KeyboardInterrupt``.  For inputs too
        large to hold every result, iterate :meth:`run_batch` instead.
        """
        run = self.run_batch(
            tasks, concurrency=concurrency, ordered=False, checkpoint=checkpoint, budget=budget,
            progress=progress, retry_failed=retry_failed, total=total,
        )
        return run_sync(_collect, run, checkpoint)

    def as_tool(self, name: str | None = None, description: str | None = None) -> Tool:
        """This agent as a :class:`~lazybridge.tools.Tool` with one parameter, ``task``.

        Args:
            name: the tool's name as the model sees it (default: the agent's name).
            description: what the model is told the tool does (default: the
                agent's ``description``, else "Delegate a task to the ... agent").

        The tool returns the agent's Envelope, so a calling engine can roll
        its cost and tokens up into its own ``nested_*`` totals.
        """
        async def run_agent(task: str) -> Envelope:
            return await self.run(task)

        return Tool.from_schema(
            name or self.name,
            description or self.description or f"Delegate a task to the {self.name!r} agent.",
            {
                "type": "object",
                "properties": {"task": {"type": "string", "description": "The task for the agent."}},
                "required": ["task"],
                "additionalProperties": False,
            },
            run_agent,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

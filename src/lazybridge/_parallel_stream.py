"""Merged live streaming of a fan-out: ``async with panel.stream(task) as stream``.

Every branch streams its own answer (an LLM agent streams its deltas; an
agent that cannot stream sends its answer as one delta when it is done) and
the deltas reach the consumer interleaved, in arrival order, as
:class:`BranchDelta` values: a ``str`` (the text) that also says which branch
it came from.  When the stream ends, :attr:`ParallelStream.envelope` is the
envelope ``panel.run(task)`` would have returned.

The branches run in a task group that the ``async with`` block owns: it is
opened on entering and closed on leaving, so nothing outlives the block.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from . import events
from ._halt import Halt
from ._policies import FanOutPolicy
from ._scope import begin_run, cancel_run, end_run, finish_data, spent_metadata
from ._stream import AgentStream
from .envelope import Envelope, EnvelopeMetadata

if TYPE_CHECKING:
    from .parallel import ParallelAgent

__all__ = ["BranchDelta", "ParallelStream"]


class BranchDelta(str):
    """A piece of one branch's answer in a merged stream: the text, with where it came from.

    It *is* the text (a ``str``: ``print(delta, end="")`` works), and adds
    ``branch`` -- the branch's label, with its path for a nested parallel
    (``"inner/a"``) -- and ``index``, the branch's position in the panel.
    """

    branch: str
    # An instance attribute that shadows str.index for this value: the issue's
    # API names it so, and a delta is read, not searched.
    index: int  # type: ignore[assignment]

    def __new__(cls, text: str, *, branch: str, index: int) -> BranchDelta:
        delta = super().__new__(cls, text)
        delta.branch = branch
        delta.index = index
        return delta

    @property
    def text(self) -> str:
        """The delta's text as a plain ``str``."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"BranchDelta({self.text!r}, branch={self.branch!r}, index={self.index})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_branch_delta, (self.text, self.branch, self.index))


def _branch_delta(text: str, branch: str, index: int) -> BranchDelta:
    return BranchDelta(text, branch=branch, index=index)


class ParallelStream(AgentStream):
    """The deltas of every branch of a fan-out as they arrive; then :attr:`envelope`.

    ::

        async with panel.stream("What changed in 2026?") as stream:
            async for delta in stream:
                print(f"[{delta.branch}] {delta}")
        print(stream.envelope.text())      # the labelled join, as run() returns it

    Use it with ``async with``: the branches run in a task group that the
    block owns (iterating without entering raises ``RuntimeError``).

    Back-pressure: a branch that has a delta for a consumer that is not
    reading waits until it is taken (no buffer), so memory stays bounded by
    one pending delta per branch however slow the consumer is, and each
    branch's HTTP response is read no faster than it is consumed.  Waiting
    for the consumer counts towards ``step_timeout`` like any time, but a
    deadline is only enforced while the branch waits for its next delta.

    Errors: a branch's failure or timeout is its error envelope in
    ``stream.envelope`` (as with ``run``); the iteration itself does not raise
    for it.

    Cancellation: leaving the block early, or cancelling the consumer,
    cancels every branch -- each closes its HTTP response -- and waits for
    them before the block ends; every branch's run still reports what it
    spent (its ``agent_finish`` event says ``RunCancelled``).
    """

    def __init__(self, panel: ParallelAgent, task: str | Envelope, context: str | None = None) -> None:
        super().__init__(panel, task, context)
        self._panel = panel
        self._group: anyio.abc.TaskGroup | None = None
        self._receive: MemoryObjectReceiveStream[BranchDelta] | None = None
        self._result: Envelope | None = None
        self._policy: FanOutPolicy | None = None

    async def __aenter__(self) -> ParallelStream:
        if self._group is not None:
            raise RuntimeError("this stream was already entered")
        panel, task = self._panel, self._task
        ctx = self._ctx = begin_run(panel, task)
        send, self._receive = anyio.create_memory_object_stream[BranchDelta](0)
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        # The branches' runs nest in the panel's run: they read it from the
        # context variable, which start_soon copies into the new task.
        token = events.enter(ctx)
        try:
            group.start_soon(self._fan_out, send, name=f"{panel.name}/stream")
        finally:
            events.leave(token)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        group, self._group = self._group, None
        if group is None:
            return None
        if self.envelope is None:
            group.cancel_scope.cancel()  # left before the end: stop every branch
        try:
            return await group.__aexit__(exc_type, exc, tb)
        finally:
            if self._receive is not None:
                self._receive.close()
            if self.envelope is None and self._ctx is not None and not self._closed:
                cancel_run(self._panel, self._ctx, self._task)
            self._closed = True

    def __aiter__(self) -> ParallelStream:
        return self

    async def __anext__(self) -> str:
        if self.envelope is not None or self._closed:
            raise StopAsyncIteration
        if self._receive is None:
            raise RuntimeError(
                "a parallel's stream runs its branches in a task group: "
                "use `async with panel.stream(task) as stream:`"
            )
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            assert self._result is not None and self._ctx is not None
            self.envelope = end_run(self._panel, self._ctx, self._task, self._result)
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Stop the stream: cancel the branches still running (idempotent).

        Prefer leaving the ``async with`` block, which also waits for them.
        """
        if self._group is not None and self.envelope is None:
            self._group.cancel_scope.cancel()

    # -- the branches ------------------------------------------------------------------

    async def _fan_out(self, send: MemoryObjectSendStream[BranchDelta]) -> None:
        panel, task = self._panel, self._task
        run = events.current_run()
        assert run is not None
        n = len(panel.agents)
        limiter = anyio.CapacityLimiter(panel.concurrency_limit) if panel.concurrency_limit else None
        traced = bool(run.sinks)
        if traced:
            run.emit(events.ParallelStartEvent, branches=n, names=list(panel.labels))
        started = time.perf_counter()
        policy = self._policy = panel._policy()  # fail_fast, quorum, a race: as for run()
        if policy is not None:
            policy.begin()
        branches: list[Envelope | None] = [None] * n
        async with send:
            async with anyio.create_task_group() as group:
                for index in range(n):
                    group.start_soon(
                        self._branch, index, send, limiter, branches, name=f"{panel.name}/{panel.labels[index]}"
                    )
            done: list[Envelope] = [b for b in branches if b is not None]
            wall_ms = (time.perf_counter() - started) * 1000.0
            if traced:
                run.emit(
                    events.ParallelFinishEvent,
                    branches=n,
                    total_cost_usd=sum(b.metadata.cost_usd for b in done),
                    max_latency_ms=max(b.metadata.latency_ms for b in done),
                    wall_ms=wall_ms,
                    failed=sum(1 for b in done if not b.ok),
                )

            self._result = panel._conclude(done, task, policy)

    async def _branch(
        self,
        index: int,
        send: MemoryObjectSendStream[BranchDelta],
        limiter: anyio.CapacityLimiter | None,
        branches: list[Envelope | None],
    ) -> None:
        policy = self._policy
        if policy is None:
            if limiter is None:
                branches[index] = await self._stream_branch(index, send, None)
            else:
                async with limiter:  # waiting here is outside the branch's step_timeout
                    branches[index] = await self._stream_branch(index, send, None)
            return
        agent = self._panel.agents[index]
        branches[index] = await policy.run_branch(
            index,
            limiter,
            lambda halt: self._stream_branch(index, send, halt),
            lambda error: Envelope.error_envelope(
                error,
                task=self._task.task,
                metadata=EnvelopeMetadata(agent=agent.name, model=agent.model, provider=agent.provider),
            ),
        )

    async def _stream_branch(
        self, index: int, send: MemoryObjectSendStream[BranchDelta], halt: Halt | None
    ) -> Envelope:
        panel = self._panel
        agent, label = panel.agents[index], panel.labels[index]
        run = events.current_run()
        assert run is not None
        path = f"{run.branch}/{label}" if run.branch else label
        branch_ctx = run.labelled(path)
        events.enter(branch_ctx)  # this task's own copy of the context
        if branch_ctx.sinks:
            branch_ctx.emit(events.BranchStartEvent, index=index, model=agent.model)
        stream = agent._branch_stream(self._task, panel.step_timeout, label)
        env: Envelope | None = None
        try:
            with anyio.CancelScope() as deadline:
                if panel.step_timeout is not None and isinstance(stream, ParallelStream):
                    # A nested fan-out has no deadline of its own to carry the step's.
                    deadline.deadline = anyio.current_time() + panel.step_timeout
                if halt is not None:
                    halt.watch(deadline)
                try:
                    async with stream:
                        async for delta in stream:
                            inner = delta.branch if isinstance(delta, BranchDelta) else None
                            path_label = f"{label}/{inner}" if inner else label
                            await send.send(BranchDelta(delta, branch=path_label, index=index))
                finally:
                    if halt is not None:
                        halt.unwatch(deadline)
            if deadline.cancelled_caught and stream._ctx is not None:
                error: Exception
                if halt is not None and halt.stopped:
                    error = halt.error(label)
                else:
                    error = TimeoutError(f"branch {label!r} exceeded step_timeout={panel.step_timeout:g}s")
                env = Envelope.error_envelope(error, metadata=spent_metadata(agent, stream._ctx))
        except Exception:  # the branch's failure: its stream already holds its error envelope
            pass
        if env is None:
            env = stream.envelope
        if env is None:  # failed before its run began
            env = Envelope.error_envelope(RuntimeError(f"branch {label!r} produced no result"))
        if branch_ctx.sinks:
            branch_ctx.emit(events.BranchFinishEvent, index=index, **finish_data(env))
        return env

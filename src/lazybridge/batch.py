"""Batches: many tasks through one agent, with a concurrency bound, in flat memory.

``agent.run_batch(tasks)`` (any agent: an Agent, a parallel, a race, a
chain, a Plan agent) runs every task of an iterable or async iterable and
yields ``(index, envelope)`` as each finishes; ``agent.batch(tasks)`` is the
synchronous form that returns the envelopes in input order.  The names
follow the agent's own (``run``, ``run_branches``) and the convention users
know from LangChain (``batch`` returns a list, the streaming form yields as
completed).

How memory stays flat: the input is pulled one task at a time, only when a
slot is free; a finished envelope is handed to the consumer and kept by
nobody else (a finished task waits for the consumer to take its result
before its slot frees: back pressure).  At most ``concurrency`` tasks are in
flight, and in ordered mode at most ``window`` finished-but-not-yet-yielded
envelopes are held.
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, TypeAlias

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from . import events
from ._batch_progress import BatchProgress
from ._checkpoint import CheckpointWriter, done_keys, task_hash
from ._checks import check_whole
from ._ids import new_run_id
from .budget import Account, Budget, check_budget
from .envelope import Envelope
from .errors import ConfigurationError

if TYPE_CHECKING:
    from ._run import AgentBase

__all__ = ["DEFAULT_CONCURRENCY", "BatchRun", "Tasks"]

#: Tasks: str or Envelope items, from a sync or an async iterable.
Tasks: TypeAlias = "Iterable[str | Envelope] | AsyncIterable[str | Envelope]"

#: Tasks in flight at once when ``concurrency`` is not given.
DEFAULT_CONCURRENCY = 16

_Result: TypeAlias = "tuple[int, Envelope | None]"


def check_batch_arguments(
    tasks: object,
    concurrency: object,
    ordered: object,
    window: object,
    checkpoint: object,
    budget: object,
) -> tuple[int, int, str | os.PathLike[str] | None, Budget | None]:
    """The checked ``(concurrency, window, checkpoint, budget)``; raises naming the bad argument."""
    if isinstance(tasks, (str, bytes, Envelope)) or not (
        isinstance(tasks, Iterable) or isinstance(tasks, AsyncIterable)
    ):
        raise TypeError(
            f"tasks must be an iterable or async iterable of str or Envelope, not {type(tasks).__name__} {tasks!r:.40}"
        )
    size = check_whole(concurrency, "concurrency", minimum=1)  # type: ignore[arg-type]
    assert size is not None
    if window is None:
        span = 2 * size
    else:
        span_checked = check_whole(window, "window", minimum=1)  # type: ignore[arg-type]
        assert span_checked is not None
        span = span_checked
        if not ordered:
            raise ConfigurationError("window is the reorder window of ordered=True; it needs ordered=True")
        if span < size:
            raise ConfigurationError(f"window must be at least concurrency ({size}), not {span}")
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a file path (str or os.PathLike) or None, not {type(checkpoint).__name__}")
    return size, span, checkpoint, check_budget(budget)


class BatchRun:
    """A running batch: ``async with agent.run_batch(tasks) as results: async for index, env in results``.

    Created by :meth:`AgentBase.run_batch <lazybridge.AgentBase.run_batch>`;
    see there for the arguments.  Entering starts the batch; iterating yields
    ``(index, envelope)`` pairs -- as they finish, or in input order with
    ``ordered=True``.  It owns a task group, so it is always used as ``async with`` (its block
    is where the tasks run; leaving it ends them).

    Errors: a task's failure is its error envelope, in its place; a task that
    is neither a str nor an Envelope gets a ``TypeError`` envelope.  Nothing
    a task does stops the batch.  A failure to *write* the checkpoint (a full
    disk) is raised when the batch closes, after every finished envelope that
    could be written was.

    Cancellation: leaving the ``async with`` early, or cancelling the
    consumer, cancels the tasks in flight and waits for them; every envelope
    that had finished is in the checkpoint before the cancellation
    propagates (the final write is shielded).  Ctrl-C in ``agent.batch`` is
    such a cancellation.
    """

    def __init__(
        self,
        agent: AgentBase,
        tasks: Tasks,
        *,
        concurrency: int,
        ordered: bool,
        window: int,
        checkpoint: str | os.PathLike[str] | None,
        budget: Budget | None,
        progress: bool | BatchProgress,
        retry_failed: bool,
        total: int | None = None,
    ) -> None:
        self._agent = agent
        self._tasks = tasks
        self._concurrency = concurrency
        self._ordered = ordered
        self._window = window
        self._checkpoint_path = checkpoint
        self._budget = budget
        self._progress_option = progress
        self._retry_failed = retry_failed
        self._total = total
        self._group: TaskGroup | None = None
        self._receive: MemoryObjectReceiveStream[_Result] | None = None
        self._writer: CheckpointWriter | None = None
        self._progress: BatchProgress | None = None
        self._entered = False
        #: Tasks skipped because the checkpoint had them (counted as the batch runs).
        self.skipped = 0
        #: Tasks taken from the input so far.
        self.count = 0

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> BatchRun:
        if self._entered:
            raise RuntimeError("a BatchRun can be entered once; call run_batch() again for a new batch")
        self._entered = True
        done: dict[int, str] = {}
        if self._checkpoint_path is not None:
            done = await anyio.to_thread.run_sync(
                lambda: done_keys(self._checkpoint_path, include_failed=not self._retry_failed)  # type: ignore[arg-type]
            )
            self._writer = CheckpointWriter(self._checkpoint_path)
            await self._writer.open()
        if isinstance(self._progress_option, BatchProgress):
            self._progress = self._progress_option
        elif self._progress_option:
            total = self._total
            if total is None and hasattr(self._tasks, "__len__"):
                total = len(self._tasks)  # type: ignore[arg-type]
            self._progress = BatchProgress(total)
        # Zero buffer: a finished task hands its envelope straight to the
        # consumer (or the reorderer), so nothing piles up if the consumer is slow.
        send, receive = anyio.create_memory_object_stream[_Result](0)
        self._receive = receive
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        group.start_soon(self._produce, send, done)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        group, self._group = self._group, None
        try:
            if group is not None:
                if exc_type is not None or not self._finished:
                    group.cancel_scope.cancel()  # left early: the tasks in flight are cancelled
                if self._receive is not None:
                    self._receive.close()
                # The block's own exception is not handed to the group: it
                # propagates as it is, not wrapped in an exception group.
                await group.__aexit__(None, None, None)
        finally:
            try:
                if self._writer is not None:
                    await self._writer.close()
            finally:
                if self._progress is not None:
                    self._progress.close()
        return None

    _finished = False

    def __aiter__(self) -> BatchRun:
        if not self._entered:
            raise RuntimeError("iterate a batch inside its block: async with agent.run_batch(tasks) as results: ...")
        return self

    async def __anext__(self) -> tuple[int, Envelope]:
        # A plain iterator rather than an async generator: a generator left
        # unfinished (a break) would be finalised by the garbage collector.
        assert self._receive is not None
        while True:
            try:
                index, envelope = await self._receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                self._finished = True
                raise StopAsyncIteration from None
            if envelope is not None:
                return index, envelope

    # -- the producer ------------------------------------------------------------

    async def _produce(self, out: MemoryObjectSendStream[_Result], done: dict[int, str]) -> None:
        token = None
        if self._budget is not None:
            # One account for the whole batch: every task's run is nested in this
            # context, so each request reserves from it (see lazybridge.budget).
            ctx = events.child_context(new_run_id(), self._agent.name, extra_sinks=())
            ctx.account = Account(self._budget, ctx)
            token = events.enter(ctx)
        try:
            async with out:
                if self._ordered:
                    inner_send, inner_receive = anyio.create_memory_object_stream[_Result](math.inf)
                    window = anyio.Semaphore(self._window)
                    async with anyio.create_task_group() as group:
                        group.start_soon(self._reorder, inner_receive, out, window)
                        async with inner_send:
                            await self._feed(inner_send, done, window)
                else:
                    await self._feed(out, done, None)
        finally:
            if token is not None:
                events.leave(token)

    async def _feed(
        self, out: MemoryObjectSendStream[_Result], done: dict[int, str], window: anyio.Semaphore | None
    ) -> None:
        slots = anyio.Semaphore(self._concurrency)
        async with anyio.create_task_group() as group:
            index = 0
            pull = _puller(self._tasks)
            while True:
                if window is not None:
                    await window.acquire()  # released when this index is yielded in order
                await slots.acquire()  # the next task is pulled only when a slot is free
                task = await pull()
                if task is _END:
                    break
                try:
                    task_env: Envelope | TypeError = Envelope.from_task(task)  # type: ignore[arg-type]
                except TypeError as exc:
                    task_env = exc
                if done and isinstance(task_env, Envelope) and done.get(index) == task_hash(task_env):
                    slots.release()
                    self.skipped += 1
                    if self._progress is not None:
                        self._progress.skip()
                    if window is not None:
                        await out.send((index, None))  # holds its place in the order
                else:
                    group.start_soon(self._one, index, task_env, out, slots)
                index += 1
                self.count = index

    async def _one(
        self, index: int, task: Envelope | TypeError, out: MemoryObjectSendStream[_Result], slots: anyio.Semaphore
    ) -> None:
        try:
            if self._progress is not None:
                self._progress.start()
            if isinstance(task, TypeError):
                envelope = Envelope.error_envelope(task)
            else:
                envelope = await self._agent.run(task)
                if self._writer is not None:
                    await self._writer.put(index, task_hash(task), envelope)
            if self._progress is not None:
                self._progress.finish(envelope)
            await out.send((index, envelope))
        finally:
            slots.release()

    async def _reorder(
        self, receive: MemoryObjectReceiveStream[_Result], out: MemoryObjectSendStream[_Result], window: anyio.Semaphore
    ) -> None:
        # Holds at most `window` results: an index is admitted only while it is
        # less than `window` ahead of the next one to yield.
        held: dict[int, Envelope | None] = {}
        following = 0
        async with receive:
            async for index, envelope in receive:
                held[index] = envelope
                while following in held:
                    ready = held.pop(following)
                    await out.send((following, ready))
                    following += 1
                    window.release()


_END = object()


def _puller(tasks: Tasks) -> Callable[[], Awaitable[object]]:
    """A coroutine function returning the next task, or ``_END`` (no async generator to finalise)."""
    if isinstance(tasks, AsyncIterable):
        iterator = aiter(tasks)

        async def pull_async() -> object:
            try:
                return await anext(iterator)
            except StopAsyncIteration:
                return _END

        return pull_async
    items = iter(tasks)

    async def pull_sync() -> object:
        return next(items, _END)

    return pull_sync

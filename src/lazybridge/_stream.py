"""AgentStream: what ``agent.stream(task)`` returns.

A stream is an explicit state machine, not an async generator: every step
(``__anext__``) opens and closes its own cancel scopes, so nothing is ever
held across a yield to the consumer (see AnyIO's "Avoiding cancel scope
stack corruption"), and closing it is an ordinary ``await stream.aclose()``.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Protocol

import anyio

from . import events
from ._scope import agent_timeout, begin_run, cancel_run, end_run, spent_metadata
from .envelope import Envelope, EnvelopeMetadata
from .events import RunContext

if TYPE_CHECKING:
    from ._run import AgentBase


class EngineStream(Protocol):
    """What an engine's ``stream(task, *, prepared, run)`` returns."""

    async def __anext__(self) -> str:
        """The next text delta; ``StopAsyncIteration`` at the end."""
        ...

    def result(self) -> Envelope:
        """The run's envelope (payload, model, tokens, cost); valid after the end."""
        ...

    async def aclose(self) -> None:
        """Abort: close whatever is open (idempotent)."""
        ...


class _RunOnce:
    """The stream of an engine that cannot stream: the whole answer as one chunk."""

    def __init__(self, agent: AgentBase, task: Envelope, run: RunContext) -> None:
        self._agent = agent
        self._task = task
        self._run = run
        self._envelope: Envelope | None = None

    async def __anext__(self) -> str:
        if self._envelope is not None:
            raise StopAsyncIteration
        self._envelope = await self._agent._execute(self._task, self._run)
        text = self._envelope.text()
        if not text:
            raise StopAsyncIteration
        return text

    def result(self) -> Envelope:
        assert self._envelope is not None
        return self._envelope

    async def aclose(self) -> None:
        pass


class AgentStream:
    """The text of an agent's answer as it arrives; then :attr:`envelope`.

    ::

        async with agent.stream("Summarise the news") as stream:
            async for delta in stream:
                print(delta, end="")
        print(stream.envelope.metadata.cost_usd)

    ``async for delta in agent.stream(task)`` without ``async with`` works
    too, and closes the HTTP response when the stream ends or fails; use
    ``async with`` (or :func:`contextlib.aclosing`) whenever you may stop
    early, so the response is closed at once rather than when the stream is
    garbage collected.

    :attr:`envelope` is ``None`` until the stream ends; then it is the
    envelope :meth:`~lazybridge.Agent.run` would have returned: same text,
    tokens and cost.  Agents whose engine cannot stream (plans, parallel
    wrappers, test doubles) yield their whole answer as one chunk.

    Errors: a failed run raises from the iteration -- the provider's
    exception (:class:`~lazybridge.errors.APITimeoutError` for a stream
    that stalled, :class:`~lazybridge.errors.StreamError` for one that broke
    off, ...) or ``TimeoutError`` when the agent's ``timeout`` runs out --
    after closing the response; :attr:`envelope` is then the error envelope.

    Cancellation: cancelling the consumer while it waits for a delta closes
    the HTTP response (the connection is dropped, so the provider sees it)
    before the cancellation propagates.  The agent's ``timeout`` counts from
    the first ``__anext__`` and is checked while waiting for each delta, not
    while the consumer holds one.
    """

    def __init__(
        self,
        agent: AgentBase,
        task: str | Envelope,
        context: str | None = None,
        *,
        step_timeout: float | None = None,
        step_label: str | None = None,
    ) -> None:
        self._agent = agent
        self._task = Envelope.from_task(task, context)
        self._inner: EngineStream | None = None
        self._ctx: RunContext | None = None
        self._deadline: float | None = None
        # A second deadline set by whoever started the stream (a parallel's branch).
        self._step_timeout = step_timeout
        self._step_label = step_label
        self._step_deadline: float | None = None
        self._closed = False
        self.envelope: Envelope | None = None

    async def __aenter__(self) -> AgentStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        await self.aclose()
        return None

    def __aiter__(self) -> AgentStream:
        return self

    async def __anext__(self) -> str:
        if self.envelope is not None or self._closed:
            raise StopAsyncIteration
        if self._ctx is None:
            self._start()
        assert self._ctx is not None
        token = events.enter(self._ctx)
        try:
            return await self._step()
        finally:
            events.leave(token)

    def _start(self) -> None:
        agent = self._agent
        ctx = self._ctx = begin_run(agent, self._task)
        now = anyio.current_time()
        if agent.timeout is not None:
            self._deadline = now + agent.timeout
        if self._step_timeout is not None:
            self._step_deadline = now + self._step_timeout
            if self._deadline is None or self._step_deadline < self._deadline:
                self._deadline = self._step_deadline
        self._inner = agent._engine_stream(self._task, ctx) or _RunOnce(agent, self._task, ctx)

    async def _step(self) -> str:
        inner = self._inner
        assert inner is not None
        settled = False
        try:
            if self._deadline is None:
                delta = await inner.__anext__()
            else:
                with anyio.move_on_at(self._deadline) as scope:
                    delta = await inner.__anext__()
                if scope.cancelled_caught:
                    error = self._timeout_error()
                    settled = True
                    await self._settle(Envelope.error_envelope(error, metadata=self._metadata()))
                    raise error
            settled = True
            return delta
        except StopAsyncIteration:
            settled = True
            await self._settle(inner.result())
            raise
        except Exception as exc:
            if not settled:
                settled = True
                await self._settle(Envelope.error_envelope(exc, metadata=self._metadata()))
            raise
        finally:
            if not settled:  # cancelled: close the response before propagating
                await self.aclose()

    def _timeout_error(self) -> TimeoutError:
        if self._step_deadline is not None and self._step_deadline == self._deadline:
            label = self._step_label or self._agent.name
            return TimeoutError(f"branch {label!r} exceeded step_timeout={self._step_timeout:g}s")
        return agent_timeout(self._agent)

    def _metadata(self) -> EnvelopeMetadata:
        assert self._ctx is not None
        return spent_metadata(self._agent, self._ctx)

    async def _settle(self, result: Envelope) -> None:
        if self._inner is not None:
            await self._inner.aclose()
        assert self._ctx is not None
        self.envelope = end_run(self._agent, self._ctx, self._task, result)
        self._closed = True

    async def aclose(self) -> None:
        """Stop the stream and close its HTTP response (idempotent).

        :attr:`envelope` stays ``None`` if the stream had not ended.

        Cancellation: the closing is shielded (bounded to 5 s): the response
        is closed even when the caller is being cancelled.
        """
        if self._ctx is not None and self.envelope is None and not self._closed:
            # Stopped before its end (closed early, or cancelled): the run still
            # reports what it spent, like any run cancelled from outside.
            cancel_run(self._agent, self._ctx, self._task)
        self._closed = True
        if self._inner is not None:
            await self._inner.aclose()

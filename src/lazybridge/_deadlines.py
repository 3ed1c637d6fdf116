"""Step deadlines that stand still while a run waits for a pooled connection.

``Agent.parallel(step_timeout=...)`` bounds each branch's *execution*.
Waiting for a ``concurrency_limit`` slot is outside the deadline because the
slot is taken before the deadline starts.  The pooled HTTP client's limiter
(at most ``limits.max_connections`` requests in flight per client, see
:mod:`lazybridge.providers._http`) is the same kind of hidden queue, but it
is met deep inside the run, so the deadline cannot simply start later: a
:class:`StepDeadline` is *paused* instead.  The HTTP layer wraps its wait for
a connection slot in :func:`deadlines_paused`; while any request of the run
waits there, the step deadline of the run (and of every enclosing branch)
stands still, and when the wait ends it is pushed back by the time waited.

Nothing is shielded: a cancellation from outside (the caller, a fail-fast
sibling, the agent's own ``timeout``, which bounds the whole run queue
included) still ends the wait at once.  The deadline is the cancel scope's
own, so a timed-out step is told apart from an outer cancellation exactly as
before.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import TracebackType

import anyio

__all__ = ["StepDeadline", "deadlines_paused"]

_current: ContextVar[StepDeadline | None] = ContextVar("lazybridge_step_deadline", default=None)


class StepDeadline:
    """A deadline ``seconds`` from now on ``scope``, paused by :func:`deadlines_paused`.

    ``cap`` is an absolute deadline the scope also has (the agent's own
    ``timeout``); it never pauses.  Use as a context manager inside ``scope``:
    while entered, the run's waits for a pooled connection pause it.
    """

    __slots__ = ("_cap", "_parent", "_paused_at", "_scope", "_token", "_waiters", "deadline")

    def __init__(self, scope: anyio.CancelScope, seconds: float, *, cap: float = math.inf) -> None:
        self._scope = scope
        self._cap = cap
        #: When the step runs out, in ``anyio.current_time()``; pushed back by every pause.
        self.deadline = anyio.current_time() + seconds
        self._paused_at = 0.0
        self._waiters = 0
        self._parent: StepDeadline | None = None
        self._token: Token[StepDeadline | None] | None = None
        scope.deadline = min(cap, self.deadline)

    def __enter__(self) -> StepDeadline:
        self._parent = _current.get()  # a branch of a parallel nested in a branch pauses both
        self._token = _current.set(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None

    def ran_out(self) -> bool:
        """Whether this deadline (rather than ``cap``) is the one the scope's deadline was."""
        return self.deadline <= self._cap

    def _pause(self) -> None:
        if self._waiters == 0:
            self._paused_at = anyio.current_time()
            self._scope.deadline = self._cap
        self._waiters += 1
        if self._parent is not None:
            self._parent._pause()

    def _resume(self) -> None:
        self._waiters -= 1
        if self._waiters == 0:
            self.deadline += anyio.current_time() - self._paused_at
            self._scope.deadline = min(self._cap, self.deadline)
        if self._parent is not None:
            self._parent._resume()


@contextmanager
def deadlines_paused() -> Iterator[None]:
    """While inside, the step deadlines of the current run stand still (see the module doc).

    With several requests of one run waiting at once, the deadline stands
    still while at least one of them waits.  Cancellation passes through
    untouched.
    """
    step = _current.get()
    if step is None:
        yield
        return
    step._pause()
    try:
        yield
    finally:
        step._resume()

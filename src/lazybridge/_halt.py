"""Halt: one stop shared by the branches of a fan-out (fail-fast, quorum, race).

When a completion policy has its answer -- a branch failed under
``fail_fast``, ``k`` branches succeeded under ``quorum=k``, a racer won --
every other branch must stop at once.  Each branch's run watches the halt
with its own cancel scope (:meth:`Halt.watch`), so stopping cancels exactly
those scopes: the runs end *inside* themselves, like a ``step_timeout``, and
still return an envelope with their run id and what they spent (the
``BranchCancelled`` slot), while the fan-out's task group is never cancelled
and the caller is not affected.

A branch that had not started yet (waiting for a ``concurrency_limit`` slot or
its turn in a staggered race) watches the halt the same way while it waits.

On asyncio the scopes are cancelled from a loop callback queued by
:meth:`Halt.stop` (see there why), so they are cancelled by the time the
stopping task next checkpoints; on Trio, within ``stop`` itself.
"""

from __future__ import annotations

from collections.abc import Iterable

import anyio

from ._sync import call_soon_on_asyncio, in_asyncio_task
from .errors import BranchCancelled

__all__ = ["Halt"]


class Halt:
    """Cancels every watched scope once, with one reason; scopes watched later are cancelled at once."""

    __slots__ = ("_scopes", "cause")

    def __init__(self) -> None:
        #: Why the branches were stopped (``None`` until :meth:`stop`).
        self.cause: str | None = None
        self._scopes: set[anyio.CancelScope] = set()

    @property
    def stopped(self) -> bool:
        return self.cause is not None

    def watch(self, scope: anyio.CancelScope) -> None:
        """Cancel ``scope`` when the halt stops (at once if it already has)."""
        if self.cause is not None:
            scope.cancel()
        else:
            self._scopes.add(scope)

    def unwatch(self, scope: anyio.CancelScope) -> None:
        self._scopes.discard(scope)

    def stop(self, cause: str) -> None:
        """Stop every watched branch because of ``cause``; only the first call counts."""
        if self.cause is not None:
            return
        self.cause = cause
        scopes, self._scopes = self._scopes, set()
        if len(scopes) > 1 and in_asyncio_task():
            # From a loop callback, not from this task: anyio's asyncio
            # CancelScope.cancel() formats repr(current_task()) into its reason
            # (coroutine name, source file and line), several microseconds for
            # each of a race's thousand losers; outside a task there is none to
            # format.  The callback runs before this task's next checkpoint
            # returns; a branch that runs before it just reaches its next
            # checkpoint and is cancelled there (or finishes with its answer,
            # as if it had finished a moment before the stop).
            call_soon_on_asyncio(_cancel_all, scopes)
        else:
            _cancel_all(scopes)

    def error(self, label: str) -> BranchCancelled:
        """The error in the slot of branch ``label``, stopped by this halt."""
        cause = self.cause or "its fan-out was stopped"
        return BranchCancelled(f"branch {label!r} was cancelled: {cause}", cause=cause)


def _cancel_all(scopes: Iterable[anyio.CancelScope]) -> None:
    for scope in scopes:
        scope.cancel()


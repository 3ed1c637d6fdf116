"""Completion policies of a fan-out: when to stop the branches still running.

A policy is made per call (it holds that call's counts) and told each
branch's envelope as the branch finishes (:meth:`FanOutPolicy.observe`, called
in the branch's own task, so no lock is needed: nothing awaits in between).
When it has its answer it stops the others through its :class:`~lazybridge._halt.Halt`.

* :class:`CompletionPolicy` -- ``Agent.parallel(fail_fast=, quorum=)``;
* :class:`RacePolicy` -- ``Agent.race(accept=, stagger=)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import anyio

from ._halt import Halt
from ._spend import Spend
from .envelope import Envelope, EnvelopeMetadata, ErrorInfo
from .errors import NoWinner, QuorumUnreachable

__all__ = ["CompletionPolicy", "FanOutPolicy", "RacePolicy"]

Accept = Callable[[Envelope], bool]


def _failure(env: Envelope) -> str:
    """A failed envelope's error in a few words, for a cancellation's cause."""
    error = env.error
    if error is None:
        return "ok"
    message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    return f"{error.type}: {message}"


class FanOutPolicy:
    """What a fan-out with a completion policy decides while its branches run."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = labels
        self.halt = Halt()

    def begin(self) -> None:
        """Called in the fan-out's task before any branch runs."""

    def waits_turn(self, index: int) -> bool:
        """Whether branch ``index`` may have to wait for its turn (:meth:`wait_turn`)."""
        return False

    async def wait_turn(self, index: int) -> None:
        """Wait until branch ``index`` may start (a staggered race); cancelled by the halt."""

    def observe(self, index: int, env: Envelope) -> None:
        """Branch ``index`` finished with ``env``."""
        raise NotImplementedError

    async def run_branch(
        self,
        index: int,
        limiter: anyio.CapacityLimiter | None,
        run: Callable[[Halt], Awaitable[Envelope]],
        stopped: Callable[[Exception], Envelope],
    ) -> Envelope:
        """Branch ``index`` under this policy: wait for its turn and a slot, run it, observe it.

        Waiting for a turn (a staggered race) or a ``concurrency_limit`` slot is
        stopped by the halt too: a branch that never started gets
        ``stopped(error)``, a ``BranchCancelled`` slot.  ``run(halt)`` runs the
        branch, which watches the halt itself while it runs.
        """
        halt = self.halt
        if halt.stopped:
            # Decided before this branch even began (a racer won in the first
            # round): no scope to open and cancel -- anyio's cancel() formats the
            # current task's repr, which a thousand losers feel.
            env = stopped(halt.error(self.labels[index]))
            self.observe(index, env)
            return env
        acquired = False
        if limiter is not None or self.waits_turn(index):
            # A scope only for a branch that can wait: at a thousand branches
            # the scopes of ones that start at once are felt.
            with anyio.CancelScope() as waiting:
                halt.watch(waiting)
                try:
                    await self.wait_turn(index)
                    if limiter is not None:
                        await limiter.acquire()
                        acquired = True
                finally:
                    halt.unwatch(waiting)
        try:
            env = stopped(halt.error(self.labels[index])) if halt.stopped else await run(halt)
        finally:
            if acquired:
                assert limiter is not None
                limiter.release()
        self.observe(index, env)
        return env


class CompletionPolicy(FanOutPolicy):
    """``fail_fast`` and ``quorum`` of :class:`~lazybridge.ParallelAgent`.

    After the fan-out, :attr:`decided` says whether the policy stopped it, and
    then :attr:`error` is the wrapper's error: the failure that triggered
    ``fail_fast``, a :class:`~lazybridge.errors.QuorumUnreachable`, or
    ``None`` for a reached quorum.
    """

    def __init__(self, labels: Sequence[str], *, fail_fast: bool, quorum: int | None) -> None:
        super().__init__(labels)
        self.fail_fast = fail_fast
        self.quorum = quorum
        self.succeeded = 0
        self.failed: list[int] = []
        self.decided = False
        self.error: ErrorInfo | None = None

    def observe(self, index: int, env: Envelope) -> None:
        if self.decided:
            return  # a branch that finished as the others were being stopped changes nothing
        quorum, n = self.quorum, len(self.labels)
        if env.ok:
            self.succeeded += 1
            if quorum is not None and self.succeeded >= quorum:
                self._decide(None, f"the quorum of {quorum} successful branches was reached")
            return
        self.failed.append(index)
        if self.fail_fast:
            self._decide(env.error, f"branch {self.labels[index]!r} failed ({_failure(env)})")
        elif quorum is not None and n - len(self.failed) < quorum:
            failed = ", ".join(repr(self.labels[i]) for i in sorted(self.failed))
            exc = QuorumUnreachable(
                f"quorum={quorum} of {n} branches can no longer be reached: "
                f"{len(self.failed)} failed ({failed}), last {self.labels[index]!r} with {_failure(env)}"
            )
            self._decide(Envelope.error_envelope(exc).error, f"quorum={quorum} can no longer be reached")

    def _decide(self, error: ErrorInfo | None, cause: str) -> None:
        self.decided = True
        self.error = error
        self.halt.stop(cause)


class RacePolicy(FanOutPolicy):
    """``Agent.race``: the first ok envelope that ``accept`` takes wins; staggered starts."""

    def __init__(self, labels: Sequence[str], *, accept: Accept | None, stagger: float | None) -> None:
        super().__init__(labels)
        self.accept = accept
        self.stagger = stagger
        self.winner: int | None = None
        #: Why an ok envelope did not win, by racer index (``accept`` refused it or raised).
        self.refused: dict[int, str] = {}
        self._gates: list[anyio.Event] | None = None
        self._start = 0.0
        self._launched = 1  # racer 0 never waits; racers start in input order

    def begin(self) -> None:
        """Start the stagger clock (called in the fan-out, before any racer runs)."""
        if self.stagger is not None:
            self._start = anyio.current_time()
            self._gates = [anyio.Event() for _ in self.labels]

    def waits_turn(self, index: int) -> bool:
        return self._gates is not None and index != 0

    async def wait_turn(self, index: int) -> None:
        gates = self._gates
        if gates is None or index == 0:
            return
        assert self.stagger is not None
        # Racer i starts i*stagger seconds after the start, or earlier when a
        # failed racer hands it its turn (_hand_on); a win cancels the wait.
        with anyio.CancelScope(deadline=self._start + index * self.stagger):
            await gates[index].wait()
        self._launched = max(self._launched, index + 1)

    def observe(self, index: int, env: Envelope) -> None:
        if self.winner is not None or self.halt.stopped:
            return
        if env.ok and self._accepts(index, env):
            self.winner = index
            self.halt.stop(f"racer {self.labels[index]!r} won")
        else:
            self._hand_on()

    def _accepts(self, index: int, env: Envelope) -> bool:
        if self.accept is None:
            return True
        try:
            taken = bool(self.accept(env))
        except Exception as exc:  # a buggy accept refuses this answer; the race goes on
            self.refused[index] = f"accept raised {type(exc).__name__}: {exc}"
            return False
        if not taken:
            self.refused[index] = "refused by accept"
        return taken

    def _hand_on(self) -> None:
        """A racer failed: the next racer still waiting for its turn starts now."""
        gates = self._gates
        if gates is None or self._launched >= len(gates):
            return
        gates[self._launched].set()
        self._launched += 1

    def result(self, racers: Sequence[Envelope], task: Envelope) -> Envelope:
        """The race's envelope: the winner's answer, everyone's spend; or a NoWinner error."""
        spend = Spend.total(racer.metadata for racer in racers).as_nested()
        if self.winner is not None:
            won = racers[self.winner]
            metadata = EnvelopeMetadata.of_spend(
                spend, model=won.metadata.model, provider=won.metadata.provider, winner=self.labels[self.winner]
            )
            return Envelope(task=task.task, context=task.context, payload=won.payload, metadata=metadata)
        outcomes = "; ".join(
            f"{label!r}: {self.refused.get(i) or _failure(racer)}"
            for i, (label, racer) in enumerate(zip(self.labels, racers, strict=True))
        )
        error = NoWinner(f"no racer won ({outcomes})")
        return Envelope.error_envelope(error, task=task.task, metadata=EnvelopeMetadata.of_spend(spend))


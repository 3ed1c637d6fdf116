"""Halt: one stop shared by a fan-out's branches, on asyncio and Trio.

On asyncio, Halt.stop hands the cancelling of its scopes to a loop callback
(anyio's cancel() formats the current task's repr, a cost per scope); these
tests pin that the branches see the same thing on both backends.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from lazybridge._halt import Halt

pytestmark = pytest.mark.anyio


async def test_stop_cancels_every_watched_scope_before_the_stopper_checkpoints_again() -> None:
    halt = Halt()
    entered, caught, scopes = 0, [], []
    all_in = anyio.Event()

    async def branch() -> None:
        nonlocal entered
        with anyio.CancelScope() as scope:
            halt.watch(scope)
            scopes.append(scope)
            entered += 1
            if entered == 3:
                all_in.set()
            try:
                await anyio.sleep_forever()
            finally:
                halt.unwatch(scope)
        caught.append(scope.cancelled_caught)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(branch)
            await all_in.wait()
            halt.stop("racer 'a' won")
            assert halt.stopped and halt.cause == "racer 'a' won"
            await anyio.lowlevel.checkpoint()
            assert [scope.cancel_called for scope in scopes] == [True, True, True]
            late = anyio.CancelScope()
            halt.watch(late)  # a scope watched after the stop is cancelled at once
            assert late.cancel_called
    assert caught == [True, True, True]  # all three ended inside their own scopes
    halt.stop("again")  # only the first stop counts
    assert halt.cause == "racer 'a' won"


async def test_a_scope_left_before_the_stop_reaches_it_leaves_its_task_alone() -> None:
    halt = Halt()
    with anyio.CancelScope() as outer:
        halt.watch(outer)
        with anyio.CancelScope() as inner:  # noqa: ASYNC100 -- left with no checkpoint on purpose
            halt.watch(inner)
            halt.stop("done")
        # inner was left without a checkpoint: nothing was raised in it, on either backend
        assert not inner.cancelled_caught
        await anyio.lowlevel.checkpoint()  # outer is cancelled by now
        pytest.fail("the halt did not cancel the scope that was still open")
    assert outer.cancelled_caught and inner.cancel_called
    await anyio.lowlevel.checkpoint()  # and the task itself is not cancelled


def test_error_names_the_branch_and_the_cause() -> None:
    halt = Halt()
    assert str(halt.error("b")) == "branch 'b' was cancelled: its fan-out was stopped"
    halt.stop("racer 'a' won")
    error = halt.error("b")
    assert str(error) == "branch 'b' was cancelled: racer 'a' won" and error.cause == "racer 'a' won"

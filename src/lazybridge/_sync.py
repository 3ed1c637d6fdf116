"""The sync entry points: the only place that starts an event loop.

``agent(task)`` must work in a plain script, in a notebook cell (inside a
running asyncio loop) and inside ``trio.run``.  In a plain thread it runs the
coroutine with :func:`anyio.run`; when the calling thread already runs an
event loop it cannot block that loop's thread on a second loop, so it runs
``anyio.run`` on a fresh worker thread and joins it.  Either way the loop it
started is closed, the resources it pooled (HTTP clients) are closed, and no
thread is left behind when the call returns.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

from ._resources import aclose

T = TypeVar("T")

#: The backend sync calls run on.
BACKEND = "asyncio"


def _thread_runs_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return True
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            return False
        return True
    return False


#: Seconds the pooled clients get to close when a sync call's loop ends.
CLOSE_TIMEOUT = 5.0


async def _run_and_clean(fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
    try:
        return await fn(*args)
    finally:
        # Shielded, so a cancelled run still closes its connections; bounded,
        # so a peer that never answers the close cannot hang the call.
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            await aclose()


def run_sync(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``await fn(*args)`` to completion from synchronous code.

    Interrupting it (``KeyboardInterrupt``, Ctrl-C in a script or a notebook)
    cancels the run -- its HTTP requests are aborted, its branches and tools
    cancelled -- and waits for that before re-raising.  Interrupting it a
    second time while it waits gives up waiting (the worker thread, if any,
    then finishes the cancellation on its own).
    """
    if not _thread_runs_event_loop():
        return anyio.run(_run_and_clean, fn, args, backend=BACKEND)
    return _run_on_worker(fn, args)


class _Interrupted(Exception):
    """The worker's run was cancelled because the calling thread was interrupted."""


def _run_on_worker(fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
    outcome: list[Any] = []
    started = threading.Event()
    # Waited on instead of Thread.join: on 3.11 a join interrupted by a signal
    # can mark a still-running thread as stopped, and the next join returns at once.
    done = threading.Event()
    handle: list[tuple[anyio.CancelScope, anyio.lowlevel.EventLoopToken]] = []

    async def main() -> T:
        with anyio.CancelScope() as scope:
            handle.append((scope, anyio.lowlevel.current_token()))
            started.set()
            return await _run_and_clean(fn, args)
        raise _Interrupted  # only reached when the caller cancelled the scope

    def worker() -> None:
        try:
            outcome.append((True, anyio.run(main, backend=BACKEND)))
        except BaseException as exc:  # handed to the calling thread, re-raised there
            outcome.append((False, exc))
        finally:
            started.set()
            done.set()

    thread = threading.Thread(target=worker, name="lazybridge-sync", daemon=True)
    try:
        thread.start()
        done.wait()
    except BaseException:
        # Interrupted while waiting: cancel the run on the worker's own loop
        # and wait for it to wind down, so nothing keeps running.
        if thread.ident is None:
            raise  # interrupted before the thread began: nothing runs
        started.wait()
        if handle:
            scope, token = handle[0]
            try:
                anyio.from_thread.run_sync(scope.cancel, token=token)
            except anyio.RunFinishedError:
                pass  # it had just finished
        done.wait()
        thread.join()
        raise
    thread.join()  # the run has ended; the thread is only exiting
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value

"""The sync entry points: the only place that starts an event loop.

``agent(task)`` must work in a plain script, in a notebook cell (inside a
running asyncio loop) and inside ``trio.run``.  In a plain thread it runs the
coroutine with :func:`anyio.run`; when the calling thread already runs an
event loop it cannot block that loop's thread on a second loop, so it runs
``anyio.run`` on a fresh worker thread and joins it.  Either way the loop it
started is closed, the resources it pooled (HTTP clients) are closed, and no
thread is left behind when the call returns.

It is also the one module that imports ``asyncio``: the few asyncio facts
the rest of the library needs and anyio does not offer
(:func:`in_asyncio_task`, :func:`call_soon_on_asyncio`) are asked here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

from ._resources import aclose

T = TypeVar("T")

#: The backend sync calls run on.
BACKEND = "asyncio"


def in_asyncio_task() -> bool:
    """Whether the caller runs in an asyncio task, so anyio runs on asyncio here.

    False under Trio, a Trio guest run on an asyncio host loop included (its
    tasks are not asyncio's), and outside any event loop.
    """
    try:
        return asyncio.current_task() is not None
    except RuntimeError:  # no asyncio loop in this thread
        return False


def call_soon_on_asyncio(callback: Callable[..., object], *args: Any) -> None:
    """Run ``callback(*args)`` from the running asyncio loop, outside any task, at its next turn.

    Only valid where :func:`in_asyncio_task` is true.
    """
    asyncio.get_running_loop().call_soon(callback, *args)


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


@contextlib.contextmanager
def _signals_wake_this_loop() -> Iterator[None]:
    """While it is open, a signal wakes the asyncio loop running in this (main) thread.

    Why: ``anyio.run`` on asyncio uses :class:`asyncio.Runner`, which handles
    SIGINT with :func:`signal.signal` and sets no wakeup fd.  A signal is first
    only noted by CPython's C-level handler; the Python one (which cancels the
    run) runs when the main thread next executes bytecode.  When the signal
    lands in the instant between the loop releasing the GIL and blocking in
    ``epoll_wait``, nothing wakes the loop -- with every branch waiting on the
    network or a tool, it never wakes.  A wakeup fd makes the C-level handler
    write a byte to a socket this loop watches.

    Off the main thread (where no signal handler runs) or on a loop that cannot
    watch sockets (the Windows proactor, which sets its own wakeup fd) it does
    nothing.  A wakeup fd that was already set gets every byte forwarded and
    is restored on exit, so the process's signal configuration is unchanged.
    """
    loop = asyncio.get_running_loop()
    receive, send = socket.socketpair()
    receive.setblocking(False)
    send.setblocking(False)
    previous = -1

    def drain() -> None:
        try:
            data = receive.recv(4096)
        except OSError:  # nothing to read after all
            return
        if previous != -1 and data:
            try:
                os.write(previous, data)  # its owner reads signal numbers from it
            except OSError:
                pass  # full, closed or not writable with os.write: as if it were never set

    try:
        loop.add_reader(receive.fileno(), drain)
    except NotImplementedError:
        receive.close()
        send.close()
        yield
        return
    try:
        previous = signal.set_wakeup_fd(send.fileno(), warn_on_full_buffer=False)
    except ValueError:  # not the main thread of the main interpreter
        loop.remove_reader(receive.fileno())
        receive.close()
        send.close()
        yield
        return
    try:
        yield
    finally:
        # CPython cannot report the previous fd's warn_on_full_buffer; asyncio
        # and Trio, the usual owners of a wakeup fd, both set it to False.
        signal.set_wakeup_fd(previous, warn_on_full_buffer=False)
        loop.remove_reader(receive.fileno())
        drain()
        receive.close()
        send.close()


async def _run_in_this_thread(fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
    with _signals_wake_this_loop():
        return await _run_and_clean(fn, args)


def run_sync(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``await fn(*args)`` to completion from synchronous code.

    Interrupting it (``KeyboardInterrupt``, Ctrl-C in a script or a notebook)
    cancels the run -- its HTTP requests are aborted, its branches and tools
    cancelled -- and waits for that before re-raising.  Interrupting it a
    second time while it waits gives up waiting (the worker thread, if any,
    then finishes the cancellation on its own).

    A SIGINT is acted on however it is timed: in a plain script the loop
    gets a signal wakeup fd for the call (the one set before, if any, is
    restored afterwards and sees every signal meanwhile); when the calling
    thread already runs a loop it waits for the worker in short slices.  Called
    from a thread other than the main one (where Python never runs signal
    handlers) it changes nothing about signals.
    """
    if not _thread_runs_event_loop():
        return anyio.run(_run_in_this_thread, fn, args, backend=BACKEND)
    return _run_on_worker(fn, args)


#: Seconds the calling thread blocks at a time while it waits for a worker.
WAIT_SLICE = 0.1


def _wait(event: threading.Event) -> None:
    """Wait for ``event`` in slices, so a signal is never left pending.

    A signal that lands just before the thread blocks on the lock is only noted
    by the C-level handler; its Python handler (which raises KeyboardInterrupt)
    runs when the thread next executes bytecode -- at the end of the slice
    rather than when the run ends, which may be never.
    """
    while not event.wait(WAIT_SLICE):
        pass


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
        _wait(done)
    except BaseException:
        # Interrupted while waiting: cancel the run on the worker's own loop
        # and wait for it to wind down, so nothing keeps running.
        if thread.ident is None:
            raise  # interrupted before the thread began: nothing runs
        _wait(started)
        if handle:
            scope, token = handle[0]
            try:
                anyio.from_thread.run_sync(scope.cancel, token=token)
            except anyio.RunFinishedError:
                pass  # it had just finished
        _wait(done)
        thread.join()
        raise
    thread.join()  # the run has ended; the thread is only exiting
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value

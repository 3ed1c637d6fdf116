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


async def _run_and_clean(fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
    try:
        return await fn(*args)
    finally:
        with anyio.CancelScope(shield=True):
            await aclose()


def run_sync(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``await fn(*args)`` to completion from synchronous code."""
    if not _thread_runs_event_loop():
        return anyio.run(_run_and_clean, fn, args, backend=BACKEND)

    outcome: list[Any] = []

    def worker() -> None:
        try:
            outcome.append((True, anyio.run(_run_and_clean, fn, args, backend=BACKEND)))
        except BaseException as exc:  # handed to the calling thread, re-raised there
            outcome.append((False, exc))

    thread = threading.Thread(target=worker, name="lazybridge-sync", daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value

"""Telling a real cancellation from an exception that only looks like one.

A buggy library may *raise* ``asyncio.CancelledError`` itself (on asyncio, or
on Trio where it is just a ``BaseException``).  Inside a fan-out that must not
cancel the healthy siblings: it is that branch's failure and belongs in its
slot.  A real cancellation -- a cancel scope around the call was cancelled or
ran out, or the asyncio task was cancelled -- always propagates.
"""

from __future__ import annotations

import math
import sys

import anyio


def is_stray_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is an ``asyncio.CancelledError`` that no cancellation of this task caused.

    Must be called in the task that caught ``exc``.  A backend's real
    cancellation (an enclosing cancel scope was cancelled, or on asyncio the
    task itself was) is never stray.  Trio's own ``Cancelled`` is never
    stray: only Trio can raise it.
    """
    # asyncio is only inspected, never imported: if the program never imported
    # it, no asyncio.CancelledError can exist (library code speaks anyio only).
    asyncio = sys.modules.get("asyncio")
    if asyncio is None or not isinstance(exc, asyncio.CancelledError):
        return False
    if anyio.current_effective_deadline() == -math.inf:
        return False  # an enclosing cancel scope was cancelled: real
    if anyio.get_cancelled_exc_class() is asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            return False  # the task was cancelled directly (task.cancel(), asyncio.timeout): real
    return True

"""Per-event-loop resources (pooled HTTP clients) and their cleanup.

Resources that must not outlive their event loop register an async close
callback here.  ``_sync`` closes them when a sync call's private loop ends;
applications that own their loop call :func:`lazybridge.aclose` before it
ends (or let the clients be closed when they are garbage collected).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from anyio.lowlevel import RunVar

Closer = Callable[[], Awaitable[None]]

_closers: RunVar[list[Closer]] = RunVar("lazybridge_closers")


def on_loop_close(closer: Closer) -> None:
    """Register ``closer`` to run when :func:`aclose` runs in this event loop."""
    try:
        closers = _closers.get()
    except LookupError:
        closers = []
        _closers.set(closers)
    closers.append(closer)


async def aclose() -> None:
    """Close every resource LazyBridge pooled in the current event loop.

    Idempotent.  Call it before your event loop ends if you ran agents with
    ``await`` (sync calls clean up after themselves).
    """
    try:
        closers = _closers.get()
    except LookupError:
        return
    _closers.set([])
    for closer in reversed(closers):
        await closer()

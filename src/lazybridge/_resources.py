"""Per-event-loop resources (pooled HTTP clients) and their cleanup.

Resources that must not outlive their event loop register an async close
callback here.  They are closed by :func:`aclose` -- which ``_sync`` calls
when a sync call's private loop ends, and applications may call before
their loop ends -- or, at the latest, when their event loop shuts down.

Closing at loop end
    The first resource registered in a loop arms a *loop-end hook*: an async
    generator, started and left suspended, that the loop itself finalises
    when it shuts down (``asyncio.run``, ``anyio.run`` and ``asyncio.Runner``
    call ``loop.shutdown_asyncgens()`` after cancelling the remaining tasks;
    ``trio.run`` closes the async generators still alive at its end).  Its
    ``finally`` runs :func:`aclose` inside the loop, so the keep-alive
    connections of an application that never called it are closed properly
    instead of staying open for the life of the process.  Garbage collection
    alone cannot do it on asyncio: the per-loop store is keyed weakly by the
    loop, but its values (clients whose connections hold the loop's
    transports) refer back to the loop, so neither is ever collected.  It is
    not a task and runs nothing until the loop ends.  A loop driven by hand
    (``loop.run_until_complete`` without ``shutdown_asyncgens``) gets no such
    call: close the clients with :func:`aclose` there.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

from anyio.lowlevel import RunVar

Closer = Callable[[], Awaitable[None]]

_closers: RunVar[list[Closer]] = RunVar("lazybridge_closers")
# The loop-end hook of this loop, kept alive as long as the loop's store is.
_hook: RunVar[AsyncGenerator[None, None]] = RunVar("lazybridge_loop_end_hook")


def on_loop_close(closer: Closer) -> None:
    """Register ``closer`` to run when :func:`aclose` runs in this event loop, or the loop ends."""
    try:
        closers = _closers.get()
    except LookupError:
        closers = []
        _closers.set(closers)
        _arm_loop_end_hook()
    closers.append(closer)


async def _close_at_loop_end() -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await aclose()


def _arm_loop_end_hook() -> None:
    try:
        _hook.get()
        return
    except LookupError:
        pass
    hook = _close_at_loop_end()
    # Run it to its ``yield`` now, synchronously: the first iteration is what
    # registers it with the running loop's async-generator hooks (its body
    # awaits nothing before the yield, so one step gets there).
    step = hook.asend(None)
    try:
        step.send(None)
    except StopIteration:
        pass
    _hook.set(hook)


async def aclose() -> None:
    """Close every resource LazyBridge pooled in the current event loop.

    Idempotent.  Call it before your event loop ends if you ran agents with
    ``await`` (sync calls clean up after themselves); if you do not, the
    resources are closed when the loop shuts down (``asyncio.run``,
    ``anyio.run``, ``trio.run``).

    Cancellation: each resource's closing is shielded and bounded (5 s), so
    connections are released even when the caller is being cancelled.
    """
    try:
        closers = _closers.get()
    except LookupError:
        return
    _closers.set([])
    for closer in reversed(closers):
        await closer()

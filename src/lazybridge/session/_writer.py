"""The Session's writer thread: exporters run here, never in the event loop.

``Session.emit`` is called synchronously from inside runs, so it must cost
next to nothing and can never wait: it puts the event on a bounded queue and
returns.  One daemon thread per Session (started with its first event)
takes events off the queue and hands each to every exporter; when the queue
runs dry it asks them to ``flush`` (commit, write out), so a burst of events
is written in one batch.

Lifecycle
    The thread is started lazily and lives until :meth:`Writer.close`
    (``Session.close()`` or leaving ``with Session(...)``), which lets it
    drain the queue, flush and close every exporter, and joins it.  If a
    Session is garbage-collected, or the interpreter exits, without being
    closed, a ``weakref.finalize`` hook closes it the same way, so events
    are not lost and no thread outlives its Session.

Failures
    An exporter that raises is reported once, with a :class:`SessionWarning`,
    and keeps receiving events (a failure may be transient).  If the queue
    is full -- an exporter slower than the events arrive -- new events are
    dropped for the exporters (the in-memory log keeps them) and that is
    reported once too.  Warnings never propagate into the code that emitted
    the event, even when warnings are configured as errors.
"""

from __future__ import annotations

import queue
import threading
import warnings
from collections.abc import Sequence
from typing import Protocol

from ..events import Event
from .redact import redact_text

__all__ = ["Exporter", "SessionWarning", "Writer", "warn_once"]


class SessionWarning(RuntimeWarning):
    """A Session could not do something it was asked to (an exporter failed, events were dropped)."""


class Exporter(Protocol):
    """What a Session's exporters implement; they are called from the writer thread only."""

    def export(self, event: Event) -> None:
        """Handle one event (already redacted)."""

    def flush(self) -> None:
        """Write out what is buffered; called when the queue runs dry and on ``Session.flush()``."""

    def close(self) -> None:
        """Flush and release resources; called once, when the Session closes."""


def warn_once(seen: set[str], key: str, message: str) -> None:
    """``warnings.warn(message, SessionWarning)`` the first time ``key`` is seen; never raises."""
    if key in seen:
        return
    seen.add(key)
    try:
        warnings.warn(message, SessionWarning, stacklevel=3)
    except Exception:  # warnings configured as errors must not break the caller
        pass


_STOP = object()


class Writer:
    """A bounded queue drained by one daemon thread into ``exporters``."""

    def __init__(self, exporters: Sequence[Exporter], *, queue_size: int, name: str) -> None:
        self._exporters = tuple(exporters)
        self._queue: queue.Queue[object] = queue.Queue(queue_size)
        self._name = name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._warned: set[str] = set()
        self.dropped = 0

    @property
    def running(self) -> bool:
        """Whether the writer thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def put(self, event: Event) -> None:
        """Queue ``event`` for the exporters; never blocks, never raises."""
        if self._closed or (self._thread is None and not self._start()):
            warn_once(self._warned, "closed", f"{self._name} is closed: later events are not exported")
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            warn_once(
                self._warned,
                "full",
                f"{self._name}: the exporters are too slow, the event queue is full "
                f"({self._queue.maxsize} events); events are dropped for the exporters "
                "(session.events still has them)",
            )

    def _start(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            if self._thread is None:
                thread = threading.Thread(target=self._drain, name=f"lazybridge-{self._name}", daemon=True)
                thread.start()
                self._thread = thread
            return True

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every event queued so far has been exported and flushed.

        Returns ``False`` if ``timeout`` seconds passed first.  Call it from
        synchronous code (in async code it would block the event loop for
        as long as the exporters take).
        """
        thread = self._thread
        if thread is None or not thread.is_alive():
            return True
        if self._closed:  # the stop is queued: everything before it is exported, then flushed
            thread.join(timeout)
            return not thread.is_alive()
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Export what is queued, close every exporter and join the thread.

        Idempotent.  Returns ``False`` if the thread did not finish within
        ``timeout`` seconds (a stuck exporter); it is a daemon thread, so it
        cannot keep the interpreter alive.
        """
        with self._lock:
            already, self._closed = self._closed, True
            thread = self._thread
        if thread is None:
            if not already:
                self._close_exporters()  # never started: close them here
            return True
        if not already:
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                return False
        thread.join(timeout)
        return not thread.is_alive()

    # -- in the writer thread -------------------------------------------------

    def _drain(self) -> None:
        get = self._queue.get
        try:
            while True:
                item = get()
                if item is _STOP:
                    break
                if isinstance(item, threading.Event):
                    self._flush_exporters()
                    item.set()
                    continue
                assert isinstance(item, Event)
                for exporter in self._exporters:
                    try:
                        exporter.export(item)
                    except Exception as exc:
                        self._failed(exporter, "export", exc)
                if self._queue.empty():
                    self._flush_exporters()
        finally:
            self._close_exporters()

    def _flush_exporters(self) -> None:
        for exporter in self._exporters:
            try:
                exporter.flush()
            except Exception as exc:
                self._failed(exporter, "flush", exc)

    def _close_exporters(self) -> None:
        for exporter in self._exporters:
            try:
                exporter.close()
            except Exception as exc:
                self._failed(exporter, "close", exc)

    def _failed(self, exporter: Exporter, what: str, exc: Exception) -> None:
        warn_once(
            self._warned,
            f"exporter-{id(exporter)}",
            redact_text(
                f"{self._name}: exporter {exporter!r} failed in {what}() with {type(exc).__name__}: {exc}; "
                "the run goes on (this is reported once per exporter)"
            ),
        )

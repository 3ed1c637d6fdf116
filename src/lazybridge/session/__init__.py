"""Session: the event bus every run attached to it reports to.

::

    from lazybridge import Agent, Session
    from lazybridge.session import JsonlExporter

    with Session(db="events.sqlite", exporters=[JsonlExporter("events.jsonl")]) as session:
        pipeline = Agent.chain(researcher, writer, session=session)
        pipeline("Why structured concurrency?")
        print(session.usage_summary().total.cost_usd)
        failures = session.events.query("tool_error")

An agent given ``session=`` reports every event of its runs to it -- and so
does everything nested in those runs: chain stages, parallel branches, plan
steps, agents called as tools, model and tool calls.  A nested agent with a
session of its own reports to both.

The event schema
    Every event is an instance of one frozen class per kind
    (:class:`~lazybridge.events.AgentStartEvent`,
    :class:`~lazybridge.events.ToolErrorEvent`, ...; the base is
    :class:`~lazybridge.Event`): the envelope fields ``run_id``,
    ``parent_run_id`` (the run it is nested in), ``agent``, ``branch`` (the
    enclosing parallel branch or band step) and ``time`` (``time.time()``),
    then the fields of its kind.  ``event.kind`` names the kind;
    ``event.data`` is a read-only view of the kind's fields.  The kinds and
    their fields are tabled in ``docs/session.md`` (checked against the
    classes by the test suite).

Redaction
    On by default: before an event is stored or exported, API keys, bearer
    tokens and similar secrets in its fields are masked
    (:func:`~lazybridge.session.redact.redact_event`).  ``redact=fn`` replaces
    that with ``fn(event) -> event`` (``attrs.evolve(event, ...)`` builds the
    changed copy); ``redact=None`` turns it off.  If the redactor raises, the
    event is replaced by an :class:`~lazybridge.events.UntypedEvent` that keeps
    its kind and ids, with data ``{"redaction_failed": "<exception type>"}``:
    a payload is dropped rather than leaked.

Lifecycle
    Exporters (``console=True``, ``exporters=[...]``, ``db=``) run in a
    writer thread the Session starts with its first event, fed by a bounded
    queue, so a slow disk or collector never stalls a run.  Close the
    Session -- ``session.close()``, ``with Session(...)`` or ``async with``
    -- to export what is queued, close the exporters and join the thread.
    A Session that is garbage-collected or still open at interpreter exit is
    closed the same way.  An exporter that fails, and events dropped because
    the queue was full, are reported once each with a :class:`SessionWarning`;
    neither ever reaches the run.
"""

from __future__ import annotations

import os
import sqlite3
import weakref
from collections.abc import Callable, Iterable
from types import TracebackType

import anyio.to_thread

from .._checks import check_whole
from .._ids import new_run_id
from ..errors import ConfigurationError
from ..events import Event, UntypedEvent
from ._log import EventLog
from ._writer import Exporter, SessionWarning, Writer, warn_once
from .exporters import CallableExporter, ConsoleExporter, JsonlExporter, SQLiteExporter, create_schema
from .redact import redact_event
from .usage import RunUsage, Usage, UsageSummary, summarise

__all__ = [
    "CallableExporter",
    "ConsoleExporter",
    "EventLog",
    "Exporter",
    "JsonlExporter",
    "RunUsage",
    "SQLiteExporter",
    "Session",
    "SessionWarning",
    "Usage",
    "UsageSummary",
    "redact_event",
]

#: How many events may wait for the exporters before new ones are dropped.
DEFAULT_QUEUE_SIZE = 10_000

Redactor = Callable[[Event], Event]


def _fspath(path: str | os.PathLike[str], argument: str) -> str:
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError(f"{argument} must be a path (str or os.PathLike), not {type(path).__name__}") from None


class Session:
    """Collects, redacts, stores and exports the events of the runs attached to it.

    Arguments:
        console: print the ``verbose=True`` trace of every run (from the
            writer thread).
        exporters: more destinations: :class:`JsonlExporter`,
            :class:`~lazybridge.session.otel.OTelExporter`, any object with
            ``export(event)`` / ``flush()`` / ``close()``, or a plain
            ``fn(event)``.
        db: a path: store every event in that SQLite file (table
            ``lazybridge_events``); ``session.events.query(...)`` then reads
            it back.  The table is created here, so a bad path raises now
            (``ConfigurationError`` naming the path).
        redact: ``fn(event) -> event`` applied to every event before
            anything sees it; default :func:`~lazybridge.session.redact.redact_event`,
            ``None`` to turn redaction off.
        queue_size: events that may wait for the exporters (default 10,000).
        max_events: how many of the latest events ``session.events`` keeps in
            memory (oldest dropped first); ``None`` (default) keeps them all,
            ``0`` none.  Exporters and ``db`` still get every event.  A
            long-lived Session (one per server) should set it: the in-memory
            log otherwise grows for as long as the Session lives.  In-memory
            ``query()`` and :meth:`usage_summary` cover the kept events only.

    Attributes:
        id: this Session's id (``ses_...``), stored with each SQLite row.
        events: the :class:`EventLog` -- a read-only list of the (redacted)
            events, plus ``query(...)``.
    """

    def __init__(
        self,
        *,
        console: bool = False,
        exporters: Iterable[Exporter | Callable[[Event], object]] = (),
        db: str | os.PathLike[str] | None = None,
        redact: Redactor | None = redact_event,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_events: int | None = None,
    ) -> None:
        if redact is not None and not callable(redact):
            raise TypeError(f"redact must be a function of an Event, or None, not {type(redact).__name__}")
        check_whole(queue_size, "queue_size")
        check_whole(max_events, "max_events", minimum=0, optional=True)
        self.id = "ses_" + new_run_id()[4:]
        self._redact = redact
        self._warned: set[str] = set()
        sinks: list[Exporter] = [ConsoleExporter()] if console else []
        for exporter in exporters:
            if callable(getattr(exporter, "export", None)):
                sinks.append(exporter)  # type: ignore[arg-type]
            elif callable(exporter):
                sinks.append(CallableExporter(exporter))
            else:
                raise TypeError(
                    f"an exporter needs an export(event) method or must be callable, not {exporter!r}"
                )
        self.db = _fspath(db, "db") if db is not None else None
        if self.db is not None:
            try:
                create_schema(self.db)
            except sqlite3.Error as exc:  # sqlite's own message does not say which file
                raise ConfigurationError(
                    f"db={self.db!r}: cannot open or create an SQLite database there ({exc})"
                ) from exc
            sinks.append(SQLiteExporter(self.db, self.id))
        self._writer = Writer(sinks, queue_size=queue_size, name=f"session-{self.id}") if sinks else None
        self.events = EventLog(db=self.db, session_id=self.id, flush=self.flush, max_events=max_events)
        # Close (drain, flush, join) when the Session is collected or the interpreter exits.
        self._finalizer = weakref.finalize(self, Writer.close, self._writer, 10.0) if self._writer else None

    def __repr__(self) -> str:
        return f"<Session {self.id} events={len(self.events)}>"

    # -- the sink -------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Record ``event`` (redacted) and queue it for the exporters.

        Called synchronously by running agents; it never blocks and never
        raises.  Exporters see it later, from the writer thread.
        """
        redact = self._redact
        if redact is not None:
            try:
                event = redact(event)
            except Exception as exc:
                event = UntypedEvent(
                    event.run_id,
                    event.parent_run_id,
                    event.agent,
                    event.branch,
                    event.time,
                    event.kind,
                    {"redaction_failed": type(exc).__name__},
                )
                warn_once(
                    self._warned,
                    "redact",
                    f"session {self.id}: the redactor raised {type(exc).__name__}; "
                    "event data is dropped when that happens (reported once)",
                )
        self.events._append(event)
        if self._writer is not None:
            self._writer.put(event)

    # -- lifecycle ------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Block until the exporters have handled (and flushed) every event emitted so far.

        Returns ``False`` if ``timeout`` seconds passed first.  A blocking
        call: in async code use ``await anyio.to_thread.run_sync(session.flush)``.
        """
        return self._writer.flush(timeout) if self._writer is not None else True

    def close(self, timeout: float | None = None) -> bool:
        """Export what is queued, close every exporter and join the writer thread.

        Idempotent; returns ``False`` if the thread had not finished after
        ``timeout`` seconds (a stuck exporter -- the thread is a daemon and
        is left behind).  Events emitted after ``close`` are still recorded
        in :attr:`events` but no longer exported.
        """
        if self._writer is None:
            return True
        return self._writer.close(timeout)

    async def aclose(self) -> bool:
        """:meth:`close` from async code, in a worker thread so the event loop keeps running.

        Cancellation: the close goes on in its thread (abandoned, not
        interrupted: the exporters are still flushed and closed) and the
        cancellation propagates at once.  To bound the wait, wrap the call
        in ``anyio.move_on_after``.
        """
        return await anyio.to_thread.run_sync(self.close, abandon_on_cancel=True)

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- reading --------------------------------------------------------------------

    def usage_summary(self, run_id: str | None = None) -> UsageSummary:
        """Tokens, cost, calls and latency of the finished runs: in total, per agent, per run.

        Each model call is counted once however the runs nest (see
        :mod:`lazybridge.session.usage`): ``total.cost_usd`` equals the sum
        of the top-level runs' ``cost_usd``.  With ``run_id``, only that run
        and the runs nested in it.
        """
        return summarise(self.events, run_id)

    @property
    def dropped_events(self) -> int:
        """Events the exporters missed because the queue was full."""
        return self._writer.dropped if self._writer is not None else 0

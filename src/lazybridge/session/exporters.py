"""Exporters: where a Session sends its (redacted) events.

Every exporter runs in the Session's writer thread, one event at a time, in
the order the events were emitted.  An exporter is any object with
``export(event)``, ``flush()`` and ``close()`` (see
:class:`~lazybridge.session.Exporter`); a plain callable ``fn(event)`` is
accepted too.  Built in:

* :class:`ConsoleExporter` -- the ``verbose=True`` trace (``Session(console=True)``);
* :class:`JsonlExporter` -- one JSON object per line in a file;
* :class:`SQLiteExporter` -- a table in an SQLite file (``Session(db="events.sqlite")``);
* :class:`~lazybridge.session.otel.OTelExporter` -- OpenTelemetry spans
  (``pip install "lazybridge[otel]"``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any

from .._trace import TracePrinter
from ..envelope import converter
from ..errors import ConfigurationError
from ..events import Event

__all__ = ["CallableExporter", "ConsoleExporter", "JsonlExporter", "SQLiteExporter", "event_to_dict"]


def event_to_dict(event: Event) -> dict[str, Any]:
    """The JSON form of an event: ``kind``, ``run_id``, ``parent_run_id``, ``agent``, ``branch``, ``time``, ``data``.

    ``data`` holds the fields of the event's kind; ``converter.structure(d, Event)``
    (:data:`lazybridge.envelope.converter`) reads it back as the kind's class.
    """
    result: dict[str, Any] = converter.unstructure(event, Event)
    return result


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class CallableExporter:
    """Wraps a plain ``fn(event)`` so it can sit in ``exporters=[...]``."""

    def __init__(self, fn: Callable[[Event], object]) -> None:
        self.fn = fn

    def export(self, event: Event) -> None:
        self.fn(event)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"CallableExporter({self.fn!r})"


class ConsoleExporter:
    """Prints the ``verbose=True`` trace lines (see :mod:`lazybridge._trace`) to ``stream``.

    ``stream`` defaults to whatever ``sys.stdout`` is when a line is written.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream
        self._printer = TracePrinter()

    def export(self, event: Event) -> None:
        line = self._printer.format(event)
        if line is not None:
            (self.stream or sys.stdout).write(line + "\n")

    def flush(self) -> None:
        (self.stream or sys.stdout).flush()

    def close(self) -> None:
        self.flush()

    def __repr__(self) -> str:
        return "ConsoleExporter()"


class JsonlExporter:
    """Appends each event as one JSON line (:func:`event_to_dict`) to the file at ``path``.

    The file is opened (created, or appended to) by the writer thread on the
    first event, written through a buffer flushed whenever the queue runs
    dry, and closed with the Session.

    Args:
        path: the file; its folder must exist (checked at construction).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            self.path = os.fspath(path)
        except TypeError:
            raise TypeError(f"path must be a path (str or os.PathLike), not {type(path).__name__}") from None
        # The file is opened later, on the writer thread, where a failure can
        # only be warned about: refuse a path whose folder is missing now.
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise ConfigurationError(f"path={self.path!r}: the folder {folder!r} does not exist")
        self._file: IO[str] | None = None

    def export(self, event: Event) -> None:
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")  # closed in close()
        self._file.write(_dumps(event_to_dict(event)) + "\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __repr__(self) -> str:
        return f"JsonlExporter({self.path!r})"


# -- SQLite ---------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lazybridge_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    run_id TEXT NOT NULL,
    parent_run_id TEXT,
    agent TEXT NOT NULL,
    branch TEXT,
    time REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lazybridge_events_run ON lazybridge_events (session_id, run_id);
CREATE INDEX IF NOT EXISTS lazybridge_events_kind ON lazybridge_events (session_id, kind);
CREATE INDEX IF NOT EXISTS lazybridge_events_agent ON lazybridge_events (session_id, agent);
"""

_INSERT = (
    "INSERT INTO lazybridge_events (session_id, kind, run_id, parent_run_id, agent, branch, time, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def create_schema(path: str) -> None:
    """Create the events table in the SQLite file at ``path`` (raises if the file cannot be opened)."""
    with _connect(path) as conn:
        conn.executescript(_SCHEMA)
    conn.close()


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
    return conn


class SQLiteExporter:
    """Stores events in the ``lazybridge_events`` table of an SQLite file.

    Rows are inserted by the writer thread and committed in batches (when
    the queue runs dry), so the event loop never waits on the disk.  Read
    them back with :meth:`lazybridge.session.EventLog.query`, or with any
    SQLite client: ``data`` is the event's data as JSON.

    Args:
        path: the SQLite file (created if missing).
        session_id: the value of the ``session_id`` column of every row.
    """

    #: Rows inserted per transaction at most.
    batch_size = 500

    def __init__(self, path: str | os.PathLike[str], session_id: str) -> None:
        self.path = os.fspath(path)
        self.session_id = session_id
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[Any, ...]] = []

    def export(self, event: Event) -> None:
        self._pending.append(
            (
                self.session_id,
                event.kind,
                event.run_id,
                event.parent_run_id,
                event.agent,
                event.branch,
                event.time,
                _dumps(event_to_dict(event)["data"]),
            )
        )
        if len(self._pending) >= self.batch_size:  # a queue that never runs dry still gets written
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        if self._conn is None:
            self._conn = _connect(self.path)
        rows, self._pending = self._pending, []
        with self._conn:  # one transaction per batch
            self._conn.executemany(_INSERT, rows)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"SQLiteExporter({self.path!r})"


def query_sqlite(
    path: str, session_id: str | None, filters: Iterable[tuple[str, Any]], limit: int | None
) -> list[Event]:
    """Events from the SQLite file at ``path``, oldest first (see ``EventLog.query``)."""
    clauses: list[str] = []
    params: list[Any] = []
    if session_id is not None:
        clauses.append("session_id = ?")
        params.append(session_id)
    for column, value in filters:
        if column == "since":
            clauses.append("time >= ?")
            params.append(value)
        elif column == "until":
            clauses.append("time <= ?")
            params.append(value)
        elif isinstance(value, (list, tuple, set, frozenset)):
            clauses.append(f"{column} IN ({', '.join('?' * len(value))})")
            params.extend(value)
        else:
            clauses.append(f"{column} = ?")
            params.append(value)
    sql = "SELECT kind, run_id, parent_run_id, agent, branch, time, data FROM lazybridge_events"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    conn = sqlite3.connect(path, timeout=30.0)
    try:
        rows = conn.execute(sql, params).fetchall()
    finally:
        conn.close()
    return [
        converter.structure(
            {"kind": kind, "run_id": run_id, "parent_run_id": parent, "agent": agent,
             "branch": branch, "time": time, "data": json.loads(data)},
            Event,
        )
        for kind, run_id, parent, agent, branch, time, data in rows
    ]

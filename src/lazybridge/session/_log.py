"""EventLog: a Session's events, as a read-only list, with ``query``."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, overload

from ..events import Event
from .exporters import query_sqlite

__all__ = ["EventLog"]

Filter = str | Iterable[str] | None


def _matches(value: str | None, wanted: str | tuple[str, ...]) -> bool:
    if isinstance(wanted, str):
        return value == wanted
    return value in wanted


class EventLog(Sequence[Event]):
    """The events a Session received, oldest first (already redacted).

    It is a read-only sequence -- ``len(log)``, ``log[0]``, ``for e in log``
    -- of the events of this Session kept in memory (the latest
    ``max_events`` of them, when the Session sets it), and :meth:`query`
    filters them (or, with ``Session(db=...)``, the stored copy in SQLite).
    """

    def __init__(
        self,
        *,
        db: str | None = None,
        session_id: str = "",
        flush: Callable[[], object] = lambda: None,
        max_events: int | None = None,
    ):
        # A deque drops the oldest event itself once max_events are kept.
        self._events: deque[Event] = deque(maxlen=max_events)
        self._db = db
        self._session_id = session_id
        self._flush = flush

    def _append(self, event: Event) -> None:
        self._events.append(event)  # deque.append is atomic: emit may come from worker threads

    def __len__(self) -> int:
        return len(self._events)

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...
    def __getitem__(self, index: int | slice) -> Event | list[Event]:
        if isinstance(index, slice):
            return list(self._events)[index]
        return self._events[index]

    def __iter__(self) -> Iterator[Event]:
        return iter(list(self._events))  # a snapshot: events may arrive while iterating

    def __repr__(self) -> str:
        return f"<EventLog {len(self._events)} events>"

    def query(
        self,
        kind: Filter = None,
        *,
        agent: Filter = None,
        run_id: Filter = None,
        parent_run_id: Filter = None,
        branch: Filter = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        all_sessions: bool = False,
    ) -> list[Event]:
        """The events that match every filter given, oldest first.

        ``kind``, ``agent``, ``run_id``, ``parent_run_id`` and ``branch``
        take one value or a collection of values; ``since`` / ``until`` are
        ``time.time()`` bounds (inclusive); ``limit`` caps the count.

        With ``Session(db=...)`` this reads the SQLite file, after waiting
        for the writer thread to store every event emitted so far: a
        blocking call, meant for scripts, tests and after-the-fact
        analysis (from async code, run it with ``anyio.to_thread.run_sync``).
        ``all_sessions=True`` also returns events that other Sessions stored
        in the same file.  Without ``db`` it filters the in-memory events.
        Events read from SQLite come back as their kind's class (an
        :class:`~lazybridge.events.UntypedEvent` for a record that does not fit it).
        """
        filters: list[tuple[str, Any]] = []
        for column, wanted in (
            ("kind", kind),
            ("agent", agent),
            ("run_id", run_id),
            ("parent_run_id", parent_run_id),
            ("branch", branch),
        ):
            if wanted is not None:
                filters.append((column, wanted if isinstance(wanted, str) else tuple(wanted)))
        if since is not None:
            filters.append(("since", since))
        if until is not None:
            filters.append(("until", until))
        if self._db is not None:
            self._flush()
            return query_sqlite(self._db, None if all_sessions else self._session_id, filters, limit)
        found = []
        for event in list(self._events):
            if not all(self._keep(event, column, wanted) for column, wanted in filters):
                continue
            found.append(event)
            if limit is not None and len(found) >= limit:
                break
        return found

    @staticmethod
    def _keep(event: Event, column: str, wanted: Any) -> bool:
        if column == "since":
            return bool(event.time >= wanted)
        if column == "until":
            return bool(event.time <= wanted)
        value: str | None = getattr(event, column)
        return _matches(value, wanted)

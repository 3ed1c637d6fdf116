"""A batch's checkpoint: finished envelopes in a SQLite file, written off the event loop.

Each finished task is stored under its key -- its index in the input and a
hash of its task (text and context) -- so a batch run again over the same
input skips what is done.  The writing follows the Session's writer
(:mod:`lazybridge.session._writer`): one thread per checkpoint drains a
bounded queue, and commits whenever the queue runs dry, so a burst of
results is one transaction.  Unlike a Session's exporters a checkpoint must
not drop anything: when the queue is full, :meth:`CheckpointWriter.put`
waits for room *in a worker thread*, so a slow disk slows the batch (back
pressure) and never blocks the event loop.

The SQLite connection lives in the writer thread only (SQLite connections
are bound to their thread); reading is done with connections of its own.
"""

from __future__ import annotations

import hashlib
import os
import queue
import sqlite3
import threading
from collections.abc import Container, Iterator

import anyio
import anyio.to_thread

from .envelope import Envelope

__all__ = ["CheckpointWriter", "done_keys", "read_checkpoint", "results_missing_from", "task_hash"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS results ("
    "idx INTEGER PRIMARY KEY, task_hash TEXT NOT NULL, ok INTEGER NOT NULL, envelope TEXT NOT NULL)"
)

#: Results queued for the writer thread at most (then put() waits, in a worker thread).
QUEUE_SIZE = 4096

#: Rows written per executemany when a burst is queued.
_CHUNK = 512

_STOP = object()


def task_hash(task: Envelope) -> str:
    """The key half that says *which* task: a hash of its text and context."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update((task.task or "").encode())
    digest.update(b"\x00")
    digest.update((task.context or "").encode())
    return digest.hexdigest()


def _connect(path: str | os.PathLike[str], *, handed_over: bool = False) -> sqlite3.Connection:
    # handed_over: opened in one worker thread, then used by the writer thread
    # alone (never by two threads at once), which SQLite allows.
    conn = sqlite3.connect(os.fspath(path), timeout=30.0, check_same_thread=not handed_over)
    # WAL: readers (read_checkpoint while a batch runs) do not block the writer;
    # synchronous=NORMAL stays durable across a process crash (not a power cut).
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(_SCHEMA)
    conn.commit()
    return conn


def done_keys(path: str | os.PathLike[str], *, include_failed: bool) -> dict[int, str]:
    """index -> task hash of the tasks the checkpoint has (only the ``ok`` ones unless ``include_failed``).

    Blocking: call it in a worker thread.  A missing file is an empty checkpoint.
    """
    if not os.path.exists(path):
        return {}
    conn = _connect(path)
    try:
        sql = "SELECT idx, task_hash FROM results" + ("" if include_failed else " WHERE ok = 1")
        return dict(conn.execute(sql))
    finally:
        conn.close()


def read_checkpoint(path: str | os.PathLike[str]) -> Iterator[tuple[int, Envelope]]:
    """The ``(index, envelope)`` pairs stored in a batch's checkpoint file, by index.

    Reads lazily, a row at a time, so a checkpoint of any size can be read
    back in flat memory.  Safe while a batch is still writing to the file.
    An error envelope read back has its ``type``, ``message`` and
    ``retryable`` but no ``exception`` (exceptions are not stored).

    Raises ``FileNotFoundError`` if ``path`` does not exist.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint file at {os.fspath(path)!r}")
    conn = _connect(path)
    try:
        for index, text in conn.execute("SELECT idx, envelope FROM results ORDER BY idx"):
            yield index, Envelope.from_json(text)
    finally:
        conn.close()


def results_missing_from(path: str | os.PathLike[str], present: Container[int]) -> dict[int, tuple[str, Envelope]]:
    """``index -> (key, envelope)`` of the stored results whose index is not in ``present``.

    Blocking: call it in a worker thread (or before the event loop starts).
    Only the missing envelopes are parsed and kept.  A missing file is empty.
    """
    if not os.path.exists(path):
        return {}
    conn = _connect(path)
    try:
        return {
            index: (key, Envelope.from_json(text))
            for index, key, text in conn.execute("SELECT idx, task_hash, envelope FROM results")
            if index not in present
        }
    finally:
        conn.close()


class CheckpointWriter:
    """Stores finished envelopes in ``path`` from one writer thread; see the module docstring."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self._queue: queue.Queue[object] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self.written = 0

    async def open(self) -> None:
        """Create the file and its table (in a worker thread), then start the writer thread."""
        conn = await anyio.to_thread.run_sync(lambda: _connect(self.path, handed_over=True))
        self._thread = threading.Thread(target=self._drain, args=(conn,), name="lazybridge-checkpoint", daemon=True)
        self._thread.start()

    async def put(self, index: int, key: str, envelope: Envelope) -> None:
        """Queue a finished task; waits for room in a worker thread when the queue is full."""
        if self._failure is not None:
            return  # the writer has failed: close() reports it; the batch itself goes on
        item = (index, key, envelope)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            # abandon_on_cancel: a cancelled batch stops waiting; the item is then
            # queued anyway by the thread (the put completes), which is harmless.
            await anyio.to_thread.run_sync(self._queue.put, item, abandon_on_cancel=True)

    async def close(self) -> None:
        """Write everything queued, commit and close the file.  Shielded: runs even when cancelled.

        Raises the error the writer thread met (a full disk, say), if any.
        """
        thread = self._thread
        if thread is None:
            return
        self._thread = None
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._stop_and_join, thread)
        if self._failure is not None:
            raise self._failure

    def _stop_and_join(self, thread: threading.Thread) -> None:
        self._queue.put(_STOP)
        thread.join()

    # -- in the writer thread -------------------------------------------------

    def _drain(self, conn: sqlite3.Connection) -> None:
        get = self._queue.get
        stop = False
        try:
            while not stop:
                rows: list[tuple[int, str, int, str]] = []
                item = get()
                while True:
                    if item is _STOP:
                        stop = True
                        break
                    assert isinstance(item, tuple)
                    index, key, envelope = item
                    rows.append((index, key, int(envelope.ok), envelope.to_json()))
                    if len(rows) >= _CHUNK:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if rows:
                    conn.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)", rows)
                    conn.commit()
                    self.written += len(rows)
        except BaseException as exc:  # reported by close(); the batch goes on without storing
            self._failure = exc
            # Keep draining so that put() never waits forever on a dead writer.
            while not stop:
                stop = get() is _STOP
        finally:
            conn.close()

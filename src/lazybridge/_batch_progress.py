"""A batch's progress display: done / failed / in flight, cost so far, throughput, ETA.

On a terminal it is a live ``rich`` progress bar (``pip install
'lazybridge[progress]'``); when stderr is not a terminal, or ``rich`` is not
installed, it is a log line every :data:`LOG_INTERVAL` seconds and one at the
end -- what a CI log or ``nohup`` file wants.  It only counts and formats: it
is updated from the batch's tasks as they finish, and starts no task of its
own (rich's refresh thread, if rich is used, is rich's).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from .envelope import Envelope

__all__ = ["LOG_INTERVAL", "BatchProgress"]

#: Seconds between two log lines when stderr is not a terminal.
LOG_INTERVAL = 5.0


class BatchProgress:
    """Counts a batch's tasks and shows them.

    ``total`` is the number of tasks expected (``None`` when unknown: no
    ETA then).  ``clock`` is the monotonic clock the rate and ETA are
    measured with (a fake one in tests).
    """

    def __init__(
        self,
        total: int | None,
        *,
        stream: TextIO | None = None,
        interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.done = self.failed = self.in_flight = self.skipped = 0
        self.cost_usd = 0.0
        self._clock = clock
        self._started = clock()
        self._last_line = self._started
        self._rich: Any = None
        self._bar: Any = None
        isatty = getattr(self.stream, "isatty", None)
        if isatty is not None and isatty():
            self._rich, self._bar = _rich_bar(self.stream, total)

    def start(self) -> None:
        self.in_flight += 1

    def skip(self) -> None:
        """A task already in the checkpoint: counted as done, not as throughput."""
        self.skipped += 1
        self._refresh()

    def finish(self, envelope: Envelope) -> None:
        self.in_flight -= 1
        self.done += 1
        if not envelope.ok:
            self.failed += 1
        self.cost_usd += envelope.metadata.cost_usd
        self._refresh()

    def line(self) -> str:
        """The status as one line of text."""
        elapsed = max(self._clock() - self._started, 1e-9)
        rate = self.done / elapsed
        parts = [f"{self.done + self.skipped}" + (f"/{self.total}" if self.total is not None else "") + " done"]
        if self.skipped:
            parts.append(f"{self.skipped} from checkpoint")
        parts += [f"{self.failed} failed", f"{self.in_flight} in flight", f"${self.cost_usd:.4f}", f"{rate:.1f} tasks/s"]
        if self.total is not None and rate > 0:
            left = self.total - self.done - self.skipped
            parts.append(f"ETA {_duration(max(left, 0) / rate)}")
        return "batch: " + ", ".join(parts)

    def _refresh(self) -> None:
        if self._bar is not None:
            progress, task_id = self._rich, self._bar
            progress.update(
                task_id,
                completed=self.done + self.skipped,
                description=f"{self.failed} failed, {self.in_flight} in flight, ${self.cost_usd:.4f}",
            )
            return
        now = self._clock()
        if now - self._last_line >= self.interval:
            self._last_line = now
            self._write(self.line())

    def close(self) -> None:
        if self._bar is not None:
            self._refresh()
            self._rich.stop()
            self._bar = None
        self._write(self.line())

    def _write(self, text: str) -> None:
        try:
            print(text, file=self.stream, flush=True)
        except (OSError, ValueError):  # a closed or broken stderr must not fail the batch
            pass


def _duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``: an ETA a person reads at a glance."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _rich_bar(stream: TextIO, total: int | None) -> tuple[Any, Any]:
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
    except ImportError:  # the extra is not installed: log lines instead
        return None, None
    progress = Progress(
        TextColumn("batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(file=stream),
        transient=False,
    )
    progress.start()
    return progress, progress.add_task("", total=total)

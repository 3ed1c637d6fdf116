"""The live view of ``lazybridge parallel`` on a terminal: every model answering side by side.

One panel per branch, filled from the panel's merged stream
(``async with panel.stream(task)``) as each branch's deltas arrive; a
branch's cost, latency and tokens fill in its panel's footer when it
finishes, and a failed branch's panel turns red and names its error.  When
the fan-out ends the live frames are replaced by the final panels, printed
in full, and the totals line.

It needs ``rich`` (the ``lazybridge[cli]`` extra); :func:`available` says
whether it is importable, and the command falls back to the plain trace when
it is not.  Colour follows ``NO_COLOR``; the layout follows the terminal
width (side by side while every column gets :data:`MIN_COLUMN` characters,
stacked otherwise).

Cancellation: Ctrl-C (or any cancellation) leaves the stream's block, which
cancels every branch and closes its response before the view is torn down.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult

    from .envelope import Envelope
    from .events import Event
    from .parallel import ParallelAgent

MIN_COLUMN = 30
"""Narrowest column (in characters, borders included) of the side-by-side layout."""

_FPS = 10


def available() -> bool:
    """Whether ``rich`` can be imported (the live view's only extra dependency)."""
    try:
        return importlib.util.find_spec("rich") is not None
    except ValueError:  # a module set to None in sys.modules: treated as absent
        return False


class _Branch:
    """What one panel shows; written by the event loop and the session's writer thread."""

    def __init__(self, label: str, model: str) -> None:
        self.label = label
        self.model = model
        self.text = ""
        self.started = time.perf_counter()
        self.finished: dict[str, Any] | None = None  # ok, error_type, cost_usd, latency_ms, tokens


class LiveView:
    """The side-by-side panels of a fan-out; a rich renderable, refreshed by ``rich.live.Live``."""

    def __init__(self, labels: list[str], models: list[str], *, final: bool = False) -> None:
        self.branches = [_Branch(label, model) for label, model in zip(labels, models, strict=True)]
        self._lock = threading.Lock()
        self.final = final  # the last frame: whole answers, no cropping to the screen height

    def add(self, index: int, text: str) -> None:
        with self._lock:
            self.branches[index].text += text

    def finish(self, index: int, **outcome: Any) -> None:
        with self._lock:
            self.branches[index].finished = outcome

    def on_event(self, event: Event) -> None:
        """A Session exporter: a ``branch_finish`` fills in that branch's footer."""
        from .events import BranchFinishEvent

        # Only the panel's own branches (a nested fan-out's inner branches have a path).
        if isinstance(event, BranchFinishEvent) and event.branch is not None and "/" not in event.branch:
            self.finish(
                event.index,
                ok=event.ok,
                error_type=event.error_type,
                error_message=event.error_message,
                cost_usd=event.cost_usd,
                latency_ms=event.latency_ms,
                tokens=f"{event.input_tokens}/{event.output_tokens}",
            )

    def settle(self, branches: list[Envelope]) -> None:
        """Fill every panel from the branches' final envelopes (the authoritative outcome)."""
        for index, env in enumerate(branches):
            meta = env.metadata
            with self._lock:
                if env.ok:
                    self.branches[index].text = env.text()
            self.finish(
                index,
                ok=env.ok,
                error_type=None if env.error is None else env.error.type,
                error_message=None if env.error is None else env.error.message,
                cost_usd=meta.cost_usd,
                latency_ms=meta.latency_ms,
                tokens=f"{meta.input_tokens}/{meta.output_tokens}",
            )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.table import Table

        with self._lock:
            panels = [self._panel(b) for b in self.branches]
        width = options.max_width
        across = max(1, min(len(panels), width // MIN_COLUMN))
        rows = [panels[i : i + across] for i in range(0, len(panels), across)]
        height = None
        if not self.final:
            # Keep the whole frame on the screen: each panel shows the tail of its text.
            height = max(5, (options.height or console.height) // len(rows) - 1)
        grid = Table.grid(expand=True, padding=(0, 0))
        for _ in range(across):
            grid.add_column(ratio=1)
        for row in rows:
            grid.add_row(*(_Tail(p, height) for p in row), *([""] * (across - len(row))))
        yield grid

    def _panel(self, b: _Branch) -> RenderableType:
        from rich.panel import Panel
        from rich.text import Text

        title = b.label if b.label == b.model else f"{b.label} ({b.model})"
        done = b.finished
        if done is None:
            footer = Text(f"answering… {time.perf_counter() - b.started:.1f}s", style="dim")
            return Panel(Text(b.text), title=title, subtitle=footer, border_style="blue")
        if done["ok"]:
            footer = Text.assemble(
                ("ok", "green"),
                f" · ${done['cost_usd']:.5f} · {done['latency_ms']:.0f}ms · {done['tokens']} tokens",
            )
            return Panel(Text(b.text), title=title, subtitle=footer, border_style="green")
        footer = Text.assemble(
            ("FAILED", "bold red"), f" · {done['error_type']} · {done['latency_ms']:.0f}ms"
        )
        body = Text(b.text)
        if b.text:
            body.append("\n\n")
        body.append(f"{done['error_type']}: {done['error_message']}", style="red")
        return Panel(body, title=title, subtitle=footer, border_style="red")


class _Tail:
    """A panel cut to ``height`` lines by dropping the top of its text, so the newest text shows."""

    def __init__(self, panel: Any, height: int | None) -> None:
        self.panel = panel
        self.height = height

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.segment import Segment

        lines = console.render_lines(self.panel, options, pad=True)
        if self.height is not None and len(lines) > self.height:
            # Keep the top border (the title), then the last lines (the newest text and the footer).
            lines = lines[:1] + lines[len(lines) - self.height + 1 :]
        for line in lines:
            yield from line
            yield Segment.line()


def make_console() -> Console:
    """A console on stdout that honours NO_COLOR (no styling at all) and the terminal's width."""
    from rich.console import Console

    no_colour = bool(os.environ.get("NO_COLOR"))
    return Console(color_system=None if no_colour else "auto", no_color=no_colour, highlight=False)


async def stream_live(panel: ParallelAgent, question: str, view: LiveView, console: Console) -> Envelope:
    """Run ``panel`` on ``question`` through its merged stream, drawing ``view`` live; its envelope.

    The panel should report to a Session with ``view.on_event`` as an
    exporter, so finished branches fill in their footer as they finish.  The
    live frames are transient; the final panels are printed in full once the
    stream ends, and stay on the screen.
    """
    from rich.live import Live

    from ._parallel_stream import BranchDelta

    with Live(view, console=console, refresh_per_second=_FPS, transient=True, redirect_stdout=False):
        async with panel.stream(question) as stream:
            async for delta in stream:
                if isinstance(delta, BranchDelta):
                    view.add(delta.index, delta.text)
            env = stream.envelope
        assert env is not None
        view.settle(list(env.payload))
    view.final = True
    console.print(view)
    return env

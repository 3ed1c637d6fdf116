"""Session: where the events of every run it is attached to are collected."""

from __future__ import annotations

from .events import Event


class Session:
    """Collects the events of the agents attached to it (and of their nested runs)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

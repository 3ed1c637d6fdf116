"""Sentinels: where a :class:`~lazybridge.Step` takes its task and context from.

A sentinel names an envelope the plan has already produced; the plan
resolves it when the step runs:

``from_prev``
    The envelope of the step that ran just before (the default task).  For
    the first step it is the plan's input; for every step of a parallel
    band it is the envelope before the band; after a band it is the band's
    labelled join.
``from_start``
    The plan's input.
``from_step("name")``
    The latest envelope of step ``name``.
``from_parallel("name")``
    The envelope of one member, ``name``, of a parallel band.
``from_parallel_all("name")``
    The whole band that starts at step ``name``, folded into one envelope
    exactly as :meth:`Agent.parallel <lazybridge.Agent.parallel>` folds its
    branches: ``text()`` is ``"[a]\\n<a text>\\n\\n[b]\\n<b text>"``, the
    payload the list of member envelopes.

Sentinels may only point backwards: a plan that reads a later step, or a
sibling of the same band, fails to construct with
:class:`~lazybridge.errors.PlanCompileError`.
"""

from __future__ import annotations

from typing import Literal

import attrs

from ..errors import ConfigurationError

__all__ = [
    "Sentinel",
    "from_parallel",
    "from_parallel_all",
    "from_prev",
    "from_start",
    "from_step",
]

SentinelKind = Literal["prev", "start", "step", "parallel", "parallel_all"]


@attrs.frozen(repr=False)
class Sentinel:
    """A reference to an envelope of the running plan; build one with the ``from_*`` helpers."""

    kind: SentinelKind
    name: str | None = None

    def __repr__(self) -> str:
        if self.name is None:
            return f"from_{self.kind}"
        return f"from_{self.kind}({self.name!r})"


def _named(kind: SentinelKind, name: str) -> Sentinel:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"from_{kind}() needs a step name, not {name!r}")
    return Sentinel(kind, name)


from_prev = Sentinel("prev")
"""The previous step's envelope (the default ``task=`` of every step)."""

from_start = Sentinel("start")
"""The plan's input envelope."""


def from_step(name: str) -> Sentinel:
    """The latest envelope of the earlier step ``name``."""
    return _named("step", name)


def from_parallel(name: str) -> Sentinel:
    """The envelope of ``name``, one member of an earlier parallel band."""
    return _named("parallel", name)


def from_parallel_all(name: str) -> Sentinel:
    """The labelled join of the earlier parallel band that starts at step ``name``."""
    return _named("parallel_all", name)

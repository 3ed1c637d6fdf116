"""The event classes: one frozen attrs class per event kind, and their JSON form.

Every event has the same five *envelope* fields -- ``run_id``,
``parent_run_id``, ``agent``, ``branch``, ``time`` -- then the fields of its
kind.  ``event.kind`` is the kind's name (a class attribute: ``"tool_error"``
for :class:`ToolErrorEvent`), and ``event.data`` a read-only mapping of the
kind's own fields, kept for code written when events were ``(kind, data)``
pairs.

The JSON form (what :class:`~lazybridge.session.JsonlExporter` writes and the
SQLite ``data`` column holds) goes through the one converter,
:data:`lazybridge.envelope.converter`, as a union tagged by ``kind``::

    {"kind": "tool_error", "run_id": ..., "parent_run_id": ..., "agent": ...,
     "branch": ..., "time": ..., "data": {"name": ..., "call_id": ..., ...}}

``converter.structure(d, Event)`` reads it back as the class of its kind.  A
record that does not fit its kind's class (written by another version of
LazyBridge, or an event whose redaction failed) comes back as an
:class:`UntypedEvent` rather than raising.

The classes are public in :mod:`lazybridge.events`; this module exists so the
schema sits apart from the run context that emits it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn

from .envelope import converter

__all__ = [
    "EVENT_TYPES",
    "AgentFinishEvent",
    "AgentStartEvent",
    "BranchFinishEvent",
    "BranchStartEvent",
    "Event",
    "FinishEvent",
    "ModelRequestEvent",
    "ModelResponseEvent",
    "ModelRetryEvent",
    "ParallelFinishEvent",
    "ParallelStartEvent",
    "RateLimitWaitEvent",
    "StepFinishEvent",
    "StepStartEvent",
    "ToolCallEvent",
    "ToolErrorEvent",
    "ToolResultEvent",
    "UntypedEvent",
]

#: The fields every event has, in this order (they are the positional arguments of every class).
ENVELOPE_FIELDS = ("run_id", "parent_run_id", "agent", "branch", "time")


@attrs.frozen
class Event:
    """One thing that happened during a run: the base of every event class.

    ``kind`` names the event's kind (a class attribute); ``run_id`` is the
    run that emitted it, ``parent_run_id`` the run that one is nested in,
    ``agent`` the emitting agent's name, ``branch`` the enclosing parallel
    branch or band step (``None`` outside one) and ``time`` is
    ``time.time()`` at emission.
    """

    kind: ClassVar[str] = ""
    #: The names of the kind's own fields, in order (set for each registered class).
    data_fields: ClassVar[tuple[str, ...]] = ()

    run_id: str
    parent_run_id: str | None
    agent: str
    branch: str | None
    time: float

    @property
    def data(self) -> Mapping[str, Any]:
        """The kind's own fields as a read-only mapping (a compatibility view; prefer the attributes)."""
        return MappingProxyType({name: getattr(self, name) for name in self.data_fields})


#: kind -> its class; every concrete event class is registered here.
EVENT_TYPES: dict[str, type[Event]] = {}

_E = TypeVar("_E", bound=type[Event])


def _register(cls: _E) -> _E:
    if cls.kind in EVENT_TYPES:  # pragma: no cover - a programming error caught at import
        raise RuntimeError(f"two event classes for kind {cls.kind!r}")
    cls.data_fields = tuple(f.name for f in attrs.fields(cls)[len(ENVELOPE_FIELDS) :])
    EVENT_TYPES[cls.kind] = cls
    return cls


@_register
@attrs.frozen
class AgentStartEvent(Event):
    """A run started: ``task`` is its task text, ``agent_kind`` the agent's class name."""

    kind: ClassVar[str] = "agent_start"
    task: str | None
    model: str | None
    agent_kind: str


@attrs.frozen
class FinishEvent(Event):
    """The fields shared by everything that finishes with an envelope: runs, branches, plan steps.

    ``ok``, ``error_type`` and ``error_message`` say how it ended; the
    tokens and ``cost_usd`` are inclusive totals and ``nested_*`` the part
    spent by nested runs (see the cost rule); ``usage_reported`` is
    ``False`` if a provider did not report usage for some response.
    """

    ok: bool
    error_type: str | None
    error_message: str | None
    model: str | None
    provider: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    nested_input_tokens: int
    nested_output_tokens: int
    nested_cost_usd: float
    usage_reported: bool
    latency_ms: float


@_register
@attrs.frozen
class AgentFinishEvent(FinishEvent):
    """A run finished (a run cancelled from outside too: ``error_type == "RunCancelled"``)."""

    kind: ClassVar[str] = "agent_finish"
    agent_kind: str


@_register
@attrs.frozen
class ModelRequestEvent(Event):
    """A model call is about to be sent: ``turn`` counts from 1, ``messages`` is the conversation length."""

    kind: ClassVar[str] = "model_request"
    model: str
    provider: str
    turn: int
    messages: int
    stream: bool


@_register
@attrs.frozen
class ModelResponseEvent(Event):
    """A model response was received.

    ``usage`` is ``{"input_tokens": ..., "output_tokens": ...}``;
    ``tool_calls`` the names of the tools it called.  A scripted engine
    (:class:`~lazybridge.testing.MockAgent`) sets only ``text``, ``model``
    and ``turn``.
    """

    kind: ClassVar[str] = "model_response"
    text: str
    model: str | None
    turn: int
    provider: str | None = None
    usage: Mapping[str, int] = attrs.field(factory=dict)
    cost_usd: float = 0.0
    stop_reason: str | None = None
    tool_calls: list[str] = attrs.field(factory=list)
    latency_ms: float | None = None


@_register
@attrs.frozen
class ModelRetryEvent(Event):
    """A model call failed and is about to be retried.

    ``attempt`` is the attempt about to start (2 is the first retry),
    ``wait_s`` the seconds before it, ``reason`` the error
    (``"RateLimitError: ..."``).
    """

    kind: ClassVar[str] = "model_retry"
    model: str
    provider: str
    turn: int
    stream: bool
    attempt: int
    wait_s: float
    reason: str
    error_type: str
    status_code: int | None


@_register
@attrs.frozen
class RateLimitWaitEvent(Event):
    """A model request waited for its provider account's rate limit before it was sent.

    Emitted once per request (and per retry) that waited longer than 1 ms,
    after the wait.  ``wait_s`` is the seconds it waited, ``reason`` what
    held it longest: ``"requests"`` or ``"tokens"`` (that limit's pace),
    ``"paused"`` (a 429/529 paused the whole account) or ``"slow_start"``
    (the account's limits were not known yet).  See
    :class:`~lazybridge.RateLimit`.
    """

    kind: ClassVar[str] = "rate_limit_wait"
    model: str
    provider: str
    turn: int
    stream: bool
    wait_s: float
    reason: str


@_register
@attrs.frozen
class ToolCallEvent(Event):
    """A tool call starts.  ``call_id`` is the model's id for the call; ``None`` for a Plan tool step."""

    kind: ClassVar[str] = "tool_call"
    name: str
    call_id: str | None
    arguments: Mapping[str, Any]


@_register
@attrs.frozen
class ToolResultEvent(Event):
    """A tool call returned: ``result`` is the start of its text."""

    kind: ClassVar[str] = "tool_result"
    name: str
    call_id: str | None
    result: str
    latency_ms: float


@_register
@attrs.frozen
class ToolErrorEvent(Event):
    """A tool call failed: ``error_type`` is the exception's class name, ``message`` its text."""

    kind: ClassVar[str] = "tool_error"
    name: str
    call_id: str | None
    error_type: str
    message: str
    latency_ms: float


@_register
@attrs.frozen
class ParallelStartEvent(Event):
    """A fan-out starts: ``names`` are the branch labels."""

    kind: ClassVar[str] = "parallel_start"
    branches: int
    names: list[str]


@_register
@attrs.frozen
class ParallelFinishEvent(Event):
    """A fan-out finished: ``failed`` branches of ``branches``; ``wall_ms`` is its wall time."""

    kind: ClassVar[str] = "parallel_finish"
    branches: int
    total_cost_usd: float
    max_latency_ms: float
    wall_ms: float
    failed: int


@_register
@attrs.frozen
class BranchStartEvent(Event):
    """A parallel branch starts (``index`` in input order); ``branch`` is its label."""

    kind: ClassVar[str] = "branch_start"
    index: int
    model: str | None


@_register
@attrs.frozen
class BranchFinishEvent(FinishEvent):
    """A parallel branch finished, with its envelope's outcome and spend."""

    kind: ClassVar[str] = "branch_finish"
    index: int


@_register
@attrs.frozen
class StepStartEvent(Event):
    """A plan step starts: ``iteration`` counts loop visits, ``parallel`` marks a band member."""

    kind: ClassVar[str] = "step_start"
    step: str
    index: int
    iteration: int
    parallel: bool
    target: str
    model: str | None


@_register
@attrs.frozen
class StepFinishEvent(FinishEvent):
    """A plan step finished, with its envelope's outcome and spend."""

    kind: ClassVar[str] = "step_finish"
    step: str
    index: int
    iteration: int
    parallel: bool


@attrs.frozen
class UntypedEvent(Event):
    """An event whose typed fields are not available: its ``kind`` and raw ``data`` only.

    A Session stores one in place of an event its redactor raised on (with
    ``data == {"redaction_failed": "<exception type>"}``), and reading an
    event store returns one for a record that does not fit its kind's class
    (written by another version of LazyBridge).
    """

    kind: str  # type: ignore[misc]  # an instance field here: the kind of the event it stands for
    data: Mapping[str, Any]  # the raw data, not a view of fields


# -- the JSON form, through the one converter -------------------------------------------


def _unstructure(event: Event) -> dict[str, Any]:
    unstructure = converter.unstructure
    if isinstance(event, UntypedEvent):
        data = {key: unstructure(value) for key, value in event.data.items()}
    else:
        data = {name: unstructure(getattr(event, name)) for name in event.data_fields}
    return {
        "kind": event.kind,
        "run_id": event.run_id,
        "parent_run_id": event.parent_run_id,
        "agent": event.agent,
        "branch": event.branch,
        "time": event.time,
        "data": data,
    }


_structure_fns: dict[type[Event], Callable[[Mapping[str, Any], Any], Event]] = {}


def _structure(record: Mapping[str, Any], _: Any) -> Event:
    kind = record["kind"]
    envelope: dict[str, Any] = {name: record.get(name) for name in ENVELOPE_FIELDS}
    data = record.get("data") or {}
    cls = EVENT_TYPES.get(kind)
    if cls is not None and "redaction_failed" not in data:
        fn = _structure_fns.get(cls)
        if fn is None:
            fn = _structure_fns[cls] = make_dict_structure_fn(cls, converter)
        try:
            return fn({**data, **envelope}, cls)
        except (cattrs.BaseValidationError, KeyError, TypeError, ValueError):
            pass  # another version's shape: keep what it says, untyped
    return UntypedEvent(
        envelope["run_id"], envelope["parent_run_id"], envelope["agent"], envelope["branch"],
        envelope["time"], kind, dict(data),
    )


converter.register_unstructure_hook_func(lambda t: isinstance(t, type) and issubclass(t, Event), _unstructure)
converter.register_structure_hook_func(lambda t: isinstance(t, type) and issubclass(t, Event), _structure)

"""The typed events: one class per kind, their JSON form, and the docs table that describes them."""

from __future__ import annotations

import re
import sqlite3
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from lazybridge import Session
from lazybridge.envelope import converter
from lazybridge.events import (
    EVENT_TYPES,
    AgentStartEvent,
    Event,
    FinishEvent,
    RunContext,
    ToolCallEvent,
    ToolErrorEvent,
    UntypedEvent,
)
from lazybridge.session.redact import REDACTED, redact_event

DOCS = Path(__file__).parents[2] / "docs" / "session.md"
ENVELOPE = ("run", "run_parent", "agent", "branch", 1_700_000_000.5)


def _sample(tp: Any) -> Any:
    """A non-default value of type ``tp`` (the non-None side of an optional)."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return _sample(next(a for a in typing.get_args(tp) if a is not type(None)))
    origin = typing.get_origin(tp) or tp
    if origin is bool:
        return True
    if origin is int:
        return 7
    if origin is float:
        return 2.5
    if origin is str:
        return "text"
    if isinstance(origin, type) and issubclass(origin, Mapping):
        return {"key": 3}
    if isinstance(origin, type) and issubclass(origin, Sequence):
        return ["a", "b"]
    raise AssertionError(f"no sample for {tp!r}")


def sample(cls: type[Event]) -> Event:
    hints = typing.get_type_hints(cls)
    return cls(*ENVELOPE, **{name: _sample(hints[name]) for name in cls.data_fields})


@pytest.mark.parametrize("kind", sorted(EVENT_TYPES))
def test_every_kind_round_trips_through_the_converter_in_the_jsonl_shape(kind: str) -> None:
    cls = EVENT_TYPES[kind]
    event = sample(cls)
    record = converter.unstructure(event)
    assert record == {
        "kind": kind,
        "run_id": "run",
        "parent_run_id": "run_parent",
        "agent": "agent",
        "branch": "branch",
        "time": 1_700_000_000.5,
        "data": {name: converter.unstructure(getattr(event, name)) for name in cls.data_fields},
    }
    back = converter.structure(record, Event)
    assert type(back) is cls and back == event
    assert event.kind == cls.kind == kind and dict(event.data) == record["data"]


def test_the_data_view_is_read_only() -> None:
    event = sample(ToolErrorEvent)
    with pytest.raises(TypeError):
        event.data["name"] = "other"  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.name = "other"  # type: ignore[misc]


def test_a_stored_record_of_another_shape_reads_back_untyped(tmp_path: Path) -> None:
    """An event written before the schema was typed (a Plan tool_error was {name, error}) does not break query()."""
    db = tmp_path / "old.sqlite"
    session = Session(db=db)
    session.close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO lazybridge_events (session_id, kind, run_id, parent_run_id, agent, branch, time, data)"
            " VALUES (?, 'tool_error', 'run_old', NULL, 'plan', NULL, 1.0, ?)",
            (session.id, '{"name": "lookup", "error": "KeyError: x"}'),
        )
    conn.close()
    [old] = session.events.query()
    assert isinstance(old, UntypedEvent)
    assert (old.kind, old.run_id, dict(old.data)) == ("tool_error", "run_old", {"name": "lookup", "error": "KeyError: x"})


def test_emit_builds_no_event_without_sinks() -> None:
    """Every fan-out branch emits at its start and finish: with nothing listening that must cost nothing."""

    def never(*args: Any, **kwargs: Any) -> Event:
        raise AssertionError("built an event nobody listens to")

    RunContext("run", "a").emit(never, name="x")
    seen: list[Event] = []
    RunContext("run", "a", sinks=(seen.append,)).emit(ToolCallEvent, name="x", call_id=None, arguments={})
    assert [type(e) for e in seen] == [ToolCallEvent]


def test_redaction_keeps_the_class_and_masks_every_string_field() -> None:
    key = "sk-ant-" + "k" * 30
    event = ToolCallEvent(*ENVELOPE, name="fetch", call_id="c1", arguments={"url": f"x?key={key}", "api_key": key})
    redacted = redact_event(event)
    assert type(redacted) is ToolCallEvent and redacted.call_id == "c1"
    assert key not in repr(redacted) and redacted.arguments["api_key"] == REDACTED
    start = redact_event(AgentStartEvent(*ENVELOPE, task=f"use {key}", model=None, agent_kind="Agent"))
    assert isinstance(start, AgentStartEvent) and start.task == f"use {REDACTED}"


# -- the docs table -------------------------------------------------------------------------


def _docs_table() -> dict[str, tuple[str, tuple[str, ...]]]:
    text = DOCS.read_text(encoding="utf-8")
    finish = re.search(r"\*Finish fields\*[^:]*:(.*?)\.\n", text, re.S)
    assert finish is not None, "docs/session.md lost its list of finish fields"
    finish_fields = tuple(re.findall(r"`(\w+)`", finish.group(1)))
    assert finish_fields == tuple(f.name for f in attrs.fields(FinishEvent))[5:]
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not re.fullmatch(r"`\w+`", cells[0]) or not cells[1].endswith("Event`"):
            continue
        fields: list[str] = []
        for part in (p.strip() for p in cells[2].split(",")):
            fields.extend(finish_fields if part == "finish fields" else [part.strip("`")])
        rows[cells[0].strip("`")] = (cells[1].strip("`"), tuple(fields))
    return rows


def test_the_docs_events_table_matches_the_classes() -> None:
    table = _docs_table()
    assert set(table) == set(EVENT_TYPES), "a kind is missing from docs/session.md, or documented but gone"
    for kind, cls in EVENT_TYPES.items():
        assert table[kind] == (cls.__name__, cls.data_fields), f"docs/session.md describes {kind} wrongly"

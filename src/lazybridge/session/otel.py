"""OpenTelemetry spans from Session events (``pip install "lazybridge[otel]"``).

::

    from lazybridge import Session
    from lazybridge.session.otel import OTelExporter

    session = Session(exporters=[OTelExporter()])        # the global tracer provider
    session = Session(exporters=[OTelExporter(tracer_provider=provider)])

Spans follow the run tree:

* one span per run (``agent_start`` .. ``agent_finish``), named after the
  agent, child of its parent run's span;
* one span per parallel branch (``branch_start`` .. ``branch_finish``) and
  per plan step (``step_start`` .. ``step_finish``), child of the run that
  owns it; a run started inside a branch or a step is that span's child, so
  concurrent branches show side by side, each with its own sub-tree;
* one span per model call (``model_request`` .. ``model_response``) and per
  tool call (``tool_call`` .. ``tool_result`` / ``tool_error``).

Span times are the events' own timestamps, so the writer thread's delay does
not distort them.  Attributes are prefixed ``lazybridge.``; a failed run,
step, branch or tool call gets status ``ERROR`` with its error message.
Spans still open when the Session closes (a run that was cancelled) are
ended then, marked as unfinished.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..events import (
    AgentFinishEvent,
    AgentStartEvent,
    BranchFinishEvent,
    BranchStartEvent,
    Event,
    FinishEvent,
    ModelRequestEvent,
    ModelResponseEvent,
    StepFinishEvent,
    StepStartEvent,
    ToolCallEvent,
    ToolErrorEvent,
    ToolResultEvent,
)

__all__ = ["OTelExporter"]

_SCALARS = (str, bool, int, float)
_TEXT_LIMIT = 2000


def _attributes(data: Mapping[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in skip or value is None:
            continue
        if isinstance(value, str):
            out[f"lazybridge.{key}"] = value[:_TEXT_LIMIT]
        elif isinstance(value, _SCALARS):
            out[f"lazybridge.{key}"] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            out[f"lazybridge.{key}"] = [str(v)[:_TEXT_LIMIT] for v in value]
        elif isinstance(value, Mapping):
            for sub, item in value.items():
                if isinstance(item, _SCALARS):
                    out[f"lazybridge.{key}.{sub}"] = item
    return out


def _ns(event: Event) -> int:
    return int(event.time * 1_000_000_000)


class OTelExporter:
    """Turns a Session's events into OpenTelemetry spans (see the module docstring).

    Arguments:
        tracer_provider: the ``TracerProvider`` to create spans with;
            default: the global one (``opentelemetry.trace.get_tracer_provider()``).
    """

    def __init__(self, tracer_provider: Any = None) -> None:
        try:
            from opentelemetry import trace
        except ImportError as exc:  # pragma: no cover - exercised without the extra
            raise ImportError('OTelExporter needs OpenTelemetry: pip install "lazybridge[otel]"') from exc
        self._trace = trace
        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        self._tracer = provider.get_tracer("lazybridge")
        self._open: dict[tuple[str, ...], Any] = {}  # span key -> open span
        self._current_step: dict[str, tuple[str, ...]] = {}  # run id -> its open sequential step

    def __repr__(self) -> str:
        return "OTelExporter()"

    # -- span bookkeeping ----------------------------------------------------------

    def _start(
        self, key: tuple[str, ...], name: str, event: Event, parent: Any, attributes: dict[str, Any]
    ) -> None:
        context = self._trace.set_span_in_context(parent) if parent is not None else None
        attributes.update(
            {
                "lazybridge.run_id": event.run_id,
                "lazybridge.agent": event.agent,
            }
        )
        if event.parent_run_id is not None:
            attributes["lazybridge.parent_run_id"] = event.parent_run_id
        if event.branch is not None:
            attributes["lazybridge.branch"] = event.branch
        span = self._tracer.start_span(name, context=context, attributes=attributes, start_time=_ns(event))
        self._open[key] = span

    def _end(self, key: tuple[str, ...], event: Event, attributes: dict[str, Any], error: str | None) -> None:
        span = self._open.pop(key, None)
        if span is None:
            return
        span.set_attributes(attributes)
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, error[:_TEXT_LIMIT]))
        span.end(end_time=_ns(event))

    def _parent_of_run(self, event: Event) -> Any:
        parent = event.parent_run_id
        if parent is None:
            return None
        if event.branch is not None:
            for kind in ("branch", "step"):
                span = self._open.get((kind, parent, event.branch))
                if span is not None:
                    return span
        step = self._current_step.get(parent)
        if step is not None and step in self._open:
            return self._open[step]
        tools = [span for key, span in self._open.items() if key[0] == "tool" and key[1] == parent]
        if len(tools) == 1:  # an agent called as a tool: under that tool call
            return tools[0]
        return self._open.get(("run", parent))

    # -- events --------------------------------------------------------------------

    def export(self, event: Event) -> None:
        data = event.data
        error = None
        if isinstance(event, FinishEvent) and not event.ok:
            error = f"{event.error_type}: {event.error_message}"
        match event:
            case AgentStartEvent():
                parent = self._parent_of_run(event)
                self._start(("run", event.run_id), event.agent, event, parent, _attributes(data))
            case AgentFinishEvent():
                self._end(("run", event.run_id), event, _attributes(data, ("ok",)), error)
                self._current_step.pop(event.run_id, None)
            case BranchStartEvent() | StepStartEvent():
                key = self._band_key(event)
                self._start(key, f"{key[0]} {key[2]}", event, self._open.get(("run", event.run_id)), _attributes(data))
                if isinstance(event, StepStartEvent) and not event.parallel:
                    self._current_step[event.run_id] = key
            case BranchFinishEvent() | StepFinishEvent():
                key = self._band_key(event)
                self._end(key, event, _attributes(data, ("ok",)), error)
                if self._current_step.get(event.run_id) == key:
                    del self._current_step[event.run_id]
            case ModelRequestEvent():
                key = ("model", event.run_id, event.branch or "")
                parent = self._open.get(("run", event.run_id))
                self._start(key, f"model {event.model}", event, parent, _attributes(data))
            case ModelResponseEvent():
                key = ("model", event.run_id, event.branch or "")
                if key in self._open:
                    self._end(key, event, _attributes(data), None)
                else:  # a response without a request (a scripted engine): an event on the run
                    self._add_event(event)
            case ToolCallEvent():
                parent = self._open.get(("run", event.run_id))
                self._start(self._tool_key(event), f"tool {event.name}", event, parent, _attributes(data))
            case ToolResultEvent():
                self._end(self._tool_key(event), event, _attributes(data), None)
            case ToolErrorEvent():
                self._end(self._tool_key(event), event, _attributes(data), f"{event.error_type}: {event.message}")
            case _:
                self._add_event(event)

    @staticmethod
    def _band_key(event: BranchStartEvent | BranchFinishEvent | StepStartEvent | StepFinishEvent) -> tuple[str, ...]:
        if isinstance(event, (BranchStartEvent, BranchFinishEvent)):
            return ("branch", event.run_id, event.branch or "")
        return ("step", event.run_id, event.step)

    @staticmethod
    def _tool_key(event: ToolCallEvent | ToolResultEvent | ToolErrorEvent) -> tuple[str, ...]:
        # A model's tool call has its call id; a Plan tool step (call_id None) runs one call at a time.
        call = event.call_id if event.call_id is not None else event.name
        return ("tool", event.run_id, event.branch or "", call)

    def _add_event(self, event: Event) -> None:
        span = self._open.get(("run", event.run_id))
        if span is not None:
            span.add_event(event.kind, attributes=_attributes(event.data), timestamp=_ns(event))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """End the spans that never finished (cancelled runs), innermost first."""
        from opentelemetry.trace import Status, StatusCode

        for key in reversed(list(self._open)):
            span = self._open.pop(key)
            span.set_status(Status(StatusCode.ERROR, "unfinished: the session closed before this span ended"))
            span.end()
        self._current_step.clear()

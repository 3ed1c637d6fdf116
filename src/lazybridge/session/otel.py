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

from .. import events as kinds
from ..events import Event

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
        kind, data = event.kind, event.data
        error = None if data.get("ok", True) else f"{data.get('error_type')}: {data.get('error_message')}"
        if kind == kinds.AGENT_START:
            parent = self._parent_of_run(event)
            self._start(("run", event.run_id), event.agent, event, parent, _attributes(data))
        elif kind == kinds.AGENT_FINISH:
            self._end(("run", event.run_id), event, _attributes(data, ("ok",)), error)
            self._current_step.pop(event.run_id, None)
        elif kind in (kinds.BRANCH_START, kinds.STEP_START):
            what = "branch" if kind == kinds.BRANCH_START else "step"
            label = event.branch if what == "branch" else str(data.get("step"))
            key: tuple[str, ...] = (what, event.run_id, label or "")
            name = f"{what} {label}"
            self._start(key, name, event, self._open.get(("run", event.run_id)), _attributes(data))
            if what == "step" and not data.get("parallel"):
                self._current_step[event.run_id] = key
        elif kind in (kinds.BRANCH_FINISH, kinds.STEP_FINISH):
            what = "branch" if kind == kinds.BRANCH_FINISH else "step"
            label = event.branch if what == "branch" else str(data.get("step"))
            key = (what, event.run_id, label or "")
            self._end(key, event, _attributes(data, ("ok",)), error)
            if self._current_step.get(event.run_id) == key:
                del self._current_step[event.run_id]
        elif kind == kinds.MODEL_REQUEST:
            key = ("model", event.run_id, event.branch or "")
            parent = self._open.get(("run", event.run_id))
            self._start(key, f"model {data.get('model')}", event, parent, _attributes(data))
        elif kind == kinds.MODEL_RESPONSE:
            key = ("model", event.run_id, event.branch or "")
            if key in self._open:
                self._end(key, event, _attributes(data), None)
            else:  # a response without a request (a scripted engine): an event on the run
                self._add_event(event)
        elif kind == kinds.TOOL_CALL:
            key = self._tool_key(event)
            self._start(
                key,
                f"tool {data.get('name')}",
                event,
                self._open.get(("run", event.run_id)),
                _attributes(data),
            )
        elif kind in (kinds.TOOL_RESULT, kinds.TOOL_ERROR):
            error = f"{data.get('error')}" if kind == kinds.TOOL_ERROR else None
            self._end(self._tool_key(event), event, _attributes(data), error)
        else:
            self._add_event(event)

    @staticmethod
    def _tool_key(event: Event) -> tuple[str, ...]:
        call = event.data.get("id") or event.data.get("call_id") or event.data.get("name")
        return ("tool", event.run_id, event.branch or "", str(call))

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

"""Running the tool calls of one model turn: concurrently, isolated, in call order.

:func:`run_tool_calls` starts every call of a turn in one AnyIO task group
and returns one :class:`~lazybridge.messages.ToolResult` per call, in the
order the model made them, whatever order they finish in.  A call that
fails in any way -- unknown tool, arguments that do not fit
(:class:`~lazybridge.tools.ToolArgumentError`, whose lines name the
fields), an exception from the tool, a timeout, a sub-agent's error
envelope -- becomes a result with ``is_error=True`` and the error's text,
so the model can correct itself; the other calls and the run go on.
Cancellation is never turned into a result: it cancels every call of the
turn and propagates.

Each call emits ``tool_call`` (``name``, ``call_id``, ``arguments``), then
``tool_result`` (``name``, ``call_id``, ``result`` -- the first
:data:`RESULT_SNIPPET` characters -- and ``latency_ms``) or ``tool_error``
(``name``, ``call_id``, ``error_type``, ``message``, ``error`` -- the two
joined, as the trace prints it -- and ``latency_ms``).

A tool that returns an :class:`~lazybridge.envelope.Envelope` (an agent used
as a tool) reports what its run spent; :class:`Spend` collects it so the
calling run can roll it up into its ``nested_*`` totals.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import anyio
import attrs

from .. import events
from .._spend import Spend
from ..envelope import Envelope
from ..errors import ConfigurationError
from ..events import RunContext
from ..messages import ToolCall, ToolResult, ToolSpec
from ..providers._sse import RAW_ARGUMENTS_KEY
from ..tools import Tool, ToolArgumentError, as_tool

__all__ = ["RESULT_SNIPPET", "Spend", "ToolSet", "UnknownToolError", "run_tool_calls"]

#: How much of a tool's result a ``tool_result`` event carries.
RESULT_SNIPPET = 500


class UnknownToolError(LookupError):
    """The model called a tool it was not offered."""


@attrs.frozen
class ToolSet:
    """The tools of one agent, by name, with their specs in the order given.

    ``timeout`` (the engine's ``tool_timeout``) becomes the timeout of every
    tool that has none of its own; a tool's own ``Tool(timeout=)`` wins.
    """

    tools: Mapping[str, Tool]
    specs: tuple[ToolSpec, ...]

    @classmethod
    def build(cls, items: Iterable[Any], *, timeout: float | None) -> ToolSet:
        """Normalise ``tools=[...]`` with :func:`~lazybridge.tools.as_tool`.

        Raises :class:`~lazybridge.errors.ConfigurationError` for an item that
        cannot be a tool, or for two tools with the same name.
        """
        tools: dict[str, Tool] = {}
        for item in items:
            tool = as_tool(item)
            if tool.name in tools:
                raise ConfigurationError(
                    f"two tools are named {tool.name!r}; give one another name (Tool.from_function(fn, name=...)"
                    " or agent.as_tool(name=...))"
                )
            if tool.timeout is None and timeout is not None:
                tool = attrs.evolve(tool, timeout=timeout)
            tools[tool.name] = tool
        return cls(tools, tuple(tool.spec() for tool in tools.values()))

    def __bool__(self) -> bool:
        return bool(self.tools)


class NestedSpend:
    """What the runs behind one run's tool calls (sub-agents) spent, as the nested part of its spend.

    A holder, because tool calls run concurrently and each adds its
    sub-agent's envelope as it comes back.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = Spend()

    def add(self, env: Envelope) -> None:
        self.value += env.metadata.spend.as_nested()


async def run_tool_calls(
    calls: Sequence[ToolCall], tools: ToolSet, *, run: RunContext, spend: NestedSpend, limit: int | None = None
) -> list[ToolResult]:
    """Run ``calls`` concurrently; their results in call order.

    Never raises for a failing call (see the module docstring).  Sync tools
    run in worker threads under :func:`~lazybridge.tools.default_thread_limiter`.

    ``limit`` (the agent's ``tool_concurrency``): at most this many calls run
    at once, and they start in call order -- ``limit`` workers each take the
    next call not yet started, so a turn of hundreds of calls holds ``limit``
    tasks, not hundreds.

    Cancellation: every call still running is cancelled (an abandoned sync
    tool's thread runs on, its result discarded, see
    :meth:`Tool.call <lazybridge.tools.Tool.call>`) and awaited before the
    cancellation propagates.
    """
    results: list[ToolResult | None] = [None] * len(calls)
    if run.sinks:  # announced in call order, before any starts (task start order is the backend's)
        for call in calls:
            run.emit(events.ToolCallEvent, name=call.name, call_id=call.id, arguments=dict(call.arguments))
    if len(calls) == 1:
        results[0] = await _run_one(calls[0], tools, run, spend)
    elif limit is not None and limit < len(calls):
        queue = iter(enumerate(calls))  # shared by the workers: each next() is the next call in order
        async with anyio.create_task_group() as tg:
            for _ in range(limit):
                tg.start_soon(_work_through, queue, results, tools, run, spend)
    else:
        async with anyio.create_task_group() as tg:
            for index, call in enumerate(calls):
                tg.start_soon(_run_into, results, index, call, tools, run, spend)
    return [r for r in results if r is not None]


async def _work_through(
    queue: Iterator[tuple[int, ToolCall]],
    results: list[ToolResult | None],
    tools: ToolSet,
    run: RunContext,
    spend: NestedSpend,
) -> None:
    """One of ``tool_concurrency`` workers: run the next call not yet started, until none is left."""
    for index, call in queue:
        results[index] = await _run_one(call, tools, run, spend)


async def _run_into(
    results: list[ToolResult | None],
    index: int,
    call: ToolCall,
    tools: ToolSet,
    run: RunContext,
    spend: NestedSpend,
) -> None:
    results[index] = await _run_one(call, tools, run, spend)


async def _run_one(call: ToolCall, tools: ToolSet, run: RunContext, spend: NestedSpend) -> ToolResult:
    traced = bool(run.sinks)
    started = time.perf_counter()
    try:
        tool = tools.tools.get(call.name)
        if tool is None:
            offered = ", ".join(tools.tools) or "none"
            raise UnknownToolError(f"there is no tool named {call.name!r} (the tools are: {offered})")
        value = await tool.call(_checked_arguments(call))
    except Exception as exc:  # isolate the call; cancellation is not an Exception
        message = str(exc) or type(exc).__name__
        if traced:
            _emit_error(run, call, type(exc).__name__, message, started)
        return ToolResult(call.id, call.name, f"{type(exc).__name__}: {message}", is_error=True)
    if isinstance(value, Envelope):
        spend.add(value)
        if value.error is not None:
            if traced:
                _emit_error(run, call, value.error.type, value.error.message, started)
            return ToolResult(call.id, call.name, f"{value.error.type}: {value.error.message}", is_error=True)
    content = _content(value)
    if traced:
        run.emit(
            events.ToolResultEvent,
            name=call.name,
            call_id=call.id,
            result=content[:RESULT_SNIPPET],
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )
    return ToolResult(call.id, call.name, content)


def _checked_arguments(call: ToolCall) -> Mapping[str, Any]:
    arguments = call.arguments
    raw = arguments.get(RAW_ARGUMENTS_KEY)
    if isinstance(raw, str) and len(arguments) == 1:
        shown = raw if len(raw) <= 80 else raw[:77] + "..."
        raise ToolArgumentError(call.name, [f"the arguments are not a JSON object: {shown!r} @ $"])
    return arguments


def _emit_error(run: RunContext, call: ToolCall, error_type: str, message: str, started: float) -> None:
    run.emit(
        events.ToolErrorEvent,
        name=call.name,
        call_id=call.id,
        error_type=error_type,
        message=message,
        latency_ms=(time.perf_counter() - started) * 1000.0,
    )


def _content(value: Any) -> str:
    """A tool's return value as the text the model reads: str as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, Envelope):
        return value.text()
    if value is None:
        return "null"
    try:
        return Envelope(payload=value).text()  # JSON through the shared converter
    except Exception:  # not JSON-able (a custom object): its str
        return str(value)

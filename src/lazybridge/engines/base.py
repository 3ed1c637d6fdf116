"""The Engine protocol.

An :class:`Engine` turns a task envelope into a result envelope.  The Agent
around it owns the run: it gives the run its id, context and deadline,
catches exceptions into error envelopes and fills ``run_id``, ``agent`` and
``latency_ms``.  An engine fills what only it knows -- payload, model,
provider, tokens and cost (inclusive, with ``nested_*`` for work done by
nested runs) -- and may raise: the Agent turns the exception into an error
envelope whose ``error.type`` is the exception's class name.

An engine may also define ``starts_nested_runs(agent) -> bool``.  Nested
runs (a sub-agent called as a tool, a plan's steps, user code that calls an
agent) find their parent run through a context variable, which the Agent
sets for the duration of each run.  An engine that answers ``False`` -- it
calls no user code and no other agent for this ``agent`` -- spares the
Agent that work, which is measurable in fan-outs of thousands of branches.
An engine without the method is assumed to start nested runs.

An engine may also say which of the Agent's ``tools=``, ``output=`` and
``memory=`` it reads, with an ``agent_arguments`` set (``LLMEngine``: all
three; ``Plan`` and the test doubles: none).  The Agent then refuses, at
construction, an argument the engine would silently ignore.  An engine
without the attribute is assumed to read all three.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..envelope import Envelope
from ..events import RunContext

if TYPE_CHECKING:
    from ..agent import Agent


@runtime_checkable
class Engine(Protocol):
    @property
    def model(self) -> str | None:
        """The model shown in traces (``None`` for composite engines)."""
        ...

    async def run(self, task: Envelope, *, agent: Agent, run: RunContext) -> Envelope:
        """Run ``task`` for ``agent``.

        Cancellation: the engine must let cancellation propagate (it may
        clean up first); the Agent's deadline and its caller's cancel scopes
        cancel it like any other awaited call.
        """
        ...

"""The Engine contract: what an :class:`~lazybridge.Agent` runs.

An engine turns a task envelope into a result envelope.  The Agent around it
owns the run: it gives the run its id, context and deadline, catches
exceptions into error envelopes and fills ``run_id``, ``agent`` and
``latency_ms``.  An engine fills what only it knows -- payload, model,
provider, tokens and cost (inclusive, with ``nested_*`` for work done by
nested runs) -- and may raise: the Agent turns the exception into an error
envelope whose ``error.type`` is the exception's class name.

The engine never receives the Agent.  Once, at the Agent's construction,
:meth:`Engine.prepare` gets the agent's ``tools=``, ``output=`` and
``memory=`` and returns a frozen value of the engine's own type -- tools
described, output schema built, everything checked -- or raises
:class:`~lazybridge.errors.ConfigurationError` naming the argument.  Each run
then receives that value as ``prepared``.

:class:`EngineBase` gives every member but :meth:`~Engine.run` a default:
subclass it and mypy checks your engine against the protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from ..envelope import Envelope
from ..errors import ConfigurationError
from ..events import RunContext

if TYPE_CHECKING:
    from .._stream import EngineStream

__all__ = ["Engine", "EngineBase", "Prepared"]

Prepared = TypeVar("Prepared")
Prepared_co = TypeVar("Prepared_co", covariant=True)


@runtime_checkable
class Engine(Protocol[Prepared]):
    """The members an engine has; :class:`EngineBase` gives all but :meth:`run` a default."""

    @property
    def model(self) -> str | None:
        """The model shown in traces and envelopes (``None`` for composite engines)."""
        ...

    @property
    def provider(self) -> str | None:
        """The provider shown in envelopes (``None`` if the engine has none)."""
        ...

    def prepare(self, *, tools: tuple[Any, ...], output: Any, memory: Any) -> Prepared:
        """Check the agent's ``tools=`` / ``output=`` / ``memory=`` once, at its construction.

        Returns what each :meth:`run` receives as ``prepared``.  Raises
        :class:`~lazybridge.errors.ConfigurationError` naming the argument
        for one it cannot use -- or would silently ignore.

        An engine that runs tool calls may also accept the keyword
        ``tool_concurrency`` (the agent's ``Agent(tool_concurrency=)``, passed
        only when given); an Agent refuses that argument for an engine whose
        ``prepare`` does not take it.
        """
        ...

    async def run(self, task: Envelope, *, prepared: Prepared, run: RunContext) -> Envelope:
        """Run ``task``.

        Cancellation: the engine must let cancellation propagate (it may
        clean up first); the Agent's deadline and its caller's cancel scopes
        cancel it like any other awaited call.
        """
        ...

    def starts_nested_runs(self, prepared: Prepared) -> bool:
        """Whether a run may start nested runs (a tool, a sub-agent, user code that runs an agent).

        Nested runs find their parent through a context variable the Agent
        sets for each run; ``False`` spares it that work, which shows in
        fan-outs of thousands of branches.
        """
        ...

    def stream(self, task: Envelope, *, prepared: Prepared, run: RunContext) -> EngineStream | None:
        """The run as text deltas, or ``None`` if this engine cannot stream.

        An Agent whose engine cannot stream yields its answer as one delta.
        """
        ...


class EngineBase(Generic[Prepared]):
    """Defaults for every :class:`Engine` member but :meth:`run`.

    The default :meth:`prepare` refuses ``tools=``, ``output=`` and
    ``memory=`` (an engine that does not talk to a model would silently
    ignore them) and prepares nothing (``None``); the default engine starts
    nested runs and cannot stream.
    """

    @property
    def model(self) -> str | None:
        return None

    @property
    def provider(self) -> str | None:
        return None

    def prepare(self, *, tools: tuple[Any, ...], output: Any, memory: Any) -> Prepared:
        refuse_agent_arguments(self, tools=tools, output=output, memory=memory)
        return None  # type: ignore[return-value]  # an engine that prepares something overrides this

    async def run(self, task: Envelope, *, prepared: Prepared, run: RunContext) -> Envelope:
        raise NotImplementedError

    def starts_nested_runs(self, prepared: Prepared) -> bool:
        return True

    def stream(self, task: Envelope, *, prepared: Prepared, run: RunContext) -> EngineStream | None:
        return None


def refuse_agent_arguments(engine: object, *, tools: tuple[Any, ...], output: Any, memory: Any) -> None:
    """Refuse the agent's ``tools=`` / ``output=`` / ``memory=``, which ``engine`` would ignore."""
    for argument, given in (("tools", bool(tools)), ("output", output is not None), ("memory", memory is not None)):
        if given:
            raise ConfigurationError(
                f"{type(engine).__name__} does not use the agent's {argument}= (an engine that talks to a "
                f"model, such as LLMEngine, does): give it to an agent inside, or leave it out"
            )

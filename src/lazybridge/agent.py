"""Agent: an engine plus tools, a name and a run deadline -- and the composition primitives.

``await agent.run(task)`` returns an :class:`~lazybridge.envelope.Envelope`
and never raises for a failure of the run itself (a provider error, a
timeout, a tool loop that ran out of turns): those come back as error
envelopes.  ``agent(task)`` is the synchronous twin.

This module is the facade: it imports the primitives (``parallel``, ``chain``
over ``Plan``) and nothing below it imports it.  The run machinery every
agent shares is :class:`~lazybridge._run.AgentBase`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any

from ._checks import check_whole
from ._policies import Accept
from ._run import AgentBase, check_agents
from ._stream import EngineStream
from .engines.chain import chain_plan
from .envelope import Envelope
from .errors import ConfigurationError
from .events import RunContext
from .map import MapAgent
from .parallel import ParallelAgent
from .race import RaceAgent

if TYPE_CHECKING:
    from .budget import Budget
    from .engines.base import Engine
    from .session import Session

__all__ = ["Agent", "AgentBase"]


def _check_legacy_engine_uses(engine: object, given: list[str]) -> None:
    """For an engine without ``prepare()``: refuse what its ``agent_arguments`` say it ignores."""
    uses = getattr(engine, "agent_arguments", None)
    if uses is None:
        return  # an engine that does not say: it may read them
    for argument in given:
        if argument not in uses:
            raise ConfigurationError(
                f"{type(engine).__name__} does not use the agent's {argument}= (an engine that talks to a "
                f"model, such as LLMEngine, does): give it to an agent inside, or leave it out"
            )


def _takes_keyword(function: Any, name: str) -> bool:
    """Whether ``function`` accepts the keyword ``name`` (an engine's optional prepare() argument)."""
    parameters = inspect.signature(function).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


class Agent(AgentBase):
    """An LLM agent: an engine, the tools it may call, and a name.

    ::

        agent = Agent(engine=LLMEngine("claude-haiku-4-5"), tools=[search], name="researcher")
        env = agent("What changed in 2026?")        # sync
        env = await agent.run("What changed?")      # async

    Arguments:
        engine: what runs the task (``LLMEngine``, ``Plan``, a test double).
            A string is shorthand for ``LLMEngine(string)``.
        tools: plain functions, :class:`~lazybridge.tools.Tool` objects or
            other agents the model may call.
        name: the label used in traces and in ``Agent.parallel``'s join.
        description: what the agent does (used when it becomes a tool).
        session: a :class:`~lazybridge.session.Session` that receives its events.
        verbose: print a live trace of the run.
        timeout: a deadline in seconds for the whole run; when it runs out
            the run is cancelled and a ``TimeoutError`` envelope returned.
        output: a type the answer must be parsed into (structured output).
        memory: a ``Memory`` that keeps the conversation across calls.
        budget: a :class:`~lazybridge.Budget` capping each run and everything
            it runs (sub-agents, tools' agents); a request it cannot cover
            is not sent and the run ends with a ``BudgetExceededError``
            envelope.  See :mod:`lazybridge.budget`.
        tool_concurrency: at most this many of one model turn's tool calls
            run at once (a limit per run); the others wait and start in call
            order, and the results go back to the model in call order.
            ``None``: every call of a turn at once.  Needs an engine that
            runs tools (``LLMEngine``) and ``tools=``.
    """

    def __init__(
        self,
        engine: Engine[Any] | str | None = None,
        *,
        tools: Iterable[Any] = (),
        name: str | None = None,
        description: str | None = None,
        session: Session | None = None,
        verbose: bool = False,
        timeout: float | None = None,
        output: Any = None,
        memory: Any = None,
        budget: Budget | None = None,
        tool_concurrency: int | None = None,
    ) -> None:
        if engine is None:
            raise ConfigurationError("Agent needs an engine, e.g. Agent(engine=LLMEngine('claude-haiku-4-5'))")
        if isinstance(engine, str):
            from .engines.llm import LLMEngine

            engine = LLMEngine(engine)
        if not callable(getattr(engine, "run", None)):
            raise TypeError(f"engine must be an Engine (LLMEngine, Plan, ...), not {type(engine).__name__}")
        self.engine: Engine[Any] = engine
        if isinstance(tools, (str, bytes)) or not isinstance(tools, Iterable):
            raise TypeError(f"tools must be a list of functions, Tools or agents, not {type(tools).__name__}")
        self.tools = tuple(tools)
        self.output = output
        self.memory = memory
        # The engine checks and prepares the agent's arguments once, here: a
        # tool it cannot describe, an output type it cannot ask for, an
        # argument it would ignore all raise now, not at every run.
        self._legacy = not callable(getattr(engine, "prepare", None))
        if self._legacy:
            # An engine written against the contract before prepare() reads the
            # agent itself: run(task, *, agent, run).  Still accepted.
            given = [
                argument
                for argument, present in (
                    ("tools", bool(self.tools)),
                    ("output", output is not None),
                    ("memory", memory is not None),
                    ("tool_concurrency", tool_concurrency is not None),
                )
                if present
            ]
            _check_legacy_engine_uses(engine, given)
            self._prepared: Any = None
        elif tool_concurrency is None:
            self._prepared = engine.prepare(tools=self.tools, output=output, memory=memory)
        else:
            check_whole(tool_concurrency, "tool_concurrency")
            if not _takes_keyword(engine.prepare, "tool_concurrency"):
                raise ConfigurationError(
                    f"{type(engine).__name__} does not run tool calls, so it cannot use the agent's "
                    f"tool_concurrency= (LLMEngine does): leave it out"
                )
            self._prepared = engine.prepare(  # type: ignore[call-arg]
                tools=self.tools, output=output, memory=memory, tool_concurrency=tool_concurrency
            )
        self.tool_concurrency = tool_concurrency
        super().__init__(
            name="agent" if name is None else name,
            description=description,
            session=session,
            verbose=verbose,
            timeout=timeout,
            budget=budget,
        )

    @property
    def model(self) -> str | None:
        return getattr(self.engine, "model", None)

    @property
    def provider(self) -> str | None:
        return getattr(self.engine, "provider", None)

    def _execute(self, task: Envelope, run: RunContext) -> Awaitable[Envelope]:
        # The engine's own coroutine, not one wrapped in another: one frame
        # fewer per run, which a fan-out of thousands of branches feels.
        if self._legacy:
            return self.engine.run(task, agent=self, run=run)  # type: ignore[call-arg]
        return self.engine.run(task, prepared=self._prepared, run=run)

    def _starts_nested_runs(self) -> bool:
        hook = getattr(self.engine, "starts_nested_runs", None)
        if hook is None:
            return True
        return bool(hook(self) if self._legacy else hook(self._prepared))

    def _engine_stream(self, task: Envelope, run: RunContext) -> EngineStream | None:
        stream = getattr(self.engine, "stream", None)
        if not callable(stream):
            return None
        if self._legacy:
            return stream(task, agent=self, run=run)  # type: ignore[no-any-return]
        return stream(task, prepared=self._prepared, run=run)  # type: ignore[no-any-return]

    # -- composition -----------------------------------------------------------

    @staticmethod
    def parallel(
        *agents: AgentBase,
        concurrency_limit: int | None = None,
        step_timeout: float | None = None,
        fail_fast: bool = False,
        quorum: int | None = None,
        name: str = "parallel",
        description: str | None = None,
        session: Session | None = None,
        verbose: bool = False,
        budget: Budget | None = None,
    ) -> ParallelAgent:
        """Run every agent concurrently on the same task; see :class:`~lazybridge.parallel.ParallelAgent`."""
        return ParallelAgent(
            *agents,
            concurrency_limit=concurrency_limit,
            step_timeout=step_timeout,
            fail_fast=fail_fast,
            quorum=quorum,
            name=name,
            description=description,
            session=session,
            verbose=verbose,
            budget=budget,
        )

    @staticmethod
    def map(
        agent: AgentBase,
        *,
        concurrency: int = 16,
        name: str = "map",
        description: str | None = None,
        session: Session | None = None,
        verbose: bool = False,
        budget: Budget | None = None,
    ) -> MapAgent:
        """Run ``agent`` once per item of the list its task holds (a chain stage or Plan step after a list).

        See :class:`~lazybridge.map.MapAgent`.
        """
        return MapAgent(
            agent, concurrency=concurrency, name=name, description=description, session=session,
            verbose=verbose, budget=budget,
        )

    @staticmethod
    def race(
        *agents: AgentBase,
        accept: Accept | None = None,
        stagger: float | None = None,
        step_timeout: float | None = None,
        concurrency_limit: int | None = None,
        name: str = "race",
        description: str | None = None,
        session: Session | None = None,
        verbose: bool = False,
        budget: Budget | None = None,
    ) -> RaceAgent:
        """The same task to every agent; the first ok answer (that ``accept`` takes) wins, the rest are cancelled.

        See :class:`~lazybridge.race.RaceAgent`.
        """
        return RaceAgent(
            *agents,
            accept=accept,
            stagger=stagger,
            step_timeout=step_timeout,
            concurrency_limit=concurrency_limit,
            name=name,
            description=description,
            session=session,
            verbose=verbose,
            budget=budget,
        )

    @staticmethod
    def chain(
        *agents: AgentBase,
        name: str = "chain",
        description: str | None = None,
        session: Session | None = None,
        verbose: bool = False,
        timeout: float | None = None,
        budget: Budget | None = None,
    ) -> Agent:
        """Run agents one after another, each stage's ``text()`` becoming the next stage's task.

        Args:
            *agents: the stages, in order (at least one; any agent, including
                a parallel or another chain).
            name: the chain's label in traces and joins.
            description: what the chain does, when it becomes a tool.
            session: a Session that records the chain's and every stage's events.
            verbose: print a live trace.
            timeout: seconds for the whole chain; when it runs out the
                running stage is cancelled and a ``TimeoutError`` envelope returned.

        Returns an :class:`Agent`.  Its envelope is the last stage's, with
        inclusive cost and tokens (every stage counts as a nested run).  A
        stage that fails stops the chain; its error envelope is returned.

        Sugar over :class:`~lazybridge.Plan`: the agent's engine is
        ``Plan(Step(a), Step(b), ...)``, so a chain reports ``step_start`` /
        ``step_finish`` events like any plan.
        """
        stages = check_agents(agents, "Agent.chain")
        return Agent(
            engine=chain_plan(stages),
            name=name,
            description=description,
            session=session,
            verbose=verbose,
            timeout=timeout,
            budget=budget,
        )

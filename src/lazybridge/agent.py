"""Agent: an engine plus tools, a name and a run deadline.

``await agent.run(task)`` returns an :class:`~lazybridge.envelope.Envelope`
and never raises for a failure of the run itself (a provider error, a
timeout, a tool loop that ran out of turns): those come back as error
envelopes.  ``agent(task)`` is the synchronous twin.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from . import events
from ._cancellation import is_stray_cancellation
from ._ids import new_run_id
from ._sync import run_sync
from .envelope import Envelope, EnvelopeMetadata
from .errors import ConfigurationError, RunCancelled
from .events import RunContext, Sink

if TYPE_CHECKING:
    from ._stream import AgentStream
    from .engines.base import Engine
    from .parallel import ParallelAgent
    from .session import Session
    from .tools import Tool


def check_timeout(value: float | None, argument: str) -> float | None:
    """Validate a ``*timeout`` argument: ``None`` or a positive number of seconds."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{argument} must be a positive number of seconds or None, not {value!r}")
    if math.isnan(value) or value <= 0:
        raise ConfigurationError(f"{argument} must be > 0 seconds, got {value!r}")
    return float(value)


def check_agents(agents: Sequence[object], what: str) -> tuple[AgentBase, ...]:
    """Validate the agents handed to a composition primitive."""
    if not agents:
        raise ConfigurationError(f"{what} needs at least one agent")
    for position, agent in enumerate(agents):
        if not isinstance(agent, AgentBase):
            raise TypeError(
                f"{what}: argument {position} must be an Agent (or ParallelAgent), "
                f"not {type(agent).__name__} {agent!r:.60}"
            )
    return tuple(agents)  # type: ignore[arg-type]


class AgentBase:
    """What every runnable agent shares: name, session, tracing, the sync twin and ``as_tool``.

    Subclasses implement :meth:`_execute`; :meth:`run` owns the run id, the
    run context, the deadline and the conversion of exceptions into error
    envelopes.
    """

    name: str
    description: str | None
    session: Session | None
    verbose: bool
    timeout: float | None

    def __init__(
        self,
        *,
        name: str,
        description: str | None,
        session: Session | None,
        verbose: bool,
        timeout: float | None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"name must be a non-empty string, not {name!r}")
        self.name = name
        self.description = description
        self.session = session
        self.verbose = bool(verbose)
        self.timeout = check_timeout(timeout, "timeout")
        self._sinks = self._make_sinks()

    def _make_sinks(self) -> tuple[Sink, ...]:
        sinks: list[Sink] = []
        if self.session is not None:
            sinks.append(self.session.emit)
        if self.verbose:
            from ._trace import TracePrinter

            sinks.append(TracePrinter())
        return tuple(sinks)

    @property
    def model(self) -> str | None:
        """The model shown in traces, if this agent has one."""
        return None

    @property
    def provider(self) -> str | None:
        """The provider this agent's model is reached through, if it has one."""
        return None

    # -- running -------------------------------------------------------------

    async def run(self, task: str | Envelope, *, context: str | None = None) -> Envelope:
        """Run the agent on ``task`` and return its envelope.

        Errors: a failure during the run (provider error, tool loop limit,
        ``timeout``) is returned as an error envelope, never raised.  A
        ``task`` that is neither a ``str`` nor an Envelope raises
        ``TypeError`` at once.

        Cancellation: if the caller is cancelled, the run -- every HTTP
        request, tool call and branch it started -- is cancelled and awaited
        before the cancellation propagates; nothing keeps running.  When
        ``timeout`` runs out the run is cancelled the same way and a
        ``TimeoutError`` envelope is returned.
        """
        return await self._run(Envelope.from_task(task, context))

    async def _run(
        self, task_env: Envelope, *, step_timeout: float | None = None, step_label: str | None = None
    ) -> Envelope:
        """:meth:`run`, with an optional second deadline set by whoever started it.

        ``Agent.parallel`` passes its ``step_timeout`` here, so that a timed-out
        branch is ended *inside* its own run: its envelope keeps the run id of
        its start event, what it spent and who it is, and its finish event is
        emitted like any other.
        """
        run_id = new_run_id()
        ctx = events.child_context(run_id, self.name, extra_sinks=self._sinks)
        token = None
        started = time.perf_counter()
        finished = False
        try:
            if ctx.sinks:
                ctx.emit(events.AGENT_START, task=task_env.task, model=self.model, agent_kind=type(self).__name__)
            try:
                # Only nested runs read the context variable; a run that cannot
                # start one leaves it alone (three objects fewer per branch of a
                # fan-out).  The engine's answer is its code, so it is asked
                # inside the try: if it raises, the run fails, not the caller.
                if self._starts_nested_runs():
                    token = events.enter(ctx)
                if self.timeout is None and step_timeout is None:
                    result = await self._execute(task_env, ctx)
                else:
                    result = await self._execute_with_deadlines(task_env, ctx, step_timeout, step_label)
            except Exception as exc:  # isolate the failure; cancellation is not an Exception
                result = Envelope.error_envelope(exc, metadata=self._spent_metadata(ctx))
            except BaseException as exc:
                # A CancelledError the run raised itself (a buggy library) is its
                # own failure; a real cancellation propagates (see _cancellation).
                if not is_stray_cancellation(exc):
                    raise
                result = Envelope.error_envelope(exc, metadata=self._spent_metadata(ctx))
            latency_ms = (time.perf_counter() - started) * 1000.0
            result = _finish(result, task_env, run_id, self.name, latency_ms)
            finished = True
            meta = result.metadata
            if meta.cost_usd or meta.input_tokens or meta.output_tokens:
                ctx.settle(meta.input_tokens, meta.output_tokens, meta.cost_usd)
            if ctx.sinks:
                ctx.emit(events.AGENT_FINISH, agent_kind=type(self).__name__, **finish_data(result))
            return result
        finally:
            if token is not None:
                events.leave(token)
            if not finished and ctx.sinks:
                # Cancelled from outside (a caller's deadline, a sibling's
                # failure): the run still reports what it spent, under its own
                # run id, before the cancellation propagates.
                cancelled = Envelope.error_envelope(
                    RunCancelled(f"run of {self.name!r} was cancelled"), metadata=self._spent_metadata(ctx)
                )
                latency_ms = (time.perf_counter() - started) * 1000.0
                cancelled = _finish(cancelled, task_env, run_id, self.name, latency_ms)
                ctx.emit(events.AGENT_FINISH, agent_kind=type(self).__name__, **finish_data(cancelled))

    async def _execute_with_deadlines(
        self, task: Envelope, ctx: RunContext, step_timeout: float | None, step_label: str | None
    ) -> Envelope:
        own = self.timeout
        with anyio.CancelScope() as scope:
            if own is not None:
                scope.deadline = anyio.current_time() + own
            step_deadline = None if step_timeout is None else anyio.current_time() + step_timeout
            if step_deadline is not None and step_deadline < scope.deadline:
                scope.deadline = step_deadline
            return await self._execute(task, ctx)
        # The deadline ran out (only a cancel scope's own deadline lands here).
        if step_deadline is not None and step_deadline <= scope.deadline:
            message = f"branch {step_label or self.name!r} exceeded step_timeout={step_timeout:g}s"
        else:
            message = f"agent {self.name!r} exceeded its timeout of {own:g}s"
        return Envelope.error_envelope(TimeoutError(message), metadata=self._spent_metadata(ctx))

    def _spent_metadata(self, ctx: RunContext) -> EnvelopeMetadata:
        """Metadata for a run that ended early: who it is and everything its responses cost."""
        i, o, c, ni, no, nc = ctx.spent
        return EnvelopeMetadata(
            model=self.model,
            provider=self.provider,
            input_tokens=i,
            output_tokens=o,
            cost_usd=c,
            nested_input_tokens=ni,
            nested_output_tokens=no,
            nested_cost_usd=nc,
        )

    def _execute(self, task: Envelope, run: RunContext) -> Awaitable[Envelope]:
        raise NotImplementedError

    def _starts_nested_runs(self) -> bool:
        """Whether a run may start nested runs, which need this run's context published."""
        return True

    def __call__(self, task: str | Envelope, *, context: str | None = None) -> Envelope:
        """Synchronous :meth:`run`: works in scripts, notebooks and inside ``trio.run``.

        Inside a running event loop it blocks that loop's thread while a
        private loop on a worker thread does the work; from async code
        prefer ``await agent.run(task)``.
        """
        return run_sync(self._run_positional, task, context)

    async def _run_positional(self, task: str | Envelope, context: str | None) -> Envelope:
        return await self.run(task, context=context)

    def stream(self, task: str | Envelope, *, context: str | None = None) -> AgentStream:
        """Run the agent on ``task``, yielding the answer's text as it arrives.

        ::

            async with agent.stream("Explain SSE") as stream:
                async for delta in stream:
                    print(delta, end="")
            env = stream.envelope       # what run() would have returned

        Nothing is sent until the first delta is awaited.  ``async for delta
        in agent.stream(task)`` alone also works and closes the response when
        the stream ends or fails; use ``async with`` whenever you may stop
        early.  An engine that cannot stream yields its answer as one chunk.

        Errors: a failed run raises from the iteration (the provider's
        exception, or ``TimeoutError`` for the agent's ``timeout``), and
        ``stream.envelope`` is then the error envelope.

        Cancellation: cancelling the consumer while it awaits a delta closes
        the HTTP response (the provider sees the connection drop) before the
        cancellation propagates.  See :class:`~lazybridge._stream.AgentStream`.
        """
        from ._stream import AgentStream

        return AgentStream(self, task, context)

    def as_tool(self, name: str | None = None, description: str | None = None) -> Tool:
        """This agent as a :class:`~lazybridge.tools.Tool` with one parameter, ``task``.

        The tool returns the agent's Envelope, so a calling engine can roll
        its cost and tokens up into its own ``nested_*`` totals.
        """
        from .tools import Tool

        async def run_agent(task: str) -> Envelope:
            return await self.run(task)

        return Tool.from_schema(
            name or self.name,
            description or self.description or f"Delegate a task to the {self.name!r} agent.",
            {
                "type": "object",
                "properties": {"task": {"type": "string", "description": "The task for the agent."}},
                "required": ["task"],
                "additionalProperties": False,
            },
            run_agent,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _finish(result: Envelope, task: Envelope, run_id: str, agent: str, latency_ms: float) -> Envelope:
    # Built field by field rather than with attrs.evolve: this runs once per
    # branch of every fan-out, and evolve costs several times as much.
    m = result.metadata
    meta = EnvelopeMetadata(
        run_id, agent, m.model, m.provider, m.input_tokens, m.output_tokens, m.cost_usd, latency_ms,
        m.nested_input_tokens, m.nested_output_tokens, m.nested_cost_usd, m.usage_reported,
    )
    return Envelope(task.task, task.context, result.payload, meta, result.error)


def _check_engine_uses(engine: object, given: list[str]) -> None:
    """Refuse ``tools=`` / ``output=`` / ``memory=`` that the engine would silently ignore."""
    uses = getattr(engine, "agent_arguments", None)
    if uses is None:
        return  # an engine that does not say: it may read them
    for argument in given:
        if argument not in uses:
            raise ConfigurationError(
                f"{type(engine).__name__} does not use the agent's {argument}= (an engine that talks to a "
                f"model, such as LLMEngine, does): give it to an agent inside, or leave it out"
            )


def finish_data(env: Envelope) -> dict[str, Any]:
    """The data of a finish event for ``env`` (shared by agents, branches and plans)."""
    meta = env.metadata
    return {
        "ok": env.ok,
        "error_type": env.error.type if env.error else None,
        "error_message": env.error.message if env.error else None,
        "model": meta.model,
        "provider": meta.provider,
        "input_tokens": meta.input_tokens,
        "output_tokens": meta.output_tokens,
        "cost_usd": meta.cost_usd,
        "nested_input_tokens": meta.nested_input_tokens,
        "nested_output_tokens": meta.nested_output_tokens,
        "nested_cost_usd": meta.nested_cost_usd,
        "usage_reported": meta.usage_reported,
        "latency_ms": meta.latency_ms,
    }


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
    """

    def __init__(
        self,
        engine: Engine | str | None = None,
        *,
        tools: Iterable[Any] = (),
        name: str | None = None,
        description: str | None = None,
        session: Session | None = None,
        verbose: bool = False,
        timeout: float | None = None,
        output: Any = None,
        memory: Any = None,
    ) -> None:
        if engine is None:
            raise ConfigurationError("Agent needs an engine, e.g. Agent(engine=LLMEngine('claude-haiku-4-5'))")
        if isinstance(engine, str):
            from .engines.llm import LLMEngine

            engine = LLMEngine(engine)
        if not callable(getattr(engine, "run", None)):
            raise TypeError(f"engine must be an Engine (LLMEngine, Plan, ...), not {type(engine).__name__}")
        self.engine: Engine = engine
        if isinstance(tools, (str, bytes)) or not isinstance(tools, Iterable):
            raise TypeError(f"tools must be a list of functions, Tools or agents, not {type(tools).__name__}")
        self.tools = tuple(tools)
        self.output = output
        self.memory = memory
        given = [
            argument
            for argument, present in (
                ("tools", bool(self.tools)),
                ("output", output is not None),
                ("memory", memory is not None),
            )
            if present
        ]
        if given:
            _check_engine_uses(engine, given)
            # Raise now what a run would otherwise return as an error envelope:
            # an undescribable tool function, an unsupported output type.
            from .engines._loop import check_agent

            check_agent(self.tools, output, memory)
        super().__init__(
            name=name or "agent",
            description=description,
            session=session,
            verbose=verbose,
            timeout=timeout,
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
        return self.engine.run(task, agent=self, run=run)

    def _starts_nested_runs(self) -> bool:
        hook = getattr(self.engine, "starts_nested_runs", None)
        return hook is None or bool(hook(self))

    # -- composition -----------------------------------------------------------

    @staticmethod
    def parallel(
        *agents: AgentBase,
        concurrency_limit: int | None = None,
        step_timeout: float | None = None,
        name: str = "parallel",
        description: str | None = None,
        session: Session | None = None,
        verbose: bool = False,
    ) -> ParallelAgent:
        """Run every agent concurrently on the same task; see :class:`~lazybridge.parallel.ParallelAgent`."""
        from .parallel import ParallelAgent

        return ParallelAgent(
            *agents,
            concurrency_limit=concurrency_limit,
            step_timeout=step_timeout,
            name=name,
            description=description,
            session=session,
            verbose=verbose,
        )

    @staticmethod
    def chain(
        *agents: AgentBase,
        name: str = "chain",
        description: str | None = None,
        session: Session | None = None,
        verbose: bool = False,
        timeout: float | None = None,
    ) -> Agent:
        """Run agents one after another, each stage's ``text()`` becoming the next stage's task.

        Returns an :class:`Agent`.  Its envelope is the last stage's, with
        inclusive cost and tokens (every stage counts as a nested run).  A
        stage that fails stops the chain; its error envelope is returned.

        Sugar over :class:`~lazybridge.Plan`: the agent's engine is
        ``Plan(Step(a), Step(b), ...)``, so a chain reports ``step_start`` /
        ``step_finish`` events like any plan.
        """
        from .engines.chain import chain_plan

        stages = check_agents(agents, "Agent.chain")
        return Agent(
            engine=chain_plan(stages),
            name=name,
            description=description,
            session=session,
            verbose=verbose,
            timeout=timeout,
        )

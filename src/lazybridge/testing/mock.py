"""MockAgent and ScriptedEngine: scripted answers, no provider, real runtime.

A :class:`MockAgent` is a real :class:`~lazybridge.Agent` whose engine replays
a script, so pipelines built from mocks exercise the same run ids, events,
deadlines, cancellation and cost rollup as production agents.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from .. import events
from .._checks import check_float, check_whole
from ..agent import Agent
from ..engines.base import EngineBase
from ..envelope import Envelope, EnvelopeMetadata
from ..events import RunContext

if TYPE_CHECKING:
    from ..session import Session

#: What a script may hold: a reply, an Envelope, or an exception to raise.
Reply = str | Envelope | BaseException
Script = Reply | Sequence[Reply] | Mapping[str, Reply] | Callable[[str], Any]


class ScriptedEngine(EngineBase[None]):
    """An engine that answers from a script.

    ``responses`` may be

    * a single reply, returned for every task;
    * a list of replies, returned in order (the last one repeats once the
      list runs out);
    * a dict mapping a substring of the task to a reply (first match in
      insertion order; the key ``"*"`` is the fallback);
    * a callable ``fn(task) -> reply`` (sync or async).

    A reply is a ``str`` (the answer), an :class:`Envelope` (returned as is,
    which is how a test scripts an error envelope) or an exception instance
    (raised, so the agent turns it into an error envelope).

    ``delay`` seconds are slept before answering (cancellable, like a real
    request).  Every task is recorded in :attr:`calls`.  Each answer's
    metadata carries ``model``, ``provider``, the token counts and
    ``cost_usd`` given, and ``usage_reported`` (``False`` acts like a
    provider that sent no usage).
    """

    # It answers from the script: no tools called, no output parsed, no memory
    # kept; EngineBase.prepare refuses the agent's tools=, output=, memory=.

    def __init__(
        self,
        responses: Script = "ok",
        *,
        delay: float = 0.0,
        model: str = "mock-model",
        provider: str = "mock",
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float = 0.0,
        usage_reported: bool = True,
    ) -> None:
        self.responses = responses
        self.delay = check_float(delay, "delay", low=0.0, high=math.inf, optional=False)
        check_whole(input_tokens, "input_tokens", minimum=0)
        check_whole(output_tokens, "output_tokens", minimum=0)
        check_float(cost_usd, "cost_usd", low=0.0, high=math.inf, optional=False)
        # The accounting of every answer, built once: it is configuration,
        # and the value is frozen, so every answer can share it.
        self._metadata = EnvelopeMetadata(
            model=model,
            provider=provider,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd,
            usage_reported=usage_reported,
        )
        self.calls: list[str] = []
        self._position = 0

    @property
    def model(self) -> str | None:
        return self._metadata.model

    @property
    def provider(self) -> str | None:
        return self._metadata.provider

    @property
    def input_tokens(self) -> int:
        return self._metadata.input_tokens

    @property
    def output_tokens(self) -> int:
        return self._metadata.output_tokens

    @property
    def cost_usd(self) -> float:
        return self._metadata.cost_usd

    def _pick(self, task: str) -> Any:
        script = self.responses
        if isinstance(script, (str, Envelope, BaseException)):
            return script
        if isinstance(script, Mapping):
            for key, reply in script.items():
                if key != "*" and key in task:
                    return reply
            if "*" in script:
                return script["*"]
            raise LookupError(f"MockAgent has no scripted reply for task {task!r}")
        if isinstance(script, Sequence):
            if not script:
                raise LookupError("MockAgent's script is empty")
            reply = script[min(self._position, len(script) - 1)]
            self._position += 1
            return reply
        if callable(script):
            return script
        raise TypeError(f"unsupported MockAgent script: {type(script).__name__}")

    def starts_nested_runs(self, prepared: None) -> bool:
        """Only a callable reply runs user code (which may run agents); fixed replies start nothing."""
        script = self.responses
        if isinstance(script, str):
            return False
        if isinstance(script, Mapping):
            return any(callable(reply) for reply in script.values())
        if isinstance(script, Sequence):
            return any(callable(reply) for reply in script)
        return callable(script)

    async def run(self, task: Envelope, *, prepared: None = None, run: RunContext) -> Envelope:
        text = task.task or ""
        self.calls.append(text)
        reply = self._pick(text)
        if self.delay:
            await anyio.sleep(self.delay)
        if callable(reply) and not isinstance(reply, (Envelope, BaseException)):
            reply = reply(text)
            if inspect.isawaitable(reply):
                reply = await reply
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, Envelope):
            return reply
        answer = str(reply)
        if run.sinks:
            run.emit(events.ModelResponseEvent, text=answer, model=self.model, turn=1)
        return Envelope(payload=answer, metadata=self._metadata)


class MockAgent(Agent):
    """An :class:`~lazybridge.Agent` with a :class:`ScriptedEngine`.

    Args:
        responses: the script: one reply for every task, a list of replies in
            order (the last repeats), a dict from a substring of the task to a
            reply (``"*"`` is the fallback), or ``fn(task)``, sync or async.
            A reply is a str, an Envelope (returned as is) or an exception
            instance (raised, so the run returns an error envelope).
        name: the agent's label.
        description: what it does, when it becomes a tool.
        delay: seconds before each answer (cancellable, like a request).
        model: ``metadata.model`` of its envelopes.
        provider: ``metadata.provider`` of its envelopes.
        input_tokens: ``metadata.input_tokens`` of each answer.
        output_tokens: ``metadata.output_tokens`` of each answer.
        cost_usd: ``metadata.cost_usd`` of each answer.
        usage_reported: ``False`` marks the usage as not reported by the model.
        session: a Session that records its events.
        verbose: print a live trace.
        timeout: seconds for each run, as for any Agent.

    ::

        researcher = MockAgent({"policy": "EU AI Act news", "*": "nothing"},
                               name="eu", delay=0.05, cost_usd=0.0001)
        env = researcher("AI policy news")
        assert researcher.calls == ["AI policy news"]
    """

    engine: ScriptedEngine

    def __init__(
        self,
        responses: Script = "ok",
        *,
        name: str = "mock",
        description: str | None = None,
        delay: float = 0.0,
        model: str = "mock-model",
        provider: str = "mock",
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float = 0.0,
        usage_reported: bool = True,
        session: Session | None = None,
        verbose: bool = False,
        timeout: float | None = None,
    ) -> None:
        super().__init__(
            engine=ScriptedEngine(
                responses,
                delay=delay,
                model=model,
                provider=provider,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost_usd,
                usage_reported=usage_reported,
            ),
            name=name,
            description=description,
            session=session,
            verbose=verbose,
            timeout=timeout,
        )

    @property
    def calls(self) -> list[str]:
        """Every task this agent was run on, in order."""
        return self.engine.calls

"""The agent loop of :class:`~lazybridge.engines.llm.LLMEngine`: turns until a final answer.

One run is a :class:`Conversation`.  Each turn sends the history to the
model; the reply is appended *verbatim* (``ModelResponse.as_message()``, so
Anthropic thinking blocks with their signatures, Gemini ``thoughtSignature``
parts and DeepSeek ``reasoning_content`` go back exactly as the APIs
require).  If the reply calls tools, every call runs concurrently
(:func:`~._toolloop.run_tool_calls`), their results are appended in call
order and the loop goes on; otherwise the reply is the answer -- checked
against ``output=`` when there is one, and re-asked for with the validation
errors up to ``max_output_retries`` times.

Tool choice
    ``tool_choice`` applies to the *first* turn.  A forcing choice
    (``"required"`` or a tool's name) would make the model call tools
    forever, so once the model has called tools the following turns send
    ``"auto"``; ``"auto"`` and ``"none"`` apply to every turn.

Paused turns
    A reply whose stop reason is ``"pause"`` (Anthropic's ``pause_turn``: a
    server tool paused a long turn) is not an answer: the history, ending
    with the paused assistant content as is, is sent again so the model
    carries on.  The text of the paused replies and of the reply that ends
    the turn make up the answer.  Each continuation is a model call and
    counts against ``max_turns``.

Turns
    ``max_turns`` bounds the model calls of a run.  When the model still
    asks for tools in call number ``max_turns`` the run ends with a
    :class:`~lazybridge.errors.MaxTurnsExceeded` error envelope (those calls
    are not run).  Re-asking for a structured answer does not use up turns:
    those calls have their own budget, ``max_output_retries``.

Accounting
    The envelope's ``cost_usd`` and tokens are the run's own model calls plus
    everything its sub-agents (agents used as tools) spent; ``nested_*`` is
    the sub-agents' part.  Error envelopes from the loop (max turns,
    structured output, a provider error after some turns) keep what was spent.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .. import budget, events
from .._checks import check_seconds, check_whole
from .._spend import Spend
from ..envelope import Envelope, EnvelopeMetadata
from ..errors import ConfigurationError, MaxTurnsExceeded, StructuredOutputError
from ..events import RunContext
from ..memory import Memory
from ..messages import Message, ModelRequest, ModelResponse, ToolCall, ToolChoice, ToolResult
from ..providers._ratelimit import OnRateWait, RateWait, rate_wait_reporter
from ._output import FINAL_ANSWER, InvalidOutput, OutputSpec
from ._toolloop import NestedSpend, ToolSet, run_tool_calls

if TYPE_CHECKING:
    from ..providers.base import ModelStream, OnRetry, RetryNotice
    from .llm import LLMEngine

__all__ = ["Conversation", "LLMSetup", "LLMStream", "LoopSettings", "Tally", "prepare_setup", "run_loop"]

OutputMode = Literal["auto", "native", "tool"]


@attrs.define
class Tally:
    """One run's own model calls: how many, and what they spent."""

    spend: Spend = attrs.field(factory=Spend)
    turns: int = 0


@attrs.frozen
class LoopSettings:
    """The loop's knobs, validated (see :class:`~lazybridge.engines.llm.LLMEngine`)."""

    max_turns: int = 10
    tool_choice: ToolChoice | None = None
    tool_timeout: float | None = None
    max_output_retries: int = 2
    output_mode: OutputMode = "auto"

    @classmethod
    def create(
        cls,
        *,
        max_turns: int,
        tool_choice: str | None,
        tool_timeout: float | None,
        max_output_retries: int,
        output_mode: str,
    ) -> LoopSettings:
        """Raises :class:`~lazybridge.errors.ConfigurationError` naming the bad argument."""
        check_whole(max_turns, "max_turns")
        check_whole(max_output_retries, "max_output_retries", minimum=0)
        checked_timeout = check_seconds(tool_timeout, "tool_timeout")
        if output_mode not in ("auto", "native", "tool"):
            raise ConfigurationError(f"output_mode must be 'auto', 'native' or 'tool', not {output_mode!r}")
        choice: ToolChoice | None
        if tool_choice is None:
            choice = None
        elif tool_choice in ("auto", "none", "required"):
            choice = ToolChoice(tool_choice)  # type: ignore[arg-type]
        elif isinstance(tool_choice, str) and tool_choice:
            choice = ToolChoice("required", name=tool_choice)
        else:
            raise ConfigurationError(
                f"tool_choice must be 'auto', 'none', 'required' or a tool's name, not {tool_choice!r}"
            )
        return cls(
            max_turns,
            choice,
            checked_timeout,
            max_output_retries,
            output_mode,  # type: ignore[arg-type]
        )


@attrs.frozen
class LLMSetup:
    """What :meth:`LLMEngine.prepare <lazybridge.engines.llm.LLMEngine.prepare>` makes of an agent's
    ``tools=``, ``output=`` and ``memory=``, once: every run of that agent receives it."""

    tools: ToolSet
    output: OutputSpec | None
    #: ``output=`` is asked for through the forced ``final_answer`` tool (else the native schema mode).
    tool_mode: bool
    memory: Memory | None
    #: At most this many of one turn's tool calls run at once (``None``: all of them).
    tool_concurrency: int | None = None


def prepare_setup(
    engine: LLMEngine, *, tools: tuple[Any, ...], output: Any, memory: Any, tool_concurrency: int | None = None
) -> LLMSetup:
    """Check and prepare an agent's arguments for ``engine`` (see :class:`LLMSetup`).

    Raises :class:`~lazybridge.errors.ConfigurationError` naming the argument:
    an undescribable tool, an unsupported output type, a memory that is not
    a ``Memory``, a ``tool_choice`` that names none of the tools.
    """
    toolset = ToolSet.build(tools, timeout=engine.tool_timeout)
    spec = OutputSpec.for_type(output) if output is not None else None
    if memory is not None and not isinstance(memory, Memory):
        raise ConfigurationError(f"memory must be a lazybridge.Memory, not {type(memory).__name__}")
    mode = engine.output_mode
    if mode == "auto":
        mode = "native" if engine.client.native_output(with_tools=bool(toolset.tools)) else "tool"
    tool_mode = spec is not None and mode == "tool"
    if tool_mode and FINAL_ANSWER in toolset.tools:
        raise ConfigurationError(f"a tool may not be named {FINAL_ANSWER!r} with output_mode='tool'")
    check_tool_choice(engine.tool_choice, toolset)
    check_whole(tool_concurrency, "tool_concurrency", optional=True)
    if tool_concurrency is not None and not toolset:
        raise ConfigurationError("tool_concurrency= limits tool calls, but the agent has no tools=")
    return LLMSetup(toolset, spec, tool_mode, memory, tool_concurrency)


def check_tool_choice(choice: ToolChoice | None, tools: ToolSet) -> None:
    """Refuse a forcing ``tool_choice`` that no tool of ``tools`` can satisfy."""
    if choice is None or (choice.mode in ("auto", "none") and choice.name is None):
        return
    if not tools:
        raise ConfigurationError(f"tool_choice={choice.name or choice.mode!r} but the agent has no tools")
    if choice.name is not None and choice.name not in tools.tools:
        raise ConfigurationError(
            f"tool_choice names {choice.name!r}, which is not one of the agent's tools "
            f"({', '.join(tools.tools)})"
        )


class Conversation:
    """The state of one run: history, tallies, turn counters.  One per run, never shared."""

    def __init__(self, engine: LLMEngine, setup: LLMSetup, task: Envelope, run: RunContext) -> None:
        self.engine = engine
        self.client = engine.client
        self.run = run
        self.tools = setup.tools
        self.output = setup.output
        self.tool_mode = setup.tool_mode
        self.max_retries = engine.max_output_retries
        self.memory = setup.memory
        self.tool_concurrency = setup.tool_concurrency
        history = self.memory.messages if self.memory is not None else ()
        self.messages: list[Message] = [*history, *engine.first_messages(task)]
        self._first = len(history)
        self._forget: set[int] = set()  # failed structured answers and their re-prompts
        self.tally = Tally()
        self.nested = NestedSpend()
        self.tool_rounds = 0
        self.retries = 0
        self.paused_text = ""  # text of paused replies (pause_turn), the start of the answer
        self.failure: Exception | None = None
        self._sent = 0.0  # when the current model call was sent (time.perf_counter())
        self._accounts = budget.accounts_of(run)  # the budgets of this run and the runs it is nested in
        self._reservation: budget.Reservation | None = None

    # -- model calls -------------------------------------------------------------

    async def call_model(self) -> ModelResponse:
        """One model call: send the next request, account for the reply, emit its two events.

        Errors: :class:`~lazybridge.errors.BudgetExceededError` (nothing sent)
        when a budget of the run cannot cover the request.
        Cancellation: the request in flight is aborted (see the client).
        """
        request = self._sending(await self._admitted(self.request()), stream=False)
        heard = rate_wait_reporter.set(self._wait_reporter(stream=False))
        try:
            response = await self.client.complete(request, on_retry=self._retry_reporter(stream=False))
        except BaseException:
            self.release()  # failed or cancelled: its reservation goes back (it still counts as a request)
            raise
        finally:
            rate_wait_reporter.reset(heard)
        await self.received(response)
        return response

    async def open_stream(self) -> ModelStream:
        """Open the next request streamed (the caller reads it, then calls :meth:`received`)."""
        request = self._sending(await self._admitted(self.request()), stream=True)
        heard = rate_wait_reporter.set(self._wait_reporter(stream=True))
        try:
            return await self.client.open_stream(request, on_retry=self._retry_reporter(stream=True))
        except BaseException:
            self.release()
            raise
        finally:
            rate_wait_reporter.reset(heard)

    async def _admitted(self, request: ModelRequest) -> ModelRequest:
        """``request`` as the run's budgets let it go, its worst case reserved (see :mod:`lazybridge.budget`)."""
        if not self._accounts:
            return request
        quote = await budget.quote(self.client, request, self._accounts)
        self._reservation, max_tokens = budget.reserve(self._accounts, request.max_tokens, quote)
        if max_tokens != request.max_tokens:
            request = attrs.evolve(request, max_tokens=max_tokens)
        return request

    def release(self) -> None:
        """Give back the budget reservation of the request in flight, if any (idempotent)."""
        if self._reservation is not None:
            reservation, self._reservation = self._reservation, None
            reservation.release()

    def _sending(self, request: ModelRequest, *, stream: bool) -> ModelRequest:
        if self.run.sinks:
            self.run.emit(
                events.ModelRequestEvent,
                model=request.model,
                provider=self.client.provider,
                turn=self.tally.turns + 1,
                messages=len(request.messages),
                stream=stream,
            )
        self._sent = time.perf_counter()
        return request

    async def received(self, response: ModelResponse) -> None:
        """Count a reply: its cost, the run's live account, its ``model_response`` event."""
        usage = response.usage
        try:
            cost = await self.client.cost_usd(usage)
            self.tally.spend += Spend.own(usage.input_tokens, usage.output_tokens, cost, reported=usage.reported)
            self.tally.turns += 1
            # The run's live account: what a timeout or a cancellation still reports.
            self.run.record(usage.input_tokens, usage.output_tokens, cost)
        finally:
            # After the record: budgets then see the real usage instead of the worst case.
            self.release()
        if self.run.sinks:
            self.run.emit(
                events.ModelResponseEvent,
                text=response.text,
                model=self.client.model,
                provider=self.client.provider,
                turn=self.tally.turns,
                usage={"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
                cost_usd=cost,
                stop_reason=response.stop_reason,
                tool_calls=[call.name for call in response.tool_calls],
                latency_ms=(time.perf_counter() - self._sent) * 1000.0,
            )

    def _retry_reporter(self, *, stream: bool) -> OnRetry | None:
        """An ``on_retry`` that emits ``model_retry`` events, or ``None`` when nobody listens."""
        run = self.run
        if not run.sinks:
            return None
        turn = self.tally.turns + 1
        client = self.client

        def report(notice: RetryNotice) -> None:
            error = notice.error
            run.emit(
                events.ModelRetryEvent,
                model=client.model,
                provider=client.provider,
                turn=turn,
                stream=stream,
                attempt=notice.attempt,
                wait_s=notice.wait,
                reason=f"{type(error).__name__}: {error}",
                error_type=type(error).__name__,
                status_code=error.status_code,
            )

        return report

    def _wait_reporter(self, *, stream: bool) -> OnRateWait | None:
        """An ``on_rate_wait`` that emits ``rate_limit_wait`` events, or ``None`` when nobody listens."""
        run = self.run
        if not run.sinks:
            return None
        turn = self.tally.turns + 1
        client = self.client

        def report(wait: RateWait) -> None:
            run.emit(
                events.RateLimitWaitEvent,
                model=client.model,
                provider=client.provider,
                turn=turn,
                stream=stream,
                wait_s=wait.wait,
                reason=wait.reason,
            )

        return report

    # -- requests ----------------------------------------------------------------

    def request(self) -> ModelRequest:
        """The next turn's request."""
        specs = self.tools.specs
        schema = None
        if self.output is not None:
            if self.tool_mode:
                specs = (*specs, self.output.tool_spec())
            else:
                schema = self.output.output_schema()
        choice = self._tool_choice() if specs else None
        return self.engine.request(
            tuple(self.messages), tools=specs, tool_choice=choice, output_schema=schema
        )

    def _tool_choice(self) -> ToolChoice | None:
        configured = self.engine.tool_choice
        if self.tool_mode:
            if self.tool_rounds == 0 and configured is not None and configured.name is not None:
                return configured
            if self.tools and not (configured is not None and configured.mode == "none"):
                return ToolChoice("required")
            return ToolChoice("required", name=FINAL_ANSWER)
        if configured is None or self.tool_rounds == 0:
            return configured
        forcing = configured.name is not None or configured.mode == "required"
        return ToolChoice("auto") if forcing else configured

    # -- replies -----------------------------------------------------------------

    async def step(self, response: ModelResponse) -> Envelope | None:
        """Take in one model reply; the run's envelope when it is over, else ``None``.

        Runs the reply's tool calls (see :func:`~._toolloop.run_tool_calls`).

        Cancellation: the tool calls are cancelled and awaited; see there.
        """
        self.messages.append(response.as_message())
        calls = response.tool_calls
        if calls and (self.tools or self.tool_mode):
            self.paused_text = ""
            return await self._tool_round(calls)
        if response.stop_reason == "pause":
            return self._continue_paused(response)
        text, self.paused_text = self.paused_text + response.text, ""
        if self.output is None:
            return self._finish(text)
        try:
            value = self.output.parse_text(text)
        except InvalidOutput as error:
            problem = error
            if self.tool_mode and not text.strip():
                problem = InvalidOutput([f"call the {FINAL_ANSWER} tool with your answer"])
            return self._retry(problem, forget=True)
        return self._finish(value)

    def _continue_paused(self, response: ModelResponse) -> Envelope | None:
        # The paused content is already the last message: sending the history
        # again is how the API is asked to carry on (no user message between).
        if self.tally.turns >= self.engine.max_turns + self.retries:
            return self._fail(
                MaxTurnsExceeded(
                    f"the model's turn was still paused (pause_turn) after {self.engine.max_turns} "
                    f"turns (max_turns={self.engine.max_turns})"
                )
            )
        self.paused_text += response.text
        return None

    async def _tool_round(self, calls: tuple[ToolCall, ...]) -> Envelope | None:
        invalid: dict[int, ToolResult] = {}  # by position: ids are not always unique
        problems: tuple[str, ...] = ()
        if self.tool_mode and self.output is not None:
            for position, call in enumerate(calls):
                if call.name != FINAL_ANSWER:
                    continue
                try:
                    value = self.output.parse_value(call.arguments)
                except InvalidOutput as error:
                    text = self.output.repair_prompt(error)
                    invalid[position] = ToolResult(call.id, call.name, text, is_error=True)
                    problems = error.problems
                    continue
                # The answer: close the round so the history pairs every call with a result.
                closing = tuple(
                    ToolResult(
                        c.id, c.name, "accepted" if c is call else "not run: the final answer was given"
                    )
                    for c in calls
                )
                self.messages.append(Message("tool", closing))
                return self._finish(value)
            if invalid:
                self.retries += 1  # a failed answer: it does not use up a turn
                if self.retries > self.max_retries:
                    return self._fail_output("\n".join(problems))
        if self.tally.turns >= self.engine.max_turns + self.retries:
            return self._fail(
                MaxTurnsExceeded(
                    f"the model still called tools after {self.engine.max_turns} turns (max_turns="
                    f"{self.engine.max_turns}): {', '.join(c.name for c in calls)}"
                )
            )
        todo = [c for i, c in enumerate(calls) if i not in invalid]
        done = iter(await run_tool_calls(todo, self.tools, run=self.run, spend=self.nested, limit=self.tool_concurrency) if todo else ())
        results = tuple(invalid[i] if i in invalid else next(done) for i in range(len(calls)))
        self.messages.append(Message("tool", results))
        self.tool_rounds += 1
        return None

    def _retry(self, error: InvalidOutput, *, forget: bool) -> Envelope | None:
        self.retries += 1
        if self.retries > self.max_retries:
            return self._fail_output("\n".join(error.problems))
        assert self.output is not None
        if forget:
            self._forget.update((len(self.messages) - 1, len(self.messages)))
        self.messages.append(Message.user(self.output.repair_prompt(error)))
        return None

    def _fail_output(self, problems: str) -> Envelope:
        assert self.output is not None
        attempts = self.retries
        return self._fail(
            StructuredOutputError(
                f"the answer did not fit {self.output.name} after {attempts} attempt"
                f"{'s' if attempts != 1 else ''}:\n{problems}"
            )
        )

    # -- the end -----------------------------------------------------------------

    def metadata(self) -> EnvelopeMetadata:
        """The run's accounting so far: its own model calls plus its sub-agents' (nested)."""
        spend = self.tally.spend + self.nested.value
        return EnvelopeMetadata.of_spend(spend, model=self.client.model, provider=self.client.provider)

    def _fail(self, error: Exception) -> Envelope:
        self.failure = error
        return Envelope.error_envelope(error, metadata=self.metadata())

    def _finish(self, payload: Any) -> Envelope:
        if self.memory is not None:
            self.memory.add_turn(self._turn())
        return Envelope(payload=payload, metadata=self.metadata())

    def _turn(self) -> list[Message]:
        turn = [m for i, m in enumerate(self.messages) if i >= self._first and i not in self._forget]
        last = turn[-1]
        if last.role == "assistant" and last.tool_calls:
            # Calls in a reply to a request that offered no tools: nothing ran them, and
            # a call without a result would make the next request invalid.
            parts = tuple(p for p in last.parts if not isinstance(p, ToolCall))
            turn[-1:] = [Message("assistant", parts)] if parts else []
        return turn


async def run_loop(engine: LLMEngine, setup: LLMSetup, task: Envelope, run: RunContext) -> Envelope:
    """Run the loop to its end (see the module docstring).

    Errors: a failure before the first reply (the client's error) is raised;
    one after it comes back as an error envelope that keeps the run's spend.

    Cancellation: the HTTP request or the tool calls in flight are cancelled
    and awaited; the memory records nothing.
    """
    conversation = Conversation(engine, setup, task, run)
    try:
        while True:
            response = await conversation.call_model()
            result = await conversation.step(response)
            if result is not None:
                return result
    except Exception as exc:  # keep what was spent; cancellation is not an Exception
        if conversation.tally.turns == 0:
            raise
        return Envelope.error_envelope(exc, metadata=conversation.metadata())


class LLMStream:
    """A run of the loop, streamed: the text deltas of every turn, then :meth:`result`.

    Each model call is streamed; when a turn ends with tool calls, the tools
    run (inside the ``__anext__`` that reached the end of that turn) and the
    next turn's deltas follow.  Text the model writes before calling tools is
    yielded too.  With ``output=`` nothing is yielded until the answer has
    been validated; it then comes as one chunk, its JSON.

    Nothing is sent until the first ``__anext__``.  See
    :class:`~lazybridge._stream.AgentStream` for the user-facing contract.

    Errors: as :meth:`LLMEngine.run <lazybridge.engines.llm.LLMEngine.run>`,
    but raised from ``__anext__`` (``MaxTurnsExceeded`` and
    ``StructuredOutputError`` included).

    Cancellation: cancelling an ``__anext__`` closes the response being read
    or cancels the tool calls running, and awaits them.
    """

    def __init__(self, engine: LLMEngine, setup: LLMSetup, task: Envelope, run: RunContext) -> None:
        self._engine = engine
        self._setup = setup
        self._task = task
        self._run = run
        self._conversation: Conversation | None = None
        self._events: ModelStream | None = None
        self._result: Envelope | None = None
        self.response: ModelResponse | None = None
        """The last model response, once its stream ended."""

    async def __anext__(self) -> str:
        if self._result is not None:
            raise StopAsyncIteration
        conversation = self._conversation
        if conversation is None:
            conversation = self._conversation = Conversation(self._engine, self._setup, self._task, self._run)
        while True:
            if self._events is None:
                self._events = await conversation.open_stream()
            try:
                delta = await self._events.__anext__()
            except StopAsyncIteration:
                pass
            else:
                if conversation.output is None:
                    return delta
                continue
            result = await self._end_of_turn(conversation, self._events)
            self._events = None
            if result is not None:
                if result.error is not None and conversation.failure is not None:
                    raise conversation.failure
                self._result = result
                if conversation.output is not None and result.text():
                    return result.text()
                raise StopAsyncIteration

    async def _end_of_turn(self, conversation: Conversation, stream: ModelStream) -> Envelope | None:
        response = self.response = stream.finish()
        await conversation.received(response)
        return await conversation.step(response)

    def result(self) -> Envelope:
        if self._result is None:
            raise RuntimeError("the stream has not ended")
        return self._result

    async def aclose(self) -> None:
        if self._conversation is not None:
            self._conversation.release()  # a reply that never ended gives its reservation back
        if self._events is not None:
            events_, self._events = self._events, None
            await events_.aclose()

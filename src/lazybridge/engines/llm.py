"""LLMEngine: an agent's engine that talks to a model provider over HTTP.

::

    Agent(engine=LLMEngine("claude-haiku-4-5", system="Be brief."), name="writer")

The engine builds a neutral :class:`~lazybridge.messages.ModelRequest`, and
one *model call* (:meth:`LLMEngine._call_model`) sends it through
:mod:`lazybridge.providers._http` and emits the ``model_request`` /
``model_response`` events.  :meth:`LLMEngine.run` is the agent loop over
model calls -- tools, structured output, memory -- in
:mod:`lazybridge.engines._loop` (turns), :mod:`~lazybridge.engines._toolloop`
(concurrent tool calls) and :mod:`~lazybridge.engines._output` (``output=``).
"""

from __future__ import annotations

import re
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from .. import events
from .._checks import check_api_key, check_float, check_limits, check_seconds, check_whole
from ..envelope import Envelope
from ..errors import AuthenticationError, ConfigurationError
from ..events import RunContext
from ..messages import Message, ModelRequest, ModelResponse, OutputSchema, ToolChoice, ToolSpec
from ..providers import _http, pricing, registry
from ..providers._http import Endpoint, Secret
from ._loop import LLMStream, LoopSettings, Tally, run_loop

if TYPE_CHECKING:
    from ..agent import Agent, AgentBase

__all__ = ["LLMEngine", "LLMStream", "ParameterNotSentWarning"]


class ParameterNotSentWarning(UserWarning):
    """A sampling argument given to :class:`LLMEngine` that the provider's API version will not take.

    Issued once per process per (argument, API version), at construction.
    """


_warned_lock = threading.Lock()
_warned: set[tuple[str, str]] = set()
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")


_Tally = Tally  # usage and cost of every model call of one run


class LLMEngine:
    """Runs a task through one model, over the provider's HTTP API (no vendor SDK).

    Arguments:
        model: ``"claude-haiku-4-5"``, ``"gpt-5.4-mini"``,
            ``"gemini-3-flash-preview"``, ``"deepseek-v4-flash"``, ... or
            ``"provider/model"`` (``openai/``, ``anthropic/``, ``google/``,
            ``deepseek/``, ``ollama/``, ``compat/`` with ``base_url=``).
            An unknown model raises :class:`~lazybridge.errors.ConfigurationError`.
        system: the system prompt.
        temperature, max_tokens: sampling settings sent to the model
            (``temperature`` from 0 to 2, ``max_tokens`` >= 1).  Anthropic's
            API version 2026-10-21 (the default) has no ``temperature``: it is
            not sent to Anthropic models then, and a
            :class:`ParameterNotSentWarning` says so once per process.
        anthropic_version: the Anthropic API version (the ``anthropic-version``
            header), an ISO date such as ``"2023-06-01"``; default
            ``"2026-10-21"``.  Versions before 2026-10-21 still take
            ``temperature``.  Given for a model of another provider, it raises
            :class:`~lazybridge.errors.ConfigurationError`.
        base_url: the API's base URL; default from the provider's variable
            (``ANTHROPIC_BASE_URL``, ``OPENAI_BASE_URL``, ``GEMINI_BASE_URL``
            or ``GOOGLE_GEMINI_BASE_URL``, ``DEEPSEEK_BASE_URL``,
            ``OLLAMA_BASE_URL``), else the public endpoint.
        api_key: default from ``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``,
            ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``, ``DEEPSEEK_API_KEY``.
            A missing key is not an error here: runs return an
            ``AuthenticationError`` envelope naming the variable to set.
            The key appears in no repr, event, log or error message.  A key
            with whitespace or a control character (say, the newline of a
            key copied from a file) raises ``ConfigurationError`` here.
        timeout: seconds to connect, or to wait for the next bytes of an
            answer (default 600).
        stall_timeout: seconds a streamed answer may stay silent before it
            is aborted with ``APITimeoutError`` (default: ``timeout``).
        max_retries: retries after the first attempt (default 2); see
            :mod:`lazybridge.providers._http` for the schedule.
        http_client: an ``httpx.AsyncClient`` to use instead of the shared
            pool; you own it (LazyBridge never closes it).
        limits: the ``httpx.Limits`` of the shared pool for this base URL
            (default 100 connections, 20 kept alive).
        max_turns: the most model calls of one run (default 10).  When the
            model still calls tools in the last one, the run returns a
            ``MaxTurnsExceeded`` envelope.
        tool_choice: ``"auto"`` (the provider's default when ``None``),
            ``"none"``, ``"required"`` or a tool's name, for the *first* turn.
            After the model has called tools, a forcing choice (``"required"``
            or a name) becomes ``"auto"`` -- else the model could never
            answer; ``"auto"``/``"none"`` hold for every turn.
        tool_timeout: seconds each tool call may take (a ``Tool``'s own
            ``timeout`` wins).  A call that runs out is cancelled and reported
            to the model as a tool error; the run goes on.
        max_output_retries: how many times an answer that does not fit
            ``Agent(output=...)`` is sent back with the validation errors
            before the run returns a ``StructuredOutputError`` envelope
            (default 2).
        output_mode: how ``output=`` is asked for: ``"native"`` (the
            provider's JSON-schema mode), ``"tool"`` (a forced
            ``final_answer`` tool) or ``"auto"`` (native where the wire
            format has one: all built-in ones do; the tool for an agent with
            tools on a model that refuses both at once, such as Gemini 2.x).

    Tools run concurrently: every call of one turn starts at once (one task
    group) and the results go back in call order.  A tool that raises, times
    out or gets arguments that do not fit its signature is reported to the
    model as a tool error (``is_error``) naming the problem, so it can
    correct itself.  See :mod:`lazybridge.engines._loop` for the details.

    The engine holds no per-run state: one engine may serve many agents and
    concurrent runs.
    """

    #: The Agent arguments the loop reads (see :mod:`lazybridge.engines.base`).
    agent_arguments: ClassVar[frozenset[str]] = frozenset({"tools", "output", "memory"})

    def __init__(
        self,
        model: str,
        *,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        stall_timeout: float | None = None,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
        limits: httpx.Limits | None = None,
        max_turns: int = 10,
        tool_choice: str | None = None,
        tool_timeout: float | None = None,
        max_output_retries: int = 2,
        output_mode: str = "auto",
        anthropic_version: str | None = None,
    ) -> None:
        route = registry.resolve(model, base_url=base_url)
        if anthropic_version is not None:
            if not isinstance(anthropic_version, str) or not _API_VERSION.fullmatch(anthropic_version):
                raise ConfigurationError(
                    f"anthropic_version must be an API version date such as '2023-06-01', "
                    f"not {anthropic_version!r}"
                )
            if route.provider.name != "anthropic":
                raise ConfigurationError(
                    f"anthropic_version= applies to Anthropic models only; {model!r} is a "
                    f"{route.provider.title} model"
                )
        loop = LoopSettings.create(
            max_turns=max_turns,
            tool_choice=tool_choice,
            tool_timeout=tool_timeout,
            max_output_retries=max_output_retries,
            output_mode=output_mode,
        )
        if system is not None and not isinstance(system, str):
            raise ConfigurationError(f"system must be a string or None, not {type(system).__name__}")
        # 0 to 2 is what every provider takes (Anthropic's top is 1); nan or inf
        # would go out as the invalid JSON tokens NaN / Infinity.
        temperature = check_float(temperature, "temperature", low=0.0, high=2.0)
        check_whole(max_tokens, "max_tokens", optional=True)
        check_whole(max_retries, "max_retries", minimum=0)
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise ConfigurationError(
                f"http_client must be an httpx.AsyncClient, not {type(http_client).__name__}"
            )
        check_limits(limits, "limits")
        check_api_key(api_key, "api_key")
        self.model: str | None = route.model
        self.provider = route.provider.name
        self.system = system
        self.temperature = None if temperature is None else float(temperature)
        self.max_tokens = max_tokens
        self.max_turns = loop.max_turns
        self.tool_choice = loop.tool_choice
        self.tool_timeout = loop.tool_timeout
        self.max_output_retries = loop.max_output_retries
        self.output_mode = loop.output_mode
        self._route = route
        self._wire = registry.wire_format(route.provider.name, anthropic_version=anthropic_version)
        if self.temperature is not None and not getattr(self._wire, "sends_sampling", True):
            _warn_not_sent("temperature", self._wire)
        self._explicit_key = Secret(api_key) if api_key else None
        self._settings: dict[str, Any] = {
            "timeout": check_seconds(timeout, "timeout") or _http.DEFAULT_TIMEOUT,
            "stall_timeout": check_seconds(stall_timeout, "stall_timeout"),
            "max_retries": max_retries,
            "limits": limits or _http.DEFAULT_LIMITS,
            "http_client": http_client,
        }
        self._endpoint = self._make_endpoint()

    @property
    def base_url(self) -> str:
        return self._route.base_url

    def __repr__(self) -> str:
        return f"LLMEngine({self._route.model!r}, provider={self.provider!r}, base_url={self.base_url!r})"

    # -- configuration -------------------------------------------------------------

    def _make_endpoint(self) -> Endpoint | None:
        key = self._explicit_key.reveal() if self._explicit_key else self._route.api_key()
        if key is None and self._route.provider.key_required:
            return None
        return _http.shared_endpoint(self.provider, self._wire, self._route.base_url, key, **self._settings)

    def endpoint(self) -> Endpoint:
        """Where requests go; raises :class:`AuthenticationError` if no key is configured."""
        endpoint = self._endpoint
        if endpoint is None:
            # The variable may have been set since construction.
            endpoint = self._endpoint = self._make_endpoint()
            if endpoint is None:
                raise AuthenticationError(
                    self._route.missing_key_message(), provider=self.provider, retryable=False
                )
        return endpoint

    def request(
        self,
        messages: tuple[Message, ...],
        *,
        tools: tuple[ToolSpec, ...] = (),
        tool_choice: ToolChoice | None = None,
        output_schema: OutputSchema | None = None,
    ) -> ModelRequest:
        """The neutral request for ``messages`` with this engine's settings."""
        return ModelRequest(
            model=self._route.model,
            messages=messages,
            system=self.system,
            tools=tools,
            tool_choice=tool_choice,
            output_schema=output_schema,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        )

    def _first_messages(self, task: Envelope) -> tuple[Message, ...]:
        text = task.task or ""
        if task.context:
            text = f"{text}\n\nContext:\n{task.context}"
        return (Message.user(text),)

    # -- running ------------------------------------------------------------------

    async def run(self, task: Envelope, *, agent: Agent, run: RunContext) -> Envelope:
        """Answer ``task`` for ``agent``: turns of model calls and tool calls until an answer.

        Reads ``agent.tools``, ``agent.output`` and ``agent.memory``; see
        :mod:`lazybridge.engines._loop`.  A max-turns, structured-output or
        provider failure after the first model call is returned as an error
        envelope that keeps what the run spent.

        Errors: raises the provider's :class:`~lazybridge.errors.ProviderError`
        when the first model call fails (after retries),
        :class:`~lazybridge.errors.AuthenticationError` when no API key is
        configured, and :class:`~lazybridge.errors.ConfigurationError` for
        tools, ``output=`` or ``memory=`` that cannot be used; the Agent
        turns these into error envelopes.

        Cancellation: the HTTP request in flight is aborted and its
        connection closed (the provider sees the disconnect); a retry wait
        ends at once; tool calls running are cancelled and awaited (a sync
        tool's thread is abandoned, see :meth:`Tool.call
        <lazybridge.tools.Tool.call>`); the memory records nothing.  Nothing
        keeps running.
        """
        return await run_loop(self, task, agent, run)

    def starts_nested_runs(self, agent: Agent) -> bool:
        """Only tools run user code or other agents; an agent with none starts no nested run."""
        return bool(agent.tools)

    async def _call_model(self, request: ModelRequest, *, run: RunContext, tally: _Tally) -> ModelResponse:
        """One model call: send ``request``, account for it, emit its two events.

        Cancellation: as :meth:`run`.
        """
        endpoint = self.endpoint()
        turn = tally.turns + 1
        traced = bool(run.sinks)
        if traced:
            run.emit(
                events.MODEL_REQUEST,
                model=request.model,
                provider=self.provider,
                turn=turn,
                messages=len(request.messages),
                stream=False,
            )
        started = time.perf_counter()
        on_retry = self._retry_reporter(run, turn, stream=False) if traced else None
        response = await _http.complete(endpoint, request, on_retry=on_retry)
        cost = await self._account(response, tally, run)
        if traced:
            self._emit_response(run, response, turn, cost, started)
        return response

    def _retry_reporter(self, run: RunContext, turn: int, *, stream: bool) -> _http.OnRetry:
        """An ``on_retry`` for the HTTP layer that emits ``model_retry`` events to ``run``."""

        def report(notice: _http.RetryNotice) -> None:
            error = notice.error
            run.emit(
                events.MODEL_RETRY,
                model=self._route.model,
                provider=self.provider,
                turn=turn,
                stream=stream,
                attempt=notice.attempt,
                wait_s=notice.wait,
                reason=f"{type(error).__name__}: {error}",
                error_type=type(error).__name__,
                status_code=error.status_code,
            )

        return report

    async def _account(self, response: ModelResponse, tally: _Tally, run: RunContext) -> float:
        if not pricing.loaded():
            await pricing.load()
        usage = response.usage
        cost = pricing.cost_usd(self.provider, self._route.model, usage)
        tally.usage = tally.usage + usage
        tally.cost_usd += cost
        tally.turns += 1
        # The run's live account: what a timeout or a cancellation still reports.
        run.record(usage.input_tokens, usage.output_tokens, cost)
        return cost

    def _emit_response(
        self, run: RunContext, response: ModelResponse, turn: int, cost: float, started: float
    ) -> None:
        usage = response.usage
        run.emit(
            events.MODEL_RESPONSE,
            text=response.text,
            model=self._route.model,
            provider=self.provider,
            turn=turn,
            usage={"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
            cost_usd=cost,
            stop_reason=response.stop_reason,
            tool_calls=[call.name for call in response.tool_calls],
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )

    # -- streaming ---------------------------------------------------------------

    def stream(self, task: Envelope, *, agent: AgentBase, run: RunContext) -> LLMStream:
        """The run as text deltas (used by :meth:`Agent.stream <lazybridge.Agent.stream>`).

        The tool loop runs as in :meth:`run`, each turn streamed; see
        :class:`~lazybridge.engines._loop.LLMStream`.
        """
        return LLMStream(self, task, agent, run)


def _warn_not_sent(argument: str, wire: Any) -> None:
    """One :class:`ParameterNotSentWarning` per process per (argument, API version)."""
    version = str(getattr(wire, "version", ""))
    with _warned_lock:
        if (argument, version) in _warned:
            return
        _warned.add((argument, version))
    warnings.warn(
        f"{argument}= is not sent: Anthropic API version {version} has no {argument} "
        f"(pass anthropic_version='2023-06-01' to send it, or leave {argument}= out)",
        ParameterNotSentWarning,
        stacklevel=3,
    )

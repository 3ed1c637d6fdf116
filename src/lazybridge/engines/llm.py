"""LLMEngine: an agent's engine that talks to a model provider over HTTP.

::

    Agent(engine=LLMEngine("claude-haiku-4-5", system="Be brief."), name="writer")

The engine builds a neutral :class:`~lazybridge.messages.ModelRequest`, and
one *model call* (:meth:`LLMEngine._call_model`) sends it through
:mod:`lazybridge.providers._http` and emits the ``model_request`` /
``model_response`` events.  :meth:`LLMEngine.run` is a loop over model calls
with one turn today; the tool loop adds turns to the same loop.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from .. import events
from ..envelope import Envelope, EnvelopeMetadata
from ..errors import AuthenticationError, ConfigurationError
from ..events import RunContext
from ..messages import Message, ModelRequest, ModelResponse, Usage
from ..providers import _http, pricing, registry
from ..providers._http import Endpoint, EventStream, Secret

if TYPE_CHECKING:
    from ..agent import Agent, AgentBase

__all__ = ["LLMEngine", "LLMStream"]


@attrs.define
class _Tally:
    """Usage and cost of every model call of one run."""

    usage: Usage = attrs.field(factory=Usage)
    cost_usd: float = 0.0
    turns: int = 0


def _positive(value: float | None, argument: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value <= 0:
        raise ConfigurationError(f"{argument} must be a positive number of seconds or None, not {value!r}")
    return float(value)


class LLMEngine:
    """Runs a task through one model, over the provider's HTTP API (no vendor SDK).

    Arguments:
        model: ``"claude-haiku-4-5"``, ``"gpt-5.4-mini"``,
            ``"gemini-3-flash-preview"``, ``"deepseek-v4-flash"``, ... or
            ``"provider/model"`` (``openai/``, ``anthropic/``, ``google/``,
            ``deepseek/``, ``ollama/``, ``compat/`` with ``base_url=``).
            An unknown model raises :class:`~lazybridge.errors.ConfigurationError`.
        system: the system prompt.
        temperature, max_tokens: sampling settings sent to the model.
        base_url: the API's base URL; default from the provider's variable
            (``ANTHROPIC_BASE_URL``, ``OPENAI_BASE_URL``, ``GEMINI_BASE_URL``
            or ``GOOGLE_GEMINI_BASE_URL``, ``DEEPSEEK_BASE_URL``,
            ``OLLAMA_BASE_URL``), else the public endpoint.
        api_key: default from ``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``,
            ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``, ``DEEPSEEK_API_KEY``.
            A missing key is not an error here: runs return an
            ``AuthenticationError`` envelope naming the variable to set.
            The key appears in no repr, event, log or error message.
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

    The engine holds no per-run state: one engine may serve many agents and
    concurrent runs.
    """

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
    ) -> None:
        route = registry.resolve(model, base_url=base_url)
        if system is not None and not isinstance(system, str):
            raise ConfigurationError(f"system must be a string or None, not {type(system).__name__}")
        if temperature is not None and (
            isinstance(temperature, bool) or not isinstance(temperature, (int, float))
        ):
            raise ConfigurationError(f"temperature must be a number or None, not {temperature!r}")
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise ConfigurationError(f"max_tokens must be a whole number >= 1 or None, not {max_tokens!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be a whole number >= 0, not {max_retries!r}")
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise ConfigurationError(
                f"http_client must be an httpx.AsyncClient, not {type(http_client).__name__}"
            )
        if limits is not None and not isinstance(limits, httpx.Limits):
            raise ConfigurationError(f"limits must be an httpx.Limits, not {type(limits).__name__}")
        if api_key is not None and not isinstance(api_key, str):
            raise ConfigurationError("api_key must be a string or None")
        self.model: str | None = route.model
        self.provider = route.provider.name
        self.system = system
        self.temperature = None if temperature is None else float(temperature)
        self.max_tokens = max_tokens
        self._route = route
        self._wire = registry.wire_format(route.provider.name)
        self._explicit_key = Secret(api_key) if api_key else None
        self._settings: dict[str, Any] = {
            "timeout": _positive(timeout, "timeout") or _http.DEFAULT_TIMEOUT,
            "stall_timeout": _positive(stall_timeout, "stall_timeout"),
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

    def request(self, messages: tuple[Message, ...]) -> ModelRequest:
        """The neutral request for ``messages`` with this engine's settings."""
        return ModelRequest(
            model=self._route.model,
            messages=messages,
            system=self.system,
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
        """Answer ``task`` with the model; the Agent turns a raised error into an error envelope.

        Errors: raises the provider's :class:`~lazybridge.errors.ProviderError`
        (after retries), or :class:`~lazybridge.errors.AuthenticationError`
        when no API key is configured.

        Cancellation: the HTTP request in flight is aborted and its
        connection closed (the provider sees the disconnect); a retry wait
        ends at once.  Nothing keeps running.
        """
        tally = _Tally()
        messages = self._first_messages(task)
        response = await self._call_model(self.request(messages), run=run, tally=tally)
        # The tool loop slots in here: while response.tool_calls, run the
        # tools, append response.as_message() and the results, call again.
        return self._envelope(response, tally)

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
        response = await _http.complete(endpoint, request)
        cost = await self._account(response, tally)
        if traced:
            self._emit_response(run, response, turn, cost, started)
        return response

    async def _account(self, response: ModelResponse, tally: _Tally) -> float:
        if not pricing.loaded():
            await pricing.load()
        cost = pricing.cost_usd(self._route.provider.price_provider, self._route.model, response.usage)
        tally.usage = tally.usage + response.usage
        tally.cost_usd += cost
        tally.turns += 1
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

    def _envelope(self, response: ModelResponse, tally: _Tally) -> Envelope:
        return Envelope(
            payload=response.text,
            metadata=EnvelopeMetadata(
                model=self._route.model,
                provider=self.provider,
                input_tokens=tally.usage.input_tokens,
                output_tokens=tally.usage.output_tokens,
                cost_usd=tally.cost_usd,
            ),
        )

    # -- streaming ---------------------------------------------------------------

    def stream(self, task: Envelope, *, agent: AgentBase, run: RunContext) -> LLMStream:
        """The answer to ``task`` as text deltas (used by :meth:`Agent.stream <lazybridge.Agent.stream>`)."""
        return LLMStream(self, task, run)


class LLMStream:
    """One streamed model call: text deltas, then :meth:`result`.

    Nothing is sent until the first ``__anext__``.  See
    :class:`~lazybridge._stream.AgentStream` for the user-facing contract.
    """

    def __init__(self, engine: LLMEngine, task: Envelope, run: RunContext) -> None:
        self._engine = engine
        self._task = task
        self._run = run
        self._events: EventStream | None = None
        self._tally = _Tally()
        self._response: ModelResponse | None = None
        self._started = 0.0

    @property
    def response(self) -> ModelResponse | None:
        """The accumulated model response, once the stream ended."""
        return self._response

    async def __anext__(self) -> str:
        if self._response is not None:
            raise StopAsyncIteration
        if self._events is None:
            self._events = await self._open()
        try:
            return await self._events.__anext__()
        except StopAsyncIteration:
            response = self._response = self._events.finish()
            cost = await self._engine._account(response, self._tally)
            if self._run.sinks:
                self._engine._emit_response(self._run, response, 1, cost, self._started)
            raise

    async def _open(self) -> EventStream:
        engine = self._engine
        endpoint = engine.endpoint()
        request = engine.request(engine._first_messages(self._task))
        if self._run.sinks:
            self._run.emit(
                events.MODEL_REQUEST,
                model=request.model,
                provider=engine.provider,
                turn=1,
                messages=len(request.messages),
                stream=True,
            )
        self._started = time.perf_counter()
        return await _http.open_stream(endpoint, request)

    def result(self) -> Envelope:
        if self._response is None:
            raise RuntimeError("the stream has not ended")
        return self._engine._envelope(self._response, self._tally)

    async def aclose(self) -> None:
        if self._events is not None:
            await self._events.aclose()

r"""LLMEngine: an agent's engine that talks to a model provider over HTTP.

::

    Agent(engine=LLMEngine("claude-haiku-4-5", system="Be brief."), name="writer")

The engine builds neutral :class:`~lazybridge.messages.ModelRequest`\ s and
sends them through a :class:`~lazybridge.providers.base.ModelClient`: the HTTP
one (:class:`~lazybridge.providers.client.HTTPModelClient`) for a model name,
or any client given in its place (``LLMEngine(ScriptedModel([...]))`` drives
the real loop with scripted replies and no socket).  :meth:`LLMEngine.run` is
the agent loop over model calls -- tools, structured output, memory -- in
:mod:`lazybridge.engines._loop` (turns), :mod:`~lazybridge.engines._toolloop`
(concurrent tool calls) and :mod:`~lazybridge.engines._output` (``output=``).
"""

from __future__ import annotations

import re
import threading
import warnings
from typing import Any

import anyio.lowlevel
import httpx

from .._checks import check_api_key, check_float, check_limits, check_seconds, check_whole
from ..envelope import Envelope
from ..errors import ConfigurationError
from ..events import RunContext
from ..messages import Message, ModelRequest, OutputSchema, ToolChoice, ToolSpec
from ..providers import _pool, pricing, registry
from ..providers._http import Endpoint
from ..providers._ratelimit import RateLimit
from ..providers._transport import check_transport
from ..providers.base import ModelClient
from ..providers.client import HTTPModelClient
from ._loop import LLMSetup, LLMStream, LoopSettings, prepare_setup, run_loop

__all__ = ["LLMEngine", "LLMStream", "ParameterNotSentWarning"]


class ParameterNotSentWarning(UserWarning):
    """A sampling argument given to :class:`LLMEngine` that the provider's API version will not take.

    Issued once per process per (argument, API version), at construction.
    """


_warned_lock = threading.Lock()
_warned: set[tuple[str, str]] = set()
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")




class LLMEngine:
    """Runs a task through one model, over the provider's HTTP API (no vendor SDK).

    Arguments:
        model: ``"claude-haiku-4-5"``, ``"gpt-5.4-mini"``,
            ``"gemini-3-flash-preview"``, ``"deepseek-v4-flash"``, ... or
            ``"provider/model"`` (``openai/``, ``anthropic/``, ``google/``,
            ``deepseek/``, ``ollama/``, ``compat/`` with ``base_url=``).
            An unknown model raises :class:`~lazybridge.errors.ConfigurationError`.
            Or a :class:`~lazybridge.providers.base.ModelClient` to send the
            requests through instead of HTTP, such as
            :class:`~lazybridge.testing.ScriptedModel`; the connection
            arguments (``base_url``, ``api_key``, ``timeout``, ...) then do
            not apply and are refused.
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
        http_transport: the shared pool's transport: ``"auto"`` (aiohttp on
            asyncio when the ``aiohttp`` extra is installed, else httpx's
            own), ``"httpx"`` or ``"aiohttp"`` (a ``ConfigurationError``
            at the first request on asyncio without the extra; httpx's own
            under Trio).  Default: the ``LAZYBRIDGE_HTTP_TRANSPORT``
            variable, else ``"auto"``.  Not with ``http_client=``.  See
            "Transports" in the provider docs.
        rate_limit: a :class:`~lazybridge.RateLimit` the provider account (this
            base URL and API key) is paced to, shared by every engine of the
            process that uses the account; without one the pace is learned
            from the provider's rate-limit headers.  See "Rate limits and
            throughput" in the docs.
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

    def __init__(
        self,
        model: str | ModelClient,
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
        rate_limit: RateLimit | None = None,
        http_transport: str | None = None,
    ) -> None:
        if isinstance(model, ModelClient) and not isinstance(model, str):
            _refuse_connection_arguments(
                base_url=base_url, api_key=api_key, timeout=timeout, stall_timeout=stall_timeout,
                max_retries=None if max_retries == 2 else max_retries, http_client=http_client,
                limits=limits, anthropic_version=anthropic_version, rate_limit=rate_limit,
                http_transport=http_transport,
            )
            route = None
        else:
            route = registry.resolve(model, base_url=base_url)
        if route is not None and anthropic_version is not None:
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
        transport = check_transport(http_transport, "http_transport")
        if transport is not None and http_client is not None:
            raise ConfigurationError(
                "http_transport= picks the transport of LazyBridge's pooled clients; "
                "it does not apply with http_client= (your client keeps its own transport)"
            )
        check_api_key(api_key, "api_key")
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise ConfigurationError(
                f"rate_limit must be a lazybridge.RateLimit or None, not {type(rate_limit).__name__}"
            )
        self.system = system
        self.temperature = None if temperature is None else float(temperature)
        self.max_tokens = max_tokens
        self.max_turns = loop.max_turns
        self.tool_choice = loop.tool_choice
        self.tool_timeout = loop.tool_timeout
        self.max_output_retries = loop.max_output_retries
        self.output_mode = loop.output_mode
        self.client: ModelClient
        if route is None:
            self.client = model  # type: ignore[assignment]  # a ModelClient (checked above)
        else:
            wire = registry.wire_format(route.provider.name, anthropic_version=anthropic_version)
            if self.temperature is not None and not getattr(wire, "sends_sampling", True):
                _warn_not_sent("temperature", wire)
            settings: dict[str, Any] = {
                "timeout": check_seconds(timeout, "timeout") or _pool.DEFAULT_TIMEOUT,
                "stall_timeout": check_seconds(stall_timeout, "stall_timeout"),
                "max_retries": max_retries,
                "limits": limits or _pool.DEFAULT_LIMITS,
                "http_client": http_client,
                "rate_limit": rate_limit,
                "http_transport": transport,
            }
            self.client = HTTPModelClient(route, wire, api_key, settings)

    @property
    def model(self) -> str:
        """The model requests name (and envelopes and traces show)."""
        return self.client.model

    @property
    def provider(self) -> str:
        """The provider envelopes show (``metadata.provider``)."""
        return self.client.provider

    @property
    def base_url(self) -> str | None:
        """The API's base URL (``None`` for a client that is not HTTP)."""
        return getattr(self.client, "base_url", None)

    def __repr__(self) -> str:
        return f"LLMEngine({self.model!r}, provider={self.provider!r}, base_url={self.base_url!r})"

    def endpoint(self) -> Endpoint:
        """Where HTTP requests go; raises ``AuthenticationError`` if no key is configured.

        Only for an engine built from a model name (an HTTP client).
        """
        if not isinstance(self.client, HTTPModelClient):
            raise TypeError(f"{type(self.client).__name__} is not an HTTP client: it has no endpoint")
        return self.client.endpoint()

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
            model=self.client.model,
            messages=messages,
            system=self.system,
            tools=tools,
            tool_choice=tool_choice,
            output_schema=output_schema,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        )

    def first_messages(self, task: Envelope) -> tuple[Message, ...]:
        """The messages that open a run on ``task`` (after any memory)."""
        text = task.task or ""
        if task.context:
            text = f"{text}\n\nContext:\n{task.context}"
        return (Message.user(text),)

    # -- running ------------------------------------------------------------------

    def prepare(
        self, *, tools: tuple[Any, ...], output: Any, memory: Any, tool_concurrency: int | None = None
    ) -> LLMSetup:
        """Check and prepare an agent's ``tools=``, ``output=``, ``memory=`` and ``tool_concurrency=`` (once).

        Called at the agent's construction.  Raises
        :class:`~lazybridge.errors.ConfigurationError` naming the argument: a
        tool function that cannot be described, an unsupported output type, a
        memory that is not a ``Memory``, a ``tool_choice`` naming none of the
        tools, a ``tool_concurrency`` that is not a whole number >= 1 or is
        given without tools.

        Outside an event loop this also loads the price tables, so that the
        agent's first run does not pay for the import (see ``_preload_prices``).
        """
        setup = prepare_setup(self, tools=tools, output=output, memory=memory, tool_concurrency=tool_concurrency)
        if isinstance(self.client, HTTPModelClient):
            _preload_prices()
        return setup

    async def run(self, task: Envelope, *, prepared: LLMSetup, run: RunContext) -> Envelope:
        """Answer ``task``: turns of model calls and tool calls until an answer.

        See :mod:`lazybridge.engines._loop`.  A max-turns, structured-output or
        provider failure after the first model call is returned as an error
        envelope that keeps what the run spent.

        Errors: raises the provider's :class:`~lazybridge.errors.ProviderError`
        when the first model call fails (after retries), and
        :class:`~lazybridge.errors.AuthenticationError` when no API key is
        configured; the Agent turns these into error envelopes.

        Cancellation: the HTTP request in flight is aborted and its
        connection closed (the provider sees the disconnect); a retry wait
        ends at once; tool calls running are cancelled and awaited (a sync
        tool's thread is abandoned, see :meth:`Tool.call
        <lazybridge.tools.Tool.call>`); the memory records nothing.  Nothing
        keeps running.
        """
        return await run_loop(self, prepared, task, run)

    def starts_nested_runs(self, prepared: LLMSetup) -> bool:
        """Only tools run user code or other agents; an agent with none starts no nested run."""
        return bool(prepared.tools)

    def stream(self, task: Envelope, *, prepared: LLMSetup, run: RunContext) -> LLMStream:
        """The run as text deltas (used by :meth:`Agent.stream <lazybridge.Agent.stream>`).

        The tool loop runs as in :meth:`run`, each turn streamed; see
        :class:`~lazybridge.engines._loop.LLMStream`.
        """
        return LLMStream(self, prepared, task, run)


def _refuse_connection_arguments(**given: Any) -> None:
    for argument, value in given.items():
        if value is not None:
            raise ConfigurationError(
                f"{argument}= does not apply when the model is a ModelClient (it is about HTTP "
                f"connections): configure the client itself, or leave {argument}= out"
            )


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


def _preload_prices() -> None:
    """Import the price tables now, when an agent is built outside an event loop.

    The first cost computation imports genai-prices (about a quarter of a
    second, pydantic included).  Done inside the first model call, that time
    lands in the first run's ``latency_ms`` -- the first branch of a panel
    always looked slowest.  Agents are usually built before anything runs
    (a script, the CLI), so the import is paid here instead -- at the
    agent's construction, not the engine's, so an engine alone stays cheap.  Inside a
    running event loop it is left to the first call, which imports in a
    worker thread rather than block the loop.
    """
    if pricing.loaded():
        return
    try:
        anyio.lowlevel.current_token()
    except RuntimeError:  # no event loop running in this thread: blocking is harmless
        pricing.load_now()

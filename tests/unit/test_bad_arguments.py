"""Every public constructor refuses a bad argument at once, naming it.

One table over the whole public surface, so that the constructors agree:
the exception class (``ConfigurationError`` -- a ``ValueError`` -- for a bad
value; ``TypeError`` where a wrong type is documented so) and a message that
names the argument.  A bad value found only at run time becomes a confusing
error envelope, a retried "connection" error, or a request that hangs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lazybridge import Agent, Budget, LLMEngine, Memory, ParallelAgent, Plan, RateLimit, Session, Step, Tool
from lazybridge.errors import ConfigurationError, PlanCompileError
from lazybridge.session import JsonlExporter
from lazybridge.testing import FakeProvider, MockAgent, Reply, ScriptedEngine

nan, inf = math.nan, math.inf


def search(query: str) -> str:
    """Search the web."""
    return query


def llm(**options: Any) -> LLMEngine:
    return LLMEngine(options.pop("model", "gpt-5.4-mini"), **{"api_key": "sk-test", **options})


def mock(name: str = "a") -> MockAgent:
    return MockAgent("ok", name=name)


MISSING = Path("/nonexistent-lazybridge-dir")

CASES: list[Any] = [
    # -- Agent
    pytest.param(lambda: Agent(), ConfigurationError, "engine", id="Agent-no-engine"),
    pytest.param(lambda: Agent(engine=42), TypeError, "engine", id="Agent-engine-type"),
    pytest.param(lambda: Agent(ScriptedEngine(), name=""), ConfigurationError, "name", id="Agent-name-empty"),
    pytest.param(lambda: Agent(ScriptedEngine(), name=5), ConfigurationError, "name", id="Agent-name-type"),
    pytest.param(lambda: Agent(ScriptedEngine(), session="x"), TypeError, "session", id="Agent-session-type"),
    pytest.param(lambda: Agent(ScriptedEngine(), description=5), TypeError, "description", id="Agent-description"),
    pytest.param(lambda: Agent(ScriptedEngine(), timeout=nan), ConfigurationError, "timeout", id="Agent-timeout-nan"),
    pytest.param(lambda: Agent(ScriptedEngine(), timeout=inf), ConfigurationError, "timeout", id="Agent-timeout-inf"),
    pytest.param(lambda: Agent(ScriptedEngine(), timeout=0), ConfigurationError, "timeout", id="Agent-timeout-0"),
    pytest.param(lambda: Agent(ScriptedEngine(), tools="search"), TypeError, "tools", id="Agent-tools-str"),
    pytest.param(
        lambda: Agent(llm(tool_choice="lookup"), tools=[search]),
        ConfigurationError,
        "tool_choice",
        id="Agent-tool_choice-names-no-tool",
    ),
    pytest.param(
        lambda: Agent(llm(tool_choice="required")), ConfigurationError, "tool_choice", id="Agent-tool_choice-no-tools"
    ),
    pytest.param(lambda: Agent(ScriptedEngine(), budget=5), ConfigurationError, "budget", id="Agent-budget-type"),
    # -- Budget
    pytest.param(lambda: MockAgent().run_batch(["a"], concurrency=0), ConfigurationError, "concurrency",
                 id="run_batch-concurrency-0"),
    pytest.param(lambda: MockAgent().run_batch("abc"), TypeError, "tasks", id="run_batch-tasks-str"),
    pytest.param(lambda: MockAgent().run_batch(5), TypeError, "tasks", id="run_batch-tasks-int"),
    pytest.param(lambda: MockAgent().run_batch(["a"], window=4), ConfigurationError, "window",
                 id="run_batch-window-unordered"),
    pytest.param(lambda: MockAgent().run_batch(["a"], ordered=True, concurrency=8, window=4), ConfigurationError,
                 "window", id="run_batch-window-small"),
    pytest.param(lambda: MockAgent().run_batch(["a"], checkpoint=3), TypeError, "checkpoint",
                 id="run_batch-checkpoint-type"),
    pytest.param(lambda: MockAgent().batch(["a"], budget=1.0), ConfigurationError, "budget", id="batch-budget-type"),
    pytest.param(lambda: Agent.map(MockAgent(), concurrency=0), ConfigurationError, "concurrency", id="map-concurrency"),
    pytest.param(lambda: Agent.map("agent"), TypeError, "agent", id="map-agent-type"),
    pytest.param(lambda: Budget(max_cost_usd=-1), ConfigurationError, "max_cost_usd", id="Budget-cost-negative"),
    pytest.param(
        lambda: RateLimit(requests_per_minute=0), ConfigurationError, "requests_per_minute", id="RateLimit-rpm-zero"
    ),
    pytest.param(
        lambda: RateLimit(tokens_per_minute=inf), ConfigurationError, "tokens_per_minute", id="RateLimit-tpm-inf"
    ),
    pytest.param(
        lambda: RateLimit(requests_per_minute="60"), ConfigurationError, "requests_per_minute", id="RateLimit-rpm-str"
    ),
    pytest.param(lambda: llm(rate_limit=60), ConfigurationError, "rate_limit", id="LLMEngine-rate-limit-type"),
    pytest.param(lambda: Budget(max_cost_usd=nan), ConfigurationError, "max_cost_usd", id="Budget-cost-nan"),
    pytest.param(lambda: Budget(max_cost_usd="1"), ConfigurationError, "max_cost_usd", id="Budget-cost-str"),
    pytest.param(lambda: Budget(max_tokens=-1), ConfigurationError, "max_tokens", id="Budget-tokens-negative"),
    pytest.param(lambda: Budget(max_tokens=1.5), ConfigurationError, "max_tokens", id="Budget-tokens-float"),
    pytest.param(lambda: Budget(max_requests=True), ConfigurationError, "max_requests", id="Budget-requests-bool"),
    pytest.param(
        lambda: Agent.parallel(mock(), budget=Budget), ConfigurationError, "budget", id="parallel-budget-class"
    ),
    # -- Agent.parallel / ParallelAgent
    pytest.param(lambda: Agent.parallel(), ConfigurationError, "agent", id="parallel-empty"),
    pytest.param(lambda: Agent.parallel(mock(), 42), TypeError, "argument 1", id="parallel-not-an-agent"),
    pytest.param(
        lambda: Agent.parallel(mock(), concurrency_limit=0),
        ConfigurationError,
        "concurrency_limit",
        id="parallel-concurrency_limit-0",
    ),
    pytest.param(
        lambda: ParallelAgent(mock(), step_timeout=inf), ConfigurationError, "step_timeout", id="parallel-step_timeout-inf"
    ),
    pytest.param(
        lambda: ParallelAgent(mock(), step_timeout=nan), ConfigurationError, "step_timeout", id="parallel-step_timeout-nan"
    ),
    pytest.param(lambda: Agent.parallel(mock(), name=""), ConfigurationError, "name", id="parallel-name-empty"),
    pytest.param(
        lambda: Agent(engine=llm(), tools=[search], tool_concurrency=0),
        ConfigurationError,
        "tool_concurrency",
        id="agent-tool_concurrency-0",
    ),
    pytest.param(lambda: Agent.parallel(mock(), quorum=0), ConfigurationError, "quorum", id="parallel-quorum-0"),
    pytest.param(
        lambda: Agent.parallel(mock("a"), mock("b"), quorum=3), ConfigurationError, "quorum", id="parallel-quorum-over-n"
    ),
    pytest.param(lambda: Agent.parallel(mock(), quorum=True), ConfigurationError, "quorum", id="parallel-quorum-bool"),
    pytest.param(lambda: Agent.parallel(mock(), fail_fast="yes"), TypeError, "fail_fast", id="parallel-fail_fast-str"),
    # -- Agent.race / RaceAgent
    pytest.param(lambda: Agent.race(), ConfigurationError, "agent", id="race-empty"),
    pytest.param(lambda: Agent.race(mock(), stagger=0), ConfigurationError, "stagger", id="race-stagger-0"),
    pytest.param(lambda: Agent.race(mock(), stagger=nan), ConfigurationError, "stagger", id="race-stagger-nan"),
    pytest.param(lambda: Agent.race(mock(), accept=True), TypeError, "accept", id="race-accept-not-callable"),
    pytest.param(lambda: Agent.race(mock(), step_timeout=-1), ConfigurationError, "step_timeout", id="race-step_timeout"),
    # -- Agent.chain
    pytest.param(lambda: Agent.chain(), ConfigurationError, "agent", id="chain-empty"),
    pytest.param(lambda: Agent.chain(mock(), "b"), TypeError, "argument 1", id="chain-not-an-agent"),
    pytest.param(lambda: Agent.chain(mock(), timeout=-1), ConfigurationError, "timeout", id="chain-timeout"),
    # -- Plan / Step
    pytest.param(lambda: Plan(), PlanCompileError, "Step", id="Plan-empty"),
    pytest.param(lambda: Plan(42), PlanCompileError, "Step", id="Plan-not-a-step"),
    pytest.param(
        lambda: Plan(Step(mock()), max_iterations=0), PlanCompileError, "max_iterations", id="Plan-max_iterations"
    ),
    pytest.param(lambda: Step(42), PlanCompileError, "target", id="Step-target-type"),
    pytest.param(lambda: Step(None), PlanCompileError, "target", id="Step-target-None"),
    # -- LLMEngine
    pytest.param(lambda: llm(model=""), ConfigurationError, "model", id="LLMEngine-model-empty"),
    pytest.param(lambda: llm(model="nope-1"), ConfigurationError, "model", id="LLMEngine-model-unknown"),
    pytest.param(lambda: llm(temperature=nan), ConfigurationError, "temperature", id="LLMEngine-temperature-nan"),
    pytest.param(lambda: llm(temperature=inf), ConfigurationError, "temperature", id="LLMEngine-temperature-inf"),
    pytest.param(lambda: llm(temperature=-0.5), ConfigurationError, "temperature", id="LLMEngine-temperature-negative"),
    pytest.param(lambda: llm(temperature=7), ConfigurationError, "temperature", id="LLMEngine-temperature-above-2"),
    pytest.param(lambda: llm(temperature="hot"), ConfigurationError, "temperature", id="LLMEngine-temperature-type"),
    pytest.param(lambda: llm(max_tokens=0), ConfigurationError, "max_tokens", id="LLMEngine-max_tokens-0"),
    pytest.param(lambda: llm(max_tokens=True), ConfigurationError, "max_tokens", id="LLMEngine-max_tokens-bool"),
    pytest.param(lambda: llm(max_retries=-1), ConfigurationError, "max_retries", id="LLMEngine-max_retries"),
    pytest.param(lambda: llm(timeout=inf), ConfigurationError, "timeout", id="LLMEngine-timeout-inf"),
    pytest.param(lambda: llm(timeout=nan), ConfigurationError, "timeout", id="LLMEngine-timeout-nan"),
    pytest.param(lambda: llm(stall_timeout=inf), ConfigurationError, "stall_timeout", id="LLMEngine-stall_timeout-inf"),
    pytest.param(lambda: llm(tool_timeout=inf), ConfigurationError, "tool_timeout", id="LLMEngine-tool_timeout-inf"),
    pytest.param(lambda: llm(tool_timeout=nan), ConfigurationError, "tool_timeout", id="LLMEngine-tool_timeout-nan"),
    pytest.param(lambda: llm(max_turns=0), ConfigurationError, "max_turns", id="LLMEngine-max_turns"),
    pytest.param(
        lambda: llm(max_output_retries=-1), ConfigurationError, "max_output_retries", id="LLMEngine-max_output_retries"
    ),
    pytest.param(lambda: llm(tool_choice=5), ConfigurationError, "tool_choice", id="LLMEngine-tool_choice-type"),
    pytest.param(lambda: llm(output_mode="json"), ConfigurationError, "output_mode", id="LLMEngine-output_mode"),
    pytest.param(
        lambda: llm(limits=httpx.Limits(max_connections=0)),
        ConfigurationError,
        "limits.max_connections",
        id="LLMEngine-limits-no-connections",
    ),
    pytest.param(
        lambda: llm(limits=httpx.Limits(max_connections=10, max_keepalive_connections=-1)),
        ConfigurationError,
        "limits.max_keepalive_connections",
        id="LLMEngine-limits-keepalive",
    ),
    pytest.param(lambda: llm(limits={"max": 1}), ConfigurationError, "limits", id="LLMEngine-limits-type"),
    pytest.param(lambda: llm(http_client="c"), ConfigurationError, "http_client", id="LLMEngine-http_client-type"),
    pytest.param(
        lambda: llm(base_url="http://localhost:99999/v1"), ConfigurationError, "base_url", id="LLMEngine-base_url-port"
    ),
    pytest.param(lambda: llm(base_url="http://"), ConfigurationError, "base_url", id="LLMEngine-base_url-no-host"),
    pytest.param(
        lambda: llm(base_url="http://local host/v1"), ConfigurationError, "base_url", id="LLMEngine-base_url-space"
    ),
    pytest.param(lambda: llm(base_url="ftp://x"), ConfigurationError, "base_url", id="LLMEngine-base_url-scheme"),
    pytest.param(lambda: llm(api_key="sk-test\n"), ConfigurationError, "api_key", id="LLMEngine-api_key-newline"),
    pytest.param(lambda: llm(api_key="sk test"), ConfigurationError, "api_key", id="LLMEngine-api_key-space"),
    pytest.param(lambda: llm(api_key=5), ConfigurationError, "api_key", id="LLMEngine-api_key-type"),
    pytest.param(
        lambda: llm(model="claude-haiku-4-5", anthropic_version="latest"),
        ConfigurationError,
        "anthropic_version",
        id="LLMEngine-anthropic_version",
    ),
    # -- Tool
    pytest.param(lambda: Tool.from_function(search, timeout=nan), ConfigurationError, "timeout", id="Tool-timeout-nan"),
    pytest.param(lambda: Tool.from_function(search, timeout=inf), ConfigurationError, "timeout", id="Tool-timeout-inf"),
    pytest.param(lambda: Tool.from_function(search, timeout=0), ConfigurationError, "timeout", id="Tool-timeout-0"),
    pytest.param(lambda: Tool.from_function(search, name="a b"), ConfigurationError, "name", id="Tool-name"),
    pytest.param(lambda: Tool.from_function(42), ConfigurationError, "callable", id="Tool-fn-type"),
    pytest.param(
        lambda: Tool.from_schema("t", "d", {"type": "string"}, search), ConfigurationError, "parameters", id="Tool-schema"
    ),
    # -- Session and exporters
    pytest.param(lambda: Session(queue_size=0), ConfigurationError, "queue_size", id="Session-queue_size-0"),
    pytest.param(lambda: Session(max_events=-1), ConfigurationError, "max_events", id="Session-max_events"),
    pytest.param(lambda: Session(db=MISSING / "events.sqlite"), ConfigurationError, "db=", id="Session-db-bad-path"),
    pytest.param(lambda: Session(db=5), TypeError, "db", id="Session-db-type"),
    pytest.param(lambda: Session(redact=5), TypeError, "redact", id="Session-redact-type"),
    pytest.param(lambda: Session(exporters=[42]), TypeError, "exporter", id="Session-exporter-type"),
    pytest.param(lambda: JsonlExporter(MISSING / "events.jsonl"), ConfigurationError, "path", id="JsonlExporter-path"),
    pytest.param(lambda: JsonlExporter(5), TypeError, "path", id="JsonlExporter-path-type"),
    # -- Memory
    pytest.param(lambda: Memory(max_turns=0), ConfigurationError, "max_turns", id="Memory-max_turns"),
    pytest.param(lambda: Memory(max_tokens=-1), ConfigurationError, "max_tokens", id="Memory-max_tokens"),
    # -- lazybridge.testing
    pytest.param(lambda: MockAgent(name=""), ConfigurationError, "name", id="MockAgent-name-empty"),
    pytest.param(lambda: MockAgent(delay=-1), ConfigurationError, "delay", id="MockAgent-delay-negative"),
    pytest.param(lambda: MockAgent(delay=nan), ConfigurationError, "delay", id="MockAgent-delay-nan"),
    pytest.param(lambda: ScriptedEngine(input_tokens=-1), ConfigurationError, "input_tokens", id="ScriptedEngine-tokens"),
    pytest.param(lambda: ScriptedEngine(cost_usd=nan), ConfigurationError, "cost_usd", id="ScriptedEngine-cost_usd"),
    pytest.param(lambda: FakeProvider(chat_server="vllm"), ConfigurationError, "chat_server", id="FakeProvider-chat_server"),
    pytest.param(lambda: FakeProvider(latency=-1), ConfigurationError, "latency", id="FakeProvider-latency"),
    pytest.param(lambda: FakeProvider(respond="hi"), TypeError, "respond", id="FakeProvider-respond-type"),
    pytest.param(lambda: Reply(status=99999), ConfigurationError, "status", id="Reply-status"),
    pytest.param(lambda: Reply(delay=-1), ConfigurationError, "delay", id="Reply-delay"),
    pytest.param(lambda: Reply(input_tokens=-5), ConfigurationError, "input_tokens", id="Reply-input_tokens"),
]


@pytest.mark.parametrize(("build", "error", "argument"), CASES)
def test_a_bad_argument_is_refused_at_construction(
    build: Callable[[], object], error: type[Exception], argument: str
) -> None:
    with pytest.raises(Exception) as caught:  # the exact class is asserted below
        build()
    assert type(caught.value) is error, f"{type(caught.value).__name__}: {caught.value}"
    assert argument in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("OPENAI_API_KEY", "sk-from-a-file\n", "OPENAI_API_KEY has a newline at its end"),
        ("OPENAI_BASE_URL", "http://", "the base URL in OPENAI_BASE_URL must start with http:// or https://"),
        ("OPENAI_BASE_URL", "http://localhost:70000/v1", "port"),
    ],
)
def test_a_bad_environment_variable_is_refused_at_construction_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=expected) as caught:
        LLMEngine("gpt-5.4-mini")
    assert "sk-from-a-file" not in str(caught.value)


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("sk-secret-123\n", "a newline at its end"),
        ("sk-secret-123\r\n", "a carriage return inside it"),
        ("\tsk-secret-123", "a tab at its start"),
        ("sk-secret 123", "a space inside it"),
        ("sk-secret\x00123", "U+0000 inside it"),
        ("sk-secret\u200b123", "U+200B inside it"),
        ("sk-secr\u00e9t-123", "U+00E9 inside it"),  # httpx would refuse it at the first request
    ],
)
def test_an_api_key_with_whitespace_says_which_character_and_never_shows_the_key(key: str, said: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        LLMEngine("gpt-5.4-mini", api_key=key)
    message = str(caught.value)
    assert said in message
    assert "secret" not in message and "secret" not in repr(caught.value)


def test_a_bad_base_url_never_shows_its_password() -> None:
    with pytest.raises(ConfigurationError, match="port") as caught:
        LLMEngine("gpt-5.4-mini", api_key="k", base_url="http://user:hunter2@localhost:99999/v1")
    assert "hunter2" not in str(caught.value)


def test_good_arguments_are_kept_normalised() -> None:
    """The checks refuse the bad and keep the good: whole floats, the limits object, the URL."""
    limits = httpx.Limits(max_connections=5, max_keepalive_connections=0)
    engine = LLMEngine(
        "compat/m", api_key="sk-ok", base_url="http://[::1]:8080/v1", temperature=1, limits=limits, timeout=3
    )
    assert engine.temperature == 1.0 and isinstance(engine.temperature, float)
    assert engine.base_url == "http://[::1]:8080/v1"
    assert Agent(llm(tool_choice="search"), tools=[search]).name == "agent"
    assert Session(queue_size=1, max_events=0).events is not None

"""The seed's examples against real LLMEngines on loopback, configured the way the docs show (env vars)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
import stamina

import lazybridge
from lazybridge import Agent, Session
from lazybridge.engines.llm import LLMEngine
from lazybridge.testing import FakeProvider, Reply

KEY = "sk-PLANTED-secret-key-7f3a9c"

ENV = {
    "ANTHROPIC_API_KEY": KEY,
    "OPENAI_API_KEY": KEY,
    "GEMINI_API_KEY": KEY,
    "DEEPSEEK_API_KEY": KEY,
}


@pytest.fixture
def fake(shared_fake_provider: tuple[FakeProvider, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    """The fake, reset, with every provider's base URL and key variable pointing at it."""
    fake, base_url = shared_fake_provider
    fake.reset()
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "GEMINI_BASE_URL", "DEEPSEEK_BASE_URL"):
        monkeypatch.setenv(name, base_url)
    monkeypatch.delenv("GOOGLE_GEMINI_BASE_URL", raising=False)
    with stamina.set_testing(True, attempts=10, cap=True):
        yield fake


def test_parallel_panel_like_the_seed(fake: FakeProvider, capsys: pytest.CaptureFixture[str]) -> None:
    """Step 8's panel: three providers' agents, one task, one envelope with the labelled join."""
    fake.push("Agent frameworks fall into three camps: graph-based and more.", model="claude-haiku-4-5")
    fake.push("The trade-offs centre on flexibility versus determinism.", model="gpt-5.4-mini")
    fake.push("You can think of agent frameworks along two axes.", model="gemini-3-flash-preview")
    researcher_a = Agent(engine=LLMEngine("claude-haiku-4-5"), name="claude_view")
    researcher_b = Agent(engine=LLMEngine("gpt-5.4-mini"), name="gpt_view")
    researcher_c = Agent(engine=LLMEngine("gemini-3-flash-preview"), name="gemini_view")
    panel = Agent.parallel(researcher_a, researcher_b, researcher_c, verbose=True)

    env = panel("What are the trade-offs of agent frameworks in 2026?")

    assert env.ok, env.error
    assert env.text() == (
        "[claude_view]\nAgent frameworks fall into three camps: graph-based and more.\n\n"
        "[gpt_view]\nThe trade-offs centre on flexibility versus determinism.\n\n"
        "[gemini_view]\nYou can think of agent frameworks along two axes."
    )
    assert [b.metadata.provider for b in env.payload] == ["anthropic", "openai", "gemini"]
    for branch in env.payload:
        assert branch.metadata.run_id.startswith("run_")
        assert branch.metadata.cost_usd > 0
    assert env.metadata.cost_usd == pytest.approx(sum(b.metadata.cost_usd for b in env.payload))
    assert {r.last_user_text for r in fake.requests} == {
        "What are the trade-offs of agent frameworks in 2026?"
    }

    out = capsys.readouterr().out
    assert "[parallel ▶ 3 branches]" in out
    for name, model in [("claude_view", "claude-haiku-4-5"), ("gpt_view", "gpt-5.4-mini")]:
        assert f"[branch {name} model={model}] started" in out
        assert re.search(rf"\[branch {name}\] done cost=\$0\.\d{{5}}", out)
    assert "[branch claude_view] assistant: Agent frameworks fall into three camps:" in out
    assert re.search(r"\[done\] branches=3 total_cost=\$0\.\d{5} max_latency=\d+ms", out)


def test_multi_source_search_pipeline(fake: FakeProvider) -> None:
    """Parallel inside a chain: the labelled join of three searches is the synthesiser's task."""
    fake.respond = lambda request: (
        "synthesis of " + request.last_user_text.replace("\n", " | ")
        if "synthesise" in str(request.body)
        else f"{request.model} found facts"
    )
    searchers = [
        Agent(
            engine=LLMEngine("claude-haiku-4-5", system=f"Look up {who}-specific facts."),
            name=f"{who}_search",
        )
        for who in ("anthropic", "openai", "google")
    ]
    synthesiser = Agent(
        engine=LLMEngine(
            "claude-opus-4-7", system="You synthesise multi-source research into one tight paragraph."
        ),
        name="synthesiser",
    )
    pipeline = Agent.chain(Agent.parallel(*searchers), synthesiser)

    env = pipeline("How does each provider implement structured output?")

    assert env.ok, env.error
    assert env.text().startswith("synthesis of [anthropic_search] | claude-haiku-4-5 found facts")
    assert "[google_search]" in env.text()
    assert len(fake.requests) == 4
    assert fake.requests[-1].model == "claude-opus-4-7"
    assert env.metadata.cost_usd > 0 and env.metadata.input_tokens == 4 * 12


def test_sync_calls_close_their_clients(fake: FakeProvider) -> None:
    """Each sync call runs its own loop and closes its pooled client: nothing leaks (warnings are errors)."""
    a = Agent(engine=LLMEngine("deepseek-v4-flash"), name="ds")
    for _ in range(3):
        assert a("ping").ok
    assert len(fake.requests) == 3


def test_secrets_never_leak(
    fake: FakeProvider, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """A planted key appears in no repr, envelope, event, log line, trace line or error message."""
    caplog.set_level(logging.DEBUG)
    fake.push(Reply.error(401, f"Incorrect API key provided: {KEY}."), model="gpt-5.4-mini")
    fake.push(
        Reply.error(429, f"quota for {KEY} exceeded", kind="insufficient_quota"), model="deepseek-v4-flash"
    )
    session = Session()
    agents = [
        Agent(engine=LLMEngine(model), name=model.split("-")[0], session=session, verbose=True)
        for model in ("claude-haiku-4-5", "gpt-5.4-mini", "gemini-3-flash-preview", "deepseek-v4-flash")
    ]
    unreachable = Agent(engine=LLMEngine("claude-haiku-4-5", base_url="http://127.0.0.1:9"), session=session)
    env = Agent.parallel(*agents, unreachable, session=session, verbose=True)("hello")

    assert all(request.carries_key(KEY) for request in fake.requests)  # the key was sent ...
    errors = [b.error for b in env if b.error is not None]
    assert [e.type for e in errors] == ["AuthenticationError", "RateLimitError", "APIConnectionError"]
    assert "Incorrect API key provided: ********." in errors[0].message  # ... and scrubbed from echoes
    engine = agents[0].engine
    assert isinstance(engine, LLMEngine)
    haystack = "\n".join(
        [
            repr(engine),
            repr(engine.endpoint()),
            repr(engine.endpoint().api_key),
            str(vars(engine)),
            repr(agents[0]),
            repr(env),
            env.to_json(),
            env.text(),
            *(repr(event) for event in session.events),
            caplog.text,
            *capsys.readouterr(),
        ]
    )
    assert "hello" in haystack and "AuthenticationError" in haystack  # the haystack is real
    assert KEY not in haystack
    assert KEY[3:] not in haystack


def test_unknown_model_lists_what_is_known() -> None:
    """A model no provider claims is refused at construction, listing the known families."""
    with pytest.raises(
        lazybridge.ConfigurationError, match=r"claude-\*.*gpt-\*.*gemini-\*.*deepseek-\*.*ollama/"
    ):
        LLMEngine("llama-3-70b")

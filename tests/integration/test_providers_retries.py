"""Retries are told to the run's Session and the ``lazybridge`` logger -- never printed unasked.

And a stream that breaks off before it produced any text is retried like a
request; one that already delivered text is not.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest
import stamina
from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

from lazybridge import Agent, Session
from lazybridge.engines.llm import LLMEngine
from lazybridge.errors import StreamError
from lazybridge.testing import FakeProvider, Reply

KEY = "sk-retries-test-0123456789"

MODELS = ["claude-haiku-4-5", "gpt-5.4-mini", "gemini-3-flash-preview"]


def agent(model: str, base_url: str, session: Session | None = None, **kwargs: object) -> Agent:
    engine = LLMEngine(model, base_url=base_url, api_key=KEY, **kwargs)  # type: ignore[arg-type]
    return Agent(engine=engine, name="a", session=session)


SCRIPT = textwrap.dedent(
    """
    import stamina.instrumentation
    hooks = stamina.instrumentation.get_on_retry_hooks()

    from lazybridge import Agent, LLMEngine
    from lazybridge.testing import FakeProvider, Reply, serve_fake_provider

    fake = FakeProvider([Reply.error(429, headers={"retry-after-ms": "0"}), Reply.error(503), "done"])
    with serve_fake_provider(fake) as url:
        engine = LLMEngine("claude-haiku-4-5", base_url=url, api_key="sk-not-a-secret-123", max_retries=2)
        env = Agent(engine=engine)("hi")
    assert env.ok and env.text() == "done" and len(fake.requests) == 3, (env, fake.requests)
    assert stamina.instrumentation.get_on_retry_hooks() == hooks, "stamina's hooks changed"
    print("ok")
    """
)


def test_retries_print_nothing_when_logging_is_not_configured() -> None:
    """A plain script whose request is retried twice writes nothing on stderr; stamina's hooks stay as they were."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr
    assert done.stderr == ""


@pytest.mark.anyio
@pytest.mark.usefixtures("close_pool")
async def test_the_session_gets_a_model_retry_event_per_retry(
    fake: FakeProvider, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each retry is a model_retry event (attempt, wait, reason) between the request and the response,
    and an INFO record on the lazybridge.providers logger."""
    fake.push(Reply.error(429, "slow down", headers={"retry-after-ms": "0"}), Reply.error(503), "done")
    session = Session()
    with caplog.at_level(logging.INFO, logger="lazybridge"):
        env = await agent("claude-haiku-4-5", base_url, session).run("x")
    assert env.ok and env.text() == "done"
    kinds = [e.kind for e in session.events if e.kind.startswith("model_")]
    assert kinds == ["model_request", "model_retry", "model_retry", "model_response"]
    first, second = session.events.query("model_retry")
    assert (first.data["attempt"], second.data["attempt"]) == (2, 3)
    assert first.data["wait_s"] == 0.0  # stamina.set_testing (the fixture) makes waits zero
    assert first.data["reason"] == "RateLimitError: anthropic 429: slow down" or (
        first.data["reason"].startswith("RateLimitError") and "slow down" in first.data["reason"]
    )
    assert (first.data["status_code"], second.data["status_code"]) == (429, 503)
    assert first.data["model"] == "claude-haiku-4-5" and first.data["stream"] is False
    records = [r for r in caplog.records if r.name == "lazybridge.providers"]
    assert len(records) == 2 and all(r.levelno == logging.INFO for r in records)
    assert "attempt 2 of 3" in records[0].getMessage()
    assert KEY not in caplog.text


@pytest.mark.anyio
@pytest.mark.usefixtures("close_pool")
async def test_stamina_retry_hooks_are_not_called(fake: FakeProvider, base_url: str) -> None:
    """Retrying goes through no process-wide stamina hook, and leaves the configured ones in place."""
    seen: list[RetryDetails] = []
    set_on_retry_hooks([seen.append])
    try:
        hooks = get_on_retry_hooks()
        fake.push(Reply.error(429, headers={"retry-after-ms": "0"}), "done")
        env = await agent("gpt-5.4-mini", base_url).run("x")
        assert env.ok and len(fake.requests) == 2
        assert seen == []
        assert get_on_retry_hooks() == hooks
    finally:
        set_on_retry_hooks(None)


@pytest.mark.anyio
@pytest.mark.usefixtures("close_pool")
async def test_no_retries_when_stamina_is_deactivated(fake: FakeProvider, base_url: str) -> None:
    """stamina.set_active(False) still turns retries off."""
    fake.push(Reply.error(503), "done")
    stamina.set_active(False)
    try:
        env = await agent("gpt-5.4-mini", base_url).run("x")
    finally:
        stamina.set_active(True)
    assert env.error is not None and env.error.type == "OverloadedError"
    assert len(fake.requests) == 1


# -- streams -------------------------------------------------------------------------


async def collect(a: Agent) -> str:
    out: list[str] = []
    async for delta in a.stream("x"):
        out.append(delta)
    return "".join(out)


@pytest.mark.anyio
@pytest.mark.usefixtures("close_pool")
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("failure", ["cut-at-once", "429", "503"])
async def test_a_stream_that_fails_before_any_text_is_retried(
    model: str, failure: str, fake: FakeProvider, base_url: str
) -> None:
    """A stream refused (429/503) or whose connection drops before its first delta is sent again."""
    first = {
        "cut-at-once": Reply(text="never seen", cut_after=0),
        "429": Reply.error(429),
        "503": Reply.error(503),
    }[failure]
    fake.push(first, "fine now")
    session = Session()
    assert await collect(agent(model, base_url, session)) == "fine now"
    assert len(fake.requests) == 2 and all(r.stream for r in fake.requests)
    (retry,) = session.events.query("model_retry")
    assert retry.data["stream"] is True and retry.data["attempt"] == 2


@pytest.mark.anyio
@pytest.mark.usefixtures("close_pool")
async def test_a_stream_cut_after_its_opening_events_but_before_text_is_retried(
    fake: FakeProvider, base_url: str
) -> None:
    """Anthropic: message_start, ping and an empty text block arrived, no delta yet -- still retried."""
    fake.push(Reply(text="never seen", cut_after=3), "fine now")
    assert await collect(agent("claude-haiku-4-5", base_url)) == "fine now"
    assert len(fake.requests) == 2


@pytest.mark.anyio
@pytest.mark.usefixtures("close_pool")
async def test_a_stream_stalled_before_any_text_is_retried(fake: FakeProvider, base_url: str) -> None:
    """A stream silent from the start for stall_timeout is aborted and sent again."""
    fake.push(Reply(text="never seen", stall_after=0), "fine now")
    assert await collect(agent("gpt-5.4-mini", base_url, stall_timeout=0.3)) == "fine now"
    assert len(fake.requests) == 2


@pytest.mark.anyio
@pytest.mark.usefixtures("close_pool")
@pytest.mark.parametrize(
    ("model", "cut_after"), [("claude-haiku-4-5", 5), ("gpt-5.4-mini", 3), ("gemini-3-flash-preview", 2)]
)
async def test_a_stream_that_delivered_text_is_never_retried(
    model: str, cut_after: int, fake: FakeProvider, base_url: str
) -> None:
    """Once a delta reached the caller, a broken stream is a StreamError: no request is repeated."""
    fake.push(Reply(text="alpha beta gamma delta epsilon zeta eta theta", cut_after=cut_after), "fine now")
    deltas: list[str] = []
    with pytest.raises(StreamError, match="broke off"):
        async for delta in agent(model, base_url).stream("x"):
            deltas.append(delta)
    assert deltas
    assert len(fake.requests) == 1


@pytest.mark.anyio
@pytest.mark.usefixtures("close_pool")
async def test_stream_retries_share_the_request_budget(fake: FakeProvider, base_url: str) -> None:
    """Opening failures and early cuts together get max_retries + 1 attempts, not more."""
    fake.push(Reply.error(503), Reply(text="x", cut_after=0), Reply(text="y", cut_after=0), "too late")
    with pytest.raises(StreamError, match="broke off"):
        await collect(agent("gpt-5.4-mini", base_url, max_retries=2))
    assert len(fake.requests) == 3

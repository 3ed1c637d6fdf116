"""Shared account rate limits over loopback: the fake provider holds each key to a token bucket.

Each test counts what the *server* saw: how many requests it answered 429
(``fake.rate_limited``), and when requests arrived (``RecordedRequest.received_at``).
Stamina's testing mode (the ``fake`` fixture) makes retry back-off zero, so
every wait measured here is the rate limiter's.
"""

from __future__ import annotations

import threading
import time
import uuid

import anyio
import pytest

import lazybridge
from lazybridge import Agent, LLMEngine, RateLimit
from lazybridge.envelope import Envelope
from lazybridge.testing import FakeProvider, FakeRateLimit, RecordedRequest, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

RATE = 100  # requests per second the fake account allows
WINDOW = 0.75  # its bucket holds 75 requests: an unpaced fan-out (100 at once) overflows it
BRANCHES = 300


@pytest.fixture
def key() -> str:
    """A key of its own per test: a rate-limit account (and its configured limits) is per process."""
    return f"sk-ratelimit-{uuid.uuid4().hex}"


def fan_out(
    key: str, base_url: str, model: str, *, rate_limit: RateLimit | None = None, branches: int = BRANCHES
) -> Agent:
    engine = LLMEngine(model, base_url=base_url, api_key=key, rate_limit=rate_limit, max_retries=5)
    return Agent.parallel(*(Agent(engine=engine, name=f"b{i}") for i in range(branches)))


async def run(agent: Agent, task: str = "go", limit: float = 60) -> Envelope:
    with anyio.fail_after(limit):
        return await agent.run(task)


@pytest.mark.parametrize("model", ["gpt-5.4-mini", "claude-haiku-4-5"])
async def test_configured_limit_fan_out_gets_no_429(fake: FakeProvider, base_url: str, key: str, model: str) -> None:
    fake.rate_limit = FakeRateLimit(requests=int(RATE * WINDOW), window=WINDOW)
    env = await run(fan_out(key, base_url, model, rate_limit=RateLimit(requests_per_minute=RATE * 60)))

    assert env.ok, env.error
    assert fake.rate_limited == 0
    assert len(fake.requests) == BRANCHES


@pytest.mark.parametrize(
    ("model", "rate", "branches"),
    [
        ("gpt-5.4-mini", RATE, BRANCHES),
        # Anthropic's resets are wall-clock times, read as measured from the send: on a
        # slow client (asyncio debug mode) the learned rate is a cautious underestimate.
        ("claude-haiku-4-5", 50, 100),
    ],
)
async def test_learned_limit_fan_out_gets_at_most_2_percent_429(
    fake: FakeProvider, base_url: str, key: str, model: str, rate: int, branches: int
) -> None:
    fake.rate_limit = FakeRateLimit(requests=int(rate * WINDOW), window=WINDOW)
    env = await run(fan_out(key, base_url, model, branches=branches))

    assert env.ok, env.error
    assert fake.rate_limited <= branches * 0.02
    assert len(fake.requests) == branches + fake.rate_limited


async def test_a_429_pauses_the_whole_account_once(fake: FakeProvider, base_url: str, key: str) -> None:
    """Five requests get a 429 naming 0.5 s; during those 0.5 s the server sees no request at all."""
    pause = 0.5
    burst = [Reply.error(429, headers={"retry-after": str(pause)}) for _ in range(5)]
    fake.push(*burst)
    engine = LLMEngine("gpt-5.4-mini", base_url=base_url, api_key=key, max_retries=3)
    agent = Agent.parallel(*(Agent(engine=engine, name=f"b{i}") for i in range(40)))
    env = await run(agent)

    assert env.ok, env.error
    account = engine.endpoint().account
    # The server and the client share time.monotonic(); requests that were already on
    # their way when the client learned of the 429 may land just after it.
    start, end = account.paused_since + 0.1, account.paused_until - 0.02
    assert end - start > 0.3
    during = [r for r in fake.requests if start < r.received_at < end]
    assert during == [], [round(r.received_at - account.paused_since, 3) for r in during]
    assert account.pauses == 1
    assert len(fake.requests) == 45


async def test_two_event_loops_in_two_threads_share_one_account(fake: FakeProvider, base_url: str, key: str) -> None:
    """Each thread alone would stay under the server's limit; together they would not, unless shared."""
    fake.rate_limit = FakeRateLimit(requests=100, window=1.0)
    limit = RateLimit(requests_per_minute=100 * 60)
    results: list[Envelope] = []

    def one_thread(backend: str) -> None:
        engine = LLMEngine("gpt-5.4-mini", base_url=base_url, api_key=key, rate_limit=limit, max_retries=0)
        panel = Agent.parallel(*(Agent(engine=engine, name=f"b{i}") for i in range(150)))

        async def main() -> None:
            try:
                results.append(await panel.run("go"))
            finally:
                await lazybridge.aclose()

        anyio.run(main, backend=backend)

    threads = [threading.Thread(target=one_thread, args=(b,)) for b in ("asyncio", "trio")]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    await anyio.to_thread.run_sync(lambda: [t.join(60) for t in threads])
    elapsed = time.monotonic() - started

    assert len(results) == 2 and all(env.ok for env in results), [e.error for e in results]
    assert fake.rate_limited == 0
    # 300 requests at 100/s with a 10-request burst cannot take less than 2.9 s.
    assert elapsed >= 2.4


async def test_cancelling_a_branch_waiting_for_the_limiter_leaves_no_trace(
    fake: FakeProvider, base_url: str, key: str
) -> None:
    engine = LLMEngine(
        "gpt-5.4-mini", base_url=base_url, api_key=key, rate_limit=RateLimit(requests_per_minute=60)
    )
    account = engine.endpoint().account
    agent = Agent(engine=engine)
    assert (await run(agent)).ok  # takes the one-request burst: the next waits a second
    before = account.requests.tat

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(agent.run, "never sent")
            await anyio.wait_all_tasks_blocked()
            assert account.waiting == 1
            assert account.requests.tat > before  # it holds a place in the queue
            scope.cancel()

    assert account.waiting == 0
    assert account.requests.tat == pytest.approx(before)  # the place was given back
    assert len(fake.requests) == 1


async def test_rate_waits_do_not_count_against_step_timeout(fake: FakeProvider, base_url: str, key: str) -> None:
    """Six branches at five requests a second: the last waits 1 s for its turn, under a 0.5 s step_timeout."""
    engine = LLMEngine(
        "gpt-5.4-mini", base_url=base_url, api_key=key, rate_limit=RateLimit(requests_per_minute=300)
    )
    panel = Agent.parallel(*(Agent(engine=engine, name=f"b{i}") for i in range(6)), step_timeout=0.5)
    env = await run(panel)

    assert env.ok, env.error
    assert len(fake.requests) == 6


def test_busiest_counts_the_most_requests_within_any_window() -> None:
    fake = FakeProvider()
    for at in (0.0, 0.5, 0.9, 1.0, 1.4, 1.45, 3.0, 5.0):
        fake.requests.append(RecordedRequest("POST", "/", "", (), {}, "openai", False, "m", at))
    assert fake.busiest(1.0) == 5  # 0.5 .. 1.5 holds five, and no other second more
    assert fake.busiest(0.1) == 2 and fake.busiest(10.0) == 8
    assert FakeProvider().busiest(1.0) == 0

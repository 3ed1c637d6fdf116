"""Shared account rate limits over loopback: the fake provider holds each key to a token bucket.

Each test counts what the *server* saw: how many requests it answered 429
(``fake.rate_limited``), and when requests arrived (``RecordedRequest.received_at``).
Stamina's testing mode (the ``fake`` fixture) makes retry back-off zero, so
every wait measured here is the rate limiter's.
"""

from __future__ import annotations

import re
import threading
import time
import uuid

import anyio
import attrs
import httpx
import pytest

import lazybridge
from lazybridge import Agent, LLMEngine, RateLimit, Session
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
    # The client is configured at exactly the server's rate, so the server's bucket is
    # all the slack there is for arrival jitter: 2 s of it (200 requests), which a
    # server thread stalled by a loaded machine needs, and which the 300 branches sent
    # unpaced still overflow at once.
    fake.rate_limit = FakeRateLimit(requests=RATE * 2, window=2.0)
    panel = fan_out(key, base_url, model, rate_limit=RateLimit(requests_per_minute=RATE * 60))
    env = await run(panel)

    assert env.ok, env.error
    assert fake.rate_limited == 0
    assert len(fake.requests) == BRANCHES
    # Paced at the configured rate from the first request: not slow start, nor 90 % of headers.
    assert panel.agents[0].engine.endpoint().account.requests.rate == RATE


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
    """Three 429s naming 0.6 s stop every request of the account for 0.6 s, once, then they go on."""
    pause = 0.6
    # The three first requests are answered together (once the third has arrived), so
    # the client learns of three 429s at once: one pause, not three.
    burst = [attrs.evolve(Reply.error(429, headers={"retry-after": str(pause)}), after_requests=3)] * 3
    fake.push(*burst)
    sent: list[float] = []

    async def record(request: httpx.Request) -> None:
        sent.append(time.monotonic())

    # A configured 20 requests/s spreads the 24 branches over ~1.2 s, so without the
    # pause requests would leave all through it.  An event hook on a client the test
    # owns records when each request left: the server's arrival times also carry the
    # in-flight lag of a request the account let go just before it learned of the
    # 429, which reached 0.5 s on a loaded 2-core machine.
    async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
        engine = LLMEngine(
            "gpt-5.4-mini",
            base_url=base_url,
            api_key=key,
            max_retries=3,
            rate_limit=RateLimit(requests_per_minute=20 * 60),
            http_client=client,
        )
        agent = Agent.parallel(*(Agent(engine=engine, name=f"b{i}") for i in range(24)))
        env = await run(agent)

    assert env.ok, env.error
    account = engine.endpoint().account
    since, until = account.paused_since, account.paused_until
    assert account.pauses == 1 and until - since >= pause
    # The client and the server share time.monotonic().
    assert [round(t - since, 3) for t in sent if since + 0.1 < t < until] == []
    # What the server saw during the pause had left before it began.
    in_flight = sum(t <= since for t in sent) - sum(r.received_at <= since for r in fake.requests)
    seen = [r for r in fake.requests if since < r.received_at < until]
    assert len(seen) <= in_flight, [round(r.received_at - since, 3) for r in seen]
    assert len(fake.requests) == 24 + len(burst)


async def test_two_event_loops_in_two_threads_share_one_account(fake: FakeProvider, base_url: str, key: str) -> None:
    """Each thread alone would stay under the server's limit; together they would not, unless shared."""
    # A bucket of 1.5 s (150 requests) leaves room for a server thread stalled by a
    # loaded machine; unshared, the two threads would send their 400 requests in 2 s,
    # 50 more than the server allows in that time.
    fake.rate_limit = FakeRateLimit(requests=150, window=1.5)
    limit = RateLimit(requests_per_minute=100 * 60)
    results: list[Envelope] = []

    def one_thread(backend: str) -> None:
        engine = LLMEngine("gpt-5.4-mini", base_url=base_url, api_key=key, rate_limit=limit, max_retries=0)
        panel = Agent.parallel(*(Agent(engine=engine, name=f"b{i}") for i in range(200)))

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
    # 400 requests at 100/s with a 10-request burst cannot take less than 3.9 s.
    assert elapsed >= 3.4


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


# -- what a user sees: rate_limit_wait events ------------------------------------------------


def waits(session: Session) -> list[tuple[str | None, str, float]]:
    """The session's rate_limit_wait events as (branch, reason, seconds), shortest wait first."""
    found = [(e.branch, e.data["reason"], e.data["wait_s"]) for e in session.events.query("rate_limit_wait")]
    return sorted(found, key=lambda w: w[2])


async def test_each_request_that_waits_for_its_turn_emits_one_rate_limit_wait_event(
    fake: FakeProvider, base_url: str, key: str
) -> None:
    """Four branches at five requests a second (a one-request burst): the first goes at once,
    the others wait 0.2, 0.4 and 0.6 s, each told once, with the limit that held it."""
    engine = LLMEngine(
        "gpt-5.4-mini", base_url=base_url, api_key=key, rate_limit=RateLimit(requests_per_minute=300)
    )
    session = Session()
    panel = Agent.parallel(*(Agent(engine=engine, name=f"b{i}") for i in range(4)), session=session)
    env = await run(panel)

    assert env.ok, env.error
    found = waits(session)
    assert [reason for _, reason, _ in found] == ["requests"] * 3
    assert [wait for _, _, wait in found] == pytest.approx([0.2, 0.4, 0.6], abs=0.1)
    assert len({branch for branch, _, _ in found}) == 3  # three branches, one event each
    assert len(fake.requests) == 4


async def test_a_token_limit_wait_names_tokens(fake: FakeProvider, base_url: str, key: str) -> None:
    engine = LLMEngine(
        "gpt-5.4-mini", base_url=base_url, api_key=key, rate_limit=RateLimit(tokens_per_minute=600)
    )
    session = Session()
    panel = Agent.parallel(*(Agent(engine=engine, name=f"b{i}") for i in range(2)), session=session)
    env = await run(panel)

    assert env.ok, env.error
    ((_, reason, wait),) = waits(session)
    assert reason == "tokens" and wait > 0.1  # 10 tokens a second: any request is over a tenth of a second


async def test_waits_before_the_limits_are_known_name_slow_start(
    fake: FakeProvider, base_url: str, key: str
) -> None:
    """Nothing configured, no answer yet: five requests go at once, the next leave 20 a second.

    The server holds every answer until the eighth request has arrived, so the
    sixth to eighth wait in slow start (~0.05, 0.1 and 0.15 s), each told once.
    """
    fake.push(*[attrs.evolve(Reply(text="ok"), after_requests=8)] * 8)
    engine = LLMEngine("gpt-5.4-mini", base_url=base_url, api_key=key)
    session = Session()
    panel = Agent.parallel(*(Agent(engine=engine, name=f"b{i}") for i in range(8)), session=session)
    env = await run(panel)

    assert env.ok, env.error
    found = waits(session)
    assert [reason for _, reason, _ in found] == ["slow_start"] * 3
    first, second, third = (wait for _, _, wait in found)
    # 20 a second: the eighth cannot leave before 0.15 s after the bucket started
    # (each wait counts from its own request's start, a little after that).
    assert 0 < first <= second <= third < 1.0 and third >= 0.08
    assert len(fake.requests) == 8


async def test_a_retry_waiting_out_a_429_pause_names_the_pause(fake: FakeProvider, base_url: str, key: str) -> None:
    """The 429 names 0.3 s: the retry (no back-off: stamina's testing mode) waits out the account's pause,
    plus the random spread of up to the pause's length that requests leave an unknown-rate pause with."""
    fake.push(Reply.error(429, headers={"retry-after": "0.3"}), "done")
    session = Session()
    engine = LLMEngine("gpt-5.4-mini", base_url=base_url, api_key=key, max_retries=2)
    env = await run(Agent(engine=engine, name="a", session=session))

    assert env.ok, env.error
    kinds = [e.kind for e in session.events if e.kind.startswith(("model_", "rate_"))]
    assert kinds == ["model_request", "model_retry", "rate_limit_wait", "model_response"]
    ((_, reason, wait),) = waits(session)
    assert reason == "paused" and 0.28 <= wait <= 0.7


async def test_a_request_that_did_not_wait_emits_no_rate_limit_wait(
    fake: FakeProvider, base_url: str, key: str
) -> None:
    engine = LLMEngine(
        "gpt-5.4-mini", base_url=base_url, api_key=key, rate_limit=RateLimit(requests_per_minute=6000)
    )
    session = Session()
    panel = Agent.parallel(*(Agent(engine=engine, name=f"b{i}") for i in range(5)), session=session)
    env = await run(panel)

    assert env.ok, env.error
    assert waits(session) == []  # a burst of 10: nobody waited
    assert len(session.events.query("model_response")) == 5


async def test_the_verbose_trace_shows_the_wait(
    fake: FakeProvider, base_url: str, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = LLMEngine(
        "gpt-5.4-mini", base_url=base_url, api_key=key, rate_limit=RateLimit(requests_per_minute=600)
    )
    panel = Agent.parallel(*(Agent(engine=engine, name=f"b{i}") for i in range(2)), verbose=True)
    env = await run(panel)

    assert env.ok, env.error
    lines = [line for line in capsys.readouterr().out.splitlines() if "rate limit" in line]
    assert len(lines) == 1
    assert re.fullmatch(r"\[branch b[01]\] waited 0\.\d\ds for the rate limit \(requests\)", lines[0]), lines


async def test_a_stream_reopened_after_it_broke_off_reports_its_rate_limit_wait(
    fake: FakeProvider, base_url: str, key: str
) -> None:
    """The first stream drops its connection before any text; reopening it waits for the
    account's next turn (five a second, a one-request burst: 0.2 s), told like any wait."""
    fake.push(Reply(text="lost", cut_after=0), Reply(text="found"))
    engine = LLMEngine(
        "gpt-5.4-mini", base_url=base_url, api_key=key, rate_limit=RateLimit(requests_per_minute=300)
    )
    session = Session()
    agent = Agent(engine=engine, name="a", session=session)
    with anyio.fail_after(30):
        text = "".join([delta async for delta in agent.stream("go")])

    assert text == "found"
    assert len(fake.requests) == 2
    (wait,) = session.events.query("rate_limit_wait")
    assert wait.data["stream"] is True and wait.data["reason"] == "requests"
    assert wait.data["wait_s"] >= 0.1


async def test_a_streamed_request_that_waits_emits_its_rate_limit_wait(
    fake: FakeProvider, base_url: str, key: str
) -> None:
    engine = LLMEngine(
        "gpt-5.4-mini", base_url=base_url, api_key=key, rate_limit=RateLimit(requests_per_minute=300)
    )
    session = Session()
    agent = Agent(engine=engine, name="a", session=session)
    assert (await run(agent)).ok  # takes the one-request burst: the stream waits 0.2 s
    with anyio.fail_after(30):
        text = "".join([delta async for delta in agent.stream("go")])

    assert text
    (wait,) = session.events.query("rate_limit_wait")
    assert wait.data["stream"] is True and wait.data["reason"] == "requests"
    assert wait.data["wait_s"] == pytest.approx(0.2, abs=0.1)

"""The account limiter's arithmetic and the providers' rate-limit headers, with a fake clock.

The loopback behaviour (pacing a fan-out, pauses, threads) is in
tests/integration/test_rate_limits.py; here only what needs no socket.
"""

from __future__ import annotations

import datetime

import pytest

from lazybridge import RateLimit
from lazybridge.providers._ratelimit import LEARNED_SHARE, Account, _learn, _seconds

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("raw", "seconds"), [("6m0s", 360.0), ("20ms", 0.02), ("1h2m3s", 3723.0), ("1.5s", 1.5), ("0s", 0.0)]
)
def test_openai_reset_durations_are_parsed(raw: str, seconds: float) -> None:
    assert _seconds(raw, 0.0) == pytest.approx(seconds)


def test_anthropic_reset_is_an_rfc3339_time() -> None:
    now = datetime.datetime(2026, 2, 17, 23, 44, 1, tzinfo=datetime.UTC).timestamp()
    assert _seconds("2026-02-17T23:44:11Z", now) == pytest.approx(10.0)
    assert _seconds("not a time", now) is None


def test_a_nearly_full_bucket_is_read_as_a_limit_per_minute() -> None:
    headers = {"x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "599",
               "x-ratelimit-reset-requests": "100ms"}
    assert _learn(headers, 0.0) == (pytest.approx(10.0), None)


def test_a_spent_bucket_gives_a_lower_bound_of_its_refill_rate() -> None:
    # 10 requests short of full, full again in 1 s: at least 9 requests a second.
    headers = {"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "40",
               "anthropic-ratelimit-requests-reset": "2026-02-17T23:44:12Z",
               "anthropic-ratelimit-tokens-limit": "1000"}
    now = datetime.datetime(2026, 2, 17, 23, 44, 11, tzinfo=datetime.UTC).timestamp()
    requests, tokens = _learn(headers, now)
    assert requests == pytest.approx(9.0)
    assert tokens == pytest.approx(1000 / 60)
    assert _learn({"content-type": "application/json"}, now) == (None, None)


async def test_tokens_per_minute_reserves_the_estimate_and_the_usage_corrects_it() -> None:
    clock = Clock()
    account = Account(clock)
    account.configure(RateLimit(tokens_per_minute=600))  # 10 tokens a second
    permit = await account.acquire(100)  # the first request goes at once...
    assert account.tokens.tat == pytest.approx(clock.now + 10.0)  # ...and books 10 s of tokens
    account.settle(permit, {}, used_tokens=50)  # it really used 50
    assert account.tokens.tat == pytest.approx(clock.now + 5.0)


async def test_learned_limits_are_paced_below_what_the_provider_names() -> None:
    account = Account(Clock())
    permit = await account.acquire(10)
    account.settle(permit, {"x-ratelimit-limit-requests": "600"}, None)
    assert account.known and account.requests.rate == pytest.approx(10.0 * LEARNED_SHARE)


async def test_the_tightest_configured_limit_wins() -> None:
    account = Account(Clock())
    account.configure(RateLimit(requests_per_minute=600))
    account.configure(RateLimit(requests_per_minute=6000, tokens_per_minute=100))
    assert account.configured == RateLimit(requests_per_minute=600, tokens_per_minute=100)


async def test_a_configured_limit_is_not_lowered_by_a_learned_reading() -> None:
    """A reading is a lower bound of the provider's rate: it cannot show a declared rate is too high.

    Here the headers read "at least 9 a second" (paced at 90%: 8.1) for an account declared
    at 10 a second: the declaration stands.
    """
    account = Account(Clock())
    account.configure(RateLimit(requests_per_minute=600))
    permit = await account.acquire(10)
    headers = {"x-ratelimit-limit-requests": "50", "x-ratelimit-remaining-requests": "40",
               "x-ratelimit-reset-requests": "1s"}
    account.settle(permit, headers, None)
    assert account.learned[0] == pytest.approx(9.0)
    assert account.requests.rate == pytest.approx(10.0)


async def test_readings_do_not_replan_a_configured_queue() -> None:
    """A replan restarts the schedule from now, forgetting the requests already let through;
    for a configured pace, which the readings do not change, that would only add bursts."""
    account = Account(Clock())
    account.configure(RateLimit(requests_per_minute=600))
    permit = await account.acquire(10)
    generation = account.generation
    for remaining in ("599", "590", "560"):  # readings of 10/s, then 9/s and 39/s: growing
        account.settle(permit, {"x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": remaining,
                                "x-ratelimit-reset-requests": "1s"}, None)
    assert account.generation == generation

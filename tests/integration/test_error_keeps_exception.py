"""An error envelope keeps the exception its run failed with, over real loopback HTTP.

``raise_for_error()`` then raises that very exception -- a ``RateLimitError``
with its status and the delay the provider named -- and the exception adds
nothing to what the envelope prints or serialises (no key, anywhere new).
"""

from __future__ import annotations

import pytest

from lazybridge import Agent, Envelope, EnvelopeError
from lazybridge.engines.llm import LLMEngine
from lazybridge.errors import AuthenticationError, RateLimitError
from lazybridge.testing import FakeProvider, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-kept-exception-0123456789abcdef"


def agent(base_url: str, model: str = "claude-haiku-4-5") -> Agent:
    return Agent(engine=LLMEngine(model, base_url=base_url, api_key=KEY, max_retries=0), name="a")


@pytest.mark.parametrize(
    ("model", "reply"),
    [
        ("claude-haiku-4-5", Reply.error(429, "slow down", headers={"retry-after": "7"})),
        ("gemini-3-flash-preview", Reply.error(429, "slow down", retry_delay="7s")),
    ],
    ids=["retry-after", "gemini-RetryInfo"],
)
async def test_raise_for_error_raises_the_real_rate_limit_error(
    model: str, reply: Reply, fake: FakeProvider, base_url: str
) -> None:
    fake.push(reply)
    env = await agent(base_url, model).run("x")
    assert env.error is not None and isinstance(env.error.exception, RateLimitError)
    with pytest.raises(RateLimitError, match="slow down") as caught:
        env.raise_for_error()
    assert caught.value is env.error.exception
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 7.0
    assert caught.value.retryable is env.error.retryable is True


async def test_the_kept_exception_shows_no_key_anywhere_new(fake: FakeProvider, base_url: str) -> None:
    """repr, str and JSON of the envelope are what they were without the exception; none shows the key."""
    fake.push(Reply.error(401, f"invalid x-api-key {KEY}"))
    env = await agent(base_url).run("x")
    assert env.error is not None and isinstance(env.error.exception, AuthenticationError)
    bare = Envelope(env.task, env.context, env.payload, env.metadata, type(env.error)(
        env.error.type, env.error.message, env.error.retryable
    ))
    assert env == bare
    assert (repr(env), str(env), env.to_json()) == (repr(bare), str(bare), bare.to_json())
    for shown in (repr(env), str(env), env.to_json(), repr(env.error), str(env.error.exception)):
        assert KEY not in shown


async def test_an_envelope_read_back_from_json_raises_envelope_error(fake: FakeProvider, base_url: str) -> None:
    fake.push(Reply.error(429, "slow down"))
    env = await agent(base_url).run("x")
    restored = Envelope.from_json(env.to_json())
    assert restored == env and restored.error is not None and restored.error.exception is None
    with pytest.raises(EnvelopeError, match="RateLimitError: slow down") as caught:
        restored.raise_for_error()
    assert caught.value.error_type == "RateLimitError" and caught.value.envelope is restored

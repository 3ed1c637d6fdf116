"""Provider failures over real loopback HTTP: retries, waits, error envelopes, broken streams."""

from __future__ import annotations

import json
import socket
import time

import anyio
import pytest
import stamina

import lazybridge
from lazybridge import Agent
from lazybridge.engines.llm import LLMEngine
from lazybridge.errors import APITimeoutError, OverloadedError, StreamError
from lazybridge.testing import FakeProvider, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-errors-test-0123456789"


def agent(model: str, base_url: str, **kwargs: object) -> Agent:
    return Agent(engine=LLMEngine(model, base_url=base_url, api_key=KEY, **kwargs), name="a")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "reply"),
    [
        ("claude-haiku-4-5", Reply.error(429, headers={"retry-after": "0.2"})),
        ("gpt-5.4-mini", Reply.error(429, headers={"retry-after-ms": "200"})),
        ("gemini-3-flash-preview", Reply.error(429, retry_delay="0.2s")),
    ],
    ids=["retry-after", "retry-after-ms", "gemini-RetryInfo"],
)
async def test_429_waits_as_told_then_succeeds(
    model: str, reply: Reply, fake: FakeProvider, base_url: str
) -> None:
    """A 429 is retried after the delay the provider named, and the wait really happens."""
    fake.push(reply, "made it")
    with stamina.set_testing(False):  # real waits for this one
        env = await agent(model, base_url).run("x")
    assert env.ok, env.error
    assert env.text() == "made it"
    first, second = fake.requests
    assert second.received_at - first.received_at >= 0.2


@pytest.mark.parametrize(
    ("model", "status"), [("claude-haiku-4-5", 529), ("gpt-5.4-mini", 503), ("gemini-3-flash-preview", 503)]
)
async def test_overloaded_is_retried_then_given_up(
    model: str, status: int, fake: FakeProvider, base_url: str
) -> None:
    """An overloaded provider is tried max_retries + 1 times, then an OverloadedError envelope."""
    fake.push(*[Reply.error(status, "Overloaded, try later")] * 5)
    env = await agent(model, base_url, max_retries=2).run("x")
    assert len(fake.requests) == 3
    assert env.error is not None
    assert env.error.type == "OverloadedError"
    assert env.error.retryable
    assert "Overloaded, try later" in env.error.message and str(status) in env.error.message


@pytest.mark.parametrize("status", [500, 502, 504, 408, 409])
async def test_transient_statuses_are_retried(status: int, fake: FakeProvider, base_url: str) -> None:
    """5xx, 408 and 409 are retried and a later success wins."""
    fake.push(Reply.error(status), "fine now")
    env = await agent("gpt-5.4-mini", base_url).run("x")
    assert env.text() == "fine now"
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "BadRequestError"),
        (401, "AuthenticationError"),
        (403, "PermissionDeniedError"),
        (404, "NotFoundError"),
        (413, "BadRequestError"),
        (422, "BadRequestError"),
    ],
)
async def test_client_errors_are_not_retried(
    status: int, error_type: str, fake: FakeProvider, base_url: str
) -> None:
    """400, 401, 403, 404, 413 and 422 fail at once with their own class and message."""
    fake.push(Reply.error(status, "the provider says no"), "never sent")
    env = await agent("claude-haiku-4-5", base_url).run("x")
    assert len(fake.requests) == 1
    assert env.error is not None
    assert (env.error.type, env.error.retryable) == (error_type, False)
    assert env.error.message.startswith("the provider says no")


async def test_exhausted_quota_is_not_retried(fake: FakeProvider, base_url: str) -> None:
    """A 429 insufficient_quota is a RateLimitError that retrying will not fix."""
    fake.push(Reply.error(429, "You exceeded your current quota", kind="insufficient_quota"), "never")
    env = await agent("gpt-5.4-mini", base_url).run("x")
    assert len(fake.requests) == 1
    assert env.error is not None
    assert (env.error.type, env.error.retryable) == ("RateLimitError", False)
    assert "insufficient_quota" in env.error.message


async def test_gemini_daily_quota_is_not_retried(fake: FakeProvider, base_url: str) -> None:
    """A Gemini 429 whose QuotaFailure names a per-day quota is not retried."""
    body = {
        "error": {
            "code": 429,
            "message": "Quota exceeded for metric generate_content_requests",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"},
            ],
        }
    }
    fake.push(Reply(status=429, body=json.dumps(body).encode()), "never")
    env = await agent("gemini-3-flash-preview", base_url).run("x")
    assert len(fake.requests) == 1
    assert env.error is not None and (env.error.type, env.error.retryable) == ("RateLimitError", False)


async def test_a_long_retry_after_is_not_waited_for(fake: FakeProvider, base_url: str) -> None:
    """A retry-after beyond 60 s comes back at once, marked retryable."""
    fake.push(Reply.error(429, headers={"retry-after": "3600"}), "never")
    with stamina.set_testing(False):
        with anyio.fail_after(5):
            env = await agent("claude-haiku-4-5", base_url).run("x")
    assert len(fake.requests) == 1
    assert env.error is not None and (env.error.type, env.error.retryable) == ("RateLimitError", True)


async def test_x_should_retry_false_wins(fake: FakeProvider, base_url: str) -> None:
    """x-should-retry: false stops a retry the status would allow."""
    fake.push(Reply.error(500, headers={"x-should-retry": "false"}), "never")
    env = await agent("claude-haiku-4-5", base_url).run("x")
    assert len(fake.requests) == 1
    assert env.error is not None and (env.error.type, env.error.retryable) == ("ServerError", False)


async def test_connection_refused(fake: FakeProvider) -> None:
    """Nothing listening: APIConnectionError (retryable) after the retries."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = await agent("claude-haiku-4-5", f"http://127.0.0.1:{port}").run("x")
    assert env.error is not None
    assert (env.error.type, env.error.retryable) == ("APIConnectionError", True)
    assert f"127.0.0.1:{port}" in env.error.message


async def test_invalid_json_body(fake: FakeProvider, base_url: str) -> None:
    """A 200 whose body is not JSON is a MalformedResponseError, not retried, quoting the body."""
    fake.push(Reply(body=b'{"id": "msg_1", "content": [tru'), "never")
    env = await agent("claude-haiku-4-5", base_url).run("x")
    assert len(fake.requests) == 1
    assert env.error is not None and env.error.type == "MalformedResponseError"
    assert "expected a JSON object" in env.error.message and "tru" in env.error.message


async def test_read_timeout(fake: FakeProvider, base_url: str) -> None:
    """A server slower than timeout= gives an APITimeoutError envelope."""
    fake.push(Reply(text="late", delay=5))
    with anyio.fail_after(4):
        env = await agent("gpt-5.4-mini", base_url, timeout=0.3, max_retries=0).run("x")
    assert env.error is not None and (env.error.type, env.error.retryable) == ("APITimeoutError", True)


@pytest.mark.parametrize(
    ("model", "cut_after"), [("claude-haiku-4-5", 5), ("gpt-5.4-mini", 3), ("gemini-3-flash-preview", 2)]
)
async def test_stream_cut_midway(model: str, cut_after: int, fake: FakeProvider, base_url: str) -> None:
    """A stream whose connection drops mid-way raises StreamError after the deltas it delivered."""
    fake.push(Reply(text="alpha beta gamma delta epsilon zeta eta theta", cut_after=cut_after))
    a = agent(model, base_url)
    deltas: list[str] = []
    with pytest.raises(StreamError, match="broke off"):
        async with a.stream("x") as stream:
            async for delta in stream:
                deltas.append(delta)
    assert deltas and "".join(deltas) != "alpha beta gamma delta epsilon zeta eta theta"
    assert stream.envelope is not None and stream.envelope.error is not None
    assert stream.envelope.error.type == "StreamError"


async def test_stream_that_ends_early_is_an_error(fake: FakeProvider, base_url: str) -> None:
    """A stream closed cleanly before the provider said "done" is a StreamError, not a short answer."""
    events = b'event: message_start\ndata: {"type": "message_start", "message": {"id": "m", "model": "x", "usage": {"input_tokens": 1}}}\n\n'
    fake.push(Reply(body=events, content_type="text/event-stream"))
    with pytest.raises(StreamError, match="before the message was complete"):
        async for _ in agent("claude-haiku-4-5", base_url).stream("x"):
            pass


async def test_error_event_inside_a_stream(fake: FakeProvider, base_url: str) -> None:
    """An Anthropic error event in a 200 stream raises the class it names."""
    body = (
        b'event: message_start\ndata: {"type": "message_start", "message": {"id": "m", "usage": {}}}\n\n'
        b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    )
    fake.push(Reply(body=body, content_type="text/event-stream"))
    with pytest.raises(OverloadedError, match="Overloaded"):
        async for _ in agent("claude-haiku-4-5", base_url).stream("x"):
            pass


async def test_stalled_stream_is_aborted(fake: FakeProvider, base_url: str) -> None:
    """A stream silent for longer than stall_timeout raises APITimeoutError and drops the connection."""
    fake.push(Reply(text="one two three four five six", stall_after=3))
    a = agent("gpt-5.4-mini", base_url, stall_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="stalled"):
        async with a.stream("x") as stream:
            async for _ in stream:
                pass
    assert time.monotonic() - started < 3
    assert await anyio.to_thread.run_sync(fake.disconnected.wait, 5.0)
    assert stream.envelope is not None and stream.envelope.error is not None
    assert stream.envelope.error.type == "APITimeoutError"


async def test_missing_key_names_the_variable(
    fake: FakeProvider, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key anywhere: an AuthenticationError envelope telling which variable to set; nothing sent."""
    for name in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    claude = Agent(engine=LLMEngine("claude-haiku-4-5", base_url=base_url), name="c")
    gemini = Agent(engine=LLMEngine("gemini-3-flash-preview", base_url=base_url), name="g")
    env = await claude.run("x")
    assert env.error is not None and env.error.type == "AuthenticationError"
    assert "ANTHROPIC_API_KEY" in env.error.message
    env = await gemini.run("x")
    assert env.error is not None and "GEMINI_API_KEY or GOOGLE_API_KEY" in env.error.message
    with pytest.raises(lazybridge.ProviderError, match="ANTHROPIC_API_KEY"):
        async for _ in claude.stream("x"):
            pass
    assert fake.requests == []
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)  # set later: picked up by the next run
    assert (await claude.run("x")).ok
    assert fake.requests[0].carries_key(KEY)

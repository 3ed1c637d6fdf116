"""Malformed answers over real loopback HTTP: one documented error, never a foreign exception.

A 200 answer of a shape the wire format does not know -- a wrong-shape body,
a stream event of the wrong shape, a streamed request answered by a
wrong-shape JSON body -- comes back as ``MalformedResponseError`` (an error
envelope, or raised by ``async for``), is not retried, names the provider and
never shows the API key.  A malformed *error* body keeps the retry its
status gives.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lazybridge import Agent
from lazybridge.engines.llm import LLMEngine
from lazybridge.errors import MalformedResponseError
from lazybridge.testing import FakeProvider, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-malformed-test-0123456789"

#: Per model: a 200 body of the right kind but the wrong shape (the key echoed in it).
WRONG_SHAPES: dict[str, dict[str, Any]] = {
    "claude-haiku-4-5": {"id": "m", "content": [{"type": "text", "text": {"echo": KEY}}], "stop_reason": "end_turn"},
    "gpt-5.4-mini": {"id": "c", "choices": [{"message": {"content": 7, "note": KEY}}]},
    "deepseek-v4-flash": {"id": "c", "choices": ["not an object", KEY]},
    "compat/smollm2": {"choices": [{"message": {"tool_calls": {"0": KEY}}}]},
    "gemini-3-flash-preview": {"candidates": [{"content": {"parts": [KEY]}}]},
}


def agent(model: str, base_url: str) -> Agent:
    return Agent(engine=LLMEngine(model, base_url=base_url, api_key=KEY), name="a")


@pytest.mark.parametrize("model", list(WRONG_SHAPES))
async def test_a_wrong_shape_body_is_a_malformed_response_envelope(
    model: str, fake: FakeProvider, base_url: str
) -> None:
    """A 200 whose JSON has the wrong shape: a MalformedResponseError envelope, not retried, key masked."""
    fake.push(Reply(body=json.dumps(WRONG_SHAPES[model]).encode()), "never")
    env = await agent(model, base_url).run("x")
    assert len(fake.requests) == 1
    assert env.error is not None
    assert (env.error.type, env.error.retryable) == ("MalformedResponseError", False)
    assert "malformed response: expected" in env.error.message
    exc = env.error.exception
    assert isinstance(exc, MalformedResponseError) and exc.status_code == 200 and exc.expected
    assert KEY not in env.error.message and KEY not in exc.excerpt and KEY not in env.to_json()


#: Per model: a stream whose first event has the wrong shape.
BAD_STREAMS: dict[str, bytes] = {
    "claude-haiku-4-5": b'event: message_start\ndata: {"type": "message_start", "message": ["' + KEY.encode() + b'"]}\n\n',
    "gpt-5.4-mini": b'data: {"id": "c", "choices": [{"delta": {"content": {"k": "' + KEY.encode() + b'"}}}]}\n\n',
    "gemini-3-flash-preview": b'data: {"candidates": {"0": "' + KEY.encode() + b'"}}\n\n',
}


@pytest.mark.parametrize("model", list(BAD_STREAMS))
async def test_a_wrong_shape_stream_event_raises_malformed_response(
    model: str, fake: FakeProvider, base_url: str
) -> None:
    """``async for`` over a stream with a wrong-shape event raises MalformedResponseError (key masked)."""
    fake.push(Reply(body=BAD_STREAMS[model], content_type="text/event-stream"), "never")
    with pytest.raises(MalformedResponseError) as info:
        async with agent(model, base_url).stream("x") as stream:
            async for _ in stream:
                pass
    assert len(fake.requests) == 1
    assert KEY not in str(info.value) and info.value.status_code == 200
    assert stream.envelope is not None and stream.envelope.error is not None
    assert stream.envelope.error.type == "MalformedResponseError"


async def test_a_streamed_request_answered_by_wrong_shape_json(fake: FakeProvider, base_url: str) -> None:
    """A server that ignores "stream": true and answers wrong-shape JSON: MalformedResponseError."""
    fake.push(Reply(body=json.dumps({"choices": 3}).encode()), "never")
    with pytest.raises(MalformedResponseError, match="an array at choices"):
        async for _ in agent("compat/smollm2", base_url).stream("x"):
            pass


async def test_a_gemini_429_whose_quota_violations_are_not_objects_is_retried(
    fake: FakeProvider, base_url: str
) -> None:
    """A malformed QuotaFailure (violations that are not objects) is still a retryable 429."""
    body = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": ["x", 1, None]}],
        }
    }
    fake.push(Reply(status=429, body=json.dumps(body).encode()), "made it")
    env = await agent("gemini-3-flash-preview", base_url).run("x")
    assert env.ok, env.error
    assert env.text() == "made it"
    assert len(fake.requests) == 2

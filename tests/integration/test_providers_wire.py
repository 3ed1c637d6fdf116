"""Every provider over real loopback HTTP: text, tool calls, streaming, usage, cost, events."""

from __future__ import annotations

import pytest

import lazybridge
from lazybridge import Agent, Envelope, Session, events
from lazybridge.engines._loop import Conversation
from lazybridge.engines.llm import LLMEngine
from lazybridge.events import RunContext
from lazybridge.testing import FakeProvider, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-wire-test-0123456789"

#: model -> (expected request path, the header that carries the key, metadata.provider)
MODELS = {
    "claude-haiku-4-5": ("/v1/messages", "x-api-key", "anthropic"),
    "gpt-5.4-mini": ("/chat/completions", "authorization", "openai"),
    "gemini-3-flash-preview": (
        "/v1beta/models/gemini-3-flash-preview:generateContent",
        "x-goog-api-key",
        "gemini",
    ),
    "deepseek-v4-flash": ("/chat/completions", "authorization", "deepseek"),
    "ollama/llama3.2": ("/chat/completions", None, "ollama"),
}


def agent(model: str, base_url: str, **kwargs: object) -> Agent:
    key = None if model.startswith("ollama/") else KEY
    return Agent(engine=LLMEngine(model, base_url=base_url, api_key=key, **kwargs), name="a")  # type: ignore[arg-type]


@pytest.mark.parametrize("model", list(MODELS))
async def test_text_answer(model: str, fake: FakeProvider, base_url: str) -> None:
    """A plain answer comes back with model, provider, tokens and cost filled in."""
    fake.push(Reply(text="Paris is the capital.", input_tokens=20, output_tokens=6))
    env = await agent(model, base_url, system="Be brief.").run("Capital of France?")
    assert env.ok, env.error
    assert env.text() == "Paris is the capital."
    path, key_header, provider = MODELS[model]
    meta = env.metadata
    assert (meta.provider, meta.input_tokens, meta.output_tokens) == (provider, 20, 6)
    assert meta.model == model.removeprefix("ollama/")
    assert meta.latency_ms > 0
    if provider == "ollama":
        assert meta.cost_usd == 0.0
    else:
        assert meta.cost_usd > 0
    [request] = fake.requests
    assert request.path.endswith(path)
    assert request.last_user_text == "Capital of France?"
    assert "Be brief." in str(request.body)
    if key_header is None:
        assert not {"authorization", "x-api-key"} & set(request.header_names)
    else:
        assert key_header in request.header_names
        assert request.carries_key(KEY)


@pytest.mark.parametrize("model", list(MODELS))
async def test_tool_calls_are_parsed(model: str, fake: FakeProvider, base_url: str) -> None:
    """A model call that asks for tools yields neutral ToolCalls with parsed arguments."""
    fake.push(
        Reply(text="Let me look.", tool_calls=(("search", {"q": "rome"}), ("weather", {"city": "Tokyo"})))
    )
    engine = agent(model, base_url).engine
    assert isinstance(engine, LLMEngine)
    session = Session()
    run = RunContext("run_x", "a", sinks=(session.emit,))
    setup = engine.prepare(tools=(), output=None, memory=None)
    response = await Conversation(engine, setup, Envelope.from_task("go"), run).call_model()
    assert [(c.name, dict(c.arguments)) for c in response.tool_calls] == [
        ("search", {"q": "rome"}),
        ("weather", {"city": "Tokyo"}),
    ]
    assert response.stop_reason == "tool_calls"
    assert response.text == "Let me look."
    [finished] = [e for e in session.events if e.kind == events.MODEL_RESPONSE]
    assert finished.data["tool_calls"] == ["search", "weather"]


@pytest.mark.parametrize("model", list(MODELS))
async def test_stream_matches_non_streamed(model: str, fake: FakeProvider, base_url: str) -> None:
    """Streaming yields the text in deltas; the result equals the non-streamed one."""
    reply = Reply(text="one two three four five six seven", tool_calls=(("f", {"x": 1}),), input_tokens=30)
    fake.push(reply, reply)
    a = agent(model, base_url)
    whole = await a.run("count")
    async with a.stream("count") as stream:
        deltas = [delta async for delta in stream]
    assert len(deltas) > 1
    assert "".join(deltas) == whole.text() == reply.text
    streamed = stream.envelope
    assert streamed is not None and streamed.ok
    for field in ("model", "provider", "input_tokens", "output_tokens", "cost_usd"):
        assert getattr(streamed.metadata, field) == getattr(whole.metadata, field), field
    assert streamed.metadata.run_id != whole.metadata.run_id
    inner = stream._inner
    assert inner is not None and inner.response is not None  # type: ignore[attr-defined]
    assert [c.name for c in inner.response.tool_calls] == ["f"]  # type: ignore[attr-defined]
    assert [r.stream for r in fake.requests] == [False, True]


async def test_events_and_verbose_trace(
    fake: FakeProvider, base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """model_request / model_response events carry the model, turn and usage; verbose prints the answer."""
    fake.push(Reply(text="Hello from the fake."))
    session = Session()
    a = Agent(
        engine=LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY),
        name="greeter",
        session=session,
        verbose=True,
    )
    await a.run("hi")
    kinds = [e.kind for e in session.events]
    assert kinds == [events.AGENT_START, events.MODEL_REQUEST, events.MODEL_RESPONSE, events.AGENT_FINISH]
    request = session.events[1].data
    assert (request["model"], request["turn"], request["messages"]) == ("claude-haiku-4-5", 1, 1)
    response = session.events[2].data
    assert response["text"] == "Hello from the fake."
    assert response["usage"] == {"input_tokens": 12, "output_tokens": 7}
    assert response["stop_reason"] == "stop" and response["cost_usd"] > 0
    assert "[greeter] assistant: Hello from the fake." in capsys.readouterr().out


async def test_one_pooled_client_per_loop(fake: FakeProvider, base_url: str) -> None:
    """Agents on the same base URL share one client (and so its connections)."""
    a, b = agent("claude-haiku-4-5", base_url), agent("gpt-5.4-mini", base_url)
    await a.run("x")
    await b.run("y")
    assert isinstance(a.engine, LLMEngine) and isinstance(b.engine, LLMEngine)
    client = a.engine.endpoint().client()
    assert client is b.engine.endpoint().client()
    await lazybridge.aclose()
    assert client.is_closed
    assert a.engine.endpoint().client() is not client  # a fresh pool after aclose()


async def test_user_client_is_used_and_not_closed(fake: FakeProvider, base_url: str) -> None:
    """A client passed as http_client= is used as is and left open."""
    import httpx

    async with httpx.AsyncClient() as client:
        a = agent("gpt-5.4-mini", base_url, http_client=client)
        assert (await a.run("x")).ok
        await lazybridge.aclose()
        assert not client.is_closed
        assert (await a.run("again")).ok


async def test_json_answer_to_a_stream_request(fake: FakeProvider, base_url: str) -> None:
    """A compatible server that ignores "stream": true still streams, as one chunk."""
    import json
    import uuid

    body = {
        "id": "x",
        "model": "local",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "whole"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
    fake.push(Reply(body=json.dumps(body).encode()))
    # A model name of its own: the unknown-price warning comes once per model per process.
    a = Agent(engine=LLMEngine(f"compat/local-{uuid.uuid4().hex}", base_url=base_url), name="c")
    with pytest.warns(lazybridge.providers.pricing.UnknownPriceWarning):
        async with a.stream("hi") as stream:
            assert [d async for d in stream] == ["whole"]
    assert stream.envelope is not None and stream.envelope.metadata.input_tokens == 3

"""OpenAI-compatible local servers (``compat/``) and their quirks, over loopback against the fake.

The fake's ``chat_server="llama-cpp-python"`` imitates what that server (0.3.x)
was seen doing: a 500 for an assistant message whose ``content`` is ``null``,
and streams without usage.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator

import pytest

from lazybridge import Agent, LLMEngine
from lazybridge.providers import Price, set_price
from lazybridge.providers.pricing import UnknownPriceWarning
from lazybridge.testing import FakeProvider, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]


@pytest.fixture
def llama_cpp_python(fake: FakeProvider) -> Iterator[FakeProvider]:
    """The fake, answering chat completions the way llama-cpp-python's server does."""
    fake.chat_server = "llama-cpp-python"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownPriceWarning)  # a local model has no price
        yield fake


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_tool_loop_against_llama_cpp_python(
    stream: bool, llama_cpp_python: FakeProvider, base_url: str
) -> None:
    """The assistant turn that called a tool goes back with content "", which that server accepts."""
    fake = llama_cpp_python
    fake.push(Reply.tool_call("add", {"a": 2, "b": 3}), "5")
    agent = Agent(engine=LLMEngine("compat/smollm2", base_url=base_url), tools=[add])
    if stream:
        async with agent.stream("2+3?") as s:
            assert "".join([d async for d in s]) == "5"
        env = s.envelope
        assert env is not None
    else:
        env = await agent.run("2+3?")
    assert env.ok, env.error
    assert env.text() == "5"
    assert len(fake.requests) == 2  # no refused (and retried) second turn
    assistant = fake.requests[1].body["messages"][1]
    assert assistant["role"] == "assistant" and assistant["content"] == ""
    assert assistant["tool_calls"][0]["function"]["name"] == "add"


async def test_the_fake_refuses_null_content_like_llama_cpp_python(
    llama_cpp_python: FakeProvider, base_url: str
) -> None:
    """What keeps the fix honest: the fake answers OpenAI's null content with that server's 500."""
    import httpx

    body = {
        "model": "smollm2",
        "messages": [
            {"role": "user", "content": "2+3?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "5"},
        ],
    }
    async with httpx.AsyncClient(base_url=base_url) as client:
        refused = await client.post("/v1/chat/completions", json=body)
        body["messages"][1]["content"] = ""
        accepted = await client.post("/v1/chat/completions", json=body)
    assert refused.status_code == 500
    assert "messages.1.content: Input should be a valid string" in refused.json()["error"]["message"]
    assert accepted.status_code == 200


async def test_official_openai_keeps_null_content(fake: FakeProvider, base_url: str) -> None:
    """OpenAI documents content null next to tool calls; that wire is left as it was."""
    fake.push(Reply.tool_call("add", {"a": 2, "b": 3}), "5")
    env = await Agent(engine=LLMEngine("gpt-5.4-mini", base_url=base_url, api_key="k"), tools=[add]).run(
        "2+3?"
    )
    assert env.ok
    assert fake.requests[1].body["messages"][1]["content"] is None


# -- prices of local models ----------------------------------------------------------


def local_model(stem: str) -> str:
    """A model name of its own: prices are cached and the warning comes once per model per process."""
    return f"{stem}-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("provider", ["compat", "ollama"])
async def test_set_price_under_the_name_metadata_shows(
    provider: str, fake: FakeProvider, base_url: str
) -> None:
    """set_price(metadata.provider, metadata.model, ...) prices that model's calls."""
    model = local_model("smollm2")
    fake.push(Reply("hi", input_tokens=1_000_000, output_tokens=500_000))
    agent = Agent(engine=LLMEngine(f"{provider}/{model}", base_url=base_url))
    set_price(provider, model, Price(input=1.0, output=2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownPriceWarning)
        env = await agent.run("hello")
    assert (env.metadata.provider, env.metadata.model) == (provider, model)
    assert env.metadata.cost_usd == pytest.approx(2.0)


async def test_the_unknown_price_warning_spells_out_the_call(fake: FakeProvider, base_url: str) -> None:
    """The warning gives the set_price call to write; written (with numbers), it prices the model."""
    model = local_model("smollm2")
    agent = Agent(engine=LLMEngine(f"compat/{model}", base_url=base_url))
    fake.push(Reply("a", input_tokens=1_000_000, output_tokens=0), Reply("b", input_tokens=1_000_000))
    with pytest.warns(UnknownPriceWarning) as caught:
        first = await agent.run("hello")
    assert first.metadata.cost_usd == 0.0
    message = str(caught[0].message)
    call = f"set_price('compat', '{model}', Price(input=..., output=...))"
    assert call in message and "from lazybridge.providers import Price, set_price" in message
    exec(
        message.split("with: ", 1)[1].replace("input=...", "input=3.0").replace("output=...", "output=0.0"),
        {},
    )
    second = await agent.run("again")
    assert second.metadata.cost_usd == pytest.approx(3.0)


# -- usage a server did not send -------------------------------------------------------


async def test_a_stream_without_usage_is_unknown_not_zero(
    llama_cpp_python: FakeProvider, base_url: str
) -> None:
    """llama-cpp-python streams no usage: the envelope says so instead of claiming 0 tokens."""
    agent = Agent(engine=LLMEngine("compat/smollm2", base_url=base_url))
    async with agent.stream("hi") as s:
        assert "".join([d async for d in s]) == "smollm2 says: hi"
    assert s.envelope is not None and s.envelope.ok
    meta = s.envelope.metadata
    assert meta.usage_reported is False
    assert (meta.input_tokens, meta.output_tokens, meta.cost_usd) == (0, 0, 0.0)
    assert llama_cpp_python.requests[0].body["stream_options"] == {"include_usage": True}  # asked, ignored


@pytest.mark.parametrize("model", ["compat/smollm2", "gpt-5.4-mini", "deepseek-v4-flash"])
async def test_a_reply_without_usage_is_unknown(model: str, fake: FakeProvider, base_url: str) -> None:
    """A non-streamed body without "usage" is unknown too; one with usage is reported."""
    fake.push(Reply("first", usage=False), Reply("second"))
    agent = Agent(engine=LLMEngine(model, base_url=base_url, api_key="k"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownPriceWarning)
        unknown, known = await agent.run("a"), await agent.run("b")
    assert unknown.ok and unknown.metadata.usage_reported is False
    assert known.ok and known.metadata.usage_reported is True
    assert (known.metadata.input_tokens, known.metadata.output_tokens) == (12, 7)


async def test_unknown_usage_rolls_up(fake: FakeProvider, base_url: str) -> None:
    """A wrapper, and an agent that used a sub-agent as a tool, are unknown if any part is."""
    from lazybridge import Session, events

    def agent(model: str, name: str, **kwargs: object) -> Agent:
        return Agent(engine=LLMEngine(model, base_url=base_url, api_key="k"), name=name, **kwargs)  # type: ignore[arg-type]

    fake.push(Reply("a", usage=False), model="deepseek-v4-flash")
    fake.push("b", model="gpt-5.4-mini")
    panel = await Agent.parallel(agent("deepseek-v4-flash", "a"), agent("gpt-5.4-mini", "b")).run("q")
    assert panel.ok
    assert [b.metadata.usage_reported for b in panel] == [False, True]
    assert panel.metadata.usage_reported is False
    assert panel.metadata.input_tokens == 12  # what is known is still counted

    fake.push(Reply("sub answer", usage=False), model="deepseek-v4-flash")
    fake.push(Reply.tool_call("sub", {"task": "help"}), "done", model="gpt-5.4-mini")
    session = Session()
    sub = agent("deepseek-v4-flash", "sub", description="A sub-agent.")
    lead = await agent("gpt-5.4-mini", "lead", tools=[sub], session=session).run("go")
    assert lead.ok
    assert lead.metadata.usage_reported is False
    assert (lead.metadata.input_tokens, lead.metadata.nested_input_tokens) == (24, 0)
    finishes = {e.agent: e.data for e in session.events if e.kind == events.AGENT_FINISH}
    assert finishes["sub"]["usage_reported"] is False and finishes["lead"]["usage_reported"] is False

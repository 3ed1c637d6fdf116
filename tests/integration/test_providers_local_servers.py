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

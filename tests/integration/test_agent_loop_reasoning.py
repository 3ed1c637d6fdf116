"""Provider reasoning state goes back on the next turn of a tool loop, as the real APIs demand.

Dropping it is a 400 from the real APIs; here the fake server records the
second request and the test reads the state back out of its body.
"""

from __future__ import annotations

import pytest

from lazybridge import Agent, LLMEngine
from lazybridge.testing import FakeProvider
from lazybridge.testing._fake_reasoning import anthropic_thinking, deepseek_reasoning, gemini_signed_call

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-reasoning-test-0123456789"


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


def agent(model: str, base_url: str) -> Agent:
    return Agent(engine=LLMEngine(model, base_url=base_url, api_key=KEY), tools=[get_weather])


async def test_anthropic_thinking_blocks_go_back_with_their_signatures(
    fake: FakeProvider, base_url: str
) -> None:
    """The assistant turn is replayed with its thinking (signed) and redacted thinking blocks, in order."""
    fake.push(
        anthropic_thinking(
            "get_weather",
            {"city": "Rome"},
            thinking="The user wants Rome.",
            signature="sig-EqQBCkgIARAB",
            redacted="opaque==",
        ),
        "Sunny in Rome.",
    )
    env = await agent("claude-haiku-4-5", base_url).run("Weather in Rome?")
    assert env.ok and env.text() == "Sunny in Rome."
    messages = fake.requests[1].body["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "The user wants Rome.", "signature": "sig-EqQBCkgIARAB"},
            {"type": "redacted_thinking", "data": "opaque=="},
            {"type": "tool_use", "id": "toolu_think_0", "name": "get_weather", "input": {"city": "Rome"}},
        ],
    }
    assert messages[2]["content"][0]["tool_use_id"] == "toolu_think_0"


async def test_gemini_thought_signature_stays_on_its_function_call(fake: FakeProvider, base_url: str) -> None:
    """The functionCall part goes back with its thoughtSignature; the response follows it."""
    fake.push(
        gemini_signed_call("get_weather", {"city": "Rome"}, signature="CiQBjz1rX-signature"), "Sunny in Rome."
    )
    env = await agent("gemini-3-flash-preview", base_url).run("Weather in Rome?")
    assert env.ok and env.text() == "Sunny in Rome."
    contents = fake.requests[1].body["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Rome"}},
                "thoughtSignature": "CiQBjz1rX-signature",
            }
        ],
    }
    assert contents[2]["parts"][0]["functionResponse"]["response"] == {"result": "sunny in Rome"}


async def test_deepseek_reasoning_content_goes_back_on_the_tool_call_turn(
    fake: FakeProvider, base_url: str
) -> None:
    """An assistant message with tool calls carries its reasoning_content in the next request."""
    fake.push(
        deepseek_reasoning("get_weather", {"city": "Rome"}, reasoning="Need the weather tool."),
        "Sunny in Rome.",
    )
    env = await agent("deepseek-v4-flash", base_url).run("Weather in Rome?")
    assert env.ok and env.text() == "Sunny in Rome."
    assistant = fake.requests[1].body["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["reasoning_content"] == "Need the weather tool."
    assert assistant["tool_calls"][0]["id"] == "call_00_reason"
    assert fake.requests[1].body["messages"][2] == {
        "role": "tool",
        "tool_call_id": "call_00_reason",
        "content": "sunny in Rome",
    }

"""Anthropic ``pause_turn``: the loop sends the paused turn back, as is, so the model carries on."""

from __future__ import annotations

from typing import Any

import pytest

from lazybridge import Agent, LLMEngine
from lazybridge.testing import FakeProvider, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-pause-test-0123456789"

SEARCH: dict[str, Any] = {
    "type": "server_tool_use",
    "id": "srvtoolu_01",
    "name": "web_search",
    "input": {"query": "weather in Rome"},
}
RESULTS: dict[str, Any] = {
    "type": "web_search_tool_result",
    "tool_use_id": "srvtoolu_01",
    "content": [
        {
            "type": "web_search_result",
            "url": "https://example.org/rome",
            "title": "Rome weather",
            "encrypted_content": "EqgfCioIARgBIiQ3",
            "page_age": None,
        }
    ],
}


def paused(text: str = "Let me look that up. ") -> Reply:
    return Reply(
        text=text, blocks=(SEARCH, RESULTS), stop_reason="pause_turn", input_tokens=30, output_tokens=5
    )


async def answer(a: Agent, stream: bool) -> str:
    if not stream:
        env = await a.run("Weather in Rome?")
        assert env.ok, env.error
        return env.text()
    out = []
    async for delta in a.stream("Weather in Rome?"):
        out.append(delta)
    return "".join(out)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_a_paused_turn_is_sent_back_as_is_and_continued(
    stream: bool, fake: FakeProvider, base_url: str
) -> None:
    """The second request ends with the paused assistant content, unchanged; the answer joins both replies."""
    fake.push(paused(), "It is sunny.")
    a = Agent(engine=LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY))
    assert await answer(a, stream) == "Let me look that up. It is sunny."
    assert len(fake.requests) == 2
    messages = fake.requests[1].body["messages"]
    assert messages == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Rome?"}]},
        {
            "role": "assistant",
            "content": [SEARCH, RESULTS, {"type": "text", "text": "Let me look that up. "}],
        },
    ]


async def test_both_calls_of_a_paused_turn_are_counted(fake: FakeProvider, base_url: str) -> None:
    fake.push(paused(), Reply(text="It is sunny.", input_tokens=40, output_tokens=6))
    env = await Agent(engine=LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY)).run("x")
    assert (env.metadata.input_tokens, env.metadata.output_tokens) == (70, 11)


async def test_a_turn_that_stays_paused_stops_at_max_turns(fake: FakeProvider, base_url: str) -> None:
    """Continuations are model calls: max_turns bounds them with a MaxTurnsExceeded envelope."""
    fake.push(paused(), paused("Still looking. "), paused("And more. "), "never asked for")
    engine = LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY, max_turns=2)
    env = await Agent(engine=engine).run("x")
    assert env.error is not None and env.error.type == "MaxTurnsExceeded"
    assert "pause_turn" in env.error.message
    assert len(fake.requests) == 2
    assert env.metadata.input_tokens == 60

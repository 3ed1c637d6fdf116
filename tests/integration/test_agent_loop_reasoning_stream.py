"""Streamed turns carry provider reasoning state back exactly as non-streamed ones do.

Each test streams a tool-calling turn that carries reasoning state (Anthropic
signed thinking, Gemini thought signatures, DeepSeek ``reasoning_content``),
then checks the next request: the state is there, and the request equals the
one the non-streamed path sends after the same reply.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lazybridge import Agent, LLMEngine, Memory
from lazybridge.testing import FakeProvider, Reply
from lazybridge.testing._fake_reasoning import anthropic_thinking, deepseek_reasoning, gemini_signed_call

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-reasoning-stream-0123456789"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "provider"


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


def get_country() -> str:
    """The user's country."""
    return "Italy"


async def streamed(a: Agent, task: str) -> str:
    out = []
    async for delta in a.stream(task):
        out.append(delta)
    return "".join(out)


def without_stream_flag(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("stream", "stream_options")}


CASES: dict[str, tuple[str, Callable[[bool], Reply]]] = {
    "anthropic": (
        "claude-haiku-4-5",
        lambda stream: anthropic_thinking(
            "get_weather",
            {"city": "Rome"},
            thinking="The user wants Rome.",
            signature="sig-EqQBCkgIARAB",
            redacted="opaque==",
            stream=stream,
        ),
    ),
    "gemini": (
        "gemini-3-flash-preview",
        lambda stream: gemini_signed_call(
            "get_weather", {"city": "Rome"}, signature="CiQBjz1rX-signature", stream=stream
        ),
    ),
    "deepseek": (
        "deepseek-v4-flash",
        lambda stream: deepseek_reasoning(
            "get_weather", {"city": "Rome"}, reasoning="Need the weather tool.", stream=stream
        ),
    ),
}


@pytest.mark.parametrize("provider", list(CASES))
async def test_a_streamed_turn_sends_its_reasoning_back_like_a_non_streamed_one(
    provider: str, fake: FakeProvider, base_url: str
) -> None:
    model, reply = CASES[provider]
    engine = LLMEngine(model, base_url=base_url, api_key=KEY)
    fake.push(reply(False), "Sunny in Rome.")
    assert (
        await Agent(engine=engine, tools=[get_weather]).run("Weather in Rome?")
    ).text() == "Sunny in Rome."
    expected = fake.requests[1].body
    fake.reset()
    fake.push(reply(True), "Sunny in Rome.")
    assert await streamed(Agent(engine=engine, tools=[get_weather]), "Weather in Rome?") == "Sunny in Rome."
    assert [r.stream for r in fake.requests] == [True, True]
    assert without_stream_flag(fake.requests[1].body) == without_stream_flag(expected)


async def test_streamed_anthropic_thinking_goes_back_signed(fake: FakeProvider, base_url: str) -> None:
    """The streamed thinking (deltas joined) and its signature (a signature_delta) come back in order."""
    _, reply = CASES["anthropic"]
    fake.push(reply(True), "Sunny in Rome.")
    a = Agent(engine=LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY), tools=[get_weather])
    await streamed(a, "Weather in Rome?")
    assert fake.requests[1].body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "The user wants Rome.", "signature": "sig-EqQBCkgIARAB"},
            {"type": "redacted_thinking", "data": "opaque=="},
            {"type": "tool_use", "id": "toolu_think_0", "name": "get_weather", "input": {"city": "Rome"}},
        ],
    }


async def test_streamed_deepseek_reasoning_goes_back(fake: FakeProvider, base_url: str) -> None:
    _, reply = CASES["deepseek"]
    fake.push(reply(True), "Sunny in Rome.")
    a = Agent(engine=LLMEngine("deepseek-v4-flash", base_url=base_url, api_key=KEY), tools=[get_weather])
    await streamed(a, "Weather in Rome?")
    assistant = fake.requests[1].body["messages"][1]
    assert assistant["reasoning_content"] == "Need the weather tool."
    assert assistant["tool_calls"][0]["id"] == "call_00_reason"


async def test_recorded_gemini_stream_keeps_its_thought_signature(fake: FakeProvider, base_url: str) -> None:
    """The recorded Gemini 3 stream: the signed call's signature goes back on that call, not on the empty text."""
    raw = (FIXTURES / "gemini" / "stream_tool_call_thought_signature.sse").read_bytes()
    signature = next(
        part["thoughtSignature"]
        for line in raw.decode().splitlines()
        if line.startswith("data:")
        for part in json.loads(line[5:])["candidates"][0]["content"]["parts"]
        if "thoughtSignature" in part
    )
    fake.push(Reply(body=raw, content_type="text/event-stream"), "You are in Italy.")
    a = Agent(engine=LLMEngine("gemini-3-flash-preview", base_url=base_url, api_key=KEY), tools=[get_country])
    assert await streamed(a, "Where am I?") == "You are in Italy."
    assert fake.requests[1].body["contents"][1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_country", "args": {}}, "thoughtSignature": signature}],
    }


async def test_recorded_anthropic_thinking_stream_goes_back_through_memory(
    fake: FakeProvider, base_url: str
) -> None:
    """The recorded thinking stream, kept in Memory, opens the next run's history with its signature intact."""
    raw = (FIXTURES / "anthropic" / "stream_thinking.sse").read_bytes()
    thinking, signature = "", ""
    for line in raw.decode().splitlines():
        if line.startswith("data:"):
            delta = json.loads(line[5:]).get("delta") or {}
            thinking += delta.get("thinking", "")
            signature += delta.get("signature", "")
    fake.push(Reply(body=raw, content_type="text/event-stream"), "Pouch it is.")
    memory = Memory()
    a = Agent(engine=LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY), memory=memory)
    await streamed(a, "Two names for a pet pelican?")
    await streamed(a, "Pick one.")
    assistant = fake.requests[1].body["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == {"type": "thinking", "thinking": thinking, "signature": signature}
    assert thinking and signature

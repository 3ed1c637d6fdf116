"""LazyBridge against llama-cpp-python's OpenAI-compatible server, over loopback, on asyncio and Trio.

Served with ``--chat_format chatml-function-calling``: it answers with
OpenAI-style tool calls when ``tool_choice`` names a tool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from .conftest import Server
from .helpers import Watch, agent, check_plain_chat, check_streaming

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]


@pytest.fixture
async def watch(anyio_backend: object) -> AsyncIterator[tuple[Watch, httpx.AsyncClient]]:
    transport = Watch()
    async with httpx.AsyncClient(transport=transport, timeout=60.0) as client:
        yield transport, client


calls: list[tuple[int, int]] = []


def add(a: int, b: int) -> int:
    """Add two integers."""
    calls.append((a, b))
    return a + b


async def test_plain_chat(llama_cpp_python: Server) -> None:
    await check_plain_chat(llama_cpp_python.base_url)


async def test_streaming_arrives_in_deltas_with_the_same_text_as_a_run(llama_cpp_python: Server) -> None:
    await check_streaming(llama_cpp_python.base_url, usage_in_stream=False)


async def test_the_tool_loop_with_a_named_tool_choice(
    llama_cpp_python: Server, watch: tuple[Watch, httpx.AsyncClient]
) -> None:
    """Forced call, tool run, history sent back and accepted, turn after turn, until max_turns.

    The loop cannot end with an answer on this server: its
    chatml-function-calling template drops ``tool`` messages from the prompt,
    so under ``"auto"`` the model never sees a result and calls the tool
    again.  What is asserted is the protocol: every turn's request carries the
    earlier calls and results, the server takes them (no 4xx/5xx), the tool
    runs on the server's arguments, and the turn limit ends the run with the
    spend kept.
    """
    transport, client = watch
    calls.clear()
    tool_agent = agent(
        llama_cpp_python.base_url, client=client, tools=[add], tool_choice="add", max_tokens=48, max_turns=3
    )
    env = await tool_agent.run("What is 2 + 3? Use the add tool.")
    assert env.error is not None and env.error.type == "MaxTurnsExceeded", env.error
    assert len(transport.bodies) == 3
    assert len(calls) == 2 and all(
        isinstance(n, int) for call in calls for n in call
    )  # turn 3's call is not run
    first, *later = transport.bodies
    assert first["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert all(body.get("tool_choice", "auto") == "auto" for body in later)  # forcing only the first turn
    for turn, body in enumerate(later, start=1):
        history = body["messages"][1:]
        assert len(history) == 2 * turn
        for (a, b), (assistant, result) in zip(
            calls, zip(history[::2], history[1::2], strict=True), strict=False
        ):
            assert assistant["role"] == "assistant" and assistant["content"] == ""
            [call] = assistant["tool_calls"]
            assert call["function"]["name"] == "add"
            assert result == {"role": "tool", "tool_call_id": call["id"], "content": str(a + b)}
    assert env.metadata.input_tokens > 0 and env.metadata.output_tokens > 0  # three turns' spend, kept


async def test_context_overflow_is_a_bad_request_envelope_with_the_servers_message(
    llama_cpp_python: Server,
) -> None:
    env = await agent(llama_cpp_python.base_url).run("word " * 6000)
    assert env.error is not None
    assert env.error.type == "BadRequestError", env.error
    assert "context" in env.error.message.lower()

"""LazyBridge against llama-cpp-python's OpenAI-compatible server, over loopback, on asyncio and Trio.

Served with ``--chat_format chatml-function-calling``: it answers with
OpenAI-style tool calls when ``tool_choice`` names a tool.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from .conftest import Server
from .helpers import MODEL, Watch, agent

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
    env = await agent(llama_cpp_python.base_url).run("Say hello.")
    assert env.ok, env.error
    assert env.text().strip()
    assert (env.metadata.provider, env.metadata.model) == ("compat", MODEL)
    assert env.metadata.input_tokens > 0 and env.metadata.output_tokens > 0


async def test_streaming_arrives_in_deltas_with_the_same_text_as_a_run(llama_cpp_python: Server) -> None:
    question = "Name three colours."
    whole = await agent(llama_cpp_python.base_url, max_tokens=32).run(question)
    assert whole.ok, whole.error
    deltas: list[str] = []
    arrivals: list[float] = []
    async with agent(llama_cpp_python.base_url, max_tokens=32).stream(question) as stream:
        async for delta in stream:
            deltas.append(delta)
            arrivals.append(time.monotonic())
    assert len(deltas) >= 3, deltas
    assert arrivals[-1] > arrivals[0]
    assert "".join(deltas) == whole.text()
    assert stream.envelope is not None and stream.envelope.ok


async def test_the_full_tool_loop_with_a_named_tool_choice(
    llama_cpp_python: Server, watch: tuple[Watch, httpx.AsyncClient]
) -> None:
    transport, client = watch
    calls.clear()
    tool_agent = agent(
        llama_cpp_python.base_url, client=client, tools=[add], tool_choice="add", max_tokens=48
    )
    env = await tool_agent.run("What is 2 + 3? Use the add tool.")
    assert env.ok, env.error
    # Turn 1: the named tool was forced, the server answered with a tool call, the tool ran.
    assert len(calls) == 1 and all(isinstance(n, int) for n in calls[0])
    first, second = transport.bodies
    assert first["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    # Turn 2: the call and its result went back (content "" next to the call), and the choice eased to auto.
    assistant, result = second["messages"][-2:]
    assert assistant["role"] == "assistant" and assistant["content"] == ""
    assert assistant["tool_calls"][0]["function"]["name"] == "add"
    assert result == {
        "role": "tool",
        "tool_call_id": assistant["tool_calls"][0]["id"],
        "content": str(sum(calls[0])),
    }
    assert second.get("tool_choice", "auto") == "auto"
    assert env.metadata.input_tokens > 0  # both turns' usage, summed


async def test_context_overflow_is_a_bad_request_envelope_with_the_servers_message(
    llama_cpp_python: Server,
) -> None:
    env = await agent(llama_cpp_python.base_url).run("word " * 6000)
    assert env.error is not None
    assert env.error.type == "BadRequestError", env.error
    assert "context" in env.error.message.lower()

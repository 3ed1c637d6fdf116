"""The runs recorded as cassettes from the real servers (tests/real) and replayed offline (tests/integration).

The same code records and replays, so a replayed run sends byte for byte
the requests that were recorded.  Re-record after changing anything here:

    .venv/bin/python -m pytest tests/real/test_record_cassettes.py --record-cassettes
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import attrs
import httpx

from lazybridge import Envelope

from .helpers import agent

CASSETTES = Path(__file__).parent.parent / "cassettes"
#: llama.cpp's llama-server, OpenAI-compatible chat: a run, a stream and a structured answer.
LLAMA_SERVER_CHAT = CASSETTES / "llama_server_chat.json"
#: llama-cpp-python's server (chatml-function-calling): the tool loop with a named tool_choice.
LLAMA_CPP_PYTHON_TOOLS = CASSETTES / "llama_cpp_python_tool_loop.json"

QUESTION = "Name three colours."
CITY_QUESTION = "Paris has about 2100000 people. Give its name and population."
TOOL_QUESTION = "What is 2 + 3? Use the add tool."


@dataclasses.dataclass
class City:
    name: str
    population: int


@attrs.frozen
class Chat:
    plain: Envelope
    deltas: list[str]
    streamed: Envelope
    structured: Envelope


async def chat(base_url: str, client: httpx.AsyncClient) -> Chat:
    """A plain run, the same question streamed, and a structured answer (the server's grammar)."""
    plain = await agent(base_url, client=client, max_tokens=32).run(QUESTION)
    async with agent(base_url, client=client, max_tokens=32).stream(QUESTION) as stream:
        deltas = [delta async for delta in stream]
    assert stream.envelope is not None
    structured = await agent(base_url, client=client, output=City, max_tokens=64).run(CITY_QUESTION)
    return Chat(plain, deltas, stream.envelope, structured)


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def tool_loop(base_url: str, client: httpx.AsyncClient) -> Envelope:
    """The model is made to call ``add`` (a named tool_choice), the tool runs, its result goes back.

    llama-cpp-python's chatml-function-calling template leaves ``tool``
    messages out of the prompt, so the model calls ``add`` again on the
    second turn; ``max_turns=2`` ends the run there (MaxTurnsExceeded).
    """
    tool_agent = agent(base_url, client=client, tools=[add], tool_choice="add", max_tokens=48, max_turns=2)
    return await tool_agent.run(TOOL_QUESTION)

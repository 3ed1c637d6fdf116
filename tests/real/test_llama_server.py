"""LazyBridge against llama.cpp's own llama-server, over loopback, on asyncio and Trio.

The model is tiny: these tests assert the protocol (what went over the wire,
what came back, what the envelope says), never the quality of the answers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from lazybridge import Agent

from .conftest import Server
from .helpers import Watch, agent, check_plain_chat, check_streaming

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]


@pytest.fixture
async def watch(anyio_backend: object) -> AsyncIterator[tuple[Watch, httpx.AsyncClient]]:
    transport = Watch()
    async with httpx.AsyncClient(transport=transport, timeout=60.0) as client:
        yield transport, client


async def test_plain_chat(llama_server: Server) -> None:
    await check_plain_chat(llama_server.base_url)


async def test_streaming_arrives_in_deltas_with_the_same_text_as_a_run(llama_server: Server) -> None:
    await check_streaming(llama_server.base_url, usage_in_stream=True)


async def test_parallel_of_three_agents_respects_concurrency_limit(
    llama_server: Server, watch: tuple[Watch, httpx.AsyncClient]
) -> None:
    transport, client = watch
    panel = Agent.parallel(
        *(agent(llama_server.base_url, name=name, client=client) for name in ("a", "b", "c")),
        concurrency_limit=2,
    )
    env = await panel.run("Say one word.")
    assert env.ok, env.error
    assert [branch.metadata.agent for branch in env] == ["a", "b", "c"]
    assert all(branch.ok and branch.text().strip() for branch in env), [b.error for b in env]
    assert len(transport.bodies) == 3
    # The server has 3 slots, so only the limit kept the third request back.
    assert transport.max_in_flight == 2
    assert env.metadata.output_tokens == sum(b.metadata.output_tokens for b in env)


async def test_step_timeout_cancels_a_long_generation_on_the_server(llama_server: Server) -> None:
    log_start = llama_server.log_size()
    long = agent(llama_server.base_url, name="long", max_tokens=1000)
    started = time.monotonic()
    # SmolLM2 writes ~120 tokens for this at ~80 tokens/s here (about 1.5 s of
    # generation after ~0.3 s of prompt): 0.5 s ends it mid-generation, with a
    # second to spare on a fast machine and more on a loaded one.
    env = await Agent.parallel(long, step_timeout=0.5).run("Count from 1 to 1000, one number per line.")
    took = time.monotonic() - started
    [slow] = env
    assert slow.error is not None and slow.error.type == "TimeoutError"
    assert took < 10  # the branch did not wait for the generation to end
    # The request was aborted: llama-server noticed the closed connection and
    # warned "cancel task, id_task = N" (it logs nothing like it for a finished task).
    cancelled = await _log_line(llama_server, log_start, "cancel task")
    assert cancelled, llama_server.log_since(log_start)[-3000:]
    # ... and its slot is free again: the next request is served.
    after = await agent(llama_server.base_url, max_tokens=4).run("Say hi.")
    assert after.ok, after.error


@dataclasses.dataclass
class City:
    name: str
    population: int


async def test_structured_output_through_the_servers_grammar(
    llama_server: Server, watch: tuple[Watch, httpx.AsyncClient]
) -> None:
    transport, client = watch
    env = await agent(llama_server.base_url, client=client, output=City, max_tokens=64).run(
        "Paris has about 2100000 people. Give its name and population."
    )
    assert env.ok, env.error
    assert isinstance(env.payload, City)
    assert isinstance(env.payload.name, str) and isinstance(env.payload.population, int)
    # The schema went as response_format, which llama-server turns into a grammar.
    [body] = transport.bodies
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["name", "population"]


async def test_context_overflow_is_a_bad_request_envelope_with_the_servers_message(
    llama_server: Server,
) -> None:
    env = await agent(llama_server.base_url).run("word " * 6000)
    assert env.error is not None
    assert env.error.type == "BadRequestError"
    assert env.error.exception is not None and getattr(env.error.exception, "status_code", None) == 400
    assert "context" in env.error.message  # the server's own words
    assert not env.error.retryable


async def test_connection_refused_is_an_api_connection_error_envelope(anyio_backend: object) -> None:
    from .conftest import free_port

    base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    env = await agent(base_url, max_retries=0).run("hello")
    assert env.error is not None and env.error.type == "APIConnectionError"
    assert "127.0.0.1" in env.error.message or "onnect" in env.error.message


async def _log_line(server: Server, offset: int, needle: str) -> bool:
    """Whether ``needle`` shows in the server's log after ``offset`` within a few seconds.

    The server logs the cancellation when it notices the closed socket, a
    moment after the client has gone; its log file is the only signal.
    """
    with anyio.move_on_after(10):
        while True:
            if needle in server.log_since(offset).lower():
                return True
            await anyio.sleep(0.1)  # another process writes it: there is no event to wait on
    return False

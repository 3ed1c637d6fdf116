"""Cassettes: a run's HTTP exchanges recorded once (here from the fake provider on loopback), replayed offline."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from lazybridge import Agent, LLMEngine
from lazybridge.testing import Cassette, FakeProvider, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-cassette-test-0123456789abcdef"
MODELS = ["claude-haiku-4-5", "gpt-5.4-mini", "gemini-3-flash-preview", "deepseek-v4-flash"]


def weather(city: str) -> str:
    """Current weather for a city."""
    return f"18°C in {city}"


_clients: list[httpx.AsyncClient] = []


@pytest.fixture(autouse=True)
async def close_clients(anyio_backend: object) -> AsyncIterator[None]:
    """The cassettes' clients are the test's own (LazyBridge never closes a client it was given)."""
    yield
    while _clients:
        await _clients.pop().aclose()


def agent(model: str, base_url: str, cassette: Cassette) -> Agent:
    client = cassette.client()
    _clients.append(client)
    engine = LLMEngine(model, base_url=base_url, api_key=KEY, http_client=client)
    return Agent(engine=engine, tools=[weather], name="w")


@pytest.mark.parametrize("model", MODELS)
async def test_a_recorded_tool_loop_replays_offline_with_the_same_result(
    model: str, fake: FakeProvider, base_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "tool_loop.json"
    fake.push(Reply(tool_calls=(("weather", {"city": "Rome"}),)), Reply(text="18°C in Rome.", input_tokens=40))
    recorded = await agent(model, base_url, Cassette(path, mode="record")).run("Weather in Rome?")
    assert recorded.ok and len(fake.requests) == 2

    fake.reset()  # nothing scripted: a request reaching the server would fail
    replayed = await agent(model, base_url, Cassette(path)).run("Weather in Rome?")
    assert fake.requests == []
    assert replayed.ok and replayed.text() == recorded.text() == "18°C in Rome."
    assert (replayed.metadata.input_tokens, replayed.metadata.output_tokens) == (
        recorded.metadata.input_tokens,
        recorded.metadata.output_tokens,
    )


@pytest.mark.parametrize("model", MODELS)
async def test_a_recorded_stream_replays_chunk_by_chunk(
    model: str, fake: FakeProvider, base_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "stream.json"
    fake.push(Reply(text="one two three four five six seven eight"))
    live = agent(model, base_url, Cassette(path, mode="record"))
    async with live.stream("count") as stream:
        recorded = [delta async for delta in stream]
    assert len(recorded) > 1

    fake.reset()
    replay = agent(model, base_url, Cassette(path))
    async with replay.stream("count") as stream:
        replayed = [delta async for delta in stream]
    assert replayed == recorded and fake.requests == []
    [exchange] = json.loads(path.read_text())["exchanges"]
    assert len(exchange["response"]["chunks"]) > 1  # kept as the chunks arrived


async def test_secrets_are_scrubbed_before_anything_is_written(
    fake: FakeProvider, base_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "secret.json"
    fake.push(Reply(text=f"your key is {KEY}"))  # a provider that echoes the key
    for model in ("claude-haiku-4-5", "gpt-5.4-mini", "gemini-3-flash-preview"):
        fake.push(Reply(text="fine"))
        await agent(model, base_url, Cassette(path, mode="record")).run("hi")
    text = path.read_text()
    assert KEY not in text and KEY[3:] not in text
    headers = {name for e in json.loads(text)["exchanges"] for name, _ in e["request"]["headers"]}
    assert not headers & {"authorization", "x-api-key", "x-goog-api-key"}


async def test_a_request_that_was_not_recorded_fails_clearly(
    fake: FakeProvider, base_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "mismatch.json"
    fake.push(Reply(text="Rome is sunny."))
    await agent("gpt-5.4-mini", base_url, Cassette(path, mode="record")).run("Weather in Rome?")

    env = await agent("gpt-5.4-mini", base_url, Cassette(path)).run("Weather in Oslo?")
    assert env.error is not None and env.error.type == "CassetteMismatch"
    assert "Weather in Rome?" in env.error.message and "Weather in Oslo?" in env.error.message
    assert "body.messages[0].content" in env.error.message
    assert len(fake.requests) == 1  # only the recording reached the server


async def test_once_records_the_first_time_and_replays_after(
    fake: FakeProvider, base_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "once.json"
    fake.push(Reply(text="first"))
    first = await agent("claude-haiku-4-5", base_url, Cassette(path, mode="once")).run("go")
    assert path.exists() and len(fake.requests) == 1
    second = await agent("claude-haiku-4-5", base_url, Cassette(path, mode="once")).run("go")
    assert second.text() == first.text() == "first" and len(fake.requests) == 1


async def test_bad_cassettes_are_refused(tmp_path: Path) -> None:
    from lazybridge import ConfigurationError

    with pytest.raises(FileNotFoundError):
        Cassette(tmp_path / "missing.json")
    with pytest.raises(ConfigurationError, match="mode must be"):
        Cassette(tmp_path / "x.json", mode="sometimes")  # type: ignore[arg-type]
    (tmp_path / "other.json").write_text(json.dumps({"hello": "world"}))
    with pytest.raises(ConfigurationError, match="not a LazyBridge cassette"):
        Cassette(tmp_path / "other.json")

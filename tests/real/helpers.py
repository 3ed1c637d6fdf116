"""What the real-server tests share: agents on compat/ routes, and a transport that watches the wire."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from lazybridge import Agent, LLMEngine

#: The model's name as the compat/ route sends it (llama-server and llama-cpp-python serve it by this alias).
MODEL = "smollm2"


class Watch(httpx.AsyncBaseTransport):
    """A real transport that keeps every request's JSON body and counts requests in flight.

    A request is in flight from the moment it is sent until its response's
    body is closed (so a stream counts for as long as it streams).
    """

    def __init__(self) -> None:
        self._real = httpx.AsyncHTTPTransport()
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(await request.aread()))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await self._real.handle_async_request(request)
        except BaseException:
            self.in_flight -= 1
            raise
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Counted(response, self._done),
            extensions=response.extensions,
        )

    def _done(self) -> None:
        self.in_flight -= 1

    async def aclose(self) -> None:
        await self._real.aclose()


class _Counted(httpx.AsyncByteStream):
    def __init__(self, response: httpx.Response, done: Callable[[], None]) -> None:
        self._response = response
        self._done: Callable[[], None] | None = done

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        async for chunk in self._response.stream:  # type: ignore[union-attr]
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._response.aclose()
        finally:
            if self._done is not None:
                self._done, done = None, self._done
                done()


def agent(
    base_url: str, *, name: str = "real", client: httpx.AsyncClient | None = None, **kwargs: Any
) -> Agent:
    """An agent on the server's OpenAI-compatible chat route, deterministic (temperature 0)."""
    output = kwargs.pop("output", None)
    tools = kwargs.pop("tools", ())
    kwargs.setdefault("temperature", 0.0)
    kwargs.setdefault("max_tokens", 24)
    engine = LLMEngine(f"compat/{MODEL}", base_url=base_url, http_client=client, **kwargs)
    return Agent(engine=engine, name=name, output=output, tools=tools)


# -- scenarios both servers run --------------------------------------------------------


async def check_plain_chat(base_url: str) -> None:
    """A plain question gets a text answer with the route and the usage the server reported."""
    env = await agent(base_url).run("Say hello.")
    assert env.ok, env.error
    assert isinstance(env.payload, str) and env.text().strip()
    assert (env.metadata.provider, env.metadata.model) == ("compat", MODEL)
    assert env.metadata.input_tokens > 0 and env.metadata.output_tokens > 0


async def check_streaming(base_url: str, *, usage_in_stream: bool) -> None:
    """Deltas arrive one by one, over time, and join to the text a plain run gets.

    ``usage_in_stream``: whether the server reports usage at the end of a
    stream (llama-cpp-python's does not).
    """
    question = "Name three colours."
    whole = await agent(base_url, max_tokens=32).run(question)
    assert whole.ok, whole.error
    deltas: list[str] = []
    arrivals: list[float] = []
    async with agent(base_url, max_tokens=32).stream(question) as stream:
        async for delta in stream:
            deltas.append(delta)
            arrivals.append(time.monotonic())
    assert len(deltas) >= 3, deltas  # token by token, not one blob
    assert arrivals[-1] > arrivals[0]  # over time, as the server generated them
    assert "".join(deltas) == whole.text()  # temperature 0: the same answer either way
    assert stream.envelope is not None and stream.envelope.ok
    if usage_in_stream:
        assert stream.envelope.metadata.output_tokens > 0

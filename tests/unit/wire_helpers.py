"""Shared pieces of the wire-format tests: recorded fixtures, a real SSE parser, one request.

Recorded bodies live in ``tests/fixtures/provider/`` (``SOURCES.md`` there
says where each one was recorded).  Streams are served through ``httpx.MockTransport`` in small
chunks and split by ``httpx_sse`` -- the parser the HTTP layer uses -- so the
decoders are tested on the very ``(event, data)`` pairs they will receive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import httpx
import httpx_sse

from lazybridge.messages import (
    ImagePart,
    Message,
    ModelRequest,
    ModelResponse,
    OutputSchema,
    ReasoningPart,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolResult,
    ToolSpec,
)
from lazybridge.providers.base import WireFormat

FIXTURES = Path(__file__).parents[1] / "fixtures" / "provider"


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def sse_events(name: str, *, chunk_size: int | None = 7) -> list[tuple[str, str]]:
    """The fixture's events as ``httpx_sse`` yields them, bytes delivered ``chunk_size`` at a time.

    Small chunks split CRLF pairs and multi-byte UTF-8 characters across reads.
    """
    raw = (FIXTURES / name).read_bytes()
    size = chunk_size or len(raw)
    chunks = [raw[i : i + size] for i in range(0, len(raw), size)]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=iter(chunks))

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        httpx_sse.connect_sse(client, "POST", "http://provider.test/stream") as source,
    ):
        return [(sse.event, sse.data) for sse in source.iter_sse()]


def decode_stream(
    wire: WireFormat, name: str, *, chunk_size: int | None = 7
) -> tuple[list[str], ModelResponse]:
    """Feed a recorded stream to a fresh decoder: ``(text deltas, final response)``."""
    decoder = wire.stream_decoder()
    deltas: list[str] = []
    for event, data in sse_events(name, chunk_size=chunk_size):
        deltas.extend(decoder.feed(event, data))
    return deltas, decoder.finish()


def decode_events(wire: WireFormat, events: list[tuple[str, Any]]) -> ModelResponse:
    """Feed hand-written events (``data`` given as JSON values or raw strings)."""
    decoder = wire.stream_decoder()
    for event, data in events:
        decoder.feed(event, data if isinstance(data, str) else json.dumps(data))
    return decoder.finish()


WEATHER_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
TIME_PARAMS = {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}
REPORT_SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string"}},
    "required": ["summary"],
    "additionalProperties": False,
}


def representative_request(**changes: Any) -> ModelRequest:
    """One request exercising every translation: system, image, reasoning from three
    providers, two tool calls (one with a Gemini signature), an ok and an error
    result, a later assistant turn without tools, tools, forced tool use,
    structured output, temperature and max_tokens."""
    request = ModelRequest(
        model="test-model",
        system="You are terse.",
        messages=(
            Message(
                "user",
                (TextPart("Weather and time in Paris?"), ImagePart("image/png", data="iVBORw0KGgo=")),
            ),
            Message(
                "assistant",
                (
                    ReasoningPart("Need both tools.", "anthropic", signature="sig-anthropic"),
                    ReasoningPart("", "anthropic", redacted="opaque-redacted"),
                    ReasoningPart("Call the tools.", "deepseek"),
                    ReasoningPart("Thinking summary.", "gemini", signature="sig-gemini-thought"),
                    TextPart("Checking."),
                    ToolCall("call_weather", "get_weather", {"city": "Paris"}, signature="sig-gemini-call"),
                    ToolCall("call_time", "get_time", {"tz": "Europe/Paris"}),
                ),
            ),
            Message(
                "tool",
                (
                    ToolResult("call_weather", "get_weather", "12°C, cloudy"),
                    ToolResult("call_time", "get_time", "clock unavailable", is_error=True),
                ),
            ),
            Message(
                "assistant",
                (ReasoningPart("Report it.", "deepseek"), TextPart("12°C and cloudy; time unknown.")),
            ),
            Message.user("Now as JSON, please."),
        ),
        tools=(
            ToolSpec("get_weather", "Current weather for a city", WEATHER_PARAMS, strict=True),
            ToolSpec("get_time", "Local time in a time zone", TIME_PARAMS),
        ),
        tool_choice=ToolChoice("required"),
        output_schema=OutputSchema("Weather report", REPORT_SCHEMA),
        temperature=0.2,
        max_tokens=512,
    )
    return attrs.evolve(request, **changes)


def with_results(response: ModelResponse, *results: ToolResult) -> ModelRequest:
    """A follow-up request: a user prompt, ``response`` as the assistant turn, then ``results``."""
    return ModelRequest(
        model="test-model",
        messages=(Message.user("Go."), response.as_message(), Message("tool", results)),
    )


@attrs.frozen
class Pet:
    """An output type with an optional and a defaulted field (strict mode lists both)."""

    name: str
    nickname: str | None = None
    legs: int = 4


@attrs.frozen
class Owner:
    """Nested optional objects: a list of Pets and a Pet or None."""

    name: str
    pets: list[Pet] = attrs.Factory(list)
    best: Pet | None = None

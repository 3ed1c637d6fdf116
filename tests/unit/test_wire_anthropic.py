"""Anthropic Messages: request JSON, recorded replies and streams, errors."""

from __future__ import annotations

import json

import attrs
import pytest

from lazybridge.errors import OverloadedError, ProviderError, RateLimitError, StreamError
from lazybridge.messages import (
    Message,
    ModelRequest,
    ModelResponse,
    OpaquePart,
    ReasoningPart,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
)
from lazybridge.providers.anthropic import AnthropicFormat
from lazybridge.providers.base import WireFormat

from .wire_helpers import (
    REPORT_SCHEMA,
    TIME_PARAMS,
    WEATHER_PARAMS,
    decode_events,
    decode_stream,
    fixture_json,
    fixture_text,
    representative_request,
    sse_events,
    with_results,
)

WIRE: WireFormat = AnthropicFormat()

THINKING_SIGNATURE = (
    "EuYDCmMIDBgCKkC05Zda4P+Cdk/LQKE+Aol4ZY3EY4wLDrf8XcApz2PiqrxiRjS7uY1kGtZ63vVlaVmtuIpdsHbkdfGHb9AsBYw+Mhlj"
    "bGF1ZGUtaGFpa3UtNC01LTIwMjUxMDAxOAASDAXGiw23anViCe75HBoMATySwgVJ0A405/0FIjDbVX0lAn7rEq/ejcuOZWDihLSbS9KG"
    "ihD2QsWmXzp2Ly5ZD5vtKOcKvhEDQ0PCeVkqsALmnx7FhoJ7TQQyomwwFY+zA/Sft9n7u3lNE/RzbZMF4jmvo9i1vtNLETK18iSdCAhS"
    "y+NJLFRK/vcw6sVaDNrEMGgIadv5iZ0Jmx+iHyR8sXbasYDMbN07/ype7JGpKxHCdQOrNA7plS39Yy5l7hqJz4ueYoCpMxc+IkNY+TCy"
    "MpKwGxYqKSUdElyLr0Ko3vXtdLJBTJQuMtU+cz+UPHkpTbGRPntg/hBvNztCjlqqeM6PKoE8rsDJMx0+q1eOrFPC9SYgCZqSGHlSHoOe"
    "xnfkrN2aTlZjcBcFblXq76bKF1YHINp3uL+jByhp91XFSkhF+b43BC9PDtRUYKw3wT+IZlEI6V3GppKBDSa8L0Sgm8m1Bb2PYvi3oIv+"
    "LDpUImrMckjemNZmBeGcEZQ4FjZiGAE="
)
THINKING_TEXT = (
    "The user wants two names for a pet pelican, and they want me to be brief. I'll suggest two names that "
    "would suit a pelican well.\n\nSome good options:\n- Pelé (play on pelican)\n- Pouch (referencing their "
    "bill pouch)\n- Captain Beak\n- Squirt\n- Scoop\n- Wing\n\nLet me give two brief, catchy names:"
)

EXPECTED_BODY = {
    "model": "test-model",
    "max_tokens": 512,
    "system": "You are terse.",
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather and time in Paris?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Need both tools.", "signature": "sig-anthropic"},
                {"type": "redacted_thinking", "data": "opaque-redacted"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_weather", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_time", "name": "get_time", "input": {"tz": "Europe/Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_weather", "content": "12°C, cloudy"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_time",
                    "content": "clock unavailable",
                    "is_error": True,
                },
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "12°C and cloudy; time unknown."}]},
        {"role": "user", "content": [{"type": "text", "text": "Now as JSON, please."}]},
    ],
    "tools": [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER_PARAMS,
            "strict": True,
        },
        {"name": "get_time", "description": "Local time in a time zone", "input_schema": TIME_PARAMS},
    ],
    "tool_choice": {"type": "any"},
    "output_config": {"format": {"type": "json_schema", "schema": REPORT_SCHEMA}},
}


# -- request -------------------------------------------------------------------


def test_request_body_golden() -> None:
    """The newest API version gets no temperature; other providers' reasoning is dropped."""
    assert WIRE.build_body(representative_request(), stream=False) == EXPECTED_BODY


def test_older_api_version_still_sends_temperature() -> None:
    body = AnthropicFormat(version="2023-06-01").build_body(representative_request(), stream=False)
    assert body == {**EXPECTED_BODY, "temperature": 0.2}


def test_streaming_request_sets_stream() -> None:
    assert WIRE.build_body(representative_request(), stream=True) == {**EXPECTED_BODY, "stream": True}


def test_max_tokens_defaults_to_4096() -> None:
    assert WIRE.build_body(representative_request(max_tokens=None), stream=False)["max_tokens"] == 4096


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (ToolChoice("auto"), {"type": "auto"}),
        (ToolChoice("none"), {"type": "none"}),
        (ToolChoice("required"), {"type": "any"}),
        (ToolChoice(name="get_time"), {"type": "tool", "name": "get_time"}),
    ],
)
def test_tool_choice_mapping(choice: ToolChoice, wire: dict[str, str]) -> None:
    assert WIRE.build_body(representative_request(tool_choice=choice), stream=False)["tool_choice"] == wire


def test_no_tool_choice_no_schema_no_system_are_omitted() -> None:
    body = WIRE.build_body(
        representative_request(tool_choice=None, output_schema=None, system=None, tools=()), stream=False
    )
    assert not {"tool_choice", "output_config", "system", "tools"} & body.keys()


def test_tool_results_come_before_text_of_the_same_user_turn() -> None:
    """A tool message followed by a user message is one user turn, tool_result blocks first."""
    request = representative_request()
    tool_turn = request.messages[2]
    merged = attrs.evolve(tool_turn, parts=(TextPart("Also: hurry."), *tool_turn.parts))
    body = WIRE.build_body(attrs.evolve(request, messages=(*request.messages[:2], merged)), stream=False)
    assert [b["type"] for b in body["messages"][2]["content"]] == ["tool_result", "tool_result", "text"]


def test_headers() -> None:
    assert WIRE.path("claude-sonnet-4-5", stream=True) == "/v1/messages"
    assert WIRE.auth_headers("k") == {"x-api-key": "k"}
    assert WIRE.extra_headers() == {"anthropic-version": "2026-10-21"}
    assert AnthropicFormat("2023-06-01").extra_headers() == {"anthropic-version": "2023-06-01"}


# -- non-streamed replies ----------------------------------------------------------


def test_text_reply_counts_cached_prompt_tokens_as_input() -> None:
    response = WIRE.parse_response(fixture_json("anthropic/text.json"))
    assert response.parts == (
        TextPart(
            "Python is a beginner-friendly, versatile programming language widely used for web "
            "development, data science, machine learning, automation, and scientific computing."
        ),
    )
    assert response.stop_reason == "stop"
    assert response.raw_stop_reason == "end_turn"
    assert response.usage == Usage(
        input_tokens=3 + 418 + 1111, output_tokens=33, cache_read_tokens=1111, cache_write_tokens=418
    )
    assert response.model == "claude-sonnet-4-5-20250929"
    assert response.response_id == "msg_01KPaKTJSqAKoZri7Ujrny58"


def test_parallel_tool_calls_reply() -> None:
    response = WIRE.parse_response(fixture_json("anthropic/tool_calls_parallel.json"))
    assert response.parts == (
        TextPart("I'll get the weather and elevation information for Denver."),
        ToolCall("toolu_01BBTvQnxdxk7vPHD1ytXyGs", "get_weather", {"city": "Denver"}),
        ToolCall("toolu_017Q9pGQ9Hx126pyyLLnVqJV", "get_elevation", {"city": "Denver"}),
    )
    assert response.stop_reason == "tool_calls"
    assert response.usage == Usage(input_tokens=612, output_tokens=101)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("refusal", "content_filter"),
        ("pause_turn", "pause"),
    ],
)
def test_stop_reasons(raw: str, normalized: str) -> None:
    body = {"content": [{"type": "text", "text": "x"}], "stop_reason": raw, "usage": {}}
    assert WIRE.parse_response(body).stop_reason == normalized


def test_server_tool_blocks_are_kept_opaque_and_go_back_as_is() -> None:
    """Blocks we do not interpret (server tools) round-trip unchanged, in order, like thinking."""
    server = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    body = {
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s1"},
            {"type": "redacted_thinking", "data": "blob"},
            server,
            {"type": "text", "text": "done"},
        ],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    response = WIRE.parse_response(body)
    assert response.parts == (
        ReasoningPart("hmm", "anthropic", signature="s1"),
        ReasoningPart("", "anthropic", redacted="blob"),
        OpaquePart("anthropic", server),
        TextPart("done"),
    )
    history = (Message.user("q"), response.as_message())
    sent = WIRE.build_body(ModelRequest("claude-haiku-4-5", history), stream=False)
    assert sent["messages"][1]["content"] == body["content"]


# -- streams ----------------------------------------------------------------------


def test_stream_text_equals_the_non_streamed_parse() -> None:
    deltas, response = decode_stream(WIRE, "anthropic/stream_text.sse")
    assert deltas == ["-", " Captain", "\n- Sc", "oop"]
    assert response == WIRE.parse_response(
        {
            "id": "msg_017A4s3HAsrqf5d2WvBmrpLr",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "- Captain\n- Scoop"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 17, "cache_creation_input_tokens": 0, "output_tokens": 10},
        }
    )
    assert response.usage == Usage(input_tokens=17, output_tokens=10)
    assert response.stop_reason == "stop"


def test_stream_thinking_keeps_text_and_signature_verbatim() -> None:
    deltas, response = decode_stream(WIRE, "anthropic/stream_thinking.sse")
    text = '1. **Pouch** - references their iconic bill pouch\n2. **Pelé** - playful take on "pelican"'
    assert "".join(deltas) == text
    assert response.parts == (
        ReasoningPart(THINKING_TEXT, "anthropic", signature=THINKING_SIGNATURE),
        TextPart(text),
    )
    assert response.usage == Usage(input_tokens=46, output_tokens=133)
    assert response.model == "claude-haiku-4-5-20251001"
    assert response == WIRE.parse_response(
        {
            "id": "msg_01Eg56TYRnKCEgWtZu2yjR1t",
            "model": "claude-haiku-4-5-20251001",
            "content": [
                {"type": "thinking", "thinking": THINKING_TEXT, "signature": THINKING_SIGNATURE},
                {"type": "text", "text": text},
            ],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 46, "output_tokens": 133},
        }
    )


def test_streamed_thinking_round_trips_into_the_next_request() -> None:
    _, response = decode_stream(WIRE, "anthropic/stream_thinking.sse")
    body = WIRE.build_body(with_results(response), stream=False)
    assert body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": THINKING_TEXT,
        "signature": THINKING_SIGNATURE,
    }


def test_stream_tool_call_without_final_blank_line() -> None:
    """httpx-sse 0.4.3 drops the unterminated last event (message_stop); the reply is complete anyway."""
    events = sse_events("anthropic/stream_tool_call.sse")
    assert fixture_text("anthropic/stream_tool_call.sse").endswith('data: {"type":"message_stop"}')
    assert '"message_delta"' in events[-1][1]
    deltas, response = decode_stream(WIRE, "anthropic/stream_tool_call.sse")
    assert deltas == ["I", "'ll check the current weather in Paris for you."]
    assert response == ModelResponse(
        parts=(
            TextPart("I'll check the current weather in Paris for you."),
            ToolCall("toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather", {"location": "Paris"}),
        ),
        stop_reason="tool_calls",
        # message_delta carries only output_tokens: input comes from message_start.
        usage=Usage(input_tokens=377, output_tokens=65),
        model="claude-sonnet-4-20250514",
        raw_stop_reason="tool_use",
        response_id="msg_019Q1hrJbZG26Fb9BQhrkHEr",
    )


def test_stream_parallel_tool_calls_without_arguments() -> None:
    deltas, response = decode_stream(WIRE, "anthropic/stream_tool_calls_parallel.sse", chunk_size=None)
    assert deltas == []
    assert response.parts == (
        ToolCall("toolu_01LtHJmixrs9NcWQkK8hu8hj", "pelican_name_generator", {}),
        ToolCall("toolu_01N8a4jWyf116qKTMqKKmjyt", "pelican_name_generator", {}),
    )
    assert response.stop_reason == "tool_calls"
    assert response.usage == Usage(input_tokens=542, output_tokens=62)
    assert response == WIRE.parse_response(
        {
            "id": "msg_01V2noLbAb2NgKnjaNw6Cn3w",
            "model": "claude-haiku-4-5-20251001",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_01LtHJmixrs9NcWQkK8hu8hj",
                    "name": "pelican_name_generator",
                },
                {
                    "type": "tool_use",
                    "id": "toolu_01N8a4jWyf116qKTMqKKmjyt",
                    "name": "pelican_name_generator",
                },
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 542, "output_tokens": 62},
        }
    )


def test_invalid_streamed_tool_json_is_kept_raw_and_sent_back() -> None:
    response = decode_events(
        WIRE,
        [
            ("message_start", {"type": "message_start", "message": {"id": "m", "usage": {}}}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": '{"a": '},
                },
            ),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}}),
        ],
    )
    assert response.tool_calls == (ToolCall("t1", "f", {"__raw_arguments__": '{"a": '}),)


def test_stream_without_stop_reason_is_an_error() -> None:
    with pytest.raises(StreamError):
        decode_events(WIRE, [("message_start", {"type": "message_start", "message": {"usage": {}}})])


@pytest.mark.parametrize(
    ("kind", "exc"),
    [("overloaded_error", OverloadedError), ("rate_limit_error", RateLimitError), ("api_error", StreamError)],
)
def test_in_stream_error_event_raises_the_matching_error(kind: str, exc: type[Exception]) -> None:
    decoder = WIRE.stream_decoder()
    decoder.feed("message_start", '{"type":"message_start","message":{"usage":{}}}')
    with pytest.raises(exc) as info:
        # Trailing spaces as Anthropic pads its data lines.
        decoder.feed(
            "error", json.dumps({"type": "error", "error": {"type": kind, "message": "Busy"}}) + "  "
        )
    assert type(info.value) is exc
    assert isinstance(info.value, ProviderError)
    assert info.value.provider == "anthropic"
    assert info.value.message == "Busy"


# -- errors ---------------------------------------------------------------------


def test_error_fixtures() -> None:
    bad = fixture_text("anthropic/error_400_invalid_request.json")
    assert WIRE.error_message(bad) == (
        "This model does not support effort level 'xhigh'. Supported levels: high, low, max, medium."
    )
    assert AnthropicFormat().error_kind(bad) == "invalid_request_error"
    missing = fixture_text("anthropic/error_404_not_found.json")
    assert WIRE.error_message(missing) == "model: claude-sonet-4-5"
    assert AnthropicFormat().error_kind(missing) == "not_found_error"


def test_spend_limit_kind_is_more_specific_than_rate_limit() -> None:
    body = (
        '{"type":"error","error":{"type":"rate_limit_error","message":"limit",'
        '"details":{"error_code":"enforced_spend_limit_reached"}}}'
    )
    assert AnthropicFormat().error_kind(body) == "enforced_spend_limit_reached"


def test_error_message_of_a_non_json_body_is_the_truncated_body() -> None:
    body = "<html>" + "x" * 1000
    assert WIRE.error_message(body) == body[:500]
    assert AnthropicFormat().error_kind(body) is None


def test_tool_result_follows_the_parsed_tool_calls() -> None:
    response = WIRE.parse_response(fixture_json("anthropic/tool_calls_parallel.json"))
    results = [ToolResult(c.id, c.name, "ok") for c in response.tool_calls]
    body = WIRE.build_body(with_results(response, *results), stream=False)
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01BBTvQnxdxk7vPHD1ytXyGs", "content": "ok"},
            {"type": "tool_result", "tool_use_id": "toolu_017Q9pGQ9Hx126pyyLLnVqJV", "content": "ok"},
        ],
    }

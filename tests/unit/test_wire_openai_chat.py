"""OpenAI Chat Completions: request JSON, recorded replies and streams, errors."""

from __future__ import annotations

import json

import pytest

from lazybridge.errors import ProviderError, RateLimitError, StreamError
from lazybridge.messages import ModelResponse, TextPart, ToolCall, ToolChoice, ToolResult, Usage
from lazybridge.providers.base import WireFormat
from lazybridge.providers.openai_chat import OpenAIChatFormat

from .wire_helpers import (
    REPORT_SCHEMA,
    TIME_PARAMS,
    WEATHER_PARAMS,
    decode_events,
    decode_stream,
    fixture_json,
    fixture_text,
    representative_request,
    with_results,
)

WIRE: WireFormat = OpenAIChatFormat()

EXPECTED_BODY = {
    "model": "test-model",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather and time in Paris?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_weather",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_time",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"tz": "Europe/Paris"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_weather", "content": "12°C, cloudy"},
        {"role": "tool", "tool_call_id": "call_time", "content": "clock unavailable"},
        {"role": "assistant", "content": "12°C and cloudy; time unknown."},
        {"role": "user", "content": "Now as JSON, please."},
    ],
    "max_completion_tokens": 512,
    "temperature": 0.2,
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER_PARAMS,
                "strict": True,
            },
        },
        {
            "type": "function",
            "function": {
                "name": "get_time",
                "description": "Local time in a time zone",
                "parameters": TIME_PARAMS,
            },
        },
    ],
    "tool_choice": "required",
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "Weather_report", "schema": REPORT_SCHEMA, "strict": True},
    },
}

TOOL_CALLS = (
    ("GetWeatherArgs", {"city": "Edinburgh", "country": "GB", "units": "c"}),
    ("get_stock_price", {"ticker": "AAPL", "exchange": "NASDAQ"}),
)


# -- request -------------------------------------------------------------------


def test_request_body_golden() -> None:
    """Reasoning of every provider is dropped; the error flag has no place on this wire."""
    assert WIRE.build_body(representative_request(), stream=False) == EXPECTED_BODY


def test_streaming_request_asks_for_usage() -> None:
    body = WIRE.build_body(representative_request(), stream=True)
    assert body == {**EXPECTED_BODY, "stream": True, "stream_options": {"include_usage": True}}


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (ToolChoice("auto"), "auto"),
        (ToolChoice("none"), "none"),
        (ToolChoice("required"), "required"),
        (ToolChoice(name="get_time"), {"type": "function", "function": {"name": "get_time"}}),
    ],
)
def test_tool_choice_mapping(choice: ToolChoice, wire: object) -> None:
    assert WIRE.build_body(representative_request(tool_choice=choice), stream=False)["tool_choice"] == wire


def test_optional_fields_are_omitted() -> None:
    body = WIRE.build_body(
        representative_request(
            system=None, tools=(), tool_choice=None, output_schema=None, temperature=None, max_tokens=None
        ),
        stream=False,
    )
    assert set(body) == {"model", "messages"}
    assert body["messages"][0]["role"] == "user"


def test_headers() -> None:
    assert WIRE.path("gpt-4o", stream=False) == "/chat/completions"
    assert WIRE.auth_headers("sk-x") == {"Authorization": "Bearer sk-x"}
    assert WIRE.extra_headers() == {}


# -- non-streamed replies ----------------------------------------------------------


def test_text_reply() -> None:
    response = WIRE.parse_response(fixture_json("openai_chat/text.json"))
    assert response == ModelResponse(
        parts=(TextPart("YES"),),
        stop_reason="stop",
        usage=Usage(input_tokens=146, output_tokens=3),
        model="gpt-4o-mini-2024-07-18",
        raw_stop_reason="stop",
        response_id="chatcmpl-BWpGTZY785VsZipCO0bAvF7Z7tjdA",
    )


def test_parallel_tool_calls_reply() -> None:
    response = WIRE.parse_response(fixture_json("openai_chat/tool_calls_parallel.json"))
    assert response.parts == (
        ToolCall("call_fdNz3vOBKYgOIpMdWotB9MjY", *TOOL_CALLS[0]),
        ToolCall("call_h1DWI1POMJLb0KwIyQHWXD4p", *TOOL_CALLS[1]),
    )
    assert response.text == ""
    assert response.stop_reason == "tool_calls"
    assert response.usage == Usage(input_tokens=149, output_tokens=60)


def test_invalid_arguments_are_kept_raw_and_sent_back_verbatim() -> None:
    raw = '{"city": "Paris"'
    body = {
        "id": "r1",
        "choices": [
            {
                "message": {
                    "content": None,
                    "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": raw}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    response = WIRE.parse_response(body)
    assert response.tool_calls == (ToolCall("c1", "f", {"__raw_arguments__": raw}),)
    sent = WIRE.build_body(with_results(response, ToolResult("c1", "f", "bad args")), stream=False)
    assert sent["messages"][1]["tool_calls"][0]["function"]["arguments"] == raw


def test_a_tool_only_turn_goes_back_with_null_content() -> None:
    """OpenAI documents ``content: null`` next to tool calls (§2.5): that wire keeps it."""
    response = WIRE.parse_response(fixture_json("openai_chat/tool_calls_parallel.json"))
    results = [ToolResult(c.id, c.name, "ok") for c in response.tool_calls]
    assistant = WIRE.build_body(with_results(response, *results), stream=False)["messages"][1]
    assert assistant["content"] is None and len(assistant["tool_calls"]) == 2


def test_usage_details() -> None:
    body = {
        "choices": [{"message": {"content": "x"}, "finish_reason": "length"}],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "prompt_tokens_details": {"cached_tokens": 60},
            "completion_tokens_details": {"reasoning_tokens": 40},
        },
    }
    response = WIRE.parse_response(body)
    assert response.usage == Usage(100, 50, cache_read_tokens=60, reasoning_tokens=40)
    assert response.stop_reason == "length"


def test_refusal_is_text_with_content_filter() -> None:
    body = {"choices": [{"message": {"content": None, "refusal": "I can't."}, "finish_reason": "stop"}]}
    response = WIRE.parse_response(body)
    assert response.text == "I can't."
    assert response.stop_reason == "content_filter"


# -- streams ----------------------------------------------------------------------


def test_stream_text() -> None:
    text = (
        "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, "
        "I recommend checking a reliable weather website or a weather app."
    )
    deltas, response = decode_stream(WIRE, "openai_chat/stream_text.sse")
    assert len(deltas) == 30
    assert "".join(deltas) == text
    assert response == ModelResponse(
        parts=(TextPart(text),),
        stop_reason="stop",
        usage=Usage(input_tokens=14, output_tokens=30),
        model="gpt-4o-2024-08-06",
        raw_stop_reason="stop",
        response_id="chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL",
    )


def test_stream_tool_calls_match_the_non_streamed_reply() -> None:
    """Same prompt recorded both ways: only the provider-generated ids differ."""
    deltas, streamed = decode_stream(WIRE, "openai_chat/stream_tool_calls_parallel.sse")
    whole = WIRE.parse_response(fixture_json("openai_chat/tool_calls_parallel.json"))
    assert deltas == []
    assert streamed.parts == (
        ToolCall("call_JMW1whyEaYG438VE1OIflxA2", *TOOL_CALLS[0]),
        ToolCall("call_DNYTawLBoN8fj3KN6qU9N1Ou", *TOOL_CALLS[1]),
    )
    assert [(c.name, c.arguments) for c in streamed.tool_calls] == [
        (c.name, c.arguments) for c in whole.tool_calls
    ]
    assert (streamed.text, streamed.usage, streamed.stop_reason, streamed.model) == (
        whole.text,
        whole.usage,
        whole.stop_reason,
        whole.model,
    )


def chunk(delta: dict[str, object], finish: str | None = None, **extra: object) -> dict[str, object]:
    return {
        "id": "r",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def test_stream_sets_id_and_name_only_when_non_empty_and_appends_arguments() -> None:
    response = decode_events(
        WIRE,
        [
            (
                "",
                chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}]}),
            ),
            (
                "",
                chunk(
                    {"tool_calls": [{"index": 0, "id": "", "function": {"name": "", "arguments": '{"a"'}}]}
                ),
            ),
            ("", chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]})),
            ("", chunk({}, "tool_calls")),
            ("", "[DONE]"),
        ],
    )
    assert response.tool_calls == (ToolCall("c1", "f", {"a": 1}),)


def test_stream_equals_the_non_streamed_parse_of_the_same_reply() -> None:
    streamed = decode_events(
        WIRE,
        [
            ("", chunk({"role": "assistant", "content": ""})),
            ("", chunk({"content": "Hel"})),
            ("", chunk({"content": "lo"})),
            ("", chunk({}, "stop")),
            (
                "",
                {
                    "id": "r",
                    "model": "m",
                    "choices": [],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2},
                },
            ),
            ("", "[DONE]"),
        ],
    )
    whole = WIRE.parse_response(
        {
            "id": "r",
            "model": "m",
            "choices": [{"message": {"content": "Hello"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        }
    )
    assert streamed == whole


def test_truncated_stream_is_an_error() -> None:
    with pytest.raises(StreamError):
        decode_events(WIRE, [("", chunk({"content": "Hel"}))])


def test_in_stream_error_payload_raises() -> None:
    decoder = WIRE.stream_decoder()
    decoder.feed("", json.dumps(chunk({"content": "Hel"})))
    with pytest.raises(StreamError) as info:
        decoder.feed("", '{"error": {"message": "The server had an error", "type": "server_error"}}')
    assert type(info.value) is StreamError
    assert info.value.message == "The server had an error"
    assert info.value.provider == "openai"


def test_in_stream_quota_error_is_a_rate_limit_that_will_not_clear() -> None:
    decoder = WIRE.stream_decoder()
    with pytest.raises(RateLimitError) as info:
        decoder.feed(
            "", '{"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}}'
        )
    assert info.value.retryable is False


# -- errors ---------------------------------------------------------------------


def test_error_fixtures() -> None:
    wire = OpenAIChatFormat()
    unsupported = fixture_text("openai_chat/error_400_unsupported_value.json")
    assert wire.error_message(unsupported) == (
        "Unsupported value: 'messages[0].role' does not support 'system' with this model."
    )
    assert wire.error_kind(unsupported) == "unsupported_value"
    missing = fixture_text("openai_chat/error_404_model_not_found.json")
    assert wire.error_message(missing) == (
        "The model `gpt-5.2-proo` does not exist or you do not have access to it."
    )
    assert wire.error_kind(missing) == "model_not_found"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (
            '{"error": {"message": "m", "type": "insufficient_quota", "code": "insufficient_quota"}}',
            "insufficient_quota",
        ),
        (
            '{"error": {"message": "m", "type": "invalid_request_error", "code": null}}',
            "invalid_request_error",
        ),
        ('{"error": {"message": "m"}}', None),
        ("[]", None),
        ("", None),
    ],
)
def test_error_kind(body: str, kind: str | None) -> None:
    assert OpenAIChatFormat().error_kind(body) == kind


def test_error_message_falls_back_to_the_body() -> None:
    assert WIRE.error_message("  Bad Gateway  ") == "Bad Gateway"
    assert WIRE.error_message('{"unexpected": 1}') == '{"unexpected": 1}'
    assert len(WIRE.error_message("x" * 2000)) == 500


def test_exceptions_carry_the_provider_name() -> None:
    with pytest.raises(ProviderError) as info:
        WIRE.stream_decoder().feed("", "{not json")
    assert info.value.provider == "openai"

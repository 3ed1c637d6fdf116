"""DeepSeek: reasoning_content in replies, streams and history; JSON mode; cache-hit usage."""

from __future__ import annotations

import json

from lazybridge.messages import (
    ModelResponse,
    ReasoningPart,
    TextPart,
    ToolCall,
    ToolResult,
    Usage,
)
from lazybridge.providers.base import WireFormat
from lazybridge.providers.deepseek import DeepSeekFormat

from .wire_helpers import (
    REPORT_SCHEMA,
    TIME_PARAMS,
    WEATHER_PARAMS,
    decode_stream,
    fixture_json,
    representative_request,
    with_results,
)

WIRE: WireFormat = DeepSeekFormat()

SCHEMA_INSTRUCTION = (
    "Answer with a single JSON object that conforms to this JSON Schema (named 'Weather report'):\n"
    + json.dumps(REPORT_SCHEMA)
)

EXPECTED_BODY = {
    "model": "test-model",
    "messages": [
        {"role": "system", "content": "You are terse.\n\n" + SCHEMA_INSTRUCTION},
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
            # A turn with tool calls must carry its reasoning back...
            "reasoning_content": "Call the tools.",
        },
        {"role": "tool", "tool_call_id": "call_weather", "content": "12°C, cloudy"},
        {"role": "tool", "tool_call_id": "call_time", "content": "clock unavailable"},
        # ... a turn without tool calls drops it.
        {"role": "assistant", "content": "12°C and cloudy; time unknown."},
        {"role": "user", "content": "Now as JSON, please."},
    ],
    "max_tokens": 512,
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
    "response_format": {"type": "json_object"},
}

REASONING = (
    "Hmm, the user just said \"Hello\". It's a simple greeting but I wonder if there's more to it.  \n\n"
    "The message is very brief, so I don't have much context to work with. Maybe they're just testing if "
    "I'm responsive, or perhaps they're new to chatting with AI.  \n\nI should keep my reply warm and "
    "inviting to encourage further conversation. A smiley face would help make it friendly. Since they "
    "didn't specify a need, I'll leave it open-ended by asking how I can help them today.  \n\nThe tone "
    'should be cheerful but professional - not too stiff, not too casual. "Hello there!" feels right for '
    'a start. Adding "What can I do for you today?" turns it into an invitation rather than just mirroring '
    "their greeting.  \n\nI'll avoid assumptions about their gender, location, or intent since there's zero "
    "information. If they're just being polite, they might not reply further - and that's okay too."
)


def test_request_body_golden() -> None:
    assert WIRE.build_body(representative_request(), stream=False) == EXPECTED_BODY


def test_schema_instruction_is_the_whole_system_prompt_without_a_system() -> None:
    body = WIRE.build_body(representative_request(system=None), stream=False)
    assert body["messages"][0] == {"role": "system", "content": SCHEMA_INSTRUCTION}


def test_no_schema_no_response_format() -> None:
    body = WIRE.build_body(representative_request(output_schema=None), stream=True)
    assert "response_format" not in body
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert body["stream_options"] == {"include_usage": True}


def test_path_and_auth() -> None:
    assert WIRE.path("deepseek-v4-flash", stream=True) == "/chat/completions"
    assert WIRE.auth_headers("k") == {"Authorization": "Bearer k"}


def test_tool_calls_reply_with_reasoning_and_cache_counters() -> None:
    response = WIRE.parse_response(fixture_json("deepseek/tool_calls_parallel.json"))
    assert response == ModelResponse(
        parts=(
            ReasoningPart(
                "Great, now I have access to the dice roll tool. Let me first get the player's name and then "
                "roll the die.",
                "deepseek",
            ),
            TextPart("Let me get your name and roll the die!"),
            ToolCall("call_00_6edlnw3Z1MgeMfey687g8451", "get_player_name", {}),
            ToolCall("call_01_km02sac7sHxNDPATKLZy7705", "roll_dice", {}),
        ),
        stop_reason="tool_calls",
        usage=Usage(input_tokens=875, output_tokens=79, cache_read_tokens=0, reasoning_tokens=26),
        model="deepseek-v4-flash",
        raw_stop_reason="tool_calls",
        response_id="6b3446f6-7bd6-491f-a44c-0993ad3d67cf",
    )


def test_reasoning_goes_back_with_the_tool_calls() -> None:
    response = WIRE.parse_response(fixture_json("deepseek/tool_calls_parallel.json"))
    results = [ToolResult(c.id, c.name, "ok") for c in response.tool_calls]
    messages = WIRE.build_body(with_results(response, *results), stream=False)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": "Let me get your name and roll the die!",
        "tool_calls": [
            {
                "id": "call_00_6edlnw3Z1MgeMfey687g8451",
                "type": "function",
                "function": {"name": "get_player_name", "arguments": "{}"},
            },
            {
                "id": "call_01_km02sac7sHxNDPATKLZy7705",
                "type": "function",
                "function": {"name": "roll_dice", "arguments": "{}"},
            },
        ],
        "reasoning_content": (
            "Great, now I have access to the dice roll tool. Let me first get the player's name and then "
            "roll the die."
        ),
    }
    assert [m["role"] for m in messages[2:]] == ["tool", "tool"]


def test_cache_hit_counter_wins() -> None:
    body = {
        "choices": [{"message": {"content": "x"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 563,
            "completion_tokens": 1,
            "prompt_cache_hit_tokens": 512,
            "prompt_cache_miss_tokens": 51,
            "prompt_tokens_details": {"cached_tokens": 512},
        },
    }
    assert WIRE.parse_response(body).usage == Usage(input_tokens=563, output_tokens=1, cache_read_tokens=512)


def test_stream_reasoning_then_text_equals_the_non_streamed_parse() -> None:
    deltas, response = decode_stream(WIRE, "deepseek/stream_reasoning_text.sse")
    text = "Hello there! 😊 How can I help you today?"
    assert "".join(deltas) == text  # reasoning is not a text delta
    assert response.parts == (ReasoningPart(REASONING, "deepseek"), TextPart(text))
    assert response.usage == Usage(input_tokens=6, output_tokens=212, reasoning_tokens=198)
    assert response.stop_reason == "stop"
    assert response == WIRE.parse_response(
        {
            "id": "33be18fc-3842-486c-8c29-dd8e578f7f20",
            "model": "deepseek-reasoner",
            "choices": [
                {"message": {"content": text, "reasoning_content": REASONING}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": 6,
                "completion_tokens": 212,
                "prompt_cache_hit_tokens": 0,
                "completion_tokens_details": {"reasoning_tokens": 198},
            },
        }
    )


def test_keep_alive_comments_are_invisible_to_the_decoder() -> None:
    """httpx-sse drops ``: keep-alive`` comment lines; a data-less event is ignored."""
    decoder = WIRE.stream_decoder()
    assert decoder.feed("message", "") == []

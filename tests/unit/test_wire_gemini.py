"""Gemini generateContent: request JSON, recorded replies and SSE streams, signatures, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lazybridge.errors import OverloadedError, RateLimitError, StreamError
from lazybridge.messages import (
    Message,
    ModelRequest,
    ModelResponse,
    ReasoningPart,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
)
from lazybridge.providers.base import WireFormat
from lazybridge.providers.gemini import GeminiFormat

from .wire_helpers import (
    FIXTURES,
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

WIRE: WireFormat = GeminiFormat()

EXPECTED_BODY = {
    "systemInstruction": {"parts": [{"text": "You are terse."}]},
    "contents": [
        {
            "role": "user",
            "parts": [
                {"text": "Weather and time in Paris?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            ],
        },
        {
            "role": "model",
            "parts": [
                {"text": "Thinking summary.", "thought": True, "thoughtSignature": "sig-gemini-thought"},
                {"text": "Checking."},
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_weather"},
                    "thoughtSignature": "sig-gemini-call",
                },
                {"functionCall": {"name": "get_time", "args": {"tz": "Europe/Paris"}, "id": "call_time"}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"result": "12°C, cloudy"},
                        "id": "call_weather",
                    }
                },
                {
                    "functionResponse": {
                        "name": "get_time",
                        "response": {"error": "clock unavailable"},
                        "id": "call_time",
                    }
                },
            ],
        },
        {"role": "model", "parts": [{"text": "12°C and cloudy; time unknown."}]},
        {"role": "user", "parts": [{"text": "Now as JSON, please."}]},
    ],
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parametersJsonSchema": WEATHER_PARAMS,
                },
                {
                    "name": "get_time",
                    "description": "Local time in a time zone",
                    "parametersJsonSchema": TIME_PARAMS,
                },
            ]
        }
    ],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    "generationConfig": {
        "temperature": 0.2,
        "maxOutputTokens": 512,
        "responseMimeType": "application/json",
        "responseJsonSchema": REPORT_SCHEMA,
    },
}


def first_sse_payload(name: str) -> Any:
    # Bytes, not text: reading text would translate Gemini's CRLF separators.
    return json.loads((FIXTURES / name).read_bytes().split(b"\r\n")[0].removeprefix(b"data: "))


# -- request -------------------------------------------------------------------


def test_request_body_golden() -> None:
    assert WIRE.build_body(representative_request(), stream=False) == EXPECTED_BODY
    assert WIRE.build_body(representative_request(), stream=True) == EXPECTED_BODY


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        (ToolChoice("auto"), {"mode": "AUTO"}),
        (ToolChoice("none"), {"mode": "NONE"}),
        (ToolChoice("required"), {"mode": "ANY"}),
        (ToolChoice(name="get_time"), {"mode": "ANY", "allowedFunctionNames": ["get_time"]}),
    ],
)
def test_tool_choice_mapping(choice: ToolChoice, config: dict[str, Any]) -> None:
    body = WIRE.build_body(representative_request(tool_choice=choice), stream=False)
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_optional_fields_are_omitted() -> None:
    body = WIRE.build_body(
        representative_request(
            system=None, tools=(), tool_choice=None, output_schema=None, temperature=None, max_tokens=None
        ),
        stream=False,
    )
    assert set(body) == {"contents"}


def test_paths_and_auth() -> None:
    assert WIRE.path("gemini-2.5-flash", stream=False) == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert (
        WIRE.path("models/gemini-2.5-flash", stream=True)
        == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert WIRE.auth_headers("k") == {"x-goog-api-key": "k"}
    assert WIRE.extra_headers() == {}


def test_function_response_name_comes_from_the_call_when_the_result_lacks_it() -> None:
    request = ModelRequest(
        model="m",
        messages=(
            Message("assistant", (ToolCall("c1", "lookup", {}),)),
            Message("tool", (ToolResult("c1", "", "42"),)),
        ),
    )
    parts = WIRE.build_body(request, stream=False)["contents"][1]["parts"]
    assert parts == [{"functionResponse": {"name": "lookup", "response": {"result": "42"}, "id": "c1"}}]


# -- non-streamed replies ----------------------------------------------------------


def test_text_reply_counts_thoughts_as_output() -> None:
    response = WIRE.parse_response(fixture_json("gemini/text.json"))
    assert response == ModelResponse(
        parts=(TextPart("Hello! How can I help you today?"),),
        stop_reason="stop",
        usage=Usage(input_tokens=9, output_tokens=9 + 34, reasoning_tokens=34),
        model="gemini-2.5-flash",
        raw_stop_reason="STOP",
        response_id="bzlXaa_EE_aHqtsPi_zw8Ao",
    )


def test_parallel_calls_get_synthetic_ids_and_keep_the_signature() -> None:
    body = fixture_json("gemini/tool_calls_parallel.json")
    signature = body["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    assert signature.startswith("Es8FCswF")
    response = WIRE.parse_response(body)
    calls = response.tool_calls
    assert [(c.name, c.arguments) for c in calls] == [("generate_topic", {})] * 3
    assert [c.signature for c in calls] == [signature, None, None]
    assert len({c.id for c in calls}) == 3
    assert all(c.id.startswith(f"gemini_{i}_") for i, c in enumerate(calls))
    assert response.stop_reason == "tool_calls"
    assert response.raw_stop_reason == "STOP"
    assert response.usage == Usage(input_tokens=83, output_tokens=30 + 190, reasoning_tokens=190)
    assert response.model == "gemini-3-flash-preview"


def test_parallel_calls_round_trip_signature_and_answer_by_name_and_order() -> None:
    response = WIRE.parse_response(fixture_json("gemini/tool_calls_parallel.json"))
    signature = response.tool_calls[0].signature
    results = [ToolResult(c.id, c.name, f"topic {i}") for i, c in enumerate(response.tool_calls)]
    contents = WIRE.build_body(with_results(response, *results), stream=False)["contents"]
    # Made-up ids are not sent: Gemini matches the responses by name and order.
    assert contents[1] == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "generate_topic", "args": {}}, "thoughtSignature": signature},
            {"functionCall": {"name": "generate_topic", "args": {}}},
            {"functionCall": {"name": "generate_topic", "args": {}}},
        ],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "generate_topic", "response": {"result": f"topic {i}"}}}
            for i in range(3)
        ],
    }


def test_ids_sent_by_gemini_are_kept_and_echoed() -> None:
    body = {
        "candidates": [
            {"content": {"parts": [{"functionCall": {"id": "fc-1", "name": "f", "args": {"a": 1}}}]}}
        ],
    }
    response = WIRE.parse_response(body)
    assert response.tool_calls == (ToolCall("fc-1", "f", {"a": 1}),)
    contents = WIRE.build_body(with_results(response, ToolResult("fc-1", "f", "ok")), stream=False)[
        "contents"
    ]
    assert contents[1]["parts"][0]["functionCall"]["id"] == "fc-1"
    assert contents[2]["parts"][0]["functionResponse"]["id"] == "fc-1"


def test_thought_parts_are_reasoning_and_not_text() -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"text": "Let me think.", "thought": True},
                        {"text": "Answer.", "thoughtSignature": "sig"},
                    ]
                },
                "finishReason": "STOP",
            }
        ]
    }
    response = WIRE.parse_response(body)
    assert response.parts == (ReasoningPart("Let me think.", "gemini"), TextPart("Answer.", signature="sig"))
    assert response.text == "Answer."


@pytest.mark.parametrize(
    ("reason", "normalized"),
    [
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("OTHER", "error"),
    ],
)
def test_finish_reasons(reason: str, normalized: str) -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert WIRE.parse_response(body).stop_reason == normalized


def test_blocked_prompt_has_no_candidates() -> None:
    body = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
    }
    response = WIRE.parse_response(body)
    assert response.parts == ()
    assert response.stop_reason == "content_filter"
    assert response.raw_stop_reason == "PROHIBITED_CONTENT"
    assert response.usage == Usage(input_tokens=7)


def test_cached_content_tokens() -> None:
    body = {
        "candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 100, "cachedContentTokenCount": 80, "candidatesTokenCount": 1},
    }
    assert WIRE.parse_response(body).usage == Usage(input_tokens=100, output_tokens=1, cache_read_tokens=80)


# -- streams ----------------------------------------------------------------------


def test_stream_text_crlf_usage_last_wins() -> None:
    text = "\n".join(str(n) for n in range(1, 31))
    deltas, response = decode_stream(GeminiFormat(), "gemini/stream_text.sse")
    assert deltas == [
        "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n1",
        "4\n15\n16\n17\n18\n19\n20\n21\n22\n23\n24\n25\n26\n27\n28\n29\n3",
        "0",
    ]
    assert response == ModelResponse(
        parts=(TextPart(text),),
        stop_reason="stop",
        usage=Usage(input_tokens=18, output_tokens=80 + 35, reasoning_tokens=35),
        model="gemini-2.5-flash",
        raw_stop_reason="STOP",
        response_id="ru1garvBEoOiqtsP2fznmQw",
    )
    assert response == WIRE.parse_response(
        {
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 18, "candidatesTokenCount": 80, "thoughtsTokenCount": 35},
            "modelVersion": "gemini-2.5-flash",
            "responseId": "ru1garvBEoOiqtsP2fznmQw",
        }
    )


def test_stream_whole_function_call_in_one_chunk() -> None:
    deltas, response = decode_stream(WIRE, "gemini/stream_tool_call.sse", chunk_size=None)
    assert deltas == []
    (call,) = response.parts
    assert isinstance(call, ToolCall)
    assert (call.name, call.arguments, call.signature) == ("get_capital", {"country": "France"}, None)
    assert response.stop_reason == "tool_calls"
    assert response.usage == Usage(input_tokens=52, output_tokens=5)
    assert response == WIRE.parse_response(
        {
            "candidates": [
                {
                    "content": {
                        "parts": [{"functionCall": {"name": "get_capital", "args": {"country": "France"}}}]
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 52, "candidatesTokenCount": 5},
            "modelVersion": "gemini-2.0-flash",
            "responseId": "1lpeaMTxIpW1nvgP-O3vwQY",
        }
    )


def test_stream_thought_signature_stays_on_the_call() -> None:
    signature = first_sse_payload("gemini/stream_tool_call_thought_signature.sse")["candidates"][0][
        "content"
    ]["parts"][0]["thoughtSignature"]
    assert signature.startswith("EpwICpkI")
    deltas, response = decode_stream(WIRE, "gemini/stream_tool_call_thought_signature.sse")
    assert deltas == []
    # The trailing empty text part carries nothing and is dropped.
    (call,) = response.parts
    assert isinstance(call, ToolCall)
    assert (call.name, call.arguments, call.signature) == ("get_country", {}, signature)
    assert response.stop_reason == "tool_calls"
    assert response.usage == Usage(input_tokens=29, output_tokens=10 + 202, reasoning_tokens=202)
    assert response.model == "gemini-3-pro-preview"
    contents = WIRE.build_body(with_results(response, ToolResult(call.id, call.name, "FR")), stream=False)
    assert contents["contents"][1]["parts"] == [
        {"functionCall": {"name": "get_country", "args": {}}, "thoughtSignature": signature}
    ]


def test_stream_signature_on_a_trailing_empty_text_part_joins_the_text() -> None:
    response = decode_events(
        WIRE,
        [
            ("", {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]}),
            ("", {"candidates": [{"content": {"parts": [{"text": "lo"}]}}]}),
            (
                "",
                {
                    "candidates": [
                        {
                            "content": {"parts": [{"text": "", "thoughtSignature": "s"}]},
                            "finishReason": "STOP",
                        }
                    ]
                },
            ),
        ],
    )
    assert response.parts == (TextPart("Hello", signature="s"),)


def test_truncated_stream_is_an_error() -> None:
    with pytest.raises(StreamError):
        decode_events(WIRE, [("", {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]})])


@pytest.mark.parametrize(
    ("status", "code", "exc"),
    [
        ("RESOURCE_EXHAUSTED", 429, RateLimitError),
        ("UNAVAILABLE", 503, OverloadedError),
        ("INTERNAL", 500, StreamError),
    ],
)
def test_in_stream_error(status: str, code: int, exc: type[Exception]) -> None:
    payload = json.dumps({"error": {"code": code, "message": "boom", "status": status}})
    with pytest.raises(exc) as info:
        WIRE.stream_decoder().feed("", payload)
    assert type(info.value) is exc


# -- errors ---------------------------------------------------------------------


def test_error_fixture() -> None:
    body = fixture_text("gemini/error_404_not_found.json")
    assert WIRE.error_message(body) == (
        "models/gemini-3.6-flahs is not found for API version v1beta, or is not supported for "
        "generateContent. Call ModelService.ListModels to see the list of available models and their "
        "supported methods."
    )
    assert GeminiFormat().error_kind(body) == "NOT_FOUND"


def test_error_body_wrapped_in_an_array() -> None:
    body = '[{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}]'
    assert WIRE.error_message(body) == "Quota exceeded"
    assert GeminiFormat().error_kind(body) == "RESOURCE_EXHAUSTED"


@pytest.mark.parametrize(
    ("model", "native"),
    [
        ("gemini-1.5-pro-latest", False),
        ("gemini-2.0-flash-001", False),
        ("gemini-2.5-flash", False),
        ("models/gemini-2.5-pro", False),
        ("gemini-2.5", False),
        ("gemini-3-flash-preview", True),
        ("gemini-3.1-pro", True),
        ("gemini-flash-latest", True),  # an alias: taken as current
    ],
)
def test_a_native_schema_next_to_tools_needs_gemini_3(model: str, native: bool) -> None:
    assert WIRE.native_output_with_tools(model) is native

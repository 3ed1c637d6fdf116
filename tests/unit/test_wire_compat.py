"""OpenAI-compatible servers: the §6 quirks, on recorded Ollama, OpenRouter and Gemini-compat bodies."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from lazybridge.errors import OverloadedError, RateLimitError
from lazybridge.messages import ReasoningPart, TextPart, ToolCall, ToolResult, Usage
from lazybridge.providers.base import WireFormat
from lazybridge.providers.openai_chat import OpenAIChatFormat
from lazybridge.providers.openai_compat import OpenAICompatFormat

from .test_wire_openai_chat import EXPECTED_BODY as OPENAI_BODY
from .wire_helpers import (
    decode_events,
    decode_stream,
    fixture_json,
    fixture_text,
    representative_request,
    with_results,
)

WIRE: WireFormat = OpenAICompatFormat()


def test_request_body_golden() -> None:
    """OpenAI's body, with ``max_tokens`` and the Gemini signature echoed on its tool call."""
    expected: dict[str, Any] = copy.deepcopy(OPENAI_BODY)
    expected["max_tokens"] = expected.pop("max_completion_tokens")
    expected["messages"][2]["tool_calls"][0]["extra_content"] = {
        "google": {"thought_signature": "sig-gemini-call"}
    }
    assert WIRE.build_body(representative_request(), stream=False) == expected


def test_reasoning_field_of_ollama_and_json_schema_output() -> None:
    response = WIRE.parse_response(fixture_json("openai_compatible/ollama_json_schema.json"))
    assert response.parts[1:] == (TextPart('{ "city": "Paris", "country": "France" }'),)
    reasoning = response.parts[0]
    assert isinstance(reasoning, ReasoningPart)
    assert reasoning.provider == "compat"
    assert reasoning.text.startswith("Okay, the user is asking for the capital of France.")
    assert reasoning.text.endswith("Yep, I'm confident the answer is Paris.\n")
    assert response.stop_reason == "stop"
    # No *_details on this server.
    assert response.usage == Usage(input_tokens=136, output_tokens=15)
    assert response.model == "qwen3:0.6b"


def test_empty_content_next_to_tool_calls_is_no_text() -> None:
    response = WIRE.parse_response(fixture_json("openai_compatible/ollama_tool_call.json"))
    assert response.text == ""
    assert response.tool_calls == (
        ToolCall("call_o2vnpxrw", "final_result", {"city": "Paris", "country": "France"}),
    )
    assert isinstance(response.parts[0], ReasoningPart)
    assert response.stop_reason == "tool_calls"
    assert response.usage == Usage(input_tokens=206, output_tokens=194)


def test_reasoning_is_not_sent_back_and_content_is_an_empty_string() -> None:
    """No reasoning in the history; ``content: ""`` (llama-cpp-python refuses ``null``)."""
    response = WIRE.parse_response(fixture_json("openai_compatible/ollama_tool_call.json"))
    result = ToolResult("call_o2vnpxrw", "final_result", "ok")
    assistant = WIRE.build_body(with_results(response, result), stream=False)["messages"][1]
    assert assistant == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_o2vnpxrw",
                "type": "function",
                "function": {"name": "final_result", "arguments": '{"city": "Paris", "country": "France"}'},
            }
        ],
    }


def test_empty_tool_call_id_gets_a_deterministic_synthetic_id() -> None:
    body = fixture_json("openai_compatible/gemini_openai_compat_tool_call_empty_id.json")
    response = WIRE.parse_response(body)
    (call,) = response.tool_calls
    assert call.name == "get_current_time"
    assert call.arguments == {}
    assert call.id.startswith("call_0_")
    assert call == WIRE.parse_response(body).tool_calls[0]  # same body, same id
    assert response.usage == Usage(input_tokens=35, output_tokens=12)
    assert response.stop_reason == "tool_calls"
    # The id we made up is the one the tool result answers to.
    sent = WIRE.build_body(with_results(response, ToolResult(call.id, call.name, "noon")), stream=False)
    assert sent["messages"][1]["tool_calls"][0]["id"] == sent["messages"][2]["tool_call_id"] == call.id


def test_openrouter_stream_repeated_id_and_name_no_finish_reason_usage_in_a_choice_chunk() -> None:
    deltas, response = decode_stream(WIRE, "openai_compatible/openrouter_stream_tool_call.sse")
    assert deltas == []
    (call,) = response.parts
    assert isinstance(call, ToolCall)
    assert call.name == "llm_version"
    assert call.arguments == {}
    # "0" repeats across turns, so it is replaced.
    assert call.id != "0"
    assert call.id.startswith("call_0_")
    assert response.stop_reason == "tool_calls"
    assert response.raw_stop_reason is None
    assert response.usage == Usage(input_tokens=57, output_tokens=17)
    assert response.model == "moonshotai/kimi-k2"


def test_missing_and_duplicate_ids_are_made_unique() -> None:
    body = {
        "id": "resp-1",
        "choices": [
            {
                "message": {
                    "content": "",
                    "tool_calls": [
                        {"id": "a", "function": {"name": "f", "arguments": "{}"}},
                        {"id": "a", "function": {"name": "g", "arguments": "{}"}},
                        {"function": {"name": "h", "arguments": "{}"}},
                    ],
                },
                # Some servers say "stop" after calling tools.
                "finish_reason": "stop",
            }
        ],
    }
    response = WIRE.parse_response(body)
    ids = [c.id for c in response.tool_calls]
    assert ids[0] == "a"
    assert len(set(ids)) == 3
    assert response.stop_reason == "tool_calls"


def test_usage_from_any_chunk_last_wins() -> None:
    response = decode_events(
        WIRE,
        [
            ("", {"id": "r", "choices": [{"delta": {"content": "a"}}], "usage": {"prompt_tokens": 1}}),
            (
                "",
                {
                    "id": "r",
                    "choices": [{"delta": {"content": "b"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2},
                },
            ),
        ],
    )
    assert response.text == "ab"
    assert response.usage == Usage(input_tokens=5, output_tokens=2)


def test_streamed_reasoning_field_and_whole_arguments_in_one_fragment() -> None:
    response = decode_events(
        WIRE,
        [
            ("", {"choices": [{"delta": {"reasoning": "think "}}]}),
            ("", {"choices": [{"delta": {"reasoning_content": "more"}}]}),
            (
                "",
                {
                    "choices": [
                        {
                            "delta": {
                                "tool_calls": [
                                    {
                                        "index": 0,
                                        "id": "x1",
                                        "function": {"name": "f", "arguments": '{"q": 1}'},
                                    }
                                ]
                            }
                        }
                    ]
                },
            ),
            ("", {"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
        ],
    )
    assert response.parts == (ReasoningPart("think more", "compat"), ToolCall("x1", "f", {"q": 1}))


def test_openrouter_error_with_an_integer_code() -> None:
    body = fixture_text("openai_compatible/openrouter_error_429.json")
    assert WIRE.error_message(body) == "Provider returned error"
    assert OpenAICompatFormat().error_kind(body) is None


def test_plain_string_error_body() -> None:
    body = '{"error": "model \\"llama9\\" not found, try pulling it first"}'
    assert WIRE.error_message(body) == 'model "llama9" not found, try pulling it first'
    assert OpenAICompatFormat().error_kind(body) is None


def test_vllm_style_top_level_message() -> None:
    body = '{"object": "error", "message": "max_tokens is too large", "type": "BadRequestError", "code": 400}'
    assert WIRE.error_message(body) == "max_tokens is too large"


@pytest.mark.parametrize(("code", "exc"), [(429, RateLimitError), (503, OverloadedError)])
def test_in_stream_error_with_an_integer_code(code: int, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        WIRE.stream_decoder().feed("", json.dumps({"error": {"code": code, "message": "upstream"}}))


def test_quirk_handling_is_shared_with_openai() -> None:
    """One translator: the OpenAI format parses the same quirky body identically, bar provenance."""
    body = fixture_json("openai_compatible/gemini_openai_compat_tool_call_empty_id.json")
    assert OpenAIChatFormat().parse_response(body) == WIRE.parse_response(body)


def test_no_usage_is_unknown_usage() -> None:
    """A body or stream without usage (llama-cpp-python's streams) is ``reported=False``, not zero."""
    chunk = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
    streamed = decode_events(WIRE, [("", chunk), ("", "[DONE]")])
    assert streamed.text == "hi" and streamed.usage == Usage(reported=False)
    for usage in (None, {}):
        body = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}], "usage": usage}
        assert WIRE.parse_response(body).usage == Usage(reported=False)
    assert (Usage(1, 1) + Usage(reported=False)).reported is False

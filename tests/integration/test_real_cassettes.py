"""Real server bytes in the main suite: cassettes recorded from llama-server and llama-cpp-python, replayed offline.

The cassettes in tests/cassettes/ were recorded by tests/real (see
tests/real/scenarios.py, which both sides run).  Each test replays one with
nothing listening at ``base_url`` and checks the envelopes against what the
real server sent, read straight from the recorded bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lazybridge.testing import Cassette

from ..real import scenarios

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.usefixtures("close_pool"),
    pytest.mark.filterwarnings(
        "ignore::lazybridge.providers.UnknownPriceWarning"
    ),  # a local model has no price
]

NOWHERE = "http://127.0.0.1:9/v1"  # the discard port: a request that escaped the cassette would fail


def recorded(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["exchanges"]  # type: ignore[no-any-return]


def body(exchange: dict[str, Any]) -> dict[str, Any]:
    return json.loads("".join(exchange["response"]["chunks"]))  # type: ignore[no-any-return]


def sse_events(exchange: dict[str, Any]) -> list[dict[str, Any]]:
    lines = "".join(exchange["response"]["chunks"]).splitlines()
    return [
        json.loads(line[5:]) for line in lines if line.startswith("data:") and line[5:].strip() != "[DONE]"
    ]


async def test_llama_server_chat_replays_as_the_server_answered(anyio_backend: object) -> None:
    plain_x, stream_x, structured_x = recorded(scenarios.LLAMA_SERVER_CHAT)
    assert not plain_x["request"]["body"].get("stream") and stream_x["request"]["body"]["stream"] is True
    assert structured_x["request"]["body"]["response_format"]["type"] == "json_schema"

    async with Cassette(scenarios.LLAMA_SERVER_CHAT).client() as client:
        chat = await scenarios.chat(NOWHERE, client)

    # A plain run: the server's message and its usage.
    answer = body(plain_x)
    assert chat.plain.ok, chat.plain.error
    assert chat.plain.text() == answer["choices"][0]["message"]["content"]
    assert chat.plain.metadata.input_tokens == answer["usage"]["prompt_tokens"]
    assert chat.plain.metadata.output_tokens == answer["usage"]["completion_tokens"]
    assert (chat.plain.metadata.provider, chat.plain.metadata.model) == ("compat", "smollm2")

    # The stream: llama-server's own SSE events, one delta per content event, as they came.
    events = sse_events(stream_x)
    pieces = [e["choices"][0]["delta"].get("content") for e in events if e.get("choices")]
    assert chat.deltas == [p for p in pieces if p]
    assert len(chat.deltas) > 1
    assert chat.streamed.ok and chat.streamed.text() == "".join(chat.deltas)
    [usage] = [e["usage"] for e in events if e.get("usage")]
    assert chat.streamed.metadata.output_tokens == usage["completion_tokens"]

    # Structured output: the grammar-constrained JSON, parsed into the dataclass.
    content = json.loads(body(structured_x)["choices"][0]["message"]["content"])
    assert chat.structured.ok, chat.structured.error
    assert chat.structured.payload == scenarios.City(**content)


async def test_llama_cpp_python_tool_loop_replays_as_the_server_answered(anyio_backend: object) -> None:
    first, second = recorded(scenarios.LLAMA_CPP_PYTHON_TOOLS)
    assert first["request"]["body"]["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    [call] = body(first)["choices"][0]["message"]["tool_calls"]
    arguments = json.loads(call["function"]["arguments"])

    async with Cassette(scenarios.LLAMA_CPP_PYTHON_TOOLS).client() as client:
        env = await scenarios.tool_loop(NOWHERE, client)

    # The loop ran the tool on the server's arguments and sent back the call and its
    # result, which the server accepted (200); it called the tool again on turn 2
    # (its template drops tool messages), so max_turns=2 ended the run.
    assert second["response"]["status"] == 200
    assistant, result = second["request"]["body"]["messages"][-2:]
    assert assistant["content"] == "" and assistant["tool_calls"][0]["id"] == call["id"]
    assert result == {"role": "tool", "tool_call_id": call["id"], "content": str(scenarios.add(**arguments))}
    assert body(second)["choices"][0]["message"]["tool_calls"]
    assert env.error is not None and env.error.type == "MaxTurnsExceeded"
    # The spend of both turns is kept on the error envelope.
    assert env.metadata.input_tokens == sum(body(x)["usage"]["prompt_tokens"] for x in (first, second))
    assert env.metadata.output_tokens == sum(body(x)["usage"]["completion_tokens"] for x in (first, second))

"""Mutations of recorded provider answers, shared by the fuzz tests and ``benchmarks/fuzz.py``.

A mutation starts from a recorded fixture (``tests/fixtures/provider/``) and
changes it a little -- a key dropped, a value nulled or replaced by another
type, a node wrapped in a list or unwrapped, a stream event dropped,
repeated, reordered, cut or replaced by garbage -- so the answers stay close
to what a provider really sends, where a parser's assumptions live.

Every choice goes through a :class:`Chooser`: hypothesis draws in the test
suite (so failures shrink), a seeded :class:`random.Random` in the benchmark
(so a long run is cheap and counts every outcome instead of stopping at the
first failure).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs

from lazybridge.errors import MalformedResponseError, ProviderError
from lazybridge.messages import (
    ImagePart,
    ModelResponse,
    OpaquePart,
    ReasoningPart,
    TextPart,
    ToolCall,
    Usage,
)
from lazybridge.providers.anthropic import AnthropicFormat
from lazybridge.providers.base import WireFormat
from lazybridge.providers.deepseek import DeepSeekFormat
from lazybridge.providers.gemini import GeminiFormat
from lazybridge.providers.openai_chat import OpenAIChatFormat
from lazybridge.providers.openai_compat import OpenAICompatFormat

from .wire_helpers import FIXTURES, fixture_json, sse_events


class Chooser(Protocol):
    def index(self, n: int) -> int:
        """An integer in ``range(n)`` (``n >= 1``)."""
        ...

    def value(self) -> Any:
        """Any JSON value (small)."""
        ...


# -- the wire formats and their recorded answers --------------------------------------


@attrs.frozen
class Wire:
    name: str
    format: WireFormat
    bodies: tuple[Any, ...]
    streams: tuple[tuple[tuple[str, str], ...], ...]
    stream_bytes: tuple[bytes, ...]


def _wire(name: str, fmt: WireFormat, bodies: list[str], streams: list[str]) -> Wire:
    return Wire(
        name,
        fmt,
        tuple(fixture_json(b) for b in bodies),
        tuple(tuple(sse_events(s, chunk_size=None)) for s in streams),
        tuple((FIXTURES / s).read_bytes() for s in streams),
    )


def wires() -> dict[str, Wire]:
    return {
        "anthropic": _wire(
            "anthropic",
            AnthropicFormat(),
            ["anthropic/text.json", "anthropic/tool_calls_parallel.json"],
            [
                "anthropic/stream_text.sse",
                "anthropic/stream_thinking.sse",
                "anthropic/stream_tool_call.sse",
                "anthropic/stream_tool_calls_parallel.sse",
            ],
        ),
        "openai": _wire(
            "openai",
            OpenAIChatFormat(),
            ["openai_chat/text.json", "openai_chat/tool_calls_parallel.json"],
            ["openai_chat/stream_text.sse", "openai_chat/stream_tool_calls_parallel.sse"],
        ),
        "compat": _wire(
            "compat",
            OpenAICompatFormat(),
            [
                "openai_compatible/gemini_openai_compat_tool_call_empty_id.json",
                "openai_compatible/ollama_json_schema.json",
                "openai_compatible/ollama_tool_call.json",
            ],
            ["openai_compatible/openrouter_stream_tool_call.sse"],
        ),
        "deepseek": _wire(
            "deepseek",
            DeepSeekFormat(),
            ["deepseek/tool_calls_parallel.json"],
            ["deepseek/stream_reasoning_text.sse"],
        ),
        "gemini": _wire(
            "gemini",
            GeminiFormat(),
            ["gemini/text.json", "gemini/tool_calls_parallel.json"],
            [
                "gemini/stream_text.sse",
                "gemini/stream_tool_call.sse",
                "gemini/stream_tool_call_thought_signature.sse",
            ],
        ),
    }


#: Error bodies for the status-error path; the last is a Gemini 429 whose
#: QuotaFailure is mutated (violations that are not objects, ...).
GEMINI_QUOTA_429 = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel", "quotaMetric": "m"}],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"},
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED"},
        ],
    }
}


def error_bodies() -> tuple[Any, ...]:
    names = [
        "anthropic/error_400_invalid_request.json",
        "anthropic/error_404_not_found.json",
        "gemini/error_404_not_found.json",
        "openai_chat/error_400_unsupported_value.json",
        "openai_compatible/openrouter_error_429.json",
        "openai_responses/error_insufficient_quota.json",
    ]
    return (*(fixture_json(n) for n in names), GEMINI_QUOTA_429)


# -- JSON mutations ------------------------------------------------------------------------


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            out.extend(_paths(child, (*path, key)))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out.extend(_paths(child, (*path, i)))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _retyped(node: Any, choose: Chooser) -> Any:
    """The node as another JSON type of similar content."""
    options: list[Any] = [json.dumps(node), 7, -1, 2.5, True, "", "x", {}, []]
    if isinstance(node, str):
        options += [len(node), [node], {"text": node}]
    return options[choose.index(len(options))]


def _mutated_node(node: Any, choose: Chooser) -> Any:
    op = choose.index(6)
    if op == 0:
        return None
    if op == 1:
        return choose.value()
    if op == 2:
        return [node]
    if op == 3:
        return {"x": node}
    if op == 4 and isinstance(node, dict) and node:
        return list(node.values())[choose.index(len(node))]
    if op == 4 and isinstance(node, list) and node:
        return node[choose.index(len(node))]
    return _retyped(node, choose)


_DELETE = object()


def mutate_json(value: Any, choose: Chooser, *, rounds: int | None = None) -> Any:
    """``value`` (a JSON document) changed at 1 to 3 random nodes."""
    value = copy.deepcopy(value)
    for _ in range(rounds if rounds is not None else 1 + choose.index(3)):
        paths = _paths(value)
        path = paths[choose.index(len(paths))]
        if not path:
            value = _mutated_node(value, choose)
            continue
        parent = _get(value, path[:-1])
        node = parent[path[-1]]
        if choose.index(4) == 0:  # drop it
            del parent[path[-1]]
        else:
            parent[path[-1]] = _mutated_node(node, choose)
    return value


# -- stream mutations ----------------------------------------------------------------------

_GARBAGE = ["", " ", "[DONE]", "null", "{", '{"type": ', "not json", "[]", "42", '"text"', "{}", "\x00"]


def mutate_events(events: tuple[tuple[str, str], ...], choose: Chooser) -> list[tuple[str, str]]:
    """A recorded stream's events with 1 to 3 changes: JSON mutated, events dropped,
    repeated, swapped, renamed, cut or replaced by garbage."""
    out = list(events)
    for _ in range(1 + choose.index(3)):
        if not out:
            out.append(("", json.dumps(choose.value())))
            continue
        i = choose.index(len(out))
        event, data = out[i]
        op = choose.index(8)
        if op <= 2:  # the usual case: the event's JSON changed
            try:
                decoded = json.loads(data)
            except ValueError:
                decoded = choose.value()
            out[i] = (event, json.dumps(mutate_json(decoded, choose, rounds=1)))
        elif op == 3:
            del out[i]
        elif op == 4:
            out.insert(i, out[i])
        elif op == 5:
            j = choose.index(len(out))
            out[i], out[j] = out[j], out[i]
        elif op == 6:
            cut = choose.index(len(data) + 1)
            out[i] = (event, data[:cut])
        else:
            garbage = _GARBAGE[choose.index(len(_GARBAGE))]
            names = ["", "error", event, "message_delta", "content_block_delta", "ping"]
            out[i] = (names[choose.index(len(names))], garbage)
    return out


def mutate_bytes(raw: bytes, choose: Chooser) -> bytes:
    """A recorded SSE byte stream with a slice removed or SSE syntax inserted."""
    for _ in range(1 + choose.index(3)):
        at = choose.index(len(raw) + 1)
        op = choose.index(3)
        if op == 0:
            raw = raw[:at] + raw[at + 1 + choose.index(40) :]
        else:
            noise = [b"\n", b"\r\n\r\n", b"data: ", b"event: error\n", b":", b"data: {\n\n", b"\xff"]
            raw = raw[:at] + noise[choose.index(len(noise))] + raw[at:]
    return raw


def bytes_to_events(raw: bytes) -> list[tuple[str, str]]:
    """The ``(event, data)`` pairs httpx-sse splits ``raw`` into (as the HTTP layer reads a stream)."""
    import httpx
    import httpx_sse

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        httpx_sse.connect_sse(client, "POST", "http://provider.test/stream") as source,
    ):
        return [("" if sse.event == "message" else sse.event, sse.data) for sse in source.iter_sse()]


# -- running one answer -------------------------------------------------------------------

_STOP_REASONS = {"stop", "tool_calls", "length", "content_filter", "pause", "error"}


def _optional_str(value: object) -> bool:
    return value is None or isinstance(value, str)


def ill_typed(response: ModelResponse) -> str | None:
    """What is wrong with ``response``'s types (a parser let a wrong-typed field through), or None."""
    for part in response.parts:
        if isinstance(part, TextPart):
            ok = isinstance(part.text, str) and _optional_str(part.signature)
        elif isinstance(part, ToolCall):
            ok = (
                isinstance(part.id, str)
                and isinstance(part.name, str)
                and isinstance(part.arguments, Mapping)
                and all(isinstance(k, str) for k in part.arguments)
                and _optional_str(part.signature)
            )
        elif isinstance(part, ReasoningPart):
            ok = (
                isinstance(part.text, str)
                and isinstance(part.provider, str)
                and _optional_str(part.signature)
                and _optional_str(part.redacted)
            )
        elif isinstance(part, OpaquePart):
            ok = isinstance(part.data, Mapping)
        elif isinstance(part, ImagePart):
            ok = True
        else:
            ok = False
        if not ok:
            return f"ill-typed part {part!r}"[:200]
    usage = response.usage
    if not isinstance(usage, Usage) or not all(
        isinstance(getattr(usage, f), int) for f in ("input_tokens", "output_tokens", "cache_read_tokens")
    ):
        return f"ill-typed usage {usage!r}"[:200]
    if response.stop_reason not in _STOP_REASONS:
        return f"stop_reason {response.stop_reason!r}"
    for field in ("raw_stop_reason", "response_id"):
        if not _optional_str(getattr(response, field)):
            return f"{field} {getattr(response, field)!r}"[:200]
    if not isinstance(response.model, str):
        return f"model {response.model!r}"[:200]
    return None


@attrs.frozen
class Outcome:
    """``kind``: "ok", "malformed" (MalformedResponseError), "provider" (another
    ProviderError), "foreign" (any other exception), "guarded" (a foreign
    exception that only the parsers' last-line guard turned into
    MalformedResponseError: a crash site the typed reads missed) or
    "ill-typed" (a response whose fields have the wrong types)."""

    kind: str
    detail: str = ""
    exception: BaseException | None = None


def outcome_of(run: Callable[[], ModelResponse]) -> Outcome:
    try:
        response = run()
    except MalformedResponseError as exc:
        if exc.__cause__ is not None:
            return Outcome("guarded", f"{type(exc.__cause__).__name__}: {exc}"[:200], exc.__cause__)
        return Outcome("malformed", str(exc), exc)
    except ProviderError as exc:
        return Outcome("provider", str(exc), exc)
    except Exception as exc:  # what the fuzzing is looking for
        return Outcome("foreign", f"{type(exc).__name__}: {exc}"[:200], exc)
    problem = ill_typed(response)
    return Outcome("ill-typed", problem) if problem else Outcome("ok")


def decode(fmt: WireFormat, events: list[tuple[str, str]]) -> ModelResponse:
    decoder = fmt.stream_decoder()
    for event, data in events:
        for delta in decoder.feed(event, data):
            if not isinstance(delta, str):
                raise AssertionError(f"a text delta that is not a str: {delta!r}")
    return decoder.finish()


# -- a random chooser for the benchmark ------------------------------------------------------


class RandomChooser:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def index(self, n: int) -> int:
        return self._rng.randrange(n)

    def value(self, depth: int = 0) -> Any:
        rng = self._rng
        kind = rng.randrange(8 if depth < 2 else 5)
        if kind == 0:
            return None
        if kind == 1:
            return rng.choice([True, False])
        if kind == 2:
            return rng.choice([0, 1, -1, 7, 2**40, 1.5])
        if kind == 3:
            return rng.choice(["", "x", "text", "tool_use", "STOP", "0", "ü"])
        if kind == 4:
            return rng.choice(["stop", "end_turn", "type", "message"])
        if kind == 5:
            return [self.value(depth + 1) for _ in range(rng.randrange(3))]
        keys = ["type", "text", "id", "index", "x", "content", "parts"]
        return {rng.choice(keys): self.value(depth + 1) for _ in range(rng.randrange(3))}

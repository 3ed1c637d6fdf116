"""The fake provider's server side of each wire format: bodies, SSE events, error bodies.

Written from the provider docs and the recorded fixtures, independently of
``lazybridge.providers`` -- so the integration tests check one translation
against another, not against itself.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fake_provider import RecordedRequest, Reply

__all__ = ["CHAT_SERVERS", "WIRES", "error_body", "server_problem"]

#: The OpenAI-compatible servers whose quirks the fake can imitate.
CHAT_SERVERS = ("openai", "llama-cpp-python")


def _pieces(text: str) -> list[str]:
    """``text`` in up to four deltas, split at spaces."""
    if not text:
        return []
    words = text.split(" ")
    size = max(1, (len(words) + 3) // 4)
    groups = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [g + (" " if i < len(groups) - 1 else "") for i, g in enumerate(groups)]


def error_body(wire: str, reply: Reply) -> dict[str, Any]:
    status = reply.status
    message = reply.message or {
        400: "invalid request",
        401: "invalid x-api-key",
        403: "permission denied",
        404: "model not found",
        429: "rate limit exceeded",
        500: "internal server error",
        503: "service unavailable",
        529: "Overloaded",
    }.get(status, f"HTTP {status}")
    if wire == "anthropic":
        kinds = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }
        error: dict[str, Any] = {"type": reply.kind or kinds.get(status, "api_error"), "message": message}
        return {"type": "error", "error": error, "request_id": "req_fake"}
    if wire == "gemini":
        statuses = {
            400: "INVALID_ARGUMENT",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
        }
        error = {"code": status, "message": message, "status": reply.kind or statuses.get(status, "UNKNOWN")}
        if reply.retry_delay is not None:
            error["details"] = [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": reply.retry_delay}
            ]
        return {"error": error}
    codes = {429: "rate_limit_exceeded", 404: "model_not_found"}
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error" if status < 500 else "server_error",
            "param": None,
            "code": reply.kind or codes.get(status),
        }
    }


def server_problem(server: str, request: RecordedRequest) -> tuple[int, str] | None:
    """The status and message ``server`` answers a chat-completions request with, if it refuses it.

    llama-cpp-python 0.3.x validates messages with pydantic models whose
    assistant ``content`` is a plain string: ``null`` (or a list) fails
    validation, and its error handler turns that into a 500.
    """
    if server != "llama-cpp-python":
        return None
    for index, message in enumerate(request.body.get("messages") or ()):
        if isinstance(message, dict) and message.get("role") == "assistant":
            content = message.get("content")
            if not isinstance(content, str):
                return 500, (
                    f"messages.{index}.content: Input should be a valid string "
                    f"(got {type(content).__name__})"
                )
    return None


# -- the three wire formats, server side ---------------------------------------------


class _Anthropic:
    @staticmethod
    def body(request: RecordedRequest, reply: Reply, ident: int) -> dict[str, Any]:
        content: list[dict[str, Any]] = [dict(block) for block in reply.blocks]
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        for n, (name, arguments) in enumerate(reply.tool_calls):
            content.append({"type": "tool_use", "id": f"toolu_{ident}_{n}", "name": name, "input": arguments})
        return {
            "id": f"msg_{ident}",
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": content,
            "stop_reason": reply.stop_reason or ("tool_use" if reply.tool_calls else "end_turn"),
            "stop_sequence": None,
            "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
        }

    @staticmethod
    def events(request: RecordedRequest, reply: Reply, ident: int) -> list[str]:
        def event(kind: str, data: dict[str, Any]) -> str:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}"

        message = _Anthropic.body(request, reply, ident)
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1},
        }
        out = [event("message_start", {"message": start}), event("ping", {})]
        index = 0
        for block in reply.blocks:
            if block.get("type") == "server_tool_use":  # its input streams as JSON, like tool_use
                opening = {**block, "input": {}}
                out.append(event("content_block_start", {"index": index, "content_block": opening}))
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block.get("input") or {})}
                out.append(event("content_block_delta", {"index": index, "delta": delta}))
            else:
                out.append(event("content_block_start", {"index": index, "content_block": dict(block)}))
            out.append(event("content_block_stop", {"index": index}))
            index += 1
        if reply.text:
            out.append(
                event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
            )
            for piece in _pieces(reply.text):
                delta = {"type": "text_delta", "text": piece}
                out.append(event("content_block_delta", {"index": index, "delta": delta}))
            out.append(event("content_block_stop", {"index": index}))
            index += 1
        for n, (name, arguments) in enumerate(reply.tool_calls):
            block = {"type": "tool_use", "id": f"toolu_{ident}_{n}", "name": name, "input": {}}
            out.append(event("content_block_start", {"index": index, "content_block": block}))
            raw = json.dumps(arguments)
            for half in (raw[: len(raw) // 2], raw[len(raw) // 2 :]):
                delta = {"type": "input_json_delta", "partial_json": half}
                out.append(event("content_block_delta", {"index": index, "delta": delta}))
            out.append(event("content_block_stop", {"index": index}))
            index += 1
        stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
        out.append(event("message_delta", {"delta": stop, "usage": {"output_tokens": reply.output_tokens}}))
        out.append(event("message_stop", {}))
        return out


def _strict_problem(node: Any, context: tuple[str, ...]) -> str | None:
    """The first rule of OpenAI's strict subset that ``node`` breaks, worded like the API's 400."""
    if not isinstance(node, dict):
        return None
    where = f"In context={context!r}, "
    if "default" in node:
        return where + "'default' is not permitted."
    if node.get("type") == "object":
        if node.get("additionalProperties") is not False:
            return where + "'additionalProperties' is required to be supplied and to be false."
        properties = node.get("properties") or {}
        required = node.get("required")
        missing = [name for name in properties if not isinstance(required, list) or name not in required]
        if missing:
            return (
                where + "'required' is required to be supplied and to be an array including every key "
                f"in properties. Missing '{missing[0]}'."
            )
    children: list[tuple[tuple[str, ...], Any]] = []
    for key in ("properties", "$defs"):
        for name, sub in (node.get(key) or {}).items():
            children.append(((*context, key, name), sub))
    for key in ("anyOf", "oneOf", "allOf"):
        for index, sub in enumerate(node.get(key) or ()):
            children.append(((*context, key, str(index)), sub))
    if "items" in node:
        children.append(((*context, "items"), node["items"]))
    for child_context, sub in children:
        problem = _strict_problem(sub, child_context)
        if problem is not None:
            return problem
    return None


class _OpenAI:
    @staticmethod
    def check(request: RecordedRequest) -> str | None:
        """Why the real API would refuse the request with a 400 (a strict schema outside the subset)."""
        body = request.body
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            spec = fmt.get("json_schema") or {}
            problem = _strict_problem(spec.get("schema"), ()) if spec.get("strict") else None
            if problem is not None:
                return f"Invalid schema for response_format '{spec.get('name')}': {problem}"
        for tool in body.get("tools") or ():
            function = tool.get("function") or {}
            problem = _strict_problem(function.get("parameters"), ()) if function.get("strict") else None
            if problem is not None:
                return f"Invalid schema for function '{function.get('name')}': {problem}"
        return None

    @staticmethod
    def body(request: RecordedRequest, reply: Reply, ident: int) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{ident}_{n}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
                for n, (name, arguments) in enumerate(reply.tool_calls)
            ]
        return {
            "id": f"chatcmpl-{ident}",
            "object": "chat.completion",
            "created": 1760000000,
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                }
            ],
            **({"usage": _OpenAI.usage(reply)} if reply.usage else {}),
        }

    @staticmethod
    def usage(reply: Reply) -> dict[str, int]:
        return {
            "prompt_tokens": reply.input_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": reply.input_tokens + reply.output_tokens,
        }

    @staticmethod
    def events(request: RecordedRequest, reply: Reply, ident: int) -> list[str]:
        head = {
            "id": f"chatcmpl-{ident}",
            "object": "chat.completion.chunk",
            "created": 1760000000,
            "model": request.model,
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return "data: " + json.dumps({**head, "choices": [choice]})

        out = [chunk({"role": "assistant", "content": ""})]
        out += [chunk({"content": piece}) for piece in _pieces(reply.text)]
        for n, (name, arguments) in enumerate(reply.tool_calls):
            opening = {
                "index": n,
                "id": f"call_{ident}_{n}",
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            out.append(chunk({"tool_calls": [opening]}))
            raw = json.dumps(arguments)
            for half in (raw[: len(raw) // 2], raw[len(raw) // 2 :]):
                out.append(chunk({"tool_calls": [{"index": n, "function": {"arguments": half}}]}))
        out.append(chunk({}, "tool_calls" if reply.tool_calls else "stop"))
        if reply.usage:
            out.append("data: " + json.dumps({**head, "choices": [], "usage": _OpenAI.usage(reply)}))
        out.append("data: [DONE]")
        return out


class _Gemini:
    @staticmethod
    def check(request: RecordedRequest) -> str | None:
        """Why the real API would refuse the request with a 400 (tools with JSON output before Gemini 3)."""
        body = request.body
        version = re.match(r"gemini-(\d+)", request.model)
        old_model = version is not None and int(version.group(1)) < 3
        json_output = (body.get("generationConfig") or {}).get("responseMimeType") == "application/json"
        if old_model and json_output and body.get("tools"):
            return "Function calling with a response mime type: 'application/json' is unsupported"
        return None

    @staticmethod
    def _usage(reply: Reply) -> dict[str, int]:
        return {
            "promptTokenCount": reply.input_tokens,
            "candidatesTokenCount": reply.output_tokens,
            "totalTokenCount": reply.input_tokens + reply.output_tokens,
        }

    @staticmethod
    def _chunk(
        request: RecordedRequest, reply: Reply, ident: int, parts: list[Any], finish: bool
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = "STOP"
        return {
            "candidates": [candidate],
            "usageMetadata": _Gemini._usage(reply),
            "modelVersion": request.model,
            "responseId": f"resp_{ident}",
        }

    @staticmethod
    def _calls(reply: Reply) -> list[dict[str, Any]]:
        return [{"functionCall": {"name": name, "args": arguments}} for name, arguments in reply.tool_calls]

    @staticmethod
    def body(request: RecordedRequest, reply: Reply, ident: int) -> dict[str, Any]:
        parts = ([{"text": reply.text}] if reply.text else []) + _Gemini._calls(reply)
        return _Gemini._chunk(request, reply, ident, parts, True)

    @staticmethod
    def events(request: RecordedRequest, reply: Reply, ident: int) -> list[str]:
        pieces = _pieces(reply.text)
        chunks = [_Gemini._chunk(request, reply, ident, [{"text": p}], False) for p in pieces[:-1]]
        last = ([{"text": pieces[-1]}] if pieces else [{"text": ""}]) + _Gemini._calls(reply)
        chunks.append(_Gemini._chunk(request, reply, ident, last, True))
        return ["data: " + json.dumps(c) for c in chunks]


WIRES: dict[str, Any] = {"anthropic": _Anthropic, "openai": _OpenAI, "gemini": _Gemini}

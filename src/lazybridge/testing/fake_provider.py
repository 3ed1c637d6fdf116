"""FakeProvider: an ASGI app that answers like the model providers do.

It speaks the Anthropic Messages, OpenAI chat-completions (also DeepSeek and
OpenAI-compatible servers) and Gemini ``generateContent`` wire formats,
non-streamed and as SSE, with text, tool calls and usage -- chosen by the
request path, so every ``LLMEngine`` can point its ``base_url`` at it::

    fake = FakeProvider()
    fake.push(Reply.error(429, headers={"retry-after": "0.2"}), "hello")
    with serve_fake_provider(fake) as base_url:
        agent = Agent(engine=LLMEngine("claude-haiku-4-5", base_url=base_url, api_key="k"))
        assert agent("hi").text() == "hello"
    assert len(fake.requests) == 2

Replies are scripted per test with :meth:`FakeProvider.push` (a queue, per
model or shared) or a ``respond`` function; without a script it answers
``"<model> says: <the last user message>"``.  A :class:`Reply` can also be
an error status with the provider's error body and headers, a delay, a
stream cut or stalled mid-way, or a raw (invalid) body.

Every request is recorded (:attr:`FakeProvider.requests`): path, JSON body,
header *names*, and whether an API key was sent -- keys themselves are never
stored.  Connections the client dropped while a reply was pending are
counted (:attr:`FakeProvider.disconnects`, :attr:`FakeProvider.disconnected`).

The app is plain ASGI (no dependency); :func:`serve_fake_provider` runs it
on a loopback socket (that needs the ``lazybridge[testing]`` extra).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

import anyio
import attrs

__all__ = ["FakeProvider", "RecordedRequest", "Reply"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_AUTH_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")


@attrs.frozen
class Reply:
    """One scripted answer.

    Arguments:
        text: the answer text (streamed in a few deltas).
        tool_calls: ``(name, arguments)`` pairs the model "calls".
        status: HTTP status; >= 400 sends the provider's error body.
        message, kind: the error's message and type/code
            (``"insufficient_quota"``, ``"overloaded_error"``, ...).
        headers: extra response headers (``retry-after``, ...).
        retry_delay: Gemini ``RetryInfo.retryDelay`` (``"0.2s"``) in the error body.
        delay: seconds before the response starts.
        chunk_delay: seconds between stream events.
        cut_after: a stream drops the connection after this many events.
        stall_after: a stream goes silent after this many events (until the client leaves).
        body: raw bytes sent as the body instead (with ``content_type``).
        input_tokens, output_tokens: the usage reported.
    """

    text: str = ""
    tool_calls: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    status: int = 200
    message: str | None = None
    kind: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    retry_delay: str | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    cut_after: int | None = None
    stall_after: int | None = None
    body: bytes | None = None
    content_type: str = "application/json"
    input_tokens: int = 12
    output_tokens: int = 7

    @classmethod
    def error(
        cls,
        status: int,
        message: str | None = None,
        *,
        kind: str | None = None,
        headers: Mapping[str, str] | None = None,
        retry_delay: str | None = None,
    ) -> Reply:
        """An error answer: ``status`` with the provider's error body."""
        return cls(status=status, message=message, kind=kind, headers=headers or {}, retry_delay=retry_delay)

    @classmethod
    def tool_call(cls, name: str, arguments: Mapping[str, Any] | None = None, *, text: str = "") -> Reply:
        """An answer that calls one tool."""
        return cls(text=text, tool_calls=((name, dict(arguments or {})),))


@attrs.frozen
class RecordedRequest:
    """What the fake received.  ``header_names`` are lower-case; key values are not kept."""

    method: str
    path: str
    query: str
    header_names: tuple[str, ...]
    body: Any
    wire: str
    stream: bool
    model: str
    received_at: float
    _key_digest: str | None = attrs.field(default=None, repr=False)

    def carries_key(self, key: str) -> bool:
        """Whether the request authenticated with ``key`` (compared by digest)."""
        return self._key_digest is not None and self._key_digest == _digest(key)

    @property
    def last_user_text(self) -> str:
        return _last_user_text(self.wire, self.body)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class FakeProvider:
    """The ASGI app.  Thread-safe: tests script it while the server runs in its own thread.

    Arguments:
        replies: replies answered in order, before the default answer.
        respond: ``fn(request) -> Reply | str`` used when the queues are empty.
        latency: seconds every answer waits before starting (like ``Reply.delay``).
    """

    def __init__(
        self,
        replies: Iterable[Reply | str] = (),
        *,
        respond: Callable[[RecordedRequest], Reply | str] | None = None,
        latency: float = 0.0,
    ) -> None:
        self.respond = respond
        self.latency = latency
        self._lock = threading.Lock()
        self._queues: dict[str | None, deque[Reply]] = {}
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        #: Set whenever a client drops a connection while its reply was pending.
        self.disconnected = threading.Event()
        #: Set whenever a request has been received (before the reply).
        self.received = threading.Event()
        self._ids = 0
        self.push(*replies)

    # -- scripting -------------------------------------------------------------------

    def push(self, *replies: Reply | str, model: str | None = None) -> None:
        """Queue replies, for ``model`` only or (``None``) for any model."""
        with self._lock:
            queue = self._queues.setdefault(model, deque())
            queue.extend(Reply(text=r) if isinstance(r, str) else r for r in replies)

    def reset(self) -> None:
        """Forget the script, the recorded requests and the disconnects."""
        with self._lock:
            self._queues.clear()
            self.requests.clear()
            self.disconnects = 0
            self.respond = None
            self.latency = 0.0
        self.disconnected.clear()
        self.received.clear()

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            for key in (request.model, None):
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft()
        if self.respond is not None:
            reply = self.respond(request)
            return Reply(text=reply) if isinstance(reply, str) else reply
        return Reply(text=f"{request.model} says: {request.last_user_text}")

    def _new_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    # -- ASGI ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        path: str = scope["path"]
        query = scope.get("query_string", b"").decode()
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        wire = _wire_of(path)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if wire is None or not isinstance(body, dict):
            await _send(send, 404 if wire is None else 400, b'{"error": {"message": "bad request"}}')
            return
        key = next((headers[h] for h in _AUTH_HEADERS if h in headers), None)
        if key is not None and key.lower().startswith("bearer "):
            key = key[7:]
        stream = bool(body.get("stream")) or ":streamGenerateContent" in path
        model = str(body.get("model") or _gemini_model(path))
        request = RecordedRequest(
            "POST" if scope.get("method") == "POST" else str(scope.get("method")),
            path,
            query,
            tuple(headers),
            body,
            wire,
            stream,
            model,
            time.monotonic(),
            _digest(key) if key else None,
        )
        with self._lock:
            self.requests.append(request)
        self.received.set()
        reply = self._next_reply(request)
        await self._answer(request, reply, receive, send)

    async def _answer(self, request: RecordedRequest, reply: Reply, receive: Receive, send: Send) -> None:
        state = {"finished": False}

        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                # Wakes with http.disconnect when the client drops the connection.
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        if not state["finished"]:
                            with self._lock:
                                self.disconnects += 1
                            self.disconnected.set()
                            tg.cancel_scope.cancel()
                        return

            tg.start_soon(watch)
            await self._reply(request, reply, send, state)
            tg.cancel_scope.cancel()

    async def _reply(
        self, request: RecordedRequest, reply: Reply, send: Send, state: dict[str, bool]
    ) -> None:
        delay = reply.delay or self.latency
        if delay:
            await anyio.sleep(delay)
        ident = self._new_id()
        if reply.body is not None:
            state["finished"] = True
            await _send(send, reply.status, reply.body, reply.content_type, reply.headers)
            return
        if reply.status >= 400:
            state["finished"] = True
            body = _error_body(request.wire, reply)
            await _send(send, reply.status, json.dumps(body).encode(), headers=reply.headers)
            return
        if not request.stream:
            body = _WIRES[request.wire].body(request, reply, ident)
            state["finished"] = True
            await _send(send, 200, json.dumps(body).encode(), headers=reply.headers)
            return
        events = _WIRES[request.wire].events(request, reply, ident)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
                + [(k.encode(), v.encode()) for k, v in reply.headers.items()],
            }
        )
        separator = "\r\n\r\n" if request.wire == "gemini" else "\n\n"
        for count, event in enumerate(events):
            if reply.cut_after is not None and count >= reply.cut_after:
                return  # the server closes the connection mid-body
            if reply.stall_after is not None and count >= reply.stall_after:
                await anyio.sleep_forever()
            if reply.chunk_delay and count:
                await anyio.sleep(reply.chunk_delay)
            await send(
                {"type": "http.response.body", "body": (event + separator).encode(), "more_body": True}
            )
        state["finished"] = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> None:
    extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode()), *extra],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _wire_of(path: str) -> str | None:
    if path.endswith("/messages"):
        return "anthropic"
    if path.endswith("/chat/completions"):
        return "openai"
    if ":generateContent" in path or ":streamGenerateContent" in path:
        return "gemini"
    return None


def _gemini_model(path: str) -> str:
    tail = path.rsplit("/models/", 1)[-1]
    return tail.split(":", 1)[0]


def _last_user_text(wire: str, body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    items = body.get("contents" if wire == "gemini" else "messages") or []
    for item in reversed(items):
        if not isinstance(item, dict) or item.get("role") != "user":
            continue
        content = item.get("parts") if wire == "gemini" else item.get("content")
        if isinstance(content, str):
            return content
        texts = [
            p.get("text", "") for p in content or () if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
        if texts:
            return "".join(texts)
    return ""


def _pieces(text: str) -> list[str]:
    """``text`` in up to four deltas, split at spaces."""
    if not text:
        return []
    words = text.split(" ")
    size = max(1, (len(words) + 3) // 4)
    groups = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [g + (" " if i < len(groups) - 1 else "") for i, g in enumerate(groups)]


def _error_body(wire: str, reply: Reply) -> dict[str, Any]:
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


# -- the three wire formats, server side ---------------------------------------------


class _Anthropic:
    @staticmethod
    def body(request: RecordedRequest, reply: Reply, ident: int) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
        for n, (name, arguments) in enumerate(reply.tool_calls):
            content.append({"type": "tool_use", "id": f"toolu_{ident}_{n}", "name": name, "input": arguments})
        return {
            "id": f"msg_{ident}",
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": content,
            "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
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
        if reply.text:
            out.append(
                event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
            )
            for piece in _pieces(reply.text):
                out.append(
                    event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
                )
            out.append(event("content_block_stop", {"index": 0}))
            index = 1
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


class _OpenAI:
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
            "usage": _OpenAI.usage(reply),
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
        out.append("data: " + json.dumps({**head, "choices": [], "usage": _OpenAI.usage(reply)}))
        out.append("data: [DONE]")
        return out


class _Gemini:
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


_WIRES: dict[str, Any] = {"anthropic": _Anthropic, "openai": _OpenAI, "gemini": _Gemini}

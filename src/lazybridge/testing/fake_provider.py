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
stream cut or stalled mid-way, a reply without usage, or a raw (invalid) body.

The chat-completions endpoint can also act like a particular compatible
server (``chat_server=``); today ``"llama-cpp-python"``: like its 0.3.x
server it answers an assistant message whose ``content`` is not a string
(OpenAI's ``null`` next to tool calls) with a 500, and its streams carry no
usage.

Every request is recorded (:attr:`FakeProvider.requests`): path, JSON body,
header *names*, and whether an API key was sent -- keys themselves are never
stored.  Connections the client dropped while a reply was pending are
counted (:attr:`FakeProvider.disconnects`, :attr:`FakeProvider.disconnected`).

The app is plain ASGI (no dependency); :func:`serve_fake_provider` runs it
on a loopback socket (that needs the ``lazybridge[testing]`` extra).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

import anyio
import attrs

from .._checks import check_float, check_whole
from ..errors import ConfigurationError
from ._fake_wires import CHAT_SERVERS, WIRES, error_body, server_problem

__all__ = ["FakeProvider", "FakeRateLimit", "RecordedRequest", "Reply"]

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
        after_requests: the response starts only once the server has received
            this many requests in all (so a test can make the fast answer of a
            race wait until every racer's request has arrived; gives up after
            10 s).
        chunk_delay: seconds between stream events.
        cut_after: a stream drops the connection after this many events.
        stall_after: a stream goes silent after this many events (until the client leaves).
        body: raw bytes sent as the body instead (with ``content_type``).
        input_tokens, output_tokens: the usage reported.
        usage: ``False`` to report no usage at all, as some local servers do
            (chat-completions only).
        stop_reason: the provider's stop reason, instead of the usual one
            (Anthropic ``"pause_turn"``).
        blocks: Anthropic content blocks sent as is before the text
            (server-tool blocks such as ``server_tool_use``).
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
    usage: bool = True
    stop_reason: str | None = None
    blocks: tuple[Mapping[str, Any], ...] = ()
    after_requests: int | None = None

    def __attrs_post_init__(self) -> None:
        if isinstance(self.status, bool) or not isinstance(self.status, int) or not 100 <= self.status <= 599:
            raise ConfigurationError(f"status must be an HTTP status from 100 to 599, not {self.status!r}")
        for argument in ("delay", "chunk_delay"):
            check_float(getattr(self, argument), argument, low=0.0, high=math.inf, optional=False)
        for argument in ("input_tokens", "output_tokens"):
            check_whole(getattr(self, argument), argument, minimum=0)
        for argument in ("cut_after", "stall_after", "after_requests"):
            check_whole(getattr(self, argument), argument, minimum=0, optional=True)

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
class FakeRateLimit:
    """A scripted account rate limit: token buckets per API key, as the providers keep them.

    Arguments:
        requests: requests per ``window`` (``None``: not limited).
        tokens: tokens per ``window``; a request costs its body's length / 4.
        window: seconds in which a full bucket refills.

    Each key's buckets start full and refill continuously.  Every answer on
    the OpenAI and Anthropic paths carries the provider's real headers
    (``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` with duration
    resets; ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}``
    with RFC 3339 resets); a request the buckets cannot take is answered 429
    with ``retry-after`` (seconds, fractional) and ``retry-after-ms`` naming
    when it would fit, and counted in :attr:`FakeProvider.rate_limited`.
    """

    requests: int | None = None
    tokens: int | None = None
    window: float = 60.0

    def __attrs_post_init__(self) -> None:
        check_whole(self.requests, "requests", minimum=1, optional=True)
        check_whole(self.tokens, "tokens", minimum=1, optional=True)
        check_float(self.window, "window", low=0.001, high=math.inf, optional=False)


class _Buckets:
    """One key's buckets (requests, tokens): ``level`` units left, refilled at ``limit / window``."""

    def __init__(self, limit: FakeRateLimit, now: float) -> None:
        self.limit = limit
        self.levels = [float(limit.requests or 0), float(limit.tokens or 0)]
        self.at = now

    def take(self, cost: int, now: float) -> tuple[bool, float, list[tuple[int, float, float]]]:
        """Take one request of ``cost`` tokens: (taken, seconds until it would fit, per-bucket state)."""
        caps = [self.limit.requests, self.limit.tokens]
        costs = [1.0, float(cost)]
        elapsed, self.at = now - self.at, now
        wait = 0.0
        for i, cap in enumerate(caps):
            if cap is None:
                continue
            rate = cap / self.limit.window
            self.levels[i] = min(float(cap), self.levels[i] + elapsed * rate)
            need = min(costs[i], float(cap))
            if self.levels[i] < need:
                wait = max(wait, (need - self.levels[i]) / rate)
        taken = wait == 0.0
        state = []
        for i, cap in enumerate(caps):
            if cap is None:
                state.append((0, 0.0, 0.0))
                continue
            if taken:
                self.levels[i] -= costs[i]
            rate = cap / self.limit.window
            state.append((cap, max(self.levels[i], 0.0), (cap - self.levels[i]) / rate))
        return taken, wait, state


def _limit_headers(wire: str, state: list[tuple[int, float, float]], limit: FakeRateLimit) -> dict[str, str]:
    headers: dict[str, str] = {}
    for (cap, left, reset), name, configured in zip(
        state, ("requests", "tokens"), (limit.requests, limit.tokens), strict=True
    ):
        if configured is None:
            continue
        if wire == "openai":
            headers[f"x-ratelimit-limit-{name}"] = str(cap)
            headers[f"x-ratelimit-remaining-{name}"] = str(math.floor(left))
            headers[f"x-ratelimit-reset-{name}"] = f"{reset * 1000:.3f}ms"
        elif wire == "anthropic":
            when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=reset)
            headers[f"anthropic-ratelimit-{name}-limit"] = str(cap)
            headers[f"anthropic-ratelimit-{name}-remaining"] = str(math.floor(left))
            headers[f"anthropic-ratelimit-{name}-reset"] = when.isoformat(timespec="microseconds").replace(
                "+00:00", "Z"
            )
    return headers


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
        chat_server: ``"openai"`` (the default) or ``"llama-cpp-python"``: which
            server's quirks the chat-completions endpoint has (see the module doc).
        rate_limit: a :class:`FakeRateLimit` every key's requests are held to
            (also settable later: ``fake.rate_limit = ...``; ``reset()`` clears it).
    """

    def __init__(
        self,
        replies: Iterable[Reply | str] = (),
        *,
        respond: Callable[[RecordedRequest], Reply | str] | None = None,
        latency: float = 0.0,
        chat_server: str = "openai",
        rate_limit: FakeRateLimit | None = None,
    ) -> None:
        if chat_server not in CHAT_SERVERS:
            raise ConfigurationError(f"chat_server must be one of {', '.join(CHAT_SERVERS)}, not {chat_server!r}")
        if respond is not None and not callable(respond):
            raise TypeError(f"respond must be a function of a RecordedRequest, or None, not {type(respond).__name__}")
        self.respond = respond
        self.latency = check_float(latency, "latency", low=0.0, high=math.inf, optional=False)
        self.chat_server = chat_server
        self.rate_limit = rate_limit
        self._buckets: dict[str | None, _Buckets] = {}
        #: Requests answered 429 by :attr:`rate_limit` (not the scripted 429s).
        self.rate_limited = 0
        self._lock = threading.Lock()
        self._queues: dict[str | None, deque[Reply]] = {}
        self.requests: list[RecordedRequest] = []
        # Woken on every request, in the server's loop (for Reply.after_requests).
        self._arrived: anyio.Event | None = None
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
            self.chat_server = "openai"
            self.rate_limit = None
            self._buckets.clear()
            self.rate_limited = 0
        self.disconnected.clear()
        self.received.clear()

    def busiest(self, seconds: float) -> int:
        """The most requests received within any ``seconds`` (a rate check: compare with the limit)."""
        with self._lock:
            times = sorted(r.received_at for r in self.requests)
        most = start = 0
        for end, at in enumerate(times):
            while at - times[start] > seconds:
                start += 1
            most = max(most, end - start + 1)
        return most

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
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = None
        # What the real API refuses before any model runs (the script is kept).
        check = getattr(WIRES[wire], "check", None)
        problem = check(request) if check is not None else None
        quirk = server_problem(self.chat_server, request) if wire == "openai" else None
        limited = self._rate_limit(request, len(raw))
        if limited is not None and limited.status == 429:
            reply = limited
        elif problem is not None:
            reply = Reply.error(400, problem)
        elif quirk is not None:
            reply = Reply.error(*quirk)
        else:
            reply = self._next_reply(request)
            if wire == "openai" and request.stream and self.chat_server == "llama-cpp-python":
                reply = attrs.evolve(reply, usage=False)  # it ignores stream_options.include_usage
        if limited is not None:
            reply = attrs.evolve(reply, headers={**limited.headers, **reply.headers})
        await self._answer(request, reply, receive, send)

    def _rate_limit(self, request: RecordedRequest, size: int) -> Reply | None:
        """The scripted rate limit's verdict: a 429, or a reply carrying only its headers."""
        limit = self.rate_limit
        if limit is None:
            return None
        with self._lock:
            now = time.monotonic()
            buckets = self._buckets.get(request._key_digest)
            if buckets is None or buckets.limit is not limit:
                buckets = self._buckets[request._key_digest] = _Buckets(limit, now)
            taken, wait, state = buckets.take((size + 3) // 4, now)
            if not taken:
                self.rate_limited += 1
        headers = _limit_headers(request.wire, state, limit)
        if taken:
            return Reply(headers=headers)
        headers["retry-after"] = f"{wait:.3f}"
        headers["retry-after-ms"] = f"{wait * 1000:.0f}"
        kind = "rate_limit_error" if request.wire == "anthropic" else "rate_limit_exceeded"
        return Reply.error(429, "Rate limit reached for requests", kind=kind, headers=headers)

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
        if reply.after_requests is not None:
            with anyio.move_on_after(10):
                while len(self.requests) < reply.after_requests:
                    if self._arrived is None:
                        self._arrived = anyio.Event()
                    await self._arrived.wait()
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
            body = error_body(request.wire, reply)
            await _send(send, reply.status, json.dumps(body).encode(), headers=reply.headers)
            return
        if not request.stream:
            body = WIRES[request.wire].body(request, reply, ident)
            state["finished"] = True
            await _send(send, 200, json.dumps(body).encode(), headers=reply.headers)
            return
        events = WIRES[request.wire].events(request, reply, ident)
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

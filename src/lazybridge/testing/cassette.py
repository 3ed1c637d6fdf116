"""Cassettes: record a run's real HTTP exchanges once, replay them with no network.

::

    from lazybridge import Agent, LLMEngine
    from lazybridge.testing import Cassette

    cassette = Cassette("tests/cassettes/haiku.json", mode="once")   # records on the first run
    engine = LLMEngine("claude-haiku-4-5", http_client=cassette.client())
    env = await Agent(engine=engine).run("What is SSE?")

A cassette is an :class:`httpx.AsyncBaseTransport`, so it plugs in wherever
an httpx client does (``LLMEngine(http_client=...)``), works unchanged on
asyncio and Trio, and touches no global state.  Recording sends each request
through a real transport and keeps the response's body *as the chunks
arrived*; replaying hands those chunks back one by one, so a recorded stream
is replayed as a stream (deltas arrive in the same pieces).

Secrets are scrubbed before anything is written: credential headers
(``authorization``, ``x-api-key``, ``x-goog-api-key``, ``api-key``, cookies)
are dropped, a ``key=`` query parameter is dropped, and every credential the
recording saw in those headers -- plus any string given in ``secrets=`` --
is replaced by ``[REDACTED]`` wherever it appears in a body.

A replayed request is matched to an unused recorded exchange by method,
path, query and JSON body (credentials are not compared, so a replay needs
no real key).  A request that matches none raises :class:`CassetteMismatch`
naming what differed from the closest recorded exchange -- it is a test
failure, never retried as a network error.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import anyio.lowlevel
import httpx

from ..errors import ConfigurationError

__all__ = ["Cassette", "CassetteMismatch"]

Mode = Literal["replay", "record", "once"]

REDACTED = "[REDACTED]"
#: Request and response headers never written (lower case).
_SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie", "set-cookie", "proxy-authorization"}
)
#: Response headers that describe the original transfer, not the content: a replayed body is not compressed.
_TRANSFER_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection"})
_SECRET_QUERY = frozenset({"key", "api_key", "apikey"})
_FORMAT = 1


class CassetteMismatch(Exception):
    """A replayed request matches no recorded exchange; the message says what differed."""


class Cassette(httpx.AsyncBaseTransport):
    """Recorded HTTP exchanges, as an httpx transport.

    Arguments:
        path: the cassette file (JSON).
        mode: ``"replay"`` (the default: the file must exist; nothing goes
            to the network), ``"record"`` (send every request for real and
            write the file anew) or ``"once"`` (replay if the file exists,
            else record).
        secrets: more strings to scrub from what is written (an API key
            sent in a body, say).
        transport: the real transport to record through (default
            ``httpx.AsyncHTTPTransport()``).

    Errors: replaying a request that matches no unused exchange raises
    :class:`CassetteMismatch`; a missing file in ``"replay"`` mode raises
    ``FileNotFoundError`` at construction.

    Cancellation: a replayed stream checkpoints between chunks, so a cancel
    scope interrupts it like a real one; a recording whose response was not
    read to its end keeps only what was read.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        mode: Mode = "replay",
        secrets: Iterable[str] = (),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if mode not in ("replay", "record", "once"):
            raise ConfigurationError(f"mode must be 'replay', 'record' or 'once', not {mode!r}")
        self.path = Path(path)
        if mode == "once":
            mode = "replay" if self.path.exists() else "record"
        self.mode: Literal["replay", "record"] = mode
        self._secrets = {s for s in secrets if isinstance(s, str) and s}
        self._lock = threading.Lock()
        self._exchanges: list[dict[str, Any]] = []
        self._used: set[int] = set()
        self._transport: httpx.AsyncBaseTransport | None = None
        if mode == "replay":
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") != _FORMAT:
                raise ConfigurationError(f"{self.path} is not a LazyBridge cassette (format {_FORMAT})")
            self._exchanges = list(data["exchanges"])
        else:
            self._transport = transport or httpx.AsyncHTTPTransport()

    def __repr__(self) -> str:
        return f"Cassette({str(self.path)!r}, mode={self.mode!r}, exchanges={len(self._exchanges)})"

    @property
    def exchanges(self) -> Sequence[dict[str, Any]]:
        """The recorded exchanges (as written to the file)."""
        return tuple(self._exchanges)

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` over this cassette (``kwargs`` go to the client)."""
        return httpx.AsyncClient(transport=self, **kwargs)

    # -- the transport -----------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        if self.mode == "replay":
            return self._replay(request)
        assert self._transport is not None
        self._learn_secrets(request)
        response = await self._transport.handle_async_request(request)
        exchange = {"request": self._request_record(request), "response": None}
        status = response.status_code
        # The body is handed on (and kept) decoded, so the headers that describe
        # the original transfer (compression, length) no longer apply.
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _TRANSFER_HEADERS]
        stream = _RecordingStream(response, lambda chunks: self._finish_recording(exchange, status, headers, chunks))
        return httpx.Response(status, headers=headers, stream=stream, extensions=response.extensions)

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()

    # -- replay ------------------------------------------------------------------------

    def _replay(self, request: httpx.Request) -> httpx.Response:
        wanted = self._request_record(request)
        closest: tuple[int, str] | None = None
        with self._lock:
            for index, exchange in enumerate(self._exchanges):
                if index in self._used:
                    continue
                difference = _difference(exchange["request"], wanted)
                if difference is None:
                    self._used.add(index)
                    break
                if closest is None:
                    closest = (index, difference)
            else:
                raise CassetteMismatch(self._mismatch_message(wanted, closest))
        recorded = exchange["response"]
        chunks = [_decode_chunk(chunk) for chunk in recorded["chunks"]]
        return httpx.Response(recorded["status"], headers=recorded["headers"], stream=_ReplayStream(chunks))

    def _mismatch_message(self, wanted: dict[str, Any], closest: tuple[int, str] | None) -> str:
        what = f"{wanted['method']} {wanted['path']}"
        if closest is None:
            unused = len(self._exchanges) - len(self._used)
            return f"{self.path}: no recorded exchange left for {what} ({unused} unused of {len(self._exchanges)})"
        index, difference = closest
        return f"{self.path}: {what} matches no recorded exchange; the closest (#{index}) differs: {difference}"

    # -- record ------------------------------------------------------------------------

    def _learn_secrets(self, request: httpx.Request) -> None:
        for name, value in request.headers.items():
            if name.lower() in _SECRET_HEADERS:
                token = value.split(" ", 1)[1] if value.lower().startswith("bearer ") else value
                if token:
                    self._secrets.add(token)
        for name, value in request.url.params.multi_items():
            if name.lower() in _SECRET_QUERY and value:
                self._secrets.add(value)

    def _request_record(self, request: httpx.Request) -> dict[str, Any]:
        query = [(k, v) for k, v in request.url.params.multi_items() if k.lower() not in _SECRET_QUERY]
        return {
            "method": request.method,
            "path": request.url.path,
            "query": sorted(query),
            "headers": sorted(
                (k.lower(), v) for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS
            ),
            "body": _body_value(request.content),
        }

    def _finish_recording(
        self, exchange: dict[str, Any], status: int, headers: list[tuple[str, str]], chunks: list[bytes]
    ) -> None:
        exchange["response"] = {
            "status": status,
            "headers": [(k, v) for k, v in headers if k.lower() not in _SECRET_HEADERS],
            "chunks": [_encode_chunk(chunk) for chunk in chunks],
        }
        with self._lock:
            self._exchanges.append(exchange)
            self._write()

    def _write(self) -> None:
        text = json.dumps({"format": _FORMAT, "exchanges": self._exchanges}, indent=1, ensure_ascii=False)
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
            escaped = json.dumps(secret)[1:-1]  # as it stands inside a JSON string
            if escaped != secret:
                text = text.replace(escaped, REDACTED)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole to a temporary file, then moved: a crash never leaves half a cassette.
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, self.path)


class _RecordingStream(httpx.AsyncByteStream):
    """Passes the real response's (decoded) chunks through, keeping them; records when it ends."""

    def __init__(self, response: httpx.Response, done: Any) -> None:
        self._response = response
        self._done = done
        self._chunks: list[bytes] = []
        self._finished = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.aiter_bytes():
            self._chunks.append(chunk)
            yield chunk
        self._finish()

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._done(self._chunks)

    async def aclose(self) -> None:
        try:
            await self._response.aclose()
        finally:
            self._finish()


class _ReplayStream(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            await anyio.lowlevel.checkpoint()  # a stream, not a blob: cancellable between chunks
            yield chunk

    async def aclose(self) -> None:
        pass


def _body_value(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return {"text": content.decode("utf-8", "replace")}


def _encode_chunk(chunk: bytes) -> str | dict[str, str]:
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError:  # a chunk may split a character: keep the exact bytes
        return {"base64": base64.b64encode(chunk).decode("ascii")}


def _decode_chunk(chunk: str | dict[str, str]) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    return base64.b64decode(chunk["base64"])


def _difference(recorded: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    """What differs between two request records (credentials and other headers aside), or ``None``."""
    for field in ("method", "path"):
        if recorded[field] != wanted[field]:
            return f"{field} {recorded[field]!r} != {wanted[field]!r}"
    if [tuple(p) for p in recorded["query"]] != [tuple(p) for p in wanted["query"]]:
        return f"query {recorded['query']!r} != {wanted['query']!r}"
    return _json_difference(recorded["body"], wanted["body"], "body")


def _json_difference(a: Any, b: Any, where: str) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in b:
                return f"{where}.{key} was recorded but is missing now"
            if key not in a:
                return f"{where}.{key} is new (not in the recording)"
            found = _json_difference(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where} has {len(b)} items, the recording {len(a)}"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _json_difference(x, y, f"{where}[{index}]")
            if found:
                return found
        return None
    if a != b:
        return f"{where}: recorded {_short(a)}, now {_short(b)}"
    return None


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."

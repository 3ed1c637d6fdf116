"""EventStream: the text deltas of one streamed model reply, read from SSE.

Opened by :func:`lazybridge.providers._http.open_stream`.  The byte stream is
split into events by httpx-sse; the provider's :class:`StreamDecoder` turns
events into text deltas and, at the end, the same ``ModelResponse`` a
non-streamed call would have returned.
"""

from __future__ import annotations

import collections
import contextlib
import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from ..errors import APITimeoutError, MalformedResponseError, ProviderError, StreamError
from ..messages import ModelResponse
from ._errormap import scrubbed
from ._shape import malformed, obj, restate
from .base import StreamDecoder

if TYPE_CHECKING:
    from ._http import Endpoint

__all__ = ["EventStream"]

CLOSE_TIMEOUT = 5.0
_DRAIN_LIMIT = 100_000


async def _close_response(response: httpx.Response) -> None:
    with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
        await response.aclose()


class EventStream:
    """The text deltas of one streamed reply, then its :class:`ModelResponse`.

    ``await stream.__anext__()`` returns the next text delta (raising
    ``StopAsyncIteration`` at the end); :meth:`finish` then returns the
    accumulated response, equal to the non-streamed parse of the same reply.
    A plain object rather than an async generator, so no cancel scope is
    ever held across a yield; the HTTP response is closed when the stream
    ends, breaks, is cancelled mid-read, or :meth:`aclose` is called.

    Errors: a stream silent for longer than the stall timeout raises
    :class:`~lazybridge.errors.APITimeoutError`; one that breaks off raises
    :class:`~lazybridge.errors.StreamError`; an error event raises the
    class the wire format chose; an event (or a plain JSON answer) of a
    shape the wire format does not know raises
    :class:`~lazybridge.errors.MalformedResponseError`, never retried.  Every message built from what the
    provider sent has the API key masked, as for an HTTP error body.

    Retries: while no text delta has been returned yet, a stream that breaks
    off or stalls is closed and, if ``reopen`` allows it (the request's retry
    budget, see :mod:`lazybridge.providers._http`), read again from a new
    response with a fresh decoder -- the caller has seen nothing, so nothing
    is repeated.  After the first delta a failure is final: a retry would
    repeat text the caller already has.  Error *events* are the provider's
    answer and are never retried here.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        response: httpx.Response,
        *,
        release: Callable[[], None] | None = None,
        reopen: Callable[[ProviderError], Awaitable[httpx.Response | None]] | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._response = response
        self._release = release
        self._reopen = reopen
        self._delivered = False
        self._decoder: StreamDecoder = endpoint.wire.stream_decoder()
        self._pending: collections.deque[str] = collections.deque()
        self._events: AsyncGenerator[Any, None] | None = None
        self._final: ModelResponse | None = None
        self._exhausted = False
        self._closed = False

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> str:
        while not self._pending:
            if self._exhausted or self._closed:
                raise StopAsyncIteration
            await self._read_event()
        self._delivered = True
        return self._pending.popleft()

    async def _read_event(self) -> None:
        done = False
        try:
            if self._events is None:
                self._events = await self._start()
                if self._events is None:
                    done = True
                    return
            try:
                sse = await self._events.__anext__()
            except StopAsyncIteration:
                self._exhausted = True
                done = True
                await self.aclose()
                return
            except httpx.TransportError as exc:
                failure = self._transport_failure(exc)
                if await self._restart(failure):
                    done = True
                    return
                raise failure from exc
            event = "" if sse.event == "message" else sse.event
            with self._readable():
                self._pending.extend(self._decoder.feed(event, sse.data))
            done = True
        finally:
            if not done:
                await self.aclose()

    @contextlib.contextmanager
    def _readable(self) -> Iterator[None]:
        """A malformed answer names the endpoint's provider and status, with its excerpt masked."""
        try:
            yield
        except MalformedResponseError as exc:
            restate(
                exc,
                provider=self._endpoint.provider,
                scrub=self._endpoint.scrub,
                status_code=self._response.status_code,
            )
            raise
        except Exception as exc:
            # An error event or a corrupt line is the provider's text, and a
            # provider may echo the key in it (as in an HTTP error body).
            scrubbed(self._endpoint, exc)
            raise

    def _transport_failure(self, exc: httpx.TransportError) -> ProviderError:
        if isinstance(exc, httpx.TimeoutException):
            stall = self._endpoint.stall_timeout or self._endpoint.timeout
            return APITimeoutError(
                f"{self._endpoint.provider}: the stream stalled: nothing received for {stall:g}s",
                provider=self._endpoint.provider,
            )
        return StreamError(
            f"{self._endpoint.provider}: the stream broke off: "
            f"{self._endpoint.scrub(str(exc)) or type(exc).__name__}",
            provider=self._endpoint.provider,
            retryable=True,
        )

    async def _restart(self, failure: ProviderError) -> bool:
        """Read the reply again from a new response, if nothing was delivered and the budget allows.

        Keeps the request's slot in the limiter.  Raises what reopening
        raises (the last attempt's error).
        """
        if self._delivered or self._reopen is None or not failure.retryable:
            return False
        await self._close_response()
        response = await self._reopen(failure)
        if response is None:
            return False
        self._response = response
        self._decoder = self._endpoint.wire.stream_decoder()
        return True

    async def _start(self) -> AsyncGenerator[Any, None] | None:
        """The SSE events of the response; ``None`` if a server answered with plain JSON."""
        content_type = self._response.headers.get("content-type", "")
        if "json" in content_type and "event-stream" not in content_type:
            # Some compatible servers ignore "stream": true.  One chunk, same result.
            await self._response.aread()
            await self.aclose()
            with self._readable():
                try:
                    body = json.loads(self._response.content)
                except (ValueError, RecursionError):
                    raise malformed("an event stream or a JSON object", self._response.text, raw=True) from None
                self._final = self._endpoint.wire.parse_response(obj(body, "the response"))
            self._exhausted = True
            if self._final.text:
                self._pending.append(self._final.text)
            return None
        from httpx_sse import EventSource

        return EventSource(self._response).aiter_sse()

    def finish(self) -> ModelResponse:
        """The whole reply; call after the stream is exhausted.

        Raises :class:`~lazybridge.errors.StreamError` if the stream ended
        before the provider said the reply was complete.
        """
        if self._final is not None:
            return self._final
        if not self._exhausted:
            raise StreamError("the stream was not read to its end", provider=self._endpoint.provider)
        with self._readable():
            self._final = self._decoder.finish()
        return self._final

    async def aclose(self) -> None:
        """Close the HTTP response and free the request's slot (idempotent).

        A response not read to its end closes its connection rather than
        returning it to the pool.

        Cancellation: the closing is shielded (and bounded to 5 s), so the
        connection is released even when the caller is being cancelled.
        """
        if self._closed:
            return
        self._closed = True
        if self._release is not None:
            self._release()  # the request's slot in the client's limiter
        await self._close_response()

    async def _close_response(self) -> None:
        """Close the current HTTP response and its event reader (shielded, bounded)."""
        events, self._events = self._events, None
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            await self._response.aclose()
            if events is not None:
                # Run the closed stream to its end (it fails at once, or yields
                # what was already buffered), so that every async generator
                # nested inside httpx and httpx-sse finishes here instead of
                # being garbage collected half-way (which Trio warns about).
                for _ in range(_DRAIN_LIMIT):
                    try:
                        await events.__anext__()
                    except Exception:  # StopAsyncIteration, or the closed connection's error
                        break
                await events.aclose()

"""ScriptedModel: a :class:`~lazybridge.providers.base.ModelClient` with no socket.

``LLMEngine(ScriptedModel([...]))`` runs the *real* agent loop -- tool calls,
structured output, memory, streaming, max turns, accounting, events --
against scripted replies, the way an HTTP client is swapped for a mock
transport.  Use it to test your agents' logic fast and deterministically;
use the fake provider server (:class:`~lazybridge.testing.FakeProvider`) to
test what goes over the wire.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
import anyio.lowlevel

from ..errors import ConfigurationError
from ..messages import ModelRequest, ModelResponse, TextPart, ToolCall, Usage
from ..providers.base import OnRetry

__all__ = ["ScriptedModel"]

#: One scripted reply: the answer's text, a whole ModelResponse, or an exception to raise.
ModelReply = str | ModelResponse | BaseException
ModelScript = Sequence[ModelReply] | Callable[[ModelRequest], ModelReply | Awaitable[ModelReply]]


class ScriptedModel:
    """A model that answers each request from a script.

    ``replies`` is either a list, consumed one reply per model call (a call
    past its end raises ``LookupError`` naming how many there were), or a
    function ``fn(request) -> reply`` (sync or async) that sees each
    :class:`~lazybridge.messages.ModelRequest`.  A reply is

    * a ``str``: a plain text answer;
    * a :class:`~lazybridge.messages.ModelResponse`, such as one made with
      :meth:`reply` to call tools;
    * an exception instance, raised as the model call's failure (a
      :class:`~lazybridge.errors.RateLimitError`, say).

    Every request is recorded in :attr:`requests`.  A reply's usage is its
    own (:meth:`reply` defaults to 10 input and 5 output tokens); the cost is
    ``input_price * input_tokens + output_price * output_tokens`` (USD per
    token, default free).  ``delay`` seconds pass before each reply
    (cancellable, like a real request).  Streamed, a text reply comes in
    word-sized deltas.

    Args:
        replies: the script: a list of replies, one per model call, or
            ``fn(request) -> reply`` (sync or async).
        model: the model name its responses report.
        provider: the provider name its responses report.
        native_output: ``False`` makes ``output=`` go through the
            ``final_answer`` tool instead of a native schema mode.
        input_price: USD per input token.
        output_price: USD per output token.
        delay: seconds before each reply (cancellable).

    ::

        from lazybridge import Agent, LLMEngine
        from lazybridge.testing import ScriptedModel

        model = ScriptedModel([ScriptedModel.reply(tool_calls=[("add", {"a": 2, "b": 3})]), "5"])
        agent = Agent(engine=LLMEngine(model), tools=[add])
        assert agent("2 + 3?").text() == "5"
    """

    def __init__(
        self,
        replies: ModelScript,
        *,
        model: str = "scripted-model",
        provider: str = "scripted",
        native_output: bool = True,
        input_price: float = 0.0,
        output_price: float = 0.0,
        delay: float = 0.0,
    ) -> None:
        if isinstance(replies, (str, bytes)) or not (callable(replies) or isinstance(replies, Sequence)):
            raise ConfigurationError(
                f"replies must be a list of replies or a function of the request, not {type(replies).__name__}"
            )
        for argument, value in (("input_price", input_price), ("output_price", output_price), ("delay", delay)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigurationError(f"{argument} must be a number >= 0, not {value!r}")
        self._script = replies
        self._model = model
        self._provider = provider
        self._native_output = native_output
        self._prices = (float(input_price), float(output_price))
        self._delay = float(delay)
        self._position = 0
        self.requests: list[ModelRequest] = []

    @staticmethod
    def reply(
        text: str = "",
        *,
        tool_calls: Sequence[tuple[str, Mapping[str, Any]]] = (),
        input_tokens: int = 10,
        output_tokens: int = 5,
        stop_reason: str | None = None,
    ) -> ModelResponse:
        """A scripted reply: ``text`` and/or ``(name, arguments)`` tool calls, with its usage."""
        ids = itertools.count(1)
        parts: list[TextPart | ToolCall] = [TextPart(text)] if text else []
        parts += [ToolCall(f"call_{next(ids)}", name, dict(arguments)) for name, arguments in tool_calls]
        reason = stop_reason or ("tool_calls" if tool_calls else "stop")
        return ModelResponse(tuple(parts), reason, Usage(input_tokens, output_tokens))  # type: ignore[arg-type]

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def model(self) -> str:
        return self._model

    def __repr__(self) -> str:
        return f"ScriptedModel({self._model!r}, requests={len(self.requests)})"

    def native_output(self, *, with_tools: bool) -> bool:
        return self._native_output

    async def complete(self, request: ModelRequest, *, on_retry: OnRetry | None = None) -> ModelResponse:
        """The next scripted reply to ``request`` (raised, if it is an exception)."""
        self.requests.append(request)
        if self._delay:
            await anyio.sleep(self._delay)
        reply: Any
        if callable(self._script):
            reply = self._script(request)
            if inspect.isawaitable(reply):
                reply = await reply
        else:
            if self._position >= len(self._script):
                raise LookupError(
                    f"ScriptedModel's script ran out: it has {len(self._script)} replies and this is "
                    f"model call {self._position + 1}"
                )
            reply = self._script[self._position]
            self._position += 1
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, str):
            return self.reply(reply)
        if isinstance(reply, ModelResponse):
            return reply
        raise TypeError(f"a ScriptedModel reply must be a str, a ModelResponse or an exception, not {reply!r}")

    async def open_stream(self, request: ModelRequest, *, on_retry: OnRetry | None = None) -> _ScriptedStream:
        """The next scripted reply, as a stream of word-sized text deltas."""
        return _ScriptedStream(await self.complete(request, on_retry=on_retry))

    async def cost_usd(self, usage: Usage) -> float:
        return usage.input_tokens * self._prices[0] + usage.output_tokens * self._prices[1]


class _ScriptedStream:
    def __init__(self, response: ModelResponse) -> None:
        self._response = response
        text = response.text
        # Word-sized deltas that join back to the text exactly.
        self._deltas = [piece for piece in text.replace(" ", " \0").split("\0") if piece]

    def __aiter__(self) -> _ScriptedStream:
        return self

    async def __anext__(self) -> str:
        await anyio.lowlevel.checkpoint()
        if not self._deltas:
            raise StopAsyncIteration
        return self._deltas.pop(0)

    def finish(self) -> ModelResponse:
        return self._response

    async def aclose(self) -> None:
        self._deltas.clear()

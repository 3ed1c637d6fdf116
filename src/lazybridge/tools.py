"""Tool: a function the model may call.

A :class:`Tool` is a callable plus the JSON Schema of its parameters::

    def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        '''The current weather in a city.

        Args:
            city: The city's name, in English.
        '''

    tool = Tool.from_function(get_weather)          # name, description, schema from fn
    tool.spec()                                     # -> messages.ToolSpec, for the provider
    await tool.call({"city": "Rome"})               # checks arguments, then runs fn

:func:`as_tool` turns whatever the user put in ``tools=[...]`` (a Tool, a
function, an agent) into a Tool.

Arguments are checked before the function runs, strictly, with the shared
cattrs converter: ``"3"`` is not an ``int``, ``true`` is not an ``int``,
unknown and missing fields are errors.  A mismatch raises
:class:`ToolArgumentError`, whose message lists one ``<problem> @ $.path`` line
per bad field -- text meant to be sent back to the model so it can repair the
call.  ``int`` accepts a float with no fractional part (``3.0``), as JSON
Schema's ``integer`` does; ``float`` accepts any JSON number.  Pydantic model
parameters are validated by their own ``model_validate``.

``async def`` functions run in the event loop; everything else runs in a
worker thread, borrowing a token from a :class:`anyio.CapacityLimiter`
(:func:`default_thread_limiter`, one per event loop, unless ``call`` is given
another).
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.lowlevel
import anyio.to_thread
import attrs

from ._arguments import Binder, ToolArgumentError, json_type
from ._checks import check_seconds
from .errors import ConfigurationError
from .messages import ToolSpec
from .schema import (
    schema_for_function,
)

__all__ = [
    "DEFAULT_THREAD_LIMIT",
    "SupportsAsTool",
    "Tool",
    "ToolArgumentError",
    "as_tool",
    "default_thread_limiter",
]

#: Tokens of the per-event-loop limiter sync tools run under by default.
DEFAULT_THREAD_LIMIT = 40

# Providers accept this much in a tool name (OpenAI and Anthropic; Gemini allows a superset).
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


_thread_limiter: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar(
    "lazybridge.tools.thread_limiter"
)
_unbounded_limiter: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar(
    "lazybridge.tools.unbounded_limiter"
)


def default_thread_limiter() -> anyio.CapacityLimiter:
    """The limiter sync tools borrow a thread token from, one per event loop.

    Created on first use in each event loop with :data:`DEFAULT_THREAD_LIMIT`
    tokens; set its ``total_tokens`` to change the limit for that loop.  Must
    be called from inside a running event loop.
    """
    try:
        return _thread_limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(DEFAULT_THREAD_LIMIT)
        _thread_limiter.set(limiter)
        return limiter


def _no_limit() -> anyio.CapacityLimiter:
    # anyio.to_thread.run_sync insists on a limiter; the real one is held by _ThreadSlot.
    try:
        return _unbounded_limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(math.inf)
        _unbounded_limiter.set(limiter)
        return limiter


@attrs.frozen
class Tool:
    """A callable offered to a model, with the JSON Schema of its parameters.

    Build one with :meth:`from_function` (schema from type hints and
    docstring, arguments checked) or :meth:`from_schema` (hand-written
    schema, arguments passed through); :func:`as_tool` accepts anything a
    user may put in ``tools=[...]``.  ``fn`` is left out of the repr.

    Attributes:
        name: the name the model calls the tool by.
        description: what the model is told the tool does.
        parameters: the JSON Schema of the arguments (an ``object`` schema).
        fn: the function that runs (sync or async).
        timeout: seconds each call may take, or ``None``.
    """

    name: str
    description: str
    parameters: Mapping[str, Any]
    fn: Callable[..., Any] = attrs.field(repr=False)
    timeout: float | None = None
    _binder: Binder | None = attrs.field(default=None, repr=False, eq=False)

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        strict: bool = True,
    ) -> Tool:
        """A tool that checks its arguments against ``fn``'s type hints.

        The name defaults to ``fn.__name__``, the description to the
        docstring's summary; parameter descriptions come from
        ``Annotated[T, "text"]`` or the docstring (Google, NumPy or reST).
        A parameter with a default is optional.  ``timeout`` (seconds) bounds
        each call, see :meth:`call`.

        Args:
            fn: a function, sync or async; sync ones run in a worker thread.
            name: the name the model calls it by (default ``fn.__name__``).
            description: what the model is told (default: the docstring's summary).
            timeout: seconds each call may take (default: no bound of its own).
            strict: refuse untyped parameters (``False``: they take any JSON value).

        Raises :class:`~lazybridge.errors.ConfigurationError`, naming the
        function and the parameter, for ``*args``/``**kwargs``, an
        unsupported type, or -- when ``strict`` -- an untyped parameter
        (``strict=False`` lets an untyped parameter take any JSON value).
        """
        if not callable(fn):
            raise ConfigurationError(f"Tool.from_function needs a callable, got {type(fn).__name__}")
        default_name, default_description, schema = schema_for_function(fn, strict=strict)
        name = _checked_name(default_name if name is None else name)
        return cls(
            name,
            default_description if description is None else description,
            schema,
            fn,
            _checked_timeout(timeout),
            Binder.for_function(fn, strict=strict),
        )

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str,
        parameters: Mapping[str, Any],
        fn: Callable[..., Any],
        *,
        timeout: float | None = None,
    ) -> Tool:
        """A tool with a hand-written JSON Schema; ``fn`` gets the arguments as keywords.

        The arguments are not checked against ``parameters``, only for being
        a JSON object.
        """
        if not isinstance(parameters, Mapping) or parameters.get("type") != "object":
            raise ConfigurationError(
                f"tool {name!r}: parameters must be a JSON Schema of type 'object', got {parameters!r}"
            )
        if not callable(fn):
            raise ConfigurationError(f"tool {name!r}: fn must be callable, got {type(fn).__name__}")
        return cls(_checked_name(name), description, dict(parameters), fn, _checked_timeout(timeout))

    def spec(self) -> ToolSpec:
        """The tool as offered to a provider."""
        return ToolSpec(self.name, self.description, self.parameters)

    async def call(
        self, arguments: Mapping[str, Any], *, limiter: anyio.CapacityLimiter | None = None
    ) -> Any:
        """Check ``arguments``, run the function with them, and return what it returned.

        ``arguments`` is the JSON object the model sent.  It is converted to
        the parameters' types first; if it does not fit,
        :class:`ToolArgumentError` is raised and the function does not run.

        An ``async def`` function runs in the calling task.  Any other
        callable runs in a worker thread (:func:`anyio.to_thread.run_sync`),
        after borrowing one token from ``limiter`` -- by default
        :func:`default_thread_limiter`, shared by every sync tool in the
        event loop.  A long sync tool may call
        :func:`anyio.from_thread.check_cancelled` to notice that it has been
        abandoned.

        **Timeout:** with ``Tool.timeout`` set, a call whose function has not
        finished after that many seconds raises :exc:`TimeoutError`.  The
        time spent waiting for a thread token does not count.

        **Cancellation:** cancelling the caller (or the timeout) cancels an
        async function at its next checkpoint, and the call ends once it has
        unwound.  A sync function cannot be interrupted, so its thread is
        *abandoned*: ``call`` returns (raises the cancellation, or
        :exc:`TimeoutError`) promptly, while the thread keeps running in the
        background until the function returns on its own.  Whatever it then
        returns or raises is discarded.  Its limiter token stays borrowed
        until the thread has really finished, so abandoned threads keep
        counting against the limit and a stuck tool cannot make the process
        start unbounded numbers of threads.  If the call is cancelled before
        the thread has started the function, the function never runs and
        the token is returned at once.  Cancellation is never swallowed.
        """
        args, kwargs = self._bind(arguments)
        if _is_async_callable(self.fn):
            with anyio.move_on_after(self.timeout):
                return await self.fn(*args, **kwargs)
        else:
            slot = await _ThreadSlot.acquire(limiter if limiter is not None else default_thread_limiter())
            try:
                with anyio.move_on_after(self.timeout):
                    return await anyio.to_thread.run_sync(
                        slot.run,
                        functools.partial(self.fn, *args, **kwargs),
                        abandon_on_cancel=True,
                        limiter=_no_limit(),
                    )
            finally:
                slot.done()
        # Only the timeout's own scope swallows a cancellation, so this is it firing.
        raise TimeoutError(f"tool {self.name!r} did not finish within {self.timeout} s")

    def _bind(self, arguments: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        if self._binder is not None:
            return self._binder.bind(self.name, arguments)
        if not isinstance(arguments, Mapping):
            raise ToolArgumentError(self.name, [f"expected object, got {json_type(arguments)} @ $"])
        return [], dict(arguments)


@runtime_checkable
class SupportsAsTool(Protocol):
    """Anything that can present itself as a tool (an ``Agent``, for example)."""

    def as_tool(self) -> Tool: ...


def as_tool(obj: Tool | SupportsAsTool | Callable[..., Any]) -> Tool:
    """``obj`` as a :class:`Tool`: used to normalise ``tools=[...]``.

    A Tool is returned as is; an object with an ``as_tool()`` method (an
    agent) is asked for its tool; a plain callable, sync or async, goes
    through :meth:`Tool.from_function`.  Anything else raises
    :class:`~lazybridge.errors.ConfigurationError`.
    """
    if isinstance(obj, Tool):
        return obj
    if isinstance(obj, type):
        raise ConfigurationError(
            f"cannot use the class {obj.__qualname__} as a tool; pass an instance or a function"
        )
    if isinstance(obj, SupportsAsTool):
        tool = obj.as_tool()
        if not isinstance(tool, Tool):
            raise ConfigurationError(
                f"{type(obj).__name__}.as_tool() returned {type(tool).__name__}, not a Tool"
            )
        return tool
    if callable(obj):
        return Tool.from_function(obj)
    raise ConfigurationError(
        f"cannot use {type(obj).__name__} as a tool: expected a Tool, a function or an object with as_tool()"
    )


def _checked_name(name: str) -> str:
    if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
        raise ConfigurationError(
            f"tool name {name!r} is not valid: use 1 to 64 letters, digits, '_' or '-' (pass name=...)"
        )
    return name


def _checked_timeout(timeout: float | None) -> float | None:
    return check_seconds(timeout, "timeout")


def _is_async_callable(fn: object) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


# -- running a sync function in a thread ---------------------------------------


class _ThreadSlot:
    """One limiter token, held for one sync call until its thread really ends.

    ``anyio.to_thread.run_sync`` on asyncio gives its token back as soon as
    the waiting task is cancelled, while the abandoned thread is still
    running; on Trio it keeps it until the thread ends.  This holds the token
    itself so both backends behave like Trio: whichever of the task (``done``)
    and the thread (``run``) finishes last gives the token back.
    """

    def __init__(self, limiter: anyio.CapacityLimiter, loop: anyio.lowlevel.EventLoopToken) -> None:
        self._limiter = limiter
        self._loop = loop
        self._lock = threading.Lock()
        self._state = "pending"  # -> running -> (abandoned ->) finished, or pending -> released

    @classmethod
    async def acquire(cls, limiter: anyio.CapacityLimiter) -> _ThreadSlot:
        slot = cls(limiter, anyio.lowlevel.current_token())
        await limiter.acquire_on_behalf_of(slot)
        return slot

    def run(self, fn: Callable[[], Any]) -> Any:
        """In the worker thread."""
        with self._lock:
            if self._state == "released":  # the caller gave up before we started
                return None
            self._state = "running"
        try:
            return fn()
        finally:
            with self._lock:
                hand_back = self._state == "abandoned"
                self._state = "finished"
            if hand_back:
                try:
                    self._loop.backend_class.run_sync_soon(
                        self._limiter.release_on_behalf_of, (self,), self._loop.native_token
                    )
                except anyio.RunFinishedError:
                    pass  # the event loop is gone, and its limiter with it

    def done(self) -> None:
        """In the event loop, when the call ends in any way."""
        with self._lock:
            if self._state == "running":
                self._state = "abandoned"  # run() gives the token back when fn returns
                return
            self._state = "released" if self._state == "pending" else self._state
        self._limiter.release_on_behalf_of(self)

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

import enum
import functools
import inspect
import json
import math
import re
import threading
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.lowlevel
import anyio.to_thread
import attrs
import cattrs
from cattrs.errors import AttributeValidationNote, ClassValidationError, ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn, override
from cattrs.gen.typeddicts import make_dict_structure_fn as make_typeddict_structure_fn

from .envelope import converter
from .errors import ConfigurationError, LazyBridgeError
from .messages import ToolSpec
from .schema import (
    MAPPING_ORIGINS,
    SEQUENCE_ORIGINS,
    SET_ORIGINS,
    class_fields,
    function_parameters,
    is_object_class,
    is_pydantic_model,
    is_typeddict,
    literal_values,
    schema_for_function,
    unwrap_annotated,
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


class ToolArgumentError(LazyBridgeError):
    """The arguments a model sent do not fit the tool's parameters.

    ``errors`` holds one ``"<problem> @ $.path"`` line per bad field (cattrs'
    :func:`~cattrs.transform_error` format); the message is the tool's name
    followed by those lines, ready to be sent back to the model.
    """

    def __init__(self, tool: str, errors: list[str]) -> None:
        super().__init__("\n".join([f"invalid arguments for tool {tool!r}:", *errors]))
        self.tool = tool
        self.errors = tuple(errors)


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
    """

    name: str
    description: str
    parameters: Mapping[str, Any]
    fn: Callable[..., Any] = attrs.field(repr=False)
    timeout: float | None = None
    _binder: _Binder | None = attrs.field(default=None, repr=False, eq=False)

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
            _Binder.for_function(fn, strict=strict),
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
            raise ToolArgumentError(self.name, [f"expected object, got {_json_type(arguments)} @ $"])
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
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
    ):
        raise ConfigurationError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    return timeout


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


# -- binding and checking arguments --------------------------------------------


@attrs.frozen
class _Param:
    name: str
    type: Any  # the strict type the converter structures it as
    required: bool
    default: Any
    positional_only: bool


@attrs.frozen
class _Binder:
    """Turns a model's JSON arguments into ``(args, kwargs)`` for one function."""

    params: tuple[_Param, ...]

    @classmethod
    def for_function(cls, fn: Callable[..., Any], *, strict: bool) -> _Binder:
        return cls(
            tuple(
                _Param(p.name, _strict(p.annotation), p.required, p.default, p.positional_only)
                for p in function_parameters(fn, strict=strict)
            )
        )

    def bind(self, tool: str, arguments: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        if not isinstance(arguments, Mapping):
            raise ToolArgumentError(tool, [f"expected object, got {_json_type(arguments)} @ $"])
        known = {p.name for p in self.params}
        errors = [f"unexpected field @ $.{key}" for key in arguments if key not in known]
        values: dict[str, Any] = {}
        for p in self.params:
            if p.name not in arguments:
                if p.required:
                    errors.append(f"required field missing @ $.{p.name}")
                continue
            try:
                values[p.name] = converter.structure(arguments[p.name], p.type)
            except Exception as exc:
                errors.extend(cattrs.transform_error(exc, f"$.{p.name}", _describe))
        if errors:
            raise ToolArgumentError(tool, errors)
        args: list[Any] = []
        positional = [p for p in self.params if p.positional_only]
        last_given = max((i for i, p in enumerate(positional) if p.name in values), default=-1)
        for p in positional[: last_given + 1]:
            args.append(values.pop(p.name, p.default))
        for p in positional[last_given + 1 :]:
            values.pop(p.name, None)
        return args, values


class _Mismatch(ValueError):
    """A value of the wrong JSON shape; the message is the whole explanation."""


def _describe(exc: BaseException, _type: Any) -> str:
    """cattrs ``format_exception`` for ``transform_error``: short, model-readable."""
    if isinstance(exc, _Mismatch):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, ForbiddenExtraKeysError):
        return f"unexpected field(s): {', '.join(sorted(exc.extra_fields))}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return name
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _show(value: object) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = _json_type(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- strict structuring through the shared converter ---------------------------
#
# The shared converter is lenient (int("3"), str(3), extra keys ignored), which
# is right for LazyBridge's own JSON.  Tool arguments get a strict mirror of
# each annotation instead: private NewTypes whose hooks check the JSON shape and
# then let the converter do the rest (lists, tuples, attrs classes ...), so the
# converter's detailed validation still produces the error paths.

_Hook = Callable[[Any, Any], Any]
_strict_hooks: dict[Any, _Hook] = {}
_strict_types: dict[Any, Any] = {}
_strict_lock = threading.RLock()

converter.register_structure_hook_func(
    lambda t: isinstance(t, typing.NewType) and t in _strict_hooks,
    lambda value, t: _strict_hooks[t](value, t),
)


def _new_strict(label: str, hook: _Hook | None = None) -> Any:
    strict_type = typing.NewType(f"Strict[{label}]", object)  # type: ignore[misc]
    if hook is not None:
        _strict_hooks[strict_type] = hook
    return strict_type


def _primitive(name: str, accept: Callable[[Any], bool], convert: Callable[[Any], Any] = lambda v: v) -> Any:
    def hook(value: Any, _: Any) -> Any:
        if accept(value):
            return convert(value)
        raise _Mismatch(f"expected {name}, got {_json_type(value)}")

    return _new_strict(name, hook)


# JSON Schema's "integer" includes 3.0; bool is never a number.
_PRIMITIVES: dict[Any, Any] = {
    str: _primitive("string", lambda v: isinstance(v, str)),
    bool: _primitive("boolean", lambda v: isinstance(v, bool)),
    int: _primitive(
        "integer", lambda v: _json_type(v) == "integer" or (isinstance(v, float) and v.is_integer()), int
    ),
    float: _primitive("number", lambda v: _json_type(v) in ("integer", "number"), float),
    type(None): _primitive("null", lambda v: v is None),
}
_STRICT_STR = _PRIMITIVES[str]


# Typed as Any: these are subscripted with types built at run time.
_LIST: Any = list
_TUPLE: Any = tuple
_SET: Any = set
_FROZENSET: Any = frozenset
_DICT: Any = dict
_BARE_ARRAYS: dict[Any, Any] = {
    list: list[Any],
    tuple: tuple[Any, ...],
    set: set[Any],
    frozenset: frozenset[Any],
}


def _strict(tp: Any) -> Any:
    """The type the shared converter structures a ``tp`` argument as, strictly."""
    tp = unwrap_annotated(tp)[0]
    if tp is None:
        tp = type(None)
    if tp is Any or tp is object:
        return Any
    if isinstance(tp, typing.NewType):
        return _strict(tp.__supertype__)
    with _strict_lock:
        try:
            found = _strict_types.get(tp)
        except TypeError:  # unhashable metadata somewhere inside: build without caching
            return _build_strict(tp)
        if found is None:
            found = _strict_types[tp] = _build_strict(tp)
        return found


def _build_strict(tp: Any) -> Any:
    if tp in _PRIMITIVES:
        return _PRIMITIVES[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    label = repr(tp)
    if origin is typing.Literal:
        return _new_strict(label, _choices([(v, v) for v in literal_values(tp)]))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _new_strict(label, _choices([(m.value, m) for m in tp]))
    if origin is typing.Union or origin is types.UnionType:
        return _new_strict(label, _union([_strict(a) for a in args], args))
    if tp in _BARE_ARRAYS:
        return _new_strict(label, _array(_BARE_ARRAYS[tp]))
    if origin in SEQUENCE_ORIGINS:
        return _new_strict(label, _array(_LIST[_strict(args[0])]))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _new_strict(label, _array(_TUPLE[_strict(args[0]), ...]))
    if origin is tuple:
        items = tuple(_strict(a) for a in args if a != ())
        return _new_strict(label, _array(_TUPLE[items] if items else _TUPLE[()], length=len(items)))
    if origin in SET_ORIGINS:
        target = _FROZENSET if origin is frozenset else _SET
        return _new_strict(label, _array(target[_strict(args[0])]))
    if tp is dict or origin in MAPPING_ORIGINS:
        mapping = _DICT[_STRICT_STR, _strict(args[1]) if args else Any]
        return _new_strict(label, _object(lambda v: converter.structure(v, mapping)))
    if is_pydantic_model(tp):
        return _new_strict(label, _object(functools.partial(_validate_pydantic, tp)))
    if is_object_class(tp):
        # Registered before its fields are built, so a recursive class finds itself.
        strict_type = _strict_types[tp] = _new_strict(label)
        try:
            fields = class_fields(tp, strict=False)  # untyped fields were refused by the schema
            overrides: dict[str, Any] = {
                f.name: override(struct_hook=_delegate(_strict(f.type))) for f in fields
            }
            make = make_typeddict_structure_fn if is_typeddict(tp) else make_dict_structure_fn
            structure = make(
                tp, converter, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True, **overrides
            )
        except BaseException:
            del _strict_types[tp]  # never leave a hook-less (unchecked) type behind
            raise
        _strict_hooks[strict_type] = _object(lambda v: structure(v, tp))
        return strict_type
    raise ConfigurationError(f"unsupported type {label}")


def _delegate(strict_type: Any) -> _Hook:
    return lambda value, _: converter.structure(value, strict_type)


def _choices(choices: list[tuple[Any, Any]]) -> _Hook:
    def hook(value: Any, _: Any) -> Any:
        for json_value, result in choices:
            if type(value) is type(json_value) and value == json_value:
                return result
        allowed = ", ".join(_show(v) for v, _ in choices)
        raise _Mismatch(f"expected one of {allowed}, got {_show(value)}")

    return hook


def _union(members: list[Any], originals: tuple[Any, ...]) -> _Hook:
    none_type = _PRIMITIVES[type(None)]
    others = [m for m in members if m is not none_type]
    if len(others) == 1 and len(members) == 2:  # Optional[T]: T's own errors are the useful ones

        def optional(value: Any, _: Any) -> Any:
            return None if value is None else converter.structure(value, others[0])

        return optional

    def union(value: Any, _: Any) -> Any:
        for member in members:
            try:
                return converter.structure(value, member)
            except Exception:  # not this member: try the next
                continue
        names = " or ".join(_label(o) for o in originals)
        raise _Mismatch(f"expected {names}, got {_json_type(value)}")

    return union


def _label(tp: Any) -> str:
    """A short name for a union member, in error messages."""
    tp = unwrap_annotated(tp)[0]
    if tp in _PRIMITIVES or tp is None:
        return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(tp, "null")
    return getattr(tp, "__name__", None) or getattr(typing.get_origin(tp), "__name__", None) or repr(tp)


def _array(target: Any, *, length: int | None = None) -> _Hook:
    def hook(value: Any, _: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(f"expected array, got {_json_type(value)}")
        if length is not None and len(value) != length:
            raise _Mismatch(f"expected array of {length} items, got {len(value)}")
        return converter.structure(value, target)

    return hook


def _object(structure: Callable[[Any], Any]) -> _Hook:
    def hook(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _Mismatch(f"expected object, got {_json_type(value)}")
        return structure(value)

    return hook


def _validate_pydantic(model: Any, value: Any) -> Any:
    try:
        return model.model_validate(value)
    except ValueError as exc:  # pydantic's ValidationError, without importing pydantic
        details = getattr(exc, "errors", None)
        if not callable(details):
            raise
        problems: list[Exception] = []
        for error in details():
            problem = _Mismatch(error.get("msg", "invalid value"))
            loc = [str(part) if isinstance(part, str) else f"[{part}]" for part in error.get("loc", ())]
            if loc:
                path = loc[0] + "".join(p if p.startswith("[") else f".{p}" for p in loc[1:])
                problem.add_note(AttributeValidationNote(f"pydantic @ {path}", path, Any))
            problems.append(problem)
        raise ClassValidationError(f"While validating {model.__name__}", problems, model) from None

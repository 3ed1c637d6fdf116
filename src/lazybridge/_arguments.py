"""Checking a model's tool arguments against a function's annotations.

The model sends JSON; the function wants Python values of its annotated
types.  :class:`Binder` converts one to the other with the shared cattrs
converter, *strictly* (``"3"`` is not an ``int``, ``true`` is not an ``int``,
unknown and missing fields are errors), and reports every bad field as one
``<problem> @ $.path`` line, text a model can act on.

Strictness without touching the shared converter's global behaviour: each
annotation gets a private "strict mirror" type whose structure hook is
registered once on the shared converter.
"""

from __future__ import annotations

import enum
import functools
import json
import threading
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import cattrs
from cattrs.errors import AttributeValidationNote, ClassValidationError, ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn, override
from cattrs.gen.typeddicts import make_dict_structure_fn as make_typeddict_structure_fn

from .envelope import converter
from .errors import ConfigurationError, LazyBridgeError
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
    unwrap_annotated,
)

__all__ = ["Binder", "ToolArgumentError", "json_type"]


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


# -- binding and checking arguments --------------------------------------------


@attrs.frozen
class _Param:
    name: str
    type: Any  # the strict type the converter structures it as
    required: bool
    default: Any
    positional_only: bool


@attrs.frozen
class Binder:
    """Turns a model's JSON arguments into ``(args, kwargs)`` for one function."""

    params: tuple[_Param, ...]

    @classmethod
    def for_function(cls, fn: Callable[..., Any], *, strict: bool) -> Binder:
        return cls(
            tuple(
                _Param(p.name, _strict(p.annotation), p.required, p.default, p.positional_only)
                for p in function_parameters(fn, strict=strict)
            )
        )

    def bind(self, tool: str, arguments: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        if not isinstance(arguments, Mapping):
            raise ToolArgumentError(tool, [f"expected object, got {json_type(arguments)} @ $"])
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


def json_type(value: object) -> str:
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
        text = json_type(value)
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
        raise _Mismatch(f"expected {name}, got {json_type(value)}")

    return _new_strict(name, hook)


# JSON Schema's "integer" includes 3.0; bool is never a number.
_PRIMITIVES: dict[Any, Any] = {
    str: _primitive("string", lambda v: isinstance(v, str)),
    bool: _primitive("boolean", lambda v: isinstance(v, bool)),
    int: _primitive(
        "integer", lambda v: json_type(v) == "integer" or (isinstance(v, float) and v.is_integer()), int
    ),
    float: _primitive("number", lambda v: json_type(v) in ("integer", "number"), float),
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
        raise _Mismatch(f"expected {names}, got {json_type(value)}")

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
            raise _Mismatch(f"expected array, got {json_type(value)}")
        if length is not None and len(value) != length:
            raise _Mismatch(f"expected array of {length} items, got {len(value)}")
        return converter.structure(value, target)

    return hook


def _object(structure: Callable[[Any], Any]) -> _Hook:
    def hook(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _Mismatch(f"expected object, got {json_type(value)}")
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

"""JSON Schema from Python type hints, for tool parameters and structured output.

::

    schema_for_type(list[int])        -> {"type": "array", "items": {"type": "integer"}}
    schema_for_function(fn)           -> (name, description, parameters_schema)

Supported types, and what they become:

=========================================  ==================================================
``str`` ``int`` ``float`` ``bool`` ``None``  ``string`` ``integer`` ``number`` ``boolean`` ``null``
``list[T]`` ``Sequence[T]`` ``tuple[T, ...]``  ``array`` of ``T``
``tuple[A, B]``                               ``array`` with ``prefixItems`` and a fixed length
``set[T]`` ``frozenset[T]``                   ``array`` with ``uniqueItems``
``dict[str, T]`` ``Mapping[str, T]``          ``object`` with ``additionalProperties: T``
``X | Y``, ``Optional[X]``, ``Union``         ``anyOf``
``Literal[...]``, ``Enum`` subclasses         ``enum`` (of values) with their JSON ``type``
attrs classes, dataclasses, ``TypedDict``     ``object`` in ``$defs``, referenced by ``$ref``
pydantic models (duck-typed)                  their own ``model_json_schema()``, in ``$defs``
``Annotated[T, "text"]``                      ``T`` with ``"description": "text"``
``Any``, ``object``                           ``{}`` (anything)
=========================================  ==================================================

Object schemas list their ``required`` properties and forbid others
(``"additionalProperties": false``).  A parameter or field with a default is
optional, and its default appears in the schema when it is JSON-serialisable.
Descriptions come from ``Annotated`` first, then from the docstring (Google,
NumPy or reST style, parsed by ``docstring-parser``).

Anything else raises :class:`~lazybridge.errors.ConfigurationError`, naming the
function, parameter or field it was found in.  The types accepted here are
exactly the types :class:`~lazybridge.tools.Tool` can check arguments against.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import functools
import inspect
import json
import math
import re
import types
import typing
from collections.abc import Callable
from typing import Any

import attrs
import docstring_parser

from .errors import ConfigurationError

__all__ = [
    "Field",
    "Parameter",
    "class_fields",
    "function_parameters",
    "is_pydantic_model",
    "is_typeddict",
    "schema_for_function",
    "schema_for_type",
]

# -- what a function or a class is made of ------------------------------------


class _NotJSON(enum.Enum):
    NOT_JSON = enum.auto()


#: A default that has no JSON form (or is made by a factory): not shown in a schema.
_NOT_JSON = _NotJSON.NOT_JSON


@attrs.frozen
class Parameter:
    """One parameter of a tool function.

    ``annotation`` is the resolved type hint (``Annotated`` kept), or
    :data:`typing.Any` for an untyped parameter under ``strict=False``.
    ``default`` is meaningful only when ``required`` is false.
    """

    name: str
    annotation: Any
    required: bool
    default: Any = None
    positional_only: bool = False
    description: str | None = None


@attrs.frozen
class Field:
    """One field of an attrs class, dataclass or TypedDict, keyed as in JSON.

    ``default`` is meaningful only when ``required`` is false; a default made
    by a factory is not shown.
    """

    name: str
    type: Any
    required: bool
    default: Any = None
    description: str | None = None


class UnsupportedType(ConfigurationError):
    """A type with no JSON Schema; the public functions re-raise it with context.

    ``path`` is the chain of field names from the outermost class to the
    problem, filled in while the error travels out of nested classes.
    """

    def __init__(self, problem: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path

    def __str__(self) -> str:
        return f"{self.problem} (at {'.'.join(self.path)})" if self.path else self.problem


def function_parameters(fn: Callable[..., Any], *, strict: bool = True) -> tuple[Parameter, ...]:
    """The parameters of ``fn``, with resolved type hints and docstring descriptions.

    Raises :class:`~lazybridge.errors.ConfigurationError` naming the function
    and the parameter for ``*args`` / ``**kwargs`` and, when ``strict``, for a
    parameter without a type annotation.
    """
    label = _callable_label(fn)
    try:
        signature = inspect.signature(fn, eval_str=True)
    except (NameError, SyntaxError, TypeError, ValueError) as exc:  # ValueError: no signature
        raise ConfigurationError(f"cannot read the signature of function {label}: {exc}") from exc
    _, param_docs = _parse_doc(_doc_of(fn))
    out = []
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            star = "*" if p.kind is p.VAR_POSITIONAL else "**"
            raise ConfigurationError(
                f"function {label}, parameter {star}{p.name}: a tool takes named parameters only, "
                f"not {star}{p.name}"
            )
        annotation = p.annotation
        if annotation is p.empty:
            if strict:
                raise ConfigurationError(
                    f"function {label}, parameter {p.name!r} has no type annotation "
                    "(annotate it, or pass strict=False to accept any JSON value)"
                )
            annotation = Any
        required = p.default is p.empty
        out.append(
            Parameter(
                name=p.name,
                annotation=annotation,
                required=required,
                default=None if required else p.default,
                positional_only=p.kind is p.POSITIONAL_ONLY,
                description=param_docs.get(p.name),
            )
        )
    return tuple(out)


def class_fields(cls: type, *, strict: bool = True) -> tuple[Field, ...]:
    """The JSON-facing fields of an attrs class, dataclass or TypedDict.

    Fields excluded from ``__init__`` are left out (they cannot be passed in).
    """
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:  # NameError and friends from user annotations
        raise UnsupportedType(f"cannot resolve the annotations of {_type_label(cls)}: {exc}") from exc
    _, docs = _parse_doc(_class_doc(cls))

    def typed(name: str, declared: Any) -> Any:
        tp = hints.get(name, declared)
        if tp is None or isinstance(tp, str) or tp is dataclasses.MISSING:
            if strict:
                raise UnsupportedType(f"field {name!r} of {_type_label(cls)} has no type annotation")
            return Any
        return tp

    if attrs.has(cls):
        out = []
        for a in attrs.fields(cls):
            if not a.init:
                continue
            required = a.default is attrs.NOTHING
            default = _NOT_JSON if isinstance(a.default, attrs.Factory) else a.default  # type: ignore[arg-type]
            out.append(Field(a.name, typed(a.name, a.type), required, default, docs.get(a.name)))
        return tuple(out)
    if dataclasses.is_dataclass(cls):
        out = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            has_default = f.default is not dataclasses.MISSING
            required = not has_default and f.default_factory is dataclasses.MISSING
            default = f.default if has_default else _NOT_JSON
            out.append(Field(f.name, typed(f.name, f.type), required, default, docs.get(f.name)))
        return tuple(out)
    if is_typeddict(cls):
        required_keys: frozenset[str] = getattr(cls, "__required_keys__", frozenset())
        return tuple(
            Field(name, _strip_required(typed(name, None)), name in required_keys, _NOT_JSON, docs.get(name))
            for name in hints
        )
    raise UnsupportedType(f"{_type_label(cls)} is not an attrs class, dataclass or TypedDict")


# -- classification shared with tools.py ---------------------------------------


def is_typeddict(tp: object) -> bool:
    """True for ``typing.TypedDict`` and ``typing_extensions.TypedDict`` classes."""
    return (
        isinstance(tp, type)
        and issubclass(tp, dict)
        and hasattr(tp, "__required_keys__")
        and hasattr(tp, "__optional_keys__")
    )


def is_pydantic_model(tp: object) -> bool:
    """True for a pydantic v2 model class, detected without importing pydantic."""
    return (
        isinstance(tp, type)
        and callable(getattr(tp, "model_json_schema", None))
        and callable(getattr(tp, "model_validate", None))
    )


def is_object_class(tp: object) -> bool:
    """attrs classes, dataclasses and TypedDicts: objects described field by field."""
    return isinstance(tp, type) and (attrs.has(tp) or dataclasses.is_dataclass(tp) or is_typeddict(tp))


def unwrap_annotated(tp: Any) -> tuple[Any, str | None]:
    """``Annotated[T, "text", ...]`` -> ``(T, "text")``; anything else -> ``(tp, None)``.

    The first string in the metadata is the description; other metadata is ignored.
    """
    description = None
    while typing.get_origin(tp) is typing.Annotated:
        for meta in tp.__metadata__:
            if isinstance(meta, str) and description is None:
                description = meta
        tp = tp.__origin__
    return tp, description


def json_scalar_type(value: object) -> str | None:
    """The JSON Schema ``type`` of a scalar value, or None if it is not one."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def literal_values(tp: Any) -> tuple[Any, ...]:
    """The JSON values of ``Literal[...]`` (Enum members become their values), flattened."""
    out: list[Any] = []
    for arg in typing.get_args(tp):
        if typing.get_origin(arg) is typing.Literal:
            out.extend(literal_values(arg))
        else:
            out.append(arg.value if isinstance(arg, enum.Enum) else arg)
    return tuple(out)


SEQUENCE_ORIGINS: frozenset[Any] = frozenset(
    {list, collections.abc.Sequence, collections.abc.MutableSequence, collections.abc.Iterable}
)
SET_ORIGINS: frozenset[Any] = frozenset({set, frozenset, collections.abc.Set, collections.abc.MutableSet})
MAPPING_ORIGINS: frozenset[Any] = frozenset({dict, collections.abc.Mapping, collections.abc.MutableMapping})


# -- public entry points -------------------------------------------------------


def schema_for_type(tp: Any) -> dict[str, Any]:
    """The JSON Schema of ``tp``.

    A class at the root is described inline (unless it refers to itself, in
    which case the root is a ``$ref``); classes nested in it go to ``$defs``.

    >>> schema_for_type(dict[str, int])
    {'type': 'object', 'additionalProperties': {'type': 'integer'}}
    """
    builder = _Builder(strict=True)
    try:
        root = builder.schema(tp)
    except UnsupportedType as exc:
        raise ConfigurationError(f"cannot describe {_type_label(tp)}: {exc}") from exc
    return builder.finish(root)


def schema_for_function(fn: Callable[..., Any], *, strict: bool = True) -> tuple[str, str, dict[str, Any]]:
    """``(name, description, parameters_schema)`` for a function offered as a tool.

    The description is the docstring's summary (its short and long
    description, without the parameter and return sections); each
    parameter's description comes from ``Annotated[T, "text"]`` or else from
    the docstring.  With ``strict=False`` an untyped parameter accepts any
    JSON value (``{}``); with ``strict=True`` it is an error.

    Raises :class:`~lazybridge.errors.ConfigurationError` naming the function
    and parameter for ``*args``/``**kwargs``, untyped parameters (strict) and
    unsupported types.
    """
    params = function_parameters(fn, strict=strict)
    description, _ = _parse_doc(_doc_of(fn))
    builder = _Builder(strict=strict)
    properties: dict[str, Any] = {}
    for p in params:
        try:
            properties[p.name] = builder.property(p.annotation, p.description, p.required, p.default)
        except UnsupportedType as exc:
            raise ConfigurationError(f"function {_callable_label(fn)}, parameter {p.name!r}: {exc}") from exc
    root = _object_schema(properties, [p.name for p in params if p.required])
    return callable_name(fn), description, builder.finish(root)


# -- the builder ---------------------------------------------------------------


def _object_schema(
    properties: dict[str, Any], required: list[str], description: str | None = None
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    if description:
        schema["description"] = description
    schema["properties"] = properties
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


class _Builder:
    """Builds one schema; collects the ``$defs`` its classes need."""

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self.defs: dict[str, dict[str, Any]] = {}
        self.names: dict[type, str] = {}
        self.refs: dict[str, int] = {}

    def finish(self, root: dict[str, Any]) -> dict[str, Any]:
        ref = root.get("$ref")
        if isinstance(ref, str) and len(root) == 1:
            name = ref.removeprefix("#/$defs/")
            if self.refs.get(name) == 1:  # referenced only from the root: inline it
                root = self.defs.pop(name)
        if self.defs:
            root = {**root, "$defs": self.defs}
        return root

    def property(self, tp: Any, doc: str | None, required: bool, default: Any) -> dict[str, Any]:
        inner, annotated = unwrap_annotated(tp)
        schema = dict(self.schema(inner))
        description = annotated or doc
        if description:
            schema["description"] = description
        if not required:
            value = _jsonable(default)
            if value is not _NOT_JSON:
                schema["default"] = value
        return schema

    def schema(self, tp: Any) -> dict[str, Any]:
        tp, description = unwrap_annotated(tp)
        if description is not None:
            return {**self.schema(tp), "description": description}
        if tp is Any or tp is object:
            return {}
        if tp is None or tp is type(None):
            return {"type": "null"}
        if isinstance(tp, typing.NewType):
            return self.schema(tp.__supertype__)
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is float:
            return {"type": "number"}
        if tp is str:
            return {"type": "string"}
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Literal:
            return _enum_schema(literal_values(tp), f"literal {tp!r}")
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum_schema(tuple(m.value for m in tp), _type_label(tp))
        if origin is typing.Union or origin is types.UnionType:
            return {"anyOf": [self.schema(a) for a in _flatten_union(args)]}
        if tp in (list, tuple) or origin in SEQUENCE_ORIGINS or (origin is tuple and _is_variadic(args)):
            return {"type": "array", **({"items": self.schema(args[0])} if args else {})}
        if origin is tuple:
            items = [] if args == ((),) else [self.schema(a) for a in args]
            return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
        if tp in (set, frozenset) or origin in SET_ORIGINS:
            return {"type": "array", **({"items": self.schema(args[0])} if args else {}), "uniqueItems": True}
        if tp is dict or origin in MAPPING_ORIGINS:
            if not args:
                return {"type": "object"}
            key, value = unwrap_annotated(args[0])[0], args[1]
            if key is not str:
                raise UnsupportedType(f"mapping keys must be str (JSON object keys), not {_type_label(key)}")
            return {"type": "object", "additionalProperties": self.schema(value)}
        if is_pydantic_model(tp) or is_object_class(tp):
            return self.ref(tp)
        raise UnsupportedType(f"unsupported type {_type_label(tp)}")

    def ref(self, cls: type) -> dict[str, Any]:
        name = self.names.get(cls)
        if name is None:
            name = self._name_for(cls)
            self.names[cls] = name
            self.defs[name] = {}  # reserved first: a recursive class refers to itself
            self.defs[name] = self._pydantic(cls) if is_pydantic_model(cls) else self._object(cls)
        self.refs[name] = self.refs.get(name, 0) + 1
        return {"$ref": f"#/$defs/{name}"}

    def _name_for(self, cls: type) -> str:
        name = cls.__name__
        if name in self.defs:  # two classes with one name: qualify the newcomer
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{cls.__module__}.{cls.__qualname__}")
        return name

    def _object(self, cls: type) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        fields = class_fields(cls, strict=self.strict)
        for f in fields:
            try:
                properties[f.name] = self.property(f.type, f.description, f.required, f.default)
            except UnsupportedType as exc:
                raise UnsupportedType(exc.problem, (f.name, *exc.path)) from exc
        description, _ = _parse_doc(_class_doc(cls))
        return _object_schema(properties, [f.name for f in fields if f.required], description)

    def _pydantic(self, cls: type) -> dict[str, Any]:
        schema = dict(cls.model_json_schema())  # type: ignore[attr-defined]
        for name, sub in schema.pop("$defs", {}).items():
            if name in self.defs and self.defs[name] != sub:
                raise UnsupportedType(
                    f"pydantic model {_type_label(cls)} defines {name!r}, which clashes with another type"
                )
            self.defs[name] = sub
        return schema


def _flatten_union(args: tuple[Any, ...]) -> list[Any]:
    out: list[Any] = []
    for a in args:
        inner = unwrap_annotated(a)[0]
        if typing.get_origin(inner) in (typing.Union, types.UnionType):
            out.extend(_flatten_union(typing.get_args(inner)))
        elif a not in out:
            out.append(a)
    return out


def _is_variadic(args: tuple[Any, ...]) -> bool:
    return len(args) == 2 and args[1] is Ellipsis


def _enum_schema(values: tuple[Any, ...], label: str) -> dict[str, Any]:
    kinds: list[str] = []
    for v in values:
        kind = json_scalar_type(v)
        if kind is None or (kind == "number" and not math.isfinite(v)):
            raise UnsupportedType(f"{label} has a value with no JSON form: {v!r}")
        if kind not in kinds:
            kinds.append(kind)
    if not values:
        raise UnsupportedType(f"{label} has no values")
    return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": list(values)}


def _strip_required(tp: Any) -> Any:
    """``NotRequired[T]`` / ``Required[T]`` / ``ReadOnly[T]`` -> ``T`` (keeping Annotated)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        inner = _strip_required(tp.__origin__)
        return typing.Annotated[(inner, *tp.__metadata__)]
    if getattr(origin, "_name", None) in ("Required", "NotRequired", "ReadOnly"):
        return _strip_required(typing.get_args(tp)[0])
    return tp


def _jsonable(value: Any) -> Any:
    """``value`` as JSON data (Enum members become values), or ``_NOT_JSON``."""

    def convert(v: Any) -> Any:
        if v is _NOT_JSON:
            raise TypeError("no JSON form")
        if isinstance(v, enum.Enum):
            return convert(v.value)
        if isinstance(v, (list, tuple)):
            return [convert(x) for x in v]
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                raise TypeError("non-str key")
            return {k: convert(x) for k, x in v.items()}
        if json_scalar_type(v) is None:
            raise TypeError("not JSON")
        return v

    try:
        converted = convert(value)
        json.dumps(converted, allow_nan=False)
    except (TypeError, ValueError):
        return _NOT_JSON
    return converted


# -- names and docstrings ------------------------------------------------------


def _unwrap_partial(fn: Any) -> Any:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn


def callable_name(fn: Callable[..., Any]) -> str:
    """The name a function is offered under: ``__name__``, or the class name of a callable object."""
    target = _unwrap_partial(fn)
    name = getattr(target, "__name__", None)
    return name if isinstance(name, str) else type(target).__name__


def _callable_label(fn: Callable[..., Any]) -> str:
    target = _unwrap_partial(fn)
    name = getattr(target, "__qualname__", None) or callable_name(fn)
    return repr(name)


def _type_label(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__qualname__ if tp.__module__ == "builtins" else f"{tp.__module__}.{tp.__qualname__}"
    return repr(tp)


def _doc_of(fn: Callable[..., Any]) -> str | None:
    target = _unwrap_partial(fn)
    if inspect.isroutine(target) or inspect.isclass(target):
        return inspect.getdoc(target)
    # A callable object: its own docstring, else its class's, else its __call__'s.
    return inspect.getdoc(target) or inspect.getdoc(type(target).__call__)


def _class_doc(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    if not isinstance(doc, str):
        return None
    if dataclasses.is_dataclass(cls):
        # @dataclass invents "Name(x: int, y: int)" for an undocumented class.
        try:
            invented = cls.__name__ + str(inspect.signature(cls)).replace(" -> None", "")
        except (TypeError, ValueError):
            invented = None
        if doc == invented:
            return None
    return inspect.cleandoc(doc)


def _parse_doc(doc: str | None) -> tuple[str, dict[str, str]]:
    """``(summary, {parameter: description})`` of a docstring in any common style."""
    if not doc:
        return "", {}
    try:
        parsed = docstring_parser.parse(doc)
    except docstring_parser.ParseError:
        return doc.strip(), {}
    summary = "\n\n".join(part for part in (parsed.short_description, parsed.long_description) if part)
    params = {
        p.arg_name: " ".join(p.description.split()) for p in parsed.params if p.description and p.arg_name
    }
    return summary, params

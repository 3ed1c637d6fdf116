"""schema.py: exact JSON Schema for every supported type, docstrings, and construction errors."""

import collections.abc
import dataclasses
import datetime
import enum
import functools
from typing import Annotated, Any, Literal, NewType, NotRequired, Optional, TypedDict, Union

import attrs
import pydantic
import pytest

from lazybridge.errors import ConfigurationError
from lazybridge.schema import schema_for_function, schema_for_type

# -- types used below (module level, so string annotations resolve) -------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mixed(enum.Enum):
    ONE = 1
    TWO = "two"


class Opaque(enum.Enum):
    PAIR = (1, 2)


@attrs.define
class Point:
    """A point on the plane.

    Attributes:
        x: Horizontal position.
        y: Vertical position.
    """

    x: int
    y: Annotated[int, "Height above zero."] = 0
    tags: list[str] = attrs.Factory(list)
    cache: dict[str, int] = attrs.field(init=False, factory=dict)


@dataclasses.dataclass
class Segment:
    start: Point
    end: Point
    label: str | None = None


@dataclasses.dataclass
class Tree:
    """A tree of integers."""

    value: int
    children: "list[Tree]" = dataclasses.field(default_factory=list)


class Movie(TypedDict):
    title: str
    year: NotRequired[int]


class Sparse(TypedDict, total=False):
    a: int


class Address(pydantic.BaseModel):
    city: str


class Person(pydantic.BaseModel):
    name: str
    home: Address


@attrs.define
class Household:
    owner: Person
    where: Point


UserId = NewType("UserId", int)


@attrs.define
class Event:
    when: datetime.datetime


@attrs.define
class HasEvent:
    event: Event


def shadow_point_class() -> type:
    @attrs.define
    class Point:
        z: int

    return Point


# -- scalars and containers -------------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "expected"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (type(None), {"type": "null"}),
        (Any, {}),
        (object, {}),
        (UserId, {"type": "integer"}),
    ],
)
def test_scalars(tp: Any, expected: dict[str, Any]) -> None:
    """Each scalar maps to its JSON type; Any and object accept anything."""
    assert schema_for_type(tp) == expected


@pytest.mark.parametrize(
    ("tp", "expected"),
    [
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (collections.abc.Sequence[str], {"type": "array", "items": {"type": "string"}}),
        (tuple[float, ...], {"type": "array", "items": {"type": "number"}}),
        (list, {"type": "array"}),
        (
            tuple[int, str],
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        (tuple[()], {"type": "array", "prefixItems": [], "minItems": 0, "maxItems": 0}),
        (set[str], {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        (frozenset[int], {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
        (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (
            collections.abc.Mapping[str, list[bool]],
            {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "boolean"}}},
        ),
        (dict, {"type": "object"}),
    ],
)
def test_containers(tp: Any, expected: dict[str, Any]) -> None:
    """Sequences, fixed tuples, sets and str-keyed mappings."""
    assert schema_for_type(tp) == expected


@pytest.mark.parametrize(
    ("tp", "expected"),
    [
        (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),  # noqa: UP045 - the spelling under test
        (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (Union[int, str], {"anyOf": [{"type": "integer"}, {"type": "string"}]}),  # noqa: UP007
        (
            Union[int, Union[str, None]] | bool,  # noqa: UP007
            {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}, {"type": "boolean"}]},
        ),
    ],
)
def test_unions_are_any_of(tp: Any, expected: dict[str, Any]) -> None:
    """Optional, X | None and Union become one flat anyOf, in declaration order."""
    assert schema_for_type(tp) == expected


@pytest.mark.parametrize(
    ("tp", "expected"),
    [
        (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (Literal[1, "x", None], {"type": ["integer", "string", "null"], "enum": [1, "x", None]}),
        (Literal[Color.RED], {"type": "string", "enum": ["red"]}),
        (Color, {"type": "string", "enum": ["red", "green"]}),
        (Level, {"type": "integer", "enum": [1, 2]}),
        (Mixed, {"type": ["integer", "string"], "enum": [1, "two"]}),
    ],
)
def test_literals_and_enums_are_enums_of_values_with_their_type(tp: Any, expected: dict[str, Any]) -> None:
    """Literal and Enum list their JSON values and the JSON type(s) of those values."""
    assert schema_for_type(tp) == expected


def test_annotated_adds_a_description() -> None:
    """Annotated[T, "text"] is T's schema with that description, also inside containers."""
    assert schema_for_type(list[Annotated[int, "An id."]]) == {
        "type": "array",
        "items": {"type": "integer", "description": "An id."},
    }


# -- classes --------------------------------------------------------------------


POINT = {
    "type": "object",
    "description": "A point on the plane.",
    "properties": {
        "x": {"type": "integer", "description": "Horizontal position."},
        "y": {"type": "integer", "description": "Height above zero.", "default": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["x"],
    "additionalProperties": False,
}


def test_attrs_class_at_the_root_is_inline() -> None:
    """Docstring gives descriptions, Annotated wins, factories show no default, init=False is left out."""
    assert schema_for_type(Point) == POINT


def test_nested_classes_go_to_defs_once() -> None:
    """A class used twice is one $defs entry; an undocumented dataclass has no invented description."""
    assert schema_for_type(Segment) == {
        "type": "object",
        "properties": {
            "start": {"$ref": "#/$defs/Point"},
            "end": {"$ref": "#/$defs/Point"},
            "label": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "required": ["start", "end"],
        "additionalProperties": False,
        "$defs": {"Point": POINT},
    }


def test_recursive_class_is_a_ref_at_the_root() -> None:
    """A class that contains itself is referenced, not inlined, so the $ref can resolve."""
    assert schema_for_type(Tree) == {
        "$ref": "#/$defs/Tree",
        "$defs": {
            "Tree": {
                "type": "object",
                "description": "A tree of integers.",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Tree"}},
                },
                "required": ["value"],
                "additionalProperties": False,
            }
        },
    }


def test_typeddict_required_and_not_required() -> None:
    """NotRequired keys and total=False make keys optional."""
    assert schema_for_type(Movie) == {
        "type": "object",
        "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
        "required": ["title"],
        "additionalProperties": False,
    }
    assert schema_for_type(Sparse) == {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "additionalProperties": False,
    }


def test_pydantic_model_uses_its_own_schema() -> None:
    """At the root a pydantic model is exactly its model_json_schema()."""
    assert schema_for_type(Person) == Person.model_json_schema()


def test_pydantic_defs_are_hoisted_next_to_ours() -> None:
    """A nested pydantic model's own $defs move to the root, where its $refs point."""
    assert schema_for_type(Household) == {
        "type": "object",
        "properties": {"owner": {"$ref": "#/$defs/Person"}, "where": {"$ref": "#/$defs/Point"}},
        "required": ["owner", "where"],
        "additionalProperties": False,
        "$defs": {
            "Person": {
                "type": "object",
                "title": "Person",
                "properties": {
                    "name": {"title": "Name", "type": "string"},
                    "home": {"$ref": "#/$defs/Address"},
                },
                "required": ["name", "home"],
            },
            "Address": {
                "type": "object",
                "title": "Address",
                "properties": {"city": {"title": "City", "type": "string"}},
                "required": ["city"],
            },
            "Point": POINT,
        },
    }


def test_two_classes_with_one_name_get_distinct_defs() -> None:
    """The second class named Point is qualified by module and qualname."""
    other = shadow_point_class()
    schema = schema_for_type(tuple[Point, other])  # type: ignore[valid-type]
    assert schema["prefixItems"] == [
        {"$ref": "#/$defs/Point"},
        {"$ref": "#/$defs/tests.unit.test_schema.shadow_point_class._locals_.Point"},
    ]
    assert set(schema["$defs"]) == {"Point", "tests.unit.test_schema.shadow_point_class._locals_.Point"}


@pytest.mark.parametrize(
    ("tp", "message"),
    [
        (bytes, "cannot describe bytes: unsupported type bytes"),
        (
            dict[int, str],
            "cannot describe dict[int, str]: mapping keys must be str (JSON object keys), not int",
        ),
        (
            Opaque,
            "cannot describe tests.unit.test_schema.Opaque: "
            "tests.unit.test_schema.Opaque has a value with no JSON form: (1, 2)",
        ),
        (
            HasEvent,
            "cannot describe tests.unit.test_schema.HasEvent: unsupported type datetime.datetime (at event.when)",
        ),
    ],
)
def test_unsupported_types_raise_configuration_error(tp: Any, message: str) -> None:
    """Types with no JSON form are refused, naming the type and the field path to it."""
    with pytest.raises(ConfigurationError) as info:
        schema_for_type(tp)
    assert str(info.value) == message


# -- functions ------------------------------------------------------------------


def google(city: str, days: int = 3, unit: Literal["C", "F"] = "C") -> str:
    """Forecast the weather.

    Uses the public forecast service
    and caches nothing.

    Args:
        city: The city, in English.
        days: How many days,
            counted from today.
        unit: Temperature unit.

    Returns:
        The forecast as text.
    """
    return ""


def numpy_style(city: str, days: int = 3, unit: Literal["C", "F"] = "C") -> str:
    """Forecast the weather.

    Uses the public forecast service
    and caches nothing.

    Parameters
    ----------
    city : str
        The city, in English.
    days : int
        How many days,
        counted from today.
    unit : str
        Temperature unit.

    Returns
    -------
    str
    """
    return ""


def rest(city: str, days: int = 3, unit: Literal["C", "F"] = "C") -> str:
    """Forecast the weather.

    Uses the public forecast service
    and caches nothing.

    :param city: The city, in English.
    :param int days: How many days,
        counted from today.
    :param unit: Temperature unit.
    :returns: The forecast as text.
    """
    return ""


FORECAST = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "The city, in English."},
        "days": {"type": "integer", "description": "How many days, counted from today.", "default": 3},
        "unit": {"type": "string", "enum": ["C", "F"], "description": "Temperature unit.", "default": "C"},
    },
    "required": ["city"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("fn", [google, numpy_style, rest], ids=["google", "numpy", "rest"])
def test_docstring_styles(fn: Any) -> None:
    """Summary (short + long) is the description; parameter sections describe parameters."""
    name, description, parameters = schema_for_function(fn)
    assert name == fn.__name__
    assert description == "Forecast the weather.\n\nUses the public forecast service\nand caches nothing."
    assert parameters == FORECAST


def annotated(city: Annotated[str, "From Annotated."], n: Annotated[int, "Count."] = 1) -> None:
    """Look up.

    Args:
        city: From the docstring.
    """


def test_annotated_description_wins_over_docstring() -> None:
    """Annotated[T, "text"] beats the docstring's description for the same parameter."""
    assert schema_for_function(annotated)[2]["properties"] == {
        "city": {"type": "string", "description": "From Annotated."},
        "n": {"type": "integer", "description": "Count.", "default": 1},
    }


def defaults(
    a: int,
    b: Color = Color.GREEN,
    c: tuple[int, int] = (1, 2),
    d: Optional[str] = None,  # noqa: UP045
    e: object = object(),
    f: frozenset[int] = frozenset(),
) -> None:
    pass


def test_defaults_make_parameters_optional_and_show_when_json() -> None:
    """Every defaulted parameter is optional; only JSON-serialisable defaults are shown."""
    assert schema_for_function(defaults)[2] == {
        "type": "object",
        "properties": {
            "a": {"type": "integer"},
            "b": {"type": "string", "enum": ["red", "green"], "default": "green"},
            "c": {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "integer"}],
                "minItems": 2,
                "maxItems": 2,
                "default": [1, 2],
            },
            "d": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "e": {},
            "f": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
        },
        "required": ["a"],
        "additionalProperties": False,
    }


def uses_classes(segment: Segment, movie: Movie, tree: Tree | None = None) -> None:
    """Draw."""


def test_function_classes_share_root_defs() -> None:
    """Parameter classes are $refs into one $defs at the root of the parameters schema."""
    parameters = schema_for_function(uses_classes)[2]
    assert parameters["properties"] == {
        "segment": {"$ref": "#/$defs/Segment"},
        "movie": {"$ref": "#/$defs/Movie"},
        "tree": {"anyOf": [{"$ref": "#/$defs/Tree"}, {"type": "null"}], "default": None},
    }
    assert list(parameters["$defs"]) == ["Segment", "Point", "Movie", "Tree"]


def no_doc(x: int) -> None:
    pass


def test_no_docstring_is_an_empty_description() -> None:
    """A function without a docstring gets an empty description, never an invented one."""
    assert schema_for_function(no_doc)[:2] == ("no_doc", "")


class Greeter:
    """Greets people."""

    def greet(self, who: str) -> str:
        """Say hello.

        Args:
            who: Whom to greet.
        """
        return f"hello {who}"

    def __call__(self, who: str) -> str:
        return self.greet(who)


def test_bound_methods_callable_objects_and_partials() -> None:
    """self is not a parameter; a callable object is named after its class; a partial after its function."""
    greet_schema = {
        "type": "object",
        "properties": {"who": {"type": "string", "description": "Whom to greet."}},
        "required": ["who"],
        "additionalProperties": False,
    }
    assert schema_for_function(Greeter().greet) == ("greet", "Say hello.", greet_schema)
    name, description, parameters = schema_for_function(Greeter())
    assert (name, description) == ("Greeter", "Greets people.")
    assert parameters["required"] == ["who"]
    name, description, parameters = schema_for_function(functools.partial(google, days=5))
    assert name == "google"
    assert description.startswith("Forecast the weather.")
    assert parameters["properties"]["days"]["default"] == 5


def untyped(a, b: int = 1):  # type: ignore[no-untyped-def]
    pass


def test_untyped_parameter_is_an_error_when_strict() -> None:
    """strict=True refuses an untyped parameter, naming function and parameter."""
    with pytest.raises(ConfigurationError, match=r"function 'untyped', parameter 'a' has no type annotation"):
        schema_for_function(untyped)


def test_untyped_parameter_accepts_anything_when_not_strict() -> None:
    """strict=False makes an untyped parameter the any-schema {}."""
    assert schema_for_function(untyped, strict=False)[2]["properties"] == {
        "a": {},
        "b": {"type": "integer", "default": 1},
    }


def star_args(a: int, *rest: int) -> None:
    pass


def star_kwargs(a: int, **options: int) -> None:
    pass


def unsupported(a: int, when: datetime.date) -> None:
    pass


def nested_unsupported(a: HasEvent) -> None:
    pass


def unresolvable(a: "Missing") -> None:  # type: ignore[name-defined]  # noqa: F821
    pass


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (star_args, "function 'star_args', parameter *rest: a tool takes named parameters only, not *rest"),
        (
            star_kwargs,
            "function 'star_kwargs', parameter **options: a tool takes named parameters only, not **options",
        ),
        (unsupported, "function 'unsupported', parameter 'when': unsupported type datetime.date"),
        (
            nested_unsupported,
            "function 'nested_unsupported', parameter 'a': unsupported type datetime.datetime (at event.when)",
        ),
        (unresolvable, "cannot read the signature of function 'unresolvable': name 'Missing' is not defined"),
    ],
)
def test_functions_that_cannot_be_described(fn: Any, message: str) -> None:
    """Each refusal names the function and the parameter (and the field path, when nested)."""
    with pytest.raises(ConfigurationError) as info:
        schema_for_function(fn)
    assert str(info.value) == message

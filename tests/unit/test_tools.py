"""Tool: construction, strict argument checking, threads, timeouts and cancellation."""

import dataclasses
import enum
import functools
import threading
from collections.abc import Iterator
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict

import anyio
import anyio.from_thread
import attrs
import pydantic
import pytest

from lazybridge.errors import ConfigurationError, LazyBridgeError
from lazybridge.messages import ToolSpec
from lazybridge.tools import (
    DEFAULT_THREAD_LIMIT,
    Tool,
    ToolArgumentError,
    _ThreadSlot,
    as_tool,
    default_thread_limiter,
)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@attrs.define
class Point:
    x: int
    y: int = 0


def positive(_: object, __: object, value: int) -> None:
    if value <= 0:
        raise ValueError("must be positive")


@attrs.define
class Size:
    width: int = attrs.field(validator=positive)


@dataclasses.dataclass
class Tree:
    value: int
    children: "list[Tree]" = dataclasses.field(default_factory=list)


class Movie(TypedDict):
    title: str
    year: NotRequired[int]


class Person(pydantic.BaseModel):
    name: str
    ages: list[int] = []


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event sync tools block on; set in teardown so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()


def echo(**kwargs: Any) -> dict[str, Any]:
    return kwargs


# -- construction -----------------------------------------------------------------


def add(a: int, b: Annotated[int, "The second number."] = 2) -> int:
    """Add two numbers.

    Args:
        a: The first number.
    """
    return a + b


def test_from_function_reads_name_description_and_schema() -> None:
    """The spec carries the function's name, docstring summary and parameters schema."""
    tool = Tool.from_function(add)
    assert tool.spec() == ToolSpec(
        "add",
        "Add two numbers.",
        {
            "type": "object",
            "properties": {
                "a": {"type": "integer", "description": "The first number."},
                "b": {"type": "integer", "description": "The second number.", "default": 2},
            },
            "required": ["a"],
            "additionalProperties": False,
        },
    )


def test_name_and_description_can_be_overridden() -> None:
    """name= and description= replace what the function says about itself."""
    tool = Tool.from_function(add, name="plus", description="Sum.")
    assert (tool.name, tool.description) == ("plus", "Sum.")


class SecretCallable:
    def __call__(self, x: int) -> int:
        return x

    def __repr__(self) -> str:
        return "SecretCallable(api_key='sk-secret')"


def test_repr_leaves_out_the_function() -> None:
    """The callable (which may close over secrets) is not in the repr."""
    tool = Tool.from_function(SecretCallable(), name="f")
    assert "sk-secret" not in repr(tool)
    assert "name='f'" in repr(tool)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "has space"}, "tool name 'has space' is not valid"),
        ({"name": ""}, "tool name '' is not valid"),
        ({"timeout": 0}, "timeout must be a finite number of seconds > 0 or None, not 0"),
        ({"timeout": -1.0}, "timeout must be a finite number of seconds > 0 or None, not -1.0"),
        ({"timeout": True}, "timeout must be a positive number of seconds or None, not True"),
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any], message: str) -> None:
    """Invalid names and timeouts are refused at construction."""
    with pytest.raises(ConfigurationError, match=message):
        Tool.from_function(add, **options)


def test_a_lambda_needs_a_name() -> None:
    """'<lambda>' is not a valid tool name; name= fixes it."""
    with pytest.raises(ConfigurationError, match=r"tool name '<lambda>' is not valid"):
        Tool.from_function(lambda x: x, strict=False)
    assert Tool.from_function(lambda x: x, name="ident", strict=False).name == "ident"


def untyped(a, b: int = 1):  # type: ignore[no-untyped-def]
    return a


def star(*values: int) -> int:
    return 0


def bad_type(data: bytes) -> None:
    pass


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (untyped, "function 'untyped', parameter 'a' has no type annotation"),
        (star, "function 'star', parameter \\*values: a tool takes named parameters only"),
        (bad_type, "function 'bad_type', parameter 'data': unsupported type bytes"),
    ],
)
def test_undescribable_functions_fail_at_construction(fn: Any, message: str) -> None:
    """Construction errors name the function and the parameter."""
    with pytest.raises(ConfigurationError, match=message):
        Tool.from_function(fn)


def test_from_schema_keeps_the_hand_written_schema() -> None:
    """from_schema offers exactly the schema it was given."""
    parameters = {"type": "object", "properties": {"q": {"type": "string"}}}
    tool = Tool.from_schema("search", "Search.", parameters, echo)
    assert tool.spec() == ToolSpec("search", "Search.", parameters)


@pytest.mark.parametrize("parameters", [{"type": "array"}, {}, ["q"]])
def test_from_schema_needs_an_object_schema(parameters: Any) -> None:
    """A parameters schema that is not an object schema is refused."""
    with pytest.raises(ConfigurationError, match="parameters must be a JSON Schema of type 'object'"):
        Tool.from_schema("search", "Search.", parameters, echo)


# -- as_tool ------------------------------------------------------------------------


class FakeAgent:
    """Something with an as_tool() method, as agents have."""

    def __init__(self, tool: object) -> None:
        self.tool = tool

    def as_tool(self) -> object:
        return self.tool

    def __call__(self, task: str) -> str:
        return task


async def async_add(a: int, b: int) -> int:
    """Add asynchronously."""
    return a + b


def test_as_tool_normalises_every_accepted_shape() -> None:
    """A Tool passes through; functions (sync or async) are wrapped; as_tool() wins over __call__."""
    tool = Tool.from_function(add)
    assert as_tool(tool) is tool
    assert as_tool(add).spec() == tool.spec()
    assert as_tool(async_add).name == "async_add"
    assert as_tool(FakeAgent(tool)) is tool


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (42, "cannot use int as a tool"),
        (Point, "cannot use the class Point as a tool"),
        (FakeAgent("nope"), "FakeAgent.as_tool\\(\\) returned str, not a Tool"),
    ],
)
def test_as_tool_refuses_other_things(obj: Any, message: str) -> None:
    """Non-callables, classes and as_tool() methods that return something else are refused."""
    with pytest.raises(ConfigurationError, match=message):
        as_tool(obj)


# -- argument conversion ------------------------------------------------------------


def everything(
    n: int,
    ratio: float,
    flag: bool,
    color: Color,
    point: Point,
    tree: Tree,
    movie: Movie,
    person: Person,
    ids: list[int],
    pair: tuple[int, str],
    tags: set[str],
    scores: dict[str, float],
    maybe: Optional[int] = None,  # noqa: UP045 - the spelling under test
    either: int | str = 0,
    mode: Literal["fast", 1] = "fast",
    anything: Any = None,
) -> dict[str, Any]:
    return dict(locals())


GOOD = {
    "n": 3,
    "ratio": 2,
    "flag": False,
    "color": "green",
    "point": {"x": 1},
    "tree": {"value": 1, "children": [{"value": 2}]},
    "movie": {"title": "Alien"},
    "person": {"name": "Ann", "ages": [3]},
    "ids": [1, 2],
    "pair": [7, "seven"],
    "tags": ["a", "b", "a"],
    "scores": {"x": 0.5},
    "maybe": 4,
    "either": "text",
    "mode": 1,
    "anything": {"free": ["form"]},
}


@pytest.mark.anyio
async def test_arguments_are_converted_to_the_annotated_types() -> None:
    """JSON values become Enum members, class instances, tuples, sets and floats before the call."""
    result = await Tool.from_function(everything).call(GOOD)
    assert result == {
        "n": 3,
        "ratio": 2.0,
        "flag": False,
        "color": Color.GREEN,
        "point": Point(1, 0),
        "tree": Tree(1, [Tree(2, [])]),
        "movie": {"title": "Alien"},
        "person": Person(name="Ann", ages=[3]),
        "ids": [1, 2],
        "pair": (7, "seven"),
        "tags": {"a", "b"},
        "scores": {"x": 0.5},
        "maybe": 4,
        "either": "text",
        "mode": 1,
        "anything": {"free": ["form"]},
    }
    assert type(result["ratio"]) is float


@pytest.mark.anyio
async def test_an_integral_float_is_an_integer() -> None:
    """3.0 is accepted for int (JSON Schema's integer), 3.5 is not."""
    tool = Tool.from_function(add)
    assert await tool.call({"a": 3.0}) == 5
    with pytest.raises(ToolArgumentError) as info:
        await tool.call({"a": 3.5})
    assert info.value.errors == ("expected integer, got number @ $.a",)


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"n": "3"}, ["expected integer, got string @ $.n"]),
        ({"n": True}, ["expected integer, got boolean @ $.n"]),
        ({"ratio": "2.5"}, ["expected number, got string @ $.ratio"]),
        ({"flag": 1}, ["expected boolean, got integer @ $.flag"]),
        ({"color": "blue"}, ['expected one of "red", "green", got "blue" @ $.color']),
        ({"point": {"x": 1, "z": 2}}, ["unexpected field(s): z @ $.point"]),
        ({"point": {"y": 1}}, ["required field missing @ $.point.x"]),
        ({"point": [1, 2]}, ["expected object, got array @ $.point"]),
        (
            {"tree": {"value": 1, "children": [{"value": "2"}]}},
            ["expected integer, got string @ $.tree.children[0].value"],
        ),
        ({"movie": {"year": 1979}}, ["required field missing @ $.movie.title"]),
        ({"movie": {"title": "Alien", "rating": 5}}, ["unexpected field(s): rating @ $.movie"]),
        (
            {"ids": [1, "2", None]},
            ["expected integer, got string @ $.ids[1]", "expected integer, got null @ $.ids[2]"],
        ),
        ({"ids": "12"}, ["expected array, got string @ $.ids"]),
        ({"pair": [1]}, ["expected array of 2 items, got 1 @ $.pair"]),
        ({"pair": [1, 2]}, ["expected string, got integer @ $.pair[1]"]),
        ({"scores": {"x": "high"}}, ["expected number, got string @ $.scores['x']"]),
        ({"maybe": "4"}, ["expected integer, got string @ $.maybe"]),
        ({"either": 1.5}, ["expected integer or string, got number @ $.either"]),
        ({"mode": True}, ['expected one of "fast", 1, got true @ $.mode']),
        (
            {"person": {"name": "Ann", "ages": [1, "x"]}},
            ["Input should be a valid integer, unable to parse string as an integer @ $.person.ages[1]"],
        ),
        ({"person": {}}, ["Field required @ $.person.name"]),
    ],
)
@pytest.mark.anyio
async def test_mismatches_list_each_bad_field(changes: dict[str, Any], errors: list[str]) -> None:
    """Each bad value yields one '<problem> @ $.path' line, and the function does not run."""
    calls = []

    def spy(**kwargs: Any) -> None:
        calls.append(kwargs)

    tool = Tool.from_function(functools.update_wrapper(spy, everything))
    with pytest.raises(ToolArgumentError) as info:
        await tool.call({**GOOD, **changes})
    assert list(info.value.errors) == errors
    assert calls == []


@pytest.mark.anyio
async def test_unknown_and_missing_arguments_are_named() -> None:
    """Unknown top-level keys and missing required parameters each get a line, under the tool's name."""
    with pytest.raises(ToolArgumentError) as info:
        await Tool.from_function(add).call({"b": 1, "c": 2, "d": 3})
    assert str(info.value) == (
        "invalid arguments for tool 'add':\n"
        "unexpected field @ $.c\n"
        "unexpected field @ $.d\n"
        "required field missing @ $.a"
    )
    assert isinstance(info.value, LazyBridgeError)
    assert info.value.tool == "add"


@pytest.mark.parametrize("arguments", [[1, 2], "a=1", None])
@pytest.mark.anyio
async def test_arguments_must_be_an_object(arguments: Any) -> None:
    """Both kinds of tool refuse arguments that are not a JSON object."""
    for tool in (Tool.from_function(add), Tool.from_schema("e", "", {"type": "object"}, echo)):
        with pytest.raises(ToolArgumentError, match=r"expected object, got \w+ @ \$"):
            await tool.call(arguments)


def make_size(size: Size) -> int:
    return size.width


@pytest.mark.anyio
async def test_validator_errors_are_reported_with_their_message() -> None:
    """A class's own validator message reaches the model, at the right path."""
    with pytest.raises(ToolArgumentError) as info:
        await Tool.from_function(make_size).call({"size": {"width": 0}})
    assert info.value.errors == ("ValueError: must be positive @ $.size",)


@pytest.mark.anyio
async def test_from_schema_passes_arguments_unchecked() -> None:
    """A hand-written schema's tool gets the arguments as keywords, as sent."""
    tool = Tool.from_schema("e", "", {"type": "object"}, echo)
    assert await tool.call({"n": "3", "extra": [1]}) == {"n": "3", "extra": [1]}


def positional(a: int, b: int = 10, /, c: int = 100) -> tuple[int, int, int]:
    return a, b, c


@pytest.mark.anyio
async def test_positional_only_parameters_are_passed_positionally() -> None:
    """Positional-only parameters work, with defaults filled in only when needed."""
    tool = Tool.from_function(positional)
    assert await tool.call({"a": 1}) == (1, 10, 100)
    assert await tool.call({"a": 1, "c": 3}) == (1, 10, 3)
    assert await tool.call({"a": 1, "b": 2}) == (1, 2, 100)


def loose(a, b: int = 1):  # type: ignore[no-untyped-def]
    return a, b


@pytest.mark.anyio
async def test_untyped_parameters_take_any_value_when_not_strict() -> None:
    """strict=False passes an untyped parameter through, still checking typed ones."""
    tool = Tool.from_function(loose, strict=False)
    assert await tool.call({"a": {"any": "thing"}}) == ({"any": "thing"}, 1)
    with pytest.raises(ToolArgumentError):
        await tool.call({"a": 1, "b": "2"})


# -- where the function runs ----------------------------------------------------------


@pytest.mark.anyio
async def test_sync_tool_runs_in_a_worker_thread() -> None:
    """A plain function never runs on the event loop's thread."""
    tool = Tool.from_function(lambda: threading.get_ident(), name="ident")
    assert await tool.call({}) != threading.get_ident()


@pytest.mark.anyio
async def test_async_tool_runs_in_the_loop() -> None:
    """An async function runs in the calling task, on the loop's thread."""

    async def ident() -> int:
        await anyio.lowlevel.checkpoint()
        return threading.get_ident()

    class AsyncCallable:
        async def __call__(self) -> int:
            return threading.get_ident()

    assert await Tool.from_function(ident).call({}) == threading.get_ident()
    assert await Tool.from_function(AsyncCallable()).call({}) == threading.get_ident()
    assert await Tool.from_function(functools.partial(ident), name="p").call({}) == threading.get_ident()


@pytest.mark.anyio
async def test_exceptions_from_the_function_propagate() -> None:
    """Errors raised by the function reach the caller unchanged, from threads and coroutines."""

    def sync_fail() -> None:
        raise KeyError("sync")

    async def async_fail() -> None:
        raise KeyError("async")

    with pytest.raises(KeyError, match="sync"):
        await Tool.from_function(sync_fail).call({})
    with pytest.raises(KeyError, match="async"):
        await Tool.from_function(async_fail).call({})


@pytest.mark.anyio
async def test_sync_tools_borrow_from_the_default_limiter(release: threading.Event) -> None:
    """Without limiter=, a running sync tool holds one token of the loop's default limiter."""
    started = anyio.Event()

    def work() -> str:
        anyio.from_thread.run_sync(started.set)
        release.wait()
        return "done"

    limiter = default_thread_limiter()
    assert limiter is default_thread_limiter()
    assert limiter.total_tokens == DEFAULT_THREAD_LIMIT
    results = []

    async def run() -> None:
        results.append(await Tool.from_function(work).call({}))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await started.wait()
        assert limiter.borrowed_tokens == 1
        release.set()
    assert results == ["done"]
    assert limiter.borrowed_tokens == 0


@pytest.mark.anyio
async def test_limiter_argument_replaces_the_default(release: threading.Event) -> None:
    """limiter= bounds the call instead of the default limiter: a second call waits for the token."""
    limiter = anyio.CapacityLimiter(1)
    entered: list[int] = []
    first_started = anyio.Event()

    def work(n: int) -> int:
        entered.append(n)
        if n == 1:
            anyio.from_thread.run_sync(first_started.set)
            release.wait()
        return n

    tool = Tool.from_function(work)
    async with anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(tool.call, {"n": 1}, limiter=limiter))
        await first_started.wait()
        tg.start_soon(functools.partial(tool.call, {"n": 2}, limiter=limiter))
        await anyio.wait_all_tasks_blocked()
        assert (entered, limiter.borrowed_tokens, default_thread_limiter().borrowed_tokens) == ([1], 1, 0)
        assert limiter.statistics().tasks_waiting == 1
        release.set()
    assert entered == [1, 2]
    assert limiter.borrowed_tokens == 0


# -- timeouts and cancellation ----------------------------------------------------------


@pytest.mark.anyio
async def test_sync_timeout_returns_promptly_and_holds_the_token(release: threading.Event) -> None:
    """The call raises TimeoutError while the thread still runs; the token is held until it ends."""
    started = anyio.Event()
    finished = threading.Event()

    def stuck() -> str:
        anyio.from_thread.run_sync(started.set)
        release.wait()
        finished.set()
        return "too late"

    limiter = anyio.CapacityLimiter(1)
    tool = Tool.from_function(stuck, timeout=0.25)
    with pytest.raises(TimeoutError, match=r"tool 'stuck' did not finish within 0.25 s"):
        await tool.call({}, limiter=limiter)
    await started.wait()  # set before the deadline; the thread was running when abandoned
    assert not finished.is_set()
    assert limiter.borrowed_tokens == 1  # the abandoned thread still holds its token
    release.set()
    await limiter.acquire()  # returns only once the thread has ended and given the token back
    assert finished.is_set()
    assert limiter.borrowed_tokens == 1
    limiter.release()


@pytest.mark.anyio
async def test_cancelling_the_caller_abandons_a_sync_thread(release: threading.Event) -> None:
    """Caller cancellation propagates out of call at once; the token stays held until the thread ends."""
    started = anyio.Event()

    def stuck() -> None:
        anyio.from_thread.run_sync(started.set)
        release.wait()

    limiter = anyio.CapacityLimiter(1)
    tool = Tool.from_function(stuck)
    seen: list[str] = []
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                try:
                    await tool.call({}, limiter=limiter)
                except anyio.get_cancelled_exc_class():
                    seen.append("cancelled")
                    raise
                seen.append("returned")

            tg.start_soon(call)
            await started.wait()
            assert limiter.borrowed_tokens == 1
            scope.cancel()
    assert scope.cancelled_caught
    assert seen == ["cancelled"]
    assert limiter.borrowed_tokens == 1
    release.set()
    await limiter.acquire()
    assert limiter.borrowed_tokens == 1
    limiter.release()


@pytest.mark.anyio
async def test_a_cancelled_caller_never_starts_the_function() -> None:
    """A call made inside an already-cancelled scope raises, runs nothing and holds nothing."""
    ran: list[bool] = []
    limiter = anyio.CapacityLimiter(1)
    tool = Tool.from_function(lambda: ran.append(True), name="never")
    with anyio.CancelScope() as scope:
        scope.cancel()
        await tool.call({}, limiter=limiter)
    assert scope.cancelled_caught
    assert (ran, limiter.borrowed_tokens) == ([], 0)


@pytest.mark.anyio
async def test_thread_slot_given_up_before_start_skips_the_function() -> None:
    """If the caller gives up before the worker starts, the token returns at once and fn never runs."""
    limiter = anyio.CapacityLimiter(1)
    slot = await _ThreadSlot.acquire(limiter)
    assert limiter.borrowed_tokens == 1
    slot.done()
    assert limiter.borrowed_tokens == 0
    assert slot.run(lambda: pytest.fail("must not run")) is None


@pytest.mark.anyio
async def test_async_timeout_cancels_the_coroutine() -> None:
    """An async tool past its timeout is cancelled (its cleanup runs) and the call raises TimeoutError."""
    cleaned_up: list[bool] = []

    async def forever() -> None:
        try:
            await anyio.Event().wait()
        finally:
            cleaned_up.append(True)

    with pytest.raises(TimeoutError, match=r"tool 'forever' did not finish within 0\.01 s"):
        await Tool.from_function(forever, timeout=0.01).call({})
    assert cleaned_up == [True]


@pytest.mark.anyio
async def test_a_timeout_error_of_the_tool_itself_is_not_the_deadline() -> None:
    """A TimeoutError raised by the function propagates as is, even with a timeout set."""

    async def own() -> None:
        raise TimeoutError("upstream timed out")

    with pytest.raises(TimeoutError, match=r"^upstream timed out$"):
        await Tool.from_function(own, timeout=10).call({})


@pytest.mark.anyio
async def test_cancelling_the_caller_cancels_an_async_tool() -> None:
    """Caller cancellation reaches the coroutine and propagates out of call."""
    entered = anyio.Event()
    seen: list[str] = []

    async def wait() -> None:
        entered.set()
        try:
            await anyio.Event().wait()
        except anyio.get_cancelled_exc_class():
            seen.append("tool cancelled")
            raise

    tool = Tool.from_function(wait)
    async with anyio.create_task_group() as tg:

        async def call() -> None:
            try:
                await tool.call({})
            except anyio.get_cancelled_exc_class():
                seen.append("call cancelled")
                raise

        tg.start_soon(call)
        await entered.wait()
        tg.cancel_scope.cancel()
    assert seen == ["tool cancelled", "call cancelled"]

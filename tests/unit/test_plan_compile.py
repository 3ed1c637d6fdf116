"""Every invalid Plan is refused at construction with a PlanCompileError naming the step."""

from __future__ import annotations

from typing import Any

import pytest

from lazybridge import (
    ConfigurationError,
    Plan,
    PlanCompileError,
    Step,
    from_parallel,
    from_parallel_all,
    from_step,
)
from lazybridge.testing import MockAgent


def m(name: str) -> MockAgent:
    return MockAgent(name=name)


def test_plan_compile_error_is_a_configuration_error() -> None:
    assert issubclass(PlanCompileError, ConfigurationError)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        pytest.param(
            lambda: [Step(m("a")), Step(m("a"))],
            r"step 'a' is defined twice \(positions 0 and 1\)",
            id="duplicate-name",
        ),
        pytest.param(
            lambda: [Step(m("a"), routes={"nowhere": lambda e: True})],
            r"step 'a': routes to 'nowhere', which names no step",
            id="unknown-route",
        ),
        pytest.param(
            lambda: [Step(m("a"), task=from_step("b")), Step(m("b"))],
            r"step 'a': task=from_step\('b'\) points forward: 'b' runs after 'a'",
            id="forward-task",
        ),
        pytest.param(
            lambda: [Step(m("a"), task=from_step("a"))],
            r"step 'a': task=from_step\('a'\) points forward: 'a' is the step itself",
            id="self-reference",
        ),
        pytest.param(
            lambda: [Step(m("a")), Step(m("b"), context=["x", from_step("c")]), Step(m("c"))],
            r"step 'b': context\[1\]=from_step\('c'\) points forward",
            id="forward-context",
        ),
        pytest.param(
            lambda: [Step(m("a"), context=from_step("ghost"))],
            r"step 'a': context=from_step\('ghost'\) names no step of this plan",
            id="unknown-sentinel-step",
        ),
        pytest.param(
            lambda: [
                Step(m("a"), parallel=True),
                Step(m("b"), parallel=True),
                Step(m("j"), task=from_parallel_all("b")),
            ],
            r"step 'j': task=from_parallel_all\('b'\): 'b' is not at the start of its parallel band; the band starts at 'a'",
            id="parallel-all-mid-band",
        ),
        pytest.param(
            lambda: [Step(m("a")), Step(m("j"), task=from_parallel_all("a"))],
            r"step 'j': task=from_parallel_all\('a'\): 'a' is not a parallel step",
            id="parallel-all-not-a-band",
        ),
        pytest.param(
            lambda: [Step(m("a"), parallel=True), Step(m("j"), task=from_parallel_all("z"))],
            r"step 'j': task=from_parallel_all\('z'\) names no step",
            id="parallel-all-unknown",
        ),
        pytest.param(
            lambda: [Step(m("j"), task=from_parallel_all("a")), Step(m("a"), parallel=True)],
            r"step 'j': task=from_parallel_all\('a'\) points forward",
            id="parallel-all-forward",
        ),
        pytest.param(
            lambda: [Step(m("a")), Step(m("j"), task=from_parallel("a"))],
            r"step 'j': task=from_parallel\('a'\): 'a' is not a parallel step; use from_step\('a'\)",
            id="from-parallel-not-parallel",
        ),
        pytest.param(
            lambda: [Step(m("a"), parallel=True), Step(m("b"), parallel=True, task=from_parallel("a"))],
            r"step 'b': task=from_parallel\('a'\) points at 'a', a member of the same parallel band",
            id="sibling-in-band",
        ),
        pytest.param(
            lambda: [Step(m("a"), parallel=True, routes={"a": lambda e: True})],
            r"step 'a': routes= is not allowed on a parallel step",
            id="routes-on-parallel",
        ),
        pytest.param(
            lambda: [
                Step(m("a"), parallel=True),
                Step(m("b"), parallel=True),
                Step(m("j"), routes={"b": lambda e: True}),
            ],
            r"step 'j': routes into the middle of a parallel band at 'b'; route to the band's first step, 'a'",
            id="route-mid-band",
        ),
        pytest.param(
            lambda: [Step(m("a"), routes={"a": "yes"})],
            r"step 'a': the route to 'a' needs a predicate",
            id="route-not-callable",
        ),
        pytest.param(
            lambda: [Step(m("a"), routes=[("a", bool)])],
            r"step 'a': routes= must be a dict",
            id="routes-not-a-dict",
        ),
        pytest.param(
            lambda: [Step(m("a"), task=42)],
            r"step 'a': task= must be a sentinel .* or a string, not int",
            id="task-type",
        ),
        pytest.param(
            lambda: [Step(m("a"), context=["ok", 3.5])],
            r"step 'a': context\[1\] must be a sentinel or a string, not float",
            id="context-type",
        ),
        pytest.param(
            lambda: [Step(42, name="n")],
            r"step 'n': target must be an Agent, a ParallelAgent, a Tool or a function",
            id="target-type",
        ),
        pytest.param(
            lambda: [Step(lambda t: t)], r"step 0 \(function .*\) needs a name", id="nameless-lambda"
        ),
        pytest.param(
            lambda: [Step(m("a"), on_error="ignore")],
            r"step 'a': on_error= must be 'fail' or 'continue'",
            id="on-error",
        ),
        pytest.param(
            lambda: [Step(m("a"), parallel="yes")],
            r"step 'a': parallel= must be True or False",
            id="parallel-type",
        ),
        pytest.param(lambda: [m("a")], r"Plan argument 0 must be a Step, not MockAgent", id="not-a-step"),
        pytest.param(lambda: [], r"Plan needs at least one Step", id="empty"),
        pytest.param(
            lambda: [Step(lambda *args: args, name="star")],
            r"step 'star': its function cannot be called as a step",
            id="uncallable-function",
        ),
    ],
)
def test_invalid_plans_are_refused(steps: Any, message: str) -> None:
    with pytest.raises(PlanCompileError, match=message):
        Plan(*steps())


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "3"])
def test_max_iterations_must_be_a_positive_whole_number(value: Any) -> None:
    with pytest.raises(PlanCompileError, match="max_iterations must be a whole number >= 1"):
        Plan(Step(m("a")), max_iterations=value)


def test_sentinels_need_a_step_name() -> None:
    with pytest.raises(ConfigurationError, match=r"from_step\(\) needs a step name"):
        from_step("")


def test_valid_shapes_compile() -> None:
    """Backward routes (loops), self-routes, a band joined by from_parallel_all, and reading a closed band."""
    plan = Plan(
        Step(m("a"), routes={"a": lambda e: False}),
        Step(m("s1"), parallel=True),
        Step(m("s2"), parallel=True, task=from_step("a")),
        Step(
            m("j"),
            task=from_parallel_all("s1"),
            context=[from_parallel("s2"), "text"],
            routes={"s1": lambda e: False},
        ),
        Step(m("k"), task=from_parallel("s1")),
    )
    assert [s.name for s in plan.steps] == ["a", "s1", "s2", "j", "k"]
    assert repr(plan) == "Plan(a, s1, s2, j, k, max_iterations=10)"
    assert repr(from_parallel_all("s1")) == "from_parallel_all('s1')"

"""AgentMapper and the processor config in this process: columns, bad input, the pinned surface."""

from __future__ import annotations

import importlib

import pytest

pytest.importorskip("ray")

from lazybridge import ConfigurationError
from lazybridge.ray import RESULT_COLUMNS, AgentMapper, AgentProcessorConfig, build_processor
from lazybridge.testing import MockAgent
from tests.unit.test_public_surface import OPTIONAL_SURFACE


def shout() -> MockAgent:
    return MockAgent(lambda task: ValueError("no") if "bad" in task else task.upper(), name="shout")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_batch_comes_back_with_the_result_columns_row_for_row(backend: str) -> None:
    mapper = AgentMapper(shout, backend=backend)
    try:
        out = mapper({"id": [1, 2, 3], "task": ["a", "bad", 42]})
        again = mapper({"id": [4], "task": ["b"]})  # the same actor, the same loop, a second batch
    finally:
        mapper.close()
    assert list(out) == ["id", "task", *RESULT_COLUMNS]
    assert out["id"] == [1, 2, 3] and out["text"] == ["A", None, None]
    assert out["ok"] == [True, False, False]
    assert out["error_type"] == [None, "ValueError", "TypeError"]  # a task that is not a str
    assert all(out["run_id"][:1]) and again["text"] == ["B"]


def test_bad_arguments_are_named() -> None:
    with pytest.raises(TypeError, match="agent must be a zero-argument callable"):
        AgentMapper(shout())  # an agent, not a factory
    with pytest.raises(TypeError, match=r"agent\(\) must return an agent"):
        AgentMapper(lambda: "not an agent")  # type: ignore[arg-type, return-value]
    with pytest.raises(ConfigurationError, match="concurrency"):
        AgentMapper(shout, concurrency=0)
    with pytest.raises(ConfigurationError, match="backend"):
        AgentMapper(shout, backend="curio")
    with pytest.raises(ConfigurationError, match="concurrency"):
        AgentProcessorConfig(shout, concurrency=(3, 2))
    with pytest.raises(ConfigurationError, match="batch_size"):
        AgentProcessorConfig(shout, batch_size=0)
    with pytest.raises(TypeError, match="config must be an AgentProcessorConfig"):
        build_processor({"agent": shout})  # type: ignore[arg-type]


def test_the_pinned_surface_imports() -> None:
    for module_name, names in OPTIONAL_SURFACE.items():
        module = importlib.import_module(module_name)
        assert sorted(module.__all__) == sorted(names)
        assert all(getattr(module, name) is not None for name in names)

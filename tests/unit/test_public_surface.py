"""The public surface, pinned: what ``lazybridge`` and its documented submodules export.

A name added to or dropped from an ``__all__`` fails here, so a change of the
public API is always a visible, reviewed edit of this file (as trio's and
httpx's export tests do).  Every exported name must also be importable.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

#: The modules the docs name (docs/reference.md and the guides), and what each exports.
SURFACE: dict[str, list[str]] = {
    "lazybridge": [
        "Agent",
        "AgentBase",
        "BatchRun",
        "BranchCancelled",
        "BranchDelta",
        "Budget",
        "BudgetExceededError",
        "ConfigurationError",
        "Envelope",
        "EnvelopeError",
        "EnvelopeMetadata",
        "ErrorInfo",
        "Event",
        "LLMEngine",
        "LazyBridgeError",
        "MapAgent",
        "MaxIterationsExceeded",
        "MaxTurnsExceeded",
        "Memory",
        "ParallelAgent",
        "Plan",
        "PlanCompileError",
        "ProviderError",
        "RaceAgent",
        "RateLimit",
        "Session",
        "Step",
        "StructuredOutputError",
        "Tool",
        "aclose",
        "from_parallel",
        "from_parallel_all",
        "from_prev",
        "from_start",
        "from_step",
        "read_checkpoint",
    ],
    "lazybridge.testing": [
        "Cassette",
        "CassetteMismatch",
        "FakeProvider",
        "FakeRateLimit",
        "MockAgent",
        "RecordedRequest",
        "Reply",
        "ScriptedEngine",
        "ScriptedModel",
        "reset_rate_limits",
        "serve_fake_provider",
    ],
    "lazybridge.engines.base": ["Engine", "EngineBase", "Prepared"],
    "lazybridge.session": [
        "CallableExporter",
        "ConsoleExporter",
        "EventLog",
        "Exporter",
        "JsonlExporter",
        "RunUsage",
        "SQLiteExporter",
        "Session",
        "SessionWarning",
        "Usage",
        "UsageSummary",
        "redact_event",
    ],
    "lazybridge.session.otel": ["OTelExporter"],
    "lazybridge.errors": [
        "APIConnectionError",
        "APIStatusError",
        "APITimeoutError",
        "AuthenticationError",
        "BadRequestError",
        "BranchCancelled",
        "BudgetExceededError",
        "ConfigurationError",
        "EnvelopeError",
        "LazyBridgeError",
        "MalformedResponseError",
        "MaxIterationsExceeded",
        "MaxTurnsExceeded",
        "NoWinner",
        "NotFoundError",
        "OverloadedError",
        "PermissionDeniedError",
        "PlanCompileError",
        "ProviderError",
        "QuorumUnreachable",
        "RateLimitError",
        "RunCancelled",
        "ServerError",
        "StreamError",
        "StructuredOutputError",
    ],
    "lazybridge.envelope": [
        "Envelope",
        "EnvelopeMetadata",
        "ErrorInfo",
        "branch_labels",
        "converter",
        "fold_branches",
        "labelled_join",
    ],
    "lazybridge.tools": [
        "DEFAULT_THREAD_LIMIT",
        "SupportsAsTool",
        "Tool",
        "ToolArgumentError",
        "as_tool",
        "default_thread_limiter",
    ],
    "lazybridge.providers": ["Price", "UnknownPriceWarning", "resolve", "set_price"],
}

#: Documented modules that need an optional extra to import (``lazybridge.ray``: Ray).
#: The main suite reads their ``__all__`` from the source; the extra's own CI stage
#: (tests/ray) imports them.
OPTIONAL_SURFACE: dict[str, list[str]] = {
    "lazybridge.ray": ["RESULT_COLUMNS", "AgentMapper", "AgentProcessor", "AgentProcessorConfig", "build_processor"],
}

SRC = Path(__file__).resolve().parents[2] / "src"


def static_all(module_name: str) -> list[str]:
    """A module's ``__all__``, read from its source without importing it."""
    tree = ast.parse(SRC.joinpath(*module_name.split(".")).with_suffix(".py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"{module_name} has no __all__")


@pytest.mark.parametrize("module_name", sorted(OPTIONAL_SURFACE))
def test_optional_modules_all_is_exactly_the_pinned_surface(module_name: str) -> None:
    assert static_all(module_name) == OPTIONAL_SURFACE[module_name]


def test_import_lazybridge_imports_no_optional_extra() -> None:
    code = "import sys, lazybridge, lazybridge.testing; print(sorted({'ray'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("module_name", sorted(SURFACE))
def test_all_is_exactly_the_pinned_surface(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), "a name is exported twice"
    assert sorted(exported) == SURFACE[module_name]


@pytest.mark.parametrize("module_name", sorted(SURFACE))
def test_every_exported_name_is_importable(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{module_name}.{name}"
    namespace: dict[str, object] = {}
    exec(f"from {module_name} import *", namespace)  # what a star import gets
    assert set(module.__all__) <= set(namespace)


def test_the_error_tree_is_exported_whole() -> None:
    """Every exception class lazybridge.errors defines is in its __all__ (none left private by accident)."""
    errors = importlib.import_module("lazybridge.errors")
    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and value.__module__ == errors.__name__ and not name.startswith("_")
    }
    assert defined == set(errors.__all__)


def test_top_level_names_are_the_submodules_objects() -> None:
    """A name re-exported at the top level is the same object as in its home module."""
    import lazybridge

    for module_name, names in SURFACE.items():
        if module_name == "lazybridge":
            continue
        module = importlib.import_module(module_name)
        for name in set(names) & set(lazybridge.__all__):
            assert getattr(lazybridge, name) is getattr(module, name), name

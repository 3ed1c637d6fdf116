"""LazyBridge: LLM agents and deterministic composition on a structured-concurrency runtime."""

from typing import TYPE_CHECKING, Any

from ._checkpoint import read_checkpoint
from ._parallel_stream import BranchDelta
from ._resources import aclose
from .agent import Agent, AgentBase
from .batch import BatchRun
from .budget import Budget
from .engines.plan import Plan, Step
from .engines.sentinels import from_parallel, from_parallel_all, from_prev, from_start, from_step
from .envelope import Envelope, EnvelopeMetadata, ErrorInfo
from .errors import (
    BranchCancelled,
    BudgetExceededError,
    ConfigurationError,
    EnvelopeError,
    LazyBridgeError,
    MaxIterationsExceeded,
    MaxTurnsExceeded,
    PlanCompileError,
    ProviderError,
    StructuredOutputError,
)
from .events import Event
from .map import MapAgent
from .memory import Memory
from .parallel import ParallelAgent
from .providers._ratelimit import RateLimit
from .race import RaceAgent
from .session import Session
from .tools import Tool

if TYPE_CHECKING:
    from .engines.llm import LLMEngine

__all__ = [
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
]


def __getattr__(name: str) -> Any:
    # LLMEngine brings in httpx, stamina and the provider translations: loaded on first use.
    if name == "LLMEngine":
        from .engines.llm import LLMEngine

        return LLMEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

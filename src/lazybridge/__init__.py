"""LazyBridge: LLM agents and deterministic composition on a structured-concurrency runtime."""

from ._resources import aclose
from .agent import Agent, AgentBase
from .envelope import Envelope, EnvelopeMetadata, ErrorInfo
from .errors import (
    ConfigurationError,
    EnvelopeError,
    LazyBridgeError,
    MaxTurnsExceeded,
    ProviderError,
    StructuredOutputError,
)
from .events import Event
from .parallel import ParallelAgent
from .session import Session
from .tools import Tool

__all__ = [
    "Agent",
    "AgentBase",
    "ConfigurationError",
    "Envelope",
    "EnvelopeError",
    "EnvelopeMetadata",
    "ErrorInfo",
    "Event",
    "LazyBridgeError",
    "MaxTurnsExceeded",
    "ParallelAgent",
    "ProviderError",
    "Session",
    "StructuredOutputError",
    "Tool",
    "aclose",
]

"""Agent factories the Ray actors call (module-level, so they pickle by reference)."""

from __future__ import annotations

import os

from lazybridge import Agent, AgentBase, LLMEngine, RateLimit
from lazybridge.testing import MockAgent

KEY = "test-key-not-a-secret"


def two_models(base_url: str) -> AgentBase:
    """A parallel of two LLM agents on the fake provider (two wire formats)."""
    return Agent.parallel(
        Agent(engine=LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY), name="claude"),
        Agent(engine=LLMEngine("gpt-5.4-mini", base_url=base_url, api_key=KEY), name="gpt"),
    )


def dies_once(base_url: str, marker: str) -> AgentBase:
    """``two_models`` behind a first stage that kills its process on the first task while ``marker`` exists.

    The rename succeeds in one process only, so exactly one actor dies, once.
    """

    def tripwire(task: str) -> str:
        try:
            os.rename(marker, marker + ".fired")
        except FileNotFoundError:
            return task
        os._exit(1)

    return Agent.chain(MockAgent(tripwire, name="tripwire"), two_models(base_url))


def rate_limited(base_url: str, requests_per_minute: float | None) -> AgentBase:
    """One LLM agent whose account has ``requests_per_minute`` configured (``None``: headers only)."""
    limit = None if requests_per_minute is None else RateLimit(requests_per_minute=requests_per_minute)
    return Agent(engine=LLMEngine("gpt-5.4-mini", base_url=base_url, api_key=KEY, rate_limit=limit))

"""The time a run has left is visible to its tools through ``anyio.current_effective_deadline()``.

docs/concepts/concurrency.md ("How much time is left") promises it for async
tools under ``Agent(timeout=)``, ``tool_timeout=`` and ``step_timeout=``, and
documents the limit for sync tools (no event loop in their worker thread).
"""

from __future__ import annotations

import math

import anyio
import pytest

from lazybridge import Agent, LLMEngine
from lazybridge.testing import ScriptedModel

pytestmark = pytest.mark.anyio


def calling(tool: str) -> ScriptedModel:
    return ScriptedModel([ScriptedModel.reply(tool_calls=[(tool, {})]), "done"])


async def test_an_async_tool_sees_the_earliest_deadline_of_the_run() -> None:
    seen: list[float] = []

    async def probe() -> str:
        """Report the time left."""
        seen.append(anyio.current_effective_deadline() - anyio.current_time())
        return "ok"

    await Agent(engine=LLMEngine(calling("probe")), tools=[probe], timeout=30).run("go")
    await Agent(engine=LLMEngine(calling("probe"), tool_timeout=7), tools=[probe], timeout=30).run("go")
    branch = Agent(engine=LLMEngine(calling("probe")), tools=[probe], timeout=30, name="b")
    await Agent.parallel(branch, step_timeout=3).run("go")
    await Agent(engine=LLMEngine(calling("probe")), tools=[probe]).run("go")
    assert 25 < seen[0] <= 30
    assert 5 < seen[1] <= 7  # the tool timeout is the earlier one
    assert 1 < seen[2] <= 3  # so is the parallel's step_timeout
    assert seen[3] == math.inf


async def test_a_sync_tool_has_no_event_loop_to_ask_which_is_the_documented_limit() -> None:
    errors: list[BaseException] = []

    def probe() -> str:
        """Try to read the time left from a worker thread."""
        try:
            anyio.current_effective_deadline()
        except Exception as exc:
            errors.append(exc)
        return "ok"

    await Agent(engine=LLMEngine(calling("probe")), tools=[probe], timeout=30).run("go")
    assert len(errors) == 1 and "event loop" in str(errors[0])

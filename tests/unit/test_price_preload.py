"""The price tables are loaded when an agent is built, not inside its first timed model call.

Each check runs in a fresh interpreter: whether genai-prices is imported is
process-wide state that other tests have already changed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_an_agent_built_outside_an_event_loop_loads_the_prices() -> None:
    out = _run(
        """
        import sys
        from lazybridge import Agent, LLMEngine
        LLMEngine("claude-haiku-4-5", api_key="test-key-not-a-secret")
        assert "genai_prices" not in sys.modules  # an engine alone stays cheap
        Agent(engine=LLMEngine("claude-haiku-4-5", api_key="test-key-not-a-secret"))
        print("genai_prices" in sys.modules)
        """
    )
    assert out == "True"


def test_an_agent_built_inside_an_event_loop_leaves_the_import_to_a_worker_thread() -> None:
    """Blocking a running loop for the import would stall every other task on it."""
    out = _run(
        """
        import sys
        import anyio
        from lazybridge import Agent, LLMEngine

        async def main():
            Agent(engine=LLMEngine("claude-haiku-4-5", api_key="test-key-not-a-secret"))
            print("genai_prices" in sys.modules)

        anyio.run(main, backend="asyncio")
        anyio.run(main, backend="trio")
        """
    )
    assert out == "False\nFalse"


def test_a_scripted_model_loads_nothing() -> None:
    out = _run(
        """
        import sys
        from lazybridge import Agent, LLMEngine
        from lazybridge.testing import ScriptedModel
        Agent(engine=LLMEngine(ScriptedModel(["hi"])))
        print("genai_prices" in sys.modules)
        """
    )
    assert out == "False"

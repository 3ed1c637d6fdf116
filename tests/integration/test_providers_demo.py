"""``python -m lazybridge demo`` runs end to end against the fake server and says so."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_runs_against_the_fake_server() -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "lazybridge", "demo", "--latency", "0.05"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Providers: the fake provider server on http://127.0.0.1:" in out
    assert "[parallel ▶ 3 branches]" in out
    for name, tool in (("anthropic", "anthropic"), ("openai", "openai"), ("google", "google ai")):
        # The seed's search agents: each calls its own search tool, then answers from it.
        assert f'[branch {name}_search] tool: search_{name}_docs({{"query": "How does each' in out
        assert f"[branch {name}_search] tool result: search_{name}_docs -> [{tool} docs result for" in out
    assert "[branch anthropic_search] assistant: Anthropic constrains" in out
    assert "Answer (claude-opus-4-7):" in out and "[google_search]" in out
    assert "7 model calls, 3 tool calls" in out

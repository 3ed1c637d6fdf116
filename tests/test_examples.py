"""Every script in examples/ runs offline (the embedded fake server) and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: A line (or fragment) each example must print when it runs against the fake server.
EXPECTED = {
    "01_simplest_fanout.py": "[gemini_view]\ngemini-3-flash-preview says: What are the trade-offs",
    "02_search_chain.py": "[branch openai_search] tool: search_openai_docs(",
    "03_limits_and_timeouts.py": "[slow] TimeoutError: branch 'slow' exceeded step_timeout=1s",
    "04_verbose_trace.py": "[done] branches=3 total_cost=$",
    "05_failure_isolation.py": "wrapper: ok=False, error=APIConnectionError; 2 of 3 answered",
    "06_synthesiser.py": "Summary: Global summary drawn from 3 regional briefings: us, eu, asia.",
    "07_trio_app.py": "trio app done: 2 questions x 2 branches, all ok=True",
    "08_asgi_server.py": "POST /ask -> 200",
    "09_hedged_request.py": "winner: gpt (openai/gpt-5.4-mini)",
}

_PROVIDER_VARS = ("API_KEY", "BASE_URL")


def clean_env() -> dict[str, str]:
    """The current environment without any provider key or base URL."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(_PROVIDER_VARS)}
    env.pop("PYTHONPATH", None)
    return env


def run_script(path: Path, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", str(path), *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=timeout,
        cwd=path.parent.parent,
        check=False,
    )


def test_every_example_is_covered() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_offline(name: str) -> None:
    result = run_script(EXAMPLES / name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(fake provider server on http://127.0.0.1:" in result.stdout
    assert EXPECTED[name] in result.stdout, result.stdout
    assert "Traceback" not in result.stderr, result.stderr

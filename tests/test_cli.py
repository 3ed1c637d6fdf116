"""``python -m lazybridge parallel`` end to end, as a subprocess, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys

_PROVIDER_VARS = ("API_KEY", "BASE_URL")
MODELS = ["--model", "claude-haiku-4-5", "--model", "gpt-5.4-mini"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(_PROVIDER_VARS)}
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "lazybridge", "parallel", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def test_fake_fan_out_prints_trace_join_and_table() -> None:
    result = cli("--fake", *MODELS, "q")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "[parallel ▶ 2 branches]" in out
    assert "[branch claude-haiku-4-5 model=claude-haiku-4-5] started" in out
    assert "[branch gpt-5.4-mini] done cost=$" in out
    assert "[claude-haiku-4-5]\nclaude-haiku-4-5 says: q\n\n[gpt-5.4-mini]\ngpt-5.4-mini says: q" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["branch", "model", "status"])
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("branch "))
    table = [line.split() for line in lines[header + 1 : header + 3]]
    assert [row[:3] for row in table] == [
        ["claude-haiku-4-5", "claude-haiku-4-5", "ok"],
        ["gpt-5.4-mini"] * 2 + ["ok"],
    ]
    assert all(row[3].startswith("$0.") and row[4].endswith("ms") for row in table)
    assert "total: 2 branches, cost $0." in out


def test_json_output() -> None:
    result = cli("--fake", "--json", "--system", "Be brief.", *MODELS, "q")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # nothing but the JSON on stdout: no trace
    assert data["ok"] is True
    assert (
        data["text"] == "[claude-haiku-4-5]\nclaude-haiku-4-5 says: q\n\n[gpt-5.4-mini]\ngpt-5.4-mini says: q"
    )
    assert [b["agent"] for b in data["branches"]] == ["claude-haiku-4-5", "gpt-5.4-mini"]
    assert set(data["branches"][0]) == {
        "agent", "model", "ok", "text", "error_type", "error_message",
        "cost_usd", "latency_ms", "input_tokens", "output_tokens",
    }  # fmt: skip
    assert all(b["ok"] and b["error_type"] is None and b["cost_usd"] > 0 for b in data["branches"])
    assert data["cost_usd"] == sum(b["cost_usd"] for b in data["branches"])


def test_unknown_model_is_a_usage_error() -> None:
    result = cli("--fake", "--model", "claude-haiku-4-5", "--model", "no-such-model", "q")
    assert result.returncode == 2
    assert "unknown model 'no-such-model'" in result.stderr
    assert "claude-*" in result.stderr and "gpt-*" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_keys_fail_the_branches_and_name_the_variable() -> None:
    result = cli(*MODELS, "q")  # no --fake and no keys in the environment: nothing reaches the network
    assert result.returncode == 1
    assert "AuthenticationError" in result.stderr
    assert "ANTHROPIC_API_KEY" in result.stderr and "OPENAI_API_KEY" in result.stderr
    assert "--fake" in result.stderr


def test_step_timeout_fails_only_the_slow_branch_run() -> None:
    result = cli(
        "--fake", "--json", "--latency", "2", "--step-timeout", "0.2", "--model", "claude-haiku-4-5", "q"
    )
    assert result.returncode == 1
    (branch,) = json.loads(result.stdout)["branches"]
    assert branch["ok"] is False and branch["error_type"] == "TimeoutError"
    assert "step_timeout=0.2s" in branch["error_message"]


def test_bad_limit_and_missing_model_exit_2() -> None:
    assert cli("--fake", "--concurrency-limit", "0", *MODELS, "q").returncode == 2
    missing = cli("q")
    assert missing.returncode == 2 and "--model" in missing.stderr

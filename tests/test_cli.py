"""``python -m lazybridge parallel`` end to end, as a subprocess, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

from lazybridge.testing import FakeProvider

_PROVIDER_VARS = ("API_KEY", "BASE_URL")
MODELS = ["--model", "claude-haiku-4-5", "--model", "gpt-5.4-mini"]


def cli(*args: str, python: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(_PROVIDER_VARS)}
    return subprocess.run(
        [sys.executable, "-W", "error", *python, "-m", "lazybridge", "parallel", *args],
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
    assert "╭" not in out and "\033[" not in out  # not a terminal: the plain trace, no live view


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


# -- a compat/ server ------------------------------------------------------------------


def test_base_url_and_max_tokens_reach_a_compat_server(
    shared_fake_provider: tuple[FakeProvider, str],
) -> None:
    """--base-url points a compat/ model at the server; --max-tokens is sent as its max_tokens."""
    fake, base_url = shared_fake_provider
    fake.reset()
    fake.chat_server = "llama-cpp-python"
    model = f"compat/smollm2-{uuid.uuid4().hex[:6]}"
    # A local model has no price: its warning is shown, not raised (as without -W error).
    shown = ("-W", "default:no price known for model")
    args = ("--json", "--base-url", f"{base_url}/v1", "--max-tokens", "64", "--model", model, "q")
    result = cli(*args, python=shown)
    assert result.returncode == 0, result.stdout + result.stderr
    (branch,) = json.loads(result.stdout)["branches"]
    assert branch["ok"] and branch["text"] == f"{model.removeprefix('compat/')} says: q"
    (request,) = fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["max_tokens"] == 64
    # No price is known for a local model: the warning says how to set one.
    assert f"set_price('compat', '{model.removeprefix('compat/')}'" in result.stderr


def test_a_compat_model_without_base_url_names_the_flag() -> None:
    result = cli("--model", "compat/smollm2", "q")
    assert result.returncode == 2
    assert "model 'compat/smollm2' needs --base-url" in result.stderr
    assert "base_url=" not in result.stderr and "Traceback" not in result.stderr
    bad = cli("--base-url", "localhost:8080/v1", "--model", "compat/smollm2", "q")
    assert bad.returncode == 2 and "--base-url must start with http:// or https://" in bad.stderr


def test_bad_max_tokens_and_base_url_with_fake_exit_2() -> None:
    zero = cli("--fake", "--max-tokens", "0", *MODELS, "q")
    assert zero.returncode == 2 and "argument --max-tokens: must be a whole number >= 1" in zero.stderr
    both = cli("--fake", "--base-url", "http://localhost:8080/v1", *MODELS, "q")
    assert both.returncode == 2 and "--fake and --base-url cannot be combined" in both.stderr

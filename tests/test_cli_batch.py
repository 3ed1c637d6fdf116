"""``lazybridge batch`` end to end, as a subprocess, offline (the fake provider on loopback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_PROVIDER_VARS = ("API_KEY", "BASE_URL")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.endswith(_PROVIDER_VARS)}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-W", "error", "-m", "lazybridge", "batch", "--no-progress", *args]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_command(*args), capture_output=True, text=True, env=_env(), timeout=60, check=False)


def write_tasks(path: Path, n: int, *, extra: str = "") -> None:
    lines = [json.dumps({"task": f"q{i}", "id": f"row-{i}"}) for i in range(n)]
    path.write_text("\n".join(lines) + "\n" + extra)


def read_results(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_task_becomes_one_output_line_with_its_fields(tmp_path: Path) -> None:
    tasks, out = tmp_path / "tasks.jsonl", tmp_path / "out.jsonl"
    write_tasks(tasks, 12)
    result = cli("--fake", "--latency", "0", "--model", "claude-haiku-4-5", "--input", str(tasks), "--output", str(out))
    assert result.returncode == 0, result.stderr
    rows = sorted(read_results(out), key=lambda row: row["index"])  # type: ignore[arg-type,return-value]
    assert [row["index"] for row in rows] == list(range(12))
    first = rows[0]
    assert first["id"] == "row-0" and first["ok"] is True and first["error_type"] is None
    assert first["text"] == "claude-haiku-4-5 says: q0"
    assert first["input_tokens"] and first["output_tokens"] and first["cost_usd"] and first["latency_ms"]


def test_a_panel_of_models_and_a_bad_line_gives_exit_1(tmp_path: Path) -> None:
    tasks, out = tmp_path / "tasks.jsonl", tmp_path / "out.jsonl"
    write_tasks(tasks, 3, extra="not json\n")
    result = cli(
        "--fake", "--latency", "0", "--model", "claude-haiku-4-5", "--model", "gpt-5.4-mini",
        "--input", str(tasks), "--output", str(out),
    )
    assert result.returncode == 1, result.stderr
    rows = {row["index"]: row for row in read_results(out)}
    assert rows[3]["ok"] is False and rows[3]["error_type"] == "InvalidInputLine"
    assert "[gpt-5.4-mini]\ngpt-5.4-mini says: q1" in str(rows[1]["text"])


def test_resume_skips_the_lines_already_in_the_output(tmp_path: Path) -> None:
    tasks, out = tmp_path / "tasks.jsonl", tmp_path / "out.jsonl"
    write_tasks(tasks, 10)
    out.write_text("".join(json.dumps({"index": i, "text": "earlier", "ok": True}) + "\n" for i in range(6)))
    refused = cli("--fake", "--model", "claude-haiku-4-5", "--input", str(tasks), "--output", str(out))
    assert refused.returncode == 2 and "--resume" in refused.stderr
    result = cli(
        "--fake", "--latency", "0", "--model", "claude-haiku-4-5", "--input", str(tasks), "--output", str(out),
        "--resume",
    )
    assert result.returncode == 0, result.stderr
    rows = read_results(out)
    assert sorted(row["index"] for row in rows) == list(range(10))  # type: ignore[type-var]
    assert [row["text"] for row in rows[:6]] == ["earlier"] * 6


def test_ctrl_c_stops_within_seconds_with_every_finished_result_written(tmp_path: Path) -> None:
    tasks, out = tmp_path / "tasks.jsonl", tmp_path / "out.jsonl"
    write_tasks(tasks, 200)
    process = subprocess.Popen(
        _command("--fake", "--latency", "0.2", "--concurrency", "2", "--model", "claude-haiku-4-5",
                 "--input", str(tasks), "--output", str(out)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )
    try:
        # Wait (polling the file, with a deadline) until results are being written.
        deadline = time.monotonic() + 30
        while not (out.exists() and out.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert out.stat().st_size > 0
        process.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        _, stderr = process.communicate(timeout=10)
        assert time.monotonic() - stopped < 5
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "--resume" in stderr
    rows = read_results(out)  # every line whole
    assert 0 < len(rows) < 200
    resumed = cli("--fake", "--latency", "0", "--model", "claude-haiku-4-5", "--input", str(tasks),
                  "--output", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(row["index"] for row in read_results(out)) == list(range(200))  # type: ignore[type-var]

"""``lazybridge batch`` end to end, as a subprocess, offline (the fake provider on loopback)."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

_PROVIDER_VARS = ("API_KEY", "BASE_URL")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.endswith(_PROVIDER_VARS)}


def _command(*args: str, progress: bool = False) -> list[str]:
    quiet = [] if progress else ["--no-progress"]
    return [sys.executable, "-W", "error", "-m", "lazybridge", "batch", *quiet, *args]


def cli(*args: str, progress: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(*args, progress=progress), capture_output=True, text=True, env=_env(), timeout=60, check=False
    )


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
    checkpoint = Path(f"{out}.checkpoint.sqlite")
    assert checkpoint.exists()  # kept for --resume
    refused = cli("--fake", "--model", "claude-haiku-4-5", "--input", str(tasks), "--output", str(tmp_path / "new.jsonl"),
                  "--checkpoint", str(checkpoint))
    assert refused.returncode == 2 and "checkpoint" in refused.stderr and "--resume" in refused.stderr
    resumed = cli("--fake", "--latency", "0", "--model", "claude-haiku-4-5", "--input", str(tasks),
                  "--output", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(row["index"] for row in read_results(out)) == list(range(200))  # type: ignore[type-var]
    assert not checkpoint.exists()  # the run went to the end: the output holds everything


def cut_mid_line(path: Path, whole_lines: int) -> None:
    """Keep ``whole_lines`` lines and half of the next one: the output of a process killed mid-write."""
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:whole_lines]) + lines[whole_lines][: len(lines[whole_lines]) // 2])


def test_resume_after_a_torn_last_line_without_a_checkpoint(tmp_path: Path) -> None:
    tasks, out = tmp_path / "tasks.jsonl", tmp_path / "out.jsonl"
    write_tasks(tasks, 10)
    done = cli("--fake", "--latency", "0", "--model", "claude-haiku-4-5", "--input", str(tasks), "--output", str(out))
    assert done.returncode == 0, done.stderr
    cut_mid_line(out, 6)  # the default checkpoint was removed at the end: the output alone
    result = cli(
        "--fake", "--latency", "0", "--model", "claude-haiku-4-5", "--input", str(tasks), "--output", str(out),
        "--resume",
    )
    assert result.returncode == 0, result.stderr
    rows = read_results(out)  # every line parses: nothing was glued to the torn one
    assert sorted(row["index"] for row in rows) == list(range(10))  # type: ignore[type-var]


def test_resume_writes_from_the_checkpoint_what_the_output_lacks_and_runs_only_the_rest(tmp_path: Path) -> None:
    tasks, out, checkpoint = tmp_path / "tasks.jsonl", tmp_path / "out.jsonl", tmp_path / "run.sqlite"
    write_tasks(tasks, 10)
    first = cli(
        "--fake", "--latency", "0", "--model", "claude-haiku-4-5", "--input", str(tasks), "--output", str(out),
        "--checkpoint", str(checkpoint),
    )
    assert first.returncode == 0, first.stderr
    assert checkpoint.exists()  # named with --checkpoint: kept
    with sqlite3.connect(checkpoint) as conn:  # as if the run died before these three were stored
        kept = sorted(row["index"] for row in read_results(out))[:7]  # type: ignore[type-var]
        conn.execute(f"DELETE FROM results WHERE idx NOT IN ({','.join(map(str, kept))})")
    # The process died after storing seven results but writing only four lines and half of the fifth.
    written = [line for line in out.read_text().splitlines() if json.loads(line)["index"] in kept[:5]]
    out.write_text("\n".join(written[:4]) + "\n" + written[4][:20])
    # A different model on resume tells a result run again from one read back.
    result = cli(
        "--fake", "--latency", "0", "--model", "gpt-5.4-mini", "--input", str(tasks), "--output", str(out),
        "--checkpoint", str(checkpoint), "--resume",
    )
    assert result.returncode == 0, result.stderr
    assert "(3 from the checkpoint), 4 already there" in result.stderr
    rows = read_results(out)
    assert sorted(row["index"] for row in rows) == list(range(10))  # type: ignore[type-var]  # each once
    by_model = {row["index"]: str(row["text"]).split(" says")[0] for row in rows}
    assert {i for i, model in by_model.items() if model == "claude-haiku-4-5"} == set(kept)
    assert all(row["id"] == f"row-{row['index']}" for row in rows)  # fields carried for recovered lines too


def test_progress_on_a_log_has_the_total_and_an_eta(tmp_path: Path) -> None:
    tasks, out = tmp_path / "tasks.jsonl", tmp_path / "out.jsonl"
    write_tasks(tasks, 10, extra="\n  \n")  # blank lines are not tasks
    out.write_text("".join(json.dumps({"index": i, "text": "earlier", "ok": True}) + "\n" for i in range(4)))
    result = cli(
        "--fake", "--latency", "0", "--model", "claude-haiku-4-5", "--input", str(tasks), "--output", str(out),
        "--resume", progress=True,
    )
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("batch: ")]
    assert progress and re.match(r"batch: 6/6 done, 0 failed, 0 in flight, .* tasks/s, ETA 0s$", progress[-1])

"""The ``lazybridge`` command as a user meets it: help, usage errors, exit codes, and a real terminal.

Every test runs the command as a subprocess; the terminal tests give it a
pseudo-terminal (the ``pty`` module), so colour and wrapping are decided
exactly as in a user's shell.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("lazybridge")
_PROVIDER_VARS = ("API_KEY", "BASE_URL")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(_PROVIDER_VARS) and k != "NO_COLOR"}
    env.update(extra)
    return env


def run(*args: str, module: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "lazybridge"] if module else [str(SCRIPT)]
    return subprocess.run([*command, *args], capture_output=True, text=True, env=_env(), timeout=60, check=False)


def in_terminal(*args: str, columns: int = 80, **env: str) -> tuple[int, str]:
    """Run the console script attached to a pseudo-terminal ``columns`` wide; (exit code, everything shown)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdin/stdout/stderr are the terminal
        os.environ.clear()
        os.environ.update(_env(COLUMNS=str(columns), **env))
        os.execv(str(SCRIPT), [str(SCRIPT), *args])
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode().replace("\r\n", "\n")


pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is not installed")

SLOW_FAKE = ["parallel", "--fake", "--latency", "2", "--step-timeout", "0.05", "--model", "claude-haiku-4-5", "q"]


# -- help and usage ------------------------------------------------------------------------


def test_top_level_help_describes_every_command_and_the_exit_codes() -> None:
    result = run("--help")
    assert result.returncode == 0
    out = result.stdout
    assert out.startswith("usage: lazybridge ")
    for command in ("demo", "parallel"):
        assert re.search(rf"^  {command}\s+\S", out, re.M), command
    assert "exit codes:" in out and "  2  usage error" in out
    assert "``" not in out and ":mod:" not in out  # no raw markup


def test_usage_line_names_how_it_was_run() -> None:
    assert run("--help").stdout.startswith("usage: lazybridge ")
    assert run("--help", module=True).stdout.startswith("usage: python -m lazybridge ")


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and re.fullmatch(r"lazybridge \d+\.\d+\.\d+\S*\n", result.stdout)


def test_bare_command_prints_help_and_exits_2() -> None:
    result = run()
    assert result.returncode == 2
    assert "usage: lazybridge" in result.stderr and "exit codes:" in result.stderr


def test_a_mistyped_flag_is_reported_as_unknown_not_as_a_missing_one() -> None:
    result = run("parallel", "--modle", "claude-haiku-4-5", "q")
    assert result.returncode == 2
    assert "unrecognized arguments: --modle" in result.stderr
    assert "required" not in result.stderr
    # No abbreviations either: --mod is not taken for --model.
    assert "unrecognized arguments: --mod" in run("parallel", "--mod", "claude-haiku-4-5", "q").stderr


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--concurrency-limit", "0"), ("--step-timeout", "-1"), ("--step-timeout", "nan"), ("--latency", "-0.5")],
)
def test_bad_values_are_reported_by_their_flag(flag: str, value: str) -> None:
    result = run("parallel", "--fake", flag, value, "--model", "claude-haiku-4-5", "q")
    assert result.returncode == 2
    assert f"argument {flag}: " in result.stderr
    assert "concurrency_limit" not in result.stderr and "step_timeout" not in result.stderr


def test_parallel_help_lists_the_exit_codes() -> None:
    out = run("parallel", "--help").stdout
    assert "exit codes:" in out and "1  some branch failed" in out


# -- output -----------------------------------------------------------------------------------


def test_one_branch_is_one_branch_and_its_error_is_listed_once() -> None:
    result = run(*SLOW_FAKE)
    assert result.returncode == 1
    assert "total: 1 branch," in result.stdout
    assert "1 of 1 branch failed:" in result.stderr
    message = "exceeded step_timeout=0.05s"
    # Once in the live trace (as it happened), once in the failure list; the join points at it.
    assert result.stdout.count(message) == 1 and result.stderr.count(message) == 1
    assert "(failed: TimeoutError, see below)" in result.stdout
    assert "\033[" not in result.stdout + result.stderr  # not a terminal: no colour


def test_failed_rows_are_red_in_a_terminal() -> None:
    code, shown = in_terminal(*SLOW_FAKE)
    assert code == 1
    assert "\033[1;31mFAILED\033[0m" in shown


def test_no_color_turns_colour_off_in_a_terminal() -> None:
    code, shown = in_terminal(*SLOW_FAKE, NO_COLOR="1")
    assert code == 1
    assert "FAILED" in shown and "\033[" not in shown


def test_answers_are_wrapped_to_the_terminal_at_word_boundaries() -> None:
    words = " ".join(f"word{i:03d}" for i in range(60))  # one 479-character line
    code, shown = in_terminal("parallel", "--fake", "--latency", "0", "--model", "claude-haiku-4-5", words, columns=60)
    assert code == 0
    shown = re.sub(r"\033\[[0-9;]*m", "", shown)
    answer = shown[shown.index("[claude-haiku-4-5]\n") :].split("\n\n")[0].splitlines()[1:]
    assert len(answer) > 5
    assert all(len(line) <= 60 for line in answer), answer
    assert " ".join(answer) == f"claude-haiku-4-5 says: {words}"  # nothing cut mid-word


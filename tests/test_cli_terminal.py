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
    assert "[parallel ▶ 1 branch]" in result.stdout and "total: 1 branch," in result.stdout
    assert "1 of 1 branch failed:" in result.stderr
    message = "exceeded step_timeout=0.05s"
    # Once in the live trace (as it happened), once in the failure list; the join points at it.
    assert result.stdout.count(message) == 1 and result.stderr.count(message) == 1
    assert "(failed: TimeoutError, see below)" in result.stdout
    assert "\033[" not in result.stdout + result.stderr  # not a terminal: no colour


_SGR = re.compile(r"\033\[[0-9;]*m")
_CSI = re.compile(r"\033\[[0-9;?]*[A-Za-z]")  # colour and cursor movement
TWO_MODELS = ["--model", "claude-haiku-4-5", "--model", "gpt-5.4-mini"]


def final_screen(shown: str) -> str:
    """What stays on the screen after the live view: from its last frame (shown in full) on, uncoloured."""
    assert "\033[?25h" in shown, "the live view never ran"  # rich shows the cursor again when it stops
    return _CSI.sub("", shown.rsplit("\033[?25h", 1)[1]).lstrip("\n")


def in_terminal_without_rich(*args: str, columns: int = 80) -> tuple[int, str]:
    """Like :func:`in_terminal`, in an interpreter where ``import rich`` fails."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.clear()
        os.environ.update(_env(COLUMNS=str(columns)))
        code = "import sys; sys.modules['rich'] = None; sys.argv[0] = 'lazybridge'; "
        code += "from lazybridge.__main__ import main; sys.exit(main())"
        os.execv(sys.executable, [sys.executable, "-c", code, *args])
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode().replace("\r\n", "\n")


def test_failed_rows_are_red_in_a_terminal() -> None:
    code, shown = in_terminal(*SLOW_FAKE)
    assert code == 1
    assert "\033[1;31mFAILED\033[0m" in shown


def test_no_color_turns_colour_off_in_a_terminal() -> None:
    code, shown = in_terminal(*SLOW_FAKE, NO_COLOR="1")
    assert code == 1
    assert "FAILED" in shown
    # No colour or style at all; the live view still moves the cursor (that is not colour).
    assert _SGR.search(shown) is None


def test_live_view_shows_every_model_side_by_side_with_its_cost_and_latency() -> None:
    code, shown = in_terminal("parallel", "--fake", "--latency", "0", *TWO_MODELS, "q", columns=100)
    assert code == 0
    screen = final_screen(shown)
    lines = screen.splitlines()
    # One row of two panels: both answers on the same line, each in its own box.
    assert any("claude-haiku-4-5 says: q" in line and "gpt-5.4-mini says: q" in line for line in lines), screen
    titles = next(line for line in lines if "claude-haiku-4-5" in line and "╭" in line)
    assert titles.count("╭") == 2 and "gpt-5.4-mini" in titles
    footers = [line for line in lines if line.startswith("╰")]
    assert len(footers) == 1 and len(re.findall(r"ok · \$0\.\d{5} · \d+ms · \d+/\d+ tokens", footers[0])) == 2
    assert re.search(r"^total: 2 branches, cost \$0\.\d{5}, wall \d+ms$", screen, re.M)
    assert all(len(line) <= 100 for line in lines)
    assert "[parallel ▶" not in shown  # the live view replaces the plain trace


def test_live_view_shows_the_branches_answering_before_they_finish() -> None:
    code, shown = in_terminal("parallel", "--fake", "--latency", "0.5", *TWO_MODELS, "q", columns=100)
    assert code == 0
    frames = _SGR.sub("", shown.rsplit("\033[?25h", 1)[0])
    assert frames.count("answering…") >= 2  # a frame with both panels still waiting
    assert "answering…" not in final_screen(shown)


def test_live_view_marks_a_failed_branch_and_lists_its_error() -> None:
    code, shown = in_terminal(*SLOW_FAKE, columns=100)
    assert code == 1
    screen = final_screen(shown)
    assert re.search(r"╰─+ FAILED · TimeoutError · \d+ms ─+╯", screen), screen
    assert "TimeoutError: branch 'claude-haiku-4-5' exceeded step_timeout=0.05s" in screen.replace("│", "")
    assert "total: 1 branch," in screen and "1 of 1 branch failed:" in screen


def test_live_view_stacks_the_panels_when_the_terminal_is_narrow() -> None:
    words = " ".join(f"word{i:03d}" for i in range(60))  # one 479-character line
    code, shown = in_terminal("parallel", "--fake", "--latency", "0", *TWO_MODELS, words, columns=50)
    assert code == 0
    lines = final_screen(shown).splitlines()
    assert all(len(line) <= 50 for line in lines), lines
    assert [line.count("╭") for line in lines if "╭" in line] == [1, 1]  # one panel per row
    # Each answer is wrapped inside its box at word boundaries: nothing cut mid-word.
    top = next(i for i, line in enumerate(lines) if "claude-haiku-4-5" in line and "╭" in line)
    bottom = next(i for i in range(top, len(lines)) if lines[i].startswith("╰"))
    body = [line.strip("│ ") for line in lines[top + 1 : bottom]]
    assert len(body) > 5 and " ".join(body) == f"claude-haiku-4-5 says: {words}"


def test_without_rich_a_terminal_gets_the_plain_trace() -> None:
    code, shown = in_terminal_without_rich("parallel", "--fake", "--latency", "0", *TWO_MODELS, "q")
    assert code == 0, shown
    shown = _SGR.sub("", shown)
    assert "[parallel ▶ 2 branches]" in shown and "[gpt-5.4-mini]\ngpt-5.4-mini says: q" in shown
    assert "╭" not in shown and "\033[?25l" not in shown


def test_batch_progress_on_a_terminal_is_a_bar_with_the_total_and_an_eta(tmp_path: Path) -> None:
    tasks, out = tmp_path / "tasks.jsonl", tmp_path / "out.jsonl"
    tasks.write_text("".join(f'{{"task": "q{i}"}}\n' for i in range(12)) + "\n")
    code, shown = in_terminal(
        "batch", "--fake", "--latency", "0", "--model", "claude-haiku-4-5", "--input", str(tasks), "--output", str(out)
    )
    assert code == 0, shown
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)  # without the terminal's control codes
    frames = text.split("\n")[0].split("\r")  # the live bar, redrawn in place
    last = frames[-1].split()
    assert last[0] == "batch" and "12/12" in last  # the total, counted from the input before the batch starts
    # The last two columns: elapsed, then remaining -- a time, not rich's "-:--:--" of an unknown total.
    assert re.fullmatch(r"\d+:\d\d:\d\d", last[-1]), frames[-1]
    assert re.search(r"^batch: 12/12 done, .*, ETA 0s$", text, re.M)  # and the closing summary line

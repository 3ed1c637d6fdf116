"""Ctrl-C a sync call, many times, each in its own process; print a JSON summary.

Usage: ``python ctrl_c_driver.py HOST RUNS [BATCH]`` with HOST one of ``script``
(a plain script), ``asyncio`` (a running asyncio loop, as in a notebook cell)
or ``trio`` (inside ``trio.run``).

Each run is a forked child (the import of lazybridge is paid once, so a run
costs milliseconds): it starts ``Agent.parallel(a, b)("q")`` whose two branches
wait forever, sends a real SIGINT to its own main thread once both wait, and
reports over a pipe what happened: one ``cancelled <branch>`` line per branch
cancelled, then ``KeyboardInterrupt`` when the call re-raised it, then the
sync worker threads still alive.  A child that has not exited by the deadline
is hung: it is killed and counted.
"""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import sys
import threading
import time

import anyio
import trio

from lazybridge import Agent
from lazybridge.testing import MockAgent

#: Seconds a run may take before it counts as hung (a healthy run takes milliseconds).
DEADLINE = 5.0

_out = -1


def say(line: str) -> None:
    os.write(_out, line.encode() + b"\n")


def run_once(host: str) -> None:
    """The interrupted script (runs in a forked child)."""
    lock = threading.Lock()
    waiting: list[str] = []
    both_wait = threading.Event()

    async def hang(task: str) -> str:
        with lock:
            branch = "ab"[len(waiting)]
            waiting.append(branch)
            if len(waiting) == 2:
                both_wait.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            say(f"cancelled {branch}")
            raise
        return "never"

    def ctrl_c() -> None:
        both_wait.wait()
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # type: ignore[arg-type]

    panel = Agent.parallel(MockAgent(hang, name="a"), MockAgent(hang, name="b"))

    async def cell() -> object:
        return panel("q")

    threading.Thread(target=ctrl_c, daemon=True).start()
    try:
        if host == "script":
            panel("q")
        elif host == "asyncio":
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(cell())
            finally:
                loop.close()
        else:
            trio.run(cell)
    except KeyboardInterrupt:
        say("KeyboardInterrupt")
    say("workers " + ",".join(t.name for t in threading.enumerate() if t.name == "lazybridge-sync"))


def fork_run(host: str) -> tuple[int, int]:
    """Start one run in a child process; return (pid, read end of its report pipe)."""
    global _out
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        _out = write
        code = 0
        try:
            run_once(host)
        except BaseException as exc:  # reported, never raised into the parent's frames
            say(f"error {exc!r}")
            code = 1
        os._exit(code)
    os.close(write)
    return pid, read


def collect(children: list[tuple[int, int]]) -> tuple[list[str], int]:
    """Read every child's report until it exits or the deadline passes; kill the hung ones."""
    reports = {read: b"" for _, read in children}
    sel = selectors.DefaultSelector()
    for _, read in children:
        sel.register(read, selectors.EVENT_READ)
    deadline = time.monotonic() + DEADLINE
    while sel.get_map() and (left := deadline - time.monotonic()) > 0:
        for key, _ in sel.select(left):
            chunk = os.read(key.fd, 4096)
            reports[key.fd] += chunk
            if not chunk:  # EOF: the child exited
                sel.unregister(key.fd)
    hung = 0
    for pid, read in children:
        if read in sel.get_map():
            hung += 1
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read)
    sel.close()
    return [reports[read].decode() for _, read in children], hung


def main() -> None:
    host, runs = sys.argv[1], int(sys.argv[2])
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    # A process started in the background by a non-interactive shell inherits
    # SIGINT ignored: restore Python's default so SIGINT raises KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    expected = "cancelled a\ncancelled b\nKeyboardInterrupt\nworkers \n"
    hung, bad = 0, []
    started = time.monotonic()
    for first in range(0, runs, batch):
        children = [fork_run(host) for _ in range(min(batch, runs - first))]
        reports, batch_hung = collect(children)
        hung += batch_hung
        for report in reports:
            lines = report.splitlines(keepends=True)
            if "".join(sorted(lines[:2]) + lines[2:]) != expected:
                bad.append(report)
    summary = {"host": host, "runs": runs, "hung": hung, "bad": bad}
    summary["seconds"] = round(time.monotonic() - started, 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

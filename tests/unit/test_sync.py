"""The sync form works in a script, inside a running asyncio loop and inside trio.run."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import trio

from lazybridge import Agent, Envelope
from lazybridge.testing import MockAgent


def panel() -> object:
    return Agent.parallel(MockAgent("a", name="a", delay=0.01), MockAgent("b", name="b"))


def test_sync_call_in_a_plain_script() -> None:
    threads = threading.active_count()
    env = panel()("t")  # type: ignore[operator]
    assert isinstance(env, Envelope) and env.text() == "[a]\na\n\n[b]\nb"
    assert threading.active_count() == threads


def test_sync_call_inside_a_running_asyncio_loop() -> None:
    async def notebook_cell() -> Envelope:
        return panel()("t")  # type: ignore[operator,no-any-return]

    threads = threading.active_count()
    env = asyncio.run(notebook_cell())
    assert env.text() == "[a]\na\n\n[b]\nb"
    assert threading.active_count() == threads  # the worker thread was joined


def test_sync_call_inside_trio_run() -> None:
    async def trio_app() -> Envelope:
        return panel()("t")  # type: ignore[operator,no-any-return]

    threads = threading.active_count()
    env = trio.run(trio_app)
    assert env.text() == "[a]\na\n\n[b]\nb"
    assert threading.active_count() == threads


def test_sync_call_reraises_a_programming_error() -> None:
    agent = MockAgent("x")
    try:
        agent(42)  # type: ignore[arg-type]
    except TypeError as exc:
        assert "task must be a str or an Envelope" in str(exc)
    else:
        raise AssertionError("expected TypeError")


class _Hang:
    """A branch that signals it started, then waits until cancelled (and records that it was)."""

    def __init__(self, started: threading.Event) -> None:
        self.started = started
        self.cancelled = 0

    async def __call__(self, task: str) -> str:
        self.started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise
        return "never"


def _interrupt_main_thread_when(started: threading.Event) -> threading.Thread:
    """Send a real SIGINT (Ctrl-C) to the main thread once the run is under way."""

    def send() -> None:
        assert started.wait(10), "the run never started"
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # type: ignore[arg-type]

    sender = threading.Thread(target=send)
    sender.start()
    return sender


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt for the test, as in a terminal.

    A process started in the background by a non-interactive shell inherits
    SIGINT *ignored*; then no loop installs a handler and a real SIGINT is
    dropped, so these tests would hang for a reason that is not the library's.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _sync_threads() -> list[threading.Thread]:
    """Worker threads of sync calls that have not ended (is_alive() is not trusted: on 3.11 an
    interrupted join can mark a running thread stopped; a thread leaves enumerate() when it ends)."""
    return [t for t in threading.enumerate() if t.name == "lazybridge-sync"]


def test_ctrl_c_during_a_sync_call_inside_trio_cancels_the_run_and_leaves_no_thread(
    ctrl_c_raises: None,
) -> None:
    started = threading.Event()
    hang = _Hang(started)
    slow = Agent.parallel(MockAgent(hang, name="a"), MockAgent(hang, name="b"))

    async def trio_app() -> Envelope:
        return slow("t")

    sender = _interrupt_main_thread_when(started)
    with pytest.raises(KeyboardInterrupt):
        trio.run(trio_app)
    sender.join()
    assert hang.cancelled == 2  # both branches were cancelled before the call re-raised
    assert _sync_threads() == []


def test_ctrl_c_during_a_sync_call_inside_a_running_asyncio_loop_cancels_the_run(ctrl_c_raises: None) -> None:
    """As in a notebook cell: the kernel's loop runs, Ctrl-C raises KeyboardInterrupt in the main thread."""
    started = threading.Event()
    hang = _Hang(started)
    agent = MockAgent(hang, name="slow")

    async def cell() -> Envelope:
        return agent("t")

    loop = asyncio.new_event_loop()
    sender = _interrupt_main_thread_when(started)
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(cell())
    finally:
        loop.close()
    sender.join()
    assert hang.cancelled == 1
    assert _sync_threads() == []


def test_ctrl_c_during_a_sync_call_in_a_plain_script_cancels_the_run(ctrl_c_raises: None) -> None:
    started = threading.Event()
    hang = _Hang(started)
    slow = Agent.parallel(MockAgent(hang, name="a"), MockAgent(hang, name="b"))
    sender = _interrupt_main_thread_when(started)
    with pytest.raises(KeyboardInterrupt):
        slow("t")
    sender.join()
    assert hang.cancelled == 2


DRIVER = Path(__file__).with_name("ctrl_c_driver.py")


@pytest.mark.parametrize("host", ["script", "asyncio", "trio"])
def test_ctrl_c_never_hangs_a_sync_call_and_always_cancels_every_branch(host: str) -> None:
    """Stress: 40 processes each Ctrl-C a two-branch sync call the moment both branches wait.

    In a plain script this hung about one run in four before the loop was given
    a signal wakeup fd (see run_sync).  Every run must exit, with both branches
    cancelled before KeyboardInterrupt reached the caller, and no worker thread left.
    """
    done = subprocess.run(
        [sys.executable, str(DRIVER), host, "40", "10"],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["hung"] == 0, summary
    assert summary["bad"] == [], summary


def test_a_sync_call_leaves_the_signal_configuration_as_it_found_it() -> None:
    """The wakeup fd a plain-script call sets for its run is removed; one set before is
    restored, and a signal that arrives meanwhile still reaches it."""
    receive, send = socket.socketpair()
    receive.setblocking(False)
    send.setblocking(False)
    handler = signal.getsignal(signal.SIGINT)
    got: list[int] = []
    previous_usr1 = signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
    before = signal.set_wakeup_fd(send.fileno())

    async def raise_usr1(task: str) -> str:
        signal.raise_signal(signal.SIGUSR1)
        return "ok"

    try:
        assert panel()("t").text() == "[a]\na\n\n[b]\nb"  # type: ignore[operator]
        assert MockAgent(raise_usr1)("t").text() == "ok"
    finally:
        after = signal.set_wakeup_fd(before)
        signal.signal(signal.SIGUSR1, previous_usr1)
    try:
        assert after == send.fileno()
        assert signal.getsignal(signal.SIGINT) is handler
        assert got == [signal.SIGUSR1]
        assert receive.recv(16) == bytes([signal.SIGUSR1])  # forwarded during the run
    finally:
        receive.close()
        send.close()


def test_a_sync_call_from_a_thread_other_than_the_main_one() -> None:
    """Off the main thread signals cannot be set up; the call works and touches none."""
    out: list[str] = []
    worker = threading.Thread(target=lambda: out.append(panel()("t").text()))  # type: ignore[operator]
    worker.start()
    worker.join()
    assert out == ["[a]\na\n\n[b]\nb"]

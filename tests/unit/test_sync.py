"""The sync form works in a script, inside a running asyncio loop and inside trio.run."""

from __future__ import annotations

import asyncio
import threading

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

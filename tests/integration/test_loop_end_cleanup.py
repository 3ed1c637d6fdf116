"""Pooled HTTP clients are closed when their event loop ends, even if the application never called aclose()."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lazybridge.providers._transport import ENV_VAR

_LOOPS_SCRIPT = """
import gc, os, sys
import anyio
from lazybridge import Agent
from lazybridge.engines.llm import LLMEngine
from lazybridge.testing import FakeProvider, serve_fake_provider

def client_sockets(port):
    # This process's TCP sockets whose peer is the fake server: the clients' connections.
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                    count += 1
    return count

backend, runs = sys.argv[1], int(sys.argv[2])
with serve_fake_provider(FakeProvider()) as base_url:
    port = int(base_url.rsplit(":", 1)[1].split("/")[0])

    async def main():
        panel = Agent.parallel(
            *[Agent(engine=LLMEngine("claude-haiku-4-5", base_url=base_url, api_key="k"), name=f"b{i}")
              for i in range(4)]
        )
        env = await panel.run("hi")  # and no lazybridge.aclose(): the application forgot it
        assert env.ok, env.error

    for _ in range(runs):
        anyio.run(main, backend=backend)
    gc.collect()
    print(client_sockets(port))
"""


@pytest.mark.parametrize(
    ("backend", "transport"),
    [
        pytest.param("asyncio", "aiohttp", id="asyncio-aiohttp"),
        pytest.param("asyncio", "httpx", id="asyncio-httpx"),
        pytest.param("trio", "httpx", id="trio"),
    ],
)
def test_pooled_clients_are_closed_when_their_loop_ends(backend: str, transport: str) -> None:
    """Three event loops that never call lazybridge.aclose() leave no keep-alive socket behind.

    On the aiohttp transport that includes its session and connector: an
    unclosed one warns (ResourceWarning, an error here) when collected.
    """
    if not os.path.exists("/proc/self/net/tcp"):
        pytest.skip("counts sockets through /proc (Linux)")
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-c", _LOOPS_SCRIPT, backend, "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, ENV_VAR: transport},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0"], done.stderr

"""Connections opened per request in a fan-out, per transport and keep-alive count (issue 17).

Why the pool keeps 20 connections alive on httpx's transport and every one on
aiohttp's (see ``DEFAULT_LIMITS`` in ``lazybridge/providers/_http.py``):
``Agent.parallel`` over N ``LLMEngine`` agents against the fake provider on
loopback (in a thread of this process), ``limits=httpx.Limits(100, keep)``,
for each transport (``http_transport=``) and keep-alive count.  The server
records each request's client port; distinct ports are connections opened.

Columns: connections opened, per request, wall time, and the client thread's
CPU per request (``time.thread_time`` of the event loop's thread: the server
thread is not counted)::

    python benchmarks/keepalive.py --n 1000 --latency 0.1
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio
import httpx

import lazybridge
from lazybridge import Agent, LLMEngine
from lazybridge.testing import FakeProvider, Reply, serve_fake_provider

CASES = [("httpx", 20), ("httpx", 100), ("aiohttp", 20), ("aiohttp", 100)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="branches (default 1000)")
    parser.add_argument("--latency", type=float, default=0.1, help="server delay per answer, s (default 0.1)")
    args = parser.parse_args()
    fake = FakeProvider()
    ports: set[int] = set()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("client"):
            ports.add(scope["client"][1])
        await fake(scope, receive, send)

    async def one(base_url: str, transport: str, keep: int) -> str:
        ports.clear()
        fake.reset()
        for _ in range(args.n):
            fake.push(Reply(text="ok", delay=args.latency))
        engine = LLMEngine(
            "claude-haiku-4-5", base_url=base_url, api_key="bench", http_transport=transport,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=keep),
        )
        panel = Agent.parallel(*(Agent(engine=engine, name=f"b{i}") for i in range(args.n)))
        started, cpu = time.perf_counter(), time.thread_time()
        env = await panel.run("go")
        wall, cpu = time.perf_counter() - started, time.thread_time() - cpu
        await lazybridge.aclose()
        errors = sum(1 for branch in env if not branch.ok)
        return (
            f"| {transport:8} | {keep:4} | {len(ports):6} | {len(ports) / args.n:8.3f} | {wall:7.2f} "
            f"| {cpu / args.n * 1000:10.2f} | {errors:6} |"
        )

    print(f"N = {args.n}, latency {args.latency} s, 100 connections\n")
    print("| transport | keep | conns | per req | wall s | cpu ms/req | errors |")
    print("|---|---|---|---|---|---|---|")
    with serve_fake_provider(app) as base_url:
        for transport, keep in CASES:
            print(anyio.run(one, base_url, transport, keep), flush=True)


if __name__ == "__main__":
    main()

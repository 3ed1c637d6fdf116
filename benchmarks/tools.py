"""One model turn asking for N concurrent tool calls, against the fake provider on loopback.

The model (the fake server) answers the first request with N tool calls --
half to a sync tool (``time.sleep(delay)``, run in worker threads), half to
an async one (``anyio.sleep(delay)``) -- and the second with a final answer.
The *tool phase* is the time from the first ``model_response`` event to the
second ``model_request`` event: argument checking, dispatch, the calls
themselves, results, events and building the next request.

The floor is the same N functions called directly in a bare task group
(sync ones through ``anyio.to_thread.run_sync``), with no LazyBridge at all.

Columns:
  phase        best-of-R wall time of the tool phase
  slowest      the slowest single tool call in that run (measured inside the tool)
  ratio        phase / slowest (target <= 1.5)
  floor        best-of-R wall time of the bare task group
  ovh wall     (phase - floor) / N, per call (µs)
  ovh cpu      (CPU during the phase - CPU of the floor) / N, per call (µs)

The default thread limiter has 40 tokens, so the N/2 = 25 sync tools all
get a thread at once.

Usage:  python benchmarks/tools.py [--calls 50] [--delay 0.02] [--repeats 7]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from typing import Any

import anyio
import anyio.to_thread

import lazybridge
from lazybridge import Agent, LLMEngine, events
from lazybridge.events import Event, RunContext
from lazybridge.testing import FakeProvider, Reply, serve_fake_provider

KEY = "sk-bench-0123456789"


class PhaseClock:
    """A sink timing the tool phase: first model_response -> next model_request."""

    def __init__(self) -> None:
        self.start: tuple[float, float] | None = None
        self.end: tuple[float, float] | None = None

    def __call__(self, event: Event) -> None:
        if event.kind == events.MODEL_RESPONSE and self.start is None:
            self.start = (time.perf_counter(), time.process_time())
        elif event.kind == events.MODEL_REQUEST and self.start is not None and self.end is None:
            self.end = (time.perf_counter(), time.process_time())

    def wall_cpu(self) -> tuple[float, float]:
        assert self.start is not None and self.end is not None
        return self.end[0] - self.start[0], self.end[1] - self.start[1]


def make_tools(delay: float, durations: list[float]) -> tuple[Any, Any]:
    def sync_tool(n: int) -> str:
        """Sleep in a thread."""
        began = time.perf_counter()
        time.sleep(delay)
        durations.append(time.perf_counter() - began)
        return f"sync {n}"

    async def async_tool(n: int) -> str:
        """Sleep in the loop."""
        began = time.perf_counter()
        await anyio.sleep(delay)
        durations.append(time.perf_counter() - began)
        return f"async {n}"

    return sync_tool, async_tool


def script(fake: FakeProvider, calls: int) -> None:
    fake.reset()
    requested = tuple(("sync_tool" if i % 2 == 0 else "async_tool", {"n": i}) for i in range(calls))
    fake.push(Reply(tool_calls=requested), "all done")


async def lazybridge_once(
    fake: FakeProvider, base_url: str, calls: int, delay: float
) -> tuple[float, float, float]:
    """(phase wall, phase cpu, slowest tool) of one run."""
    durations: list[float] = []
    sync_tool, async_tool = make_tools(delay, durations)
    agent = Agent(
        engine=LLMEngine("gpt-5.4-mini", base_url=base_url, api_key=KEY),
        tools=[sync_tool, async_tool],
        name="bench",
    )
    script(fake, calls)
    clock = PhaseClock()
    token = events.enter(RunContext("bench", "bench", sinks=(clock,)))
    try:
        env = await agent.run("go")
    finally:
        events.leave(token)
    assert env.ok and env.text() == "all done", env.error
    assert len(durations) == calls
    wall, cpu = clock.wall_cpu()
    return wall, cpu, max(durations)


async def floor_once(calls: int, delay: float) -> tuple[float, float]:
    durations: list[float] = []
    sync_tool, async_tool = make_tools(delay, durations)
    results: list[str | None] = [None] * calls

    async def one(i: int) -> None:
        if i % 2 == 0:
            results[i] = await anyio.to_thread.run_sync(sync_tool, i)
        else:
            results[i] = await async_tool(i)

    wall0, cpu0 = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as tg:
        for i in range(calls):
            tg.start_soon(one, i)
    return time.perf_counter() - wall0, time.process_time() - cpu0


def measure(
    backend: str, fake: FakeProvider, base_url: str, calls: int, delay: float, repeats: int
) -> dict[str, float]:
    best: dict[str, float] = {
        "phase": float("inf"),
        "cpu": float("inf"),
        "floor": float("inf"),
        "floor_cpu": float("inf"),
    }

    async def main() -> None:
        # Warm-up: imports, the price table, connections, worker threads.
        await lazybridge_once(fake, base_url, calls, delay)
        await floor_once(calls, delay)
        for _ in range(repeats):
            gc.collect()
            wall, cpu, slowest = await lazybridge_once(fake, base_url, calls, delay)
            if wall < best["phase"]:
                best["phase"], best["slowest"] = wall, slowest
            best["cpu"] = min(best["cpu"], cpu)
            gc.collect()
            floor_wall, floor_cpu = await floor_once(calls, delay)
            best["floor"] = min(best["floor"], floor_wall)
            best["floor_cpu"] = min(best["floor_cpu"], floor_cpu)
        await lazybridge.aclose()

    anyio.run(main, backend=backend)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    n = args.calls
    header = (
        f"{'backend':8} {'calls':>5} {'delay':>6} {'phase':>9} {'slowest':>9} {'ratio':>6} "
        f"{'floor':>9} {'ovh wall':>10} {'ovh cpu':>10}"
    )
    print(header)
    print("-" * len(header))
    failures = []
    fake = FakeProvider()
    with serve_fake_provider(fake) as base_url:
        for backend in ("asyncio", "trio"):
            r = measure(backend, fake, base_url, n, args.delay, args.repeats)
            ratio = r["phase"] / r["slowest"]
            print(
                f"{backend:8} {n:>5} {args.delay * 1000:>4.0f}ms {r['phase'] * 1000:>7.1f}ms "
                f"{r['slowest'] * 1000:>7.1f}ms {ratio:>6.2f} {r['floor'] * 1000:>7.1f}ms "
                f"{(r['phase'] - r['floor']) / n * 1e6:>8.1f}µs {(r['cpu'] - r['floor_cpu']) / n * 1e6:>8.1f}µs"
            )
            if ratio > 1.5:
                failures.append(f"{backend}: tool phase {ratio:.2f}x the slowest tool (target 1.5x)")
    print()
    if failures:
        print("TARGET MISSED:\n  " + "\n  ".join(failures))
        return 1
    print("target met: tool phase <= 1.5x the slowest single tool")
    return 0


if __name__ == "__main__":
    sys.exit(main())

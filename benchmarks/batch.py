"""Batch benchmark: agent.run_batch over many tasks, against a bare anyio floor.

(a) N MockAgent tasks (no delay) at concurrency C through ``run_batch``,
    next to the floor: a bare anyio task group fed lazily under a
    ``CapacityLimiter`` of C, running the same ``agent.run`` and dropping each
    envelope.  Reported: tasks/s of each, and the peak RSS of the process
    (``ru_maxrss``) at N = 10,000 and N = 100,000 -- each size in a fresh
    subprocess, since the peak never goes down.  Target: RSS(100k) <= 1.2x
    RSS(10k), i.e. memory flat in the input size.
(b) N LLM tasks (``--llm N``; 10,000 in RESULTS.md) through one
    ``Agent(engine=LLMEngine("claude-haiku-4-5"))`` with ``run_batch`` at
    concurrency 100, against the fake provider server answering after
    100 ms in a separate process; next to the raw-httpx floor of
    ``benchmarks/providers.py`` (N POSTs through one pooled client, at most
    100 in flight).  Each in a fresh subprocess.  Target: wall <= 1.25x the floor's.
(c) Resume overhead: a 10,000-task batch with a checkpoint, run to the end,
    then run again from its checkpoint (every task skipped).  Target: the
    re-run under 2 s.

Usage:  python benchmarks/batch.py [--quick] [--backend asyncio|trio] [--llm N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import anyio

from lazybridge.testing import MockAgent


def tasks(n: int) -> Iterator[str]:
    for i in range(n):
        yield f"task {i}"


async def run_batch(n: int, concurrency: int, checkpoint: str | None = None) -> int:
    agent = MockAgent("ok")
    done = 0
    async with agent.run_batch(tasks(n), concurrency=concurrency, checkpoint=checkpoint) as results:
        async for _ in results:
            done += 1
    return done


async def run_floor(n: int, concurrency: int) -> int:
    agent = MockAgent("ok")
    limiter = anyio.CapacityLimiter(concurrency)
    done = 0

    async def one(task: str) -> None:
        nonlocal done
        try:
            await agent.run(task)
            done += 1
        finally:
            limiter.release_on_behalf_of(task)

    async with anyio.create_task_group() as group:
        for task in tasks(n):
            await limiter.acquire_on_behalf_of(task)  # lazy, like run_batch: a slot first
            group.start_soon(one, task)
    return done


def child(mode: str, n: int, concurrency: int, backend: str) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    fn = run_batch if mode == "batch" else run_floor
    started = time.perf_counter()
    done = anyio.run(fn, n, concurrency, backend=backend)
    wall = time.perf_counter() - started
    assert done == n, (done, n)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mode": mode, "n": n, "wall": wall, "rate": n / wall, "rss_mib": rss_mib}))


def measure(mode: str, n: int, concurrency: int, backend: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(n), str(concurrency), "--backend", backend],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def resume_overhead(n: int, backend: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "batch.sqlite")
        started = time.perf_counter()
        anyio.run(run_batch, n, 512, path, backend=backend)
        first = time.perf_counter() - started
        started = time.perf_counter()
        rerun = anyio.run(run_batch, n, 512, path, backend=backend)
        again = time.perf_counter() - started
        assert rerun == 0  # everything came from the checkpoint
    return first, again


def llm_child(mode: str, base_url: str, n: int, backend: str) -> None:
    """(b) in this (fresh) process: prints a JSON line."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import httpx
    import providers  # the raw-httpx floor, shared with benchmarks/providers.py

    import lazybridge
    from lazybridge import Agent, LLMEngine

    providers.SSL_CONTEXT = httpx.create_ssl_context()
    transport = mode.removeprefix("batch-") if mode.startswith("batch-") else None
    engine = LLMEngine(providers.MODEL, base_url=base_url, api_key="bench-key", http_transport=transport)
    agent = Agent(engine=engine)

    async def main(count: int) -> int:
        try:
            if mode == "httpx":
                return await providers.run_raw("httpx", base_url, count)
            errors = 0
            async with agent.run_batch((f"task {i}" for i in range(count)), concurrency=100) as results:
                async for _, env in results:
                    errors += not env.ok
            return errors
        finally:
            await lazybridge.aclose()

    anyio.run(main, 20, backend=backend)  # warm up: imports, price table
    started, cpu_started = time.perf_counter(), time.process_time()
    errors = anyio.run(main, n, backend=backend)
    wall = time.perf_counter() - started
    # CPU seconds of this process: on a shared, loaded machine the wall time is
    # mostly waiting for a core, while CPU per task is what the client costs.
    cpu = time.process_time() - cpu_started
    print(json.dumps({"mode": mode, "wall": wall, "cpu": cpu, "errors": errors}))


def llm_section(n: int, backend: str) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import providers  # the fake provider server process, shared with benchmarks/providers.py

    server = providers.Server()
    try:
        base_url = server.url + "/lat100"
        print(f"(b) {n} LLM tasks, fake provider at 100 ms (separate process), concurrency 100, backend {backend}")
        walls: dict[str, float] = {}
        cpus: dict[str, float] = {}
        # batch-httpx / batch-aiohttp: run_batch with the pooled clients on that transport
        # (aiohttp only on asyncio, with lazybridge[aiohttp]; see docs/providers.md).
        modes = ["httpx", "batch-httpx"] + (["batch-aiohttp"] if backend == "asyncio" else [])
        for mode in modes * 2:
            out = subprocess.run(
                [sys.executable, __file__, "--llm-child", mode, base_url, str(n), "--backend", backend],
                capture_output=True, text=True, check=True,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            walls[mode] = min(walls.get(mode, row["wall"]), row["wall"])  # best of two, interleaved
            cpus[mode] = min(cpus.get(mode, row["cpu"]), row["cpu"])
            print(f"{mode:<8} wall {row['wall']:.2f} s, CPU {row['cpu']:.2f} s "
                  f"({row['cpu'] / n * 1e6:.0f} us a task), errors {row['errors']}")
        for mode in modes[1:]:
            print(f"{mode} / httpx floor: {walls[mode] / walls['httpx']:.2f}  (target <= 1.25); "
                  f"CPU {cpus[mode] / cpus['httpx']:.2f}")
        print(f"load average {os.getloadavg()[0]:.1f}")
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="N = 1,000 / 10,000 instead of 10,000 / 100,000")
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--llm", type=int, default=0, metavar="N", help="also (b): N LLM tasks vs raw httpx")
    parser.add_argument("--llm-only", action="store_true", help="run (b) alone")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "N", "C"), help=argparse.SUPPRESS)
    parser.add_argument("--llm-child", nargs=3, metavar=("MODE", "URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.llm_child:
        mode, url, n = args.llm_child
        llm_child(mode, url, int(n), args.backend)
        return
    if args.llm_only:
        llm_section(args.llm or 10_000, args.backend)
        return
    if args.child:
        mode, n, c = args.child
        child(mode, int(n), int(c), args.backend)
        return
    small, large = (1_000, 10_000) if args.quick else (10_000, 100_000)
    concurrency = 512
    print(f"(a) MockAgent tasks at concurrency {concurrency}, backend {args.backend}")
    print(f"{'mode':<8} {'N':>8} {'wall s':>8} {'tasks/s':>9} {'peak RSS MiB':>13}")
    rows = {}
    for n in (small, large):
        for mode in ("floor", "batch"):
            row = measure(mode, n, concurrency, args.backend)
            rows[mode, n] = row
            print(f"{mode:<8} {n:>8} {row['wall']:>8.2f} {row['rate']:>9.0f} {row['rss_mib']:>13.1f}")
    for mode in ("floor", "batch"):
        ratio = rows[mode, large]["rss_mib"] / rows[mode, small]["rss_mib"]
        print(f"{mode}: RSS({large}) / RSS({small}) = {ratio:.2f}  (target <= 1.2)")
    ratio = rows["batch", large]["rate"] / rows["floor", large]["rate"]
    print(f"batch / floor throughput at N={large}: {ratio:.2f}")
    first, again = resume_overhead(10_000, args.backend)
    print(f"(c) 10,000-task batch with a checkpoint: first run {first:.2f} s, re-run from the checkpoint "
          f"{again:.2f} s (target < 2 s)")
    if args.llm:
        llm_section(args.llm, args.backend)


if __name__ == "__main__":
    main()

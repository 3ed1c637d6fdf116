"""Batch benchmark: agent.run_batch over many tasks, against a bare anyio floor.

(a) N MockAgent tasks (no delay) at concurrency C through ``run_batch``,
    next to the floor: a bare anyio task group fed lazily under a
    ``CapacityLimiter`` of C, running the same ``agent.run`` and dropping each
    envelope.  Reported: tasks/s of each, and the peak RSS of the process
    (``ru_maxrss``) at N = 10,000 and N = 100,000 -- each size in a fresh
    subprocess, since the peak never goes down.  Target: RSS(100k) <= 1.2x
    RSS(10k), i.e. memory flat in the input size.
(c) Resume overhead: a 10,000-task batch with a checkpoint, run to the end,
    then run again from its checkpoint (every task skipped).  Target: the
    re-run under 2 s.

Usage:  python benchmarks/batch.py [--quick] [--backend asyncio|trio]
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="N = 1,000 / 10,000 instead of 10,000 / 100,000")
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--child", nargs=3, metavar=("MODE", "N", "C"), help=argparse.SUPPRESS)
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()

"""Rate-limit sharing across Ray actors: does N actors together keep one account's limit?

A local Ray cluster (2 CPUs, loopback) runs ``--rows`` tasks through
``lazybridge.ray.AgentMapper`` in ``--actors`` actors, one LLM agent each,
all with the same API key, against the fake provider server holding that
key to ``--rate`` requests a second (``FakeRateLimit``, real header names,
a bucket of ``--window`` seconds' worth).  Three ways of pacing:

* shared:    ``RateLimit(requests_per_minute=60 * rate)`` configured, shared
             through the named permit actor (``share_rate_limit=True``).
* per actor: the same limit configured, not shared (each actor paces alone).
* headers:   nothing configured: each actor learns the limit from the headers.

Reported per mode: wall time, mean request rate, the busiest second, and the
429s the provider answered.  Target: shared has no 429 and a mean rate <= rate.

Usage:  python benchmarks/ray_ratelimit.py [--rows 300] [--actors 2] [--rate 25] [--window 4]
"""

from __future__ import annotations

import argparse
import functools
import time
import warnings

import ray
from lazybridge import Agent, AgentBase, LLMEngine, RateLimit
from lazybridge.ray import AgentMapper
from lazybridge.testing import FakeProvider, FakeRateLimit, serve_fake_provider


def agent(base_url: str, per_minute: float | None) -> AgentBase:
    limit = None if per_minute is None else RateLimit(requests_per_minute=per_minute)
    return Agent(engine=LLMEngine("gpt-5.4-mini", base_url=base_url, api_key="bench-key", rate_limit=limit))


def run(fake: FakeProvider, base_url: str, args: argparse.Namespace, mode: str) -> tuple[str, ...]:
    fake.reset()
    fake.rate_limit = FakeRateLimit(requests=int(args.rate * args.window), window=args.window)
    per_minute = None if mode == "headers" else args.rate * 60.0
    ds = ray.data.from_items([{"task": f"task {i}"} for i in range(args.rows)])
    started = time.perf_counter()
    rows = ds.map_batches(
        AgentMapper,
        fn_constructor_kwargs={
            # A key of its own per mode: the permit actor and the process-wide accounts start afresh.
            "agent": functools.partial(agent, base_url, per_minute),
            "share_rate_limit": mode == "shared",
            "concurrency": 16,
        },
        concurrency=args.actors,
        batch_size=max(1, args.rows // (4 * args.actors)),
        num_cpus=1.0 / args.actors,
    ).take_all()
    wall = time.perf_counter() - started
    times = [r.received_at for r in fake.requests]
    span = max(times) - min(times)
    ok = sum(row["ok"] for row in rows)
    return (
        mode, f"{wall:.1f}", f"{(len(times) - 1) / span:.1f}", str(fake.busiest(1.0)), str(fake.rate_limited),
        f"{ok}/{args.rows}",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--window", type=float, default=4.0)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": __import__("os").getcwd()}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ray.data.DataContext.get_current().enable_progress_bars = False
    fake = FakeProvider()
    results = []
    with serve_fake_provider(fake) as base_url:
        for mode in ("shared", "per actor", "headers"):
            results.append(run(fake, base_url, args, mode))
    ray.shutdown()
    print(f"\n{args.rows} rows, {args.actors} actors, limit {args.rate:g} req/s (bucket {args.window:g} s)")
    header = ("pacing", "wall s", "mean req/s", "busiest 1 s", "429s", "ok")
    print(" | ".join(f"{h:>11}" for h in header))
    for row in results:
        print(" | ".join(f"{c:>11}" for c in row))


if __name__ == "__main__":
    main()

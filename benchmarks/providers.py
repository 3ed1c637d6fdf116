"""Provider fan-out benchmark: Agent.parallel over N LLMEngine agents vs raw httpx.

The fake provider server runs in a separate *process* (so its CPU is not
counted), answering Anthropic-format requests after 100 ms or 0 ms.  For
each backend (asyncio, trio), latency and N (10, 100, 1000), one fresh
client process runs either

* ``lazybridge``: ``Agent.parallel`` over N ``Agent(engine=LLMEngine("claude-haiku-4-5"))``
  agents, one model call each (the full path: run ids, events, request
  translation, retries, response parsing, pricing, envelopes), or
* ``httpx``: the floor -- N POSTs of the same JSON body through one shared
  ``httpx.AsyncClient`` (same limits: 100 connections, 20 kept alive, no
  pool timeout) in one task group, each response parsed with ``json``, at
  most 100 in flight (an ``anyio.CapacityLimiter``, as LazyBridge does), or
* ``httpx-naive``: the same without the limiter, every request queued in
  httpcore's pool (shown once, ``--naive``: its pool bookkeeping makes it
  ~10x slower at N=1000).

and reports wall time, client CPU per branch (``time.process_time``), peak
RSS and errors.  Building the N agents is timed apart ("build ms/agent"):
the fan-out columns measure the run alone.  Each cell is the median of ``--repeat`` runs::

    python benchmarks/providers.py                 # the full table
    python benchmarks/providers.py --n 1000 --repeat 1 --latency 0.1

``--rate-limited`` runs instead the rate-limited rows: N = 1000 branches
(``--n``) against a fake account of ``--rate`` requests a second (a token
bucket holding one second, the real ``x-ratelimit-*``/``anthropic-ratelimit-*``
headers, 429 with ``retry-after`` when empty), 100 ms latency, with the limit
configured (``RateLimit(requests_per_minute=60 * rate)``) and learned from
the headers only.  It reports wall time against the ideal N / rate, errors
and the 429s the server sent::

    python benchmarks/providers.py --rate-limited --rate 200
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

MODEL = "claude-haiku-4-5"
BODY = {
    "model": MODEL,
    "max_tokens": 4096,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "What changed in 2026?"}]}],
}


SSL_CONTEXT: Any = None


# -- the server process ----------------------------------------------------------------


def serve(rate: int = 0) -> None:
    """Run the fake provider until stdin closes; print the base URL first.

    With ``rate``, every key is held to ``rate`` requests a second, and each
    stdin line is answered with the number of 429s sent since the last one.
    """
    from lazybridge.testing import FakeProvider, FakeRateLimit, Reply, serve_fake_provider

    answer = "Agent frameworks fall into three camps: graph-based, role-based and loop-based."

    def respond(request: Any) -> Reply:
        delay = 0.1 if request.path.startswith("/lat100/") else 0.0
        return Reply(text=answer, delay=delay, input_tokens=24, output_tokens=16)

    limit = FakeRateLimit(requests=rate, window=1.0) if rate else None
    fake = FakeProvider(respond=respond, rate_limit=limit)
    with serve_fake_provider(fake) as base_url:
        print(base_url, flush=True)
        for _ in sys.stdin:  # one line per finished run: forget its recorded requests
            if rate:
                print(fake.rate_limited, flush=True)
            fake.reset()
            fake.respond = respond
            fake.rate_limit = limit


# -- one measurement (in a fresh client process) ----------------------------------------


def build_panel(base_url: str, n: int, rate_limit: Any = None) -> Any:
    from lazybridge import Agent
    from lazybridge.engines.llm import LLMEngine

    agents = [
        Agent(
            engine=LLMEngine(MODEL, base_url=base_url, api_key="bench-key", rate_limit=rate_limit, max_retries=10),
            name=f"a{i}",
        )
        for i in range(n)
    ]
    return Agent.parallel(*agents)


async def run_lazybridge(panel: Any) -> int:
    env = await panel.run("What changed in 2026?")
    return sum(1 for branch in env if not branch.ok or not branch.text())


async def run_raw(base_url: str, n: int, *, bounded: bool = True) -> int:
    import anyio
    import httpx

    errors = 0
    headers = {
        "content-type": "application/json",
        "x-api-key": "bench-key",
        "anthropic-version": "2026-10-21",
    }
    limiter = anyio.CapacityLimiter(100)

    async def post(client: httpx.AsyncClient) -> None:
        nonlocal errors
        try:
            response = await client.post(
                base_url + "/v1/messages", content=json.dumps(BODY).encode(), headers=headers
            )
            if response.status_code != 200 or not json.loads(response.content)["content"]:
                errors += 1
        except Exception:
            errors += 1

    async def one(client: httpx.AsyncClient) -> None:
        if not bounded:
            await post(client)
            return
        async with limiter:
            await post(client)

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    # The SSL context is built once per process, as LazyBridge does: the floor
    # should not pay ~20 ms of CA-bundle loading per run.
    async with httpx.AsyncClient(
        limits=limits, timeout=httpx.Timeout(600, pool=None), verify=SSL_CONTEXT
    ) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(one, client)
    return errors


def measure(mode: str, backend: str, base_url: str, n: int) -> dict[str, Any]:
    import anyio

    import lazybridge

    async def main(count: int, panel: Any) -> int:
        try:
            if mode.startswith("lazybridge"):
                return await run_lazybridge(panel)
            return await run_raw(base_url, count, bounded=mode == "httpx")
        finally:
            await lazybridge.aclose()

    global SSL_CONTEXT
    import httpx

    SSL_CONTEXT = httpx.create_ssl_context()
    rate_limit = None
    if mode.startswith("lazybridge-configured-"):
        rate_limit = lazybridge.RateLimit(requests_per_minute=60 * int(mode.rsplit("-", 1)[1]))
    if mode == "lazybridge":  # warm up: imports, price table, SSL context (not against a rate-limited account)
        anyio.run(main, 10, build_panel(base_url, 10), backend=backend)
    build0 = time.process_time()
    panel = build_panel(base_url, n, rate_limit) if mode.startswith("lazybridge") else None
    build_ms = (time.process_time() - build0) * 1000 / n
    cpu0, wall0 = time.process_time(), time.perf_counter()
    errors = anyio.run(main, n, panel, backend=backend)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "wall_s": wall,
        "cpu_ms_per_branch": cpu * 1000 / n,
        "rss_mb": rss_mb,
        "errors": errors,
        "build_ms": build_ms,
    }


# -- the rate-limited rows ----------------------------------------------------------------


def rate_limited(backends: list[str], ns: list[int], rate: int) -> None:
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--serve-rate", str(rate)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdin is not None
        root = server.stdout.readline().strip() + "/lat100"
        print(f"fake account: {rate} requests/s (bucket of 1 s), 100 ms latency; {os.cpu_count()} CPUs")
        header = f"{'backend':8} {'N':>5} {'limit':10} {'wall s':>7} {'ideal s':>7} {'wall/ideal':>10} {'errors':>6} {'429s':>5}"
        print(header)
        print("-" * len(header))
        for backend in backends:
            for n in ns:
                for how in ("configured", "learned"):
                    mode = f"lazybridge-configured-{rate}" if how == "configured" else "lazybridge-learned"
                    cell = one_run(mode, backend, root, n)
                    server.stdin.write("count\n")
                    server.stdin.flush()
                    throttled = int(server.stdout.readline())
                    ideal = n / rate
                    print(
                        f"{backend:8} {n:5d} {how:10} {cell['wall_s']:7.3f} {ideal:7.3f} "
                        f"{cell['wall_s'] / ideal:10.2f} {cell['errors']:6d} {throttled:5d}",
                        flush=True,
                    )
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)


# -- the driver ----------------------------------------------------------------------------


def one_run(mode: str, backend: str, base_url: str, n: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", mode, backend, base_url, str(n)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=4, metavar=("MODE", "BACKEND", "URL", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument("--latency", type=float, nargs="*", default=[0.1, 0.0])
    parser.add_argument("--backend", nargs="*", default=["asyncio", "trio"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--naive", action="store_true", help="also run httpx without a limiter (once)")
    parser.add_argument("--rate-limited", action="store_true", help="run the rate-limited rows instead")
    parser.add_argument("--rate", type=int, default=200, help="the fake account's requests per second")
    parser.add_argument("--serve-rate", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve_rate)
        return
    if args.rate_limited:
        rate_limited(args.backend, args.n if args.n != [10, 100, 1000] else [1000], args.rate)
        return
    if args.measure:
        mode, backend, url, n = args.measure
        print(json.dumps(measure(mode, backend, url, int(n))))
        return

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None and server.stdin is not None
        root = server.stdout.readline().strip()
        print(
            f"fake provider: {root} (separate process {server.pid}); {os.cpu_count()} CPUs; median of {args.repeat}"
        )
        header = (
            f"{'backend':8} {'latency':>7} {'N':>5} {'client':11} {'wall s':>7} {'CPU ms/branch':>13} "
            f"{'peak RSS MB':>11} {'errors':>6} {'wall/floor':>10} {'CPU/floor':>9} {'build ms/agent':>14}"
        )
        print(header)
        print("-" * len(header))
        for backend in args.backend:
            for latency in args.latency:
                base_url = root + ("/lat100" if latency else "")
                for n in args.n:
                    modes = ("httpx-naive", "httpx", "lazybridge") if args.naive else ("httpx", "lazybridge")
                    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
                    for repeat in range(args.repeat):  # interleaved, so drift hits every client alike
                        for mode in modes:
                            if mode == "httpx-naive" and repeat:
                                continue  # ~20 s at N=1000: once is enough to make the point
                            runs[mode].append(one_run(mode, backend, base_url, n))
                            server.stdin.write("reset\n")
                            server.stdin.flush()
                    floor = {k: statistics.median(r[k] for r in runs["httpx"]) for k in runs["httpx"][0]}
                    for mode in modes:
                        cell = {k: statistics.median(r[k] for r in runs[mode]) for k in runs[mode][0]}
                        cell["errors"] = max(r["errors"] for r in runs[mode])
                        ratio = ""
                        if mode == "lazybridge":
                            ratio = (
                                f"{cell['wall_s'] / floor['wall_s']:10.2f} "
                                f"{cell['cpu_ms_per_branch'] / floor['cpu_ms_per_branch']:9.2f} "
                                f"{cell['build_ms']:14.3f}"
                            )
                        print(
                            f"{backend:8} {latency * 1000:5.0f}ms {n:5d} {mode:11} {cell['wall_s']:7.3f} "
                            f"{cell['cpu_ms_per_branch']:13.3f} {cell['rss_mb']:11.1f} {cell['errors']:6d} {ratio}",
                            flush=True,
                        )
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()

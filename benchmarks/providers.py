"""Provider fan-out benchmark: Agent.parallel over N LLMEngine agents vs raw HTTP clients.

The fake provider server runs in a separate *process* (so its CPU is not
counted), answering Anthropic-format requests after 100 ms or 0 ms, and
counts the connections it accepted (and, with ``--tls``, the TLS handshakes
it completed).  For each backend, latency and N, one fresh client process
runs one *client*:

* ``lazybridge-httpx`` / ``lazybridge-aiohttp``: ``Agent.parallel`` over N
  ``Agent(engine=LLMEngine("claude-haiku-4-5"))`` agents, one model call
  each (the full path: run ids, events, request translation, retries,
  response parsing, pricing, envelopes), with ``LAZYBRIDGE_HTTP_TRANSPORT``
  set to ``httpx`` / ``aiohttp`` in the child process (on Trio the aiohttp
  transport is not available: the library keeps httpx's own).
* the floors, N POSTs of the same JSON body from one shared client in one
  task group, each response parsed with ``json``, at most 100 in flight (an
  ``anyio.CapacityLimiter``, as LazyBridge does):
  ``httpx`` (``httpx.AsyncClient``, 100 connections / 20 kept alive, no pool
  timeout -- LazyBridge's ``DEFAULT_LIMITS``), ``httpx-k100`` (the same with
  100 kept alive), ``httpx-aiohttp`` (``httpx.AsyncClient`` over
  ``httpx_aiohttp.AiohttpTransport``, 100 connections: the floor of the
  aiohttp transport) and ``aiohttp`` (a bare ``aiohttp.ClientSession``,
  ``TCPConnector(limit=100)``).  ``httpx-aiohttp`` and ``aiohttp`` are
  asyncio-only.
* ``httpx-naive`` (``--naive``): ``httpx`` without the limiter, every request
  queued in httpcore's pool (its pool bookkeeping makes it ~10x slower at
  N = 1000).

Each reports wall time, client CPU per branch (``time.process_time``), peak
RSS, errors, and the connections the server accepted per request.  Building
the N agents (and LazyBridge's 10-request warm-up) happens before the
server's counters are reset and the clock starts.  Each cell is the median
of ``--repeat`` interleaved runs::

    python benchmarks/providers.py                    # asyncio + trio, N = 100 and 1000
    python benchmarks/providers.py --backend asyncio --n 1000 --latency 0

``--tls`` serves HTTPS on loopback with a certificate from a throwaway CA
(``trustme``, the ``bench`` extra); every client trusts it through
``SSL_CERT_FILE`` in its process (httpx's ``create_ssl_context`` honours it,
which is how LazyBridge's pooled clients and so both its transports get their
SSL context), and the table adds the handshakes per request::

    python benchmarks/providers.py --tls              # N = 1000, asyncio

``--rate-limited`` runs instead the rate-limited rows: N = 1000 branches
(``--n``) against a fake account of ``--rate`` requests a second (a token
bucket holding one second, the real ``x-ratelimit-*``/``anthropic-ratelimit-*``
headers, 429 with ``retry-after`` when empty), 100 ms latency, with the limit
configured (``RateLimit(requests_per_minute=60 * rate)``) and learned from
the headers only, over each transport.  It reports wall time against the
ideal N / rate, errors, the 429s the server sent and the request rate the
account paced at in the end::

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
from collections import Counter
from typing import Any

MODEL = "claude-haiku-4-5"
BODY = {
    "model": MODEL,
    "max_tokens": 4096,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "What changed in 2026?"}]}],
}
#: The floor clients: name -> (kept-alive connections, asyncio only).
RAW = {"httpx": (20, False), "httpx-k100": (100, False), "httpx-aiohttp": (100, True), "aiohttp": (100, True)}
#: LazyBridge's clients: name -> the ``LAZYBRIDGE_HTTP_TRANSPORT`` of its process.
LAZYBRIDGE = {"lazybridge-httpx": "httpx", "lazybridge-aiohttp": "aiohttp"}
ASYNCIO_ONLY = {name for name, (_, only) in RAW.items() if only}

SSL_CONTEXT: Any = None


# -- the server process ----------------------------------------------------------------


def serve(rate: int = 0, tls: bool = False) -> None:
    """Run the fake provider until stdin closes; print ``{"url", "ca_file"}`` first.

    With ``rate``, every key is held to ``rate`` requests a second.  Each
    stdin line is answered with what happened since the last one (429s sent,
    connections accepted, TLS handshakes completed, requests), and the
    counters start again.
    """
    import socket
    import ssl
    import tempfile
    import threading

    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    from lazybridge.testing import FakeProvider, FakeRateLimit, Reply

    answer = "Agent frameworks fall into three camps: graph-based, role-based and loop-based."

    def respond(request: Any) -> Reply:
        delay = 0.1 if request.path.startswith("/lat100/") else 0.0
        return Reply(text=answer, delay=delay, input_tokens=24, output_tokens=16)

    accepted = [0]

    class Counting(H11Protocol):
        """uvicorn's h11 protocol, counting the connections made (TCP accepts)."""

        def connection_made(self, transport: Any) -> None:
            accepted[0] += 1
            super().connection_made(transport)

    context: ssl.SSLContext | None = None
    ca_file = ""
    if tls:
        import trustme

        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        ca_file = os.path.join(tempfile.mkdtemp(prefix="lazybridge-bench-"), "ca.pem")
        ca.cert_pem.write_to_path(ca_file)

    limit = FakeRateLimit(requests=rate, window=1.0) if rate else None
    fake = FakeProvider(respond=respond, rate_limit=limit)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    config = uvicorn.Config(
        fake,
        log_config=None,
        log_level="critical",
        access_log=False,
        lifespan="off",
        loop="asyncio",
        http=Counting,
        ws="none",
        backlog=2048,
        timeout_graceful_shutdown=1,
        ssl_context_factory=(lambda _config, _default: context) if context is not None else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    scheme = "https" if tls else "http"
    print(json.dumps({"url": f"{scheme}://127.0.0.1:{sock.getsockname()[1]}", "ca_file": ca_file}), flush=True)

    def handshakes() -> int:
        return context.session_stats()["accept_good"] if context is not None else 0

    base = (accepted[0], handshakes())
    for _ in sys.stdin:
        now = (accepted[0], handshakes())
        stats = {
            "throttled": fake.rate_limited,
            "connections": now[0] - base[0],
            "handshakes": now[1] - base[1],
            "requests": len(fake.requests),
        }
        print(json.dumps(stats), flush=True)
        base = now
        fake.reset()
        fake.respond = respond
        fake.rate_limit = limit
    server.should_exit = True
    thread.join(timeout=10)


class Server:
    """The server process, seen from the driver."""

    def __init__(self, rate: int = 0, tls: bool = False) -> None:
        command = [sys.executable, __file__, "--serve", "--serve-rate", str(rate)] + (["--tls"] if tls else [])
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None and self.process.stdin is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        hello = json.loads(self.stdout.readline())
        self.url: str = hello["url"]
        self.ca_file: str = hello["ca_file"]

    def stats(self) -> dict[str, int]:
        """What happened since the last call (and forget it)."""
        self.stdin.write("stats\n")
        self.stdin.flush()
        return json.loads(self.stdout.readline())  # type: ignore[no-any-return]

    def close(self) -> None:
        self.stdin.close()
        self.process.wait(timeout=30)


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
    failed = [branch for branch in env if not branch.ok or not branch.text()]
    if failed:  # say what went wrong: the table only counts
        kinds = Counter(f"{b.error.type}: {b.error.message[:120]}" if b.error else "empty" for b in failed)
        print(f"errors: {dict(kinds.most_common(3))}", file=sys.stderr, flush=True)
    return len(failed)


async def run_raw(mode: str, base_url: str, n: int) -> int:
    """N POSTs through one client of kind ``mode`` (see :data:`RAW`); the number of failures."""
    import anyio
    import httpx

    errors = 0
    url = base_url + "/v1/messages"
    headers = {
        "content-type": "application/json",
        "x-api-key": "bench-key",
        "anthropic-version": "2026-10-21",
    }
    limiter = anyio.CapacityLimiter(100)
    bounded = mode != "httpx-naive"
    keepalive, _ = RAW.get(mode, (20, False))

    async def bounded_call(post: Any) -> None:
        nonlocal errors
        try:
            if bounded:
                async with limiter:
                    ok = await post()
            else:
                ok = await post()
        except Exception:
            ok = False
        errors += not ok

    if mode == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=100, ssl=SSL_CONTEXT)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def post_aiohttp() -> bool:
                async with session.post(url, data=json.dumps(BODY).encode(), headers=headers) as response:
                    content = await response.read()
                return response.status == 200 and bool(json.loads(content)["content"])

            async with anyio.create_task_group() as tg:
                for _ in range(n):
                    tg.start_soon(bounded_call, post_aiohttp)
        return errors

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=keepalive)
    transport = None
    if mode == "httpx-aiohttp":
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(verify=SSL_CONTEXT, limits=limits)
    # The SSL context is built once per process, as LazyBridge does: the floor
    # should not pay ~20 ms of CA-bundle loading per run.
    async with httpx.AsyncClient(
        limits=limits, timeout=httpx.Timeout(600, pool=None), verify=SSL_CONTEXT, transport=transport
    ) as client:

        async def post_httpx() -> bool:
            response = await client.post(url, content=json.dumps(BODY).encode(), headers=headers)
            return response.status_code == 200 and bool(json.loads(response.content)["content"])

        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(bounded_call, post_httpx)
    return errors


def measure(mode: str, backend: str, base_url: str, n: int) -> dict[str, Any]:
    """One run in this (fresh) process; prints ``ready`` and waits for a line on stdin before the clock starts."""
    import anyio
    import httpx

    import lazybridge

    async def main(count: int, panel: Any) -> int:
        try:
            if mode.startswith("lazybridge"):
                return await run_lazybridge(panel)
            return await run_raw(mode, base_url, count)
        finally:
            await lazybridge.aclose()

    global SSL_CONTEXT
    SSL_CONTEXT = httpx.create_ssl_context()  # honours SSL_CERT_FILE (--tls)
    if mode in ASYNCIO_ONLY:
        import aiohttp  # noqa: F401  -- imported before the clock, as httpx is
        import httpx_aiohttp  # noqa: F401
    rate_limit = None
    if mode.startswith("lazybridge-configured-"):
        rate_limit = lazybridge.RateLimit(requests_per_minute=60 * int(mode.rsplit("-", 1)[1]))
    if mode in LAZYBRIDGE:  # warm up: imports, price table, SSL context (not against a rate-limited account)
        anyio.run(main, 10, build_panel(base_url, 10), backend=backend)
    build0 = time.process_time()
    panel = build_panel(base_url, n, rate_limit) if mode.startswith("lazybridge") else None
    build_ms = (time.process_time() - build0) * 1000 / n
    print("ready", flush=True)
    sys.stdin.readline()  # the driver resets the server's counters
    cpu0, wall0 = time.process_time(), time.perf_counter()
    errors = anyio.run(main, n, panel, backend=backend)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    paced = None
    if mode.startswith("lazybridge-configured-") or mode == "lazybridge-learned":
        from lazybridge.providers import _ratelimit

        paced = next(a.requests.rate for a in _ratelimit._accounts.values())
    return {
        "wall_s": wall,
        "cpu_ms_per_branch": cpu * 1000 / n,
        "rss_mb": rss_mb,
        "errors": errors,
        "build_ms": build_ms,
        "paced_rate": paced,
    }


def one_run(mode: str, backend: str, server: Server, path: str, n: int, transport: str | None = None) -> dict[str, Any]:
    """``mode`` in a fresh process against ``server``; its measures and the server's counts per request."""
    env = dict(os.environ)
    transport = transport or LAZYBRIDGE.get(mode)
    if transport:
        env["LAZYBRIDGE_HTTP_TRANSPORT"] = transport
    if server.ca_file:
        env["SSL_CERT_FILE"] = server.ca_file
    child = subprocess.Popen(
        [sys.executable, __file__, "--measure", mode, backend, server.url + path, str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{mode}: the client process failed before its run")
        server.stats()  # forget the warm-up's connections
        child.stdin.write("go\n")
        child.stdin.flush()
        out, _ = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
    if child.returncode:
        raise RuntimeError(f"{mode}: the client process failed (exit {child.returncode})")
    cell: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    stats = server.stats()
    cell["throttled"] = stats["throttled"]
    cell["conns_per_req"] = stats["connections"] / max(stats["requests"], 1)
    cell["handshakes_per_req"] = stats["handshakes"] / max(stats["requests"], 1)
    return cell


# -- the rate-limited rows ----------------------------------------------------------------


def rate_limited(backends: list[str], ns: list[int], rate: int, transports: list[str]) -> None:
    server = Server(rate=rate)
    try:
        print(f"fake account: {rate} requests/s (bucket of 1 s), 100 ms latency; {os.cpu_count()} CPUs")
        header = (
            f"{'backend':8} {'transport':9} {'N':>5} {'limit':10} {'wall s':>7} {'ideal s':>7} "
            f"{'wall/ideal':>10} {'errors':>6} {'429s':>5} {'paced req/s':>11}"
        )
        print(header)
        print("-" * len(header))
        for backend in backends:
            for transport in transports:
                if transport == "aiohttp" and backend != "asyncio":
                    continue
                for n in ns:
                    for how in ("configured", "learned"):
                        mode = f"lazybridge-configured-{rate}" if how == "configured" else "lazybridge-learned"
                        cell = one_run(mode, backend, server, "/lat100", n, transport)
                        ideal = n / rate
                        paced = cell["paced_rate"]
                        print(
                            f"{backend:8} {transport:9} {n:5d} {how:10} {cell['wall_s']:7.3f} {ideal:7.3f} "
                            f"{cell['wall_s'] / ideal:10.2f} {cell['errors']:6d} {cell['throttled']:5d} "
                            f"{'-' if paced is None else f'{paced:.1f}':>11}",
                            flush=True,
                        )
    finally:
        server.close()


# -- the driver ----------------------------------------------------------------------------


def default_modes(backend: str, tls: bool) -> list[str]:
    modes = ["httpx", "httpx-k100", "httpx-aiohttp", "aiohttp"] if tls else ["httpx", "httpx-aiohttp", "aiohttp"]
    modes += list(LAZYBRIDGE)
    return [mode for mode in modes if backend == "asyncio" or mode not in ASYNCIO_ONLY]


def median_cell(runs: list[dict[str, Any]]) -> dict[str, Any]:
    cell = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "paced_rate"}
    cell["errors"] = max(r["errors"] for r in runs)
    return cell


def table(args: argparse.Namespace) -> None:
    server = Server(tls=args.tls)
    targets: list[str] = []
    try:
        print(
            f"fake provider: {server.url} (separate process {server.process.pid}); {os.cpu_count()} CPUs; "
            f"load average {os.getloadavg()[0]:.1f}; median of {args.repeat}"
        )
        header = (
            f"{'backend':8} {'latency':>7} {'N':>5} {'client':18} {'wall s':>7} {'CPU ms/branch':>13} "
            f"{'peak RSS MB':>11} {'errors':>6} {'conns/req':>9} "
            + (f"{'TLS hs/req':>10} " if args.tls else "")
            + f"{'wall/httpx':>10} {'CPU/httpx':>9}"
        )
        print(header)
        print("-" * len(header))
        for backend in args.backend:
            modes = args.modes or default_modes(backend, args.tls)
            modes = [mode for mode in modes if backend == "asyncio" or mode not in ASYNCIO_ONLY]
            if args.naive:
                modes = ["httpx-naive", *modes]
            if "httpx" not in modes:
                modes = ["httpx", *modes]
            for latency in args.latency:
                path = "/lat100" if latency else ""
                for n in args.n:
                    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
                    for repeat in range(args.repeat):  # interleaved, so drift hits every client alike
                        for mode in modes:
                            if mode == "httpx-naive" and repeat:
                                continue  # ~20 s at N=1000: once is enough to make the point
                            runs[mode].append(one_run(mode, backend, server, path, n))
                    floor = median_cell(runs["httpx"])
                    for mode in modes:
                        cell = median_cell(runs[mode])
                        wall_ratio = cell["wall_s"] / floor["wall_s"]
                        print(
                            f"{backend:8} {latency * 1000:5.0f}ms {n:5d} {mode:18} {cell['wall_s']:7.3f} "
                            f"{cell['cpu_ms_per_branch']:13.3f} {cell['rss_mb']:11.1f} {cell['errors']:6d} "
                            f"{cell['conns_per_req']:9.3f} "
                            + (f"{cell['handshakes_per_req']:10.3f} " if args.tls else "")
                            + f"{wall_ratio:10.2f} {cell['cpu_ms_per_branch'] / floor['cpu_ms_per_branch']:9.2f}",
                            flush=True,
                        )
                        if mode == "lazybridge-aiohttp" and backend == "asyncio" and n == 1000:
                            targets.append(
                                f"asyncio {latency * 1000:.0f} ms N=1000 lazybridge-aiohttp: "
                                f"wall {wall_ratio:.2f}x httpx (target <= 0.6x: "
                                f"{'PASS' if wall_ratio <= 0.6 else 'FAIL'}), CPU "
                                f"{cell['cpu_ms_per_branch']:.3f} ms/branch (target <= 1.0: "
                                f"{'PASS' if cell['cpu_ms_per_branch'] <= 1.0 else 'FAIL'})"
                            )
    finally:
        server.close()
    for line in targets:
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=4, metavar=("MODE", "BACKEND", "URL", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, nargs="*", default=None, help="default: 100 1000 (--tls: 1000)")
    parser.add_argument("--latency", type=float, nargs="*", default=[0.1, 0.0])
    parser.add_argument("--backend", nargs="*", default=None, help="default: asyncio trio (--tls: asyncio)")
    parser.add_argument("--modes", nargs="*", default=None, help="clients to run (default: all that apply)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--naive", action="store_true", help="also run httpx without a limiter (once)")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS (trustme CA) and count handshakes")
    parser.add_argument("--rate-limited", action="store_true", help="run the rate-limited rows instead")
    parser.add_argument("--rate", type=int, default=200, help="the fake account's requests per second")
    parser.add_argument("--transport", nargs="*", default=["httpx", "aiohttp"], help="--rate-limited: transports")
    parser.add_argument("--serve-rate", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve_rate, args.tls)
        return
    if args.measure:
        mode, backend, url, n = args.measure
        print(json.dumps(measure(mode, backend, url, int(n))))
        return
    if args.rate_limited:
        rate_limited(args.backend or ["asyncio", "trio"], args.n or [1000], args.rate, args.transport)
        return
    args.n = args.n or ([1000] if args.tls else [100, 1000])
    args.backend = args.backend or (["asyncio"] if args.tls else ["asyncio", "trio"])
    table(args)


if __name__ == "__main__":
    main()

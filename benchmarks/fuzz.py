"""Long fuzz run of the wire formats: malformed answers must be library errors.

For each wire format (anthropic, openai, compat, deepseek, gemini) it feeds
the parsers mutated copies of the recorded fixtures in
``tests/fixtures/provider/`` (the mutations of ``tests/unit/wire_fuzz.py``,
driven by a seeded ``random.Random``):

* ``body``: a non-streamed answer -> ``parse_response``;
* ``events``: a recorded stream with events mutated, dropped, repeated,
  swapped, cut or replaced by garbage -> the stream decoder, then ``finish``;
* ``bytes``: a recorded stream with bytes removed or SSE syntax inserted,
  split by httpx-sse as the HTTP layer does -> the stream decoder;
* ``error``: an error body (the provider's, mutated) with status 429, 500,
  503 or 400 -> the status-error mapping (the class and ``retryable`` must
  follow the status).

Every outcome is counted: a response (``ok``), ``MalformedResponseError``,
another ``ProviderError``, a *foreign* exception (``AttributeError``,
``KeyError``, ...: a bug), or an *ill-typed* response (a wrong-typed field
let through: a bug).  The run fails (exit 1) if any foreign or ill-typed
outcome occurred, and lists the distinct crash sites::

    python benchmarks/fuzz.py                      # 50,000 examples per wire format and kind
    python benchmarks/fuzz.py --examples 2000 --seed 7
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit import wire_fuzz

from lazybridge.errors import APIStatusError
from lazybridge.providers._errormap import status_error
from lazybridge.providers._http import Endpoint


def _site(exc: BaseException) -> str:
    """Where a foreign exception was raised: the innermost lazybridge frame."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "lazybridge" in f.filename]
    frame = frames[-1] if frames else traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno} ({frame.line})"


def _error_case(endpoint: Endpoint, status: int, body: Any) -> wire_fuzz.Outcome:
    text = body if isinstance(body, str) else json.dumps(body)
    try:
        error, _ = status_error(endpoint, status, {}, text)
    except Exception as exc:
        return wire_fuzz.Outcome("foreign", f"{type(exc).__name__}: {exc}"[:200], exc)
    if not isinstance(error, APIStatusError) or error.status_code != status:
        return wire_fuzz.Outcome("ill-typed", f"{type(error).__name__} for {status}")
    if status in (500, 503) and not error.retryable:
        return wire_fuzz.Outcome("ill-typed", f"{status} not retryable")
    return wire_fuzz.Outcome("provider")


def run(examples: int, seed: int) -> int:
    wires = wire_fuzz.wires()
    errors = wire_fuzz.error_bodies()
    header = f"{'wire':<10}{'kind':<8}{'examples':>9}{'ok':>8}{'malformed':>10}{'provider':>9}{'foreign':>8}{'guarded':>8}{'ill-typed':>10}{'µs/ex':>8}"
    print(header)
    print("-" * len(header))
    bad = 0
    sites: collections.Counter[str] = collections.Counter()
    for w_index, (name, wire) in enumerate(wires.items()):
        endpoint = Endpoint(name, wire.format, "http://provider.test")
        for k_index, kind in enumerate(("body", "events", "bytes", "error")):
            choose = wire_fuzz.RandomChooser(seed * 1000 + w_index * 10 + k_index)
            counts: collections.Counter[str] = collections.Counter()
            n = examples if kind != "bytes" else max(examples // 10, 1)  # httpx-sse per example is slower
            started = time.perf_counter()
            for _ in range(n):
                fmt = wire.format
                if kind == "body":
                    body = wire_fuzz.mutate_json(wire.bodies[choose.index(len(wire.bodies))], choose)
                    outcome = wire_fuzz.outcome_of(lambda f=fmt, b=body: f.parse_response(b))
                elif kind == "events":
                    events = wire_fuzz.mutate_events(wire.streams[choose.index(len(wire.streams))], choose)
                    outcome = wire_fuzz.outcome_of(lambda f=fmt, e=events: wire_fuzz.decode(f, e))
                elif kind == "bytes":
                    raw = wire_fuzz.mutate_bytes(wire.stream_bytes[choose.index(len(wire.stream_bytes))], choose)
                    events = wire_fuzz.bytes_to_events(raw)
                    outcome = wire_fuzz.outcome_of(lambda f=fmt, e=events: wire_fuzz.decode(f, e))
                else:
                    body = wire_fuzz.mutate_json(errors[choose.index(len(errors))], choose)
                    status = (429, 500, 503, 400)[choose.index(4)]
                    outcome = _error_case(endpoint, status, body)
                counts[outcome.kind] += 1
                if outcome.kind in ("foreign", "guarded") and outcome.exception is not None:
                    sites[_site(outcome.exception)] += 1
                elif outcome.kind == "ill-typed":
                    sites[f"ill-typed response ({name} {kind}): {outcome.detail.split(' ')[0]}"] += 1
            per = (time.perf_counter() - started) / n * 1e6
            bad += counts["foreign"] + counts["guarded"] + counts["ill-typed"]
            print(
                f"{name:<10}{kind:<8}{n:>9}{counts['ok']:>8}{counts['malformed']:>10}"
                f"{counts['provider']:>9}{counts['foreign']:>8}{counts['guarded']:>8}{counts['ill-typed']:>10}{per:>8.0f}"
            )
    print()
    print(f"foreign exceptions (escaped or caught by the guard) + ill-typed responses: {bad}; distinct sites: {len(sites)}")
    for site, count in sites.most_common():
        print(f"  {count:>6}  {site}")
    return 1 if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=50_000, help="examples per wire format and kind")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sys.exit(run(args.examples, args.seed))


if __name__ == "__main__":
    main()

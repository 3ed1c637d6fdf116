"""lazybridge.ray on a real local Ray cluster against the fake provider server."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from lazybridge.providers._ratelimit import BURST_SECONDS  # noqa: E402
from lazybridge.ray import RESULT_COLUMNS, AgentMapper, AgentProcessorConfig, build_processor  # noqa: E402
from lazybridge.testing import FakeProvider, FakeRateLimit  # noqa: E402

from .agents import dies_once, rate_limited, two_models  # noqa: E402

ROWS = 2000


def _tasks(n: int) -> list[str]:
    return [f"ticket {i}: my order never came" for i in range(n)]


def _by_id(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda row: row["id"])


@pytest.mark.timeout(300)  # a cluster's start and 2-core scheduling, not a hang
def test_a_dataset_through_a_parallel_equals_the_one_machine_batch(fake: FakeProvider, base_url: str) -> None:
    tasks = _tasks(ROWS)
    ds = ray.data.from_items([{"id": i, "task": t} for i, t in enumerate(tasks)])
    out = ds.map_batches(
        AgentMapper,
        fn_constructor_kwargs={"agent": functools.partial(two_models, base_url), "concurrency": 32},
        concurrency=2,
        batch_size=100,
        num_cpus=0.5,
    )
    rows = _by_id(out.take_all())

    local = two_models(base_url).batch(tasks, concurrency=32)
    assert [row["id"] for row in rows] == list(range(ROWS))  # every row, once
    assert [(row["text"], row["ok"]) for row in rows] == [(env.text(), env.ok) for env in local]
    assert all(row["ok"] for row in rows)
    assert set(RESULT_COLUMNS) <= set(rows[0])
    assert rows[0]["input_tokens"] == 24 and rows[0]["run_id"]  # both branches' usage, summed
    assert len(fake.requests) == 4 * ROWS  # two models, on the cluster and on one machine


@pytest.mark.timeout(300)  # a cluster's start and 2-core scheduling, not a hang
def test_a_killed_actor_s_rows_are_retried_by_ray(fake: FakeProvider, base_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "die"
    marker.touch()
    tasks = _tasks(400)
    processor = build_processor(
        AgentProcessorConfig(
            functools.partial(dies_once, base_url, str(marker)), concurrency=2, batch_size=50, num_cpus=0.5
        ),
        preprocess=lambda row: {"id": row["id"], "task": f"ticket {row['id']}: my order never came"},
        postprocess=lambda row: {"id": row["id"], "text": row["text"], "ok": row["ok"]},
    )
    rows = _by_id(processor(ray.data.range(len(tasks))).take_all())

    assert (tmp_path / "die.fired").exists() and not marker.exists()  # an actor did die, mid-batch
    local = two_models(base_url).batch(tasks)
    assert [row["id"] for row in rows] == list(range(len(tasks)))
    assert [(row["text"], row["ok"]) for row in rows] == [(env.text(), env.ok) for env in local]


RATE = 25  # requests a second, the account's limit


@pytest.mark.timeout(300)  # a cluster's start and 2-core scheduling, not a hang
def test_a_configured_rate_limit_is_shared_by_the_actors(fake: FakeProvider, base_url: str) -> None:
    fake.rate_limit = FakeRateLimit(requests=RATE, window=1.0)
    n = 150
    ds = ray.data.from_items([{"id": i, "task": t} for i, t in enumerate(_tasks(n))])
    out = ds.map_batches(
        AgentMapper,
        fn_constructor_kwargs={"agent": functools.partial(rate_limited, base_url, RATE * 60.0), "concurrency": 16},
        concurrency=2,
        batch_size=25,
        num_cpus=0.5,
    )
    rows = out.take_all()

    assert len(rows) == n and all(row["ok"] for row in rows)
    assert fake.rate_limited == 0  # the provider never had to refuse a request
    assert len(fake.requests) == n
    times = [r.received_at for r in fake.requests]
    span = max(times) - min(times)
    assert (n - 1) / span <= RATE * 1.1  # the mean rate, against the 2x two unshared actors would reach
    # No two seconds hold more than the rate allows plus its burst (a tenth of a
    # second's worth); +2 for arrival jitter on a loaded 2-core machine.
    assert fake.busiest(2.0) <= 2 * RATE + RATE * BURST_SECONDS + 2

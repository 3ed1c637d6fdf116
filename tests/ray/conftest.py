"""A real local Ray cluster (2 CPUs, loopback only) and the fake provider server, for the whole session.

The fake provider (``shared_fake_provider`` of tests/conftest.py) runs in a
thread of this (the driver's) process on 127.0.0.1; the actors, in their own worker processes, reach it over
loopback, and the tests read what it received.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray stage needs lazybridge[ray]")

from lazybridge.testing import FakeProvider  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        # The workers import the agent factories from tests/ray/agents.py.
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
        log_to_driver=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Ray's own, on its first DataContext
        ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def fake(shared_fake_provider: tuple[FakeProvider, str], ray_cluster: None) -> FakeProvider:
    shared_fake_provider[0].reset()
    return shared_fake_provider[0]


@pytest.fixture
def base_url(shared_fake_provider: tuple[FakeProvider, str]) -> str:
    return shared_fake_provider[1]

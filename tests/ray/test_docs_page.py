"""docs/scaling-out.md runs: its blocks, in order, in a fresh process with its own Ray cluster.

A process of its own because the page calls ``ray.init`` and ``ray.shutdown``
itself, as a user's script does.  Its model calls go to the fake provider
server (in this process, on loopback) through the provider environment
variables, which the page's Ray workers inherit.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lazybridge.testing import FakeProvider
from tests.conftest import PROVIDER_ENV
from tests.test_docs import RAY_PAGES, ROOT


@pytest.mark.timeout(300)  # a cluster's start and 2-core scheduling, not a hang
def test_the_scaling_out_page_runs(shared_fake_provider: tuple[FakeProvider, str]) -> None:
    fake, base_url = shared_fake_provider
    fake.reset()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for name in PROVIDER_ENV:
        env[name] = "test-key-not-a-secret" if name.endswith("_KEY") else base_url
    (page,) = RAY_PAGES
    code = f"from pathlib import Path; from tests.test_docs import run_page; run_page(Path({str(page)!r}), 'asyncio')"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "200 True" in done.stdout and "\n100\n" in done.stdout and "\n200\n" in done.stdout
    assert fake.rate_limited == 0 and len(fake.requests) == 2 * 200 + 2 * 100 + 200

"""Resources and deadlines: pool waits outside step_timeout, clients closed with their loop, one price import."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest

from lazybridge import Agent
from lazybridge.engines.llm import LLMEngine
from lazybridge.providers import pricing
from lazybridge.testing import FakeProvider

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-resources-test-0123456789"


def count_price_imports(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Forget genai-prices, as in a fresh process, and count the worker-thread calls that import it."""
    monkeypatch.setattr(pricing, "_prices_module", None)
    imports = [0]
    real_run_sync = anyio.to_thread.run_sync

    async def counting_run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if func is pricing._import_prices:
            imports[0] += 1
        return await real_run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting_run_sync)
    return imports


async def test_concurrent_price_loads_share_one_import(monkeypatch: pytest.MonkeyPatch) -> None:
    imports = count_price_imports(monkeypatch)
    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(pricing.load)
    assert pricing.loaded() and imports == [1]


async def test_the_first_fan_out_imports_prices_once(
    fake: FakeProvider, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thirty branches that all need a price on the first fan-out: one worker-thread import, not thirty."""
    imports = count_price_imports(monkeypatch)
    branches = [
        Agent(engine=LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY), name=f"b{i}") for i in range(30)
    ]
    env = await Agent.parallel(*branches).run("price me")

    assert env.ok and len(fake.requests) == 30
    assert all(branch.metadata.cost_usd > 0 for branch in env)  # every branch was priced ...
    assert imports == [1]  # ... after one import


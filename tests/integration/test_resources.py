"""Resources and deadlines: pool waits outside step_timeout, clients closed with their loop, one price import."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from lazybridge import Agent
from lazybridge.engines.llm import LLMEngine
from lazybridge.providers import pricing
from lazybridge.testing import FakeProvider, Reply

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



# -- step_timeout does not count the wait for a pooled connection ------------------------

POOL = httpx.Limits(max_connections=2, max_keepalive_connections=2)
HUNG_MODEL = "gpt-5.4-nano"  # the fake never answers it


def hang_one_model(fake: FakeProvider) -> None:
    fake.respond = lambda request: Reply(delay=3600) if request.model == HUNG_MODEL else "fine"


def pooled_agent(model: str, base_url: str, **kwargs: Any) -> Agent:
    """An agent on the shared pool of two connections (same origin and limits: one client, one limiter)."""
    return Agent(engine=LLMEngine(model, base_url=base_url, api_key=KEY, limits=POOL, max_retries=0), **kwargs)


async def test_step_timeout_does_not_count_the_wait_for_a_pooled_connection(
    fake: FakeProvider, base_url: str
) -> None:
    """The issue's scenario, scaled down: healthy branches queued behind hung requests still succeed.

    Two hung requests hold both connections for 1 s; a fan-out with
    step_timeout=0.5 s then has two more hung branches and two healthy ones.
    The healthy ones cannot send before 1 s, so if queueing counted, they
    would time out at 0.5 s without sending anything.
    """
    hang_one_model(fake)
    async with anyio.create_task_group() as tg:
        for i in range(2):
            tg.start_soon(pooled_agent(HUNG_MODEL, base_url, name=f"holder{i}", timeout=1.0).run, "hold")
        await anyio.wait_all_tasks_blocked()  # both holders took a slot (before sending) and hang
        started = anyio.current_time()
        panel = Agent.parallel(
            pooled_agent("gpt-5.4-mini", base_url, name="healthy"),
            pooled_agent("gpt-5.4-mini", base_url, name="healthy"),
            pooled_agent(HUNG_MODEL, base_url, name="hung"),
            pooled_agent(HUNG_MODEL, base_url, name="hung"),
            step_timeout=0.5,
        )
        env = await panel.run("go")
    waited = anyio.current_time() - started

    healthy, hung = list(env)[:2], list(env)[2:]
    assert [b.ok for b in healthy] == [True, True], [b.error for b in healthy]
    assert all(b.text() == "fine" for b in healthy)
    assert [b.error.type for b in hung if b.error is not None] == ["TimeoutError", "TimeoutError"]
    assert all("step_timeout" in b.error.message for b in hung if b.error is not None)
    assert waited >= 1.0  # the healthy branches really did queue past their step_timeout
    assert len(fake.requests) == 6  # every branch sent its request once it had a connection


async def test_waiting_for_a_connection_still_ends_on_the_agent_timeout_and_on_cancellation(
    fake: FakeProvider, base_url: str
) -> None:
    """The pause is for step_timeout only: an agent's own timeout and an outer cancel end the wait."""
    hang_one_model(fake)
    async with anyio.create_task_group() as tg:
        for i in range(2):
            tg.start_soon(pooled_agent(HUNG_MODEL, base_url, name=f"holder{i}").run, "hold")
        await anyio.wait_all_tasks_blocked()

        impatient = pooled_agent("gpt-5.4-mini", base_url, name="impatient", timeout=0.2)
        [branch] = await Agent.parallel(impatient, step_timeout=60).run_branches("go")
        assert branch.error is not None and "exceeded its timeout of 0.2s" in branch.error.message

        with anyio.fail_after(5):  # the wait is not shielded
            with anyio.move_on_after(0.2) as outer:
                await Agent.parallel(pooled_agent("gpt-5.4-mini", base_url, name="b"), step_timeout=60).run("go")
        assert outer.cancelled_caught
        assert len(fake.requests) <= 2  # neither waiting request was ever sent (only the holders')
        tg.cancel_scope.cancel()


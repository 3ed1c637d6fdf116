"""Batches on a Ray cluster: the same agent, one copy per actor, fed by Ray Data.

When one machine is not enough (CPU-heavy tools, local model servers taking
thousands of requests a second, datasets in object storage), run the batch
on Ray Data, the engine batch LLM inference already uses::

    import ray
    from lazybridge.ray import AgentMapper

    ds = ray.data.read_parquet("s3://bucket/tickets/")        # a "task" column
    ds = ds.map_batches(AgentMapper, fn_constructor_kwargs={"agent": make_agent},
                        concurrency=8, batch_size=64)
    ds.write_parquet("s3://bucket/labels/")

or, in Ray Data LLM's shape, ``build_processor(AgentProcessorConfig(...),
preprocess=..., postprocess=...)(ds)``.

Each actor builds the agent once (``agent`` is a zero-argument callable, so
nothing but the callable has to pickle) and keeps one event loop alive in a
thread of its own for its whole life: the pooled HTTP clients and the
process-wide rate limiter persist from batch to batch.  Each batch of rows
runs through :meth:`~lazybridge.AgentBase.run_batch` on that loop, and comes
back with the result columns of :data:`RESULT_COLUMNS` added.

Fault tolerance and back pressure are Ray Data's: an actor that dies is
restarted and its batch retried (Ray Data's defaults for actor pools are
``max_restarts=-1`` and ``max_task_retries=-1``; passing
``max_restarts=0`` to ``map_batches`` turns that off).

Rate limits: each actor has the process-wide limiter of
:mod:`lazybridge.providers._ratelimit`.  A limit *configured* on an engine
(``LLMEngine(rate_limit=RateLimit(requests_per_minute=...))``) is shared by
the whole cluster: one named Ray actor per provider account (origin plus a
digest of the key) hands out request permits, a few at a time, and every
actor's requests wait for them.  Header-learned pacing stays per actor (N
actors each pace to the rate the headers show), so configure the limit
when several actors share a key.  Token limits (``tokens_per_minute``) are
held per actor: give each its share.

Importing this module imports ``ray`` (``pip install 'lazybridge[ray]'``);
``import lazybridge`` does not.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.from_thread
import anyio.to_thread
import attrs

import ray

from ._result_row import result_row
from ._run import AgentBase
from .batch import DEFAULT_CONCURRENCY
from .envelope import Envelope
from .errors import ConfigurationError
from .providers import _ratelimit
from .providers._ratelimit import BURST_SECONDS, PermitSource, RateLimit

if TYPE_CHECKING:
    from ray.data import Dataset

__all__ = ["RESULT_COLUMNS", "AgentMapper", "AgentProcessor", "AgentProcessorConfig", "build_processor"]

#: The columns each output row gets, besides the input's own.
RESULT_COLUMNS = (
    "text", "ok", "error_type", "error_message", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "run_id",
)

#: Ray namespace of the rate-limit actors.
NAMESPACE = "lazybridge"
#: A permit grant covers this many seconds of the shared rate (at least one request):
#: few round trips to the permit actor at high rates, fair interleaving at low ones.
GRANT_SECONDS = 0.05
#: A granted permit not used this long after its time is dropped (using it later
#: would bunch requests above the rate).
STALE_SECONDS = BURST_SECONDS


def _check_factory(agent: object) -> Callable[[], AgentBase]:
    if isinstance(agent, AgentBase) or not callable(agent):
        raise TypeError(
            "agent must be a zero-argument callable that builds the agent (it runs once in each actor), "
            f"not {type(agent).__name__}"
        )
    return cast("Callable[[], AgentBase]", agent)


def _check_positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be an int >= 1, not {value!r}")
    return value


class AgentMapper:
    """A Ray Data batch mapper running an agent: ``ds.map_batches(AgentMapper, fn_constructor_kwargs={...})``.

    Arguments (``fn_constructor_kwargs``):
        agent: a zero-argument callable returning the agent (an ``Agent``, a
            parallel, a chain...), called once when the actor starts.  It is
            pickled to the actors: a module-level function or a
            ``functools.partial`` of one.
        task_column: the column holding each row's task (str).
        concurrency: tasks in flight at once in each actor (``run_batch``'s
            ``concurrency``).
        share_rate_limit: share configured rate limits with the other actors
            through a named Ray actor per provider account (see the module doc).
        backend: the event loop the actor runs agents on: ``"asyncio"`` or ``"trio"``.

    Each call takes a batch (a mapping of column name to values), runs every
    row's task through the agent and returns the batch's columns plus
    :data:`RESULT_COLUMNS`, row for row.  A task that fails is a row with
    ``ok`` false and its ``error_type``; a value that is not a string gets
    ``error_type`` ``"TypeError"``.  Nothing a task does fails the batch.

    Errors: bad arguments raise in the actor's constructor, naming the
    argument (Ray reports it when the dataset runs).  Closing: the event loop
    thread is stopped when Ray Data deletes the mapper (``close()`` does it
    explicitly).
    """

    def __init__(
        self,
        agent: Callable[[], AgentBase],
        *,
        task_column: str = "task",
        concurrency: int = DEFAULT_CONCURRENCY,
        share_rate_limit: bool = True,
        backend: str = "asyncio",
    ) -> None:
        factory = _check_factory(agent)
        if not isinstance(task_column, str) or not task_column:
            raise TypeError(f"task_column must be a non-empty str, not {task_column!r}")
        if backend not in ("asyncio", "trio"):
            raise ConfigurationError(f"backend must be 'asyncio' or 'trio', not {backend!r}")
        self._column = task_column
        self._concurrency = _check_positive(concurrency, "concurrency")
        if share_rate_limit:
            _ratelimit.set_permit_sources(_cluster_permits)
        self._stack = contextlib.ExitStack()
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal(backend))
        try:
            built = factory()
            if not isinstance(built, AgentBase):
                raise TypeError(f"agent() must return an agent, not {type(built).__name__}")
        except BaseException:
            self._stack.close()
            raise
        self._agent = built

    def __call__(self, batch: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
        """Run every row of ``batch``; its columns plus :data:`RESULT_COLUMNS`."""
        tasks = [task if not isinstance(task, str) else str(task) for task in batch[self._column]]
        envelopes = self._portal.call(self._run, tasks)
        out: dict[str, list[Any]] = {name: list(values) for name, values in batch.items()}
        for name in RESULT_COLUMNS:
            out[name] = []
        for env in envelopes:
            row = result_row(env)
            row["run_id"] = env.metadata.run_id
            for name in RESULT_COLUMNS:
                out[name].append(row[name])
        return out

    async def _run(self, tasks: list[Any]) -> list[Envelope]:
        found: list[Envelope | None] = [None] * len(tasks)
        async with self._agent.run_batch(tasks, concurrency=self._concurrency) as results:
            async for index, env in results:
                found[index] = env
        done = [env for env in found if env is not None]
        assert len(done) == len(tasks)  # run_batch yields every index once
        return done

    def close(self) -> None:
        """Stop the actor's event loop (its pooled connections close with it)."""
        self._stack.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


# -- the cluster-wide rate limit ----------------------------------------------------


class _PermitBank:
    """One account's shared request schedule (a GCRA, like the in-process one), in a named Ray actor."""

    def __init__(self, per_second: float) -> None:
        self._rate = per_second
        self._tat = 0.0

    def configure(self, per_second: float) -> None:
        self._rate = min(self._rate, per_second)  # the tightest declaration wins, as in-process

    def reserve(self) -> tuple[float, float, int]:
        """``(delay, spacing, count)``: ``count`` requests may start ``delay`` s from now, ``spacing`` s apart."""
        now = time.monotonic()
        rate = self._rate
        burst = max(1.0, rate * BURST_SECONDS)
        count = max(1, int(rate * GRANT_SECONDS))
        at = max(now, self._tat - (burst - 1.0) / rate)
        self._tat = max(self._tat, at) + count / rate
        return at - now, 1.0 / rate, count


class _ClusterPermits:
    """This process's side of a :class:`_PermitBank`: takes grants and spends them one request at a time."""

    def __init__(self, bank: Any, per_second: float) -> None:
        self._bank = bank
        #: The tightest rate this process declared to the bank (it keeps the tightest of all).
        self.declared = per_second
        self._lock = threading.Lock()
        self._slots: deque[float] = deque()

    async def take(self, tokens: int) -> None:
        with self._lock:
            now = time.monotonic()
            while self._slots and self._slots[0] < now - STALE_SECONDS:
                self._slots.popleft()
            slot = self._slots.popleft() if self._slots else None
        if slot is None:
            delay, spacing, count = await anyio.to_thread.run_sync(self._reserve, abandon_on_cancel=True)
            start = time.monotonic() + delay  # measured on receipt: never earlier than the bank meant
            slot = start
            with self._lock:
                self._slots.extend(start + i * spacing for i in range(1, count))
                self._slots = deque(sorted(self._slots))
        await anyio.sleep(max(0.0, slot - time.monotonic()))

    def _reserve(self) -> tuple[float, float, int]:
        result: tuple[float, float, int] = ray.get(self._bank.reserve.remote())
        return result


_permits_lock = threading.Lock()
_permits: dict[str, _ClusterPermits] = {}


def _bank_name(origin: str, key_digest: bytes | None) -> str:
    # A digest of the origin and of the key's digest: the key never leaves the process.
    digest = hashlib.sha256(origin.encode() + b"\0" + (key_digest or b"")).hexdigest()[:24]
    return f"ratelimit-{digest}"


def _cluster_permits(origin: str, key_digest: bytes | None, configured: RateLimit) -> PermitSource | None:
    """The permit source of an account (``set_permit_sources``'s hook).

    ``None`` without a configured request limit, or outside a Ray process
    (an ``AgentMapper`` called directly, with nothing to share with).
    """
    if configured.requests_per_minute is None or not ray.is_initialized():
        return None
    per_second = configured.requests_per_minute / 60.0
    name = _bank_name(origin, key_digest)
    with _permits_lock:
        found = _permits.get(name)
        if found is not None:
            # Every engine on the account comes here: only a tighter rate needs the bank.
            if per_second < found.declared:
                ray.get(found._bank.configure.remote(per_second))
                found.declared = per_second
            return found
        # Detached: the bank must outlive the actor that made it (a killed actor's
        # restart, the other actors); it ends with the cluster.
        remote: Any = ray.remote(num_cpus=0, max_restarts=-1)(_PermitBank)
        bank = (
            remote
            .options(name=name, namespace=NAMESPACE, get_if_exists=True, lifetime="detached")
            .remote(per_second)
        )
        ray.get(bank.configure.remote(per_second))  # it may exist already, made by another process
        found = _permits[name] = _ClusterPermits(bank, per_second)
        return found


# -- Ray Data LLM's shape -----------------------------------------------------------


def _check_concurrency(value: object) -> int | tuple[int, int]:
    if isinstance(value, tuple) and len(value) == 2:
        low = _check_positive(value[0], "concurrency")
        high = _check_positive(value[1], "concurrency")
        if low > high:
            raise ConfigurationError(f"concurrency (min, max) needs min <= max, not {value!r}")
        return (low, high)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ConfigurationError(f"concurrency must be an int >= 1 or a (min, max) tuple of them, not {value!r}")


@attrs.frozen
class AgentProcessorConfig:
    """What :func:`build_processor` runs, after Ray Data LLM's ``HttpRequestProcessorConfig``.

    Arguments:
        agent: a zero-argument callable building the agent, once per actor.
        concurrency: actors: an int ``n`` (a fixed pool of ``n``) or an
            autoscaling ``(min, max)``, as in Ray Data LLM.
        batch_size: rows per batch handed to an actor.  Smaller batches lose
            less work when an actor dies and start faster; larger ones
            amortise Ray's overhead.
        task_concurrency: tasks in flight at once in each actor.
        task_column: the column holding the task.
        share_rate_limit: share configured rate limits across the cluster.
        num_cpus: CPUs Ray reserves for each actor (agents mostly wait on the
            network: a fraction is usually right).

    Raises at construction, naming the argument, for a value out of range.
    """

    agent: Callable[[], AgentBase] = attrs.field()
    concurrency: int | tuple[int, int] = 1
    batch_size: int = 64
    task_concurrency: int = DEFAULT_CONCURRENCY
    task_column: str = "task"
    share_rate_limit: bool = True
    num_cpus: float = 1.0

    def __attrs_post_init__(self) -> None:
        _check_factory(self.agent)
        object.__setattr__(self, "concurrency", _check_concurrency(self.concurrency))
        _check_positive(self.batch_size, "batch_size")
        _check_positive(self.task_concurrency, "task_concurrency")
        if not isinstance(self.num_cpus, (int, float)) or not 0 <= self.num_cpus < math.inf:
            raise ConfigurationError(f"num_cpus must be a number >= 0, not {self.num_cpus!r}")


@attrs.frozen
class AgentProcessor:
    """``processor(dataset)``: the dataset with every row run through the agent (lazily, as Ray Data is)."""

    config: AgentProcessorConfig
    preprocess: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    postprocess: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def __call__(self, dataset: Dataset) -> Dataset:
        config = self.config
        if self.preprocess is not None:
            dataset = dataset.map(self.preprocess)
        dataset = dataset.map_batches(
            AgentMapper,
            fn_constructor_kwargs={
                "agent": config.agent,
                "task_column": config.task_column,
                "concurrency": config.task_concurrency,
                "share_rate_limit": config.share_rate_limit,
            },
            concurrency=config.concurrency,
            batch_size=config.batch_size,
            num_cpus=config.num_cpus,
        )
        if self.postprocess is not None:
            dataset = dataset.map(self.postprocess)
        return dataset


def build_processor(
    config: AgentProcessorConfig,
    preprocess: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    postprocess: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> AgentProcessor:
    """A processor in Ray Data LLM's shape: ``build_processor(config, preprocess=, postprocess=)(ds)``.

    ``preprocess`` maps each input row to one with the task column;
    ``postprocess`` maps each output row (the input's columns plus
    :data:`RESULT_COLUMNS`) to what you keep.
    """
    if not isinstance(config, AgentProcessorConfig):
        raise TypeError(f"config must be an AgentProcessorConfig, not {type(config).__name__}")
    for name, value in (("preprocess", preprocess), ("postprocess", postprocess)):
        if value is not None and not callable(value):
            raise TypeError(f"{name} must be a function of a row (dict) or None, not {type(value).__name__}")
    return AgentProcessor(config, preprocess, postprocess)

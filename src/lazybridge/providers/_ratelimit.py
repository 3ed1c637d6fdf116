"""Rate limits shared by every request of one provider account, in the whole process.

An *account* is an origin plus a digest of the API key (the key itself is
never kept).  Every :class:`~lazybridge.providers._http.Endpoint` of the
process that sends with that key to that origin -- whatever engine, event loop
or thread it runs in, sync calls included -- draws on the same
:class:`Account`, so a fan-out paces itself as the provider counts: per account.

Pacing
    Each dimension (requests, tokens) is a GCRA schedule, which is a token
    bucket expressed as one number: the *theoretical arrival time* of the
    next unit.  A request reserves its place in both schedules under a
    threading lock and then sleeps, on its own event loop, until its time:
    one lock acquisition and one timed sleep per request, FIFO, no
    cross-loop wake-ups, so two loops in two threads share a limit without
    knowing of each other.  A cancelled waiter gives its place back.

Where the limits come from
    *Configured* (``LLMEngine(rate_limit=RateLimit(...))``): paced at that
    rate from the first request, with a burst of a tenth of a second's
    allowance.  Several engines configuring one account: the tightest wins.
    *Learned*: while nothing is configured and no answer came back yet,
    requests start :data:`SLOW_START_BURST` at once, then at most
    :data:`SLOW_START` a second (the first answer
    usually names the limits, and a long generation does not hold everybody
    up); the rate-limit headers of every answer (OpenAI ``x-ratelimit-*``,
    Anthropic ``anthropic-ratelimit-*``) then set the pace, at 90% of the
    rate they show.  The headers name a limit, what remains and when the
    bucket is full again, not the window: the rate is read as a lower bound
    from ``(limit - remaining - 1) / reset``, or as the limit per minute (the
    documented window) while the bucket is nearly full; the highest reading
    is kept, and a much higher one replans the queue.  An account whose answers carry no such headers is not paced.
    Both: a configured limit is used for the dimension it names, and the
    headers only for a dimension left unconfigured.  A reading is a lower
    bound of the provider's rate, so it cannot show that a declared rate is
    too high; taking the tighter of the two paced a fan-out configured at the
    provider's exact rate at 0.9 x ~0.95 of it (``benchmarks/providers.py
    --rate-limited``: 1.15x the ideal time instead of 1.0x).  A declaration
    above the real limit is corrected by the 429s' pauses.

Pauses
    A 429 or 529 whose answer names a delay (``retry-after``...) of at most
    :data:`MAX_PAUSE` seconds pauses the whole account until then: requests
    waiting for their turn wait longer, and nobody sends.  Requests leaving a
    pause are spread out -- by the pace when the limit is known, else by a
    random delay of up to a second -- instead of coming back together.

Limits held outside the process
    Several processes sending with one key (Ray actors, see
    :mod:`lazybridge.ray`) each have their own accounts.  A *permit source*
    installed with :func:`set_permit_sources` gives each account whose limit
    is configured a :class:`PermitSource` as well: after the account's own
    turn, a request also waits for the source's, which the sharing processes
    draw on together.  The pause and what is learned from headers stay per
    process.

What a caller sees
    A request that waited longer than :data:`REPORT_WAIT` for its turn is told
    to the :data:`rate_wait_reporter` of its context, if one is set, as a
    :class:`RateWait` (the seconds and the reason: ``"requests"``,
    ``"tokens"``, ``"paused"`` after a 429/529, ``"slow_start"`` while the
    limits are not known yet).  The engine sets one when its run has event
    sinks and turns each into a ``rate_limit_wait`` event.

Every wait here pauses the run's ``step_timeout`` (see
:mod:`lazybridge._deadlines`) and ends at once on cancellation.
"""

from __future__ import annotations

import datetime
import math
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Protocol

import anyio
import attrs

from .._checks import check_float
from .._deadlines import deadlines_paused
from ..errors import ConfigurationError

__all__ = [
    "MAX_PAUSE",
    "REPORT_WAIT",
    "Account",
    "OnRateWait",
    "Permit",
    "PermitSource",
    "RateLimit",
    "RateWait",
    "account",
    "rate_wait_reporter",
    "reset_accounts",
    "set_permit_sources",
]

#: Longest provider-named delay that pauses a whole account (the retry cap).
MAX_PAUSE = 60.0
#: Share of a learned limit we pace to: headroom for timing jitter and other users of the key.
LEARNED_SHARE = 0.9
#: Requests per second of an account whose limits are not known yet, until its first answer.
SLOW_START = 20.0
#: Requests that may start at once on an account whose limits are not known yet.
SLOW_START_BURST = 5.0
#: How often a request waiting during slow start looks whether the limits became known.
SLOW_START_POLL = 0.05
#: The burst a configured limit allows, in seconds of its rate.
BURST_SECONDS = 0.1
#: A learned rate this much higher than the one the queue was planned at replans the queue.
REPLAN_GROWTH = 1.25
#: Longest single sleep of a waiter whose limits are known: how soon it sees a replan.
KNOWN_POLL = 0.25
#: Seconds a request must have waited for its turn to be reported (shorter is noise, not pacing).
REPORT_WAIT = 0.001


@attrs.frozen
class RateWait:
    """A request waited for its account's turn before it was sent.

    ``wait`` is the seconds it waited; ``reason`` what held it longest:
    ``"requests"`` or ``"tokens"`` (the limit of that dimension),
    ``"paused"`` (a 429/529 paused the account) or ``"slow_start"`` (the
    account's limits were not known yet).
    """

    wait: float
    reason: str


#: Called with each reported wait; must not raise.
OnRateWait = Callable[[RateWait], None]

#: Who hears of this context's waits.  A context variable, not an argument: the
#: wait happens in the account, below the model client, and every client sending
#: through :mod:`._http` shares it; the engine sets it around its own calls only.
rate_wait_reporter: ContextVar[OnRateWait | None] = ContextVar("lazybridge_rate_wait_reporter", default=None)


def _positive(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    checked = check_float(value, name, low=0.0, high=math.inf)
    if checked is None or checked <= 0.0:
        raise ConfigurationError(f"{name} must be a positive number or None, not {value!r}")
    return float(checked)


@attrs.frozen
class RateLimit:
    """The rate limits of one provider account, declared by the user.

    Arguments (each ``None``: not declared; learned from the provider's
    headers where it sends them):
        requests_per_minute: requests the account may start per minute.
        tokens_per_minute: input plus output tokens per minute.  A request
            counts its *estimated* input tokens when it is sent (the same
            estimate as :class:`~lazybridge.Budget`); the reply's usage
            corrects the count.

    Raises :class:`~lazybridge.errors.ConfigurationError` naming the
    argument for a value that is not a positive, finite number.
    """

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None

    def __attrs_post_init__(self) -> None:
        _positive(self.requests_per_minute, "requests_per_minute")
        _positive(self.tokens_per_minute, "tokens_per_minute")


class PermitSource(Protocol):
    """A rate limit held outside this process, shared with other processes sending with the same key."""

    async def take(self, tokens: int) -> None:
        """Wait for this source's turn for one request of about ``tokens`` input tokens.

        Cancellation: the wait ends at once (a place already reserved may be lost:
        the source is then slower, never faster, than its limit).
        """
        ...


#: ``fn(origin, key_digest, configured) -> PermitSource | None`` (see :func:`set_permit_sources`).
PermitSources = Callable[[str, "bytes | None", RateLimit], "PermitSource | None"]


class _Schedule:
    """One dimension's GCRA state: ``rate`` units per second, ``burst`` units ahead allowed."""

    __slots__ = ("burst", "rate", "tat")

    def __init__(self) -> None:
        self.rate: float | None = None
        self.burst = 1.0
        self.tat = 0.0

    def ready(self, cost: float) -> float:
        """The earliest time ``cost`` units may go (``-inf``: not paced)."""
        if self.rate is None:
            return -math.inf
        return self.tat - (self.burst - min(cost, self.burst)) / self.rate

    def take(self, at: float, cost: float) -> float:
        """Reserve ``cost`` units at ``at``; the reserved seconds (for a refund)."""
        if self.rate is None:
            return 0.0
        seconds = cost / self.rate
        self.tat = max(self.tat, at) + seconds
        return seconds


@attrs.define(eq=False)
class Permit:
    """One request's place in its account: what it reserved, to correct or give back."""

    tokens: int
    request_seconds: float = 0.0
    token_seconds: float = 0.0
    generation: int = 0
    #: Wall-clock time the request was sent (set by the sender): the earliest an
    #: answer's reset time can have been written.
    sent: float = 0.0


class Account:
    """The shared limiter of one provider account (see the module doc).  Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.requests = _Schedule()
        self.tokens = _Schedule()
        self.configured = RateLimit()
        self.learned: tuple[float | None, float | None] = (None, None)
        #: Whether an answer came back yet (or a limit was configured); until then: slow start.
        self.known = False
        #: Bumped when the schedule is replanned (the limits became known): reservations made
        #: before are made again.
        self.generation = 0
        self.paused_until = -math.inf
        #: When the latest pause began (``time.monotonic()``).
        self.paused_since = -math.inf
        #: Requests waiting for their turn right now (all loops).
        self.waiting = 0
        #: Times the account was paused by a 429/529 (a pause extended while on counts once).
        self.pauses = 0
        #: The limit shared with other processes, if any (see :func:`set_permit_sources`).
        self.source: PermitSource | None = None
        self._apply()

    # -- configuration ---------------------------------------------------------------

    def configure(self, limit: RateLimit | None) -> None:
        """Declare limits (the tightest declaration per dimension wins)."""
        if limit is None:
            return
        with self._lock:
            old = self.configured
            self.configured = RateLimit(
                _tighter(old.requests_per_minute, limit.requests_per_minute),
                _tighter(old.tokens_per_minute, limit.tokens_per_minute),
            )
            if not self.known:
                self._replan()
            self._apply()

    def reset(self) -> None:
        """Forget what was learned, the pause and the schedule (the configured limits stay)."""
        with self._lock:
            self.requests, self.tokens = _Schedule(), _Schedule()
            self.learned = (None, None)
            self.known = False
            self.generation += 1
            self.paused_until = -math.inf
            self.pauses = 0
            self._apply()

    def _apply(self) -> None:
        """Recompute the schedules' rates from the configured and learned limits (lock held)."""
        conf = self.configured
        if conf.requests_per_minute is not None or conf.tokens_per_minute is not None:
            self.known = True
        for schedule, per_minute, learned in (
            (self.requests, conf.requests_per_minute, self.learned[0]),
            (self.tokens, conf.tokens_per_minute, self.learned[1]),
        ):
            # The declaration wins over a reading (a lower bound: see the module doc).
            if per_minute is not None:
                # A tenth of a second's allowance at once.
                schedule.rate = rate = per_minute / 60.0
                schedule.burst = max(1.0, rate * BURST_SECONDS)
            elif learned is not None:
                # No burst: the provider's bucket may already be partly spent by someone else.
                schedule.rate, schedule.burst = learned * LEARNED_SHARE, 1.0
            else:
                schedule.rate = None
        if not self.known:
            self.requests.rate, self.requests.burst = SLOW_START, SLOW_START_BURST

    def _replan(self) -> None:
        """Drop the slow-start schedule: the waiters reserve again under the real limits (lock held)."""
        now = self._clock()
        self.known = True
        self.generation += 1
        self.requests.tat = self.tokens.tat = max(now, self.paused_until)

    # -- admission -------------------------------------------------------------------

    async def acquire(self, tokens: int) -> Permit:
        """Wait for this account's turn for one request of about ``tokens`` input tokens.

        Then, when the account has a :attr:`source`, for the source's turn too.
        Cancellation: the wait ends at once and the place is given back.
        While waiting, the run's step deadlines stand still.
        """
        permit = await self._acquire_here(tokens)
        source = self.source
        if source is not None:
            try:
                with deadlines_paused():
                    await source.take(tokens)
            except BaseException:
                with self._lock:
                    if permit.generation == self.generation:
                        self._give_back(permit)
                raise
        return permit

    async def _acquire_here(self, tokens: int) -> Permit:
        """This process's turn (the module doc's pacing and pauses)."""
        permit = Permit(tokens)
        started: float | None = None
        reason, longest = "", 0.0  # what held the request longest, for the report
        while True:
            with self._lock:
                now = self._clock()
                if started is None:
                    started = now
                if now < self.paused_until:
                    # Leave the pause spread out: by the pace if known, else at random.
                    at = self.paused_until
                    if self.requests.rate is None:
                        at += random.uniform(0.0, min(1.0, at - now))
                    reserved, why = False, "paused"
                else:
                    by_requests, by_tokens = self.requests.ready(1), self.tokens.ready(tokens)
                    at = max(now, by_requests, by_tokens)
                    permit.request_seconds = self.requests.take(at, 1)
                    permit.token_seconds = self.tokens.take(at, tokens)
                    permit.generation = self.generation
                    if at <= now:
                        break
                    reserved = True
                    why = "slow_start" if not self.known else "requests" if by_requests >= by_tokens else "tokens"
                self.waiting += 1
            if at - now > longest:
                reason, longest = why, at - now
            try:
                again = await self._sleep_until(at, permit if reserved else None)
            finally:
                with self._lock:
                    self.waiting -= 1
            if not again:
                break
        if reason:
            waited = self._clock() - started
            report = rate_wait_reporter.get()
            if report is not None and waited > REPORT_WAIT:
                report(RateWait(waited, reason))
        return permit

    async def _sleep_until(self, at: float, permit: Permit | None) -> bool:
        """Sleep until ``at``; whether the request must queue again (a pause began, a replan).

        During slow start the sleep is cut in :data:`SLOW_START_POLL` pieces, so a
        waiter learns at once that the limits became known.
        """
        try:
            with deadlines_paused():
                while True:
                    with self._lock:
                        now = self._clock()
                        if permit is not None and permit.generation != self.generation:
                            permit.request_seconds = permit.token_seconds = 0.0  # replanned: nothing to give back
                            return True
                        if now >= at:
                            if permit is None:
                                return True
                            if self.paused_until > at:
                                self._give_back(permit)
                                return True
                            return False
                        if self.configured.requests_per_minute is not None:
                            piece = at - now  # a configured pace never grows: no replan to watch for
                        else:
                            piece = min(at - now, KNOWN_POLL if self.known else SLOW_START_POLL)
                    await anyio.sleep(piece)
        except BaseException:
            if permit is not None:
                with self._lock:
                    if permit.generation == self.generation:
                        self._give_back(permit)
            raise

    def _give_back(self, permit: Permit) -> None:
        """Return a reservation's place (lock held)."""
        self.requests.tat -= permit.request_seconds
        self.tokens.tat -= permit.token_seconds
        permit.request_seconds = permit.token_seconds = 0.0

    # -- what the provider said ----------------------------------------------------

    def settle(self, permit: Permit, headers: Mapping[str, str] | None, used_tokens: int | None) -> None:
        """Learn from an answer's headers, and correct the token count by its usage.

        ``headers`` is ``None`` when no answer came (a connection error, a cancellation).
        """
        with self._lock:
            if headers is not None:
                # An absolute reset time (Anthropic) was written between the send and now:
                # measured from the send, the reset is never underestimated.
                learned = _learn(headers, permit.sent or time.time())
                # Each reading is a lower bound of the provider's rate: keep the highest.
                old = self.learned
                self.learned = (_higher(old[0], learned[0]), _higher(old[1], learned[1]))
                # A configured dimension does not follow the readings: its pace never grows.
                conf = self.configured
                grew = (conf.requests_per_minute is None and _grew(old[0], self.learned[0])) or (
                    conf.tokens_per_minute is None and _grew(old[1], self.learned[1])
                )
                if not self.known or grew:
                    # The waiters' places were planned at a slower pace (or the slow start):
                    # they queue again.  Also without headers: there is nothing to wait for.
                    # (A replan forgets the schedule's debt, so it must not happen for nothing.)
                    self._replan()
                self._apply()
            if (
                used_tokens is not None
                and self.tokens.rate is not None
                and permit.generation == self.generation
            ):
                self.tokens.tat += (used_tokens - permit.tokens) / self.tokens.rate

    def pause(self, seconds: float) -> None:
        """Nobody of this account sends for ``seconds`` (a 429/529 named the delay)."""
        if not 0.0 < seconds <= MAX_PAUSE:
            return
        with self._lock:
            now = self._clock()
            until = now + seconds
            if until > self.paused_until:
                if self.paused_until < now:
                    self.pauses += 1
                    self.paused_since = now
                self.paused_until = until
                # The schedules restart after the pause: nobody goes back in a burst.
                for schedule in (self.requests, self.tokens):
                    if schedule.rate is not None:
                        schedule.tat = max(schedule.tat, until)


def _higher(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _grew(old: float | None, new: float | None) -> bool:
    return old is not None and new is not None and new > old * REPLAN_GROWTH


def _tighter(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


# -- the provider's headers -------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _seconds(raw: str, now: float) -> float | None:
    """A reset header: an OpenAI duration (``6m0s``, ``20ms``) or an RFC 3339 time (Anthropic)."""
    raw = raw.strip()
    if not raw:
        return None
    parts = _DURATION.findall(raw)
    if parts and "".join(n + u for n, u in parts) == raw:
        return sum(float(n) * _UNIT[u] for n, u in parts)
    try:
        when = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - now, 0.0)


def _rate(headers: Mapping[str, str], limit: str, remaining: str, reset: str, now: float) -> float | None:
    """A lower bound of the units per second a limit allows, from its ``limit``/``remaining``/``reset`` headers.

    The headers do not say the window.  ``reset`` is when the bucket is full
    again, so the refill rate is about ``(limit - remaining) / reset``; when
    the bucket is (nearly) full that cannot be told and the window is taken
    to be the documented minute.
    """
    try:
        cap = float(headers[limit])
    except (KeyError, ValueError):
        return None
    if not math.isfinite(cap) or cap <= 0:
        return None
    try:
        left = float(headers.get(remaining, ""))
    except ValueError:
        left = cap
    wait = _seconds(headers.get(reset, ""), now)
    deficit = cap - left
    if wait and wait > 0 and deficit >= 2:
        # ``remaining`` is rounded down, so the true deficit is above deficit - 1:
        # that is a lower bound of the refill rate.
        return (deficit - 1) / wait
    return cap / 60.0  # the documented window: a minute


def _learn(headers: Mapping[str, str], now: float) -> tuple[float | None, float | None]:
    """``(requests/s, tokens/s)`` the answer's rate-limit headers allow, ``None`` where silent."""
    if "x-ratelimit-limit-requests" in headers or "x-ratelimit-limit-tokens" in headers:
        return (
            _rate(headers, "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                  "x-ratelimit-reset-requests", now),
            _rate(headers, "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
                  "x-ratelimit-reset-tokens", now),
        )
    prefix = "anthropic-ratelimit-"
    if prefix + "requests-limit" not in headers and prefix + "tokens-limit" not in headers:
        if prefix + "input-tokens-limit" not in headers:
            return None, None
    tokens = "tokens" if prefix + "tokens-limit" in headers else "input-tokens"
    return (
        _rate(headers, prefix + "requests-limit", prefix + "requests-remaining", prefix + "requests-reset", now),
        _rate(headers, f"{prefix}{tokens}-limit", f"{prefix}{tokens}-remaining", f"{prefix}{tokens}-reset", now),
    )


# -- the process-wide registry ---------------------------------------------------------

_accounts_lock = threading.Lock()
_accounts: dict[tuple[str, bytes | None], Account] = {}
_sources: PermitSources | None = None


def set_permit_sources(sources: PermitSources | None) -> None:
    """Install (or, with ``None``, remove) the process's source of shared permits.

    ``sources(origin, key_digest, configured)`` is called whenever an account
    is given a configured :class:`RateLimit` (when an engine with
    ``rate_limit=`` is made), with the account's limits so far; what it
    returns becomes the account's :attr:`Account.source` (``None``: the limit
    is this process's alone).  Accounts made before it is installed are
    unchanged until they are configured again.  ``lazybridge.ray`` installs
    one in each actor it runs agents in.
    """
    global _sources
    _sources = sources


def account(origin: str, key_digest: bytes | None, limit: RateLimit | None = None) -> Account:
    """The account of ``origin`` and the key whose digest is ``key_digest`` (made on first use)."""
    with _accounts_lock:
        found = _accounts.get((origin, key_digest))
        if found is None:
            found = _accounts[origin, key_digest] = Account()
    found.configure(limit)
    sources = _sources
    if limit is not None and sources is not None:
        found.source = sources(origin, key_digest, found.configured)
    return found


def reset_accounts() -> None:
    """Forget what every account learned, its pauses and its schedule (configured limits stay).

    For tests, which share one fake server and so one account per key.
    """
    with _accounts_lock:
        accounts = list(_accounts.values())
    for found in accounts:
        found.reset()

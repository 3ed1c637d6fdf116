"""Budget: a cap on what one run -- and everything it runs -- may spend on model requests.

``Agent(..., budget=Budget(max_cost_usd=0.50))`` (or ``Agent.parallel``,
``Agent.chain``, a ``Plan`` agent) caps one run of that agent together with
every run nested in it: parallel branches, chain stages and plan steps,
agents called as tools, agents that tools run themselves.  A :class:`Budget`
is configuration (frozen, reusable); each run of an agent that has one opens
an :class:`Account` on its :class:`~lazybridge.events.RunContext`, which the
nested runs find through their parent links.  Every account from a request's
run up to the root applies, so nested budgets all hold and the tighter wins.

How a request is admitted (:func:`reserve`, called by the tool loop before
it sends anything):

* its *worst case* is reserved in every account: one request, the request's
  estimated input tokens (:func:`estimate_input_tokens`) plus its
  ``max_tokens``, and that usage priced by the model client's ``cost_usd``;
* if an account cannot cover it -- the budget is spent, or this request
  could exceed it -- the request is not sent and
  :class:`~lazybridge.errors.BudgetExceededError` is raised (the run ends
  with that error envelope, still reporting what it spent);
* under a token or cost cap the request's ``max_tokens`` is lowered to what
  is left, so its worst case fits; a request without ``max_tokens`` is sent
  with ``min(what is left, DEFAULT_OUTPUT_RESERVE)`` -- set
  ``LLMEngine(max_tokens=...)`` for longer answers;
* when the reply's usage arrives the reservation is replaced by what the
  reply really spent (:meth:`Reservation.release` after the run's live
  account has recorded it).  A request that fails or is cancelled gives its
  tokens and cost back but still counts as a request.

Because concurrent branches reserve before they send, they cannot overshoot
together: fifty branches under ``max_requests=10`` send exactly ten
requests.  The input side is an *estimate* (about four characters a token),
so a cost or token cap can be passed by the estimate's error on the inputs
of the requests in flight; the request count and the output side are exact.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import attrs

from ._checks import check_float, check_whole
from .errors import BudgetExceededError, ConfigurationError
from .memory import approx_tokens
from .messages import ModelRequest, Usage

if TYPE_CHECKING:
    from .events import RunContext
    from .providers.base import ModelClient

__all__ = ["DEFAULT_OUTPUT_RESERVE", "Budget", "estimate_input_tokens"]

#: The ``max_tokens`` given under a token or cost cap to a request that set none
#: (the same as Anthropic's default): without one its worst case has no bound.
DEFAULT_OUTPUT_RESERVE = 4096

#: Tokens counted per message on top of its text (roles and separators).
_PER_MESSAGE_TOKENS = 4

# One lock for every account: the critical sections are a few additions, and
# one lock makes a reservation across several nested accounts atomic without
# a lock order.  A threading lock (not an anyio one) because a sync tool in a
# worker thread may start a nested run on its own event loop, and that run
# reserves from the same accounts.
_lock = threading.Lock()


@attrs.frozen
class Budget:
    """A cap on one run of an agent and on everything that run runs.

    Arguments (each ``None``: no cap on that):
        max_cost_usd: the most the run may spend, in US dollars (priced like
            ``metadata.cost_usd``).  A model whose price is unknown is refused
            at its first request under this cap, rather than counted as free.
        max_tokens: the most input plus output tokens the run's model
            requests may use.
        max_requests: the most model requests the run may send (a request the
            HTTP layer retries counts once).

    Raises :class:`~lazybridge.errors.ConfigurationError` naming the argument
    for a negative, non-finite or non-numeric cap.  A budget is a value:
    give the same one to several agents and each run of each gets its own
    account.
    """

    max_cost_usd: float | None = None
    max_tokens: int | None = None
    max_requests: int | None = None

    def __attrs_post_init__(self) -> None:
        check_float(self.max_cost_usd, "max_cost_usd", low=0.0, high=math.inf)
        check_whole(self.max_tokens, "max_tokens", minimum=0, optional=True)
        check_whole(self.max_requests, "max_requests", minimum=0, optional=True)


def check_budget(budget: object) -> Budget | None:
    """``budget=`` of an agent: a :class:`Budget` or ``None``."""
    if budget is None or isinstance(budget, Budget):
        return budget
    raise ConfigurationError(f"budget must be a lazybridge.Budget or None, not {type(budget).__name__} {budget!r:.40}")


class Account:
    """One run's budget account: what its requests in flight have reserved.

    What the run has *spent* is read from its live spend account
    (:attr:`RunContext.spent <lazybridge.events.RunContext.spent>`), which
    counts every reply of the run and of its nested runs as it arrives, so
    nothing is counted twice.  Mutated only under the module's lock.
    """

    __slots__ = ("budget", "name", "requests", "reserved_cost", "reserved_tokens", "run")

    def __init__(self, budget: Budget, run: RunContext) -> None:
        self.budget = budget
        self.run = run
        self.name = run.agent
        self.requests = 0
        self.reserved_tokens = 0
        self.reserved_cost = 0.0

    def __repr__(self) -> str:
        return f"Account({self.name!r}, {self.budget!r}, requests={self.requests})"


@attrs.define
class Reservation:
    """A request's worst case, held in its accounts until :meth:`release`."""

    accounts: tuple[Account, ...]
    tokens: int
    cost: float
    released: bool = False

    def release(self) -> None:
        """Give the reserved tokens and cost back (idempotent); the request still counts.

        Call it after the reply's real usage has been recorded in the run's
        live account, so that no reader sees the reply counted in neither.
        """
        with _lock:
            if self.released:
                return
            self.released = True
            for account in self.accounts:
                account.reserved_tokens -= self.tokens
                account.reserved_cost -= self.cost


def estimate_input_tokens(request: ModelRequest) -> int:
    """A cheap estimate of a request's input tokens: about four characters a token.

    Counts the messages' text, tool calls and results (images as
    :data:`~lazybridge.memory.IMAGE_TOKENS` each), the system prompt, the
    tools' and the output schema's JSON, and a few tokens per message.  It is
    an estimate, not a tokenizer: real counts differ by model and language.
    """
    chars = len(request.system or "")
    if request.tools:
        chars += sum(len(t.name) + len(t.description or "") + len(_json(t.parameters)) for t in request.tools)
    if request.output_schema is not None:
        chars += len(_json(request.output_schema.schema))
    return approx_tokens(request.messages) + (chars + 3) // 4 + _PER_MESSAGE_TOKENS * len(request.messages)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def accounts_of(run: RunContext | None) -> tuple[Account, ...]:
    """The accounts a request of ``run`` draws on: its own run's and every enclosing run's."""
    found: list[Account] = []
    node = run
    while node is not None:
        account = node.account_owner().account
        if account is not None:
            found.append(account)
        node = node.parent
    return tuple(found)


@attrs.frozen
class Quote:
    """What a request's usage costs, for :func:`reserve`: input priced, output per token."""

    input_tokens: int
    input_cost: float
    output_cost_per_token: float


def reserve(accounts: Sequence[Account], request_max_tokens: int | None, quote: Quote) -> tuple[Reservation, int | None]:
    """Reserve a request's worst case in every account, or raise ``BudgetExceededError``.

    Returns the reservation and the ``max_tokens`` to send (lowered to what
    the tightest account leaves; ``None`` when no account caps tokens or cost
    and the request set none).  Raises before anything is reserved, so a
    refused request takes nothing from any account.
    """
    cap: float = math.inf
    limited = False
    with _lock:
        for account in accounts:
            budget = account.budget
            if budget.max_requests is not None and account.requests >= budget.max_requests:
                _refuse(account, f"max_requests={budget.max_requests} reached ({account.requests} requests sent)")
            if budget.max_tokens is None and budget.max_cost_usd is None:
                continue
            limited = True
            spent = account.run.spent
            if budget.max_tokens is not None:
                left = budget.max_tokens - spent.input_tokens - spent.output_tokens - account.reserved_tokens
                if left - quote.input_tokens < 1:
                    _refuse(account, _tokens_reason(budget.max_tokens, spent.input_tokens + spent.output_tokens, left))
                cap = min(cap, left - quote.input_tokens)
            if budget.max_cost_usd is not None:
                left_usd = budget.max_cost_usd - spent.cost_usd - account.reserved_cost
                room = left_usd - quote.input_cost
                per_token = quote.output_cost_per_token
                if room < 0 or (per_token > 0 and room < per_token):
                    _refuse(
                        account,
                        f"max_cost_usd={budget.max_cost_usd:g} cannot cover another request "
                        f"(${spent.cost_usd:.6g} spent, ${max(left_usd, 0.0):.6g} left)",
                    )
                if per_token > 0:
                    cap = min(cap, math.floor(room / per_token))
        max_tokens = request_max_tokens
        if limited:
            fallback = DEFAULT_OUTPUT_RESERVE if request_max_tokens is None else request_max_tokens
            max_tokens = int(min(cap, fallback))
        out = 0 if max_tokens is None else max_tokens
        tokens = quote.input_tokens + out
        cost = quote.input_cost + out * quote.output_cost_per_token
        for account in accounts:
            account.requests += 1
            account.reserved_tokens += tokens
            account.reserved_cost += cost
    return Reservation(tuple(accounts), tokens, cost), max_tokens


def _tokens_reason(cap: int, spent: int, left: int) -> str:
    return f"max_tokens={cap} cannot cover another request ({spent} tokens spent, {max(left, 0)} left)"


def _refuse(account: Account, reason: str) -> None:
    raise BudgetExceededError(f"budget of {account.name!r}: {reason}; the request was not sent")


async def quote(client: ModelClient, request: ModelRequest, accounts: Iterable[Account]) -> Quote:
    """Price ``request``'s estimated input and its output per token with ``client.cost_usd``.

    Under a ``max_cost_usd`` cap the model's price must be known: a client
    with a ``price_known()`` coroutine that says ``False`` gets
    :class:`~lazybridge.errors.BudgetExceededError` (a client without one is
    taken at its ``cost_usd``).  Without a cost cap nothing is priced.
    """
    tokens = estimate_input_tokens(request)
    capped = [account for account in accounts if account.budget.max_cost_usd is not None]
    if not capped:
        return Quote(tokens, 0.0, 0.0)
    price_known = getattr(client, "price_known", None)
    if price_known is not None and not await price_known():
        raise BudgetExceededError(
            f"budget of {capped[0].name!r}: max_cost_usd={capped[0].budget.max_cost_usd:g} cannot be kept "
            f"because no price is known for model {client.model!r} of provider {client.provider!r}; the "
            "request was not sent. Set one (USD per million tokens) with: from lazybridge.providers import "
            f"Price, set_price; set_price({client.provider!r}, {client.model!r}, Price(input=..., output=...))"
        )
    input_cost = await client.cost_usd(Usage(tokens, 0))
    per_token = await client.cost_usd(Usage(0, 1_000_000)) / 1_000_000
    return Quote(tokens, input_cost, per_token)

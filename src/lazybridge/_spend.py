"""Spend: the one value for "tokens and cost" -- inclusive totals and their nested part.

Every roll-up is a sum of Spends: a parallel wrapper is the sum of its
branches', as nested spend; a chain or plan, the sum of its steps'; an LLM
run, its own model calls plus its sub-agents', the latter nested.  See the
cost rule in :mod:`lazybridge.envelope` (``EnvelopeMetadata.spend`` /
``EnvelopeMetadata.of_spend`` convert).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import attrs

__all__ = ["Spend", "SpendFields"]


class SpendFields(Protocol):
    """Anything with the accounting fields: a :class:`Spend`, an ``EnvelopeMetadata``."""

    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cost_usd(self) -> float: ...
    @property
    def nested_input_tokens(self) -> int: ...
    @property
    def nested_output_tokens(self) -> int: ...
    @property
    def nested_cost_usd(self) -> float: ...
    @property
    def usage_reported(self) -> bool: ...


@attrs.frozen
class Spend:
    """Tokens and cost of a run: inclusive totals, and the part spent by nested runs.

    ``usage_reported`` is ``False`` when some model reply behind it came
    without token usage (the totals are then a lower bound).  ``a + b`` adds
    every field; :meth:`as_nested` is a run's spend seen from the run that
    started it.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    nested_input_tokens: int = 0
    nested_output_tokens: int = 0
    nested_cost_usd: float = 0.0
    usage_reported: bool = True

    @classmethod
    def own(cls, input_tokens: int, output_tokens: int, cost_usd: float, *, reported: bool = True) -> Spend:
        """Spend of a run's own model calls (nothing nested)."""
        return cls(input_tokens, output_tokens, cost_usd, 0, 0, 0.0, reported)

    def __add__(self, other: Spend) -> Spend:
        return Spend(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cost_usd + other.cost_usd,
            self.nested_input_tokens + other.nested_input_tokens,
            self.nested_output_tokens + other.nested_output_tokens,
            self.nested_cost_usd + other.nested_cost_usd,
            self.usage_reported and other.usage_reported,
        )

    def as_nested(self) -> Spend:
        """The whole of this spend as the nested part of a parent's."""
        i, o, c = self.input_tokens, self.output_tokens, self.cost_usd
        return Spend(i, o, c, i, o, c, self.usage_reported)

    @classmethod
    def total(cls, spends: Iterable[SpendFields]) -> Spend:
        """The sum of ``spends`` in one pass.

        Takes anything with the accounting fields -- an ``EnvelopeMetadata``
        as well as a Spend -- so a fan-out sums thousands of branches without
        making a value per branch.
        """
        i = o = ni = no = 0
        c = nc = 0.0
        reported = True
        for s in spends:
            i += s.input_tokens
            o += s.output_tokens
            c += s.cost_usd
            ni += s.nested_input_tokens
            no += s.nested_output_tokens
            nc += s.nested_cost_usd
            reported = reported and s.usage_reported
        return cls(i, o, c, ni, no, nc, reported)

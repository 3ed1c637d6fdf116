"""ChainEngine: stages run one after another (``Agent.chain``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ..envelope import Envelope, EnvelopeMetadata
from ..events import RunContext

if TYPE_CHECKING:
    from ..agent import Agent, AgentBase


class ChainEngine:
    """Each stage's ``text()`` becomes the next stage's task.

    The result is the last stage's envelope with the chain's inclusive cost
    and tokens; every stage is a nested run, so ``nested_*`` equal the
    totals.  The first stage that fails ends the chain and its error
    envelope (with the totals so far) is the result.
    """

    model: str | None = None

    def __init__(self, stages: tuple[AgentBase, ...]) -> None:
        self.stages = stages

    async def run(self, task: Envelope, *, agent: Agent, run: RunContext) -> Envelope:
        current = task
        input_tokens = output_tokens = 0
        cost = 0.0
        for stage in self.stages:
            current = await stage.run(current)
            meta = current.metadata
            input_tokens += meta.input_tokens
            output_tokens += meta.output_tokens
            cost += meta.cost_usd
            if not current.ok:
                break
        metadata = EnvelopeMetadata(
            model=current.metadata.model,
            provider=current.metadata.provider,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost,
            nested_input_tokens=input_tokens,
            nested_output_tokens=output_tokens,
            nested_cost_usd=cost,
        )
        return attrs.evolve(current, metadata=metadata)

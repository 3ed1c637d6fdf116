"""Tool: a function the model may call.

(Skeleton: ``from_schema`` and ``call``.  Building a Tool from a plain
function's signature and docstring lives in ``from_function``.)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.to_thread
import attrs

from .messages import ToolSpec


@attrs.frozen
class Tool:
    """A callable offered to a model, with the JSON Schema of its parameters."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    fn: Callable[..., Any] = attrs.field(repr=False)
    timeout: float | None = None

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str,
        parameters: Mapping[str, Any],
        fn: Callable[..., Any],
        *,
        timeout: float | None = None,
    ) -> Tool:
        """A tool with a hand-written JSON Schema; ``fn`` gets the arguments as keywords."""
        return cls(name, description, parameters, fn, timeout)

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)

    async def call(self, arguments: Mapping[str, Any]) -> Any:
        """Run the tool with ``arguments``; sync functions run in a worker thread."""
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(**arguments)
        return await anyio.to_thread.run_sync(lambda: self.fn(**arguments), abandon_on_cancel=True)

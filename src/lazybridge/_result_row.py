"""One envelope as a flat row: what ``lazybridge batch`` writes and ``lazybridge.ray`` returns as columns."""

from __future__ import annotations

from typing import Any

from .envelope import Envelope

__all__ = ["result_row"]


def result_row(env: Envelope) -> dict[str, Any]:
    """``text`` (``None`` for a failure), ``ok``, ``error_type``, ``error_message``, tokens, cost, latency."""
    meta = env.metadata
    return {
        "text": env.text() if env.ok else None,
        "ok": env.ok,
        "error_type": env.error.type if env.error else None,
        "error_message": env.error.message if env.error else None,
        "input_tokens": meta.input_tokens,
        "output_tokens": meta.output_tokens,
        "cost_usd": meta.cost_usd,
        "latency_ms": round(meta.latency_ms, 1),
    }

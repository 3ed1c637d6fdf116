"""Engines: what an Agent runs (a model loop, a plan, a scripted double)."""

from .base import Engine

__all__ = ["Engine"]

"""Test helpers: agents and engines that need no provider."""

from .mock import MockAgent, ScriptedEngine

__all__ = ["MockAgent", "ScriptedEngine"]

"""Test helpers: agents and engines that need no provider, and a fake provider server.

* :class:`MockAgent` / :class:`ScriptedEngine` -- scripted answers, no HTTP;
* :class:`ScriptedModel` -- scripted *model replies* for ``LLMEngine``: the real
  agent loop (tools, structured output, memory, streaming), no socket;
* :class:`FakeProvider` -- an ASGI app speaking every provider's wire format,
  scripted with :class:`Reply` objects, recording :class:`RecordedRequest`,
  optionally holding each key to a :class:`FakeRateLimit`;
* :func:`reset_rate_limits` -- forget what the process learned about every
  provider account's rate limits (tests sharing one fake server call it);
* :class:`Cassette` -- record a run's real HTTP exchanges once, replay them
  with no network (an httpx transport: ``LLMEngine(http_client=cassette.client())``);
* :func:`serve_fake_provider` -- runs it on a loopback socket in a background
  thread (needs the ``lazybridge[testing]`` extra: uvicorn).
"""

from ..providers._ratelimit import reset_accounts as reset_rate_limits
from ._server import serve_fake_provider
from .cassette import Cassette, CassetteMismatch
from .fake_provider import FakeProvider, FakeRateLimit, RecordedRequest, Reply
from .mock import MockAgent, ScriptedEngine
from .model import ScriptedModel

__all__ = [
    "Cassette",
    "CassetteMismatch",
    "FakeProvider",
    "FakeRateLimit",
    "MockAgent",
    "RecordedRequest",
    "Reply",
    "ScriptedEngine",
    "ScriptedModel",
    "reset_rate_limits",
    "serve_fake_provider",
]

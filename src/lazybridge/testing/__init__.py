"""Test helpers: agents and engines that need no provider, and a fake provider server.

* :class:`MockAgent` / :class:`ScriptedEngine` -- scripted answers, no HTTP;
* :class:`ScriptedModel` -- scripted *model replies* for ``LLMEngine``: the real
  agent loop (tools, structured output, memory, streaming), no socket;
* :class:`FakeProvider` -- an ASGI app speaking every provider's wire format,
  scripted with :class:`Reply` objects, recording :class:`RecordedRequest`;
* :class:`Cassette` -- record a run's real HTTP exchanges once, replay them
  with no network (an httpx transport: ``LLMEngine(http_client=cassette.client())``);
* :func:`serve_fake_provider` -- runs it on a loopback socket in a background
  thread (needs the ``lazybridge[testing]`` extra: uvicorn).
"""

from ._server import serve_fake_provider
from .cassette import Cassette, CassetteMismatch
from .fake_provider import FakeProvider, RecordedRequest, Reply
from .mock import MockAgent, ScriptedEngine
from .model import ScriptedModel

__all__ = [
    "Cassette",
    "CassetteMismatch",
    "FakeProvider",
    "MockAgent",
    "RecordedRequest",
    "Reply",
    "ScriptedEngine",
    "ScriptedModel",
    "serve_fake_provider",
]

"""Shared by every example: real providers when their keys are set, else the fake server.

``with providers("ANTHROPIC_API_KEY", ...) as fake:`` -- if every key named is
set in the environment, nothing changes and ``fake`` is ``None``: the example
talks to the real APIs.  Otherwise the fake provider server
(``lazybridge.testing``) is started on a loopback port and every provider's
key and base-URL variable points at it for the duration of the block, so
``LLMEngine("claude-haiku-4-5")`` with no arguments works offline.  ``fake``
is then the :class:`~lazybridge.testing.FakeProvider`, which an example may
script (``fake.push(...)``, ``respond=``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from lazybridge.testing import FakeProvider, RecordedRequest, Reply, serve_fake_provider

__all__ = ["FakeProvider", "RecordedRequest", "Reply", "providers"]

#: Every variable the fake takes over: keys get a dummy value, base URLs the server's URL.
_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY")
_BASE_URLS = ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "GEMINI_BASE_URL", "DEEPSEEK_BASE_URL")
_CLEARED = ("GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL")


@contextmanager
def providers(
    *keys: str,
    respond: Callable[[RecordedRequest], Reply | str] | None = None,
    latency: float = 0.05,
) -> Iterator[FakeProvider | None]:
    """Real providers if all of ``keys`` are set, else the fake server (see the module docstring)."""
    missing = [key for key in keys if not os.environ.get(key)]
    if not missing:
        print(f"(real providers: {', '.join(keys)} set)\n")
        yield None
        return
    fake = FakeProvider(respond=respond, latency=latency)
    saved = {name: os.environ.get(name) for name in (*_KEYS, *_BASE_URLS, *_CLEARED)}
    with serve_fake_provider(fake) as base_url:
        print(f"(fake provider server on {base_url}: {', '.join(missing)} not set)\n")
        try:
            for name in _KEYS:
                os.environ[name] = "example-key-not-a-secret"
            for name in _BASE_URLS:
                os.environ[name] = base_url
            for name in _CLEARED:
                os.environ.pop(name, None)
            yield fake
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

"""A key echoed by a provider inside a 200 answer is masked everywhere, like one in an HTTP error body.

And the Session's redaction masks the key an engine is configured with,
whatever its shape (not only the ``sk-`` / ``AIza`` shapes it knows).
"""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path

import pytest

from lazybridge import Agent, Session
from lazybridge.engines.llm import LLMEngine
from lazybridge.errors import ProviderError
from lazybridge.session import JsonlExporter
from lazybridge.testing import FakeProvider, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

# No known shape (no sk-, AIza, Bearer ...): only knowing the configured key can mask it.
KEY = "team-gateway-7f3a9c2e5b1d4f6a8c0e"

_ANTHROPIC_START = (
    'event: message_start\ndata: {"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 1}}}\n\n'
)
_ERROR_EVENT = {"type": "error", "error": {"type": "invalid_request_error", "message": f"invalid x-api-key {KEY}"}}

STREAMS = [
    pytest.param(
        "claude-haiku-4-5",
        _ANTHROPIC_START + f"event: error\ndata: {json.dumps(_ERROR_EVENT)}\n\n",
        id="anthropic-error-event",
    ),
    pytest.param(
        "claude-haiku-4-5", _ANTHROPIC_START + f"event: content_block_delta\ndata: key={KEY} <html>\n\n", id="anthropic-raw"
    ),
    pytest.param(
        "gpt-5.4-mini",
        'data: {"error": {"message": "Incorrect API key provided: ' + KEY + '", "type": "invalid_request_error"}}\n\n',
        id="openai-error-event",
    ),
    pytest.param("gpt-5.4-mini", f"data: not json {KEY}\n\n", id="openai-raw"),
    pytest.param(
        "gemini-3-flash-preview",
        'data: {"error": {"code": 400, "message": "API key ' + KEY + ' not valid", "status": "INVALID_ARGUMENT"}}\r\n\r\n',
        id="gemini-error-event",
    ),
    pytest.param("gemini-3-flash-preview", f"data: {{{KEY}\r\n\r\n", id="gemini-raw"),
]


def _read_files(folder: Path, pattern: str) -> bytes:
    return b"".join(path.read_bytes() for path in folder.glob(pattern))


@pytest.mark.parametrize(("model", "body"), STREAMS)
async def test_a_key_echoed_inside_a_stream_appears_nowhere(
    model: str,
    body: str,
    fake: FakeProvider,
    base_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.push(Reply(body=body.encode(), content_type="text/event-stream"))
    jsonl, db = tmp_path / "events.jsonl", tmp_path / "events.sqlite"
    session = Session(console=True, db=db, exporters=[JsonlExporter(jsonl)])
    agent = Agent(
        engine=LLMEngine(model, base_url=base_url, api_key=KEY, max_retries=0),
        name="echo",
        session=session,
        verbose=True,
    )
    with pytest.raises(ProviderError) as caught:
        async with agent.stream("hello") as stream:
            async for _ in stream:
                pass
    envelope = stream.envelope
    assert envelope is not None and envelope.error is not None
    stored = session.events.query()
    await session.aclose()

    assert fake.requests and fake.requests[0].carries_key(KEY)  # the key was sent ...
    haystack = "\n".join(
        [
            str(caught.value),
            repr(caught.value),
            "".join(traceback.format_exception(caught.value)),
            str(envelope),
            repr(envelope),
            envelope.to_json(),
            envelope.error.message,
            *(repr(event) for event in session.events),
            repr([(e.kind, dict(e.data)) for e in stored]),
            jsonl.read_text(encoding="utf-8"),
            caplog.text,
            *capsys.readouterr(),
        ]
    )
    assert "echo" in haystack and envelope.error.type in haystack  # the haystack is real
    assert KEY not in haystack  # ... and is echoed nowhere
    raw_db = _read_files(tmp_path, "events.sqlite*")  # the database and its WAL, as bytes
    assert raw_db and KEY.encode() not in raw_db


async def test_session_masks_the_configured_key_whatever_its_shape(
    fake: FakeProvider, base_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key in a task, an answer and a tool result: no shape rule knows it; the Session still masks it."""
    fake.push(f"the answer quotes {KEY}")
    jsonl = tmp_path / "events.jsonl"
    session = Session(console=True, exporters=[JsonlExporter(jsonl)])
    agent = Agent(
        engine=LLMEngine("claude-haiku-4-5", base_url=base_url, api_key=KEY),
        name="shape",
        session=session,
        verbose=True,
    )
    env = await agent.run(f"please use {KEY}")
    await session.aclose()

    assert env.ok and KEY in env.text()  # the answer itself is the user's, untouched
    exported = "\n".join(
        [*(repr(event) for event in session.events), jsonl.read_text(encoding="utf-8"), *capsys.readouterr()]
    )
    assert "the answer quotes [REDACTED]" in exported and "please use [REDACTED]" in exported
    assert KEY not in exported

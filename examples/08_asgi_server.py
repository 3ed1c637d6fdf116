"""A plain-ASGI endpoint (no web framework) whose handler awaits ``panel.run_branches``.

``POST /ask`` with ``{"question": "..."}`` answers ``{"ok": ..., "branches": [...]}``.

Run as a script it serves nothing on the network: it calls itself in-process
through ``httpx.ASGITransport``.  ``--serve`` runs it with uvicorn on
127.0.0.1:8000 instead (``curl -d '{"question":"hi"}' localhost:8000/ask``).

(Real APIs when ANTHROPIC_API_KEY and OPENAI_API_KEY are set.)
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
from _support import providers

import lazybridge
from lazybridge import Agent, LLMEngine

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class App:
    """The ASGI app.  Agents are built lazily, once, so the environment is read at first use."""

    def __init__(self) -> None:
        self.panel: lazybridge.ParallelAgent | None = None

    def get_panel(self) -> lazybridge.ParallelAgent:
        if self.panel is None:
            self.panel = Agent.parallel(
                Agent(engine=LLMEngine("claude-haiku-4-5"), name="claude_view"),
                Agent(engine=LLMEngine("gpt-5.4-mini"), name="gpt_view"),
                step_timeout=30.0,
            )
        return self.panel

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await lazybridge.aclose()  # the server's loop is ending: close pooled clients
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http" or scope["path"] != "/ask" or scope["method"] != "POST":
            await respond(send, 404, {"error": "POST /ask"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            question = json.loads(body)["question"]
        except (ValueError, KeyError, TypeError):
            await respond(send, 400, {"error": 'send {"question": "..."}'})
            return
        branches = await self.get_panel().run_branches(str(question))
        await respond(
            send,
            200,
            {
                "ok": all(b.ok for b in branches),
                "branches": [
                    {
                        "agent": b.metadata.agent,
                        "model": b.metadata.model,
                        "ok": b.ok,
                        "text": b.text() if b.ok else None,
                        "error": None if b.error is None else f"{b.error.type}: {b.error.message}",
                        "cost_usd": b.metadata.cost_usd,
                    }
                    for b in branches
                ],
            },
        )


async def respond(send: Callable[[Message], Awaitable[None]], status: int, payload: object) -> None:
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


app = App()


async def exercise() -> int:
    """Call the app in-process, as a client would over HTTP."""
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            missing = await client.get("/nowhere")
            print(f"GET /nowhere -> {missing.status_code}")
            reply = await client.post("/ask", json={"question": "What is an ASGI app?"})
            print(f"POST /ask -> {reply.status_code}")
            data = reply.json()
            for branch in data["branches"]:
                print(f"  [{branch['agent']}] {branch['text'] or branch['error']}")
            print(f"endpoint ok={data['ok']}")
            return 0 if data["ok"] else 1
    finally:
        await lazybridge.aclose()


def main() -> int:
    serve = "--serve" in sys.argv[1:]
    with providers("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        if serve:
            import uvicorn

            uvicorn.run(app, host="127.0.0.1", port=8000)
            return 0
        return asyncio.run(exercise())


if __name__ == "__main__":
    raise SystemExit(main())

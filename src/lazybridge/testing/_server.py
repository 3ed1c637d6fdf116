"""Serve an ASGI app (the fake provider) on a loopback socket, in a background thread.

The server runs uvicorn on its own asyncio loop in its own thread, so it
works whatever event loop (asyncio or Trio, or none) the caller uses, and
it stops cleanly when the ``with`` block ends.  Needs the
``lazybridge[testing]`` extra (uvicorn), imported only here.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["serve_fake_provider"]


@contextmanager
def serve_fake_provider(
    app: Any = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> Iterator[str]:
    """Serve ``app`` (default: a new :class:`~lazybridge.testing.FakeProvider`) and yield its base URL.

    Args:
        app: the ASGI app to serve, usually a ``FakeProvider``.
        host: the loopback address to bind.
        port: the port (0: a free one, chosen by the system).
        startup_timeout: seconds to wait for the server to accept connections.
        ssl_certfile: a PEM certificate chain: the server speaks HTTPS with it
            (and the URL is ``https://``).  Clients must trust its CA: for the
            pooled clients, set ``SSL_CERT_FILE`` to the CA's PEM before their
            first request.
        ssl_keyfile: the certificate's private key (PEM), if not in ``ssl_certfile``.

    Yields:
        The base URL, e.g. ``"http://127.0.0.1:54321"``: pass it as
        ``base_url=`` or put it in a ``*_BASE_URL`` variable.

    ::

        with serve_fake_provider(fake) as base_url:      # "http://127.0.0.1:54321"
            LLMEngine("gpt-5.4-mini", base_url=base_url, api_key="test")

    Every provider's paths are served under the same base URL.  Leaving the
    block stops the server: open connections are closed and the thread is
    joined.  A blocking call: in async code, enter it from a sync fixture.
    """
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("serve_fake_provider needs uvicorn: pip install 'lazybridge[testing]'") from exc
    if app is None:
        from .fake_provider import FakeProvider

        app = FakeProvider()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="critical",
        access_log=False,
        lifespan="off",
        loop="asyncio",
        http="h11",
        ws="none",
        timeout_graceful_shutdown=1,
        backlog=2048,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=serve, name="lazybridge-fake-provider", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if failure or not thread.is_alive():
            sock.close()
            raise RuntimeError(f"the fake provider server did not start: {failure[:1]}")
        if time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the fake provider server did not start in time")
        time.sleep(0.005)
    try:
        yield f"{'https' if ssl_certfile else 'http'}://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(10.0)
        sock.close()

"""Which transport the pooled HTTP clients use: httpx's own, or aiohttp's on asyncio.

httpx's own transport (httpcore) costs ~2-3 ms of CPU per request on a
small machine; aiohttp does the same I/O for a fraction of that.  With the
``aiohttp`` extra (``pip install 'lazybridge[aiohttp]'``, which brings the
maintained ``httpx-aiohttp`` package) the pooled clients keep the httpx API
-- requests, responses, streaming, timeouts and errors are httpx's -- while
aiohttp does the I/O.  aiohttp runs on asyncio only: under Trio the pooled
clients always use httpx's transport.

The choice, per pooled client (``http_transport=`` of
:class:`~lazybridge.LLMEngine`, else the ``LAZYBRIDGE_HTTP_TRANSPORT``
environment variable, else ``"auto"``):

``"auto"``
    aiohttp when ``httpx-aiohttp`` is installed and the loop is asyncio,
    else httpx.
``"httpx"``
    always httpx's transport.
``"aiohttp"``
    aiohttp on asyncio, and a :class:`~lazybridge.errors.ConfigurationError`
    at the first request when ``httpx-aiohttp`` is not installed; under Trio
    httpx's transport (aiohttp cannot run there).

A client the user passes (``http_client=``) is never changed.  Requests
through a proxy taken from the environment (``HTTPS_PROXY``...) keep
httpx's transport, as they always did.

Errors: ``httpx-aiohttp`` turns aiohttp's exceptions into httpx's, but
files a refused connection and a server that hung up under ``ConnectTimeout``
and lets a malformed answer's ``ClientResponseError`` through; the
transport here maps them as httpx's own transport would (``ConnectError``,
``RemoteProtocolError``...), so :func:`._errormap.transport_error` gives the
same :class:`~lazybridge.errors.APIConnectionError` or ``APITimeoutError``
on both transports.

Cancellation: a request cancelled while it waits for its answer, or while
its body streams, closes its connection (aiohttp never returns a
connection with an unread answer to its pool), so the server sees the
disconnect, as with httpx.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Literal

import httpx

from .._sync import in_asyncio_task
from ..errors import ConfigurationError

if TYPE_CHECKING:
    import aiohttp

__all__ = ["ENV_VAR", "TRANSPORTS", "Transport", "aiohttp_client", "check_transport", "chosen", "setting"]

Transport = Literal["auto", "httpx", "aiohttp"]
#: The settings ``http_transport=`` and ``LAZYBRIDGE_HTTP_TRANSPORT`` take.
TRANSPORTS: tuple[Transport, ...] = ("auto", "httpx", "aiohttp")
ENV_VAR = "LAZYBRIDGE_HTTP_TRANSPORT"
INSTALL_HINT = "pip install 'lazybridge[aiohttp]'"


def check_transport(value: object, argument: str = "http_transport") -> Transport | None:
    """``value`` if it is one of :data:`TRANSPORTS` or ``None``; else a ConfigurationError naming ``argument``."""
    if value is None or value in TRANSPORTS:
        return value
    raise ConfigurationError(f"{argument} must be one of 'auto', 'httpx', 'aiohttp' or None, not {value!r}")


def setting(explicit: Transport | None = None) -> Transport:
    """The transport asked for: ``explicit``, else the environment variable, else ``"auto"``.

    Raises ConfigurationError naming the variable when it holds another value.
    """
    if explicit is not None:
        return explicit
    raw = os.environ.get(ENV_VAR, "").strip().lower()
    return check_transport(raw or "auto", ENV_VAR) or "auto"


def chosen(wanted: Transport) -> Literal["httpx", "aiohttp"]:
    """The transport a new pooled client in the running event loop gets for ``wanted``.

    Raises ConfigurationError when ``wanted`` is ``"aiohttp"``, the loop is
    asyncio and ``httpx-aiohttp`` is not installed.
    """
    if wanted == "httpx" or not in_asyncio_task():
        return "httpx"
    try:
        import httpx_aiohttp  # noqa: F401  (an optional extra: imported only when a client is built)
    except ImportError:
        if wanted == "aiohttp":
            raise ConfigurationError(
                f"the aiohttp transport was asked for ({ENV_VAR} or http_transport='aiohttp') "
                f"but httpx-aiohttp is not installed: {INSTALL_HINT}"
            ) from None
        return "httpx"
    return "aiohttp"


def aiohttp_client(**kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` (same arguments) whose requests aiohttp sends.

    Must be called on asyncio with ``httpx-aiohttp`` installed (see :func:`chosen`).
    """
    return _client_class()(**kwargs)


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """aiohttp's exceptions as the httpx exceptions httpx's own transport raises for the same failure."""
    import aiohttp

    try:
        yield
    except httpx.TransportError as exc:
        cause = exc.__cause__
        if not isinstance(cause, aiohttp.ClientError):
            raise
        raise _httpx_error(cause) from cause
    except aiohttp.ClientError as exc:  # those httpx-aiohttp lets through
        raise _httpx_error(exc) from exc


def _httpx_error(exc: aiohttp.ClientError) -> httpx.TransportError:
    import aiohttp

    cls: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # sock_connect: the TCP/TLS handshake
        cls = httpx.ConnectTimeout
    elif isinstance(exc, aiohttp.ServerTimeoutError):  # sock_read: no byte for `read` seconds
        cls = httpx.ReadTimeout
    elif isinstance(exc, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        cls = httpx.ProxyError
    elif isinstance(exc, aiohttp.ClientConnectorError):  # refused, unresolvable, TLS failure
        cls = httpx.ConnectError
    elif isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientResponseError)):
        cls = httpx.RemoteProtocolError  # hung up, or an answer that is not HTTP
    elif isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        cls = httpx.UnsupportedProtocol
    else:  # a payload cut short, a reset connection, ...
        cls = httpx.ReadError
    return cls(str(exc) or type(exc).__name__)


_class: type[httpx.AsyncClient] | None = None


def _client_class() -> type[httpx.AsyncClient]:
    """The client and transport classes, built at first use (they subclass the optional package's)."""
    global _class
    if _class is not None:
        return _class
    import aiohttp
    from httpx_aiohttp import AiohttpTransport

    class _Stream(httpx.AsyncByteStream):
        __slots__ = ("_inner",)

        def __init__(self, inner: httpx.AsyncByteStream) -> None:
            self._inner = inner

        async def __aiter__(self) -> AsyncIterator[bytes]:
            with _mapped():
                async for chunk in self._inner:
                    yield chunk

        async def aclose(self) -> None:
            with _mapped():
                await self._inner.aclose()

    class _Transport(AiohttpTransport):
        """httpx-aiohttp's transport with our connector settings and exception mapping."""

        def get_client(self) -> aiohttp.ClientSession:
            limits = self.limits
            keepalive = limits.max_keepalive_connections != 0
            connector = aiohttp.TCPConnector(
                # httpx's None (no bound) is aiohttp's 0; httpx-aiohttp would leave aiohttp's 100.
                limit=limits.max_connections or 0,
                # aiohttp keeps every idle connection (no count bound); only "none" maps.
                force_close=not keepalive,
                keepalive_timeout=limits.keepalive_expiry if keepalive else None,
                ssl=self.ssl_context,
            )
            return aiohttp.ClientSession(connector=connector)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            with _mapped():
                response = await super().handle_async_request(request)
            assert isinstance(response.stream, httpx.AsyncByteStream)
            response.stream = _Stream(response.stream)
            return response

    class _Client(httpx.AsyncClient):
        # Only the default transport is aiohttp's: proxies from the environment
        # keep httpx's transports (httpx builds those with _init_proxy_transport).
        def _init_transport(
            self, verify: Any = True, cert: Any = None, trust_env: bool = True, http1: bool = True,
            http2: bool = False, limits: httpx.Limits | None = None, transport: Any = None,
        ) -> httpx.AsyncBaseTransport:
            if transport is not None:
                return transport  # type: ignore[no-any-return]
            return _Transport(verify=verify, cert=cert, trust_env=trust_env, limits=limits or httpx.Limits())

    _class = _Client
    return _class

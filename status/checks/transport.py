"""The checks' httpx client: ProbeClient over AiohttpTransport, which sends through aiohttp.

Why not httpx's own transport: httpcore's pool scans every pooled connection on each request's
start and end, and a prober opens a fresh connection to a distinct host per check. At
thousands of checks per 30 s the pool work grows with the backlog and the prober collapses
(bench/README.md, "prober.py"). aiohttp's connector keeps per-host queues and stays flat.

Why not the httpx-aiohttp package: its 0.2.0 maps refused, reset and TLS failures to
timeouts, and lets aiohttp's own errors escape. Here every aiohttp failure becomes the httpx
exception httpx's transport raises for it, with the OS or ssl error as its cause, so
status/checks/http.py classifies it exactly as before:

    aiohttp                                    httpx (cause)
    ClientConnectorError, its SSL subclasses   ConnectError (the OSError / ssl error)
    ConnectionTimeoutError                     ConnectTimeout
    SocketTimeoutError, other timeouts         ReadTimeout
    ServerDisconnectedError                    RemoteProtocolError("Server disconnected without sending a response.")
    ClientPayloadError                         RemoteProtocolError("peer closed connection without sending complete message body")
    ClientResponseError (a malformed answer)   RemoteProtocolError (aiohttp's first line)
    ClientOSError, connection reset            ReadError (the OSError)
    any other ClientError                      TransportError

Errors are raised outside the `except` block: the chain then holds the OS or ssl error and
not aiohttp's wrapper (ClientConnectorCertificateError is an SSLCertVerificationError
without `verify_message`).

Bodies stream through undecoded (`auto_decompress=False`): httpx decodes them, so the 1 MiB
cap in http.py applies to the decoded body, as before. No cookies, no redirects (the client
sets follow_redirects=False), no proxies from the environment.
"""

from __future__ import annotations

import errno
import functools
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from yarl import URL

# httpx's default keep-alive expiry: an idle connection older than this is closed.
KEEPALIVE_EXPIRY_S = 5.0


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        """Keeps nothing: a check is anonymous, and 20,000 hosts' cookies would be memory."""


class ProbeClient(httpx.AsyncClient):
    """An httpx client that never stores a cookie.

    httpx reads every response's Set-Cookie into the client's jar (a tenth of a check's CPU
    here, through urllib's cookie machinery) and sends them back later; a probe wants neither.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._none = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._none

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise TypeError("a probe keeps no cookies")


@functools.cache
def default_trust() -> ssl.SSLContext:
    """httpx's trust store (certifi), built once per process: loading it costs ~0.2 s."""
    return httpx.create_ssl_context()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests with one aiohttp session, made on first use inside the running loop."""

    def __init__(
        self,
        *,
        limit: int = 100,
        verify: ssl.SSLContext | None = None,
        keepalive_expiry: float = KEEPALIVE_EXPIRY_S,
    ) -> None:
        self._limit = limit
        self._verify = verify
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limit,
            limit_per_host=0,
            keepalive_timeout=self._keepalive_expiry,
            ssl=self._verify or default_trust(),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        body = await request.aread()
        error: tuple[httpx.TransportError, BaseException | None] | None = None
        try:
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),  # httpx encoded it already
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=_timeout(request),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = _translate(exc, request)
        if error is not None:
            raise error[0] from error[1]
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            extensions={
                "http_version": f"HTTP/{response.version.major}.{response.version.minor}".encode()
                if response.version
                else b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
            },
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response, self._request = response, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        while True:
            error: tuple[httpx.TransportError, BaseException | None] | None = None
            try:
                chunk = await content.readany()
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = _translate(exc, self._request)
            if error is not None:
                raise error[0] from error[1]
            if not chunk:
                return
            yield chunk

    async def aclose(self) -> None:
        # Back to the pool when the body was read to the end, closed otherwise.
        self._response.release()


def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    """httpx's per-request timeouts in aiohttp's terms (aiohttp has no write timeout).

    aiohttp's `connect` spans waiting for a free connection and connecting, so it gets pool +
    connect; `sock_connect` is the connect alone and `sock_read` the wait for each read.
    """
    t = request.extensions.get("timeout", {})
    pool, connect, read = t.get("pool"), t.get("connect"), t.get("read")
    return aiohttp.ClientTimeout(
        total=None,
        connect=None if pool is None or connect is None else pool + connect,
        sock_connect=connect,
        sock_read=read,
    )


def _translate(
    exc: BaseException, request: httpx.Request
) -> tuple[httpx.TransportError, BaseException | None]:
    """The httpx error httpx's own transport raises for this failure, and its cause."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return httpx.ConnectError(str(exc.certificate_error), request=request), (
            exc.certificate_error
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc.os_error), request=request), exc.os_error
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(exc), request=request), None
    if isinstance(exc, TimeoutError):  # SocketTimeoutError and the rest
        return httpx.ReadTimeout(str(exc) or "read timed out", request=request), None
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        message = "Server disconnected without sending a response."
        return httpx.RemoteProtocolError(message, request=request), None
    if isinstance(exc, aiohttp.ClientPayloadError):
        message = "peer closed connection without sending complete message body"
        return httpx.RemoteProtocolError(message, request=request), exc.__cause__
    if isinstance(exc, aiohttp.ClientResponseError):
        # aiohttp's parser messages span lines (the offending bytes, a caret): keep the first.
        first = str(exc.message).strip().split("\n")[0].rstrip(":").strip()
        return httpx.RemoteProtocolError(first or "malformed response", request=request), None
    if isinstance(exc, OSError):  # ClientOSError, ClientConnectionResetError: a reset, a pipe
        cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
        if cause.errno == errno.ECONNRESET and not isinstance(cause, ConnectionResetError):
            cause = ConnectionResetError(cause.errno, cause.strerror)
        return httpx.ReadError(str(cause), request=request), cause
    return httpx.TransportError(str(exc) or type(exc).__name__, request=request), exc

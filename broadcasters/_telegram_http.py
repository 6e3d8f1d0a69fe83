"""PTB's HTTP seam (telegram.request.BaseRequest) over one aiohttp session: less CPU per call.

At paid-broadcast rates (up to 1000 sends a second) the sender's CPU is the limit. PTB's
default HTTPXRequest spends about half of it in httpx and httpcore, whose pool rescans every
queued request each time a connection frees up; aiohttp's connector hands a freed
connection to the next waiter directly. Same contract as HTTPXRequest: the Bot API's status
and body are returned for PTB to read; a timeout is TimedOut, any other transport failure
NetworkError (PTB turns both into retryable DeliveryErrors upstream of here).

The request URL holds the token: aiohttp logs nothing per request, and errors are raised
with the exception's class and text only, which PTB and the callers mask.
"""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

USER_AGENT = BaseRequest.USER_AGENT
BOT_PATH = re.compile(r"/bot[^/\s'\"]+")


class AiohttpRequest(BaseRequest):
    """One aiohttp.ClientSession with at most `connection_pool_size` connections."""

    def __init__(
        self,
        *,
        connection_pool_size: int = 16,
        connect_timeout: float | None = 5.0,
        read_timeout: float | None = 10.0,
        write_timeout: float | None = 10.0,
        pool_timeout: float | None = 10.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._connect, self._read = connect_timeout, read_timeout
        self._write, self._pool = write_timeout, pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300),
                headers={"User-Agent": USER_AGENT},
                # json.dumps of PTB's parameters is done by PTB itself; nothing here re-encodes.
                json_serialize=json.dumps,
                trust_env=False,
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        read = self._read if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = self._connect if isinstance(connect_timeout, DefaultValue) else connect_timeout
        pool = self._pool if isinstance(pool_timeout, DefaultValue) else pool_timeout
        write = self._write if isinstance(write_timeout, DefaultValue) else write_timeout
        # aiohttp has no separate write timeout: sending and reading share sock_read's clock,
        # so the larger of the two bounds a silent socket.
        sock_read = max((t for t in (read, write) if t is not None), default=None)
        # getUpdates passes its long-poll timeout in read_timeout; the whole call may take
        # that long plus connecting and waiting for a free connection.
        total = None if sock_read is None else sock_read + (connect or 0.0) + (pool or 0.0)
        # aiohttp's `connect` covers waiting for a pooled connection and opening a new one.
        waiting = None if pool is None and connect is None else (pool or 0.0) + (connect or 0.0)
        timeout = aiohttp.ClientTimeout(
            total=total, connect=waiting, sock_connect=connect, sock_read=sock_read
        )
        body: Any = None
        if request_data is not None:
            files = request_data.multipart_data
            if files:
                form = aiohttp.FormData()
                for name, value in request_data.json_parameters.items():
                    form.add_field(name, value)
                for name, (filename, content, mimetype) in _parts(files):
                    form.add_field(name, content, filename=filename, content_type=mimetype)
                body = form
            else:
                body = request_data.json_parameters  # form-encoded, as HTTPXRequest sends it
        try:
            async with self._session.request(method, url, data=body, timeout=timeout) as answer:
                return answer.status, await answer.read()
        except TimeoutError as exc:
            raise TimedOut(f"aiohttp: {type(exc).__name__}") from exc
        except aiohttp.ClientError as exc:
            # Some aiohttp errors quote the URL, and a Bot API URL holds the token.
            text = BOT_PATH.sub("/bot<token>", str(exc))
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {text}") from exc


def _parts(files: Any) -> list[tuple[str, tuple[str, Any, str | None]]]:
    """PTB's multipart_data: name → (filename, bytes or file handle[, mimetype])."""
    parts = []
    for name, value in files.items():
        filename, content, *rest = value
        parts.append((name, (filename, content, rest[0] if rest else None)))
    return parts

"""HTTP check: one httpx request → Observation.

How a failure is classified (Observation.kind):

- "timeout"    no complete answer within `timeout` (connect, read, or the whole exchange)
- "tls"        the TLS handshake failed (bad certificate, not a TLS server, closed mid-handshake)
- "connect"    no connection: refused, DNS failure, unreachable
- "protocol"   the server broke HTTP: closed or reset the connection, malformed answer, body over 1 MiB
- "json"       a condition reads the body and the body is not JSON (an HTML error page with 200)
- "condition"  the first condition, in config order, that does not hold

A status condition decides about non-2xx answers; on an HTML error page with status 502 and
conditions ["status == 200", "body.status == 'UP'"] the status condition fails first. Response
time runs from sending the request to the last byte of the body (time.perf_counter, not the
clock). The body is read (decoded) up to 1 MiB whether or not a condition needs it.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx

from status.checks import Observation, ObservationKind
from status.checks.conditions import (
    NO_BODY,
    ResponseFacts,
    describe,
    first_failure,
    is_body_reader,
    needs_json,
    parse_condition,
)
from status.durations import format_duration

if TYPE_CHECKING:  # annotations only: status.config may import status.checks.conditions
    from status.clock import Clock
    from status.config import CheckConfig

# Debug only: a check URL may carry a token in its query, and INFO logs get shared.
log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024


class HttpCheck:
    """Sends the configured request and judges the answer by the configured conditions."""

    def __init__(self, config: CheckConfig, http: httpx.AsyncClient, clock: Clock) -> None:
        """Raises ValueError when a condition does not parse (config validation reports it first)."""
        self.config = config
        self._http = http
        self._clock = clock
        self._conditions = tuple(parse_condition(text) for text in config.conditions)
        self._needs_json = needs_json(self._conditions)
        self._request: httpx.Request | None = None

    @property
    def check_id(self) -> str:
        return self.config.id

    @property
    def interval(self) -> timedelta:
        return self.config.interval

    async def run(self) -> Observation:
        """One request; returns within `timeout` (plus scheduling) and never raises on a non-2xx."""
        at = self._clock.now()
        status: int | None = None
        seconds = self.config.timeout.total_seconds()
        request = self._request or self._build_request()
        started = time.perf_counter()
        try:
            # One deadline for the whole exchange, so a server that trickles its body still
            # times out.
            async with asyncio.timeout(seconds):
                response = await self._http.send(request, stream=True)
                try:
                    status = response.status_code
                    content = await _read_capped(response)
                finally:
                    await response.aclose()
            elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        except (httpx.TimeoutException, TimeoutError):
            reason = f"timed out after {_format_timeout(self.config.timeout)}"
            return self._failed(at, "timeout", reason, status)
        except httpx.ConnectError as exc:
            kind, reason = _classify_connect(exc)
            return self._failed(at, kind, reason, status)
        except httpx.RequestError as exc:
            return self._failed(at, "protocol", _protocol_reason(exc), status)
        if content is None:
            return self._failed(at, "protocol", "response body over 1 MiB", status)
        return self._judge(at, response, content, elapsed_ms)

    def _build_request(self) -> httpx.Request:
        """Built once and sent every run: the same request each time, parsed once.

        The client's headers (user-agent) and then the check's own; never the client's
        cookies, so a cookie one upstream sets never rides along on a later check.
        """
        headers = httpx.Headers(self._http.headers)
        headers.update(self.config.headers)
        self._request = httpx.Request(
            self.config.method,
            self.config.url,
            headers=headers,
            content=self.config.body.encode() if self.config.body else None,
            # No per-phase timeouts: run() bounds the whole exchange by `timeout`, so one of
            # the same length could never fire first, and each costs timers in the transport.
            extensions={"timeout": httpx.Timeout(None).as_dict()},
        )
        return self._request

    def _judge(
        self, at: datetime, response: httpx.Response, content: bytes, elapsed_ms: float
    ) -> Observation:
        body: object = NO_BODY
        if self._needs_json:
            body = _parse_json(content)
        # httpx.Headers looks names up case-insensitively, joining repeats with ", ".
        facts = ResponseFacts(response.status_code, elapsed_ms, response.headers, body)
        failure = first_failure(self._conditions, facts)
        if failure is None:
            log.debug("check %s ok in %.1fms", self.check_id, elapsed_ms)
            return Observation(self.check_id, at, True, "ok", "", response.status_code, elapsed_ms)
        condition, observed = failure
        if is_body_reader(condition) and observed is NO_BODY:
            reason = _not_json_reason(response.headers.get("content-type", ""), content)
            snippet = content[:400].decode("utf-8", "replace")
            log.debug("check %s: %s", self.check_id, reason)
            return Observation(
                self.check_id,
                at,
                False,
                "json",
                reason,
                response.status_code,
                elapsed_ms,
                observed=describe(" ".join(snippet.split())) if snippet.strip() else None,
            )
        reason = f"condition failed: {condition.text} (got {describe(observed)})"
        log.debug("check %s: %s", self.check_id, reason)
        return Observation(
            self.check_id,
            at,
            False,
            "condition",
            reason,
            response.status_code,
            elapsed_ms,
            failed_condition=condition.text,
            observed=describe(observed),
        )

    def _failed(
        self, at: datetime, kind: ObservationKind, reason: str, status: int | None
    ) -> Observation:
        log.debug("check %s: %s (%s)", self.check_id, reason, kind)
        return Observation(self.check_id, at, False, kind, reason, status, None)


async def _read_capped(response: httpx.Response) -> bytes | None:
    """The decoded body, or None as soon as it grows past MAX_BODY (a gzip bomb stops too)."""
    content = bytearray()
    async for chunk in response.aiter_bytes():
        content += chunk
        if len(content) > MAX_BODY:
            return None
    return bytes(content)


def _parse_json(content: bytes) -> object:
    try:
        return json.loads(content)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return NO_BODY


def _not_json_reason(content_type: str, content: bytes) -> str:
    media = content_type.split(";")[0].strip().lower()[:60]
    if not content.strip():
        return "expected JSON, got an empty body"
    if "json" in media:
        return f"expected JSON, got invalid JSON ({media})"
    if not media:
        return "expected JSON, got a body without a content type"
    if media == "text/html":
        return "expected JSON, got text/html (an error page?)"
    return f"expected JSON, got {media}"


def _format_timeout(timeout: timedelta) -> str:
    seconds = timeout.total_seconds()
    if seconds == int(seconds):
        return format_duration(timeout)
    return f"{round(seconds * 1000)}ms"  # format_duration is for whole seconds


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """exc, its causes, and the members of any exception group among them."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)


def _classify_connect(exc: httpx.ConnectError) -> tuple[ObservationKind, str]:
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = getattr(cause, "verify_message", "") or cause.reason or "unknown"
            return "tls", f"TLS error: certificate verify failed: {detail}"
        if isinstance(cause, ssl.SSLEOFError):
            return "tls", "TLS error: the server closed the connection during the handshake"
        if isinstance(cause, ssl.SSLError):
            detail = (cause.reason or str(cause)).lower().replace("_", " ")
            return "tls", f"TLS error: {detail}"
    for cause in _chain(exc):
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return "connect", "connection refused"
        if isinstance(cause, socket.gaierror):
            return "connect", f"DNS lookup failed: {cause.strerror or cause}"
    text = str(exc) or type(exc).__name__
    if "certificate" in text.lower() or "ssl" in text.lower():
        return "tls", f"TLS error: {text}"
    return "connect", f"cannot connect: {text}"


def _protocol_reason(exc: httpx.RequestError) -> str:
    text = str(exc)
    if isinstance(exc, httpx.RemoteProtocolError):
        if "without sending a response" in text:
            return "server closed the connection without a response"
        if "complete message body" in text:
            return "server closed the connection before the body was complete"
        return f"invalid HTTP response: {text}"
    if any(isinstance(cause, ConnectionResetError) for cause in _chain(exc)):
        return "connection reset by the server"
    if isinstance(exc, httpx.DecodingError):
        return f"cannot decode the response body: {text}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

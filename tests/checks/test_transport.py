"""The checks' aiohttp transport judges every failure as httpx's own transport did.

Each case is a real server on loopback that misbehaves on purpose; the same HttpCheck runs
once over httpx's own transport (what the prober used before) and once over AiohttpTransport
(what it uses now), on the stdlib loop and on uvloop (what `siaran serve` runs).
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop

from status.checks import Observation
from status.checks.transport import AiohttpTransport, ProbeClient, default_trust
from status.clock import ManualClock
from tests.checks.test_http import (
    Handler,
    answer_healthy,
    answer_in_plain_http,
    close_without_answer,
    make_check,
    raw_server,
    read_request,
    reset_connection,
    self_signed,  # noqa: F401 - a fixture
    server_context,
    trickle,
)
from tests.conftest import free_port

pytestmark = pytest.mark.anyio
UP = ("status == 200", "body.status == 'UP'")


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"loop_factory": uvloop.new_event_loop}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param  # type: ignore[no-any-return]


def answer(head: bytes, body: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(head + b"\r\n\r\n" + body)
        await writer.drain()

    return handler


def json_answer(body: bytes, *extra: bytes, status: bytes = b"200 OK") -> Handler:
    head = b"\r\n".join(
        [
            b"HTTP/1.1 " + status,
            b"Content-Type: application/json",
            b"Content-Length: %d" % len(body),
            b"Connection: close",
            *extra,
        ]
    )
    return answer(head, body)


async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.Event().wait()  # takes the request, never answers: an upstream in trouble


async def slow_healthy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(0.25)
    await answer_healthy(reader, writer)


async def cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    writer.write(b'{"status": "UP"')
    await writer.drain()


HEALTHY = b'{"status": "UP"}'
HTML_PAGE = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
GZIP_BOMB = gzip.compress(b" " * (2 * 1024 * 1024))  # 2 MiB of spaces in about 2 KiB


@dataclass(frozen=True)
class Case:
    handler: Handler | None  # None: nobody listens on the port
    kind: str
    reason: str
    status: int | None = None
    scheme: str = "http"
    tls: bool = False  # the server speaks TLS with a self-signed certificate
    timeout: timedelta = timedelta(seconds=5)


CASES = {
    "ok": Case(json_answer(HEALTHY), "ok", "", 200),
    "gzip body is decoded": Case(
        json_answer(gzip.compress(HEALTHY), b"Content-Encoding: gzip"), "ok", "", 200
    ),
    "refused": Case(None, "connect", "connection refused"),
    "reset": Case(reset_connection, "protocol", "connection reset by the server"),
    "closed without an answer": Case(
        close_without_answer, "protocol", "server closed the connection without a response"
    ),
    "stalls past the timeout": Case(
        hang, "timeout", "timed out after 300ms", timeout=timedelta(milliseconds=300)
    ),
    "body trickles past the timeout": Case(
        trickle, "timeout", "timed out after 300ms", 200, timeout=timedelta(milliseconds=300)
    ),
    "body cut short": Case(
        cut_short, "protocol", "server closed the connection before the body was complete", 200
    ),
    "html with 200": Case(
        answer(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d" % len(HTML_PAGE),
            HTML_PAGE,
        ),
        "json",
        "expected JSON, got text/html (an error page?)",
        200,
    ),
    "invalid JSON": Case(
        json_answer(b'{"status": "UP",'),
        "json",
        "expected JSON, got invalid JSON (application/json)",
        200,
    ),
    "503 down": Case(
        json_answer(b'{"status": "DOWN"}', status=b"503 Service Unavailable"),
        "condition",
        "condition failed: status == 200 (got 503)",
        503,
    ),
    "a redirect is an answer": Case(
        answer(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0", b""),
        "condition",
        "condition failed: status == 200 (got 302)",
        302,
    ),
    "gzip bomb": Case(
        json_answer(GZIP_BOMB, b"Content-Encoding: gzip"),
        "protocol",
        "response body over 1 MiB",
        200,
    ),
    "https to a plain server": Case(
        answer_in_plain_http, "tls", "TLS error: wrong version number", scheme="https"
    ),
    "self-signed certificate": Case(
        answer_healthy,
        "tls",
        "TLS error: certificate verify failed: self-signed certificate",
        scheme="https",
        tls=True,
    ),
    "plain http to a TLS server": Case(
        answer_healthy,
        "protocol",
        "server closed the connection without a response",
        tls=True,
    ),
}


@pytest.fixture
async def transports() -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """httpx's own transport (before) and ours (now), trusting what httpx trusts by default."""
    async with (
        httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(verify=default_trust())) as before,
        httpx.AsyncClient(transport=AiohttpTransport(limit=10)) as now,
    ):
        yield {"httpx": before, "aiohttp": now}


async def observe(
    case: Case, client: httpx.AsyncClient, clock: ManualClock, cert: tuple[Path, Path]
) -> Observation:
    tls = server_context(*cert) if case.tls else None
    if case.handler is None:
        url = f"{case.scheme}://127.0.0.1:{free_port()}/health"
        return await make_check(url, client, clock, *UP, timeout=case.timeout).run()
    async with raw_server(case.handler, tls=tls) as port:
        url = f"{case.scheme}://127.0.0.1:{port}/health"
        return await make_check(url, client, clock, *UP, timeout=case.timeout).run()


def outcome(observation: Observation) -> tuple[str, str, int | None]:
    return observation.kind, observation.reason, observation.status_code


@pytest.mark.parametrize("name", list(CASES))
async def test_every_answer_and_failure_is_judged_as_with_httpx_own_transport(
    name: str,
    transports: dict[str, httpx.AsyncClient],
    clock: ManualClock,
    self_signed: tuple[Path, Path],  # noqa: F811 - the fixture imported above
) -> None:
    case = CASES[name]
    seen = {
        via: outcome(await observe(case, c, clock, self_signed)) for via, c in transports.items()
    }
    expected = (case.kind, case.reason, case.status)
    if name == "https to a plain server":  # OpenSSL 3.2+ words it differently
        expected = seen["httpx"] if seen["httpx"][1].endswith("record layer failure") else expected
    assert seen == {"httpx": expected, "aiohttp": expected}


async def test_a_malformed_status_line_is_an_invalid_http_response(
    transports: dict[str, httpx.AsyncClient], clock: ManualClock
) -> None:
    # The one difference: the parser's own words after "invalid HTTP response: ".
    garbage = answer(b"HTTPX/9 what", b"")
    async with raw_server(garbage) as port:
        check = make_check(f"http://127.0.0.1:{port}/", transports["aiohttp"], clock)
        observation = await check.run()
    assert outcome(observation) == ("protocol", "invalid HTTP response: Bad status line", None)


async def test_response_time_runs_from_sending_to_the_last_byte(
    transports: dict[str, httpx.AsyncClient], clock: ManualClock
) -> None:
    async with raw_server(slow_healthy) as port:
        check = make_check(f"http://127.0.0.1:{port}/", transports["aiohttp"], clock, *UP)
        observation = await check.run()
    assert observation.kind == "ok"
    assert observation.response_time_ms is not None
    assert 250 <= observation.response_time_ms < 2000


def recording(requests: list[bytes]) -> Handler:
    """Answers 200 with a cookie and keeps each request as received: head and body."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        _, headers, _ = lines_of(head)
        requests.append(head + await reader.readexactly(int(headers.get("content-length", 0))))
        writer.write(b"HTTP/1.1 200 OK\r\nSet-Cookie: session=abc; Path=/\r\n")
        writer.write(b"Content-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()

    return handler


def lines_of(request: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = request.partition(b"\r\n\r\n")
    first, *rest = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in rest:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return first, headers, body


async def test_every_run_sends_the_configured_method_path_headers_and_body_and_no_cookie(
    clock: ManualClock,
) -> None:
    requests: list[bytes] = []
    client = ProbeClient(
        transport=AiohttpTransport(limit=10), headers={"user-agent": "siaran-prober/test"}
    )
    async with client, raw_server(recording(requests)) as port:
        check = make_check(
            f"http://127.0.0.1:{port}/api/health%20check?token=a%2Fb&x=1",
            client,
            clock,
            "status == 200",
            method="POST",
            headers={"Authorization": "Bearer s3cret", "X-Trace": "prober"},
            body='{"ping": 1}',
        )
        observations = [await check.run(), await check.run()]
    assert [o.kind for o in observations] == ["ok", "ok"]
    assert requests[0] == requests[1]  # the cookie set by the first answer was not sent back
    assert len(client.cookies) == 0  # nor kept
    first, headers, body = lines_of(requests[0])
    assert first == "POST /api/health%20check?token=a%2Fb&x=1 HTTP/1.1"
    assert headers["host"] == f"127.0.0.1:{port}"
    assert headers["authorization"] == "Bearer s3cret"
    assert headers["x-trace"] == "prober"
    assert headers["user-agent"] == "siaran-prober/test"
    assert headers["content-length"] == "11"
    assert "cookie" not in headers
    assert body == b'{"ping": 1}'


async def test_a_client_certificate_trust_store_can_be_given(
    clock: ManualClock,
    self_signed: tuple[Path, Path],  # noqa: F811 - the fixture imported above
) -> None:
    cert, key = self_signed
    trusting = ssl.create_default_context(cafile=str(cert))
    async with (
        raw_server(answer_healthy, tls=server_context(cert, key)) as port,
        httpx.AsyncClient(transport=AiohttpTransport(verify=trusting)) as client,
    ):
        observation = await make_check(f"https://127.0.0.1:{port}/", client, clock, *UP).run()
    assert outcome(observation) == ("ok", "", 200)

"""HTTP check against real servers on loopback: an upstream that answers, and raw sockets that misbehave."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import shutil
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from status.checks import CHECK_TYPES, Check, HttpCheck, Observation, ObservationKind
from status.checks.transport import AiohttpTransport
from status.clock import ManualClock
from status.config import CheckConfig, Config
from status.web.asgi import checks_client
from tests.conftest import MONDAY_MORNING, free_port
from tests.fakes.upstream import serve

pytestmark = pytest.mark.anyio

HEALTHY = {"status": "UP", "data": {"available": True}, "stock": 12, "errors": []}
ERROR_PAGE = "<html>\n  <body><h1>Service Unavailable</h1></body>\n</html>\n"


async def health(request: Request) -> Response:
    return JSONResponse(HEALTHY)


async def unavailable(request: Request) -> Response:
    return JSONResponse({"status": "DOWN"}, status_code=503)


async def slow(request: Request) -> Response:
    await asyncio.sleep(int(request.query_params["ms"]) / 1000)
    return JSONResponse(HEALTHY)


async def error_page(request: Request) -> Response:
    return HTMLResponse(ERROR_PAGE, status_code=int(request.query_params.get("status", "200")))


async def with_errors(request: Request) -> Response:
    return JSONResponse({"status": "UP", "errors": ["quota exceeded", "signer offline"]})


async def sized(request: Request) -> Response:
    """A JSON string whose document is exactly `bytes` long."""
    size = int(request.query_params["bytes"])
    return Response(b'"' + b"x" * (size - 2) + b'"', media_type="application/json")


async def echo(request: Request) -> Response:
    return JSONResponse(
        {
            "method": request.method,
            "auth": request.headers.get("authorization"),
            "received": (await request.body()).decode(),
        }
    )


UPSTREAM = Starlette(
    routes=[
        Route("/health", health),
        Route("/unavailable", unavailable),
        Route("/slow", slow),
        Route("/error-page", error_page),
        Route("/errors", with_errors),
        Route("/sized", sized),
        Route("/echo", echo, methods=["GET", "POST"]),
    ]
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    """The Starlette upstream under uvicorn, on a pre-bound loopback socket in a thread."""
    with serve(UPSTREAM) as url:
        yield url


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A TCP server in the test's loop that does whatever `handler` does; yields its port."""
    tasks: set[asyncio.Task[None]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(tracked, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


async def close_without_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)


async def reset_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    # Linger 0 turns close() into a TCP RST: what a crashing load balancer sends.
    writer.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    writer.transport.abort()


async def answer_in_plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1024)  # a TLS ClientHello, which a plain HTTP server cannot read
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()


async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer at once, then send the body one byte per 50ms: no single read ever waits long."""
    await read_request(reader)
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    for _ in range(1000):
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(0.05)


async def answer_healthy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    body = json.dumps(HEALTHY).encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    writer.write(b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    await writer.drain()


@pytest.fixture
async def http(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    """The client `siaran serve` gives the prober (over status/checks/transport.py)."""
    async with checks_client(config) as client:
        yield client


def make_check(
    url: str,
    http: httpx.AsyncClient,
    clock: ManualClock,
    *conditions: str,
    timeout: timedelta = timedelta(seconds=5),
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: str = "",
) -> HttpCheck:
    config = CheckConfig(
        id="purchase-api",
        component="emeterai-purchase",
        url=url,
        method=method,
        headers=headers or {},
        body=body,
        timeout=timeout,
        conditions=conditions or ("status == 200",),
    )
    return HttpCheck(config, http, clock)


def failed(
    kind: ObservationKind,
    reason: str,
    status: int | None = None,
    *,
    failed_condition: str | None = None,
    observed: str | None = None,
) -> Observation:
    """The Observation a failed attempt should produce, response time aside."""
    return Observation(
        "purchase-api",
        MONDAY_MORNING,
        False,
        kind,
        reason,
        status,
        None,
        failed_condition=failed_condition,
        observed=observed,
    )


def without_time(observation: Observation) -> Observation:
    return dataclasses.replace(observation, response_time_ms=None)


UP = ("status == 200", "response_time < 2000", "body.status == 'UP'")


async def test_healthy_upstream_passes_every_condition(upstream, http, clock):
    check = make_check(f"{upstream}/health", http, clock, *UP, "body.data.available == true")
    observation = await check.run()
    assert without_time(observation) == Observation(
        "purchase-api", MONDAY_MORNING, True, "ok", "", 200, None
    )
    assert observation.response_time_ms is not None
    assert 0 < observation.response_time_ms < 2000


async def test_check_sends_method_headers_and_body(upstream, http, clock):
    check = make_check(
        f"{upstream}/echo",
        http,
        clock,
        "body.method == 'POST'",
        "body.auth == 'Bearer s3cret'",
        "body.received == '{\"ping\": 1}'",
        method="POST",
        headers={"Authorization": "Bearer s3cret"},
        body='{"ping": 1}',
    )
    assert (await check.run()).kind == "ok"


async def test_unavailable_upstream_fails_the_status_condition(upstream, http, clock):
    observation = await make_check(f"{upstream}/unavailable", http, clock, *UP).run()
    assert without_time(observation) == failed(
        "condition",
        "condition failed: status == 200 (got 503)",
        503,
        failed_condition="status == 200",
        observed="503",
    )
    assert observation.response_time_ms is not None


async def test_wrong_body_value_names_the_condition_and_what_was_seen(upstream, http, clock):
    observation = await make_check(
        f"{upstream}/unavailable", http, clock, "body.status == 'UP'"
    ).run()
    assert without_time(observation) == failed(
        "condition",
        "condition failed: body.status == 'UP' (got \"DOWN\")",
        503,
        failed_condition="body.status == 'UP'",
        observed='"DOWN"',
    )


async def test_errors_in_the_body_fail_with_their_count(upstream, http, clock):
    observation = await make_check(f"{upstream}/errors", http, clock, "len(body.errors) == 0").run()
    assert without_time(observation) == failed(
        "condition",
        "condition failed: len(body.errors) == 0 (got 2)",
        200,
        failed_condition="len(body.errors) == 0",
        observed="2",
    )


async def test_answer_slower_than_the_timeout_is_a_timeout(upstream, http, clock):
    check = make_check(f"{upstream}/slow?ms=600", http, clock, timeout=timedelta(milliseconds=200))
    assert await check.run() == failed("timeout", "timed out after 200ms")


async def test_body_trickling_past_the_timeout_is_a_timeout(http, clock):
    # httpx's read timeout alone would wait forever: every byte arrives within 50ms.
    async with raw_server(trickle) as port:
        timeout = timedelta(milliseconds=500)
        check = make_check(f"http://127.0.0.1:{port}/", http, clock, timeout=timeout)
        started = time.perf_counter()
        observation = await check.run()
    assert observation == failed("timeout", "timed out after 500ms", 200)
    assert time.perf_counter() - started < 1.4


async def test_slow_answer_within_the_timeout_fails_the_response_time_condition(
    upstream, http, clock
):
    check = make_check(
        f"{upstream}/slow?ms=300", http, clock, "status == 200", "response_time < 100"
    )
    observation = await check.run()
    assert (observation.kind, observation.failed_condition) == ("condition", "response_time < 100")
    assert observation.observed is not None
    assert observation.response_time_ms is not None
    assert 300 <= float(observation.observed) == observation.response_time_ms < 2000
    assert (
        observation.reason == f"condition failed: response_time < 100 (got {observation.observed})"
    )


async def test_nobody_listening_is_connection_refused(http, clock):
    observation = await make_check(f"http://127.0.0.1:{free_port()}/health", http, clock).run()
    assert observation == failed("connect", "connection refused")


async def test_server_closing_without_an_answer_is_a_protocol_failure(http, clock):
    async with raw_server(close_without_answer) as port:
        observation = await make_check(f"http://127.0.0.1:{port}/", http, clock).run()
    assert observation == failed("protocol", "server closed the connection without a response")


async def test_server_resetting_the_connection_is_a_protocol_failure(http, clock):
    async with raw_server(reset_connection) as port:
        observation = await make_check(f"http://127.0.0.1:{port}/", http, clock).run()
    assert observation == failed("protocol", "connection reset by the server")


async def test_html_error_page_with_status_200_is_not_json(upstream, http, clock):
    observation = await make_check(f"{upstream}/error-page", http, clock, *UP).run()
    assert without_time(observation) == failed(
        "json",
        "expected JSON, got text/html (an error page?)",
        200,
        observed='"<html> <body><h1>Service Unavailable</h1></body> </html>"',
    )


async def test_html_error_page_with_status_502_fails_on_status_first(upstream, http, clock):
    observation = await make_check(f"{upstream}/error-page?status=502", http, clock, *UP).run()
    assert (observation.kind, observation.reason) == (
        "condition",
        "condition failed: status == 200 (got 502)",
    )


async def test_html_page_passes_when_no_condition_reads_the_body(upstream, http, clock):
    observation = await make_check(f"{upstream}/error-page", http, clock, "status == 200").run()
    assert (observation.ok, observation.kind) == (True, "ok")


async def test_body_over_1_mib_is_refused(upstream, http, clock):
    url = f"{upstream}/sized?bytes={1024 * 1024 + 1}"
    observation = await make_check(url, http, clock, "len(body) > 0").run()
    assert observation == failed("protocol", "response body over 1 MiB", 200)


async def test_body_of_exactly_1_mib_is_read(upstream, http, clock):
    url = f"{upstream}/sized?bytes={1024 * 1024}"
    observation = await make_check(url, http, clock, "len(body) == 1048574").run()
    assert observation.kind == "ok"


async def test_https_to_a_plain_http_server_is_a_tls_failure(http, clock):
    # OpenSSL names this "wrong version number" (3.0/3.1) or "record layer failure" (3.2+).
    async with raw_server(answer_in_plain_http) as port:
        observation = await make_check(f"https://127.0.0.1:{port}/", http, clock).run()
    assert observation.kind == "tls"
    assert observation.reason in (
        "TLS error: wrong version number",
        "TLS error: record layer failure",
    )
    assert observation == failed("tls", observation.reason)


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no public CA signed: (cert.pem, key.pem)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "2"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", str(key), "-out", str(cert)),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


async def test_untrusted_certificate_is_a_tls_failure(self_signed, http, clock):
    async with raw_server(answer_healthy, tls=server_context(*self_signed)) as port:
        observation = await make_check(f"https://127.0.0.1:{port}/", http, clock).run()
    assert observation == failed(
        "tls", "TLS error: certificate verify failed: self-signed certificate"
    )


async def test_trusted_certificate_passes(self_signed, clock):
    cert, key = self_signed
    trusting = ssl.create_default_context(cafile=str(cert))
    async with (
        raw_server(answer_healthy, tls=server_context(cert, key)) as port,
        httpx.AsyncClient(transport=AiohttpTransport(verify=trusting)) as client,
    ):
        observation = await make_check(f"https://127.0.0.1:{port}/", client, clock, *UP).run()
    assert observation.kind == "ok"


async def test_failures_never_log_the_url(upstream, http, clock, caplog):
    caplog.set_level(logging.DEBUG, logger="status")
    for path in ("health", "unavailable", "error-page", "slow?ms=600"):
        url = f"{upstream}/{path}{'&' if '?' in path else '?'}token=s3cret-token"
        check = make_check(url, http, clock, *UP, timeout=timedelta(milliseconds=300))
        await check.run()
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("status")]
    assert ours
    assert not [message for message in ours if "s3cret-token" in message or "127.0.0.1" in message]


async def test_config_type_http_names_the_http_check(http, clock):
    factory = CHECK_TYPES["http"]
    check: Check = factory(
        CheckConfig(id="purchase-api", component="emeterai-purchase", url="http://127.0.0.1/"),
        http,
        clock,
    )
    assert isinstance(check, HttpCheck)
    assert (check.check_id, check.interval) == ("purchase-api", timedelta(seconds=30))


async def test_a_bad_condition_is_refused_when_the_check_is_built(http, clock):
    with pytest.raises(ValueError, match=r"^unknown value \"stat\""):
        make_check("http://127.0.0.1/", http, clock, "stat == 200")

"""`siaran serve`'s HTTP server answers exactly as the ASGI app does.

A real server (status.web.http_server, as status/cli.py starts it) serves the app, answering
snapshot reads inside its protocol; every request goes both to it over TCP and to the same
app through httpx.ASGITransport, and the answers must match: snapshot reads from memory and
everything else through Starlette (staff API, console, errors).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from status.services import Services
from status.web.bodies import MAX_BODY_BYTES
from status.web.http_server import BACKLOG, Acceptor, Answers
from tests.conftest import eventually
from tests.web.served import INCIDENT, served

pytestmark = pytest.mark.anyio

# Headers the servers set on their own (date, server, connection: close after an unread body).
SERVER_OWN = {"date", "server", "connection"}


@dataclass
class Pair:
    """The same app over TCP (a real server) and over ASGI (in process)."""

    served: httpx.AsyncClient
    asgi: httpx.AsyncClient
    token: str
    etags: dict[str, str] = field(default_factory=dict)

    async def both(self, method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, ...]:
        return (
            await self.served.request(method, url, **kwargs),
            await self.asgi.request(method, url, **kwargs),
        )


@pytest.fixture
async def pair(services: Services) -> AsyncIterator[Pair]:
    async with (
        served(services) as running,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.port}") as over_tcp,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=running.app, client=("127.0.0.1", 50000)),
            base_url=f"http://127.0.0.1:{running.port}",
        ) as asgi,
    ):
        yield Pair(over_tcp, asgi, running.token)


def _comparable(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in response.headers.items() if k not in SERVER_OWN}
    # The raw bytes on the wire: a gzip body must be byte-identical, not just decode the same.
    return response.status_code, headers, response.read()


SUMMARY = "/api/v2/summary.json"
GZIP = {"accept-encoding": "gzip"}
IDENTITY = {"accept-encoding": "identity"}


def _requests() -> Iterator[tuple[str, str, dict[str, Any]]]:
    yield "GET", SUMMARY, {"headers": IDENTITY}
    yield "GET", SUMMARY, {"headers": GZIP}
    yield "GET", SUMMARY, {"headers": {"if-none-match": '"not-it"', **IDENTITY}}
    yield "GET", SUMMARY, {"headers": {"if-modified-since": "Mon, 01 Jan 2001 00:00:00 GMT"}}
    yield "GET", SUMMARY, {"headers": {"if-modified-since": "Fri, 01 Jan 2100 00:00:00 GMT"}}
    yield "HEAD", SUMMARY, {"headers": GZIP}
    yield "OPTIONS", SUMMARY, {"headers": {"origin": "https://example.org"}}
    yield "POST", SUMMARY, {"json": {}}
    yield "DELETE", "/history.atom", {}
    yield "GET", "/", {"headers": IDENTITY}
    yield "GET", "/", {"headers": {"accept-language": "en-US,en;q=0.9", **GZIP}}
    yield "GET", "/?lang=en", {"headers": IDENTITY}
    yield "GET", "/?lang=id&v=3", {"headers": {"accept-language": "en"}}
    yield "GET", "/history.atom", {"headers": GZIP}
    yield "GET", "/api/v1/branches", {}
    yield "GET", "/no/such/page", {}
    yield "GET", "/api/v1/incidents/999999", {}
    yield "GET", "/staff", {"follow_redirects": False}
    yield "GET", "/staff/login", {}
    yield "GET", "/openapi.json", {"headers": GZIP}


@pytest.mark.parametrize(("method", "url", "kwargs"), list(_requests()))
async def test_server_answers_as_the_asgi_app_does(
    pair: Pair, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    over_tcp, over_asgi = await pair.both(method, url, **kwargs)
    assert _comparable(over_tcp) == _comparable(over_asgi)


async def test_revalidation_with_the_served_etag_is_a_304(pair: Pair) -> None:
    first = await pair.served.get(SUMMARY, headers=GZIP)
    again = {"if-none-match": f'W/{first.headers["etag"]}, "other"', **GZIP}
    over_tcp, over_asgi = await pair.both("GET", SUMMARY, headers=again)
    assert over_tcp.status_code == 304
    assert over_tcp.content == b""
    assert _comparable(over_tcp) == _comparable(over_asgi)


async def test_staff_report_through_the_server_is_published(pair: Pair) -> None:
    auth = {"authorization": f"Bearer {pair.token}"}
    created = await pair.served.post("/api/v1/incidents", json=INCIDENT, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == INCIDENT["name"]
    summary = (await pair.served.get(SUMMARY)).json()
    assert [i["id"] for i in summary["incidents"]] == [created.json()["id"]]
    # The same request without a token is refused the same way by both.
    over_tcp, over_asgi = await pair.both("POST", "/api/v1/incidents", json=INCIDENT)
    assert over_tcp.status_code == 401
    assert _comparable(over_tcp) == _comparable(over_asgi)


async def test_too_large_body_is_a_413_declared_or_streamed(pair: Pair) -> None:
    auth = {"authorization": f"Bearer {pair.token}", "content-type": "application/json"}
    big = b'{"name": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read until over the cap
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    declared = await pair.both("POST", "/api/v1/incidents", content=big, headers=auth)
    streamed = await pair.served.post("/api/v1/incidents", content=chunks(), headers=auth)
    assert declared[0].status_code == streamed.status_code == 413
    assert _comparable(declared[0]) == _comparable(declared[1])
    assert streamed.json()["error"]["code"] == "too_large"


async def test_one_turn_accepts_every_waiting_connection() -> None:
    """A crowd that connected while the loop was busy is let in at once, not one per turn
    (uvloop's own server takes one per readiness event; under load that left phones waiting
    seconds in the accept queue)."""
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", 0), backlog=BACKLOG)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    made: list[asyncio.Transport] = []

    class Counting(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            made.append(transport)  # type: ignore[arg-type]

    crowd = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
    acceptor = Acceptor(loop, listener, Counting)
    try:
        acceptor._accept()  # the one readiness event the loop would hand it
        await eventually(lambda: len(made) == len(crowd))
        assert len(made) == 300
    finally:
        for transport in made:
            transport.close()
        for phone in crowd:
            phone.close()
        acceptor.close()
        await acceptor.wait_closed()


def test_remembered_answers_stay_bounded_whatever_clients_send(services: Services) -> None:
    answers = Answers(services.snapshot)
    url, method = b"/api/v2/summary.json", b"GET"
    huge = [(b"if-none-match", b'"' + b"x" * 4000 + b'"')]
    key = (url, method, *huge)
    assert answers.get(key) is None  # as the protocol asks first, then decides
    reply = answers.decide(key, url, method, huge)
    assert reply is not None
    assert reply.status == 200  # answered all the same
    assert answers.get(key) is None  # but not kept
    plain = (url, method)
    assert answers.get(plain) is None
    assert answers.decide(plain, url, method, []) is not None
    assert answers.get(plain) is not None  # an ordinary request is kept
    for n in range(Answers.MAX + 10):  # a cache-buster per request
        busted = url + b"?v=%d" % n
        answers.decide((busted, method), busted, method, [])
    assert len(answers) <= Answers.MAX

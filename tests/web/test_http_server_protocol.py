"""What a client on a raw TCP socket sees from `siaran serve`'s HTTP server.

test_http_server.py compares whole answers with the ASGI app through httpx, which hides the
wire. The server answers on two paths (snapshot reads written straight from the parser
callback, everything else through uvicorn's ASGI cycle), and a connection can move between
them from one request to the next; so here a client writes the bytes itself and reads each
response off the socket: framing, order, keep-alive and closing are what is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from status.services import Services
from status.web.http_server import EmbeddedServer
from tests.conftest import eventually
from tests.web.served import INCIDENT, served

pytestmark = pytest.mark.anyio

SUMMARY = "/api/v2/summary.json"
ATOM = "/history.atom"
# Not a snapshot path: the staff API (token required) looks it up and answers a JSON 404.
MISSING = "/api/v1/incidents/999999"
# How long a read may take before the test fails instead of hanging.
READ_TIMEOUT = 5.0
# The keep-alive timeout of the `brief_site` server, short enough to watch it expire.
BRIEF_KEEP_ALIVE = 0.5
# RFC 9110 5.6.7: the one HTTP-date form a server generates.
IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT"
)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header's values joined with ", "
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> bytes:
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_response(reader: asyncio.StreamReader, *, head: bool = False) -> Response:
    """One HTTP/1.1 response off the socket, its body read by Content-Length.

    `head`: the response to a HEAD, whose Content-Length describes a body that is not sent.
    """
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
    status_line, *lines = raw[:-4].decode("latin-1").split("\r\n")
    version, code, *_reason = status_line.split(" ", 2)
    assert version == "HTTP/1.1", status_line
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        assert colon, f"malformed header line {line!r}"
        assert name == name.strip(), f"malformed header line {line!r}"
        key, value = name.lower(), value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    status = int(code)
    if head or status < 200 or status in (204, 304):
        return Response(status, headers, b"")
    # Every answer this server gives has a length; chunked framing here would be a change.
    assert "transfer-encoding" not in headers, headers
    length = int(headers["content-length"])
    body = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT)
    return Response(status, headers, body)


@dataclass
class Client:
    """One TCP connection to the server, spoken to in raw bytes."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, *, head: bool = False) -> Response:
        return await read_response(self.reader, head=head)

    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        version: str = "HTTP/1.1",
    ) -> Response:
        await self.send(http_request(method, path, headers, body, version))
        return await self.response(head=method == "HEAD")

    async def closed_by_server(self, within: float) -> None:
        """Wait for the server to close the connection, with nothing more sent on it."""
        rest = await asyncio.wait_for(self.reader.read(), within)
        assert rest == b"", f"bytes after the last answer: {rest[:200]!r}"

    async def close(self) -> None:
        if self.writer.transport.get_write_buffer_size():
            # Unsent bytes to a server that stopped reading would hold a graceful close open.
            self.writer.transport.abort()
        else:
            self.writer.close()
        # The server may have reset the connection already; closing ours is all that is left.
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@dataclass
class Site:
    """A running server (as status/cli.py starts it) and an admin token for its staff API."""

    server: EmbeddedServer
    port: int
    token: str
    clients: list[Client] = field(default_factory=list)

    async def connect(self, *, receive_buffer: int | None = None) -> Client:
        sock = socket.socket()
        if receive_buffer is not None:
            # Set before connecting: a fixed buffer turns off the kernel's autotuning (which
            # on loopback lets a client soak up tens of megabytes without reading).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        client = Client(reader, writer)
        self.clients.append(client)
        return client

    def transport_of(self, client: Client) -> asyncio.Transport:
        """The server's end of `client`'s connection."""
        here = client.writer.get_extra_info("sockname")
        (transport,) = [
            c.transport
            for c in self.server.server_state.connections
            if isinstance(c, HttpToolsProtocol) and c.client == here
        ]
        return transport

    def auth(self, path: str) -> dict[str, str]:
        """The headers a GET of `path` needs: the staff API asks for the token."""
        if path.startswith("/api/v1/"):
            return {"Authorization": f"Bearer {self.token}"}
        return {}

    async def alone(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> Response:
        """The answer to one request on a connection of its own."""
        return await (await self.connect()).request(
            method, path, {**self.auth(path), **(headers or {})}
        )


@asynccontextmanager
async def serving(services: Services, keep_alive: float) -> AsyncIterator[Site]:
    async with served(services, keep_alive) as running:
        site = Site(running.server, running.port, running.token)
        try:
            yield site
        finally:
            for client in site.clients:
                await client.close()


@pytest.fixture
async def site(services: Services) -> AsyncIterator[Site]:
    # Long enough that no test here sees a connection closed for idleness by accident.
    async with serving(services, keep_alive=30) as running:
        yield running


@pytest.fixture
async def brief_site(services: Services) -> AsyncIterator[Site]:
    async with serving(services, keep_alive=BRIEF_KEEP_ALIVE) as running:
        yield running


def staff_headers(site: Site) -> dict[str, str]:
    return {**site.auth("/api/v1/"), "Content-Type": "application/json"}


async def test_one_connection_carries_both_paths_in_order(site: Site) -> None:
    client = await site.connect()
    before = await client.request("GET", SUMMARY)
    assert before.status == 200
    assert before.json()["incidents"] == []

    missing = await client.request("GET", MISSING, site.auth(MISSING))
    assert missing.status == 404
    assert missing.headers["content-type"].startswith("application/json")
    assert missing.json()["error"]["code"] == "not_found"

    again = await client.request("GET", SUMMARY)
    assert (again.status, again.body) == (200, before.body)

    body = json.dumps(INCIDENT).encode()
    created = await client.request("POST", "/api/v1/incidents", staff_headers(site), body)
    assert created.status == 201, created.body
    assert created.json()["name"] == INCIDENT["name"]

    # The write rebuilt the snapshot before it was answered: the same connection, whose
    # earlier summary answers were remembered, now reads the new one.
    after = await client.request("GET", SUMMARY)
    assert after.status == 200
    assert [i["id"] for i in after.json()["incidents"]] == [created.json()["id"]]
    assert after.headers["etag"] != before.headers["etag"]


async def test_a_crowd_connecting_at_once_is_served(site: Site) -> None:
    expected = await site.alone("GET", SUMMARY)
    # More connections than one accept per loop turn would let in quickly, all at once.
    clients = await asyncio.gather(*(site.connect() for _ in range(300)))
    answers = await asyncio.gather(*(c.request("GET", SUMMARY) for c in clients))
    assert {(a.status, a.body) for a in answers} == {(200, expected.body)}


async def test_pipelined_requests_are_answered_in_request_order(site: Site) -> None:
    orders = [
        [SUMMARY, MISSING, ATOM],
        # Snapshot requests behind a routed one wait their turn instead of overtaking it.
        [MISSING, SUMMARY, "/healthz", ATOM, SUMMARY],
    ]
    alone = {path: await site.alone("GET", path) for path in {*orders[0], *orders[1]}}
    for paths in orders:
        client = await site.connect()
        await client.send(b"".join(http_request("GET", p, site.auth(p)) for p in paths))
        answers = [await client.response() for _ in paths]
        assert [(a.status, a.headers["content-type"], a.body) for a in answers] == [
            (alone[p].status, alone[p].headers["content-type"], alone[p].body) for p in paths
        ], paths
        # Still in step after the pipeline has drained.
        assert (await client.request("GET", SUMMARY)).body == alone[SUMMARY].body


async def test_a_connection_not_kept_alive_is_closed_after_its_answer(site: Site) -> None:
    asks: list[tuple[str, dict[str, str]]] = [
        ("HTTP/1.0", {}),
        ("HTTP/1.1", {"Connection": "close"}),
    ]
    for path in (SUMMARY, "/healthz"):  # a snapshot path, a routed one
        expected = await site.alone("GET", path)
        for version, headers in asks:
            client = await site.connect()
            answer = await client.request("GET", path, headers, version=version)
            case = (path, version, headers)
            assert (answer.status, answer.body) == (200, expected.body), case
            assert answer.headers["connection"] == "close", case
            await client.closed_by_server(within=3)


async def test_head_announces_the_get_length_and_sends_no_body(site: Site) -> None:
    client = await site.connect()
    for encoding in ("identity", "gzip"):
        accept = {"Accept-Encoding": encoding}
        get = await site.alone("GET", SUMMARY, accept)
        head = await client.request("HEAD", SUMMARY, accept)
        assert head.status == 200
        assert int(head.headers["content-length"]) == len(get.body), encoding
        assert_cacheable(head, get.headers["etag"])
        # Body bytes after the HEAD answer would be read here as the next status line.
        following = await client.request("GET", SUMMARY, accept)
        assert (following.status, following.body) == (200, get.body), encoding


async def test_post_to_a_snapshot_path_is_refused_and_its_body_skipped(site: Site) -> None:
    expected = await site.alone("GET", SUMMARY)
    client = await site.connect()
    post = http_request("POST", SUMMARY, {"Content-Type": "text/plain"}, b"x" * 1000)
    # The body arrives in two writes, the second together with the next request.
    await client.send(post[:-600])
    await client.send(post[-600:] + http_request("GET", SUMMARY))
    refused = await client.response()
    assert refused.status == 405
    assert refused.headers["content-type"] == "application/json"
    assert refused.json()["error"]["code"] == "method_not_allowed"
    assert refused.headers["allow"] == "GET, HEAD, OPTIONS"
    assert_http_date(refused.headers["date"])
    following = await client.response()
    assert (following.status, following.body) == (200, expected.body)


async def test_percent_encoded_snapshot_path_is_the_same_document(site: Site) -> None:
    plain = await site.alone("GET", SUMMARY)
    client = await site.connect()
    for path in ("/api/v2/summary%2Ejson", "/api/v2/summary%2ejson"):
        encoded = await client.request("GET", path)
        assert (encoded.status, encoded.body) == (200, plain.body), path
        assert encoded.headers["etag"] == plain.headers["etag"], path


def assert_http_date(value: str) -> None:
    assert IMF_FIXDATE.fullmatch(value), value
    sent = parsedate_to_datetime(value)
    assert sent.tzinfo is not None
    # The server's own clock (uvicorn's per-second Date), not the services' manual clock.
    assert abs((datetime.now(UTC) - sent).total_seconds()) < 60, value


def assert_cacheable(response: Response, etag: str) -> None:
    """What a browser or CDN needs to cache and revalidate a snapshot answer."""
    assert_http_date(response.headers["date"])
    assert response.headers["etag"] == etag
    assert "max-age=" in response.headers["cache-control"]


async def test_snapshot_answers_carry_date_validators_and_gzip(site: Site) -> None:
    client = await site.connect()  # all on one connection: each answer must end where it says
    for path in ("/", SUMMARY, ATOM):
        plain = await client.request("GET", path, {"Accept-Encoding": "identity"})
        assert plain.status == 200, path
        etag = plain.headers["etag"]
        assert re.fullmatch(r'"[^"]+"', etag), etag
        assert_cacheable(plain, etag)
        assert "content-encoding" not in plain.headers, path

        zipped = await client.request("GET", path, {"Accept-Encoding": "gzip, deflate"})
        assert zipped.status == 200, path
        assert zipped.headers["content-encoding"] == "gzip", path
        assert "Accept-Encoding" in zipped.headers["vary"], path
        assert_cacheable(zipped, etag)
        assert gzip.decompress(zipped.body) == plain.body, path

        fresh = await client.request(
            "GET", path, {"If-None-Match": etag, "Accept-Encoding": "gzip"}
        )
        assert fresh.status == 304, path
        assert_cacheable(fresh, etag)


async def test_idle_connection_is_closed_after_the_keep_alive_timeout(brief_site: Site) -> None:
    loop = asyncio.get_running_loop()

    async def idle_after(path: str) -> float:
        client = await brief_site.connect()
        answer = await client.request("GET", path, brief_site.auth(path))
        assert answer.status == (200 if path == SUMMARY else 404), path
        answered_at = loop.time()
        await client.closed_by_server(within=3)
        return loop.time() - answered_at

    # Side by side, to keep the test short: one connection answered from the snapshot, one
    # through the routed app.
    snapshot, routed = await asyncio.gather(idle_after(SUMMARY), idle_after(MISSING))
    assert snapshot >= BRIEF_KEEP_ALIVE - 0.1, f"closed after {snapshot:.3f}s idle"
    assert routed >= BRIEF_KEEP_ALIVE - 0.1, f"closed after {routed:.3f}s idle"


async def test_a_client_asking_often_keeps_its_connection(brief_site: Site) -> None:
    client = await brief_site.connect()
    loop = asyncio.get_running_loop()
    start = loop.time()
    # Each pause is under the keep-alive timeout; together they are three times it. Snapshot
    # answers only, then alternating with routed ones (whose keep-alive timer is uvicorn's).
    paths = [SUMMARY] * 4 + [MISSING, SUMMARY] * 4
    asked = 0
    while loop.time() - start < 3 * BRIEF_KEEP_ALIVE:
        path = paths[asked]
        answer = await client.request("GET", path, brief_site.auth(path))
        assert answer.status == (200 if path == SUMMARY else 404), f"request {asked}: {path}"
        asked += 1
        await asyncio.sleep(0.2)
    assert asked >= 7
    # …and once the client falls silent, it is closed all the same.
    await client.closed_by_server(within=3)


async def test_malformed_request_is_a_400_and_the_connection_closes(site: Site) -> None:
    for first in (None, SUMMARY, MISSING):  # on a fresh connection, after each kind of answer
        client = await site.connect()
        if first is not None:
            assert (await client.request("GET", first, site.auth(first))).status in (200, 404)
        await client.send(b"GARBAGE\r\n\r\n")
        refused = await client.response()
        assert refused.status == 400, first
        assert refused.headers["connection"] == "close", first
        await client.closed_by_server(within=3)


async def test_expect_100_continue_is_answered_before_the_body_is_sent(site: Site) -> None:
    client = await site.connect()
    body = json.dumps(INCIDENT).encode()
    headers = {**staff_headers(site), "Content-Length": str(len(body)), "Expect": "100-continue"}
    await client.send(http_request("POST", "/api/v1/incidents", headers))
    interim = await client.response()
    assert interim.status == 100
    await client.send(body)
    created = await client.response()
    assert created.status == 201, created.body
    summary = await client.request("GET", SUMMARY)
    assert [i["id"] for i in summary.json()["incidents"]] == [created.json()["id"]]


async def test_page_language_follows_query_then_accept_language(site: Site) -> None:
    client = await site.connect()
    asks: list[tuple[str, dict[str, str], str]] = [
        ("/?lang=en", {}, "en"),
        ("/", {}, "id"),
        ("/", {"Accept-Language": "en"}, "en"),
        ("/?lang=id", {"Accept-Language": "en"}, "id"),
        ("/", {"Accept-Language": "en-US,en;q=0.9,id;q=0.8"}, "en"),
    ]
    # Twice over on one connection: the second round is answered from remembered replies,
    # which must still tell the languages apart.
    for _round in range(2):
        for path, headers, lang in asks:
            page = await client.request("GET", path, {"Accept-Encoding": "identity", **headers})
            assert page.status == 200, (path, headers)
            assert f'<html lang="{lang}"'.encode() in page.body, (path, headers)


# The snapshot path keeps its own keep-alive timer and writes without uvicorn's cycle, so these
# run on it and on the routed path, whose handling (uvicorn's) is the reference.


@pytest.mark.parametrize("first", [SUMMARY, MISSING], ids=["after-snapshot", "after-routed"])
async def test_a_request_begun_before_the_keep_alive_timeout_is_answered(
    brief_site: Site, first: str
) -> None:
    client = await brief_site.connect()
    assert (await client.request("GET", first, brief_site.auth(first))).status in (200, 404)
    # The next request starts before the timeout and finishes after it (a slow network
    # splitting its headers): the connection is not idle, and the request must be answered.
    await asyncio.sleep(0.4 * BRIEF_KEEP_ALIVE)
    request = http_request("GET", SUMMARY)
    await client.send(request[:12])
    await asyncio.sleep(0.8 * BRIEF_KEEP_ALIVE)
    await client.send(request[12:])
    answer = await client.response()
    assert answer.status == 200


# What a server may hold in memory for one client beyond what the sockets take.
BACKLOG_LIMIT = 1 << 20


@pytest.mark.parametrize(
    "path",
    # The same document; percent-encoded, it is answered through uvicorn's ASGI cycle.
    [SUMMARY, "/api/v2/summary%2Ejson"],
    ids=["snapshot", "routed"],
)
async def test_a_client_that_never_reads_is_not_buffered_without_bound(
    site: Site, path: str
) -> None:
    answer_size = len((await site.alone("GET", SUMMARY)).body)
    client = await site.connect(receive_buffer=64 * 1024)
    transport = site.transport_of(client)
    # Answers for 16 MB: more than the server's socket send buffer and ours together take.
    client.writer.write(http_request("GET", path) * (16 * 2**20 // answer_size))

    loop = asyncio.get_running_loop()
    state = site.server.server_state
    last = (state.total_requests, loop.time())

    def settled() -> bool:
        """Over the limit, or holding off: no answer for a while (the answers cannot all
        fit in the sockets, so a server that answered them all had to buffer them)."""
        nonlocal last
        if transport.get_write_buffer_size() > BACKLOG_LIMIT:
            return True
        if state.total_requests != last[0]:
            last = (state.total_requests, loop.time())
            return False
        return loop.time() - last[1] > 0.2

    await eventually(settled)
    assert transport.get_write_buffer_size() <= BACKLOG_LIMIT

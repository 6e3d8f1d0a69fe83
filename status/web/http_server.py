"""The HTTP/1.1 server: uvicorn, with snapshot reads answered inside its protocol.

A rush is thousands of phones asking for the same few prebuilt answers. uvicorn's httptools
protocol parses each request in C (llhttp); for a snapshot path the answer is written to the
socket straight from the parser's callback, with no ASGI scope, task or send/receive round trip
(`SnapshotProtocol`), from replies remembered per request shape until the snapshot changes
(`Answers`). Every other request, any request behind one still being answered (pipelining) and
any request while the client is not reading takes uvicorn's ordinary ASGI path, so keep-alive,
flow control, bodies and error handling stay uvicorn's. Both paths decide with
status.web.public.answer. `Acceptor` lets a crowd in at once. Measured in bench/public.py and
bench/summary.py (0.9-1.0 of nginx's requests/s here, where granian's RSGI reached 0.5-0.8).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import httptools
from starlette.types import ASGIApp
from uvicorn import Config, Server
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from status.snapshot import Reply, Snapshot
from status.web.public import NEGOTIATED, PublicFiles, answer, negotiated_headers

# A rush is thousands of phones at once, most holding an idle keep-alive connection; the
# kernel's default somaxconn is 4096.
BACKLOG = 4096
ACCEPT_PAUSE_SECONDS = 0.1
# How long an idle keep-alive connection is kept: a phone that refreshes within this reuses
# its connection (nginx keeps 75 s; fewer idle sockets held during a crowd matters more here).
KEEP_ALIVE_SECONDS = 30

log = logging.getLogger(__name__)

Negotiated = list[tuple[bytes, bytes]]  # a request's headers that its answer depends on


class Answers:
    """The snapshot's replies by request, remembered for as long as the snapshot is unchanged.

    A crowd sends a handful of distinct requests (a path, a method and the few headers an
    answer depends on), so after the first of each, a request costs one dict lookup instead of
    status.web.public.answer's negotiation. Only found paths are kept, at most MAX entries of
    at most MAX_KEY_BYTES of request each.
    """

    MAX = 4096
    MAX_KEY_BYTES = 1024  # so at most a few MB of remembered keys, whatever clients send

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._files: object = None
        self._replies: dict[Hashable, Reply] = {}

    def __len__(self) -> int:
        return len(self._replies)

    def get(self, key: Hashable) -> Reply | None:
        if self.snapshot.files is not self._files:  # rebuilt: every remembered reply is stale
            self._files = self.snapshot.files
            self._replies = {}
        return self._replies.get(key)

    def decide(
        self, key: Hashable, url: bytes, method: bytes, negotiated: Negotiated
    ) -> Reply | None:
        """status.web.public.answer for this request (remembered); None: not a snapshot path."""
        parsed = httptools.parse_url(url)
        raw_path: bytes = parsed.path
        if b"%" in raw_path:  # percent-encoded: the ASGI path decodes it properly
            return None
        path = raw_path.decode("ascii")
        if self.snapshot.get(path) is None:  # most routed requests stop here
            return None
        query = parsed.query.decode("latin-1") if parsed.query else ""
        headers = negotiated_headers(negotiated).get
        reply = answer(self.snapshot, method.decode("ascii"), path, query, headers)
        size = len(url) + sum(len(value) for _name, value in negotiated)
        if reply is not None and size <= self.MAX_KEY_BYTES:  # odd, huge requests: not kept
            if len(self._replies) >= self.MAX:
                self._replies = {}
            self._replies[key] = reply
        return reply


class SnapshotProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that answers snapshot paths itself (see the module doc).

    `answers` is set on a subclass per server (`protocol_for`); uvicorn builds one protocol
    per connection with its own arguments.
    """

    answers: Answers
    _answered = False  # the message being parsed was answered here, not by a cycle
    _negotiated: Negotiated  # set per request, in on_message_begin
    _active_at = 0.0  # loop time this connection last received bytes or got a snapshot answer
    _idle_timer: asyncio.TimerHandle | None = None

    def on_message_begin(self) -> None:
        # uvicorn's per-request ASGI scope is built later, only for requests it answers.
        self._answered = False
        self.url = b""
        self.headers = []
        self._negotiated = []
        self.expect_100_continue = False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        self.headers.append((name, value))
        if name in NEGOTIATED:
            self._negotiated.append((name, value))
        elif name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True

    def data_received(self, data: bytes) -> None:
        self._active_at = self.loop.time()  # a request under way keeps the connection open
        super().data_received(data)

    def on_headers_complete(self) -> None:
        # uvicorn's path queues requests behind one in flight and waits for a slow reader to
        # drain before writing more; while either holds, requests go that way, in order.
        busy = self.cycle is not None and not self.cycle.response_complete
        if not busy and not self.flow.write_paused and self._answer_from_snapshot():
            return
        url, headers, expect_100_continue = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.headers = url, headers
        self.expect_100_continue = expect_100_continue
        self.scope["headers"] = headers
        super().on_headers_complete()

    def _answer_from_snapshot(self) -> bool:
        parser = self.parser
        if parser.should_upgrade():
            return False
        method: bytes = parser.get_method()
        key = (self.url, method, *self._negotiated)
        reply = self.answers.get(key)
        if reply is None:
            reply = self.answers.decide(key, self.url, method, self._negotiated)
            if reply is None:
                return False
        self._answered = True
        keep_alive = parser.should_keep_alive() and parser.get_http_version() != "1.0"
        date = _date_lines(self.server_state.default_headers)
        if not keep_alive:
            date += b"connection: close\r\n"
        self.transport.write(b"".join((reply.wire_status, date, reply.wire_headers, reply.body)))
        self.server_state.total_requests += 1
        if not keep_alive:
            self.transport.close()
        else:
            self._mark_active()
        return True

    def _mark_active(self) -> None:
        """Close the connection once idle for the keep-alive timeout, with one timer per idle
        period rather than uvicorn's cancel-and-rearm per request (a fifth of the rush path's
        time in bench/summary.py)."""
        self._active_at = self.loop.time()
        if self._idle_timer is None:
            self._idle_timer = self.loop.call_later(self.timeout_keep_alive, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and (
            not self.cycle.response_complete or self.timeout_keep_alive_task is not None
        ):
            return  # uvicorn's own path is answering, or arms its own timer after it answered
        remaining = self._active_at + self.timeout_keep_alive - self.loop.time()
        if remaining > 0:
            self._idle_timer = self.loop.call_later(remaining, self._idle_check)
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        super().connection_lost(exc)

    def on_body(self, body: bytes) -> None:
        if not self._answered:  # a body sent with an answered request is read and dropped
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._answered:
            super().on_message_complete()


_date_cache: tuple[list[tuple[bytes, bytes]] | None, bytes] = (None, b"")


def _date_lines(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """uvicorn's per-second default headers (Date) as header lines, joined once per second."""
    global _date_cache
    cached, lines = _date_cache
    if cached is not default_headers:
        lines = b"".join(name + b": " + value + b"\r\n" for name, value in default_headers)
        _date_cache = (default_headers, lines)
    return lines


def protocol_for(snapshot: Snapshot) -> type[SnapshotProtocol]:
    return type("SnapshotProtocol", (SnapshotProtocol,), {"answers": Answers(snapshot)})


class Acceptor:
    """Accepts every waiting connection each time the listening socket is readable.

    uvloop's own server accepts one connection per readiness event (libuv), and under a rush
    the loop's turns go to the busy connections: in bench/public.py's 2,000-connection hold
    the accept queue drained at a few connections a second and 1,323 requests timed out.
    Accepting up to the backlog per turn lets every phone in at once, as nginx and granian do.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
    ) -> None:
        self.loop, self.sock, self.protocol_factory = loop, sock, protocol_factory
        self._starting: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._short = False  # out of descriptors (or buffers) at the last attempt

    def start(self) -> None:
        if not self._closed:
            self.loop.add_reader(self.sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(BACKLOG):  # bounded, so one turn cannot starve open connections
            try:
                conn, _address = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:  # out of descriptors or buffers: pause, as libuv would
                if not self._short:  # once per shortage, not ten lines a second
                    log.warning("cannot accept connections for now: %s", exc)
                    self._short = True
                self.loop.remove_reader(self.sock.fileno())
                self.loop.call_later(ACCEPT_PAUSE_SECONDS, self.start)
                return
            if self._short:
                log.warning("accepting connections again")
                self._short = False
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = self.loop.create_task(self._connect(conn))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(self.protocol_factory, conn)
        except OSError:  # the client went away before its connection was set up
            conn.close()

    # What uvicorn's shutdown asks of each of its servers.
    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    async def wait_closed(self) -> None:
        if self._starting:
            await asyncio.gather(*self._starting, return_exceptions=True)


class EmbeddedServer(Server):
    """uvicorn on the caller's loop: signals left to its owner (the CLI stops every server at
    once) and connections accepted by `Acceptor`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        self.should_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            raise SystemExit(STARTUP_FAILURE)
        config = self.config
        host = config.host or "0.0.0.0"  # noqa: S104 - uvicorn's own default for no host
        try:
            sock = socket.create_server(
                (host, config.port),
                family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                backlog=config.backlog,
            )
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s", host, config.port, exc)
            await self.lifespan.shutdown()
            raise SystemExit(STARTUP_FAILURE) from exc
        sock.setblocking(False)

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )

        acceptor = Acceptor(asyncio.get_running_loop(), sock, protocol)
        acceptor.start()
        self.servers = [acceptor]  # type: ignore[list-item]  # close() and wait_closed() suffice
        log.info("listening on http://%s:%d", *sock.getsockname()[:2])
        self.started = True


def http_server(
    app: ASGIApp,
    host: str,
    port: int,
    connection_limit: int | None,
    *,
    keep_alive: float = KEEP_ALIVE_SECONDS,
) -> EmbeddedServer:
    """uvicorn on the running loop serving `app`; snapshot reads answered in the protocol when
    `app` is create_app's `PublicFiles` (any other app, e.g. the demo's simulator, is served as is)."""
    http: Any = "httptools"
    if isinstance(app, PublicFiles):
        http = protocol_for(app.snapshot)
    config = Config(
        app,
        host=host,
        port=port,
        http=http,
        ws="none",
        lifespan="on",
        loop="none",  # the CLI's own (uvloop) loop
        backlog=BACKLOG,
        limit_concurrency=connection_limit,
        timeout_keep_alive=keep_alive,  # type: ignore[arg-type]  # a float works; tests use < 1 s
        server_header=False,
        proxy_headers=False,
        log_config=None,
        access_log=False,
    )
    return EmbeddedServer(config)


async def serve_all(servers: list[EmbeddedServer]) -> None:
    await asyncio.gather(*(server.serve() for server in servers))

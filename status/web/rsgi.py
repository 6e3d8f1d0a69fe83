"""PublicRSGI: granian's native RSGI interface in front of the ASGI app; Lifespan runs its lifespan.

RSGI hands a request to Python without ASGI's per-request dicts and send/receive round
trips; on the rush-hour path (a snapshot read) that is most of the work left in Python
(bench/public.py). Snapshot paths are answered with status.web.public.answer, the same
decision the ASGI `PublicFiles` makes; every other request is bridged to the ASGI app.
RSGI has no lifespan, so `Lifespan` runs the ASGI one around the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol
from urllib.parse import unquote

from granian._granian import RSGIHTTPProtocol as HTTPProtocol, RSGIProtocolClosed as ProtocolClosed
from granian.rsgi import Scope as RSGIScope
from starlette.types import ASGIApp, Message, Scope

from status.snapshot import Snapshot
from status.web.public import PublicFiles, answer

log = logging.getLogger(__name__)

_ASGI = {"version": "3.0", "spec_version": "2.3"}


class PublicRSGI:
    """An RSGI app: snapshot paths from memory, everything else through the ASGI `app`.

    `app` is what create_app returns (`PublicFiles` around the routed app); bridged requests
    go to the routed app inside it, as `PublicFiles` would pass them on.
    """

    def __init__(self, app: ASGIApp, state: dict[str, Any] | None = None) -> None:
        # Any other app (the demo's simulator) is bridged whole.
        self.snapshot: Snapshot | None = None
        self.app = app
        if isinstance(app, PublicFiles):
            self.snapshot, self.app = app.snapshot, app.app
        self.state = state if state is not None else {}

    async def __rsgi__(self, scope: RSGIScope, protocol: HTTPProtocol) -> None:
        if scope.proto != "http":  # websockets are switched off; nothing else arrives
            return
        if self.snapshot is not None:
            reply = answer(
                self.snapshot, scope.method, scope.path, scope.query_string, scope.headers.get
            )
            if reply is not None:
                protocol.response_bytes(reply.status, reply.str_headers, reply.body)
                return
        # A real asyncio.Task for the ASGI app: granian's Rust task shares one context and one
        # stand-in "current task" among all requests, and anyio (Starlette) needs its own.
        await asyncio.ensure_future(_Bridge(protocol).run(self.app, self._asgi_scope(scope)))

    __call__ = __rsgi__

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.call_soon(_forget_stand_in_tasks)  # once granian has registered it

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        _forget_stand_in_tasks()

    def _asgi_scope(self, scope: RSGIScope) -> Scope:
        path = scope.path
        return {
            "type": "http",
            "asgi": _ASGI,
            "http_version": scope.http_version,
            "method": scope.method,
            "scheme": scope.scheme,
            "path": unquote(path),
            "raw_path": path.encode("latin-1", "replace"),
            "query_string": scope.query_string.encode("latin-1", "replace"),
            "root_path": "",
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1", "replace"))
                for name, value in scope.headers.items()
            ],
            "client": _address(scope.client),
            "server": _address(scope.server),
            "state": self.state.copy(),
        }


def _forget_stand_in_tasks() -> None:
    """Drop granian's stand-in task (Rust task implementation) from asyncio's task registry.

    granian registers a never-initialised asyncio.Task subclass per server, and
    asyncio.all_tasks() raises on it ("Future object is not initialized"): every later call,
    including the one asyncio.Runner makes at exit, so `siaran serve` would exit 1 after a
    clean stop. The registry only feeds all_tasks(); granian does not need the entry.
    Python 3.11 only: granian uses the Rust task implementation on Python < 3.12 only.
    """
    from granian._futures import _CBSchedulerTask

    registry = getattr(asyncio.tasks, "_all_tasks", None)
    if registry is not None:
        for task in [t for t in registry if isinstance(t, _CBSchedulerTask)]:
            registry.discard(task)


def _address(value: str) -> tuple[str, int] | None:
    """(host, port) from "1.2.3.4:5678" or "[::1]:5678"; None when there is none."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


class _Stream(Protocol):
    async def send_bytes(self, data: bytes) -> None: ...


class _Bridge:
    """One request's ASGI receive/send over an RSGI protocol."""

    def __init__(self, protocol: HTTPProtocol) -> None:
        self.protocol = protocol
        self.body: AsyncIterator[bytes] | None = None
        self.body_done = False
        self.start: Message | None = None
        self.stream: _Stream | None = None
        self.responded = False
        self.closed = False

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        try:
            await app(scope, self.receive, self.send)
        except Exception:
            log.exception("error while answering %s %s", scope["method"], scope["path"])
            if not self.responded and not self.closed:
                self.protocol.response_bytes(
                    500, [("content-type", "text/plain; charset=utf-8")], b"Internal Server Error"
                )
            return
        if not self.responded and not self.closed:
            # An app that returned without a full response: the client still gets an answer.
            if self.start is not None:
                self._respond(self.start, b"")
            else:
                self.protocol.response_empty(500, [])

    async def receive(self) -> Message:
        if not self.body_done:
            if self.body is None:
                self.body = aiter(self.protocol)
            try:
                chunk = await anext(self.body)
            except StopAsyncIteration:
                self.body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            except ProtocolClosed:
                self.body_done = self.closed = True
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": chunk, "more_body": True}
        if not self.closed:
            await self.protocol.client_disconnect()
            self.closed = True
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.start = message
            return
        if kind != "http.response.body" or self.start is None or self.closed:
            return  # after a disconnect the app's remaining output has nowhere to go
        if self.responded and self.stream is None:
            return  # the response is complete; ASGI ignores anything more
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        if self.stream is None and not more:
            self._respond(self.start, body)
            return
        if self.stream is None:
            self.stream = self.protocol.response_stream(self.start["status"], _headers(self.start))
            self.responded = True
        try:
            if body:
                await self.stream.send_bytes(body)
        except ProtocolClosed:
            self.closed = True

    def _respond(self, start: Message, body: bytes) -> None:
        self.responded = True
        self.protocol.response_bytes(start["status"], _headers(start), body)


def _headers(start: Message) -> list[tuple[str, str]]:
    return [
        (bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
        for name, value in start.get("headers", ())
    ]


class LifespanFailed(RuntimeError):
    """The app's lifespan startup failed; the server must not start."""


@asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[dict[str, Any]]:
    """Run `app`'s ASGI lifespan: startup on entry, shutdown on exit; yields its state dict."""
    state: dict[str, Any] = {}
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope: Scope = {"type": "lifespan", "asgi": _ASGI, "state": state}

    async def send(message: Message) -> None:
        await outbox.put(message)

    async def run() -> None:
        try:
            await app(scope, inbox.get, send)
        except BaseException as exc:  # the app's failure is reported as the lifespan's
            await outbox.put({"type": "lifespan.failed", "message": repr(exc)})
            raise

    task = asyncio.create_task(run(), name="lifespan")
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        await asyncio.gather(task, return_exceptions=True)
        raise LifespanFailed(started.get("message", started["type"]))
    try:
        yield state
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        stopped = await outbox.get()
        await asyncio.gather(task, return_exceptions=True)
        if stopped["type"] != "lifespan.shutdown.complete":
            log.error("lifespan shutdown failed: %s", stopped.get("message", stopped["type"]))

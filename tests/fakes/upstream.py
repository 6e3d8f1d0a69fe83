"""A fake e-Meterai upstream and branch queue systems, served for real on loopback.

Tests flip its state (a service down, a queue frozen) and the prober finds out over HTTP,
exactly as in production.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp


@dataclass
class Upstream:
    """Shared state: the test thread writes, the server thread reads (single assignments)."""

    down: set[str] = field(default_factory=set)
    html: set[str] = field(default_factory=set)
    queues: dict[str, tuple[int, int]] = field(default_factory=dict)  # branch → (serving, issued)

    def app(self) -> Starlette:
        async def health(request: Request) -> Response:
            name = request.path_params["name"]
            if name in self.down:
                return JSONResponse({"status": "DOWN", "errors": ["upstream timeout"]}, 503)
            if name in self.html:
                return HTMLResponse("<html><body>502 Bad Gateway</body></html>", 200)
            return JSONResponse({"status": "UP", "data": {"available": True}, "errors": []})

        async def queue(request: Request) -> Response:
            serving, issued = self.queues.get(request.path_params["branch"], (10, 40))
            return JSONResponse({"serving": serving, "issued": issued, "counters_open": 2})

        return Starlette(
            routes=[Route("/api/{name}/health", health), Route("/queues/{branch}", queue)]
        )

    def advance_queues(self, step: int = 1) -> None:
        """Every queue serves `step` more tickets and issues as many."""
        self.queues = {b: (s + step, i + step) for b, (s, i) in self.queues.items()}


@contextmanager
def serve(app: ASGIApp, port: int = 0) -> Iterator[str]:
    """Run `app` under uvicorn on a pre-bound loopback socket in a thread; yields its URL.

    `port` 0 takes a free one; a fixed port lets a test stop a server and start it again at
    the same address (an outage, then recovery).
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            http="h11",
            ws="none",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:  # uvicorn offers a flag, not an event, for "listening"
        assert thread.is_alive(), "uvicorn failed to start"
        assert time.monotonic() < deadline, "uvicorn did not start within 20s"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

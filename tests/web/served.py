"""`siaran serve`'s HTTP server started in the test's loop, for the tests of that server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.types import ASGIApp

from status import tokens
from status.services import Services
from status.web.app import create_app
from status.web.http_server import KEEP_ALIVE_SECONDS, EmbeddedServer, http_server
from tests.conftest import free_port, wait_for_port

# A staff report whose name needs escaping wherever it is shown.
INCIDENT = {
    "name": "Antrean KCU Medan <b>&\"'",
    "status": "investigating",
    "impact": "major",
    "body": "Nomor antrean tidak bergerak sejak 08.00 WIB.",
    "components": {"kcu-medan": "partial_outage"},
}


@dataclass(frozen=True)
class Served:
    app: ASGIApp
    server: EmbeddedServer
    port: int
    token: str  # an admin token for the staff API


@asynccontextmanager
async def served(
    services: Services, keep_alive: float = KEEP_ALIVE_SECONDS
) -> AsyncIterator[Served]:
    """The app as status/cli.py serves it, on a free loopback port, until the block ends."""
    app = create_app(services, background=False)
    _info, token = await tokens.create_token(
        services.engine, "ops admin", ("admin",), services.clock.now()
    )
    port = free_port()
    server = http_server(app, "127.0.0.1", port, connection_limit=None, keep_alive=keep_alive)
    serving = asyncio.create_task(server.serve())
    try:
        await wait_for_port(port)
        yield Served(app, server, port, token)
    finally:
        server.stop()
        await serving

"""`siaran serve` on a chosen HTTP server and event loop; bench/summary.py starts it.

It is `status.cli._serve` (the wiring is status.web.asgi.wired_app) with one thing chosen —
which server runs the app, and on which event loop — so the benchmark measures exactly what
that choice in `siaran serve` gives:

    .venv/bin/python bench/serve.py --config siaran.toml --server granian --loop asyncio

`--server uvicorn` is plain uvicorn serving the ASGI app (`PublicFiles` answers snapshot
reads), without the protocol that `siaran serve` gives uvicorn (status/web/http_server.py);
`--loop asyncio` runs it under `asyncio.run`, so the stdlib loop. `--server granian` is
granian's embedded server with the ASGI app (siaran serve ran granian from 5f5976b until the
protocol replaced it).

`--bare FILE` serves no Siaran at all: a bare ASGI callable answers every request with the
bytes and headers in FILE (JSON written by bench/summary.py), prepared once. It is the
ceiling each server/loop pair can reach, so the table separates server cost from app cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

import broadcasters
from status.config import Config, load_config
from status.web.asgi import wired_app

log = logging.getLogger("siaran")


async def serve_uvicorn(app: ASGIApp, host: str, port: int) -> None:
    """uvicorn with the settings `siaran serve` used for it, minus proxy_headers (see serve())."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on",
            access_log=False,
            log_config=None,
            proxy_headers=False,
            server_header=False,
        )
    )
    await server.serve()


async def serve_granian(app: ASGIApp, host: str, port: int) -> None:
    """granian's embedded server: one worker on the running loop, lifespan on, HTTP/1.1."""
    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server

    server = Server(
        app,
        address=host,
        port=port,
        interface=Interfaces.ASGI,  # ASGI with lifespan: create_app's snapshot/schedule loops run
        http=HTTPModes.http1,
        websockets=False,
        log_access=False,
    )
    loop = asyncio.get_running_loop()
    # The embedded server installs no signal handlers; the process owner stops it.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.stop)
    await server.serve()


async def serve(config: Config, host: str, port: int, server: str) -> None:
    # X-Forwarded-For handling is part of the app wired_app yields (create_app wraps only the
    # routed app in it, not the public fast path), so no server adds its own.
    async with wired_app(config, os.environ) as app:
        log.info("serving %s on http://%s:%d with %s", config.site.name, host, port, server)
        await (serve_granian if server == "granian" else serve_uvicorn)(app, host, port)


def bare_app(path: str) -> ASGIApp:
    """Every HTTP request → the prepared answer in `path` ({"headers": [[k, v]...], "body_hex"})."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in doc["headers"]],
    }
    body = {"type": "http.response.body", "body": bytes.fromhex(doc["body_hex"])}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await send(start)
            await send(body)
        elif scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})

    return app


async def serve_bare(path: str, host: str, port: int, server: str) -> None:
    log.info("serving %s bare on http://%s:%d with %s", path, host, port, server)
    app = bare_app(path)
    await (serve_granian if server == "granian" else serve_uvicorn)(app, host, port)


def run(main: Coroutine[Any, Any, None], loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="Siaran config (required unless --bare)")
    parser.add_argument("--bare", metavar="FILE", help="serve this prepared answer, no Siaran")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.bare:
        run(serve_bare(args.bare, args.host, args.port, args.server), args.loop)
    elif args.config:
        config = load_config(args.config, extra_tables=broadcasters.tables())
        run(serve(config, args.host, args.port, args.server), args.loop)
    else:
        parser.error("--config or --bare is required")
    return 0


if __name__ == "__main__":
    sys.exit(main())

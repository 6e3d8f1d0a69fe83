"""wired_app(config) → the whole app wired for serving; app_from_env() for servers that import a factory.

`wired_app` is the one place a running instance is wired; `siaran serve` and `siaran demo`
hand what it yields to uvicorn on their own loop (status/web/http_server.py). A server
started by its own CLI instead imports a factory and calls it with no arguments, so the
config path comes from the environment (bench/summary.py measures this as `granian-cli`):

    SIARAN_CONFIG=siaran.toml granian --interface asgi --factory --workers 1 \
        --loop uvloop --http 1 --no-ws status.web.asgi:app_from_env

The factory reads and validates the config, so a bad file stops the server before it binds;
the wiring needs the server's event loop, so it runs at lifespan startup.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import broadcasters
from status import __version__, db
from status.checks.transport import AiohttpTransport, ProbeClient
from status.clock import SystemClock
from status.config import Config, database_url, load_config
from status.services import build_services
from status.web.app import create_app

log = logging.getLogger("siaran")


def checks_client(config: Config) -> httpx.AsyncClient:
    """The prober's client: many hosts at once, no redirects (a redirect is an answer)."""
    # aiohttp underneath: httpcore's pool collapses at thousands of hosts (checks/transport.py).
    return ProbeClient(
        transport=AiohttpTransport(limit=config.prober.concurrency),
        follow_redirects=False,
        headers={"user-agent": f"siaran-prober/{__version__}"},
    )


@asynccontextmanager
async def wired_app(config: Config, environ: Mapping[str, str]) -> AsyncIterator[ASGIApp]:
    """Migrate, open broadcasters and clients, sync components; yields the app to serve.

    The one place a running instance is wired (`siaran serve`, `siaran demo`, and servers
    that import a factory).
    """
    engine = db.make_engine(database_url(config, environ))
    try:
        await db.migrate(engine)
        clock = SystemClock()
        # Every outbound call has an explicit timeout; broadcasters may set tighter ones.
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)) as http,
            checks_client(config) as checks_http,
        ):
            # Loopback/private webhook targets only when ops say so (tests, intranets).
            private = environ.get("SIARAN_ALLOW_PRIVATE_TARGETS", "") in ("1", "true", "yes")
            deps = broadcasters.Deps(clock, http, config, environ, private, engine=engine)
            async with (
                broadcasters.open_all(config.document, deps) as targets,
                broadcasters.open_fanouts(config.document, deps) as fanouts,
            ):
                services = build_services(config, engine, clock, targets, checks_http, fanouts)
                for fanout in fanouts:  # the bot answers /status and /antrean from the snapshot
                    attach = getattr(fanout, "attach", None)
                    if attach is not None:
                        attach(services.snapshot, services.core)
                async with services.core.transaction() as tx:
                    await services.core.sync_components(tx)
                log.info("%d broadcast targets, %d fan-outs", len(targets), len(fanouts))
                yield create_app(
                    services, trusted_proxies=environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
                )
    finally:
        await engine.dispose()


def app_from_env(environ: Mapping[str, str] | None = None) -> ASGIApp:
    """The app for the config at $SIARAN_CONFIG (default ./siaran.toml); raises ConfigError."""
    env = os.environ if environ is None else environ
    config = load_config(
        env.get("SIARAN_CONFIG", "siaran.toml"), extra_tables=broadcasters.tables()
    )
    return LifespanWiredApp(config, env)  # create_app handles X-Forwarded-For itself


class LifespanWiredApp:
    """An ASGI app that runs `wired_app` at lifespan startup and then is the app it yields.

    The server must run the lifespan (granian's `asgi` interface, uvicorn `--lifespan on`);
    a request before startup has finished is a server misconfiguration and raises.
    """

    def __init__(self, config: Config, environ: Mapping[str, str]) -> None:
        self.config, self.environ = config, environ
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if self.app is None:
            raise RuntimeError("request before lifespan startup; run the server with lifespan on")
        await self.app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        startup = await receive()  # "lifespan.startup", always the first message
        async with AsyncExitStack() as stack:
            try:
                app = await stack.enter_async_context(wired_app(self.config, self.environ))
            except Exception as exc:  # reported to the server, which refuses to start
                log.exception("startup failed")
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            self.app = app
            log.info("serving %s", self.config.site.name)
            replayed = False

            async def replay_startup() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return startup
                return await receive()

            # create_app's own lifespan (snapshot, schedule, dispatch) runs until shutdown.
            await app(scope, replay_startup, send)

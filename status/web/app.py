"""create_app(services) → ASGI app: routes list, exception handlers, lifespan; nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp

from status.scheduler import run_schedule
from status.services import Services
from status.web import archive, operations, public, staff
from status.web.console.routes import ConsoleMount, console_app
from status.web.errors import HANDLERS
from status.web.public import PublicFiles


def create_app(
    services: Services, *, background: bool = True, trusted_proxies: str | None = None
) -> ASGIApp:
    """The whole HTTP side. `background=False` leaves out the loops (tests drive them).

    `trusted_proxies` (e.g. "127.0.0.1") makes X-Forwarded-For the client address the audit
    log records; it wraps only the routed app, so the public fast path stays untouched.
    """

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await services.snapshot.refresh(force=True)
        if not background:
            yield
            return
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(services.snapshot.run(), name="snapshot"),
                group.create_task(run_schedule(services.core, services.clock), name="schedule"),
            ]
            prober = services.prober
            if prober is not None:
                await prober.start()
                tasks.append(group.create_task(prober.run(), name="prober"))
            if services.targets or services.fanouts:
                from broadcasters._dispatch import Dispatcher

                dispatcher = Dispatcher(
                    services.engine, services.clock, services.targets, fanouts=services.fanouts
                )
                await dispatcher.start()
                services.core.on_commit(dispatcher.on_commit)
                tasks.append(group.create_task(dispatcher.run(), name="dispatch"))
            yield
            for task in tasks:
                task.cancel()
            if prober is not None:
                await prober.stop()

    app = Starlette(
        routes=[
            *public.routes,
            *staff.routes,
            *operations.routes,
            *archive.routes,
            # e.g. the Telegram bot's webhook endpoint, in webhook mode
            *(r for f in services.fanouts for r in getattr(f, "routes", ())),
        ],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
        # The staff console (/staff): its own app with HTML error pages, outside the API routes.
        middleware=[Middleware(ConsoleMount, console=console_app(services))],
    )
    app.state.services = services
    routed: ASGIApp = app
    if trusted_proxies is not None:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        # uvicorn types ASGI with its own TypedDicts; structurally the same as Starlette's.
        routed = ProxyHeadersMiddleware(app, trusted_hosts=trusted_proxies)  # type: ignore[arg-type,assignment]  # see above
    return PublicFiles(routed, services.snapshot)

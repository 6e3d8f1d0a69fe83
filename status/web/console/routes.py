"""The console's routes and error pages, as its own small Starlette app, and the ASGI switch
that sends /staff there.

The console is a separate app rather than routes among the API's: its refusals are HTML pages
in the reader's language, not JSON errors, and /openapi.json describes the API, not pages for
people (tests/web/test_openapi.py walks the API's routes).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from status.errors import DomainError, NotFoundError, ScopeError
from status.services import Services
from status.web.console import admin, dashboard, maintenance, notices, signin
from status.web.console.guard import SignInRequired, services_of
from status.web.console.pages import ConsoleError, render
from status.web.errors import APIError

log = logging.getLogger(__name__)
PREFIX = "/staff"

routes = [
    Route("/staff", dashboard.home, methods=["GET"]),
    Route("/staff/signin", signin.signin_form, methods=["GET"]),
    Route("/staff/signin", signin.signin, methods=["POST"]),
    Route("/staff/signout", signin.signout, methods=["POST"]),
    Route("/staff/notices/new", notices.new_notice, methods=["GET"]),
    Route("/staff/notices", notices.post_notice, methods=["POST"]),
    Route("/staff/incidents/{incident_id}", notices.show_incident, methods=["GET"]),
    Route("/staff/incidents/{incident_id}/updates", notices.post_update, methods=["POST"]),
    Route("/staff/branches/{branch_id}/queue", dashboard.set_queue, methods=["POST"]),
    Route("/staff/maintenances/new", maintenance.new_maintenance, methods=["GET"]),
    Route("/staff/maintenances", maintenance.post_maintenance, methods=["POST"]),
    Route("/staff/tokens", admin.list_tokens, methods=["GET"]),
    Route("/staff/audit", admin.list_audit, methods=["GET"]),
    Route("/staff/deliveries", admin.list_failed, methods=["GET"]),
    Route("/staff/deliveries/retry", admin.retry, methods=["POST"]),
]


def _page(request: Request, status: int, key: str, detail: str = "", **values: object) -> Response:
    services = services_of(request)
    return render(
        request,
        services,
        "error.html",
        status=status,
        key=key,
        values=values,
        detail=detail,
        current=None,
    )


async def _console_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleError)  # noqa: S101 - registered for this type only
    response = _page(request, exc.status, exc.key, exc.detail, **exc.values)
    response.headers.update(exc.headers)
    return response


async def _sign_in(request: Request, _exc: Exception) -> Response:
    target = request.url.path if request.method == "GET" else PREFIX
    return RedirectResponse(f"{PREFIX}/signin?next={quote(target)}", 303)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)  # noqa: S101 - registered for this type only
    if isinstance(exc, ScopeError):
        return _page(request, 403, "console.error.scope_denied", exc.message)
    if isinstance(exc, NotFoundError):
        return _page(request, 404, "console.error.not_found", exc.message)
    return _page(
        request, 409 if exc.code == "conflict" else 422, "console.error.invalid", exc.message
    )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)  # noqa: S101 - registered for this type only
    key = "console.error.admin_only" if exc.status == 403 else "console.error.invalid"
    return _page(request, exc.status, key, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for this type only
    key = "console.error.not_found" if exc.status_code == 404 else "console.error.method"
    response = _page(request, exc.status_code, key)
    response.headers.update(exc.headers or {})
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _page(request, 500, "console.error.internal")


def console_app(services: Services) -> Starlette:
    app = Starlette(
        routes=routes,
        exception_handlers={
            ConsoleError: _console_error,
            SignInRequired: _sign_in,
            DomainError: _domain_error,
            APIError: _api_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    app.state.services = services
    return app


class ConsoleMount:
    """ASGI middleware: /staff and /staff/… go to the console app, everything else on."""

    def __init__(self, app: ASGIApp, console: ASGIApp) -> None:
        self.app, self.console = app, console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == PREFIX or path.startswith(PREFIX + "/"):
            await self.console(scope, receive, send)
        else:
            await self.app(scope, receive, send)

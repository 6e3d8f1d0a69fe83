"""Signing in with a staff token (throttled per address), and signing out; both audited."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from status import db, tokens
from status.core import write_audit
from status.i18n import format_local
from status.model import Actor
from status.web.console import csrf, sessions, throttle
from status.web.console.forms import read_form
from status.web.console.guard import posted, services_of
from status.web.console.pages import ConsoleError, language, render

HOME = "/staff"


def _safe_next(value: str | None) -> str:
    """Only a console path: never another site (//evil.example) or a scheme."""
    if value and value.startswith(HOME) and "//" not in value and "\\" not in value:
        return value
    return HOME


def _stranger(request: Request) -> Actor:
    return Actor(
        "unknown",
        (),
        remote_addr=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", ""),
    )


def _throttled(request: Request, until: datetime, now: datetime) -> ConsoleError:
    services = services_of(request)
    lang = language(request, services)
    zone = ZoneInfo(services.config.site.timezone)
    error = ConsoleError(429, "console.error.throttled", at=format_local(until, zone, lang))
    error.headers["Retry-After"] = str(max(1, math.ceil((until - now).total_seconds())))
    return error


async def signin_form(request: Request) -> Response:
    services = services_of(request)
    site = services.config.site
    cookie = sessions.cookie_name(request, site.public_url, csrf.SIGNIN_COOKIE)
    value = request.cookies.get(cookie) or csrf.new_signin_value()
    response = render(
        request,
        services,
        "signin.html",
        csrf=value,
        next=_safe_next(request.query_params.get("next")),
        error="",
    )
    sessions.set_cookie(
        response, request, site.public_url, value, max_age=3600, base=csrf.SIGNIN_COOKIE
    )
    return response


async def signin(request: Request) -> Response:
    services = services_of(request)
    site, engine, now = services.config.site, services.engine, services.clock.now()
    source = throttle.source_of(request.client.host if request.client else "")
    until = await throttle.blocked_until(engine, source, now)
    if until is not None:
        raise _throttled(request, until, now)
    form = await read_form(request)
    expected = request.cookies.get(
        sessions.cookie_name(request, site.public_url, csrf.SIGNIN_COOKIE)
    )
    if not csrf.matches(expected or "", form.get(csrf.FIELD)):
        raise ConsoleError(403, "console.error.csrf")
    async with db.read(engine) as conn:
        found = await tokens.verify_token(conn, form.get("token", "").strip())
    if found is None or found.token_id is None:
        until = await throttle.record_failure(engine, source, now)
        async with db.write(engine) as conn:
            reason = {"reason": "unknown or revoked token"}
            await write_audit(conn, now, _stranger(request), "console.signin", "", "denied", reason)
        if until is not None:
            raise _throttled(request, until, now)
        return render(
            request,
            services,
            "signin.html",
            status=401,
            csrf=expected,
            next=_safe_next(form.get("next")),
            error="console.signin.wrong_token",
        )
    await throttle.clear(engine, source)
    secret = await sessions.start(engine, found.token_id, now, source)
    actor = Actor(
        found.name,
        found.scopes,
        token_id=found.token_id,
        remote_addr=_stranger(request).remote_addr,
        user_agent=_stranger(request).user_agent,
    )
    async with db.write(engine) as conn:
        await tokens.touch(conn, found.token_id, now)
        await write_audit(conn, now, actor, "console.signin", found.token_id, "ok", {})
    response = RedirectResponse(_safe_next(form.get("next")), 303)
    max_age = int(sessions.ABSOLUTE.total_seconds())
    sessions.set_cookie(response, request, site.public_url, secret, max_age)
    sessions.clear_cookie(response, request, site.public_url, base=csrf.SIGNIN_COOKIE)
    return response


async def signout(request: Request) -> Response:
    current, _form = await posted(request)
    services, now = current.services, current.services.clock.now()
    await sessions.end(services.engine, current.session.id_hash, now)
    async with db.write(services.engine) as conn:
        actor = current.session.actor
        await write_audit(conn, now, actor, "console.signout", actor.token_id or "", "ok", {})
    response = RedirectResponse(f"{HOME}/signin", 303)
    sessions.clear_cookie(response, request, services.config.site.public_url)
    return response

"""Rendering console pages: the Jinja2 environment (autoescape on), language, error pages."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from status.i18n import LANGUAGES, format_local, t
from status.services import Services

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "staff"
LANG_COOKIE = "siaran_console_lang"
# Pages hold staff-only data and forms with one-time keys: never cached, never framed.
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


class ConsoleError(Exception):
    """A refusal shown as a page: HTTP status and the locale key of what to tell the person."""

    def __init__(self, status: int, key: str, *, detail: str = "", **values: object) -> None:
        super().__init__(key)
        self.status, self.key, self.detail, self.values = status, key, detail, values
        self.headers: dict[str, str] = {}


@cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def language(request: Request, services: Services) -> str:
    """?lang= (remembered in a cookie), else the cookie, else the site's (Bahasa Indonesia)."""
    for value in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if value in LANGUAGES:
            return value
    return services.config.site.language


def render(
    request: Request,
    services: Services,
    template: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    lang = language(request, services)
    zone = ZoneInfo(services.config.site.timezone)

    def tr(key: str, **values: object) -> str:
        return t(key, lang, **values)

    def local(at: datetime | None, tz: ZoneInfo | None = None, with_date: bool = True) -> str:
        return "" if at is None else format_local(at, tz or zone, lang, with_date=with_date)

    context.setdefault("current", None)
    html = (
        environment()
        .get_template(template)
        .render(t=tr, local=local, lang=lang, site=services.config.site, **context)
    )
    response = HTMLResponse(html, status, headers={**HEADERS, **(headers or {})})
    requested = request.query_params.get("lang")
    if requested in LANGUAGES:
        response.set_cookie(LANG_COOKIE, requested, max_age=365 * 86400, samesite="lax")
    return response

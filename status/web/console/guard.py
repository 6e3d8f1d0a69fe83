"""What every signed-in console request checks first: the session, then the form's CSRF token."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from status.services import Services
from status.web.console import csrf, sessions
from status.web.console.forms import read_form
from status.web.console.pages import ConsoleError


class SignInRequired(Exception):
    """No live session: the person is sent to the sign-in form (nothing is done)."""


@dataclass(frozen=True, slots=True)
class Visit:
    services: Services
    session: sessions.Session

    @property
    def csrf(self) -> str:
        return csrf.token_for(self.session.csrf_secret)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def visit(request: Request) -> Visit:
    services = services_of(request)
    name = sessions.cookie_name(request, services.config.site.public_url)
    found = await sessions.find(
        services.engine, request.cookies.get(name, ""), request, services.clock.now()
    )
    if found is None:
        raise SignInRequired
    return Visit(services, found)


async def posted(request: Request) -> tuple[Visit, dict[str, str]]:
    """A signed-in form submission whose CSRF token is right; 403 page otherwise."""
    current = await visit(request)
    form = await read_form(request)
    if not csrf.matches(current.csrf, form.get(csrf.FIELD)):
        raise ConsoleError(403, "console.error.csrf")
    return current, form


def require_admin(current: Visit) -> None:
    if not current.session.actor.is_admin:
        raise ConsoleError(403, "console.error.admin_only")

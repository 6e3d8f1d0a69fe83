"""Scheduling a maintenance window for a branch, in the branch's own local time."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from status.hours import zone_abbreviation
from status.web.console import forms
from status.web.console.dashboard import choices_for
from status.web.console.guard import Visit, posted, visit
from status.web.console.pages import render
from status.web.console.writes import FormError, send
from status.web.staff import ACTIONS

FIELDS = ("name", "body", "component", "scheduled_for", "scheduled_until", "form_key")


def _zone(current: Visit, component: str) -> ZoneInfo:
    branch = current.services.config.branch(component)
    return branch.zone if branch is not None else ZoneInfo(current.services.config.site.timezone)


def _page(
    request: Request, current: Visit, values: dict[str, str], *, status: int = 200, error: str = ""
) -> Response:
    choices = choices_for(current.services, current.session.actor)
    zones = {
        c: zone_abbreviation(_zone(current, c), current.services.clock.now()) for c, _ in choices
    }
    return render(
        request,
        current.services,
        "maintenance.html",
        status=status,
        current=current,
        values=values,
        choices=choices,
        zones=zones,
        error=error,
    )


async def new_maintenance(request: Request) -> Response:
    current = await visit(request)
    choices = choices_for(current.services, current.session.actor)
    values = dict.fromkeys(FIELDS, "")
    values.update(component=choices[0][0] if choices else "", form_key=forms.new_key())
    return _page(request, current, values)


async def post_maintenance(request: Request) -> Response:
    current, form = await posted(request)
    values = {name: form.get(name, "") for name in FIELDS}
    key = forms.form_key(form)
    doc = forms.maintenance_doc(form, _zone(current, values["component"]))
    try:
        answer = await send(request, current, key, doc, ACTIONS["maintenance.create"], 201)
    except FormError as wrong:
        return _page(request, current, values, status=wrong.status, error=wrong.message)
    return RedirectResponse(f"/staff/incidents/{answer['id']}?done=scheduled", 303)

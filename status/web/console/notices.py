"""Posting a notice or incident for a branch, previewing it, and updating or resolving it."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from status import db, store
from status.i18n import t
from status.model import Incident
from status.vocabulary import (
    ComponentStatus,
    Impact,
    IncidentKind,
    IncidentStatus,
    MaintenanceStatus,
)
from status.web import bodies
from status.web.console import forms, preview
from status.web.console.dashboard import choices_for, visible
from status.web.console.guard import Visit, posted, visit
from status.web.console.pages import ConsoleError, language, render
from status.web.console.writes import FormError, send
from status.web.errors import APIError
from status.web.staff import ACTIONS, ID_MAX

NEW_STATUSES = [s for s in IncidentStatus if s is not IncidentStatus.POSTMORTEM]
IMPACTS = [i for i in Impact if i is not Impact.MAINTENANCE]


def _previews(
    request: Request, current: Visit, values: dict[str, str], name: str, maintenance: bool
) -> dict[str, Any]:
    config = current.services.config
    components = {values["component"]: values["component_status"]} if values["component"] else {}
    common: dict[str, Any] = {
        "maintenance": maintenance,
        "status": values["status"],
        "name": name,
        "body": values["body"],
        "components": components,
        "at": current.services.clock.now(),
    }
    return {
        "telegram": preview.telegram(config, incident_id=values.get("incident_id", ""), **common),
        "page": preview.page(config, language(request, current.services), **common),
    }


def _notice_page(
    request: Request,
    current: Visit,
    values: dict[str, str],
    *,
    status: int = 200,
    error: str = "",
    shown: dict[str, Any] | None = None,
) -> Response:
    return render(
        request,
        current.services,
        "notice.html",
        status=status,
        current=current,
        values=values,
        choices=choices_for(current.services, current.session.actor),
        statuses=NEW_STATUSES,
        impacts=IMPACTS,
        component_statuses=list(ComponentStatus),
        templates=forms.TEMPLATES,
        error=error,
        preview=shown,
    )


def _in_scope(current: Visit, component: str) -> None:
    """A form for a component outside the scope is refused before anything is shown or sent."""
    if component and component not in dict(choices_for(current.services, current.session.actor)):
        raise ConsoleError(403, "console.error.scope", component=component)


async def new_notice(request: Request) -> Response:
    current = await visit(request)
    lang = language(request, current.services)
    choices = dict(choices_for(current.services, current.session.actor))
    component = request.query_params.get("component") or next(iter(choices), "")
    _in_scope(current, component)
    template = forms.TEMPLATE_BY_ID.get(request.query_params.get("template", ""))
    values = {
        "name": "",
        "body": "",
        "status": str(IncidentStatus.IDENTIFIED),
        "impact": str(Impact.NONE),
        "component": component,
        "component_status": str(ComponentStatus.OPERATIONAL),
        "form_key": forms.new_key(),
    }
    if template is not None:
        place = choices.get(component, "")
        values.update(
            name=t(f"console.template.{template.id}.name", lang, branch=place),
            body=t(f"console.template.{template.id}.body", lang, branch=place),
            status=str(template.status),
            impact=str(template.impact),
            component_status=str(template.component_status),
        )
    return _notice_page(request, current, values)


def _values(form: dict[str, str], *names: str) -> dict[str, str]:
    return {name: form.get(name, "") for name in names}


async def post_notice(request: Request) -> Response:
    current, form = await posted(request)
    values = _values(
        form, "name", "body", "status", "impact", "component", "component_status", "form_key"
    )
    key = forms.form_key(form)
    doc = forms.incident_doc(form)
    intent = form.get("intent", "send")
    try:
        if intent == "edit":
            return _notice_page(request, current, values)
        if intent == "preview":
            _in_scope(current, values["component"])
            command = bodies.parse_new_incident(doc)
            shown = _previews(request, current, values, command.name, maintenance=False)
            return _notice_page(request, current, values, shown=shown)
        answer = await send(request, current, key, doc, ACTIONS["incident.create"], 201)
    except APIError as wrong:
        return _notice_page(request, current, values, status=wrong.status, error=wrong.message)
    except FormError as wrong:
        return _notice_page(request, current, values, status=wrong.status, error=wrong.message)
    return RedirectResponse(f"/staff/incidents/{answer['id']}?done=posted", 303)


async def _load(current: Visit, incident_id: str) -> Incident:
    if not 0 < len(incident_id) <= ID_MAX or not incident_id.isprintable():
        raise ConsoleError(404, "console.error.not_found")
    async with db.read(current.services.engine) as conn:
        incident = await store.load_incident(conn, incident_id)
    if incident is None:
        raise ConsoleError(404, "console.error.not_found")
    return incident


def _incident_page(
    request: Request,
    current: Visit,
    incident: Incident,
    values: dict[str, str],
    *,
    status: int = 200,
    error: str = "",
    shown: dict[str, Any] | None = None,
) -> Response:
    maintenance = incident.kind is IncidentKind.MAINTENANCE
    names = dict(choices_for(current.services, current.session.actor))
    return render(
        request,
        current.services,
        "incident.html",
        status=status,
        current=current,
        incident=incident,
        maintenance=maintenance,
        values=values,
        statuses=list(MaintenanceStatus) if maintenance else list(IncidentStatus),
        component_statuses=list(ComponentStatus),
        components=[(c, names.get(c, c)) for c in incident.component_ids],
        public_link=f"{current.services.config.site.public_url.rstrip('/')}/incidents/{incident.id}",
        error=error,
        preview=shown,
        message=request.query_params.get("done", ""),
    )


async def show_incident(request: Request) -> Response:
    current = await visit(request)
    incident = await _load(current, request.path_params["incident_id"])
    if not visible(current.session.actor, incident):
        raise ConsoleError(403, "console.error.scope_incident")
    lang = language(request, current.services)
    first = incident.component_ids[0] if incident.component_ids else ""
    values = {
        "status": incident.status,
        "body": "",
        "component": first,
        "component_status": str(incident.components.get(first, ComponentStatus.OPERATIONAL)),
        "form_key": forms.new_key(),
    }
    template = forms.TEMPLATE_BY_ID.get(request.query_params.get("template", ""))
    if template is not None and incident.kind is IncidentKind.INCIDENT:
        place = dict(choices_for(current.services, current.session.actor)).get(first, "")
        values.update(
            body=t(f"console.template.{template.id}.body", lang, branch=place),
            status=str(template.status),
            component_status=str(template.component_status),
        )
    return _incident_page(request, current, incident, values)


async def post_update(request: Request) -> Response:
    current, form = await posted(request)
    incident = await _load(current, request.path_params["incident_id"])
    maintenance = incident.kind is IncidentKind.MAINTENANCE
    values = _values(form, "status", "body", "component", "component_status", "form_key")
    if maintenance:
        values["component"] = ""
    key = forms.form_key(form)
    doc = forms.update_doc(form, maintenance=maintenance)
    action = ACTIONS["maintenance.update" if maintenance else "incident.update"]
    intent = form.get("intent", "send")
    try:
        if intent == "edit":
            return _incident_page(request, current, incident, values)
        if intent == "preview":
            if not visible(current.session.actor, incident):
                raise ConsoleError(403, "console.error.scope_incident")
            if maintenance:
                bodies.parse_maintenance_update(doc)
            else:
                bodies.parse_new_update(doc)
            shown = _previews(
                request,
                current,
                {**values, "incident_id": incident.id},
                incident.name,
                maintenance=maintenance,
            )
            return _incident_page(request, current, incident, values, shown=shown)
        await send(request, current, key, doc, action, 201)
    except APIError as wrong:
        return _incident_page(
            request, current, incident, values, status=wrong.status, error=wrong.message
        )
    except FormError as wrong:
        return _incident_page(
            request, current, incident, values, status=wrong.status, error=wrong.message
        )
    return RedirectResponse(f"/staff/incidents/{incident.id}?done=updated", 303)

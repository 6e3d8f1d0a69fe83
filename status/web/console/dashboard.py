"""The console's home: the branches and incidents this person's scope allows, templates to
post from, and each branch's queue typed in by hand."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from status import db, store
from status.config import BranchConfig
from status.hours import open_state
from status.model import Actor, Incident
from status.services import Services
from status.web.console import forms
from status.web.console.guard import Visit, posted, visit
from status.web.console.pages import ConsoleError, render
from status.web.console.writes import FormError, send
from status.web.operations import set_queue_action

RECENT = 10  # closed incidents listed under the open ones


def branches_for(services: Services, actor: Actor) -> list[BranchConfig]:
    return [b for b in services.config.branches if actor.is_admin or b.id in actor.branches]


def choices_for(services: Services, actor: Actor) -> list[tuple[str, str]]:
    """(component id, name) this person may post for: branches, and for admins everything."""
    out = [(b.id, b.name) for b in branches_for(services, actor)]
    if actor.is_admin:
        out = [(c.id, c.name) for c in services.config.components] + out
    return out


def visible(actor: Actor, incident: Incident) -> bool:
    """The core's own rule (Actor.may_touch): who may change an incident may see it here."""
    return actor.may_touch(incident.component_ids)


async def home(request: Request, message: str = "", status: int = 200) -> Response:
    current = await visit(request)
    return await _home(request, current, message=message, status=status)


async def _home(
    request: Request, current: Visit, *, message: str = "", error: str = "", status: int = 200
) -> Response:
    services, actor = current.services, current.session.actor
    now = services.clock.now()
    async with db.read(services.engine) as conn:
        state = await store.load_state(conn, now)
    mine = [i for i in state.incidents if visible(actor, i)]
    windows = [m for m in state.maintenances if m.is_open and visible(actor, m)]
    rows = []
    for branch in branches_for(services, actor):
        queue = state.queues.get(branch.id) or {}
        rows.append(
            {
                "branch": branch,
                "open": open_state(branch.opening_hours, branch.zone, now).is_open,
                "queue": queue,
                "key": forms.new_key(),
            }
        )
    return render(
        request,
        services,
        "dashboard.html",
        status=status,
        current=current,
        open_incidents=[i for i in mine if i.is_open],
        closed_incidents=[i for i in mine if not i.is_open][:RECENT],
        maintenances=windows,
        branches=rows,
        templates=forms.TEMPLATES,
        first_component=(choices_for(services, actor) or [("", "")])[0][0],
        message=message or request.query_params.get("done", ""),
        error=error,
    )


async def set_queue(request: Request) -> Response:
    current, form = await posted(request)
    branch_id = request.path_params["branch_id"]
    if current.services.config.branch(branch_id) is None:
        raise ConsoleError(404, "console.error.not_found")
    try:
        await send(
            request,
            current,
            forms.form_key(form),
            forms.queue_doc(form),
            set_queue_action,
            status=200,
        )
    except FormError as wrong:
        return await _home(request, current, error=wrong.message, status=wrong.status)
    return RedirectResponse("/staff?done=queue", 303)

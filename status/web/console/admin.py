"""Admins only: tokens (never secrets), the audit log, failed deliveries and their retry."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from status import db, delivery_log, store, tokens
from status.web.console import forms
from status.web.console.guard import posted, require_admin, visit
from status.web.console.pages import ConsoleError, render
from status.web.console.writes import FormError, send
from status.web.operations import retry_action

PAGE = 100


async def list_tokens(request: Request) -> Response:
    current = await visit(request)
    require_admin(current)
    found = await tokens.list_tokens(current.services.engine)
    return render(request, current.services, "tokens.html", current=current, tokens=found)


def _before(request: Request) -> int | None:
    raw = request.query_params.get("before", "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise ConsoleError(400, "console.error.bad_form")
    return int(raw)


async def list_audit(request: Request) -> Response:
    current = await visit(request)
    require_admin(current)
    async with db.read(current.services.engine) as conn:
        entries = await store.load_audit(conn, limit=PAGE, before_id=_before(request))
    older = entries[-1].id if len(entries) == PAGE else None
    return render(
        request, current.services, "audit.html", current=current, entries=entries, older=older
    )


async def list_failed(request: Request, *, error: str = "", status: int = 200) -> Response:
    current = await visit(request)
    require_admin(current)
    async with db.read(current.services.engine) as conn:
        failed = await delivery_log.list_deliveries(
            conn, status="failed", limit=PAGE, before_id=_before(request)
        )
    return render(
        request,
        current.services,
        "deliveries.html",
        status=status,
        current=current,
        deliveries=failed,
        targets=sorted({d.target for d in failed}),
        key=forms.new_key(),
        error=error,
        message=request.query_params.get("done", ""),
    )


async def retry(request: Request) -> Response:
    current, form = await posted(request)
    require_admin(current)
    try:
        answer = await send(
            request, current, forms.form_key(form), forms.retry_doc(form), retry_action, status=200
        )
    except FormError as wrong:
        return await list_failed(request, error=wrong.message, status=wrong.status)
    return RedirectResponse(f"/staff/deliveries?done={int(answer['retried'])}", 303)

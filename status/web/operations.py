"""/api/v1 for the prober's side: staff-entered queues, silenced checks, check states."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from status import db, delivery_log
from status.automatic import Automatic
from status.core import Tx
from status.model import Actor
from status.render.statuspage import iso
from status.schema import check_state
from status.services import Services
from status.web import bodies
from status.web.auth import authenticate, require_admin
from status.web.errors import APIError
from status.web.staff import ID_MAX, write


def _path_id(request: Request, name: str) -> str:
    value: str = request.path_params[name]
    if not 0 < len(value) <= ID_MAX or not value.isprintable():
        raise APIError(404, "not_found", f"no such {name.removesuffix('_id')}")
    return value


async def set_queue_action(
    s: Services, tx: Tx, doc: dict[str, Any], actor: Actor, request: Request
) -> dict[str, Any]:
    entry = bodies.parse_queue_entry(doc)
    branch_id = _path_id(request, "branch_id")
    state = await Automatic(s.core).set_queue(
        tx, branch_id, entry.serving, entry.issued, entry.counters_open, actor
    )
    wait = state.estimated_wait
    return {
        "branch_id": branch_id,
        "serving": state.serving,
        "issued": state.issued,
        "counters_open": state.counters_open,
        "length": state.length,
        "estimated_wait_minutes": None if wait is None else -(-int(wait.total_seconds()) // 60),
        "read_at": iso(state.read_at),
        "source": state.source,
    }


async def _silence(
    s: Services, tx: Tx, doc: dict[str, Any], actor: Actor, request: Request
) -> dict[str, Any]:
    until = bodies.parse_silence(doc, tx.now)
    check_id = _path_id(request, "check_id")
    await Automatic(s.core).silence(tx, check_id, until, actor)
    return {"check_id": check_id, "silenced_until": iso(until)}


async def set_queue(request: Request) -> Response:
    return await write(request, set_queue_action, status=200)


async def silence(request: Request) -> Response:
    return await write(request, _silence, status=200)


async def list_checks(request: Request) -> Response:
    """Admins: every check's confirmed state, last observation, lease holder and silence."""
    services: Services = request.app.state.services
    async with db.read(services.engine) as conn:
        require_admin(await authenticate(request, conn))
        rows = list(await conn.execute(select(check_state).order_by(check_state.c.check_id)))
    return JSONResponse(
        {
            "checks": [
                {
                    "id": r.check_id,
                    "component_id": r.component_id,
                    "severity": r.severity,
                    "failing": r.failing,
                    "since": iso(r.since),
                    "silenced_until": iso(r.silenced_until),
                    "owner": r.owner,
                    "last": None
                    if r.last_at is None
                    else {
                        "at": iso(r.last_at),
                        "ok": r.last_ok,
                        "kind": r.last_kind,
                        "reason": r.last_reason,
                        "status_code": r.last_status_code,
                        "response_ms": r.last_response_ms,
                    },
                }
                for r in rows
            ]
        }
    )


def _delivery(d: delivery_log.Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "event_id": d.event_id,
        "target": d.target,
        "incident_id": d.incident_id,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": iso(d.next_attempt_at),
        "last_error": d.last_error,
        "receipt": d.receipt,
        "created_at": iso(d.created_at),
        "sent_at": iso(d.sent_at),
        "target_disabled": d.target_disabled,
    }


async def list_deliveries(request: Request) -> Response:
    """Admins: what was sent where and what failed, newest first."""
    services: Services = request.app.state.services
    params = request.query_params
    status = params.get("status")
    if status is not None and status not in delivery_log.STATUSES:
        raise APIError(
            400, "invalid", f"status is one of {', '.join(delivery_log.STATUSES)}", field="status"
        )
    limit = _bounded(params.get("limit"), "limit", 100, 1, 500)
    before = _bounded(params.get("before"), "before", None, 1, 2**62)
    async with db.read(services.engine) as conn:
        require_admin(await authenticate(request, conn))
        found = await delivery_log.list_deliveries(
            conn, status=status, target=params.get("target"), limit=limit or 100, before_id=before
        )
    return JSONResponse(
        {
            "deliveries": [_delivery(d) for d in found],
            "next_before": found[-1].id if len(found) == limit else None,
        }
    )


def _bounded(raw: str | None, name: str, default: int | None, low: int, high: int) -> int | None:
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not low <= int(raw) <= high:
        raise APIError(
            400, "invalid", f'"{name}" must be a whole number from {low} to {high}', field=name
        )
    return int(raw)


async def retry_action(
    s: Services, tx: Tx, doc: dict[str, Any], actor: Actor, _request: Request
) -> dict[str, Any]:
    require_admin(actor)
    ids, target = bodies.parse_retry(doc)
    count = await delivery_log.retry(tx.conn, tx.now, ids=ids, target=target)
    await s.core.record_audit(
        tx, actor, "deliveries.retry", target or ",".join(map(str, ids)), {"retried": count}
    )
    return {"retried": count}


async def retry_deliveries(request: Request) -> Response:
    return await write(request, retry_action, status=200)


routes = [
    Route("/api/v1/deliveries", list_deliveries, methods=["GET"]),
    Route("/api/v1/deliveries/retry", retry_deliveries, methods=["POST"]),
    Route("/api/v1/branches/{branch_id}/queue", set_queue, methods=["PUT"]),
    Route("/api/v1/checks", list_checks, methods=["GET"]),
    Route("/api/v1/checks/{check_id}/silence", silence, methods=["POST"]),
]

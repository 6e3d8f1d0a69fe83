"""/api/v1 writes: parse body → core command → JSON; Idempotency-Key; scope refusals audited."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from status import db, link_codes, store, tokens
from status.core import Tx
from status.durations import parse_duration
from status.errors import ConflictError, InvalidError, ScopeError
from status.model import Actor, Incident
from status.render.statuspage import build_incident, iso
from status.services import Services
from status.web import bodies, idempotency
from status.web.auth import authenticate, require_admin
from status.web.errors import APIError

# A write: parse the body, call the core, return the JSON document to answer with.
Action = Callable[[Services, Tx, dict[str, Any], Actor, Request], Awaitable[dict[str, Any]]]
AUDIT_PAGE_MAX = 500
ID_MAX = 64  # the id columns' width


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _incident_json(services: Services, incident: Incident, comps: dict[str, Any]) -> str:
    doc = build_incident(incident, comps, services.config.site)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


async def _incident_doc(s: Services, tx: Tx, incident: Incident) -> dict[str, Any]:
    comps = {c.id: c for c in await store.load_components(tx.conn, include_removed=True)}
    return build_incident(incident, comps, s.config.site)


def _replayed(replay: idempotency.Replay) -> Response:
    return Response(
        replay.body,
        replay.status,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )


def _target_id(request: Request) -> str:
    """The incident id in the path; one no incident can have is a 404 before any query.

    (PostgreSQL refuses a NUL in a query parameter outright, which would be a 500.)
    """
    value: str = request.path_params["incident_id"]
    if not 0 < len(value) <= ID_MAX or not value.isprintable():
        raise APIError(404, "not_found", "no incident has that id")
    return value


async def write(request: Request, action: Action, status: int = 201) -> Response:
    """Authenticate, read the body, then do the change and its idempotency record in one transaction."""
    services = _services(request)
    async with db.read(services.engine) as conn:
        actor = await authenticate(request, conn)
    key = idempotency.key_of(request)
    doc = await bodies.read_json(request)
    written = await perform(request, actor, key, doc, action, status)
    if written.replayed:
        return _replayed(idempotency.Replay(written.status, written.body))
    return Response(written.body, written.status, media_type="application/json")


@dataclass(frozen=True, slots=True)
class Written:
    """A write's answer: the JSON document, and whether an earlier request already wrote it."""

    status: int
    body: str
    replayed: bool = False


async def perform(
    request: Request,
    actor: Actor,
    key: str | None,
    doc: dict[str, Any],
    action: Action,
    status: int = 201,
) -> Written:
    """Do one staff write for an authenticated actor: the one code path for the API and the console.

    The change and its idempotency record share one transaction; scope refusals are audited.
    """
    services = _services(request)
    print_ = idempotency.fingerprint(
        request, json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()
    )
    try:
        async with services.core.transaction() as tx:
            if key is not None:
                assert actor.token_id is not None  # noqa: S101 - staff actors always carry one
                replay = await idempotency.find(tx.conn, actor.token_id, key, print_, tx.now)
                if replay is not None:
                    return Written(replay.status, replay.body, replayed=True)
            await tokens.touch(tx.conn, actor.token_id, tx.now)
            answer = await action(services, tx, doc, actor, request)
            body = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
            if key is not None and actor.token_id is not None:
                await idempotency.remember(
                    tx.conn, actor.token_id, key, print_, status, body, tx.now
                )
    except ScopeError as refused:
        await services.core.record_denial(actor, refused)
        raise
    except IntegrityError:
        # The transaction rolled back whole. If two requests with one key raced, answer with
        # what the winner stored; otherwise another writer changed the same rows meanwhile.
        if key is not None and actor.token_id is not None:
            async with db.read(services.engine) as conn:
                replay = await idempotency.find(
                    conn, actor.token_id, key, print_, services.clock.now()
                )
            if replay is not None:
                return Written(replay.status, replay.body, replayed=True)
        raise ConflictError(
            "another change to the same incident landed at the same moment; nothing was "
            "written, send the request again"
        ) from None
    return Written(status, body)


async def _create_incident(
    s: Services, tx: Tx, doc: dict[str, Any], actor: Actor, _r: Request
) -> dict[str, Any]:
    incident = await s.core.create_incident(tx, bodies.parse_new_incident(doc), actor)
    return await _incident_doc(s, tx, incident)


async def _add_update(
    s: Services, tx: Tx, doc: dict[str, Any], actor: Actor, request: Request
) -> dict[str, Any]:
    incident_id = _target_id(request)
    incident = await s.core.add_update(tx, incident_id, bodies.parse_new_update(doc), actor)
    return await _incident_doc(s, tx, incident)


async def _schedule(
    s: Services, tx: Tx, doc: dict[str, Any], actor: Actor, _r: Request
) -> dict[str, Any]:
    incident = await s.core.schedule_maintenance(tx, bodies.parse_new_maintenance(doc), actor)
    return await _incident_doc(s, tx, incident)


async def _update_maintenance(
    s: Services, tx: Tx, doc: dict[str, Any], actor: Actor, request: Request
) -> dict[str, Any]:
    incident_id = _target_id(request)
    incident = await s.core.update_maintenance(
        tx, incident_id, bodies.parse_maintenance_update(doc), actor
    )
    return await _incident_doc(s, tx, incident)


async def create_incident(request: Request) -> Response:
    return await write(request, _create_incident)


async def add_update(request: Request) -> Response:
    return await write(request, _add_update)


async def create_maintenance(request: Request) -> Response:
    return await write(request, _schedule)


async def update_maintenance(request: Request) -> Response:
    return await write(request, _update_maintenance)


async def get_incident(request: Request) -> Response:
    services = _services(request)
    async with db.read(services.engine) as conn:
        await authenticate(request, conn)
        incident_id = _target_id(request)
        incident = await store.load_incident(conn, incident_id)
        if incident is None:
            raise APIError(404, "not_found", f'no incident with id "{incident_id}"')
        comps = {c.id: c for c in await store.load_components(conn, include_removed=True)}
    return Response(_incident_json(services, incident, comps), media_type="application/json")


def _int_param(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # ASCII digits only: str.isdigit() also passes "²" (which int() rejects) and "٣"; the
    # length cap keeps int() clear of its 4,300-digit limit.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(high))) or not (
        low <= int(raw) <= high
    ):
        raise APIError(
            400, "invalid", f'"{name}" must be a whole number from {low} to {high}', field=name
        )
    return int(raw)


async def list_audit(request: Request) -> Response:
    services = _services(request)
    async with db.read(services.engine) as conn:
        actor = await authenticate(request, conn)
        require_admin(actor)
        limit = _int_param(request, "limit", 100, 1, AUDIT_PAGE_MAX) or 100
        before = _int_param(request, "before", None, 1, 2**62)
        entries = await store.load_audit(conn, limit=limit, before_id=before)
    return JSONResponse(
        {
            "entries": [
                {
                    "id": e.id,
                    "at": iso(e.at),
                    "actor": e.actor,
                    "token_id": e.token_id,
                    "action": e.action,
                    "target": e.target,
                    "outcome": e.outcome,
                    "remote_addr": e.remote_addr,
                    "user_agent": e.user_agent,
                    "detail": e.detail,
                }
                for e in entries
            ],
            "next_before": entries[-1].id if len(entries) == limit else None,
        }
    )


async def whoami(request: Request) -> Response:
    services = _services(request)
    async with db.read(services.engine) as conn:
        actor = await authenticate(request, conn)
    return JSONResponse(
        {"name": actor.name, "token_id": actor.token_id, "scopes": list(actor.scopes)}
    )


async def _link_code(
    _s: Services, tx: Tx, doc: dict[str, Any], actor: Actor, request: Request
) -> dict[str, Any]:
    token_id: str = request.path_params["token_id"]
    if not actor.is_admin:
        raise ScopeError(
            "this needs an admin token", action="telegram.link_code", target=token_id[:ID_MAX]
        )
    if not 0 < len(token_id) <= 16 or not token_id.isprintable():
        raise APIError(404, "not_found", "no token has that id")
    unknown = sorted(set(doc) - {"ttl"})
    if unknown:
        message = f'unknown field "{unknown[0]}"; allowed: ttl'
        raise APIError(422, "unknown_field", message, field=unknown[0])
    raw = doc.get("ttl")
    ttl = link_codes.DEFAULT_TTL
    if raw is not None:
        try:
            ttl = parse_duration(raw if isinstance(raw, str) else "")
        except ValueError:
            raise InvalidError('"ttl" must be a duration like "15m"', field="ttl") from None
    issued = await link_codes.issue(tx.conn, token_id, actor, tx.now, ttl)
    return {
        "code": issued.code,
        "token_id": issued.token_id,
        "token_name": issued.token_name,
        "expires_at": iso(issued.expires_at),
    }


async def create_link_code(request: Request) -> Response:
    """A one-time code that links a Telegram account to a token (admin)."""
    return await write(request, _link_code)


# The writes the staff console performs too, through `perform`: one validation and scope path.
ACTIONS: dict[str, Action] = {
    "incident.create": _create_incident,
    "incident.update": _add_update,
    "maintenance.create": _schedule,
    "maintenance.update": _update_maintenance,
}

routes = [
    Route("/api/v1/incidents", create_incident, methods=["POST"]),
    Route("/api/v1/incidents/{incident_id}", get_incident, methods=["GET"]),
    Route("/api/v1/incidents/{incident_id}/updates", add_update, methods=["POST"]),
    Route("/api/v1/maintenances", create_maintenance, methods=["POST"]),
    Route("/api/v1/maintenances/{incident_id}/updates", update_maintenance, methods=["POST"]),
    Route("/api/v1/audit", list_audit, methods=["GET"]),
    Route("/api/v1/whoami", whoami, methods=["GET"]),
    Route("/api/v1/tokens/{token_id}/telegram-link-codes", create_link_code, methods=["POST"]),
]

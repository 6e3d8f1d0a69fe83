"""Reads: table rows → model objects (components, incidents with updates, audit, state)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from status import outbox
from status.history import Day
from status.model import AffectedComponent, AuditEntry, Component, Incident, IncidentUpdate, State
from status.schema import (
    audit,
    branch_queues,
    check_daily,
    components,
    incident_components,
    incident_updates,
    incidents,
)
from status.vocabulary import ComponentStatus, Impact, IncidentKind

HISTORY = timedelta(days=90)  # how far back the page, feeds and v2 lists look


def _component(row: Any) -> Component:
    return Component(
        row.id,
        row.name,
        row.group_name,
        row.description,
        row.kind,
        row.position,
        ComponentStatus(row.status),
        ComponentStatus(row.reported_status),
        row.created_at,
        row.updated_at,
    )


async def load_components(
    conn: AsyncConnection, *, include_removed: bool = False
) -> list[Component]:
    query = select(components).order_by(components.c.position, components.c.id)
    if not include_removed:
        query = query.where(components.c.removed_at.is_(None))
    return [_component(r) for r in await conn.execute(query)]


async def load_incidents(conn: AsyncConnection, ids: Sequence[str]) -> list[Incident]:
    """Incidents with their components and updates, in the order of `ids`."""
    if not ids:
        return []
    rows = {r.id: r for r in await conn.execute(select(incidents).where(incidents.c.id.in_(ids)))}
    links: dict[str, dict[str, ComponentStatus]] = {i: {} for i in rows}
    for link in await conn.execute(
        select(incident_components)
        .where(incident_components.c.incident_id.in_(ids))
        .order_by(incident_components.c.position)
    ):
        links[link.incident_id][link.component_id] = ComponentStatus(link.status)
    updates: dict[str, list[IncidentUpdate]] = {i: [] for i in rows}
    for u in await conn.execute(
        select(incident_updates)
        .where(incident_updates.c.incident_id.in_(ids))
        .order_by(incident_updates.c.position.desc())
    ):
        affected = tuple(
            AffectedComponent(
                a["code"],
                a["name"],
                ComponentStatus(a["old_status"]),
                ComponentStatus(a["new_status"]),
            )
            for a in u.affected_components
        )
        updates[u.incident_id].append(
            IncidentUpdate(
                u.id,
                u.incident_id,
                u.status,
                u.body,
                u.created_at,
                u.display_at,
                affected,
                u.author,
            )
        )
    out = []
    for incident_id in ids:
        r = rows.get(incident_id)
        if r is None:
            continue
        out.append(
            Incident(
                r.id,
                IncidentKind(r.kind),
                r.name,
                r.status,
                Impact(r.impact),
                r.created_at,
                r.updated_at,
                r.started_at,
                r.monitoring_at,
                r.resolved_at,
                r.scheduled_for,
                r.scheduled_until,
                r.auto_transition,
                r.origin,
                links[r.id],
                tuple(updates[r.id]),
                r.check_id,
                r.automation,
            )
        )
    return out


async def load_incident(conn: AsyncConnection, incident_id: str) -> Incident | None:
    found = await load_incidents(conn, [incident_id])
    return found[0] if found else None


async def _ids(conn: AsyncConnection, query: Any) -> list[str]:
    return [r[0] for r in await conn.execute(query)]


async def load_state(conn: AsyncConnection, now: datetime) -> State:
    """One consistent view for every public rendering."""
    since = now - HISTORY
    comps = await load_components(conn)
    incident_ids = await _ids(
        conn,
        select(incidents.c.id)
        .where(
            incidents.c.kind == IncidentKind.INCIDENT,
            or_(incidents.c.is_open, incidents.c.created_at >= since),
        )
        .order_by(incidents.c.created_at.desc(), incidents.c.id),
    )
    maintenance_ids = await _ids(
        conn,
        select(incidents.c.id)
        .where(
            incidents.c.kind == IncidentKind.MAINTENANCE,
            or_(incidents.c.is_open, incidents.c.scheduled_until >= since),
        )
        .order_by(incidents.c.scheduled_for.desc(), incidents.c.id),
    )
    loaded = await load_incidents(conn, incident_ids + maintenance_ids)
    last_event = await outbox.latest_id(conn)
    queues = {r.branch_id: dict(r._mapping) for r in await conn.execute(select(branch_queues))}
    # A day more than HISTORY: the site's days may start up to 9 hours before UTC's (WIT).
    first_day = (now - HISTORY - timedelta(days=1)).date().isoformat()
    daily = tuple(
        Day(r.check_id, date.fromisoformat(r.day), r.total, r.failures)
        for r in await conn.execute(
            select(
                check_daily.c.check_id,
                check_daily.c.day,
                check_daily.c.total,
                check_daily.c.failures,
            ).where(
                check_daily.c.day >= first_day,
                # Queue polls (status/checks/queue_probe.py) have no bars; 60 branches would
                # add 5,400 rows to every rebuild.
                check_daily.c.check_id.not_like("queue:%"),
            )
        )
    )
    changed = [c.updated_at for c in comps] + [i.updated_at for i in loaded]
    return State(
        components=tuple(comps),
        incidents=tuple(i for i in loaded if i.kind is IncidentKind.INCIDENT),
        maintenances=tuple(i for i in loaded if i.kind is IncidentKind.MAINTENANCE),
        last_event_id=last_event,
        loaded_at=now,
        last_change_at=max(changed, default=now),
        queues=queues,
        daily=daily,
    )


async def imposed_statuses(
    conn: AsyncConnection, component_ids: Iterable[str]
) -> dict[str, list[ComponentStatus]]:
    """What open incidents and active maintenances ask of each component."""
    ids = list(component_ids)
    out: dict[str, list[ComponentStatus]] = {i: [] for i in ids}
    if not ids:
        return out
    query = (
        select(incident_components.c.component_id, incident_components.c.status)
        .join(incidents, incidents.c.id == incident_components.c.incident_id)
        .where(
            incident_components.c.component_id.in_(ids),
            incidents.c.is_open,
            or_(
                incidents.c.kind == IncidentKind.INCIDENT,
                and_(
                    incidents.c.kind == IncidentKind.MAINTENANCE,
                    incidents.c.status.in_(("in_progress", "verifying")),
                ),
            ),
        )
    )
    for row in await conn.execute(query):
        out[row.component_id].append(ComponentStatus(row.status))
    return out


async def load_audit(
    conn: AsyncConnection, *, limit: int, before_id: int | None
) -> list[AuditEntry]:
    query = select(audit).order_by(audit.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(audit.c.id < before_id)
    return [
        AuditEntry(
            r.id,
            r.at,
            r.actor,
            r.token_id,
            r.action,
            r.target,
            r.outcome,
            r.remote_addr,
            r.user_agent,
            r.detail,
        )
        for r in await conn.execute(query)
    ]


async def count_rows(conn: AsyncConnection, table: Any) -> int:
    return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

"""The only writer: commands → rows + outbox events in one transaction; raises domain errors, never HTTP ones.

Every public method that changes state takes a `Tx` from `Core.transaction()`, so the web
layer can keep its idempotency record in the same transaction, and appends exactly one
outbox event for the change. Listeners registered with `on_commit` hear the newest event
id after the commit (the snapshot uses it to rebuild at once).
"""

from __future__ import annotations

import asyncio
import secrets
import string
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from status import db, outbox, store
from status.clock import Clock
from status.commands import MaintenanceUpdate, NewIncident, NewMaintenance, NewUpdate
from status.config import Config
from status.errors import ConflictError, InvalidError, NotFoundError, ScopeError
from status.i18n import t
from status.model import SYSTEM, Actor, AffectedComponent, Component, Incident
from status.render.statuspage import build_incident
from status.rules import derive_component_status
from status.schema import audit, components, incident_components, incident_updates, incidents
from status.vocabulary import (
    ComponentStatus,
    EventKind,
    Impact,
    IncidentKind,
    IncidentStatus,
    MaintenanceStatus,
)

_ALPHABET = string.ascii_lowercase + string.digits
CommitListener = Callable[[int], Awaitable[None]]


def new_id() -> str:
    """12 random characters, the shape of Statuspage's ids."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


@dataclass(slots=True)
class Tx:
    conn: AsyncConnection
    now: datetime
    last_event_id: int = 0
    schedule_changed: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    component_id: str
    name: str
    old: ComponentStatus
    new: ComponentStatus

    def as_dict(self) -> dict[str, str]:
        return {
            "id": self.component_id,
            "name": self.name,
            "old_status": str(self.old),
            "new_status": str(self.new),
        }


@dataclass
class Core:
    engine: AsyncEngine
    clock: Clock
    config: Config
    _listeners: list[CommitListener] = field(default_factory=list)
    schedule_changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_commit(self, listener: CommitListener) -> None:
        self._listeners.append(listener)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A write transaction; on commit, listeners hear the newest event id."""
        async with db.write(self.engine) as conn:
            tx = Tx(conn, self.clock.now())
            yield tx
        if tx.schedule_changed:
            self.schedule_changed.set()
        if tx.last_event_id:
            for listener in self._listeners:
                await listener(tx.last_event_id)

    # -- components ---------------------------------------------------------------------------

    async def sync_components(self, tx: Tx) -> bool:
        """Make the components table match the config: add, rename, reorder, retire."""
        wanted: list[dict[str, Any]] = []
        for position, c in enumerate(self.config.components, start=1):
            wanted.append(
                {
                    "id": c.id,
                    "name": c.name,
                    "group_name": c.group,
                    "description": c.description,
                    "kind": "service",
                    "position": position,
                }
            )
        offset = len(wanted)
        for position, b in enumerate(self.config.branches, start=offset + 1):
            wanted.append(
                {
                    "id": b.id,
                    "name": b.name,
                    "group_name": b.region,
                    "description": b.description,
                    "kind": "branch",
                    "position": position,
                }
            )
        existing = {r.id: r for r in await tx.conn.execute(select(components))}
        changed: list[str] = []
        for row in wanted:
            old = existing.get(row["id"])
            if old is None:
                await tx.conn.execute(
                    insert(components).values(
                        **row,
                        status=ComponentStatus.OPERATIONAL,
                        reported_status=ComponentStatus.OPERATIONAL,
                        created_at=tx.now,
                        updated_at=tx.now,
                        removed_at=None,
                    )
                )
                changed.append(row["id"])
            elif old.removed_at is not None or any(getattr(old, k) != v for k, v in row.items()):
                await tx.conn.execute(
                    update(components)
                    .where(components.c.id == row["id"])
                    .values(**row, removed_at=None, updated_at=tx.now)
                )
                changed.append(row["id"])
        for gone in set(existing) - {w["id"] for w in wanted}:
            if existing[gone].removed_at is None:
                await tx.conn.execute(
                    update(components)
                    .where(components.c.id == gone)
                    .values(removed_at=tx.now, updated_at=tx.now)
                )
                changed.append(gone)
        if changed:
            await self.emit_event(
                tx, "components.synced", None, changed, {"components": sorted(changed)}
            )
        return bool(changed)

    async def _live_components(
        self, tx: Tx, ids: Iterable[str], *, field_name: str
    ) -> dict[str, Component]:
        wanted = list(dict.fromkeys(ids))
        found = {c.id: c for c in await store.load_components(tx.conn) if c.id in set(wanted)}
        for cid in wanted:
            if cid not in found:
                raise InvalidError(f'unknown component "{cid}"', field=f"{field_name}.{cid}")
        return found

    # The building blocks below are public for the core's other writers (status.automatic,
    # status.web.operations), which compose them inside one Tx; nothing outside the core
    # package should call them.

    async def recompute(self, tx: Tx, ids: Iterable[str]) -> list[Change]:
        """Re-derive component statuses after a change; lock rows first so concurrent writers queue.

        FOR NO KEY UPDATE (PostgreSQL) rather than FOR UPDATE: this transaction's own inserts
        into incident_components already hold KEY SHARE locks on these rows through the
        foreign key, and FOR UPDATE would deadlock two writers against each other's KEY SHARE.
        """
        wanted = sorted(set(ids))
        if not wanted:
            return []
        rows = list(
            await tx.conn.execute(
                select(components)
                .where(components.c.id.in_(wanted))
                .order_by(components.c.id)
                .with_for_update(key_share=True)
            )
        )
        imposed = await store.imposed_statuses(tx.conn, wanted)
        changes = []
        for row in rows:
            old = ComponentStatus(row.status)
            new = derive_component_status(ComponentStatus(row.reported_status), imposed[row.id])
            if new != old:
                await tx.conn.execute(
                    update(components)
                    .where(components.c.id == row.id)
                    .values(status=new, updated_at=tx.now)
                )
                changes.append(Change(row.id, row.name, old, new))
        return changes

    # -- incidents ----------------------------------------------------------------------------

    def authorize(self, actor: Actor, ids: Iterable[str], *, action: str, target: str) -> None:
        ids = list(ids)
        if actor.may_touch(ids):
            return
        if not ids:
            raise ScopeError(
                "a branch token must name at least one of its branches in components",
                action=action,
                target=target,
                field="components",
            )
        outside = sorted(set(ids) - actor.branches)
        raise ScopeError(
            f'this token may not post for "{outside[0]}"',
            action=action,
            target=target,
            field=f"components.{outside[0]}",
        )

    async def create_incident(self, tx: Tx, cmd: NewIncident, actor: Actor) -> Incident:
        self.authorize(actor, cmd.components, action="incident.create", target="")
        comps = await self._live_components(tx, cmd.components, field_name="components")
        if cmd.status is IncidentStatus.POSTMORTEM:
            raise InvalidError("a new incident cannot start as postmortem", field="status")
        incident_id = new_id()
        closed = cmd.status.is_closed
        await tx.conn.execute(
            insert(incidents).values(
                id=incident_id,
                kind=IncidentKind.INCIDENT,
                name=cmd.name,
                status=cmd.status,
                impact=cmd.impact,
                created_at=tx.now,
                updated_at=tx.now,
                started_at=tx.now,
                monitoring_at=tx.now if cmd.status is IncidentStatus.MONITORING else None,
                resolved_at=tx.now if closed else None,
                scheduled_for=None,
                scheduled_until=None,
                auto_transition=False,
                origin=cmd.origin,
                check_id=cmd.check_id,
                automation="auto" if cmd.check_id else "manual",
                is_open=not closed,
            )
        )
        await self.link_components(tx, incident_id, cmd.components, start=0)
        changes = await self.recompute(tx, cmd.components)
        await self._add_update(
            tx,
            incident_id,
            str(cmd.status),
            cmd.body,
            actor,
            self._affected(comps, cmd.components, changes),
        )
        await self.record_audit(
            tx,
            actor,
            "incident.create",
            incident_id,
            {
                "name": cmd.name,
                "status": str(cmd.status),
                "impact": str(cmd.impact),
                "components": dict(cmd.components),
            },
        )
        return await self.emit_incident(tx, "incident.created", incident_id, changes)

    async def add_update(self, tx: Tx, incident_id: str, cmd: NewUpdate, actor: Actor) -> Incident:
        current = await self._incident(tx, incident_id, IncidentKind.INCIDENT)
        touched = list(dict.fromkeys([*current.component_ids, *cmd.components]))
        self.authorize(actor, touched, action="incident.update", target=incident_id)
        comps = await self._live_components(tx, cmd.components, field_name="components")
        if cmd.status is IncidentStatus.POSTMORTEM and current.is_open:
            raise InvalidError("resolve the incident before posting a postmortem", field="status")
        closed = cmd.status.is_closed
        values: dict[str, Any] = {"status": cmd.status, "updated_at": tx.now, "is_open": not closed}
        if actor.token_id is not None and current.automation == "auto":
            # Staff wrote on an automatic incident: it is theirs now; the prober keeps moving
            # component statuses but writes no more updates to it.
            values["automation"] = "manual"
        if cmd.status is IncidentStatus.MONITORING and current.monitoring_at is None:
            values["monitoring_at"] = tx.now
        if closed and current.resolved_at is None:
            values["resolved_at"] = tx.now
        if not closed:
            values["resolved_at"] = None
        if cmd.name is not None:
            values["name"] = cmd.name
        if cmd.impact is not None:
            values["impact"] = cmd.impact
        await tx.conn.execute(
            update(incidents).where(incidents.c.id == incident_id).values(**values)
        )
        for cid, status in cmd.components.items():
            if cid in current.components:
                await tx.conn.execute(
                    update(incident_components)
                    .where(
                        incident_components.c.incident_id == incident_id,
                        incident_components.c.component_id == cid,
                    )
                    .values(status=status)
                )
        new = {c: s for c, s in cmd.components.items() if c not in current.components}
        await self.link_components(tx, incident_id, new, start=len(current.components))
        changes = await self.recompute(tx, touched)
        affected = self._affected(comps, cmd.components, changes)
        await self._add_update(tx, incident_id, str(cmd.status), cmd.body, actor, affected)
        await self.record_audit(
            tx,
            actor,
            "incident.update",
            incident_id,
            {
                "status": str(cmd.status),
                "components": dict(cmd.components),
                **({"name": cmd.name} if cmd.name is not None else {}),
                **({"impact": str(cmd.impact)} if cmd.impact is not None else {}),
            },
        )
        kind = "incident.resolved" if closed and current.is_open else "incident.updated"
        return await self.emit_incident(tx, kind, incident_id, changes)

    # -- maintenance --------------------------------------------------------------------------

    async def schedule_maintenance(self, tx: Tx, cmd: NewMaintenance, actor: Actor) -> Incident:
        self.authorize(actor, cmd.components, action="maintenance.create", target="")
        await self._live_components(tx, cmd.components, field_name="components")
        if cmd.scheduled_until <= cmd.scheduled_for:
            raise InvalidError(
                "scheduled_until must be after scheduled_for", field="scheduled_until"
            )
        if cmd.scheduled_until <= tx.now:
            raise InvalidError("scheduled_until is already in the past", field="scheduled_until")
        incident_id = new_id()
        await tx.conn.execute(
            insert(incidents).values(
                id=incident_id,
                kind=IncidentKind.MAINTENANCE,
                name=cmd.name,
                status=MaintenanceStatus.SCHEDULED,
                impact=Impact.MAINTENANCE,
                created_at=tx.now,
                updated_at=tx.now,
                started_at=cmd.scheduled_for,
                monitoring_at=None,
                resolved_at=None,
                scheduled_for=cmd.scheduled_for,
                scheduled_until=cmd.scheduled_until,
                auto_transition=cmd.auto_transition,
                origin="staff",
                is_open=True,
            )
        )
        await self.link_components(
            tx,
            incident_id,
            dict.fromkeys(cmd.components, ComponentStatus.UNDER_MAINTENANCE),
            start=0,
        )
        await self._add_update(tx, incident_id, MaintenanceStatus.SCHEDULED, cmd.body, actor, ())
        await self.record_audit(
            tx,
            actor,
            "maintenance.create",
            incident_id,
            {
                "name": cmd.name,
                "scheduled_for": cmd.scheduled_for.isoformat(),
                "scheduled_until": cmd.scheduled_until.isoformat(),
                "components": list(cmd.components),
            },
        )
        tx.schedule_changed = True
        return await self.emit_incident(tx, "maintenance.scheduled", incident_id, [])

    async def update_maintenance(
        self, tx: Tx, incident_id: str, cmd: MaintenanceUpdate, actor: Actor
    ) -> Incident:
        current = await self._incident(tx, incident_id, IncidentKind.MAINTENANCE)
        self.authorize(
            actor, current.component_ids, action="maintenance.update", target=incident_id
        )
        start = cmd.scheduled_for or current.scheduled_for
        end = cmd.scheduled_until or current.scheduled_until
        if start and end and end <= start:
            raise InvalidError(
                "scheduled_until must be after scheduled_for", field="scheduled_until"
            )
        return await self._move_maintenance(
            tx,
            current,
            cmd.status,
            cmd.body,
            actor,
            {"scheduled_for": start, "scheduled_until": end},
        )

    async def _move_maintenance(
        self,
        tx: Tx,
        current: Incident,
        status: MaintenanceStatus,
        body: str,
        actor: Actor,
        extra: Mapping[str, Any],
        *,
        expect: str | None = None,
    ) -> Incident:
        done = status is MaintenanceStatus.COMPLETED
        query = update(incidents).where(incidents.c.id == current.id)
        if expect is not None:  # the scheduler's claim: only one instance moves it
            query = query.where(incidents.c.status == expect)
        result = await tx.conn.execute(
            query.values(
                status=status,
                updated_at=tx.now,
                is_open=not done,
                started_at=tx.now
                if status is MaintenanceStatus.IN_PROGRESS
                else current.started_at,
                resolved_at=tx.now if done else None,
                **extra,
            )
        )
        if result.rowcount != 1:
            raise ConflictError("the maintenance changed meanwhile")
        changes = await self.recompute(tx, current.component_ids)
        comps = {c.id: c for c in await store.load_components(tx.conn)}
        affected = self._affected(comps, current.components, changes)
        await self._add_update(tx, current.id, str(status), body, actor, affected)
        await self.record_audit(
            tx, actor, "maintenance.update", current.id, {"status": str(status)}
        )
        tx.schedule_changed = True
        return await self.emit_incident(tx, "maintenance.updated", current.id, changes)

    async def next_schedule_change(self) -> datetime | None:
        """When the scheduler next has something to do (a maintenance starts or ends)."""
        async with db.read(self.engine) as conn:
            rows = await conn.execute(
                select(incidents).where(
                    incidents.c.kind == IncidentKind.MAINTENANCE,
                    incidents.c.is_open,
                    incidents.c.auto_transition,
                )
            )
            times = [
                r.scheduled_for if r.status == "scheduled" else r.scheduled_until for r in rows
            ]
        return min((x for x in times if x is not None), default=None)

    async def apply_schedule(self) -> int:
        """Start and complete auto-transition maintenances whose time has come; returns moves made."""
        now = self.clock.now()
        async with db.read(self.engine) as conn:
            due = list(
                await conn.execute(
                    select(incidents.c.id, incidents.c.status).where(
                        incidents.c.kind == IncidentKind.MAINTENANCE,
                        incidents.c.is_open,
                        incidents.c.auto_transition,
                        ((incidents.c.status == "scheduled") & (incidents.c.scheduled_for <= now))
                        | (
                            (incidents.c.status != "scheduled")
                            & (incidents.c.scheduled_until <= now)
                        ),
                    )
                )
            )
        moved = 0
        for row in due:
            status = (
                MaintenanceStatus.IN_PROGRESS
                if row.status == "scheduled" and await self._still_running(row.id, now)
                else MaintenanceStatus.COMPLETED
            )
            key = (
                "maintenance.started"
                if status is MaintenanceStatus.IN_PROGRESS
                else "maintenance.completed"
            )
            try:
                async with self.transaction() as tx:
                    current = await self._incident(tx, row.id, IncidentKind.MAINTENANCE)
                    await self._move_maintenance(
                        tx,
                        current,
                        status,
                        t(key, self.config.site.language),
                        SYSTEM,
                        {},
                        expect=row.status,
                    )
                moved += 1
            except ConflictError:
                continue  # another instance moved it first
        return moved

    async def _still_running(self, incident_id: str, now: datetime) -> bool:
        async with db.read(self.engine) as conn:
            until = (
                await conn.execute(
                    select(incidents.c.scheduled_until).where(incidents.c.id == incident_id)
                )
            ).scalar_one()
        return bool(until is None or until > now)

    # -- shared steps -------------------------------------------------------------------------

    async def _incident(self, tx: Tx, incident_id: str, kind: IncidentKind) -> Incident:
        # Lock the row first: two writers updating one incident must not both compute their
        # change from the same stale copy (PostgreSQL; SQLite already serialises writers).
        await tx.conn.execute(
            select(incidents.c.id).where(incidents.c.id == incident_id).with_for_update()
        )
        found = await store.load_incident(tx.conn, incident_id)
        if found is None or found.kind is not kind:
            noun = "incident" if kind is IncidentKind.INCIDENT else "maintenance"
            raise NotFoundError(f'no {noun} with id "{incident_id}"')
        return found

    async def link_components(
        self, tx: Tx, incident_id: str, statuses: Mapping[str, ComponentStatus], *, start: int
    ) -> None:
        for offset, (cid, status) in enumerate(statuses.items()):
            await tx.conn.execute(
                insert(incident_components).values(
                    incident_id=incident_id,
                    component_id=cid,
                    status=status,
                    position=start + offset,
                )
            )

    @staticmethod
    def _affected(
        comps: Mapping[str, Component], named: Iterable[str], changes: Iterable[Change]
    ) -> tuple[AffectedComponent, ...]:
        by_id = {c.component_id: c for c in changes}
        out = []
        for cid in dict.fromkeys([*named, *by_id]):
            change = by_id.get(cid)
            if change is not None:
                out.append(AffectedComponent(cid, change.name, change.old, change.new))
            elif cid in comps:
                c = comps[cid]
                out.append(AffectedComponent(cid, c.name, c.status, c.status))
        return tuple(out)

    async def _add_update(
        self,
        tx: Tx,
        incident_id: str,
        status: str,
        body: str,
        actor: Actor,
        affected: Iterable[AffectedComponent],
    ) -> None:
        count = await tx.conn.execute(
            select(func.count()).where(incident_updates.c.incident_id == incident_id)
        )
        await tx.conn.execute(
            insert(incident_updates).values(
                id=new_id(),
                incident_id=incident_id,
                position=int(count.scalar_one()),
                status=status,
                body=body,
                created_at=tx.now,
                display_at=tx.now,
                author=actor.name,
                affected_components=[
                    {
                        "code": a.code,
                        "name": a.name,
                        "old_status": str(a.old_status),
                        "new_status": str(a.new_status),
                    }
                    for a in affected
                ],
            )
        )

    async def record_audit(
        self, tx: Tx, actor: Actor, action: str, target: str, detail: Mapping[str, Any]
    ) -> None:
        await write_audit(tx.conn, tx.now, actor, action, target, "ok", detail)

    async def record_denial(self, actor: Actor, error: ScopeError) -> None:
        """Refused attempts are audited too, in their own transaction (the attempt rolled back)."""
        async with db.write(self.engine) as conn:
            await write_audit(
                conn,
                self.clock.now(),
                actor,
                error.action,
                error.target,
                "denied",
                {"reason": error.message},
            )

    async def emit_incident(
        self, tx: Tx, kind: str, incident_id: str, changes: list[Change]
    ) -> Incident:
        incident = await self._incident(
            tx,
            incident_id,
            IncidentKind.MAINTENANCE if kind.startswith("maintenance") else IncidentKind.INCIDENT,
        )
        comps = {c.id: c for c in await store.load_components(tx.conn, include_removed=True)}
        payload = {
            "incident": build_incident(incident, comps, self.config.site),
            "component_changes": [c.as_dict() for c in changes],
        }
        ids = [*incident.component_ids, *(c.component_id for c in changes)]
        await self.emit_event(tx, kind, incident_id, ids, payload)
        return incident

    async def emit_event(
        self,
        tx: Tx,
        kind: str,
        incident_id: str | None,
        component_ids: Iterable[str],
        payload: Mapping[str, Any],
    ) -> None:
        kind = EventKind(kind)  # an unknown kind is a bug here, not news for subscribers
        tx.last_event_id = await outbox.append(
            tx.conn,
            kind=kind.value,
            at=tx.now,
            incident_id=incident_id,
            component_ids=component_ids,
            payload=payload,
        )


async def write_audit(
    conn: AsyncConnection,
    at: datetime,
    actor: Actor,
    action: str,
    target: str,
    outcome: str,
    detail: Mapping[str, Any],
) -> None:
    await conn.execute(
        insert(audit).values(
            at=at,
            actor=actor.name,
            token_id=actor.token_id,
            action=action,
            target=target,
            outcome=outcome,
            remote_addr=actor.remote_addr[:64],
            user_agent=actor.user_agent[:300],
            detail=dict(detail),
        )
    )

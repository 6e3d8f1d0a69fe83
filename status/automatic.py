"""Automatic incidents: the prober's verdicts applied through the core (open, fold, recover, resolve).

One incident per outage, not one per flap: a check that fails again while its incident is
still open (monitoring) reopens that incident. A branch whose trouble is explained by an open
incident on an upstream service it depends on is folded into that incident (listed among its
components) instead of getting its own, so fifty failing branches make one incident.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, insert, select, update

from status import store
from status.checks.queue import QueueState, manual_queue_state
from status.commands import NewIncident, NewUpdate
from status.core import Core, Tx
from status.errors import InvalidError, NotFoundError
from status.hours import open_state
from status.i18n import format_local, t
from status.model import PROBER, Actor, Incident, Verdict
from status.rules import derive_component_status
from status.schema import (
    branch_queues,
    check_state,
    components,
    incident_components,
    incidents,
)
from status.vocabulary import ComponentStatus, Impact, IncidentKind, IncidentStatus

IMPACT_OF = {
    ComponentStatus.DEGRADED_PERFORMANCE: Impact.MINOR,
    ComponentStatus.PARTIAL_OUTAGE: Impact.MAJOR,
    ComponentStatus.MAJOR_OUTAGE: Impact.CRITICAL,
}
TRANSITIONS_KEPT = 20


class Automatic:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.config = core.config

    # -- words ------------------------------------------------------------------------------

    def _zone(self, component_id: str) -> ZoneInfo:
        branch = self.config.branch(component_id)
        return branch.zone if branch else ZoneInfo(self.config.site.timezone)

    def _text(
        self,
        key: str,
        component: str,
        component_id: str,
        at: datetime,
        reason: str = "",
        reason_id: str = "",
    ) -> str:
        """Both languages, the site's first: applicants and journalists read either."""
        zone = self._zone(component_id)
        parts = {}
        for lang in ("id", "en"):
            why = (reason_id or reason) if lang == "id" else reason
            parts[lang] = t(
                key, lang, component=component, time=format_local(at, zone, lang), reason=why
            )
        first = self.config.site.language
        second = "en" if first == "id" else "id"
        return f"{parts[first]}\n\n{parts[second]}"

    # -- verdicts ---------------------------------------------------------------------------

    async def apply(self, tx: Tx, verdicts: Sequence[Verdict]) -> None:
        """Apply confirmed transitions in one transaction: state, statuses, incidents."""
        if not verdicts:
            return
        for v in verdicts:
            await self._record(tx, v)
        await self._report(tx, {v.component_id for v in verdicts})
        folds: dict[str, list[str]] = {}
        for v in verdicts:
            if v.failing:
                await self._on_failure(tx, v, folds)
            else:
                await self._on_recovery(tx, v, folds)
        for incident_id, ids in folds.items():
            changes = await self.core.recompute(tx, ids)
            await self.core.emit_incident(tx, "incident.affected", incident_id, changes)
        # Components whose status moved without any incident event still need one.
        await self._emit_status_only(tx, verdicts)

    async def _record(self, tx: Tx, v: Verdict) -> None:
        row = (
            await tx.conn.execute(
                select(check_state.c.transitions).where(check_state.c.check_id == v.check_id)
            )
        ).first()
        kept = [*(row.transitions if row else []), tx.now.isoformat()][-TRANSITIONS_KEPT:]
        await tx.conn.execute(
            update(check_state)
            .where(check_state.c.check_id == v.check_id)
            .values(failing=v.failing, since=v.since, transitions=kept, updated_at=tx.now)
        )

    async def _report(self, tx: Tx, component_ids: set[str]) -> None:
        """reported_status = the worst severity among a component's failing checks."""
        rows = await tx.conn.execute(
            select(check_state.c.component_id, check_state.c.severity).where(
                check_state.c.component_id.in_(component_ids), check_state.c.failing
            )
        )
        worst = dict.fromkeys(component_ids, ComponentStatus.OPERATIONAL)
        for row in rows:
            severity = ComponentStatus(row.severity)
            worst[row.component_id] = derive_component_status(worst[row.component_id], [severity])
        for cid, status in worst.items():
            await tx.conn.execute(
                update(components).where(components.c.id == cid).values(reported_status=status)
            )

    async def _own_incident(self, tx: Tx, check_id: str) -> Incident | None:
        found = (
            await tx.conn.execute(
                select(incidents.c.id).where(incidents.c.check_id == check_id, incidents.c.is_open)
            )
        ).first()
        return await store.load_incident(tx.conn, found.id) if found else None

    async def _upstream_incident(self, tx: Tx, branch_id: str) -> str | None:
        branch = self.config.branch(branch_id)
        if branch is None:
            return None
        found = (
            await tx.conn.execute(
                select(incidents.c.id)
                .join(incident_components, incident_components.c.incident_id == incidents.c.id)
                .where(
                    incidents.c.is_open,
                    incidents.c.kind == IncidentKind.INCIDENT,
                    incident_components.c.component_id.in_(self.config.upstream_of(branch)),
                    incident_components.c.status != ComponentStatus.OPERATIONAL,
                )
                .order_by(incidents.c.created_at)
                .limit(1)
            )
        ).first()
        return found.id if found else None

    async def _silenced(self, tx: Tx, check_id: str) -> bool:
        until = (
            await tx.conn.execute(
                select(check_state.c.silenced_until).where(check_state.c.check_id == check_id)
            )
        ).scalar()
        return until is not None and until > tx.now

    async def _name(self, tx: Tx, component_id: str) -> str:
        name = (
            await tx.conn.execute(select(components.c.name).where(components.c.id == component_id))
        ).scalar()
        return str(name or component_id)

    async def _on_failure(self, tx: Tx, v: Verdict, folds: dict[str, list[str]]) -> None:
        name = await self._name(tx, v.component_id)
        own = await self._own_incident(tx, v.check_id)
        if own is not None:
            if own.automation == "auto" and own.status == IncidentStatus.MONITORING:
                await self.core.add_update(
                    tx,
                    own.id,
                    NewUpdate(
                        IncidentStatus.INVESTIGATING,
                        self._text(
                            "auto.again", name, v.component_id, v.since, v.reason, v.reason_id
                        ),
                        {v.component_id: v.severity},
                    ),
                    PROBER,
                )
            else:
                await self._impose(tx, own.id, v.component_id, v.severity)
                folds.setdefault(own.id, []).append(v.component_id)
            return
        if await self._silenced(tx, v.check_id):
            return
        upstream = await self._upstream_incident(tx, v.component_id)
        if upstream is not None:
            await self._impose(tx, upstream, v.component_id, v.severity)
            folds.setdefault(upstream, []).append(v.component_id)
            return
        await self.core.create_incident(
            tx,
            NewIncident(
                t("auto.title", self.config.site.language, component=name),
                IncidentStatus.INVESTIGATING,
                IMPACT_OF.get(v.severity, Impact.MINOR),
                self._text("auto.failing", name, v.component_id, v.since, v.reason, v.reason_id),
                {v.component_id: v.severity},
                origin="prober",
                check_id=v.check_id,
            ),
            PROBER,
        )

    async def _impose(
        self, tx: Tx, incident_id: str, component_id: str, status: ComponentStatus
    ) -> None:
        link = and_(
            incident_components.c.incident_id == incident_id,
            incident_components.c.component_id == component_id,
        )
        exists = (await tx.conn.execute(select(incident_components.c.status).where(link))).first()
        if exists is not None:
            await tx.conn.execute(update(incident_components).where(link).values(status=status))
        else:
            count = await tx.conn.execute(
                select(incident_components.c.component_id).where(
                    incident_components.c.incident_id == incident_id
                )
            )
            await self.core.link_components(
                tx, incident_id, {component_id: status}, start=len(list(count))
            )
        await tx.conn.execute(
            update(incidents).where(incidents.c.id == incident_id).values(updated_at=tx.now)
        )

    async def _on_recovery(self, tx: Tx, v: Verdict, folds: dict[str, list[str]]) -> None:
        name = await self._name(tx, v.component_id)
        own = await self._own_incident(tx, v.check_id)
        if own is not None and own.automation == "auto":
            if own.status != IncidentStatus.MONITORING:
                await self.core.add_update(
                    tx,
                    own.id,
                    NewUpdate(
                        IncidentStatus.MONITORING,
                        self._text("auto.recovered", name, v.component_id, v.since),
                        {v.component_id: ComponentStatus.OPERATIONAL},
                    ),
                    PROBER,
                )
            return
        # Folded into someone else's incident (or staff took ours over): release what we
        # imposed; the incident itself stays as its owner left it.
        rows = await tx.conn.execute(
            select(incident_components.c.incident_id)
            .join(incidents, incidents.c.id == incident_components.c.incident_id)
            .where(
                incidents.c.is_open,
                incident_components.c.component_id == v.component_id,
                incident_components.c.status != ComponentStatus.OPERATIONAL,
                (incidents.c.origin == "prober") | (incidents.c.check_id == v.check_id),
            )
        )
        for row in list(rows):
            await self._impose(tx, row.incident_id, v.component_id, ComponentStatus.OPERATIONAL)
            folds.setdefault(row.incident_id, []).append(v.component_id)

    async def _emit_status_only(self, tx: Tx, verdicts: Sequence[Verdict]) -> None:
        changes = await self.core.recompute(tx, {v.component_id for v in verdicts})
        if changes:
            await self.core.emit_event(
                tx,
                "component.updated",
                None,
                [c.component_id for c in changes],
                {"component_changes": [c.as_dict() for c in changes]},
            )

    async def record_queues(self, tx: Tx, states: Mapping[str, QueueState | str]) -> None:
        await record_queues(self.core, tx, states)

    # -- staff -------------------------------------------------------------------------------

    async def set_queue(
        self,
        tx: Tx,
        branch_id: str,
        serving: int,
        issued: int,
        counters_open: int | None,
        actor: Actor,
    ) -> QueueState:
        """Staff type in their queue (branches without a queue system, or one that is down)."""
        branch = self.config.branch(branch_id)
        if branch is None:
            raise NotFoundError(f'no branch with id "{branch_id}"')
        self.core.authorize(actor, [branch_id], action="queue.set", target=branch_id)
        row = (
            await tx.conn.execute(
                select(branch_queues).where(branch_queues.c.branch_id == branch_id)
            )
        ).first()
        is_open = open_state(branch.opening_hours, branch.zone, tx.now).is_open
        state = manual_queue_state(
            serving, issued, counters_open, tx.now, _state_of(row), is_open=is_open
        )
        await record_queues(self.core, tx, {branch_id: state})
        await self.core.record_audit(
            tx,
            actor,
            "queue.set",
            branch_id,
            {"serving": serving, "issued": issued, "counters_open": counters_open},
        )
        return state

    async def silence(self, tx: Tx, check_id: str, until: datetime | None, actor: Actor) -> None:
        """No automatic incidents from this check until `until` (None lifts the silence)."""
        row = (
            await tx.conn.execute(
                select(check_state.c.component_id).where(check_state.c.check_id == check_id)
            )
        ).first()
        if row is None:
            raise NotFoundError(f'no check with id "{check_id}"')
        self.core.authorize(actor, [row.component_id], action="check.silence", target=check_id)
        if until is not None and until <= tx.now:
            raise InvalidError("the silence must end in the future", field="until")
        await tx.conn.execute(
            update(check_state)
            .where(check_state.c.check_id == check_id)
            .values(silenced_until=until)
        )
        await self.core.record_audit(
            tx, actor, "check.silence", check_id, {"until": until.isoformat() if until else None}
        )

    # -- quiet period -----------------------------------------------------------------------

    async def resolve_quiet(self, tx: Tx) -> list[str]:
        """Resolve automatic incidents whose checks have been healthy for resolve_after."""
        quiet_since = tx.now - self.config.prober.resolve_after
        rows = list(
            await tx.conn.execute(
                select(incidents.c.id, incidents.c.check_id).where(
                    incidents.c.is_open,
                    incidents.c.automation == "auto",
                    incidents.c.status == IncidentStatus.MONITORING,
                    incidents.c.updated_at <= quiet_since,
                )
            )
        )
        resolved = []
        for row in rows:
            state = (
                await tx.conn.execute(
                    select(check_state.c.failing, check_state.c.since).where(
                        check_state.c.check_id == row.check_id
                    )
                )
            ).first()
            if state is None or state.failing:
                continue
            incident = await store.load_incident(tx.conn, row.id)
            assert incident is not None  # noqa: S101 - selected in this transaction
            cid = incident.component_ids[0] if incident.component_ids else ""
            name = await self._name(tx, cid)
            ok_since: Any = state.since or incident.updated_at
            await self.core.add_update(
                tx,
                row.id,
                NewUpdate(
                    IncidentStatus.RESOLVED, self._text("auto.resolved", name, cid, ok_since)
                ),
                PROBER,
            )
            resolved.append(row.id)
        return resolved


def _queue_row(branch_id: str, state: QueueState | str, now: datetime) -> dict[str, Any]:
    if isinstance(state, str):
        return {"branch_id": branch_id, "error": state[:300], "updated_at": now}
    wait = state.estimated_wait
    return {
        "branch_id": branch_id,
        "serving": state.serving,
        "issued": state.issued,
        "counters_open": state.counters_open,
        "length": state.length,
        "last_move_at": state.last_move_at,
        "served_per_hour": None if state.served_per_hour is None else round(state.served_per_hour),
        "estimated_wait_s": None if wait is None else int(wait.total_seconds()),
        "stalled": state.stalled,
        "is_open": state.is_open,
        "read_at": state.read_at,
        "samples": [[at.isoformat(), serving] for at, serving in state.samples],
        "source": state.source,
        "error": None,
        "updated_at": now,
    }


# What readers see; a reading that changes none of these is not news.
VISIBLE = (
    "serving",
    "issued",
    "counters_open",
    "length",
    "stalled",
    "is_open",
    "error",
    "estimated_wait_s",
)


async def record_queues(core: Core, tx: Tx, states: Mapping[str, QueueState | str]) -> None:
    """Store the newest queue readings; one event when anything a reader sees changed."""
    existing = {
        r.branch_id: r
        for r in await tx.conn.execute(
            select(branch_queues).where(branch_queues.c.branch_id.in_(list(states)))
        )
    }
    changed = []
    for branch_id, state in states.items():
        row = _queue_row(branch_id, state, tx.now)
        old = existing.get(branch_id)
        if old is None:
            full = {"samples": [], "stalled": False, "is_open": True, "source": "probe", **row}
            await tx.conn.execute(insert(branch_queues).values(**full))
            changed.append(branch_id)
            continue
        await tx.conn.execute(
            update(branch_queues)
            .where(branch_queues.c.branch_id == branch_id)
            .values(**{k: v for k, v in row.items() if k != "branch_id"})
        )
        if any(k in row and getattr(old, k) != row[k] for k in VISIBLE):
            changed.append(branch_id)
    if changed:
        await core.emit_event(tx, "queues.updated", None, changed, {"branches": changed})


def _state_of(row: Any) -> QueueState | None:
    """The stored queue row as a QueueState, so manual entries continue its rate samples."""
    if row is None or row.read_at is None or row.serving is None:
        return None
    wait = row.estimated_wait_s
    return QueueState(
        serving=row.serving,
        issued=row.issued,
        counters_open=row.counters_open,
        length=row.length,
        last_move_at=row.last_move_at,
        served_per_hour=row.served_per_hour,
        estimated_wait=None if wait is None else timedelta(seconds=wait),
        stalled=row.stalled,
        is_open=row.is_open,
        read_at=row.read_at,
        samples=tuple((datetime.fromisoformat(at), n) for at, n in row.samples),
        source=row.source,
    )

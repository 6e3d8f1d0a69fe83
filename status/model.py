"""Frozen dataclasses: Component, Incident, IncidentUpdate, Event, AuditEntry (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from status.history import Day
from status.vocabulary import ComponentStatus, Impact, IncidentKind


@dataclass(frozen=True, slots=True)
class Component:
    """A thing whose status is shown: an upstream service or a branch (group = its region)."""

    id: str
    name: str
    group: str
    description: str
    kind: str  # "service" | "branch"
    position: int
    status: ComponentStatus  # derived by rules.derive_component_status; never typed in
    reported_status: ComponentStatus  # what the prober last confirmed
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AffectedComponent:
    code: str
    name: str
    old_status: ComponentStatus
    new_status: ComponentStatus


@dataclass(frozen=True, slots=True)
class IncidentUpdate:
    id: str
    incident_id: str
    status: str  # IncidentStatus or MaintenanceStatus, by the incident's kind
    body: str
    created_at: datetime
    display_at: datetime
    affected_components: tuple[AffectedComponent, ...] = ()
    author: str = ""


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident, a notice (impact none) or a scheduled maintenance (kind maintenance)."""

    id: str
    kind: IncidentKind
    name: str
    status: str
    impact: Impact
    created_at: datetime
    updated_at: datetime
    started_at: datetime
    monitoring_at: datetime | None
    resolved_at: datetime | None
    scheduled_for: datetime | None
    scheduled_until: datetime | None
    auto_transition: bool
    origin: str  # "staff" | "prober"
    # The status this incident asks of each component; ordered as given by staff.
    components: Mapping[str, ComponentStatus] = field(default_factory=dict)
    updates: tuple[IncidentUpdate, ...] = ()  # newest first, as Statuspage lists them
    check_id: str | None = None  # the check whose failure opened it (automatic incidents)
    automation: str = "manual"  # "auto": the prober writes its updates; "manual": staff do

    @property
    def component_ids(self) -> tuple[str, ...]:
        return tuple(self.components)

    @property
    def is_open(self) -> bool:
        if self.kind is IncidentKind.MAINTENANCE:
            return self.status != "completed"
        return self.status not in ("resolved", "postmortem")


@dataclass(frozen=True, slots=True)
class Verdict:
    """A check's confirmed change of state, from the prober (fail_after/recover_after applied)."""

    check_id: str
    component_id: str
    failing: bool
    severity: ComponentStatus  # what the component shows while the check fails
    since: datetime  # when the confirmed state began
    reason: str = ""  # short English, e.g. "timed out after 5s"; "" on recovery
    reason_id: str = ""  # the same in Bahasa Indonesia where we have words for it


@dataclass(frozen=True, slots=True)
class Event:
    """One outbox row: a change the core committed, for broadcasters and snapshot readers."""

    id: int
    kind: str
    created_at: datetime
    incident_id: str | None
    component_ids: tuple[str, ...]
    payload: Mapping[str, Any]

    def touches(self, filters: Iterable[str], regions: Mapping[str, str] | None = None) -> bool:
        """Whether this event concerns any of `filters`: "*", component ids, or "region:<name>".

        A notice that names no component (e.g. "physical stamps are accepted too") is news for
        every follower.
        """
        regions = regions or {}
        if self.incident_id is not None and not self.component_ids:
            return True
        for item in filters:
            if item == "*":
                return True
            if item.startswith("region:"):
                if any(regions.get(c) == item[7:] for c in self.component_ids):
                    return True
            elif item in self.component_ids:
                return True
        return False


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    token_id: str | None
    action: str
    target: str
    outcome: str  # "ok" | "denied"
    remote_addr: str
    user_agent: str
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: a staff token, the prober or the system scheduler, and from where."""

    name: str
    scopes: Sequence[str]
    token_id: str | None = None
    remote_addr: str = ""
    user_agent: str = ""

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    @property
    def branches(self) -> frozenset[str]:
        return frozenset(s[7:] for s in self.scopes if s.startswith("branch:"))

    def may_touch(self, component_ids: Iterable[str]) -> bool:
        """Admins touch anything; a branch scope only a non-empty set of its own branches."""
        if self.is_admin:
            return True
        ids = set(component_ids)
        return bool(ids) and ids <= self.branches


SYSTEM = Actor("system", ("admin",))
PROBER = Actor("prober", ("admin",))


@dataclass(frozen=True, slots=True)
class State:
    """Everything public renderings need, loaded in one read transaction."""

    components: tuple[Component, ...]
    incidents: tuple[Incident, ...]  # open ones plus recent history, newest first
    maintenances: tuple[Incident, ...]  # upcoming, active and recent, newest first
    last_event_id: int
    loaded_at: datetime
    last_change_at: datetime  # newest change to anything shown; drives Last-Modified
    # branch id → its live queue row (see schema.branch_queues); absent = never read
    queues: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Per check per day (the site's days) for the last 90 days: the page's uptime bars.
    # Latency histograms are left out; the page shows uptime only.
    daily: tuple[Day, ...] = ()

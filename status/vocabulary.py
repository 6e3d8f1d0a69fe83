"""StrEnums with Statuspage's words: ComponentStatus, IncidentStatus, Impact, Indicator, MaintenanceStatus.

The values are Statuspage's public API v2 strings verbatim, so its clients, widgets and
exporters understand ours: https://developer.statuspage.io/
"""

from __future__ import annotations

from enum import StrEnum


class ComponentStatus(StrEnum):
    OPERATIONAL = "operational"
    UNDER_MAINTENANCE = "under_maintenance"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"

    @property
    def rank(self) -> int:
        """Severity order used when several sources speak about one component; the worst wins.

        Maintenance ranks below real trouble: an outage during a maintenance window is still
        shown as an outage.
        """
        return _COMPONENT_RANK[self]


_COMPONENT_RANK = {
    ComponentStatus.OPERATIONAL: 0,
    ComponentStatus.UNDER_MAINTENANCE: 1,
    ComponentStatus.DEGRADED_PERFORMANCE: 2,
    ComponentStatus.PARTIAL_OUTAGE: 3,
    ComponentStatus.MAJOR_OUTAGE: 4,
}


class IncidentStatus(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"
    POSTMORTEM = "postmortem"

    @property
    def is_closed(self) -> bool:
        return self in (IncidentStatus.RESOLVED, IncidentStatus.POSTMORTEM)


class MaintenanceStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    VERIFYING = "verifying"
    COMPLETED = "completed"

    @property
    def is_active(self) -> bool:
        return self in (MaintenanceStatus.IN_PROGRESS, MaintenanceStatus.VERIFYING)


class Impact(StrEnum):
    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"
    # Statuspage reports scheduled maintenances with impact "maintenance".
    MAINTENANCE = "maintenance"


class Indicator(StrEnum):
    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Indicator).index(self)


class IncidentKind(StrEnum):
    """Statuspage keeps incidents and scheduled maintenances in one list; so do we."""

    INCIDENT = "incident"
    MAINTENANCE = "maintenance"


class EventKind(StrEnum):
    """Every kind of outbox event the core writes; webhooks and the dispatcher name these."""

    INCIDENT_CREATED = "incident.created"
    INCIDENT_UPDATED = "incident.updated"
    INCIDENT_RESOLVED = "incident.resolved"
    # Automatic incidents: more components folded into an open upstream incident.
    INCIDENT_AFFECTED = "incident.affected"
    MAINTENANCE_SCHEDULED = "maintenance.scheduled"
    MAINTENANCE_UPDATED = "maintenance.updated"
    COMPONENT_UPDATED = "component.updated"
    COMPONENTS_SYNCED = "components.synced"
    # Branch queue readings; frequent, so consumers opt in by name.
    QUEUES_UPDATED = "queues.updated"

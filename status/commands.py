"""Typed commands the core accepts; the web layer parses request bodies into these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from status.vocabulary import ComponentStatus, Impact, IncidentStatus, MaintenanceStatus

NAME_MAX = 200  # characters in an incident or maintenance name
BODY_MAX = 5000  # characters in one update's text; broadcasters trim further for their medium
COMPONENTS_MAX = 1000  # components named in one incident (every branch of a large region fits)


@dataclass(frozen=True, slots=True)
class NewIncident:
    name: str
    status: IncidentStatus
    impact: Impact
    body: str
    components: Mapping[str, ComponentStatus] = field(default_factory=dict)
    origin: str = "staff"
    check_id: str | None = None  # automatic incidents: the check that opened it


@dataclass(frozen=True, slots=True)
class NewUpdate:
    status: IncidentStatus
    body: str
    components: Mapping[str, ComponentStatus] = field(default_factory=dict)
    name: str | None = None
    impact: Impact | None = None


@dataclass(frozen=True, slots=True)
class NewMaintenance:
    name: str
    body: str
    scheduled_for: datetime
    scheduled_until: datetime
    components: tuple[str, ...] = ()
    auto_transition: bool = True


@dataclass(frozen=True, slots=True)
class MaintenanceUpdate:
    status: MaintenanceStatus
    body: str
    scheduled_for: datetime | None = None
    scheduled_until: datetime | None = None

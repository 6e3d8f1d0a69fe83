"""Pure: snapshot → /api/v2 dicts in Statuspage's shapes.

Field names, nesting and enum values follow Statuspage's public API v2
(https://metastatuspage.com/api/v2), so its clients, widgets and exporters read ours unchanged.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from status.config import Site
from status.i18n import t
from status.model import Component, Incident, IncidentUpdate, State
from status.rules import page_indicator
from status.vocabulary import ComponentStatus, IncidentKind

# Statuspage's incidents.json and scheduled-maintenances.json return the 50 newest.
RECENT_LIMIT = 50


def iso(at: datetime | None) -> str | None:
    """Statuspage's timestamp form: ISO 8601 with milliseconds, in UTC ("Z")."""
    if at is None:
        return None
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def page_id(site: Site) -> str:
    """A stable 12-character id for this page, like Statuspage's."""
    return hashlib.sha256(site.public_url.encode()).hexdigest()[:12]


def group_id(name: str) -> str:
    return "group-" + (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "default")


def build_page(site: Site, updated_at: datetime) -> dict[str, Any]:
    return {
        "id": page_id(site),
        "name": site.name,
        "url": site.public_url,
        "time_zone": site.timezone,
        "updated_at": iso(updated_at),
    }


def _component(c: Component, site: Site, *, group: str | None) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "status": str(c.status),
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
        "position": c.position,
        "description": c.description or None,
        "showcase": True,
        "start_date": None,
        "group_id": group,
        "page_id": page_id(site),
        "group": False,
        "only_show_if_degraded": False,
    }


def build_components(components: Sequence[Component], site: Site) -> list[dict[str, Any]]:
    """Components in page order; each group is a component with `group: true` before its members."""
    groups: dict[str, list[Component]] = {}
    for c in sorted(components, key=lambda c: c.position):
        groups.setdefault(c.group, []).append(c)
    out: list[dict[str, Any]] = []
    for name, members in groups.items():
        if not name:
            for c in members:
                out.append(_component(c, site, group=None))
            continue
        worst = max((m.status for m in members), key=lambda s: s.rank)
        out.append(
            {
                "id": group_id(name),
                "name": name,
                "status": str(worst),
                "created_at": iso(min(m.created_at for m in members)),
                "updated_at": iso(max(m.updated_at for m in members)),
                "position": members[0].position,
                "description": None,
                "showcase": False,
                "start_date": None,
                "group_id": None,
                "page_id": page_id(site),
                "group": True,
                "only_show_if_degraded": False,
                "components": [m.id for m in members],
            }
        )
        out.extend(_component(m, site, group=group_id(name)) for m in members)
    return out


def build_update(update: IncidentUpdate) -> dict[str, Any]:
    return {
        "id": update.id,
        "status": update.status,
        "body": update.body,
        "incident_id": update.incident_id,
        "created_at": iso(update.created_at),
        "updated_at": iso(update.created_at),
        "display_at": iso(update.display_at),
        "affected_components": [
            {
                "code": a.code,
                "name": a.name,
                "old_status": str(a.old_status),
                "new_status": str(a.new_status),
            }
            for a in update.affected_components
        ]
        or None,
        "deliver_notifications": True,
        "custom_tweet": None,
        "tweet_id": None,
    }


def build_incident(
    incident: Incident, components: Mapping[str, Component], site: Site
) -> dict[str, Any]:
    """One incident or scheduled maintenance with its updates (newest first) and components."""
    out: dict[str, Any] = {
        "id": incident.id,
        "name": incident.name,
        "status": incident.status,
        "created_at": iso(incident.created_at),
        "updated_at": iso(incident.updated_at),
        "monitoring_at": iso(incident.monitoring_at),
        "resolved_at": iso(incident.resolved_at),
        "impact": str(incident.impact),
        "shortlink": f"{site.public_url.rstrip('/')}/incidents/{incident.id}",
        "started_at": iso(incident.started_at),
        "page_id": page_id(site),
        "incident_updates": [build_update(u) for u in incident.updates],
        "components": [
            _component(components[cid], site, group=_group_of(components[cid]))
            for cid in incident.component_ids
            if cid in components
        ],
    }
    # Statuspage's public incidents carry exactly the keys above; scheduled maintenances add
    # their window. (`reminder_intervals` belongs to the management API, not the public one.)
    if incident.kind is IncidentKind.MAINTENANCE:
        out["scheduled_for"] = iso(incident.scheduled_for)
        out["scheduled_until"] = iso(incident.scheduled_until)
    return out


def _group_of(c: Component) -> str | None:
    return group_id(c.group) if c.group else None


def build_status(state: State, site: Site) -> dict[str, str]:
    open_impacts = [i.impact for i in state.incidents if i.is_open]
    indicator = page_indicator((c.status for c in state.components), open_impacts)
    key = f"indicator.{indicator}"
    if str(indicator) == "none" and any(
        c.status is ComponentStatus.UNDER_MAINTENANCE for c in state.components
    ):
        key = "indicator.maintenance"
    return {"indicator": str(indicator), "description": t(key, site.language)}


def _by_id(state: State) -> dict[str, Component]:
    return {c.id: c for c in state.components}


def _incidents(items: Iterable[Incident], state: State, site: Site) -> list[dict[str, Any]]:
    components = _by_id(state)
    return [build_incident(i, components, site) for i in items]


def upcoming(state: State) -> list[Incident]:
    return sorted(
        (m for m in state.maintenances if m.status == "scheduled"),
        key=lambda m: m.scheduled_for or m.created_at,
    )


def active(state: State) -> list[Incident]:
    return [m for m in state.maintenances if m.status in ("in_progress", "verifying")]


def build_documents(state: State, site: Site) -> dict[str, dict[str, Any]]:
    """Every /api/v2 document, keyed by its path."""
    page = build_page(site, state.last_change_at)
    unresolved = [i for i in state.incidents if i.is_open]
    status = build_status(state, site)
    components = build_components(state.components, site)
    return {
        "/api/v2/summary.json": {
            "page": page,
            "components": components,
            "incidents": _incidents(unresolved, state, site),
            "scheduled_maintenances": _incidents(active(state) + upcoming(state), state, site),
            "status": status,
        },
        "/api/v2/status.json": {"page": page, "status": status},
        "/api/v2/components.json": {"page": page, "components": components},
        "/api/v2/incidents.json": {
            "page": page,
            "incidents": _incidents(state.incidents[:RECENT_LIMIT], state, site),
        },
        "/api/v2/incidents/unresolved.json": {
            "page": page,
            "incidents": _incidents(unresolved, state, site),
        },
        "/api/v2/scheduled-maintenances.json": {
            "page": page,
            "scheduled_maintenances": _incidents(state.maintenances[:RECENT_LIMIT], state, site),
        },
        "/api/v2/scheduled-maintenances/upcoming.json": {
            "page": page,
            "scheduled_maintenances": _incidents(upcoming(state), state, site),
        },
        "/api/v2/scheduled-maintenances/active.json": {
            "page": page,
            "scheduled_maintenances": _incidents(active(state), state, site),
        },
    }

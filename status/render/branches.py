"""Pure: config + state → the /api/v1/branches document (hours, open or closed now, queue)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from status.config import BranchConfig, Config
from status.hours import open_state, zone_abbreviation
from status.i18n import format_local, t
from status.model import Component, State
from status.render.statuspage import iso


def build_branch(
    branch: BranchConfig, component: Component | None, now: datetime, lang: str
) -> dict[str, Any]:
    zone = branch.zone
    state = open_state(branch.opening_hours, zone, now)
    if state.until is None:
        label = t("branch.always_open", lang)
    elif state.is_open:
        label = t("branch.open_until", lang, time=format_local(state.until, zone, lang))
    elif state.holiday:
        label = t("branch.closed_holiday", lang, holiday=state.holiday)
    else:
        label = t(
            "branch.closed_until", lang, time=format_local(state.until, zone, lang, with_date=True)
        )
    return {
        "id": branch.id,
        "name": branch.name,
        "region": branch.region,
        "timezone": branch.timezone,
        "zone": zone_abbreviation(zone, now),
        "hours": branch.hours or None,
        "open": state.is_open,
        "open_label": label,
        "changes_at": iso(state.until),
        "holiday": state.holiday,
        "status": str(component.status) if component else "operational",
        # Live queue numbers arrive with the prober's queue checks (issue #3).
        "queue": None,
    }


def build_branches(config: Config, state: State, now: datetime) -> dict[str, Any]:
    components: Mapping[str, Component] = {c.id: c for c in state.components}
    lang = config.site.language
    return {
        "generated_at": iso(now),
        "branches": [build_branch(b, components.get(b.id), now, lang) for b in config.branches],
    }


def next_change(config: Config, now: datetime) -> datetime | None:
    """The next moment any branch opens or closes; the snapshot rebuilds then."""
    times = [open_state(b.opening_hours, b.zone, now).until for b in config.branches]
    return min((x for x in times if x is not None), default=None)

"""Pure: config + state → the /api/v1/branches document (hours, open or closed now, queue)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import holidays

from status.config import BranchConfig, Config
from status.hours import open_state, zone_abbreviation
from status.i18n import format_local, t
from status.model import Component, State
from status.render.statuspage import iso

# The holidays package names holidays through gettext; without an explicit language it follows
# the server's LANGUAGE/LC_ALL/LANG environment, so "C.UTF-8" boxes said "Independence Day" on
# a Bahasa Indonesia page. Ask for the reader's language instead.
_HOLIDAY_LANGUAGES = {"id": "id", "en": "en_US"}


@lru_cache(maxsize=16)
def _holiday_names(year: int, lang: str) -> Mapping[date, str]:
    language = _HOLIDAY_LANGUAGES.get(lang, "id")
    names: Mapping[date, str] = holidays.country_holidays("ID", years=year, language=language)
    return names


def holiday_label(day: date, lang: str) -> str | None:
    """The Indonesian public holiday on `day`, named in `lang`, or None."""
    return _holiday_names(day.year, lang).get(day)


def build_queue(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The live queue as readers see it; None for a branch whose queue was never read."""
    if row is None or row.get("read_at") is None:
        return None
    wait = row.get("estimated_wait_s")
    return {
        "serving": row["serving"],
        "issued": row["issued"],
        "counters_open": row["counters_open"],
        "length": row["length"],
        "served_per_hour": row["served_per_hour"],
        # Rounded up: nobody queueing should read "0 minutes" while people are ahead of them.
        "estimated_wait_minutes": None if wait is None else -(-wait // 60),
        "stalled": row["stalled"],
        "last_move_at": iso(row["last_move_at"]),
        "read_at": iso(row["read_at"]),
        "source": row["source"],
        "error": row.get("error"),
    }


def build_branch(
    branch: BranchConfig,
    component: Component | None,
    now: datetime,
    lang: str,
    queue: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    zone = branch.zone
    state = open_state(branch.opening_hours, zone, now)
    holiday = holiday_label(now.astimezone(zone).date(), lang) if state.holiday else None
    if state.until is None:
        label = t("branch.always_open", lang)
    elif state.is_open:
        label = t("branch.open_until", lang, time=format_local(state.until, zone, lang))
    elif holiday:
        label = t("branch.closed_holiday", lang, holiday=holiday)
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
        "holiday": holiday,
        "status": str(component.status) if component else "operational",
        "queue": build_queue(queue),
    }


def build_branches(config: Config, state: State, now: datetime) -> dict[str, Any]:
    components: Mapping[str, Component] = {c.id: c for c in state.components}
    lang = config.site.language
    return {
        "generated_at": iso(now),
        "branches": [
            build_branch(b, components.get(b.id), now, lang, state.queues.get(b.id))
            for b in config.branches
        ],
    }


def next_change(config: Config, now: datetime) -> datetime | None:
    """The next moment any branch opens or closes; the snapshot rebuilds then."""
    times = [open_state(b.opening_hours, b.zone, now).until for b in config.branches]
    return min((x for x in times if x is not None), default=None)

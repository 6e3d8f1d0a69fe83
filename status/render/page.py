"""Pure: state → the public status page and incident permalinks, as HTML in both languages.

`render_page` publishes `/` and `/incidents/<id>` (incidents and maintenances share one id
space) as the bare path in the site's language plus `?lang=id` and `?lang=en`;
status/web/public.py picks the variant from ?lang= or Accept-Language.

The page is built for a phone in a queue on a slow connection: no scripts, fonts or external
files, CSS inline, one request. Everything shown is derived from `State` and the config; times
are local with their zone abbreviation (WIB/WITA/WIT).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from status.config import BranchConfig, Config
from status.i18n import LANGUAGES, format_local, t
from status.model import Component, Incident, State
from status.render.branches import build_branch
from status.render.statuspage import active, upcoming
from status.rules import page_indicator
from status.vocabulary import ComponentStatus, IncidentKind

HTML = "text/html; charset=utf-8"
DAYS = 90  # uptime bars
PAST_LIMIT = 30  # past incidents listed on the page; every one keeps its permalink
UPDATES_LIMIT = 5  # updates of an ongoing incident on the page; its permalink has them all
_TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
_ENV = Environment(
    loader=FileSystemLoader(_TEMPLATES),
    autoescape=True,  # every name and update body is someone's typing
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
    auto_reload=False,
)
# Feeds and the API other renderers publish; linked for journalists and other systems.
FEEDS = (
    ("page.feed_history", "/history.atom"),
    ("page.feed_history_rss", "/history.rss"),
    ("page.feed_updates", "/updates.atom"),
    ("page.api", "/api/v2/summary.json"),
)


def render_page(state: State, config: Config, now: datetime) -> dict[str, tuple[bytes, str]]:
    """Every page in every language: path → (HTML bytes, content type)."""
    zone = ZoneInfo(config.site.timezone)
    uptime = _uptime(state, config, now.astimezone(zone).date())
    components = {c.id: c for c in state.components}
    follow = _follow_links(config.document)
    index = _ENV.get_template("page/index.html")
    permalink = _ENV.get_template("page/incident.html")
    out: dict[str, tuple[bytes, str]] = {}
    for lang in LANGUAGES:
        common = _common(config, lang, follow)
        body = index.render(
            **common, path="/", **_index(state, config, now, lang, zone, uptime, components)
        ).encode()
        _publish(out, "/", body, lang, config.site.language)
        for incident in (*state.incidents, *state.maintenances):
            path = f"/incidents/{incident.id}"
            view = _incident(incident, components, lang, zone, full=True)
            body = permalink.render(**common, path=path, incident=view).encode()
            _publish(out, path, body, lang, config.site.language)
    return out


def render_permalink(
    incident: Incident, components: Iterable[Component], config: Config, lang: str
) -> bytes:
    """One incident's permalink page, for incidents older than the snapshot holds (archive)."""
    zone = ZoneInfo(config.site.timezone)
    common = _common(config, lang, _follow_links(config.document))
    view = _incident(incident, {c.id: c for c in components}, lang, zone, full=True)
    path = f"/incidents/{incident.id}"
    return (
        _ENV.get_template("page/incident.html").render(**common, path=path, incident=view).encode()
    )


def next_midnight(config: Config, _state: State, now: datetime) -> datetime:
    """The uptime bars move by a day at the site's midnight, with or without news."""
    zone = ZoneInfo(config.site.timezone)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, datetime.min.time(), zone)


def _publish(
    out: dict[str, tuple[bytes, str]], path: str, body: bytes, lang: str, site_lang: str
) -> None:
    out[f"{path}?lang={lang}"] = (body, HTML)
    if lang == site_lang:
        out[path] = (body, HTML)


def _common(config: Config, lang: str, follow: Mapping[str, Any]) -> dict[str, Any]:
    other = next(code for code in LANGUAGES if code != lang)
    return {
        "lang": lang,
        "other_lang": other,
        "site": config.site,
        "tr": lambda key, **values: t(key, lang, **values),
        # Feeds come in both languages; the JSON API has one (Statuspage's words are English).
        "feeds": [
            (t(key, lang), href if href.startswith("/api/") else f"{href}?lang={lang}")
            for key, href in FEEDS
        ],
        "channels": follow["channels"],
        "bot": follow["bot"],
    }


def _follow_links(document: Mapping[str, Any]) -> dict[str, Any]:
    """Telegram links from the broadcaster tables: public channels (@name) and the bot."""
    telegram = document.get("telegram")
    channels: list[tuple[str, str]] = []
    bot: tuple[str, str] | None = None
    if isinstance(telegram, Mapping):
        for item in telegram.get("channel", ()) or ():
            chat = item.get("chat") if isinstance(item, Mapping) else None
            # A numeric chat id is a private chat: nothing a reader could open.
            if isinstance(chat, str) and chat.startswith("@"):
                channels.append((chat, f"https://t.me/{chat[1:]}"))
        table = telegram.get("bot")
        # A bot that is not running would not answer the people the page sends to it.
        enabled = isinstance(table, Mapping) and table.get("enabled") is True
        username = table.get("username") if enabled and isinstance(table, Mapping) else None
        if isinstance(username, str) and username.strip("@"):
            name = username.strip("@")
            bot = (f"@{name}", f"https://t.me/{name}")
    return {"channels": channels, "bot": bot}


def _index(
    state: State,
    config: Config,
    now: datetime,
    lang: str,
    zone: ZoneInfo,
    uptime: Mapping[str, tuple[float | None, list[float | None]]],
    components: Mapping[str, Component],
) -> dict[str, Any]:
    open_incidents = [i for i in state.incidents if i.is_open]
    indicator = str(
        page_indicator((c.status for c in state.components), (i.impact for i in open_incidents))
    )
    tone = indicator
    if indicator == "none" and any(
        c.status is ComponentStatus.UNDER_MAINTENANCE for c in state.components
    ):
        indicator, tone = "maintenance", "maintenance"
    today = now.astimezone(zone).date()
    return {
        "overall": {"text": t(f"indicator.{indicator}", lang), "tone": tone},
        "updated": t(
            "page.updated",
            lang,
            time=format_local(state.last_change_at, zone, lang, with_date=True),
        ),
        "services": _services(state.components, uptime, today, lang),
        "regions": _regions(config.branches, components, state, now, lang),
        "active": [
            _incident(i, components, lang, zone, full=True, limit=UPDATES_LIMIT)
            for i in open_incidents
        ],
        "maintenances": [
            _incident(m, components, lang, zone, full=False)
            for m in (*active(state), *upcoming(state))
        ],
        "past": [
            _incident(i, components, lang, zone, full=False)
            for i in state.incidents
            if not i.is_open
        ][:PAST_LIMIT],
    }


def _services(
    comps: Iterable[Component],
    uptime: Mapping[str, tuple[float | None, list[float | None]]],
    today: date,
    lang: str,
) -> list[dict[str, Any]]:
    days = [today - timedelta(days=n) for n in range(DAYS - 1, -1, -1)]
    out = []
    for c in comps:
        if c.kind == "branch":
            continue
        item: dict[str, Any] = {
            "name": c.name,
            "description": c.description,
            "status": str(c.status),
            "label": t(f"component_status.{c.status}", lang),
            "bars": None,
        }
        if c.id in uptime:
            overall, ratios = uptime[c.id]
            item["summary"] = (
                t("page.uptime_none", lang)
                if overall is None
                else t("page.uptime_summary", lang, percent=_percent(overall, lang))
            )
            item["bars"] = [_bar(ratio, day, lang) for ratio, day in zip(ratios, days, strict=True)]
        out.append(item)
    return out


def _bar(ratio: float | None, day: date, lang: str) -> tuple[str, str]:
    """A day's bar: its colour class and the text a screen reader (or no CSS) shows instead."""
    shown = _day(day, lang)
    if ratio is None:
        return "", t("page.uptime_day_none", lang, day=shown)
    tone = "u1" if ratio >= 0.999 else "u2" if ratio >= 0.99 else "u3" if ratio >= 0.95 else "u4"
    return tone, t("page.uptime_day", lang, percent=_percent(ratio, lang), day=shown)


def _percent(ratio: float, lang: str) -> str:
    # Floored, so a day with one failure never reads "100%".
    text = f"{math.floor(ratio * 1000) / 10:.1f}%"
    return text.replace(".", ",") if lang == "id" else text


def _day(day: date, lang: str) -> str:
    return f"{day:%d-%m-%Y}" if lang == "id" else day.isoformat()


def _uptime(
    state: State, config: Config, today: date
) -> dict[str, tuple[float | None, list[float | None]]]:
    """Per upstream component with checks: the 90-day ratio and one ratio per day, oldest first."""
    component_of = {c.id: c.component for c in config.checks}
    first = today - timedelta(days=DAYS - 1)
    counts: dict[tuple[str, date], list[int]] = {}
    for day in state.daily:
        component = component_of.get(day.check_id)
        if component is None or not first <= day.day <= today:
            continue
        slot = counts.setdefault((component, day.day), [0, 0])
        slot[0] += day.total
        slot[1] += day.failures
    out: dict[str, tuple[float | None, list[float | None]]] = {}
    for component in set(component_of.values()):
        ratios: list[float | None] = []
        total = failures = 0
        for n in range(DAYS):
            day_total, day_failures = counts.get((component, first + timedelta(days=n)), (0, 0))
            if day_total == 0:
                ratios.append(None)
                continue
            ratios.append((day_total - day_failures) / day_total)
            total, failures = total + day_total, failures + day_failures
        out[component] = (None if total == 0 else (total - failures) / total, ratios)
    return out


def _regions(
    branches: Sequence[BranchConfig],
    components: Mapping[str, Component],
    state: State,
    now: datetime,
    lang: str,
) -> list[dict[str, Any]]:
    """The branch board: regions in config order, each with its branches."""
    regions: dict[str, list[dict[str, Any]]] = {}
    for branch in branches:
        regions.setdefault(branch.region, []).append(
            _branch(branch, components.get(branch.id), state.queues.get(branch.id), now, lang)
        )
    return [{"name": name, "branches": items} for name, items in regions.items()]


def _branch(
    branch: BranchConfig,
    component: Component | None,
    row: Mapping[str, Any] | None,
    now: datetime,
    lang: str,
) -> dict[str, Any]:
    info = build_branch(branch, component, now, lang, row)
    status = info["status"]
    queue = info["queue"]
    item: dict[str, Any] = {
        "name": component.name if component else branch.name,
        "open": info["open"],
        # A closed branch is closed, not down: its badge says so whatever else is true.
        "badge": t("branch.closed", lang)
        if not info["open"]
        else t(f"component_status.{status}", lang),
        "tone": "closed" if not info["open"] else status,
        "hours": info["open_label"],
        "queue": [],
        "stalled": None,
    }
    if queue is None or not info["open"]:
        return item
    zone = branch.zone
    if queue["length"] is not None:
        item["queue"].append(t("page.queue_length", lang, length=queue["length"]))
    if queue["estimated_wait_minutes"] is not None and queue["length"]:
        item["queue"].append(t("page.queue_wait", lang, minutes=queue["estimated_wait_minutes"]))
    if row is not None and row.get("read_at") is not None:
        item["queue"].append(
            t("page.queue_read_at", lang, time=format_local(row["read_at"], zone, lang))
        )
    if queue["stalled"] and row is not None:
        since = row.get("last_move_at") or row["read_at"]
        item["stalled"] = t("page.queue_stalled", lang, time=format_local(since, zone, lang))
    return item


def _incident(
    incident: Incident,
    components: Mapping[str, Component],
    lang: str,
    zone: ZoneInfo,
    *,
    full: bool,
    limit: int | None = None,
) -> dict[str, Any]:
    """An incident or maintenance as shown: `full` lists its updates (the newest `limit`),
    otherwise only the latest one's text is shown."""
    maintenance = incident.kind is IncidentKind.MAINTENANCE
    section = "maintenance_status" if maintenance else "incident_status"
    names = [components[c].name for c in incident.component_ids if c in components]

    def when(at: datetime) -> str:
        return format_local(at, zone, lang, with_date=True)

    updates = incident.updates[:limit] if full else incident.updates[:1]
    view: dict[str, Any] = {
        "id": incident.id,
        "name": incident.name,
        "maintenance": maintenance,
        "tone": "maintenance" if maintenance else str(incident.impact),
        "status": t(f"page.{section}.{incident.status}", lang),
        "impact": t("page.impact", lang, impact=t(f"page.impact_name.{incident.impact}", lang)),
        "affected": t("page.affected", lang, components=", ".join(names)) if names else "",
        "started": t("page.started", lang, time=when(incident.started_at)),
        "resolved": (
            t("page.resolved_at", lang, time=when(incident.resolved_at))
            if incident.resolved_at and not incident.is_open
            else ""
        ),
        "window": "",
        "more": full and limit is not None and len(incident.updates) > limit,
        "updates": [
            {
                "status": t(f"page.{section}.{u.status}", lang),
                "body": u.body,
                "at": when(u.display_at),
                "iso": u.display_at.isoformat(),
            }
            for u in updates
        ],
    }
    if maintenance and incident.scheduled_for and incident.scheduled_until:
        view["window"] = t(
            "page.window",
            lang,
            start=when(incident.scheduled_for),
            end=when(incident.scheduled_until),
        )
    return view

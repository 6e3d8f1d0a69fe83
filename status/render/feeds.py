"""Pure: incident history → Atom and RSS bytes (feedgen).

Paths, each also published as `<path>?lang=id` and `<path>?lang=en` (the bare path is in the
site's language):

- `/history.atom|rss`: one entry per incident, notice or maintenance, newest posted first, with
  every update; the entry's `updated` moves when an update arrives. Statuspage's history feeds.
- `/updates.atom|rss`: one entry per update, newest first; an update is never rewritten, so
  its entry never changes (a correction is a new update, hence a new entry).
- `/components/<id>/history.atom|rss`: the history of one component or branch.
- `/regions/<slug>/history.atom|rss`: the history of one region's branches; the slug is the
  region name lowercased with each run of other characters turned into "-" ("Sumatera Utara"
  → `sumatera-utara`).

A notice that names no component is news for everyone, so it is in every feed. Entry ids are
URLs built from `site.public_url` and incident/update ids only, never from a status or a time;
links go to the permalink `/incidents/<id>` (with `?lang=` when not the site's language).

Dates are UTC; the text gives local times with WIB/WITA/WIT: in a branch's feed the branch's
zone, in a region's feed the region's (when its branches share one), elsewhere the zone of the
first branch the incident names, else the site's.
"""

from __future__ import annotations

import heapq
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from status.config import Config
from status.i18n import LANGUAGES, format_local, t
from status.model import Component, Incident, IncidentUpdate, State
from status.render.feed_xml import Entry, Head, render_feed
from status.vocabulary import Impact, IncidentKind

ATOM = "application/atom+xml; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"
# A feed is a window, not the archive (permalinks and /api/v2 are); Statuspage's history feeds
# carry only recent incidents too. We carry the 50 newest, like /api/v2/incidents.json, plus
# any older one still open; the state itself reaches back 90 days (status.store.HISTORY).
HISTORY_LIMIT = 50
# Enough that a reader polling every 15 minutes misses nothing even when every branch posts.
UPDATES_LIMIT = 100

# XML 1.0 forbids these code points; lxml refuses them, and one stray control character in a
# staff notice must not take every feed down.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class _Feed:
    stem: str  # "/history", "/components/kcu-medan/history"
    kind: str  # "history" | "updates"
    title_key: str
    values: Mapping[str, str]
    incidents: Sequence[Incident]
    zone: ZoneInfo | None  # the feed's own zone (a branch's, a region's); None = per incident
    since: datetime  # `updated` while the feed is empty


def region_slug(region: str) -> str:
    return _NOT_SLUG.sub("-", region.lower()).strip("-") or "region"


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _html(text: str) -> str:
    return html.escape(_clean(text)).replace("\n", "<br>")


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


class _Site:
    """What every entry of one state needs: URLs, names and zones."""

    def __init__(self, state: State, config: Config) -> None:
        self.config = config
        self.base = config.site.public_url.rstrip("/")
        self.name = _clean(config.site.name)
        self.zone = ZoneInfo(config.site.timezone)
        self.names = {c.id: c.name for c in state.components}
        self.branch_zones = {b.id: b.zone for b in config.branches}

    def query(self, lang: str) -> str:
        return "" if lang == self.config.site.language else f"?lang={lang}"

    def permalink(self, incident_id: str) -> str:
        return f"{self.base}/incidents/{incident_id}"

    def incident_zone(self, incident: Incident) -> ZoneInfo:
        """The zone of the first branch it names (components are only ever appended), else the site's."""
        for cid in incident.components:
            zone = self.branch_zones.get(cid)
            if zone is not None:
                return zone
        return self.zone


def _kind(incident: Incident) -> str:
    if incident.kind is IncidentKind.MAINTENANCE:
        return "maintenance"
    return "notice" if incident.impact is Impact.NONE else "incident"


def _status_label(kind: IncidentKind, status: str, lang: str) -> str:
    section = "maintenance" if kind is IncidentKind.MAINTENANCE else "incident"
    try:
        return t(f"feeds.{section}_status.{status}", lang)
    except KeyError:  # a status newer than this renderer: its word beats a broken feed
        return status


# Memoized: an update never changes, and each is shown in several feeds on every rebuild.
@lru_cache(maxsize=32768)
def _update_html(kind: IncidentKind, u: IncidentUpdate, zone: ZoneInfo, lang: str) -> str:
    at = format_local(u.display_at, zone, lang, with_date=True)
    label = html.escape(_status_label(kind, u.status, lang))
    return f"<p><small>{at}</small><br><strong>{label}</strong> - {_html(u.body)}</p>"


def _affected_html(names: Iterable[str], lang: str) -> str:
    listed = ", ".join(_html(n) for n in names)
    return f"<p>{t('feeds.affected', lang, components=listed)}</p>" if listed else ""


def _incident_entry(site: _Site, incident: Incident, zone: ZoneInfo, lang: str) -> Entry:
    parts = []
    if incident.scheduled_for is not None and incident.scheduled_until is not None:
        start = format_local(incident.scheduled_for, zone, lang, with_date=True)
        end = format_local(incident.scheduled_until, zone, lang, with_date=True)
        parts.append(f"<p>{t('feeds.window', lang, start=start, end=end)}</p>")
    parts.extend(_update_html(incident.kind, u, zone, lang) for u in incident.updates)
    parts.append(_affected_html((site.names.get(c, c) for c in incident.components), lang))
    updated = max((u.created_at for u in incident.updates), default=incident.updated_at)
    kind = _kind(incident)
    return Entry(
        id=site.permalink(incident.id),
        title=_clean(incident.name),
        link=site.permalink(incident.id) + site.query(lang),
        published=_utc(incident.created_at),
        updated=_utc(updated),
        content="".join(parts),
        category=kind,
        category_label=t(f"feeds.kind.{kind}", lang),
    )


def _update_entry(site: _Site, incident: Incident, u: IncidentUpdate, lang: str) -> Entry:
    """Built from the update alone (plus its incident's name), so it reads the same forever."""
    affected = (
        f"{a.name} ({t(f'component_status.{a.new_status}', lang)})" for a in u.affected_components
    )
    kind = _kind(incident)
    status = _status_label(incident.kind, u.status, lang)
    zone = site.incident_zone(incident)
    return Entry(
        id=f"{site.permalink(incident.id)}#update-{u.id}",
        title=_clean(t("feeds.update_title", lang, name=incident.name, status=status)),
        link=site.permalink(incident.id) + site.query(lang),
        published=_utc(u.created_at),
        updated=_utc(u.created_at),
        content=_update_html(incident.kind, u, zone, lang) + _affected_html(affected, lang),
        category=kind,
        category_label=t(f"feeds.kind.{kind}", lang),
    )


def _newest(incidents: Iterable[Incident]) -> list[Incident]:
    """Newest posted first: the newest HISTORY_LIMIT, then any older one still open."""
    ordered = sorted(incidents, key=lambda i: (i.created_at, i.id), reverse=True)
    return ordered[:HISTORY_LIMIT] + [i for i in ordered[HISTORY_LIMIT:] if i.is_open]


def _by_component(
    incidents: Sequence[Incident], components: Iterable[Component]
) -> dict[str, list[Incident]]:
    """Component id → the incidents that concern it, in `incidents` order.

    A notice that names no component concerns every reader, so it is everyone's.
    """
    out: dict[str, list[Incident]] = {c.id: [] for c in components}
    for incident in incidents:
        for cid in incident.components if incident.components else out:
            out.setdefault(cid, []).append(incident)
    return out


def _feeds(state: State, site: _Site) -> list[_Feed]:
    everything = [*state.incidents, *state.maintenances]
    since = min((c.created_at for c in state.components), default=state.last_change_at)
    name = {"site": site.name}
    feeds = [
        _Feed("/history", "history", "history", name, _newest(everything), None, since),
        _Feed("/updates", "updates", "updates", name, everything, None, since),
    ]
    concerning = _by_component(everything, state.components)
    for c in state.components:
        mine = concerning[c.id]
        values = {**name, "component": _clean(c.name)}
        zone = site.branch_zones.get(c.id)
        stem = f"/components/{c.id}/history"
        feeds.append(_Feed(stem, "history", "component", values, _newest(mine), zone, since))
    regions: dict[str, list[Component]] = {}
    for c in state.components:
        if c.kind == "branch":
            regions.setdefault(region_slug(c.group), []).append(c)
    for slug, members in regions.items():
        ids = {id(i) for c in members for i in concerning[c.id]}
        mine = [i for i in everything if id(i) in ids]
        zones = {site.branch_zones.get(c.id, site.zone).key for c in members}
        zone = ZoneInfo(zones.pop()) if len(zones) == 1 else None
        values = {**name, "region": _clean(members[0].group)}
        stem = f"/regions/{slug}/history"
        feeds.append(_Feed(stem, "history", "region", values, _newest(mine), zone, since))
    return feeds


def _entries(feed: _Feed, site: _Site, lang: str) -> list[Entry]:
    if feed.kind == "updates":
        pairs = ((i, u) for i in feed.incidents for u in i.updates)
        newest = heapq.nlargest(UPDATES_LIMIT, pairs, key=lambda p: (p[1].created_at, p[1].id))
        return [_update_entry(site, i, u, lang) for i, u in newest]
    return [
        _incident_entry(site, i, feed.zone or site.incident_zone(i), lang) for i in feed.incidents
    ]


def render_feeds(state: State, config: Config, _now: datetime) -> dict[str, tuple[bytes, str]]:
    """Every feed in both languages: path → (bytes, content type)."""
    site = _Site(state, config)
    out: dict[str, tuple[bytes, str]] = {}
    for feed in _feeds(state, site):
        for lang in LANGUAGES:
            entries = _entries(feed, site, lang)
            query = site.query(lang)
            head = Head(
                atom_url=f"{site.base}{feed.stem}.atom{query}",
                rss_url=f"{site.base}{feed.stem}.rss{query}",
                page_url=f"{site.base}/{query}",
                title=t(f"feeds.{feed.title_key}_title", lang, **feed.values),
                subtitle=t(f"feeds.{feed.title_key}_subtitle", lang, **feed.values),
                lang=lang,
                author=site.name,
                updated=_utc(max((e.updated for e in entries), default=feed.since)),
            )
            atom, rss = render_feed(head, entries)
            for suffix, body, content_type in ((".atom", atom, ATOM), (".rss", rss, RSS)):
                path = feed.stem + suffix
                out[f"{path}?lang={lang}"] = (body, content_type)
                if lang == config.site.language:
                    out[path] = (body, content_type)
    return out

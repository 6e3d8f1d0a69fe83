"""Pure Telegram HTML for channel posts: status line, notice, components, local time and link, within 4096.

A post reads (Bahasa Indonesia; English has the same shape):

    🔴 Investigasi · <b>Loket KCU Medan tutup</b>

    Sistem e-Meterai pusat tidak merespons.

    Terdampak:
    • KCU Medan: Gangguan total

    10.30 WIB · https://status.example.id/incidents/abc123def456

Every string that staff or config wrote is passed through `html.escape(…, quote=False)`
(nothing we build puts user text inside an attribute), and raw text is trimmed *before* it is
escaped, so an escape sequence is never cut in half. Telegram counts a message's length after
parsing the HTML (tags gone, entities decoded) and refuses more than 4096 characters
(https://core.telegram.org/bots/api#sendmessage); we count UTF-16 code units, the Bot API's
unit for every offset, which is never fewer than the code points Telegram's server counts.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from status.i18n import catalog, format_local, t
from status.model import Event

MAX_TEXT = 4096  # characters after entity parsing: https://core.telegram.org/bots/api#sendmessage
NAME_MAX = 200  # an incident name longer than the API allows (commands.NAME_MAX) is cut here
COMPONENT_NAME_MAX = 100
COMPONENTS_SHOWN = 10  # an incident may name a whole region (up to 1000 branches)
ELLIPSIS = "…"

# One code point each (no variation selectors), so every status line costs the same.
EMOJI = {
    "investigating": "🔴",
    "identified": "🟠",
    "monitoring": "🟡",
    "resolved": "✅",
    "postmortem": "📝",
    "scheduled": "📅",
    "in_progress": "🔧",
    "verifying": "🔎",
    "completed": "✅",
}
OTHER_EMOJI = "📢"
# Events whose post starts a thread in the channel: it is pinned, later ones reply to it.
FIRST_KINDS = frozenset({"incident.created", "maintenance.scheduled"})
# A branch folded into a running incident (status/automatic.py): news for whoever follows that
# branch but nothing the incident touched before; for them it starts the incident's thread.
AFFECTED = "incident.affected"
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True, slots=True)
class View:
    """How one channel reads: its language and which clock its times are shown on."""

    language: str
    site_zone: ZoneInfo
    zone: ZoneInfo | None = None  # fixed for the channel; None: chosen per event (zone_for)
    branch_zones: Mapping[str, ZoneInfo] | None = None  # branch id → its zone


@dataclass(frozen=True, slots=True)
class Post:
    """What one post says, before it becomes HTML."""

    maintenance: bool
    status: str
    name: str
    body: str
    at: datetime
    link: str = ""
    components: tuple[tuple[str, str], ...] = ()  # (name, component status), in incident order
    window: tuple[datetime, datetime] | None = None  # a maintenance's scheduled_for/until


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, the Bot API's unit for text lengths and offsets."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def plain_length(telegram_html: str) -> int:
    """What Telegram counts for our HTML: tags removed, entities decoded (we only write <b>)."""
    return utf16_length(html.unescape(_TAG.sub("", telegram_html)))


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-16 units, ending "…" at a word boundary when one is near."""
    if utf16_length(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ""
    kept: list[str] = []
    used = 0
    for ch in text:  # whole code points, so a surrogate pair is never split
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit - len(ELLIPSIS):
            break
        kept.append(ch)
    cut = "".join(kept)
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space > 0 and len(cut) - space <= 40:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def one_line(text: str) -> str:
    """Names sit on one line: a newline in staff text must not split the status line."""
    return " ".join(text.split())


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def zone_for(view: View, component_ids: Iterable[str]) -> ZoneInfo:
    """The channel's zone; else the zone every branch in the event shares; else the site's."""
    if view.zone is not None:
        return view.zone
    zones = {(view.branch_zones or {}).get(c) for c in component_ids}
    if len(zones) == 1 and (zone := zones.pop()) is not None:
        return zone
    return view.site_zone


def word(key: str, lang: str, fallback: str) -> str:
    """The locale's word, or `fallback` for a value we have no word for (never a KeyError)."""
    return t(key, lang) if key in catalog("id") else fallback


def status_word(status: str, *, maintenance: bool, lang: str) -> str:
    kind = "maintenance" if maintenance else "incident"
    return word(f"telegram.{kind}_status.{status}", lang, status)


def render_post(post: Post, lang: str, zone: ZoneInfo) -> str:
    """Telegram HTML for one post; the notice is trimmed so the whole fits MAX_TEXT."""
    headline = status_word(post.status, maintenance=post.maintenance, lang=lang)
    name = clip(one_line(post.name), NAME_MAX)
    title = f"{EMOJI.get(post.status, OTHER_EMOJI)} {escape(headline)} · <b>{escape(name)}</b>"
    footer = format_local(post.at, zone, lang)
    if post.link:
        footer += f" · {escape(post.link)}"
    tail: list[str] = []
    if post.window is not None:
        start, end = (format_local(at, zone, lang, with_date=True) for at in post.window)
        tail += ["", escape(t("telegram.window", lang, start=start, end=end))]
    if post.components:
        tail += ["", escape(t("telegram.affected", lang))]
        for component, status in post.components[:COMPONENTS_SHOWN]:
            shown = clip(one_line(component), COMPONENT_NAME_MAX)
            said = word(f"component_status.{status}", lang, status)
            tail.append(f"• {escape(shown)}: {escape(said)}")
        if len(post.components) > COMPONENTS_SHOWN:
            more = len(post.components) - COMPONENTS_SHOWN
            tail.append(escape(t("telegram.more_components", lang, count=more)))
    tail += ["", footer]

    def build(body: str) -> str:
        return "\n".join([title, *(["", escape(body)] if body else []), *tail])

    body = post.body.strip()
    room = MAX_TEXT - (plain_length(build("x")) - 1)
    return build(clip(body, room).strip())


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _components(
    update: Mapping[str, Any], incident: Mapping[str, Any], changes: Iterable[Mapping[str, Any]]
) -> tuple[tuple[str, str], ...]:
    """The update's affected components; else the incident's own list; else the event's changes."""
    affected = update.get("affected_components") or []
    if affected:
        return tuple((str(a.get("name", "")), str(a.get("new_status", ""))) for a in affected)
    listed = incident.get("components") or []
    if listed:
        return tuple((str(c.get("name", "")), str(c.get("status", ""))) for c in listed)
    return tuple((str(c.get("name", "")), str(c.get("new_status", ""))) for c in changes)


def _window(incident: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    start, end = (
        _parse_time(incident.get("scheduled_for")),
        _parse_time(incident.get("scheduled_until")),
    )
    return (start, end) if start is not None and end is not None else None


def newly_affected(event: Event) -> tuple[str, ...]:
    """The components an incident.affected event brings into the incident (now not operational);
    () for any other event, and for a branch that recovered inside the incident."""
    if event.kind != AFFECTED:
        return ()
    changes = event.payload.get("component_changes") or []
    return tuple(
        str(c["id"])
        for c in changes
        if isinstance(c, Mapping) and c.get("id") and c.get("new_status") != "operational"
    )


def touched_before(event: Event) -> tuple[str, ...]:
    """What an incident.affected event's incident touched before the newly affected joined it."""
    new = set(newly_affected(event))
    return tuple(c for c in event.component_ids if c not in new)


def posts(event: Event) -> tuple[Post, Post | None]:
    """(this event's post, the thread's first post as it should read now or None for a first event).

    The first post is rebuilt from the incident's oldest update, so it reads as it did when it
    was sent, except that its status line shows the incident's current status.
    """
    incident: Mapping[str, Any] = event.payload.get("incident") or {}
    updates: list[Mapping[str, Any]] = list(incident.get("incident_updates") or [])
    newest, oldest = (updates[0], updates[-1]) if updates else ({}, {})
    maintenance = event.kind.startswith("maintenance.")
    current = str(incident.get("status") or newest.get("status") or "")
    common: dict[str, Any] = {
        "maintenance": maintenance,
        "name": str(incident.get("name") or ""),
        "link": str(incident.get("shortlink") or ""),
        "window": _window(incident) if maintenance else None,
    }
    changes = event.payload.get("component_changes") or []
    post = Post(
        status=str(newest.get("status") or current),
        body=str(newest.get("body") or ""),
        at=event.created_at,
        components=_components(newest, incident, changes),
        **common,
    )
    if event.kind in FIRST_KINDS:
        return post, None
    if event.kind == AFFECTED:
        # A first post for its readers: what the incident says now, and who just joined it.
        new = set(newly_affected(event))
        joined = tuple(
            (str(c.get("name", "")), str(c.get("new_status", "")))
            for c in changes
            if c.get("id") in new
        )
        return replace(post, status=current or post.status, components=joined), None
    started = (
        _parse_time(oldest.get("created_at"))
        or _parse_time(incident.get("created_at"))
        or event.created_at
    )
    head = Post(
        status=current,
        body=str(oldest.get("body") or ""),
        at=started,
        components=_components(oldest, incident, ()),
        **common,
    )
    return post, head


def closes(event: Event) -> bool:
    """Whether this event ends the incident or maintenance (its first post is unpinned)."""
    incident = event.payload.get("incident") or {}
    if event.kind == "incident.resolved":
        return True
    return event.kind == "maintenance.updated" and incident.get("status") == "completed"


@dataclass(frozen=True, slots=True)
class Envelope:
    """A delivery body: what deliver() does, decided at render time and kept in the log.

    JSON: {"post": HTML of the new message, "head": HTML the thread's first post should now
    show (null for a first event), "pin": pin the new message, "unpin": unpin the first post}.
    """

    post: str
    head: str | None
    pin: bool
    unpin: bool

    def dumps(self) -> str:
        doc = {"post": self.post, "head": self.head, "pin": self.pin, "unpin": self.unpin}
        return json.dumps(doc, ensure_ascii=False)

    @classmethod
    def loads(cls, body: str) -> Envelope:
        """Raises ValueError when `body` is not an envelope."""
        try:
            doc: Any = json.loads(body)
            head = doc.get("head")
            if not isinstance(doc["post"], str) or not isinstance(head, str | None):
                raise TypeError("post and head are strings")
            return cls(doc["post"], head, doc.get("pin") is True, doc.get("unpin") is True)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a Telegram envelope: {exc!r}") from None


def render_body(event: Event, view: View) -> str:
    """The delivery body for one event in one channel: an Envelope as JSON."""
    zone = zone_for(view, newly_affected(event) or event.component_ids)
    post, head = posts(event)
    return Envelope(
        post=render_post(post, view.language, zone),
        head=render_post(head, view.language, zone) if head is not None else None,
        pin=head is None,
        unpin=closes(event),
    ).dumps()

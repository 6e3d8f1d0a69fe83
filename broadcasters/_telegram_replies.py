"""Pure Telegram HTML for the bot's replies (/status, /antrean, confirmations) and what can be followed.

Replies are built from the snapshot's public JSON and the config, never from the database.
Locale wording and every value (staff text, config names, what a person typed) are escaped
with html.escape; raw text is trimmed before it is escaped, and a reply never exceeds
Telegram's 4096 characters (https://core.telegram.org/bots/api#sendmessage).
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from broadcasters import _subscribers as store
from broadcasters._telegram_text import MAX_TEXT, clip, one_line, plain_length, status_word
from status.config import Config
from status.i18n import format_local, t
from status.render.branches import holiday_label

CODE_MAX = 60  # bytes of a follow sent as is in button data ("s:" + 60 < 64)
LISTED = 15  # components or incidents named in one /status reply
NAME_MAX = 80
UPSTREAM_WORDS = frozenset({"upstream", "layanan", "layanan e-meterai", "e-meterai", "emeterai"})


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def say(key: str, lang: str, **values: str) -> str:
    """The locale's text as Telegram HTML: the wording and every value escaped."""
    return escape(t(key, lang)).format(**{k: escape(v) for k, v in values.items()})


def word(key: str, lang: str, fallback: str) -> str:
    try:
        return t(key, lang)
    except KeyError:  # a status the locales have no word for yet
        return fallback


def code_of(follow: str) -> str:
    raw = follow.encode()
    if len(raw) <= CODE_MAX and not follow.startswith("#"):
        return follow
    return "#" + hashlib.blake2b(raw, digest_size=8).hexdigest()


def decode(code: str, candidates: Sequence[str]) -> str | None:
    return next((c for c in candidates if code_of(c) == code), None)


def fit(lines: list[str], tail: list[str]) -> str:
    """`lines` + `tail` joined; lines dropped from the end until Telegram's 4096 fits."""
    while lines and plain_length("\n".join([*lines, *tail])) > MAX_TEXT:
        lines = lines[:-1]
    return "\n".join([*lines, *tail])


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _name(value: object) -> str:
    return escape(clip(one_line(str(value or "")), NAME_MAX))


def status_text(summary: Mapping[str, Any], lang: str) -> str:
    """/status from /api/v2/summary.json: the indicator, what is not operational, open incidents."""
    components = [c for c in summary.get("components") or [] if not c.get("group")]
    indicator = str((summary.get("status") or {}).get("indicator") or "none")
    if indicator == "none" and any(c.get("status") == "under_maintenance" for c in components):
        indicator = "maintenance"
    said = word(f"indicator.{indicator}", lang, indicator)
    lines = [f"<b>{say('bot.status_now', lang, indicator=said)}</b>"]
    troubled = [c for c in components if c.get("status") != "operational"]
    if troubled:
        lines += ["", say("bot.status_components", lang)]
        for c in troubled[:LISTED]:
            status = str(c.get("status"))
            lines.append(
                f"• {_name(c.get('name'))}: {escape(word(f'component_status.{status}', lang, status))}"
            )
        if len(troubled) > LISTED:
            lines.append(escape(t("telegram.more_components", lang, count=len(troubled) - LISTED)))
    for key, items, maintenance in (
        ("bot.status_incidents", summary.get("incidents") or [], False),
        ("bot.status_maintenances", summary.get("scheduled_maintenances") or [], True),
    ):
        if not items:
            continue
        lines += ["", say(key, lang)]
        for item in items[:LISTED]:
            status = status_word(str(item.get("status")), maintenance=maintenance, lang=lang)
            lines.append(f"• <b>{_name(item.get('name'))}</b> — {escape(status)}")
    url = str((summary.get("page") or {}).get("url") or "")
    return fit(lines, ["", say("bot.status_more", lang, url=url)] if url else [])


def open_label(branch: Mapping[str, Any], lang: str, now: datetime) -> str:
    """branch.open_until & co. in the reader's language, from the branch's JSON."""
    zone = ZoneInfo(str(branch.get("timezone") or "Asia/Jakarta"))
    changes = _time(branch.get("changes_at"))
    if changes is None:
        return t("branch.always_open", lang)
    if branch.get("open"):
        return t("branch.open_until", lang, time=format_local(changes, zone, lang))
    if branch.get("holiday"):
        holiday = holiday_label(now.astimezone(zone).date(), lang) or str(branch["holiday"])
        return t("branch.closed_holiday", lang, holiday=holiday)
    return t("branch.closed_until", lang, time=format_local(changes, zone, lang, with_date=True))


def queue_text(branch: Mapping[str, Any], lang: str, now: datetime) -> str:
    """/antrean from one entry of /api/v1/branches."""
    zone = ZoneInfo(str(branch.get("timezone") or "Asia/Jakarta"))
    lines = [f"<b>{_name(branch.get('name'))}</b> · {_name(branch.get('region'))}"]
    lines.append(escape(open_label(branch, lang, now)))
    status = str(branch.get("status") or "operational")
    if status != "operational":
        lines.append(escape(word(f"component_status.{status}", lang, status)))
    queue = branch.get("queue")
    if not isinstance(queue, Mapping):
        lines.append(say("bot.queue_none", lang))
        return "\n".join(lines)
    for key, field, name in (
        ("bot.queue_serving", "serving", "serving"),
        ("bot.queue_length", "length", "length"),
        ("bot.queue_wait", "estimated_wait_minutes", "minutes"),
    ):
        value = queue.get(field)
        if isinstance(value, int) and not isinstance(value, bool):
            lines.append(say(key, lang, **{name: str(value)}))
    moved = _time(queue.get("last_move_at"))
    if queue.get("stalled") and moved is not None:
        lines.append(say("bot.queue_stalled", lang, time=format_local(moved, zone, lang)))
    read = _time(queue.get("read_at"))
    if read is not None:
        lines.append(say("bot.queue_read_at", lang, time=format_local(read, zone, lang)))
    return "\n".join(lines)


class Places:
    """What can be followed, from the config: branches, regions, upstream components."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.regions = list(dict.fromkeys(b.region for b in config.branches))

    def everything(self) -> list[str]:
        found = [b.id for b in self.config.branches] + [f"region:{r}" for r in self.regions]
        found += [c.id for c in self.config.components]
        return [*found, store.UPSTREAM] if self.config.components else found

    def resolve(self, text: str) -> str | None:
        """A branch id or name, a component, a region or "layanan"; None when nothing matches."""
        wanted = " ".join(text.split()).casefold()
        if not wanted:
            return None
        if wanted in UPSTREAM_WORDS and self.config.components:
            return store.UPSTREAM
        named = [(b.id, b.name) for b in self.config.branches]
        named += [(c.id, c.name) for c in self.config.components]
        for item_id, name in named:
            if wanted in (item_id, name.casefold()):
                return item_id
        region = wanted.removeprefix("region:").strip()
        found = next((r for r in self.regions if r.casefold() == region), None)
        if found is not None and len(f"region:{found}") <= store.FOLLOW_MAX:
            return f"region:{found}"
        return None

    def label(self, follow: str, lang: str) -> str:
        if follow == store.UPSTREAM:
            return t("bot.upstream_label", lang)
        if follow.startswith("region:"):
            return t("bot.region_label", lang, region=follow[7:])
        named = {b.id: b.name for b in self.config.branches}
        named |= {c.id: c.name for c in self.config.components}
        return named.get(follow, follow)

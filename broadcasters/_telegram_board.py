"""Pure Telegram HTML for a channel's live status board: everything it follows, now, within 4096.

The board reads (Bahasa Indonesia; English has the same shape):

    📋 <b>Status e-Meterai</b>
    🔴 Gangguan besar

    <b>Layanan e-Meterai</b>
    🔴 Pembelian e-Meterai: Gangguan total
    🟢 Pembubuhan e-Meterai: Normal

    <b>Sumatera Utara</b>
    🟢 KCU Medan · Buka sampai 16.00 WIB · antrean 37 · ±25 mnt
    ⚠️ KCU Binjai · Buka sampai 16.00 WIB · antrean 80 · macet sejak 09.40 WIB
    🌙 KCU Sibolga · Tutup, buka lagi Selasa 24-11-2026 07.30 WIB

    Diperbarui 10.30 WIB · https://status.example.id

Upstream services come first, grouped as in config; branches follow, grouped by region, each
with its own zone's times (WIB/WITA/WIT). A closed branch is closed, not down. Every name
comes from config and is escaped. When everything does not fit in one message, entries are
dropped from the end and counted ("…dan 12 lainnya"); the header and footer always stay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from broadcasters._telegram_text import (
    COMPONENT_NAME_MAX,
    MAX_TEXT,
    clip,
    escape,
    one_line,
    plain_length,
    word,
)
from status.config import BranchConfig, ComponentConfig, Config
from status.hours import open_state
from status.i18n import format_local, t
from status.model import Component, State
from status.render.branches import holiday_label
from status.rules import page_indicator
from status.vocabulary import ComponentStatus

# One code point each, so every line costs the same whatever the status.
STATUS_EMOJI = {
    "operational": "🟢",
    "under_maintenance": "🔧",
    "degraded_performance": "🟡",
    "partial_outage": "🟠",
    "major_outage": "🔴",
}
INDICATOR_EMOJI = {
    "none": "🟢",
    "minor": "🟡",
    "major": "🟠",
    "critical": "🔴",
    "maintenance": "🔧",
}
CLOSED_EMOJI = "🌙"
STALLED_EMOJI = "⚠️"
TITLE_EMOJI = "📋"
SEPARATOR = " · "


@dataclass(frozen=True, slots=True)
class Board:
    """The board's text in two parts: what it shows, and when that last changed.

    The keeper compares `body` alone: a board whose content did not change is not edited just
    because the clock moved.
    """

    body: str
    footer: str

    @property
    def text(self) -> str:
        return f"{self.body}\n\n{self.footer}"


def followed(
    config: Config, filters: Sequence[str]
) -> tuple[tuple[ComponentConfig, ...], tuple[BranchConfig, ...]]:
    """(upstream services, branches) a channel with `filters` follows, in config order."""
    every = "*" in filters
    regions = {f[7:] for f in filters if f.startswith("region:")}
    ids = set(filters)
    services = tuple(c for c in config.components if every or c.id in ids)
    branches = tuple(b for b in config.branches if every or b.id in ids or b.region in regions)
    return services, branches


def next_change(config: Config, filters: Sequence[str], now: datetime) -> datetime | None:
    """The next moment a followed branch opens or closes: the board changes then, with no event."""
    _services, branches = followed(config, filters)
    times = [open_state(b.opening_hours, b.zone, now).until for b in branches]
    return min((at for at in times if at is not None), default=None)


def _status(components: Mapping[str, Component], component_id: str) -> str:
    found = components.get(component_id)
    return str(found.status) if found is not None else "operational"


def _name(text: str) -> str:
    return escape(clip(one_line(text), COMPONENT_NAME_MAX))


def _headline(state: State, ids: set[str], statuses: Iterable[str], lang: str) -> str:
    values = {s.value for s in ComponentStatus}
    known = [ComponentStatus(s) for s in statuses if s in values]
    impacts = [
        i.impact
        for i in state.incidents
        if i.is_open and (not i.components or ids & set(i.components))
    ]
    indicator = str(page_indicator(known, impacts))
    if indicator == "none" and ComponentStatus.UNDER_MAINTENANCE in known:
        indicator = "maintenance"
    return f"{INDICATOR_EMOJI[indicator]} {escape(t(f'indicator.{indicator}', lang))}"


def _service_line(service: ComponentConfig, status: str, lang: str) -> str:
    said = word(f"component_status.{status}", lang, status)
    return f"{STATUS_EMOJI.get(status, '❔')} {_name(service.name)}: {escape(said)}"


def _branch_line(
    branch: BranchConfig, status: str, queue: Mapping[str, Any] | None, now: datetime, lang: str
) -> str:
    zone = branch.zone
    hours = open_state(branch.opening_hours, zone, now)
    parts: list[str] = []
    if hours.until is None:
        parts.append(t("branch.always_open", lang))
    elif hours.is_open:
        parts.append(t("branch.open_until", lang, time=format_local(hours.until, zone, lang)))
    elif hours.holiday:
        holiday = holiday_label(now.astimezone(zone).date(), lang) or hours.holiday
        parts.append(t("branch.closed_holiday", lang, holiday=one_line(holiday)))
    else:
        until = format_local(hours.until, zone, lang, with_date=True)
        parts.append(t("branch.closed_until", lang, time=until))
    stalled = False
    # A closed branch's queue is yesterday's news; the board shows it only while open.
    if hours.is_open and queue is not None and queue.get("read_at") is not None:
        length = queue.get("length")
        if length is not None:
            parts.append(t("telegram_board.queue", lang, length=length))
        wait = queue.get("estimated_wait_s")
        stalled = bool(queue.get("stalled"))
        moved = queue.get("last_move_at")
        if stalled and isinstance(moved, datetime):
            parts.append(
                t("telegram_board.stalled_since", lang, time=format_local(moved, zone, lang))
            )
        elif stalled:
            parts.append(t("telegram_board.stalled", lang))
        elif wait is not None and length:
            parts.append(t("telegram_board.wait", lang, minutes=-(-int(wait) // 60)))
    if status != "operational":
        emoji = STATUS_EMOJI.get(status, "❔")
        said = word(f"component_status.{status}", lang, status)
        head = f"{emoji} {_name(branch.name)}: {escape(said)}"
    else:
        emoji = STALLED_EMOJI if stalled else ("🟢" if hours.is_open else CLOSED_EMOJI)
        head = f"{emoji} {_name(branch.name)}"
    return SEPARATOR.join([head, *(escape(p) for p in parts)])


def render_board(
    state: State,
    config: Config,
    filters: Sequence[str],
    now: datetime,
    lang: str,
    zone: ZoneInfo,
    *,
    changed_at: datetime | None = None,
) -> Board:
    """The board for a channel following `filters`; `changed_at` (default `now`) is its footer time."""
    components = {c.id: c for c in state.components}
    services, branches = followed(config, filters)
    ids = {s.id for s in services} | {b.id for b in branches}
    statuses = [_status(components, i) for i in sorted(ids)]
    header = [
        f"{TITLE_EMOJI} <b>{escape(one_line(config.site.name))}</b>",
        _headline(state, ids, statuses, lang),
    ]
    # (heading, line) in reading order; a heading is printed before its group's first line.
    entries: list[tuple[str, str]] = []
    for service in services:
        group = service.group or t("telegram_board.services", lang)
        status = _status(components, service.id)
        entries.append((group, _service_line(service, status, lang)))
    regions: dict[str, list[BranchConfig]] = {}
    for branch in branches:
        regions.setdefault(branch.region, []).append(branch)
    for region, members in regions.items():
        for branch in members:
            status = _status(components, branch.id)
            line = _branch_line(branch, status, state.queues.get(branch.id), now, lang)
            entries.append((region, line))
    footer = escape(
        t("telegram_board.updated", lang, time=format_local(changed_at or now, zone, lang))
    )
    if config.site.public_url:
        footer += SEPARATOR + escape(config.site.public_url)
    if not entries:
        return Board("\n".join([*header, "", escape(t("telegram_board.nothing", lang))]), footer)
    return Board(_fit(header, entries, footer, lang), footer)


def _fit(header: list[str], entries: list[tuple[str, str]], footer: str, lang: str) -> str:
    """Header, then as many entries as fit with the footer in MAX_TEXT, then "…and N more"."""
    # The widest "more" line we could need, kept free until we know it is not needed.
    reserve = plain_length(t("telegram_board.more", lang, count=len(entries))) + 2
    used = plain_length("\n".join(header)) + 2 + plain_length(footer)
    lines: list[str] = []
    heading: str | None = None
    total = sum(
        plain_length(line) + 1 + (plain_length(h) + 2 if i == 0 or entries[i - 1][0] != h else 0)
        for i, (h, line) in enumerate(entries)
    )
    fits_all = used + total <= MAX_TEXT
    shown = 0
    for group, line in entries:
        cost = plain_length(line) + 1
        block = []
        if group != heading:
            block = ["", f"<b>{escape(one_line(group))}</b>"]
            cost += plain_length(block[1]) + 2
        if not fits_all and used + cost > MAX_TEXT - reserve:
            break
        lines += [*block, line]
        heading, used, shown = group, used + cost, shown + 1
    if shown < len(entries):
        lines += ["", escape(t("telegram_board.more", lang, count=len(entries) - shown))]
    return "\n".join([*header, *lines])

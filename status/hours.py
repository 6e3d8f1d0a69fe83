"""Pure: is a branch open at t, next opening, zone abbreviation (WIB/WITA/WIT).

Opening hours are written as in PRODUCT.md: "Mon-Fri 07:30-16:00; Sat 08:00-12:00". With
hours set, Indonesian public holidays count as closed; without hours a branch is open around
the clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_SPAN = re.compile(r"^(\w{3})(?:-(\w{3}))?\s+(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_ABBREVIATIONS = {
    "Asia/Jakarta": "WIB",
    "Asia/Pontianak": "WIB",
    "Asia/Makassar": "WITA",
    "Asia/Jayapura": "WIT",
}


@dataclass(frozen=True, slots=True)
class Span:
    weekday: int  # Monday = 0
    opens: time
    closes: time


@dataclass(frozen=True, slots=True)
class Hours:
    """Weekly opening spans in the branch's own zone; empty = open around the clock."""

    spans: tuple[Span, ...] = ()
    text: str = ""

    @property
    def always_open(self) -> bool:
        return not self.spans


def parse_hours(text: str | None) -> Hours:
    """Parse "Mon-Fri 07:30-16:00; Sat 08:00-12:00"; raises ValueError naming the bad part."""
    if text is None or not text.strip():
        return Hours()
    spans: list[Span] = []
    for raw in text.split(";"):
        part = " ".join(raw.split())
        match = _SPAN.match(part)
        if not match:
            raise ValueError(
                f'expected hours like "Mon-Fri 07:30-16:00; Sat 08:00-12:00", got "{part}"'
            )
        first, last, oh, om, ch, cm = match.groups()
        if first not in DAYS or (last is not None and last not in DAYS):
            raise ValueError(f'unknown day in "{part}"; days are {", ".join(DAYS)}')
        try:
            opens, closes = time(int(oh), int(om)), time(int(ch), int(cm))
        except ValueError:
            raise ValueError(f'impossible time in "{part}"') from None
        if closes <= opens:
            raise ValueError(f'closing time must be after opening time in "{part}"')
        start = DAYS.index(first)
        end = DAYS.index(last) if last else start
        if end < start:
            raise ValueError(f'day range runs backwards in "{part}"')
        spans.extend(Span(day, opens, closes) for day in range(start, end + 1))
    return Hours(tuple(spans), text.strip())


@lru_cache(maxsize=64)
def _holidays(year: int) -> Mapping[date, str]:
    calendar: Mapping[date, str] = holidays.country_holidays("ID", years=year)
    return calendar


def holiday_name(day: date) -> str | None:
    """The Indonesian public holiday on `day`, or None."""
    return _holidays(day.year).get(day)


@dataclass(frozen=True, slots=True)
class OpenState:
    is_open: bool
    until: datetime | None  # when this state next changes (UTC); None = never (always open)
    holiday: str | None = None


def open_state(hours: Hours, zone: ZoneInfo, at: datetime) -> OpenState:
    """Whether a branch with `hours` in `zone` is open at `at`, and until when."""
    if hours.always_open:
        return OpenState(True, None)
    local = at.astimezone(zone)
    holiday = holiday_name(local.date())
    current = None if holiday else _span_at(hours, local)
    if current is not None:
        closes = datetime.combine(local.date(), current.closes, zone)
        return OpenState(True, closes.astimezone(UTC))
    return OpenState(False, next_opening(hours, zone, at), holiday)


def _span_at(hours: Hours, local: datetime) -> Span | None:
    for span in hours.spans:
        if span.weekday == local.weekday() and span.opens <= local.time() < span.closes:
            return span
    return None


def next_opening(hours: Hours, zone: ZoneInfo, at: datetime) -> datetime | None:
    """The next opening after `at`, skipping public holidays; None if there is none within a year."""
    local = at.astimezone(zone)
    for offset in range(0, 370):
        day = local.date() + timedelta(days=offset)
        if holiday_name(day):
            continue
        for span in sorted(
            (s for s in hours.spans if s.weekday == day.weekday()), key=lambda s: s.opens
        ):
            opens = datetime.combine(day, span.opens, zone)
            if opens > local:
                return opens.astimezone(UTC)
    return None


def zone_abbreviation(zone: ZoneInfo, at: datetime) -> str:
    """WIB, WITA or WIT for Indonesian zones; tzdata's own abbreviation elsewhere."""
    known = _ABBREVIATIONS.get(zone.key)
    return known or at.astimezone(zone).strftime("%Z")

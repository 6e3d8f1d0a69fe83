"""Opening hours: closed is closed (and until when), holidays included, in the branch's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from status.hours import next_opening, open_state, parse_hours, zone_abbreviation

MEDAN = parse_hours("Mon-Fri 07:30-16:00; Sat 08:00-12:00")
WIB = ZoneInfo("Asia/Jakarta")


def wib(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=WIB)


@pytest.mark.parametrize(
    ("at", "is_open", "until"),
    [
        (wib(23, 10), True, wib(23, 16)),  # Monday morning
        (wib(23, 7, 29), False, wib(23, 7, 30)),  # a minute before opening
        (wib(23, 16), False, wib(24, 7, 30)),  # closing time is closed
        (wib(28, 11, 59), True, wib(28, 12)),  # Saturday's short day
        (wib(29, 10), False, wib(30, 7, 30)),  # Sunday
        (wib(17, 10, month=8), False, wib(18, 7, 30, month=8)),  # Independence Day, a Monday
    ],
)
def test_a_branch_is_open_only_in_its_hours_and_never_on_a_public_holiday(
    at: datetime, is_open: bool, until: datetime
) -> None:
    state = open_state(MEDAN, WIB, at)
    assert (state.is_open, state.until) == (is_open, until.astimezone(UTC))


def test_a_holiday_is_named() -> None:
    assert open_state(MEDAN, WIB, wib(17, 10, month=8)).holiday == "Independence Day"


def test_no_hours_means_open_around_the_clock_even_on_holidays() -> None:
    state = open_state(parse_hours(""), WIB, wib(17, 3, month=8))
    assert (state.is_open, state.until) == (True, None)


def test_the_next_opening_skips_a_long_holiday_weekend() -> None:
    # Christmas Day 2026 is a Friday; the branch reopens on Saturday morning.
    assert next_opening(MEDAN, WIB, wib(24, 17, month=12)) == wib(26, 8, month=12).astimezone(UTC)


@pytest.mark.parametrize(
    ("zone", "abbreviation"),
    [
        ("Asia/Jakarta", "WIB"),
        ("Asia/Pontianak", "WIB"),
        ("Asia/Makassar", "WITA"),
        ("Asia/Jayapura", "WIT"),
        ("Europe/Amsterdam", "CET"),
    ],
)
def test_indonesian_zones_have_their_own_abbreviations(zone: str, abbreviation: str) -> None:
    assert zone_abbreviation(ZoneInfo(zone), datetime(2026, 11, 23, tzinfo=UTC)) == abbreviation


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Mon-Fri 7:30-16:00", "expected hours like"),
        ("Mon-Fry 07:30-16:00", "unknown day"),
        ("Fri-Mon 07:30-16:00", "runs backwards"),
        ("Mon 16:00-07:30", "closing time must be after"),
        ("Mon 25:00-26:00", "impossible time"),
    ],
)
def test_bad_hours_are_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_hours(text)

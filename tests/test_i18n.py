"""Words and times: both languages complete, times local with WIB/WITA/WIT."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from status.i18n import catalog, format_local, pick_language, t


def test_both_languages_have_exactly_the_same_keys() -> None:
    assert set(catalog("id")) == set(catalog("en"))


def test_bahasa_indonesia_is_the_default_and_english_is_available() -> None:
    assert t("indicator.none", "id") == "Semua layanan berjalan normal"
    assert t("indicator.none", "en") == "All Systems Operational"
    assert t("indicator.none", "jv") == "Semua layanan berjalan normal"


@pytest.mark.parametrize(
    ("zone", "lang", "expected"),
    [
        ("Asia/Jakarta", "id", "10.30 WIB"),
        ("Asia/Makassar", "id", "11.30 WITA"),
        ("Asia/Jayapura", "id", "12.30 WIT"),
        ("Asia/Makassar", "en", "11:30 WITA"),
    ],
)
def test_times_are_local_with_the_zone_abbreviation(zone: str, lang: str, expected: str) -> None:
    assert format_local(datetime(2026, 11, 23, 3, 30, tzinfo=UTC), ZoneInfo(zone), lang) == expected


def test_dates_name_the_weekday_in_the_readers_language() -> None:
    at = datetime(2026, 11, 24, 0, 30, tzinfo=UTC)
    assert (
        format_local(at, ZoneInfo("Asia/Jakarta"), "id", with_date=True)
        == "Selasa 24-11-2026 07.30 WIB"
    )
    assert (
        format_local(at, ZoneInfo("Asia/Jakarta"), "en", with_date=True)
        == "Tuesday 2026-11-24 07:30 WIB"
    )


@pytest.mark.parametrize(
    ("query", "header", "expected"),
    [
        (None, None, "id"),
        ("en", None, "en"),
        (None, "en-US,en;q=0.9", "en"),
        ("id", "en-US", "id"),
        ("fr", "fr-FR,de", "id"),
    ],
)
def test_the_language_comes_from_the_query_then_the_browser_then_the_site(
    query: str | None, header: str | None, expected: str
) -> None:
    assert pick_language(query, header, "id") == expected

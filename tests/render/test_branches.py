"""Tests for status/render/branches.py: the /api/v1/branches document, open or closed, in local time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from status.config import BranchConfig, Config, Site
from status.model import Component, State
from status.render.branches import build_branch, build_branches, next_change
from status.vocabulary import ComponentStatus

HOURS = "Mon-Fri 07:30-16:00; Sat 08:00-12:00"
HOSTILE = "<b>&\"'"

KCU_MEDAN = BranchConfig(
    id="kcu-medan",
    name=f"KCU Medan {HOSTILE}",
    region="Sumatera Utara",
    timezone="Asia/Jakarta",
    hours=HOURS,
)
KCU_DENPASAR = BranchConfig(
    id="kcu-denpasar",
    name="KCU Denpasar",
    region="Bali",
    timezone="Asia/Makassar",
    hours="Mon-Fri 07:30-16:00",
)
KCU_JAYAPURA = BranchConfig(
    id="kcu-jayapura",
    name="KCU Jayapura",
    region="Papua",
    timezone="Asia/Jayapura",
    hours="Mon-Fri 08:00-15:00",
)
KC_ABEPURA = BranchConfig(
    id="kc-abepura", name="KC Abepura", region="Papua", timezone="Asia/Jayapura"
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("branch", "now", "lang", "expected"),
    [
        pytest.param(
            KCU_MEDAN,
            utc(2026, 11, 23, 3, 0),  # Monday 10:00 WIB
            "id",
            {
                "zone": "WIB",
                "open": True,
                "open_label": "Buka sampai 16.00 WIB",
                "changes_at": "2026-11-23T09:00:00.000Z",
                "holiday": None,
            },
            id="wib-branch-open-on-monday-morning",
        ),
        pytest.param(
            KCU_MEDAN,
            utc(2026, 11, 23, 10, 0),  # Monday 17:00 WIB
            "id",
            {
                "zone": "WIB",
                "open": False,
                "open_label": "Tutup, buka lagi Selasa 24-11-2026 07.30 WIB",
                "changes_at": "2026-11-24T00:30:00.000Z",
                "holiday": None,
            },
            id="wib-branch-closed-after-hours-opens-tuesday",
        ),
        pytest.param(
            KCU_MEDAN,
            utc(2026, 11, 28, 4, 0),  # Saturday 11:00 WIB
            "id",
            {
                "zone": "WIB",
                "open": True,
                "open_label": "Buka sampai 12.00 WIB",
                "changes_at": "2026-11-28T05:00:00.000Z",
                "holiday": None,
            },
            id="wib-branch-open-saturday-until-noon",
        ),
        pytest.param(
            KCU_MEDAN,
            utc(2026, 11, 29, 3, 0),  # Sunday 10:00 WIB
            "id",
            {
                "zone": "WIB",
                "open": False,
                "open_label": "Tutup, buka lagi Senin 30-11-2026 07.30 WIB",
                "changes_at": "2026-11-30T00:30:00.000Z",
                "holiday": None,
            },
            id="wib-branch-closed-on-sunday",
        ),
        pytest.param(
            KCU_MEDAN,
            utc(2026, 8, 17, 3, 0),  # Monday 17 August 2026, 10:00 WIB: Independence Day
            "id",
            {
                "zone": "WIB",
                "open": False,
                "open_label": "Tutup (hari libur: Hari Kemerdekaan Republik Indonesia)",
                "changes_at": "2026-08-18T00:30:00.000Z",
                "holiday": "Hari Kemerdekaan Republik Indonesia",
            },
            id="wib-branch-closed-on-independence-day",
        ),
        pytest.param(
            KCU_MEDAN,
            utc(2026, 8, 17, 3, 0),
            "en",
            {
                "zone": "WIB",
                "open": False,
                "open_label": "Closed (public holiday: Independence Day)",
                "changes_at": "2026-08-18T00:30:00.000Z",
                "holiday": "Independence Day",
            },
            id="holiday-named-in-english-for-english-pages",
        ),
        pytest.param(
            KCU_MEDAN,
            utc(2026, 11, 23, 3, 0),
            "en",
            {
                "zone": "WIB",
                "open": True,
                "open_label": "Open until 16:00 WIB",
                "changes_at": "2026-11-23T09:00:00.000Z",
                "holiday": None,
            },
            id="english-page-uses-a-colon-in-times",
        ),
        pytest.param(
            KCU_DENPASAR,
            utc(2026, 11, 23, 2, 0),  # Monday 10:00 WITA
            "id",
            {
                "zone": "WITA",
                "open": True,
                "open_label": "Buka sampai 16.00 WITA",
                "changes_at": "2026-11-23T08:00:00.000Z",
                "holiday": None,
            },
            id="wita-branch-in-makassar-time",
        ),
        pytest.param(
            KCU_DENPASAR,
            utc(2026, 11, 23, 12, 0),  # Monday 20:00 WITA
            "id",
            {
                "zone": "WITA",
                "open": False,
                "open_label": "Tutup, buka lagi Selasa 24-11-2026 07.30 WITA",
                "changes_at": "2026-11-23T23:30:00.000Z",
                "holiday": None,
            },
            id="wita-branch-closed-in-the-evening",
        ),
        pytest.param(
            KCU_JAYAPURA,
            utc(2026, 11, 23, 1, 0),  # Monday 10:00 WIT
            "id",
            {
                "zone": "WIT",
                "open": True,
                "open_label": "Buka sampai 15.00 WIT",
                "changes_at": "2026-11-23T06:00:00.000Z",
                "holiday": None,
            },
            id="wit-branch-in-jayapura-time",
        ),
        pytest.param(
            KC_ABEPURA,
            utc(2026, 11, 29, 18, 0),  # Monday 03:00 WIT, and a Sunday in UTC
            "id",
            {
                "zone": "WIT",
                "open": True,
                "open_label": "Buka 24 jam",
                "changes_at": None,
                "holiday": None,
            },
            id="branch-without-hours-is-always-open",
        ),
        pytest.param(
            KC_ABEPURA,
            utc(2026, 8, 17, 3, 0),
            "id",
            {
                "zone": "WIT",
                "open": True,
                "open_label": "Buka 24 jam",
                "changes_at": None,
                "holiday": None,
            },
            id="branch-without-hours-stays-open-on-holidays",
        ),
    ],
)
def test_branch_says_whether_it_is_open_in_local_time(
    branch: BranchConfig, now: datetime, lang: str, expected: dict[str, Any]
) -> None:
    doc = build_branch(branch, None, now, lang)
    assert {key: doc[key] for key in expected} == expected


def test_branch_document_lists_every_field() -> None:
    component = Component(
        id="kcu-medan",
        name="KCU Medan",
        group="Sumatera Utara",
        description="",
        kind="branch",
        position=3,
        status=ComponentStatus.PARTIAL_OUTAGE,
        reported_status=ComponentStatus.OPERATIONAL,
        created_at=utc(2026, 11, 1),
        updated_at=utc(2026, 11, 23, 2, 0),
    )
    assert build_branch(KCU_MEDAN, component, utc(2026, 11, 23, 3, 0), "id") == {
        "id": "kcu-medan",
        "name": "KCU Medan <b>&\"'",
        "region": "Sumatera Utara",
        "timezone": "Asia/Jakarta",
        "zone": "WIB",
        "hours": "Mon-Fri 07:30-16:00; Sat 08:00-12:00",
        "open": True,
        "open_label": "Buka sampai 16.00 WIB",
        "changes_at": "2026-11-23T09:00:00.000Z",
        "holiday": None,
        "status": "partial_outage",
        "queue": None,
    }


def test_branches_document_uses_the_site_language_and_component_statuses() -> None:
    config = Config(site=Site(language="id"), branches=(KCU_DENPASAR, KC_ABEPURA))
    state = State(
        components=(),
        incidents=(),
        maintenances=(),
        last_event_id=0,
        loaded_at=utc(2026, 11, 23, 2, 0),
        last_change_at=utc(2026, 11, 23, 2, 0),
    )
    assert build_branches(config, state, utc(2026, 11, 23, 2, 0)) == {
        "generated_at": "2026-11-23T02:00:00.000Z",
        "branches": [
            {
                "id": "kcu-denpasar",
                "name": "KCU Denpasar",
                "region": "Bali",
                "timezone": "Asia/Makassar",
                "zone": "WITA",
                "hours": "Mon-Fri 07:30-16:00",
                "open": True,
                "open_label": "Buka sampai 16.00 WITA",
                "changes_at": "2026-11-23T08:00:00.000Z",
                "holiday": None,
                "status": "operational",
                "queue": None,
            },
            {
                "id": "kc-abepura",
                "name": "KC Abepura",
                "region": "Papua",
                "timezone": "Asia/Jayapura",
                "zone": "WIT",
                "hours": None,
                "open": True,
                "open_label": "Buka 24 jam",
                "changes_at": None,
                "holiday": None,
                "status": "operational",
                "queue": None,
            },
        ],
    }


@pytest.mark.parametrize(
    ("branches", "now", "expected"),
    [
        pytest.param(
            (KCU_MEDAN, KCU_DENPASAR, KC_ABEPURA),
            utc(2026, 11, 23, 3, 0),  # Monday 10:00 WIB = 11:00 WITA
            utc(2026, 11, 23, 8, 0),  # Denpasar closes at 16:00 WITA, before Medan's 16:00 WIB
            id="first-closing-wins",
        ),
        pytest.param(
            (KCU_MEDAN, KCU_DENPASAR),
            utc(2026, 11, 23, 10, 0),  # Monday 17:00 WIB: both closed
            utc(2026, 11, 23, 23, 30),  # Denpasar opens 07:30 WITA, an hour before Medan
            id="first-opening-wins",
        ),
        pytest.param(
            (KCU_MEDAN, KCU_JAYAPURA),
            utc(2026, 11, 23, 5, 0),  # Monday 12:00 WIB = 14:00 WIT
            utc(2026, 11, 23, 6, 0),  # Jayapura closes at 15:00 WIT
            id="eastern-branch-closes-first",
        ),
        pytest.param(
            (KCU_MEDAN,),
            utc(2026, 8, 16, 12, 0),  # Sunday evening before Independence Day
            utc(2026, 8, 18, 0, 30),  # the holiday is skipped: Tuesday 07:30 WIB
            id="holiday-is-skipped",
        ),
        pytest.param((KC_ABEPURA,), utc(2026, 11, 23, 3, 0), None, id="always-open-never-changes"),
        pytest.param((), utc(2026, 11, 23, 3, 0), None, id="no-branches"),
    ],
)
def test_next_change_is_the_earliest_branch_boundary(
    branches: tuple[BranchConfig, ...], now: datetime, expected: datetime | None
) -> None:
    assert next_change(Config(branches=branches), now) == expected

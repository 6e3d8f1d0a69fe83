"""Tests for status/render/statuspage.py: /api/v2 documents in Statuspage's public shapes, field by field.

The expected shapes follow Statuspage's public API v2 as served by its own page
(https://metastatuspage.com/api/v2/summary.json), so its clients, widgets and exporters work.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from status.config import Site
from status.model import AffectedComponent, Component, Incident, IncidentUpdate, State
from status.render.statuspage import (
    RECENT_LIMIT,
    build_components,
    build_documents,
    build_incident,
    build_page,
    build_status,
    build_update,
    iso,
)
from status.snapshot import dump_json
from status.vocabulary import ComponentStatus, Impact, IncidentKind

HOSTILE = "<b>&\"'"
SITE = Site(
    name=f"Status e-Meterai {HOSTILE}",
    public_url="https://status.example.id",
    language="id",
    timezone="Asia/Jakarta",
)
PAGE_ID = "31d202167170"  # sha256("https://status.example.id")[:12]

CREATED = datetime(2026, 11, 1, 0, 0, 0, 250000, tzinfo=UTC)
CHANGED = datetime(2026, 11, 23, 3, 4, 5, 678901, tzinfo=UTC)
LATER = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)

# Every non-group component carries exactly these keys, in this order (Statuspage's order).
COMPONENT_KEYS = [
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "position",
    "description",
    "showcase",
    "start_date",
    "group_id",
    "page_id",
    "group",
    "only_show_if_degraded",
]
INCIDENT_KEYS = [
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "monitoring_at",
    "resolved_at",
    "impact",
    "shortlink",
    "started_at",
    "page_id",
    "incident_updates",
    "components",
]
UPDATE_KEYS = [
    "id",
    "status",
    "body",
    "incident_id",
    "created_at",
    "updated_at",
    "display_at",
    "affected_components",
    "deliver_notifications",
    "custom_tweet",
    "tweet_id",
]


def component(
    component_id: str,
    name: str,
    group: str,
    position: int,
    status: ComponentStatus = ComponentStatus.OPERATIONAL,
    *,
    description: str = "",
    updated_at: datetime = CREATED,
) -> Component:
    return Component(
        id=component_id,
        name=name,
        group=group,
        description=description,
        kind="service",
        position=position,
        status=status,
        reported_status=ComponentStatus.OPERATIONAL,
        created_at=CREATED,
        updated_at=updated_at,
    )


PORTAL = component("portal", "Portal", "", 0)
PURCHASE = component(
    "emeterai-purchase",
    f"Pembelian {HOSTILE}",
    "Layanan e-Meterai",
    1,
    ComponentStatus.PARTIAL_OUTAGE,
    updated_at=CHANGED,
)
STAMPING = component("emeterai-stamping", "Pembubuhan e-Meterai", "Layanan e-Meterai", 2)
MEDAN = component("kcu-medan", "KCU Medan", "Sumatera Utara", 3, description="Jl. Balai Kota 1")
COMPONENTS = {c.id: c for c in (PORTAL, PURCHASE, STAMPING, MEDAN)}

FIRST_UPDATE = IncidentUpdate(
    id="upd-1",
    incident_id="inc-1",
    status="investigating",
    body=f"Loket tutup {HOSTILE}",
    created_at=CHANGED,
    display_at=CHANGED,
    affected_components=(
        AffectedComponent(
            "kcu-medan",
            "KCU Medan",
            ComponentStatus.OPERATIONAL,
            ComponentStatus.PARTIAL_OUTAGE,
        ),
    ),
    author="petugas medan",
)
SECOND_UPDATE = IncidentUpdate(
    id="upd-2",
    incident_id="inc-1",
    status="identified",
    body="Jaringan ke server e-Meterai putus.",
    created_at=LATER,
    display_at=LATER,
)
INCIDENT = Incident(
    id="inc-1",
    kind=IncidentKind.INCIDENT,
    name=f"Antrean macet {HOSTILE}",
    status="identified",
    impact=Impact.MAJOR,
    created_at=CHANGED,
    updated_at=LATER,
    started_at=CHANGED,
    monitoring_at=None,
    resolved_at=None,
    scheduled_for=None,
    scheduled_until=None,
    auto_transition=False,
    origin="staff",
    # "gone" was removed from the config: it is left out, not an error.
    components={"kcu-medan": ComponentStatus.PARTIAL_OUTAGE, "gone": ComponentStatus.MAJOR_OUTAGE},
    updates=(SECOND_UPDATE, FIRST_UPDATE),
)
MAINTENANCE_UPDATE = IncidentUpdate(
    id="upd-m1",
    incident_id="mnt-1",
    status="scheduled",
    body="Server e-Meterai dipelihara.",
    created_at=CREATED,
    display_at=CREATED,
)
MAINTENANCE = Incident(
    id="mnt-1",
    kind=IncidentKind.MAINTENANCE,
    name="Pemeliharaan server",
    status="scheduled",
    impact=Impact.MAINTENANCE,
    created_at=CREATED,
    updated_at=CREATED,
    started_at=CREATED,
    monitoring_at=None,
    resolved_at=None,
    scheduled_for=datetime(2026, 11, 24, 1, 0, tzinfo=UTC),
    scheduled_until=datetime(2026, 11, 24, 3, 0, tzinfo=UTC),
    auto_transition=True,
    origin="staff",
    components={"emeterai-stamping": ComponentStatus.UNDER_MAINTENANCE},
    updates=(MAINTENANCE_UPDATE,),
)

EXPECTED_PAGE = {
    "id": PAGE_ID,
    "name": "Status e-Meterai <b>&\"'",
    "url": "https://status.example.id",
    "time_zone": "Asia/Jakarta",
    "updated_at": "2026-11-23T04:00:00.000Z",
}
EXPECTED_MEDAN = {
    "id": "kcu-medan",
    "name": "KCU Medan",
    "status": "operational",
    "created_at": "2026-11-01T00:00:00.250Z",
    "updated_at": "2026-11-01T00:00:00.250Z",
    "position": 3,
    "description": "Jl. Balai Kota 1",
    "showcase": True,
    "start_date": None,
    "group_id": "group-sumatera-utara",
    "page_id": PAGE_ID,
    "group": False,
    "only_show_if_degraded": False,
}


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param(
            datetime(2026, 11, 23, 3, 0, tzinfo=UTC), "2026-11-23T03:00:00.000Z", id="utc"
        ),
        pytest.param(
            datetime(2026, 11, 23, 3, 4, 5, 678901, tzinfo=UTC),
            "2026-11-23T03:04:05.678Z",
            id="milliseconds-truncated-not-rounded",
        ),
        pytest.param(
            datetime(2026, 11, 23, 10, 0, 0, 999999, tzinfo=ZoneInfo("Asia/Jakarta")),
            "2026-11-23T03:00:00.999Z",
            id="wib-converted-to-utc",
        ),
        pytest.param(
            datetime(2026, 11, 23, 8, 30, tzinfo=ZoneInfo("Asia/Jayapura")),
            "2026-11-22T23:30:00.000Z",
            id="wit-crosses-midnight",
        ),
        pytest.param(None, None, id="absent"),
    ],
)
def test_times_are_utc_with_milliseconds_and_z(at: datetime | None, expected: str | None) -> None:
    assert iso(at) == expected


def test_page_names_the_site_and_its_last_change() -> None:
    assert build_page(SITE, LATER) == EXPECTED_PAGE


def test_components_come_in_page_order_with_each_group_before_its_members() -> None:
    assert build_components([MEDAN, STAMPING, PURCHASE, PORTAL], SITE) == [
        {
            "id": "portal",
            "name": "Portal",
            "status": "operational",
            "created_at": "2026-11-01T00:00:00.250Z",
            "updated_at": "2026-11-01T00:00:00.250Z",
            "position": 0,
            "description": None,
            "showcase": True,
            "start_date": None,
            "group_id": None,
            "page_id": PAGE_ID,
            "group": False,
            "only_show_if_degraded": False,
        },
        {
            "id": "group-layanan-e-meterai",
            "name": "Layanan e-Meterai",
            "status": "partial_outage",  # the worst of its members
            "created_at": "2026-11-01T00:00:00.250Z",
            "updated_at": "2026-11-23T03:04:05.678Z",
            "position": 1,
            "description": None,
            "showcase": False,
            "start_date": None,
            "group_id": None,
            "page_id": PAGE_ID,
            "group": True,
            "only_show_if_degraded": False,
            "components": ["emeterai-purchase", "emeterai-stamping"],
        },
        {
            "id": "emeterai-purchase",
            "name": "Pembelian <b>&\"'",
            "status": "partial_outage",
            "created_at": "2026-11-01T00:00:00.250Z",
            "updated_at": "2026-11-23T03:04:05.678Z",
            "position": 1,
            "description": None,
            "showcase": True,
            "start_date": None,
            "group_id": "group-layanan-e-meterai",
            "page_id": PAGE_ID,
            "group": False,
            "only_show_if_degraded": False,
        },
        {
            "id": "emeterai-stamping",
            "name": "Pembubuhan e-Meterai",
            "status": "operational",
            "created_at": "2026-11-01T00:00:00.250Z",
            "updated_at": "2026-11-01T00:00:00.250Z",
            "position": 2,
            "description": None,
            "showcase": True,
            "start_date": None,
            "group_id": "group-layanan-e-meterai",
            "page_id": PAGE_ID,
            "group": False,
            "only_show_if_degraded": False,
        },
        {
            "id": "group-sumatera-utara",
            "name": "Sumatera Utara",
            "status": "operational",
            "created_at": "2026-11-01T00:00:00.250Z",
            "updated_at": "2026-11-01T00:00:00.250Z",
            "position": 3,
            "description": None,
            "showcase": False,
            "start_date": None,
            "group_id": None,
            "page_id": PAGE_ID,
            "group": True,
            "only_show_if_degraded": False,
            "components": ["kcu-medan"],
        },
        EXPECTED_MEDAN,
    ]


def test_component_keys_are_statuspages_in_its_order() -> None:
    docs = build_components([PORTAL, MEDAN], SITE)
    assert [list(d) for d in docs] == [
        COMPONENT_KEYS,
        [*COMPONENT_KEYS, "components"],
        COMPONENT_KEYS,
    ]


@pytest.mark.parametrize(
    ("update", "expected"),
    [
        pytest.param(
            FIRST_UPDATE,
            {
                "id": "upd-1",
                "status": "investigating",
                "body": "Loket tutup <b>&\"'",
                "incident_id": "inc-1",
                "created_at": "2026-11-23T03:04:05.678Z",
                "updated_at": "2026-11-23T03:04:05.678Z",
                "display_at": "2026-11-23T03:04:05.678Z",
                "affected_components": [
                    {
                        "code": "kcu-medan",
                        "name": "KCU Medan",
                        "old_status": "operational",
                        "new_status": "partial_outage",
                    }
                ],
                "deliver_notifications": True,
                "custom_tweet": None,
                "tweet_id": None,
            },
            id="with-affected-components",
        ),
        pytest.param(
            SECOND_UPDATE,
            {
                "id": "upd-2",
                "status": "identified",
                "body": "Jaringan ke server e-Meterai putus.",
                "incident_id": "inc-1",
                "created_at": "2026-11-23T04:00:00.000Z",
                "updated_at": "2026-11-23T04:00:00.000Z",
                "display_at": "2026-11-23T04:00:00.000Z",
                "affected_components": None,  # Statuspage says null, not []
                "deliver_notifications": True,
                "custom_tweet": None,
                "tweet_id": None,
            },
            id="without-affected-components",
        ),
    ],
)
def test_update_has_statuspages_fields(update: IncidentUpdate, expected: dict[str, Any]) -> None:
    doc = build_update(update)
    assert doc == expected
    assert list(doc) == UPDATE_KEYS


def test_update_does_not_reveal_its_author() -> None:
    assert "petugas medan" not in json.dumps(build_update(FIRST_UPDATE))


def test_incident_has_statuspages_fields_with_updates_newest_first() -> None:
    doc = build_incident(INCIDENT, COMPONENTS, SITE)
    assert doc == {
        "id": "inc-1",
        "name": "Antrean macet <b>&\"'",
        "status": "identified",
        "created_at": "2026-11-23T03:04:05.678Z",
        "updated_at": "2026-11-23T04:00:00.000Z",
        "monitoring_at": None,
        "resolved_at": None,
        "impact": "major",
        "shortlink": "https://status.example.id/incidents/inc-1",
        "started_at": "2026-11-23T03:04:05.678Z",
        "page_id": PAGE_ID,
        "incident_updates": [build_update(SECOND_UPDATE), build_update(FIRST_UPDATE)],
        "components": [EXPECTED_MEDAN],
    }
    assert list(doc) == INCIDENT_KEYS


def test_resolved_incident_carries_its_monitoring_and_resolved_times() -> None:
    resolved = replace(
        INCIDENT,
        status="resolved",
        monitoring_at=datetime(2026, 11, 23, 5, 0, tzinfo=UTC),
        resolved_at=datetime(2026, 11, 23, 6, 30, 0, 1000, tzinfo=UTC),
        components={},
        updates=(),
    )
    doc = build_incident(resolved, COMPONENTS, replace(SITE, public_url="https://s.example.id/"))
    assert {k: doc[k] for k in ("status", "monitoring_at", "resolved_at", "shortlink")} == {
        "status": "resolved",
        "monitoring_at": "2026-11-23T05:00:00.000Z",
        "resolved_at": "2026-11-23T06:30:00.001Z",
        "shortlink": "https://s.example.id/incidents/inc-1",
    }
    assert doc["components"] == []
    assert doc["incident_updates"] == []


def test_scheduled_maintenance_adds_its_window() -> None:
    doc = build_incident(MAINTENANCE, COMPONENTS, SITE)
    assert doc == {
        "id": "mnt-1",
        "name": "Pemeliharaan server",
        "status": "scheduled",
        "created_at": "2026-11-01T00:00:00.250Z",
        "updated_at": "2026-11-01T00:00:00.250Z",
        "monitoring_at": None,
        "resolved_at": None,
        "impact": "maintenance",
        "shortlink": "https://status.example.id/incidents/mnt-1",
        "started_at": "2026-11-01T00:00:00.250Z",
        "page_id": PAGE_ID,
        "incident_updates": [
            {
                "id": "upd-m1",
                "status": "scheduled",
                "body": "Server e-Meterai dipelihara.",
                "incident_id": "mnt-1",
                "created_at": "2026-11-01T00:00:00.250Z",
                "updated_at": "2026-11-01T00:00:00.250Z",
                "display_at": "2026-11-01T00:00:00.250Z",
                "affected_components": None,
                "deliver_notifications": True,
                "custom_tweet": None,
                "tweet_id": None,
            }
        ],
        "components": [
            {
                "id": "emeterai-stamping",
                "name": "Pembubuhan e-Meterai",
                "status": "operational",
                "created_at": "2026-11-01T00:00:00.250Z",
                "updated_at": "2026-11-01T00:00:00.250Z",
                "position": 2,
                "description": None,
                "showcase": True,
                "start_date": None,
                "group_id": "group-layanan-e-meterai",
                "page_id": PAGE_ID,
                "group": False,
                "only_show_if_degraded": False,
            }
        ],
        "scheduled_for": "2026-11-24T01:00:00.000Z",
        "scheduled_until": "2026-11-24T03:00:00.000Z",
    }
    assert list(doc) == [*INCIDENT_KEYS, "scheduled_for", "scheduled_until"]


def state_of(
    components: tuple[Component, ...] = (),
    incidents: tuple[Incident, ...] = (),
    maintenances: tuple[Incident, ...] = (),
) -> State:
    return State(
        components=components,
        incidents=incidents,
        maintenances=maintenances,
        last_event_id=7,
        loaded_at=LATER,
        last_change_at=LATER,
    )


def open_incident(impact: Impact, status: str = "investigating") -> Incident:
    return replace(INCIDENT, impact=impact, status=status, components={}, updates=())


S = ComponentStatus


@pytest.mark.parametrize(
    ("status", "incidents", "indicator", "description"),
    [
        (S.OPERATIONAL, (), "none", "Semua layanan berjalan normal"),
        (S.UNDER_MAINTENANCE, (), "none", "Sedang dalam pemeliharaan"),
        (S.DEGRADED_PERFORMANCE, (), "minor", "Gangguan ringan"),
        (S.PARTIAL_OUTAGE, (), "major", "Gangguan sebagian"),
        (S.MAJOR_OUTAGE, (), "critical", "Gangguan besar"),
        (S.OPERATIONAL, (open_incident(Impact.NONE),), "none", "Semua layanan berjalan normal"),
        (S.OPERATIONAL, (open_incident(Impact.MINOR),), "minor", "Gangguan ringan"),
        (S.OPERATIONAL, (open_incident(Impact.MAJOR),), "major", "Gangguan sebagian"),
        (S.OPERATIONAL, (open_incident(Impact.CRITICAL),), "critical", "Gangguan besar"),
        (S.UNDER_MAINTENANCE, (open_incident(Impact.MINOR),), "minor", "Gangguan ringan"),
        (S.DEGRADED_PERFORMANCE, (open_incident(Impact.CRITICAL),), "critical", "Gangguan besar"),
        (S.MAJOR_OUTAGE, (open_incident(Impact.MINOR),), "critical", "Gangguan besar"),
        (
            S.PARTIAL_OUTAGE,
            (open_incident(Impact.MINOR), open_incident(Impact.NONE)),
            "major",
            "Gangguan sebagian",
        ),
        (
            S.OPERATIONAL,
            (open_incident(Impact.CRITICAL, "monitoring"),),
            "critical",
            "Gangguan besar",
        ),
        # Closed incidents no longer count, whatever their impact was.
        (
            S.OPERATIONAL,
            (open_incident(Impact.CRITICAL, "resolved"),),
            "none",
            "Semua layanan berjalan normal",
        ),
        (
            S.OPERATIONAL,
            (open_incident(Impact.MAJOR, "postmortem"),),
            "none",
            "Semua layanan berjalan normal",
        ),
    ],
)
def test_page_indicator_is_the_worst_of_components_and_open_incidents(
    status: ComponentStatus, incidents: tuple[Incident, ...], indicator: str, description: str
) -> None:
    state = state_of((replace(STAMPING, status=status), PORTAL), incidents)
    assert build_status(state, SITE) == {"indicator": indicator, "description": description}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (S.OPERATIONAL, {"indicator": "none", "description": "All Systems Operational"}),
        (S.UNDER_MAINTENANCE, {"indicator": "none", "description": "Service Under Maintenance"}),
        (S.DEGRADED_PERFORMANCE, {"indicator": "minor", "description": "Minor Service Outage"}),
        (S.PARTIAL_OUTAGE, {"indicator": "major", "description": "Partial System Outage"}),
        (S.MAJOR_OUTAGE, {"indicator": "critical", "description": "Major System Outage"}),
    ],
)
def test_english_page_uses_statuspages_own_descriptions(
    status: ComponentStatus, expected: dict[str, str]
) -> None:
    state = state_of((replace(STAMPING, status=status),))
    assert build_status(state, replace(SITE, language="en")) == expected


def test_page_with_no_components_is_operational() -> None:
    assert build_status(state_of(), SITE) == {
        "indicator": "none",
        "description": "Semua layanan berjalan normal",
    }


def maintenance(mid: str, status: str, starts_hour: int) -> Incident:
    return replace(
        MAINTENANCE,
        id=mid,
        status=status,
        scheduled_for=datetime(2026, 11, 24, starts_hour, 0, tzinfo=UTC),
        updates=(),
    )


RESOLVED = replace(INCIDENT, id="inc-0", status="resolved", resolved_at=CHANGED, updates=())
SOON = maintenance("mnt-soon", "scheduled", 1)
LATE = maintenance("mnt-late", "scheduled", 9)
RUNNING = maintenance("mnt-running", "in_progress", 0)
VERIFYING = maintenance("mnt-verifying", "verifying", 0)
DONE = maintenance("mnt-done", "completed", 0)
FULL_STATE = state_of(
    (PURCHASE, STAMPING, MEDAN),
    (INCIDENT, RESOLVED),
    (LATE, DONE, RUNNING, SOON, VERIFYING),
)


def ids(docs: list[dict[str, Any]]) -> list[str]:
    return [d["id"] for d in docs]


def test_documents_are_statuspages_v2_paths_with_its_keys() -> None:
    docs = build_documents(FULL_STATE, SITE)
    assert {path: list(doc) for path, doc in docs.items()} == {
        "/api/v2/summary.json": [
            "page",
            "components",
            "incidents",
            "scheduled_maintenances",
            "status",
        ],
        "/api/v2/status.json": ["page", "status"],
        "/api/v2/components.json": ["page", "components"],
        "/api/v2/incidents.json": ["page", "incidents"],
        "/api/v2/incidents/unresolved.json": ["page", "incidents"],
        "/api/v2/scheduled-maintenances.json": ["page", "scheduled_maintenances"],
        "/api/v2/scheduled-maintenances/upcoming.json": ["page", "scheduled_maintenances"],
        "/api/v2/scheduled-maintenances/active.json": ["page", "scheduled_maintenances"],
    }
    assert all(doc["page"] == EXPECTED_PAGE for doc in docs.values())


def test_status_document_is_page_and_indicator() -> None:
    assert build_documents(FULL_STATE, SITE)["/api/v2/status.json"] == {
        "page": EXPECTED_PAGE,
        "status": {"indicator": "major", "description": "Gangguan sebagian"},
    }


def test_components_document_matches_the_summarys_components() -> None:
    docs = build_documents(FULL_STATE, SITE)
    expected = build_components(FULL_STATE.components, SITE)
    assert docs["/api/v2/components.json"]["components"] == expected
    assert docs["/api/v2/summary.json"]["components"] == expected


@pytest.mark.parametrize(
    ("path", "key", "expected_ids"),
    [
        ("/api/v2/summary.json", "incidents", ["inc-1"]),
        # Active first, then upcoming soonest first, as on Statuspage's summary.
        (
            "/api/v2/summary.json",
            "scheduled_maintenances",
            ["mnt-running", "mnt-verifying", "mnt-soon", "mnt-late"],
        ),
        ("/api/v2/incidents.json", "incidents", ["inc-1", "inc-0"]),
        ("/api/v2/incidents/unresolved.json", "incidents", ["inc-1"]),
        (
            "/api/v2/scheduled-maintenances.json",
            "scheduled_maintenances",
            ["mnt-late", "mnt-done", "mnt-running", "mnt-soon", "mnt-verifying"],
        ),
        (
            "/api/v2/scheduled-maintenances/upcoming.json",
            "scheduled_maintenances",
            ["mnt-soon", "mnt-late"],
        ),
        (
            "/api/v2/scheduled-maintenances/active.json",
            "scheduled_maintenances",
            ["mnt-running", "mnt-verifying"],
        ),
    ],
)
def test_each_document_lists_the_right_incidents(
    path: str, key: str, expected_ids: list[str]
) -> None:
    assert ids(build_documents(FULL_STATE, SITE)[path][key]) == expected_ids


def test_incident_lists_stop_at_statuspages_fifty_newest() -> None:
    history = tuple(replace(RESOLVED, id=f"inc-{n}") for n in range(RECENT_LIMIT + 10))
    state = state_of(
        incidents=history, maintenances=tuple(replace(DONE, id=f"m-{n}") for n in range(60))
    )
    docs = build_documents(state, SITE)
    assert RECENT_LIMIT == 50
    assert ids(docs["/api/v2/incidents.json"]["incidents"]) == [f"inc-{n}" for n in range(50)]
    assert len(docs["/api/v2/scheduled-maintenances.json"]["scheduled_maintenances"]) == 50


def test_json_carries_hostile_text_verbatim() -> None:
    body = dump_json(build_documents(FULL_STATE, SITE)["/api/v2/summary.json"])
    # JSON is the escaping boundary: quotes are JSON-escaped, HTML characters are left alone
    # for whoever renders them to escape for their own medium.
    assert b"Status e-Meterai <b>&\\\"'" in body
    assert b"Antrean macet <b>&\\\"'" in body
    assert b"Loket tutup <b>&\\\"'" in body
    assert b"&lt;" not in body
    assert b"&amp;" not in body
    assert b"\\u003c" not in body
    doc = json.loads(body)
    assert doc["page"]["name"] == "Status e-Meterai <b>&\"'"
    assert doc["incidents"][0]["name"] == "Antrean macet <b>&\"'"
    assert doc["incidents"][0]["incident_updates"][1]["body"] == "Loket tutup <b>&\"'"

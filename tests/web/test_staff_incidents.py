"""Staff post incidents, notices and maintenance windows; applicants see them in /api/v2.

The helpers at the top are shared by the other staff API test modules: they speak the API
the way a staff client does and read back what an applicant's phone would show.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from status import db, outbox, store, tokens
from status.clock import ManualClock
from status.schema import events, idempotency, incident_components, incident_updates, incidents
from status.services import Services
from status.web.app import create_app

pytestmark = pytest.mark.anyio

SHORTLINK = "https://status.example.id/incidents/"
NOW = "2026-11-23T03:00:00.000Z"  # conftest's MONDAY_MORNING as the API writes it


def incident_fields(**fields: Any) -> dict[str, Any]:
    """A report of the upstream purchase service failing, with any field replaced."""
    doc: dict[str, Any] = {
        "name": "Pembelian e-Meterai gagal",
        "status": "investigating",
        "impact": "major",
        "body": "Pembayaran diterima tetapi meterai tidak terbit.",
        "components": {"emeterai-purchase": "major_outage"},
    }
    doc.update(fields)
    return doc


def window_fields(**fields: Any) -> dict[str, Any]:
    """A two-hour network maintenance at KCU Medan tomorrow morning, with any field replaced."""
    doc: dict[str, Any] = {
        "name": "Pemeliharaan jaringan KCU Medan",
        "body": "Loket e-Meterai tidak melayani selama pemeliharaan.",
        "scheduled_for": "2026-11-24T01:00:00Z",
        "scheduled_until": "2026-11-24T03:00:00Z",
        "components": ["kcu-medan"],
    }
    doc.update(fields)
    return doc


async def post_incident(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    return await client.post("/api/v1/incidents", json=incident_fields(**fields))


async def post_update(client: httpx.AsyncClient, incident_id: str, **fields: Any) -> httpx.Response:
    return await client.post(f"/api/v1/incidents/{incident_id}/updates", json=fields)


async def post_window(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    return await client.post("/api/v1/maintenances", json=window_fields(**fields))


async def post_window_update(
    client: httpx.AsyncClient, maintenance_id: str, **fields: Any
) -> httpx.Response:
    return await client.post(f"/api/v1/maintenances/{maintenance_id}/updates", json=fields)


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    doc: dict[str, Any] = response.json()
    return doc


def refused(response: httpx.Response, status: int, code: str, field: str | None) -> str:
    """Assert the API's error shape; returns the message so a test can check what it says."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "field"}
    assert (error["code"], error["field"]) == (code, field)
    assert isinstance(error["message"], str)
    assert error["message"]
    message: str = error["message"]
    return message


async def open_incident(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    return created(await post_incident(client, **fields))


async def read_public(applicant: httpx.AsyncClient, path: str) -> dict[str, Any]:
    response = await applicant.get(path)
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


async def shown_status(applicant: httpx.AsyncClient, component_id: str) -> str:
    """The component's status as summary.json shows it to an applicant."""
    summary = await read_public(applicant, "/api/v2/summary.json")
    (found,) = [c for c in summary["components"] if c["id"] == component_id and not c["group"]]
    status: str = found["status"]
    return status


async def listed_ids(applicant: httpx.AsyncClient, path: str, key: str) -> list[str]:
    return [i["id"] for i in (await read_public(applicant, path))[key]]


async def stored_rows(services: Services) -> dict[str, int]:
    """How many rows each written table holds (the audit log is checked separately)."""
    async with db.read(services.engine) as conn:
        return {
            table.name: await store.count_rows(conn, table)
            for table in (incidents, incident_updates, incident_components, events, idempotency)
        }


async def newest_event_id(services: Services) -> int:
    async with db.read(services.engine) as conn:
        return await outbox.latest_id(conn)


# -- incidents ---------------------------------------------------------------------------------


async def test_an_admin_opens_an_incident_in_statuspage_shape(admin: httpx.AsyncClient) -> None:
    incident = await open_incident(admin)

    assert len(incident["id"]) == 12
    assert incident["name"] == "Pembelian e-Meterai gagal"
    assert (incident["status"], incident["impact"]) == ("investigating", "major")
    assert incident["shortlink"] == SHORTLINK + incident["id"]
    assert (incident["created_at"], incident["started_at"]) == (NOW, NOW)
    assert (incident["monitoring_at"], incident["resolved_at"]) == (None, None)
    (first,) = incident["incident_updates"]
    assert first["status"] == "investigating"
    assert first["body"] == "Pembayaran diterima tetapi meterai tidak terbit."
    assert first["incident_id"] == incident["id"]
    assert first["affected_components"] == [
        {
            "code": "emeterai-purchase",
            "name": "Pembelian e-Meterai",
            "old_status": "operational",
            "new_status": "major_outage",
        }
    ]
    (component,) = incident["components"]
    assert (component["id"], component["name"], component["status"]) == (
        "emeterai-purchase",
        "Pembelian e-Meterai",
        "major_outage",
    )
    assert component["group_id"] == "group-layanan-e-meterai"


async def test_an_applicant_sees_the_new_incident_and_the_broken_service(
    admin: httpx.AsyncClient, applicant: httpx.AsyncClient
) -> None:
    incident = await open_incident(admin)

    assert await listed_ids(applicant, "/api/v2/summary.json", "incidents") == [incident["id"]]
    assert await listed_ids(applicant, "/api/v2/incidents/unresolved.json", "incidents") == [
        incident["id"]
    ]
    assert await shown_status(applicant, "emeterai-purchase") == "major_outage"
    assert await shown_status(applicant, "emeterai-stamping") == "operational"


@pytest.mark.parametrize(
    ("component_status", "impact", "indicator"),
    [
        ("degraded_performance", "major", "major"),
        ("major_outage", "minor", "critical"),
        ("partial_outage", "none", "major"),
        ("operational", "critical", "critical"),
        ("operational", "minor", "minor"),
    ],
)
async def test_the_page_indicator_is_the_worst_of_impact_and_component_status(
    admin: httpx.AsyncClient,
    applicant: httpx.AsyncClient,
    component_status: str,
    impact: str,
    indicator: str,
) -> None:
    await open_incident(admin, impact=impact, components={"kcu-medan": component_status})

    for path in ("/api/v2/summary.json", "/api/v2/status.json"):
        assert (await read_public(applicant, path))["status"]["indicator"] == indicator


async def test_an_incident_moves_through_identified_monitoring_and_resolved(
    admin: httpx.AsyncClient, applicant: httpx.AsyncClient, clock: ManualClock
) -> None:
    incident = await open_incident(admin)
    clock.advance(timedelta(minutes=20))
    identified = created(
        await post_update(admin, incident["id"], status="identified", body="Server penerbit penuh.")
    )
    assert (identified["status"], identified["monitoring_at"]) == ("identified", None)

    clock.advance(timedelta(minutes=40))
    monitoring = created(
        await post_update(
            admin,
            incident["id"],
            status="monitoring",
            body="Sebagian pembelian berhasil; kami pantau.",
            components={"emeterai-purchase": "degraded_performance"},
        )
    )
    assert monitoring["monitoring_at"] == "2026-11-23T04:00:00.000Z"
    assert monitoring["resolved_at"] is None
    assert await shown_status(applicant, "emeterai-purchase") == "degraded_performance"

    clock.advance(timedelta(hours=1))
    resolved = created(
        await post_update(admin, incident["id"], status="resolved", body="Pembelian normal.")
    )
    assert resolved["resolved_at"] == "2026-11-23T05:00:00.000Z"
    assert resolved["monitoring_at"] == "2026-11-23T04:00:00.000Z"
    assert [u["status"] for u in resolved["incident_updates"]] == [
        "resolved",
        "monitoring",
        "identified",
        "investigating",
    ]
    assert resolved["incident_updates"][0]["affected_components"] == [
        {
            "code": "emeterai-purchase",
            "name": "Pembelian e-Meterai",
            "old_status": "degraded_performance",
            "new_status": "operational",
        }
    ]


async def test_resolving_returns_components_to_operational_for_applicants(
    admin: httpx.AsyncClient, applicant: httpx.AsyncClient
) -> None:
    incident = await open_incident(admin, components={"kcu-medan": "major_outage"})
    created(await post_update(admin, incident["id"], status="resolved", body="Loket buka."))

    summary = await read_public(applicant, "/api/v2/summary.json")
    assert summary["incidents"] == []
    assert summary["status"]["indicator"] == "none"
    assert await shown_status(applicant, "kcu-medan") == "operational"
    assert await listed_ids(applicant, "/api/v2/incidents/unresolved.json", "incidents") == []
    history = await read_public(applicant, "/api/v2/incidents.json")
    assert [(i["id"], i["status"]) for i in history["incidents"]] == [(incident["id"], "resolved")]


async def test_a_notice_has_no_impact_and_changes_no_component(
    admin: httpx.AsyncClient, applicant: httpx.AsyncClient
) -> None:
    notice = await open_incident(
        admin,
        name="Meterai tempel juga diterima",
        impact="none",
        body="Panitia CASN menerima meterai tempel selain e-Meterai.",
        components={"kcu-medan": "operational"},
    )

    assert notice["impact"] == "none"
    assert notice["incident_updates"][0]["affected_components"] == [
        {
            "code": "kcu-medan",
            "name": "KCU Medan",
            "old_status": "operational",
            "new_status": "operational",
        }
    ]
    summary = await read_public(applicant, "/api/v2/summary.json")
    assert [i["name"] for i in summary["incidents"]] == ["Meterai tempel juga diterima"]
    assert summary["status"]["indicator"] == "none"
    assert await shown_status(applicant, "kcu-medan") == "operational"


async def test_an_update_can_rename_the_incident_and_change_its_impact(
    admin: httpx.AsyncClient, applicant: httpx.AsyncClient
) -> None:
    incident = await open_incident(admin, impact="minor", components={})
    renamed = created(
        await post_update(
            admin,
            incident["id"],
            status="identified",
            body="Gangguan meluas ke semua kanal.",
            name="e-Meterai tidak bisa dibeli di mana pun",
            impact="critical",
        )
    )

    assert (renamed["name"], renamed["impact"]) == (
        "e-Meterai tidak bisa dibeli di mana pun",
        "critical",
    )
    summary = await read_public(applicant, "/api/v2/summary.json")
    assert [(i["name"], i["impact"]) for i in summary["incidents"]] == [
        ("e-Meterai tidak bisa dibeli di mana pun", "critical")
    ]
    assert summary["status"]["indicator"] == "critical"


async def test_a_postmortem_waits_until_the_incident_is_resolved(
    admin: httpx.AsyncClient, clock: ManualClock
) -> None:
    incident = await open_incident(admin)
    early = await post_update(admin, incident["id"], status="postmortem", body="Analisis.")
    refused(early, 422, "invalid", "status")

    clock.advance(timedelta(hours=1))
    created(await post_update(admin, incident["id"], status="resolved", body="Normal kembali."))
    clock.advance(timedelta(days=2))
    postmortem = created(
        await post_update(admin, incident["id"], status="postmortem", body="Analisis penyebab.")
    )
    assert postmortem["status"] == "postmortem"
    assert [u["status"] for u in postmortem["incident_updates"]] == [
        "postmortem",
        "resolved",
        "investigating",
    ]


async def test_an_incident_cannot_open_as_a_postmortem(
    admin: httpx.AsyncClient, services: Services
) -> None:
    before = await stored_rows(services)
    refused(await post_incident(admin, status="postmortem"), 422, "invalid", "status")
    assert await stored_rows(services) == before


async def test_staff_read_back_one_incident_as_it_was_created(admin: httpx.AsyncClient) -> None:
    incident = await open_incident(admin)

    response = await admin.get(f"/api/v1/incidents/{incident['id']}")

    assert response.status_code == 200
    assert response.json() == incident


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/incidents/tidakada1234", None),
        ("POST", "/api/v1/incidents/tidakada1234/updates", {"status": "resolved", "body": "x"}),
        ("POST", "/api/v1/maintenances/tidakada1234/updates", {"status": "completed", "body": "x"}),
    ],
)
async def test_an_unknown_incident_id_is_a_404(
    admin: httpx.AsyncClient,
    services: Services,
    method: str,
    path: str,
    body: dict[str, str] | None,
) -> None:
    before = await stored_rows(services)
    response = await admin.request(method, path, json=body)
    message = refused(response, 404, "not_found", None)
    assert "tidakada1234" in message
    assert await stored_rows(services) == before


async def test_an_incident_update_does_not_reach_a_maintenance(admin: httpx.AsyncClient) -> None:
    window = created(await post_window(admin))
    response = await post_update(admin, window["id"], status="resolved", body="Selesai.")
    refused(response, 404, "not_found", None)


async def second_admin(services: Services) -> httpx.AsyncClient:
    """Another operator on another token, so two writers do not share a token row."""
    _info, secret = await tokens.create_token(
        services.engine, "ops admin malam", ("admin",), services.clock.now()
    )
    transport = httpx.ASGITransport(app=create_app(services, background=False))
    return httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {secret}"},
    )


async def test_two_admins_adding_the_same_branch_at_once_never_break_the_incident(
    admin: httpx.AsyncClient, services: Services
) -> None:
    incident = await open_incident(admin, components={"kcu-medan": "major_outage"})
    widen = {"status": "identified", "body": "Jayapura juga terdampak."}
    async with await second_admin(services) as night_shift:
        responses = await asyncio.gather(
            post_update(
                admin, incident["id"], **widen, components={"kcu-jayapura": "major_outage"}
            ),
            post_update(
                night_shift, incident["id"], **widen, components={"kcu-jayapura": "partial_outage"}
            ),
        )

    # Either both land one after the other, or the later one is told to send again; never a 500.
    statuses = sorted(r.status_code for r in responses)
    assert statuses in ([201, 201], [201, 409])
    for response in responses:
        if response.status_code == 409:
            refused(response, 409, "conflict", None)
    final = (await admin.get(f"/api/v1/incidents/{incident['id']}")).json()
    assert [c["id"] for c in final["components"]] == ["kcu-medan", "kcu-jayapura"]
    assert len(final["incident_updates"]) == 1 + statuses.count(201)


# -- maintenance -------------------------------------------------------------------------------


async def test_an_admin_schedules_a_maintenance_that_applicants_see_coming(
    admin: httpx.AsyncClient, applicant: httpx.AsyncClient
) -> None:
    window = created(await post_window(admin))

    assert (window["status"], window["impact"]) == ("scheduled", "maintenance")
    assert window["scheduled_for"] == "2026-11-24T01:00:00.000Z"
    assert window["scheduled_until"] == "2026-11-24T03:00:00.000Z"
    assert [c["id"] for c in window["components"]] == ["kcu-medan"]
    assert window["incident_updates"][0]["status"] == "scheduled"
    assert window["shortlink"] == SHORTLINK + window["id"]
    upcoming = "/api/v2/scheduled-maintenances/upcoming.json"
    assert await listed_ids(applicant, upcoming, "scheduled_maintenances") == [window["id"]]
    assert await shown_status(applicant, "kcu-medan") == "operational"


async def test_a_maintenance_in_progress_puts_components_under_maintenance_until_completed(
    admin: httpx.AsyncClient, applicant: httpx.AsyncClient
) -> None:
    window = created(await post_window(admin))
    active = "/api/v2/scheduled-maintenances/active.json"

    started = created(
        await post_window_update(admin, window["id"], status="in_progress", body="Mulai.")
    )
    assert started["status"] == "in_progress"
    components = await read_public(applicant, "/api/v2/components.json")
    assert {c["id"]: c["status"] for c in components["components"]}["kcu-medan"] == (
        "under_maintenance"
    )
    assert await listed_ids(applicant, active, "scheduled_maintenances") == [window["id"]]
    upcoming = "/api/v2/scheduled-maintenances/upcoming.json"
    assert await listed_ids(applicant, upcoming, "scheduled_maintenances") == []

    done = created(await post_window_update(admin, window["id"], status="completed", body="Usai."))
    assert done["status"] == "completed"
    assert await shown_status(applicant, "kcu-medan") == "operational"
    assert await listed_ids(applicant, active, "scheduled_maintenances") == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"scheduled_until": "2026-11-24T00:00:00Z"}, "scheduled_until"),
        ({"scheduled_until": "2026-11-24T01:00:00Z"}, "scheduled_until"),
        ({"scheduled_for": "2026-11-24T01:00:00"}, "scheduled_for"),
        ({"scheduled_until": "2026-11-24T03:00:00"}, "scheduled_until"),
        ({"scheduled_for": "besok pagi"}, "scheduled_for"),
        ({"scheduled_for": 1795000000}, "scheduled_for"),
        (
            {"scheduled_for": "2026-11-20T01:00:00Z", "scheduled_until": "2026-11-20T03:00:00Z"},
            "scheduled_until",
        ),
    ],
    ids=[
        "ends-before-start",
        "ends-at-start",
        "start-no-zone",
        "end-no-zone",
        "words",
        "number",
        "past",
    ],
)
async def test_a_maintenance_window_with_impossible_times_is_refused(
    admin: httpx.AsyncClient, services: Services, fields: dict[str, Any], field: str
) -> None:
    before = await stored_rows(services)
    refused(await post_window(admin, **fields), 422, "invalid", field)
    assert await stored_rows(services) == before


async def test_the_schedule_starts_and_completes_a_maintenance_on_time(
    admin: httpx.AsyncClient,
    applicant: httpx.AsyncClient,
    services: Services,
    clock: ManualClock,
) -> None:
    window = created(await post_window(admin))
    first = await newest_event_id(services)

    assert await services.core.apply_schedule() == 0
    clock.set(datetime(2026, 11, 24, 1, 0, 1, tzinfo=UTC))
    assert await services.core.apply_schedule() == 1
    assert await shown_status(applicant, "kcu-medan") == "under_maintenance"

    clock.set(datetime(2026, 11, 24, 3, 0, 1, tzinfo=UTC))
    assert await services.core.apply_schedule() == 1
    assert await shown_status(applicant, "kcu-medan") == "operational"

    moves = await outbox.follow(services.engine, first)
    assert [(e.incident_id, e.payload["incident"]["status"]) for e in moves] == [
        (window["id"], "in_progress"),
        (window["id"], "completed"),
    ]
    final = (await admin.get(f"/api/v1/incidents/{window['id']}")).json()
    assert [u["body"] for u in final["incident_updates"][:2]] == [
        "Pemeliharaan terjadwal telah selesai.",
        "Pemeliharaan terjadwal sedang berlangsung.",
    ]

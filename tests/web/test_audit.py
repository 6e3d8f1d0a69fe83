"""Operations can see who changed what, from where, newest first, a page at a time."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from status.services import Services
from tests.web.test_staff_incidents import (
    created,
    open_incident,
    post_update,
    post_window,
    post_window_update,
    refused,
)

pytestmark = pytest.mark.anyio

NOW = "2026-11-23T03:00:00.000Z"


async def audit_page(admin: httpx.AsyncClient, **params: int) -> dict[str, Any]:
    response = await admin.get("/api/v1/audit", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    page: dict[str, Any] = response.json()
    return page


async def token_id(client: httpx.AsyncClient) -> str:
    found: str = (await client.get("/api/v1/whoami")).json()["token_id"]
    return found


def who_and_where(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (
        entry["actor"],
        entry["token_id"],
        entry["outcome"],
        entry["remote_addr"],
        entry["user_agent"],
        entry["at"],
    )


async def test_every_successful_write_is_audited_newest_first(admin: httpx.AsyncClient) -> None:
    incident = await open_incident(admin)
    created(
        await post_update(
            admin,
            incident["id"],
            status="identified",
            body="Server penerbit penuh.",
            impact="critical",
        )
    )
    window = created(await post_window(admin))
    created(await post_window_update(admin, window["id"], status="in_progress", body="Mulai."))

    page = await audit_page(admin)

    entries = page["entries"]
    assert [(e["action"], e["target"]) for e in entries] == [
        ("maintenance.update", window["id"]),
        ("maintenance.create", window["id"]),
        ("incident.update", incident["id"]),
        ("incident.create", incident["id"]),
    ]
    me = await token_id(admin)
    assert {who_and_where(e) for e in entries} == {
        ("ops admin", me, "ok", "198.51.100.20", "ops admin test", NOW)
    }
    assert [e["detail"] for e in entries] == [
        {"status": "in_progress"},
        {
            "name": "Pemeliharaan jaringan KCU Medan",
            "scheduled_for": "2026-11-24T01:00:00+00:00",
            "scheduled_until": "2026-11-24T03:00:00+00:00",
            "components": ["kcu-medan"],
        },
        {"status": "identified", "components": {}, "impact": "critical"},
        {
            "name": "Pembelian e-Meterai gagal",
            "status": "investigating",
            "impact": "major",
            "components": {"emeterai-purchase": "major_outage"},
        },
    ]
    assert entries[0]["id"] > entries[1]["id"] > entries[2]["id"] > entries[3]["id"]
    assert page["next_before"] is None


async def test_branch_staff_writes_are_audited_under_their_own_token(
    medan_staff: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    incident = await open_incident(medan_staff, components={"kcu-medan": "partial_outage"})

    (entry,) = (await audit_page(admin))["entries"]

    assert (entry["actor"], entry["token_id"], entry["user_agent"]) == (
        "petugas medan",
        await token_id(medan_staff),
        "petugas medan test",
    )
    assert (entry["action"], entry["target"], entry["outcome"]) == (
        "incident.create",
        incident["id"],
        "ok",
    )


async def test_a_replayed_post_is_audited_once(admin: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "sekali"}
    doc = {"name": "Loket tutup", "body": "Tutup.", "components": {"kcu-medan": "major_outage"}}
    for _ in range(2):
        created(await admin.post("/api/v1/incidents", json=doc, headers=headers))
    assert [e["action"] for e in (await audit_page(admin))["entries"]] == ["incident.create"]


async def test_the_schedule_is_audited_as_the_system(
    admin: httpx.AsyncClient, services: Services
) -> None:
    window = created(await post_window(admin, scheduled_for="2026-11-23T02:00:00Z"))
    assert await services.core.apply_schedule() == 1

    newest = (await audit_page(admin, limit=1))["entries"][0]

    assert (newest["actor"], newest["token_id"], newest["action"], newest["target"]) == (
        "system",
        None,
        "maintenance.update",
        window["id"],
    )
    assert newest["detail"] == {"status": "in_progress"}


async def test_the_audit_log_pages_backwards_with_next_before(admin: httpx.AsyncClient) -> None:
    ids = [(await open_incident(admin, name=f"Gangguan {n}"))["id"] for n in range(5)]

    seen: list[str] = []
    sizes: list[int] = []
    entry_ids: list[int] = []
    page = await audit_page(admin, limit=2)
    while True:
        sizes.append(len(page["entries"]))
        seen += [e["target"] for e in page["entries"]]
        entry_ids += [e["id"] for e in page["entries"]]
        if page["next_before"] is None:
            break
        assert page["next_before"] == page["entries"][-1]["id"]
        page = await audit_page(admin, limit=2, before=page["next_before"])

    assert sizes == [2, 2, 1]
    assert seen == list(reversed(ids))
    assert entry_ids == sorted(entry_ids, reverse=True)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("limit=2.5", "limit"),
        ("limit=", "limit"),
        ("limit=%C2%B2", "limit"),  # a superscript two: a digit to str.isdigit, not to int()
        ("limit=%D9%A3", "limit"),  # an Arabic-Indic three
        ("limit=" + "9" * 5000, "limit"),
        ("before=0", "before"),
        ("before=abc", "before"),
        ("before=" + "1" * 40, "before"),
    ],
    ids=lambda v: v if len(v) < 30 else v[:20] + "...",
)
async def test_a_bad_limit_or_cursor_is_a_400_naming_it(
    admin: httpx.AsyncClient, query: str, field: str
) -> None:
    refused(await admin.get(f"/api/v1/audit?{query}"), 400, "invalid", field)


async def test_the_audit_log_needs_a_token_before_anything_else(
    applicant: httpx.AsyncClient,
) -> None:
    response = await applicant.get("/api/v1/audit?limit=0")
    refused(response, 401, "unauthorized", None)

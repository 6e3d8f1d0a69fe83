"""Staff on the prober's side: typing a branch queue, silencing a check, listing checks."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import insert

from status import db
from status.schema import audit, check_state
from status.services import Services

pytestmark = pytest.mark.anyio


async def branch_queue(applicant: httpx.AsyncClient, branch_id: str) -> object:
    doc = (await applicant.get("/api/v1/branches")).json()
    return next(b["queue"] for b in doc["branches"] if b["id"] == branch_id)


async def test_branch_staff_type_their_queue_and_applicants_see_it(
    medan_staff: httpx.AsyncClient, applicant: httpx.AsyncClient
) -> None:
    answer = await medan_staff.put(
        "/api/v1/branches/kcu-medan/queue", json={"serving": 37, "issued": 120, "counters_open": 2}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["length"] == 83
    queue = await branch_queue(applicant, "kcu-medan")
    assert isinstance(queue, dict)
    assert (queue["serving"], queue["length"], queue["source"]) == (37, 83, "manual")
    assert queue["stalled"] is False  # typed numbers never count as a stall


async def test_staff_cannot_type_another_branchs_queue(
    denpasar_staff: httpx.AsyncClient, applicant: httpx.AsyncClient, services: Services
) -> None:
    answer = await denpasar_staff.put(
        "/api/v1/branches/kcu-medan/queue", json={"serving": 1, "issued": 2}
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["field"] == "components.kcu-medan"
    assert await branch_queue(applicant, "kcu-medan") is None
    async with db.read(services.engine) as conn:
        rows = list(await conn.execute(audit.select().where(audit.c.action == "queue.set")))
    assert [(r.outcome, r.actor) for r in rows] == [("denied", "petugas denpasar")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"serving": -1, "issued": 5}, "serving"),
        ({"serving": 1}, "issued"),
        ({"serving": "37", "issued": 40}, "serving"),
        ({"serving": 1, "issued": 2, "x": 1}, "x"),
        ({"serving": True, "issued": 2}, "serving"),
    ],
)
async def test_a_bad_queue_entry_names_the_field(
    admin: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    answer = await admin.put("/api/v1/branches/kcu-medan/queue", json=body)
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == field


async def test_an_unknown_branch_is_a_404(admin: httpx.AsyncClient) -> None:
    answer = await admin.put(
        "/api/v1/branches/kcu-atlantis/queue", json={"serving": 1, "issued": 1}
    )
    assert answer.status_code == 404


async def _a_check(services: Services) -> None:
    async with db.write(services.engine) as conn:
        await conn.execute(
            insert(check_state).values(
                check_id="purchase-api",
                component_id="emeterai-purchase",
                severity="major_outage",
                failing=False,
                transitions=[],
                updated_at=services.clock.now(),
            )
        )


async def test_admins_silence_a_check_for_a_while_and_see_it_listed(
    admin: httpx.AsyncClient, services: Services
) -> None:
    await _a_check(services)
    answer = await admin.post("/api/v1/checks/purchase-api/silence", json={"for": "30m"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "check_id": "purchase-api",
        "silenced_until": "2026-11-23T03:30:00.000Z",
    }
    listed = (await admin.get("/api/v1/checks")).json()["checks"]
    assert listed[0]["silenced_until"] == "2026-11-23T03:30:00.000Z"
    lifted = await admin.post("/api/v1/checks/purchase-api/silence", json={"until": None})
    assert lifted.json()["silenced_until"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"for": "30"}, "for"),
        ({"for": "8d"}, "for"),
        ({}, "for"),
        ({"for": "1h", "until": None}, "for"),
        ({"until": "2020-01-01T00:00:00Z"}, "until"),
    ],
)
async def test_a_bad_silence_names_the_field(
    admin: httpx.AsyncClient, services: Services, body: dict[str, object], field: str
) -> None:
    await _a_check(services)
    answer = await admin.post("/api/v1/checks/purchase-api/silence", json=body)
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == field


async def test_branch_staff_cannot_silence_an_upstream_check_nor_list_checks(
    medan_staff: httpx.AsyncClient, services: Services
) -> None:
    await _a_check(services)
    silenced = await medan_staff.post("/api/v1/checks/purchase-api/silence", json={"for": "1h"})
    assert silenced.status_code == 403
    assert (await medan_staff.get("/api/v1/checks")).status_code == 403

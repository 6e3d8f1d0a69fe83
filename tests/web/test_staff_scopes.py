"""Branch staff post for their own branch and nowhere else; nobody gets in without a live token."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from status import tokens
from status.clock import ManualClock
from status.services import Services
from tests.web.test_staff_incidents import (
    created,
    open_incident,
    post_incident,
    post_update,
    post_window,
    post_window_update,
    refused,
    shown_status,
    stored_rows,
)

pytestmark = pytest.mark.anyio

CHALLENGE = 'Bearer realm="siaran"'
MEDAN_OUTAGE = {"kcu-medan": "partial_outage"}


async def last_audit(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.get("/api/v1/audit", params={"limit": 1})
    assert response.status_code == 200
    entry: dict[str, Any] = response.json()["entries"][0]
    return entry


async def assert_denied_and_nothing_written(
    admin: httpx.AsyncClient,
    services: Services,
    before: dict[str, int],
    refusal: str,
    action: str,
    target: str,
) -> None:
    """The refused write left no trace but one audit entry saying why, as the client was told."""
    assert await stored_rows(services) == before
    entry = await last_audit(admin)
    assert (entry["actor"], entry["action"], entry["target"], entry["outcome"]) == (
        "petugas medan",
        action,
        target,
        "denied",
    )
    assert entry["detail"] == {"reason": refusal}


# -- what branch staff may do ------------------------------------------------------------------


async def test_medan_staff_open_update_and_resolve_an_incident_for_their_branch(
    medan_staff: httpx.AsyncClient, applicant: httpx.AsyncClient
) -> None:
    incident = await open_incident(
        medan_staff,
        name="Antrean KCU Medan tidak bergerak",
        impact="minor",
        components=MEDAN_OUTAGE,
    )
    assert await shown_status(applicant, "kcu-medan") == "partial_outage"

    identified = created(
        await post_update(
            medan_staff,
            incident["id"],
            status="identified",
            body="Jaringan loket putus.",
            components={"kcu-medan": "major_outage"},
        )
    )
    assert identified["status"] == "identified"
    assert await shown_status(applicant, "kcu-medan") == "major_outage"

    resolved = created(
        await post_update(medan_staff, incident["id"], status="resolved", body="Loket buka.")
    )
    assert resolved["status"] == "resolved"
    assert await shown_status(applicant, "kcu-medan") == "operational"


async def test_medan_staff_schedule_and_run_maintenance_for_their_branch(
    medan_staff: httpx.AsyncClient,
) -> None:
    window = created(await post_window(medan_staff))
    started = await post_window_update(
        medan_staff, window["id"], status="in_progress", body="Mulai"
    )
    assert created(started)["status"] == "in_progress"


async def test_an_admin_may_post_for_any_component(admin: httpx.AsyncClient) -> None:
    incident = await open_incident(
        admin, components={"emeterai-purchase": "major_outage", "kcu-denpasar": "major_outage"}
    )
    assert [c["id"] for c in incident["components"]] == ["emeterai-purchase", "kcu-denpasar"]
    window = created(await post_window(admin, components=["kcu-denpasar", "kcu-jayapura"]))
    assert [c["id"] for c in window["components"]] == ["kcu-denpasar", "kcu-jayapura"]


# -- what branch staff may not do --------------------------------------------------------------


@pytest.mark.parametrize(
    ("components", "field"),
    [
        ({"kcu-denpasar": "major_outage"}, "components.kcu-denpasar"),
        ({"kcu-medan": "major_outage", "kcu-denpasar": "major_outage"}, "components.kcu-denpasar"),
        ({}, "components"),
        ({"emeterai-purchase": "major_outage"}, "components.emeterai-purchase"),
        ({"kcu-surabaya": "major_outage"}, "components.kcu-surabaya"),
        ({"kcu-medan\x00": "major_outage"}, "components.kcu-medan\x00"),
    ],
    ids=["other-branch", "mixed", "none", "upstream", "unknown-branch", "nul"],
)
async def test_medan_staff_cannot_post_an_incident_outside_their_branch(
    medan_staff: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    services: Services,
    components: dict[str, str],
    field: str,
) -> None:
    before = await stored_rows(services)

    response = await post_incident(medan_staff, components=components)

    refusal = refused(response, 403, "forbidden", field)
    await assert_denied_and_nothing_written(admin, services, before, refusal, "incident.create", "")


async def test_medan_staff_cannot_update_an_incident_that_covers_other_components(
    medan_staff: httpx.AsyncClient, admin: httpx.AsyncClient, services: Services
) -> None:
    incident = await open_incident(
        admin, components={"kcu-medan": "major_outage", "kcu-denpasar": "major_outage"}
    )
    before = await stored_rows(services)

    response = await post_update(medan_staff, incident["id"], status="resolved", body="Beres.")

    refusal = refused(response, 403, "forbidden", "components.kcu-denpasar")
    await assert_denied_and_nothing_written(
        admin, services, before, refusal, "incident.update", incident["id"]
    )
    still = (await admin.get(f"/api/v1/incidents/{incident['id']}")).json()
    assert (still["status"], len(still["incident_updates"])) == ("investigating", 1)


async def test_medan_staff_cannot_widen_their_incident_to_denpasar(
    medan_staff: httpx.AsyncClient, admin: httpx.AsyncClient, services: Services
) -> None:
    incident = await open_incident(medan_staff, components=MEDAN_OUTAGE)
    before = await stored_rows(services)

    response = await post_update(
        medan_staff,
        incident["id"],
        status="identified",
        body="Denpasar juga.",
        components={"kcu-denpasar": "major_outage"},
    )

    refusal = refused(response, 403, "forbidden", "components.kcu-denpasar")
    await assert_denied_and_nothing_written(
        admin, services, before, refusal, "incident.update", incident["id"]
    )
    still = (await admin.get(f"/api/v1/incidents/{incident['id']}")).json()
    assert [c["id"] for c in still["components"]] == ["kcu-medan"]


async def test_denpasar_staff_cannot_touch_the_medan_incident(
    denpasar_staff: httpx.AsyncClient, medan_staff: httpx.AsyncClient, services: Services
) -> None:
    incident = await open_incident(medan_staff, components=MEDAN_OUTAGE)
    before = await stored_rows(services)
    response = await post_update(denpasar_staff, incident["id"], status="resolved", body="x")
    refused(response, 403, "forbidden", "components.kcu-medan")
    assert await stored_rows(services) == before


@pytest.mark.parametrize(
    ("components", "field"),
    [
        (["kcu-denpasar"], "components.kcu-denpasar"),
        (["kcu-medan", "kcu-jayapura"], "components.kcu-jayapura"),
        ([], "components"),
    ],
    ids=["other-branch", "mixed", "none"],
)
async def test_medan_staff_cannot_schedule_maintenance_for_another_branch(
    medan_staff: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    services: Services,
    components: list[str],
    field: str,
) -> None:
    before = await stored_rows(services)

    response = await post_window(medan_staff, components=components)

    refusal = refused(response, 403, "forbidden", field)
    await assert_denied_and_nothing_written(
        admin, services, before, refusal, "maintenance.create", ""
    )


async def test_medan_staff_cannot_move_a_denpasar_maintenance(
    medan_staff: httpx.AsyncClient, admin: httpx.AsyncClient, services: Services
) -> None:
    window = created(await post_window(admin, components=["kcu-denpasar"]))
    before = await stored_rows(services)

    response = await post_window_update(medan_staff, window["id"], status="completed", body="x")

    refusal = refused(response, 403, "forbidden", "components.kcu-denpasar")
    await assert_denied_and_nothing_written(
        admin, services, before, refusal, "maintenance.update", window["id"]
    )


async def test_only_an_admin_reads_the_audit_log(
    medan_staff: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    refused(await medan_staff.get("/api/v1/audit"), 403, "forbidden", None)
    assert (await admin.get("/api/v1/audit")).status_code == 200


# -- who gets in at all ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "authorization"),
    [
        ("POST", "/api/v1/incidents", None),
        ("POST", "/api/v1/incidents", "Basic b3BzOnJhaGFzaWE="),
        ("POST", "/api/v1/incidents", "Bearer"),
        ("POST", "/api/v1/incidents", "Bearer    "),
        ("POST", "/api/v1/incidents", "Bearer siaran_tidakdikenal"),
        ("POST", "/api/v1/incidents", "Token siaran_tidakdikenal"),
        ("POST", "/api/v1/incidents", "Bearer " + "siaran_" + "x" * 300),
        ("GET", "/api/v1/incidents/abcdefabcdef", None),
        ("GET", "/api/v1/audit", "Bearer siaran_tidakdikenal"),
        ("POST", "/api/v1/maintenances", None),
        ("POST", "/api/v1/incidents/abcdefabcdef/updates", "Basic b3BzOnJhaGFzaWE="),
    ],
    ids=lambda v: None if v is None else str(v)[:40],
)
async def test_a_request_without_a_live_bearer_token_is_a_401_with_a_challenge(
    applicant: httpx.AsyncClient,
    services: Services,
    authorization: str | None,
    method: str,
    path: str,
) -> None:
    before = await stored_rows(services)
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await applicant.request(method, path, headers=headers, json={"name": "x"})
    refused(response, 401, "unauthorized", None)
    assert response.headers["www-authenticate"] == CHALLENGE
    assert await stored_rows(services) == before


async def test_a_write_records_when_its_token_was_last_used(
    medan_staff: httpx.AsyncClient, services: Services, clock: ManualClock
) -> None:
    (fresh,) = await tokens.list_tokens(services.engine)
    assert fresh.last_used_at is None
    clock.advance(timedelta(minutes=90))

    created(await post_incident(medan_staff, components=MEDAN_OUTAGE))

    (used,) = await tokens.list_tokens(services.engine)
    assert (used.name, used.last_used_at) == ("petugas medan", clock.now())


async def test_a_revoked_token_is_refused_from_the_next_request(
    medan_staff: httpx.AsyncClient, services: Services
) -> None:
    me = (await medan_staff.get("/api/v1/whoami")).json()
    assert me == {
        "name": "petugas medan",
        "token_id": me["token_id"],
        "scopes": ["branch:kcu-medan"],
    }
    created(await post_incident(medan_staff, components=MEDAN_OUTAGE))

    revoked = await tokens.revoke_token(services.engine, me["token_id"], services.clock.now())
    assert revoked == [me["token_id"]]

    before = await stored_rows(services)
    response = await post_incident(medan_staff, components=MEDAN_OUTAGE)
    refused(response, 401, "unauthorized", None)
    assert response.headers["www-authenticate"] == CHALLENGE
    assert await stored_rows(services) == before

"""A staff client on a flaky queue-hall connection retries a post; the page shows it once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from status.clock import ManualClock
from status.schema import idempotency
from status.services import Services
from tests.web.test_staff_incidents import (
    created,
    incident_fields,
    open_incident,
    refused,
    stored_rows,
    window_fields,
)

pytestmark = pytest.mark.anyio

KEY = "laporan-medan-0001"


async def post_with_key(
    client: httpx.AsyncClient,
    key: str | bytes,
    path: str = "/api/v1/incidents",
    doc: dict[str, Any] | None = None,
) -> httpx.Response:
    body = incident_fields(components={"kcu-medan": "major_outage"}) if doc is None else doc
    raw = key if isinstance(key, bytes) else key.encode("latin-1")
    return await client.post(path, json=body, headers={b"Idempotency-Key": raw})


def once_more(before: dict[str, int]) -> dict[str, int]:
    """One more of everything a post writes: incident, update, component link, event, key."""
    return {table: count + 1 for table, count in before.items()}


async def test_a_retried_post_answers_the_first_response_and_writes_once(
    medan_staff: httpx.AsyncClient, services: Services
) -> None:
    before = await stored_rows(services)

    first = await post_with_key(medan_staff, KEY)
    retry = await post_with_key(medan_staff, KEY)

    assert first.status_code == retry.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert await stored_rows(services) == once_more(before)


async def test_the_same_key_with_a_different_body_is_refused_and_writes_nothing(
    medan_staff: httpx.AsyncClient, services: Services
) -> None:
    created(await post_with_key(medan_staff, KEY))
    before = await stored_rows(services)

    other = incident_fields(name="Lain lagi", components={"kcu-medan": "major_outage"})
    response = await post_with_key(medan_staff, KEY, doc=other)

    refused(response, 422, "idempotency_key_reused", "Idempotency-Key")
    assert await stored_rows(services) == before


async def test_the_same_key_on_another_route_is_refused(
    admin: httpx.AsyncClient, services: Services
) -> None:
    incident = created(await post_with_key(admin, KEY))
    before = await stored_rows(services)
    path = f"/api/v1/incidents/{incident['id']}/updates"
    response = await post_with_key(admin, KEY, path, {"status": "resolved", "body": "Beres."})
    refused(response, 422, "idempotency_key_reused", "Idempotency-Key")
    assert await stored_rows(services) == before


async def test_key_order_in_the_body_does_not_make_a_different_request(
    admin: httpx.AsyncClient, services: Services
) -> None:
    doc = incident_fields()
    first = created(await post_with_key(admin, KEY, doc=doc))
    before = await stored_rows(services)
    retry = await post_with_key(admin, KEY, doc=dict(reversed(doc.items())))
    assert created(retry) == first
    assert await stored_rows(services) == before


async def test_two_people_using_the_same_key_do_not_collide(
    medan_staff: httpx.AsyncClient, admin: httpx.AsyncClient, services: Services
) -> None:
    before = await stored_rows(services)

    mine = created(await post_with_key(medan_staff, KEY))
    theirs = await post_with_key(admin, KEY)

    assert "idempotent-replayed" not in theirs.headers
    assert created(theirs)["id"] != mine["id"]
    assert (await stored_rows(services))["incidents"] == before["incidents"] + 2


async def test_without_a_key_two_identical_posts_are_two_incidents(
    admin: httpx.AsyncClient, services: Services
) -> None:
    first = await open_incident(admin)
    second = await open_incident(admin)
    assert first["id"] != second["id"]
    assert (await stored_rows(services))["idempotency"] == 0


async def test_a_retried_update_and_maintenance_are_written_once(
    admin: httpx.AsyncClient, services: Services
) -> None:
    incident = created(await post_with_key(admin, "buka"))
    path = f"/api/v1/incidents/{incident['id']}/updates"
    update = {"status": "resolved", "body": "Loket buka lagi."}
    first = created(await post_with_key(admin, "tutup", path, update))
    before = await stored_rows(services)
    assert created(await post_with_key(admin, "tutup", path, update)) == first
    assert await stored_rows(services) == before

    window = created(await post_with_key(admin, "jadwal", "/api/v1/maintenances", window_fields()))
    again = await post_with_key(admin, "jadwal", "/api/v1/maintenances", window_fields())
    assert created(again) == window
    assert (await stored_rows(services))["incidents"] == before["incidents"] + 1


@pytest.mark.parametrize(
    "key",
    ["k", "x" * 200, "2026-11-23 Medan #1", "~!@#$%^&*()_+{}|:<>?"],
    ids=["one-char", "200-chars", "spaces", "punctuation"],
)
async def test_any_printable_ascii_key_up_to_200_characters_is_accepted(
    admin: httpx.AsyncClient, key: str
) -> None:
    first = created(await post_with_key(admin, key))
    assert created(await post_with_key(admin, key)) == first


@pytest.mark.parametrize(
    "key",
    [
        "",
        "x" * 201,
        "kunci\x7f",
        "kunci\tdua",
        "kunci-é".encode("latin-1"),
        "タイムアウト".encode(),
    ],
    ids=["empty", "201-chars", "delete-char", "tab", "latin-1", "utf-8"],
)
async def test_a_malformed_key_is_a_400_and_writes_nothing(
    admin: httpx.AsyncClient, services: Services, key: str | bytes
) -> None:
    before = await stored_rows(services)
    refused(await post_with_key(admin, key), 400, "invalid_idempotency_key", "Idempotency-Key")
    assert await stored_rows(services) == before


async def test_two_identical_posts_at_the_same_moment_make_one_incident(
    medan_staff: httpx.AsyncClient, services: Services
) -> None:
    before = await stored_rows(services)

    responses = await asyncio.gather(*(post_with_key(medan_staff, KEY) for _ in range(2)))

    bodies = [created(r) for r in responses]
    assert bodies[0] == bodies[1]
    replayed = sorted(r.headers.get("idempotent-replayed", "no") for r in responses)
    assert replayed == ["no", "true"]
    assert await stored_rows(services) == once_more(before)


async def test_many_identical_posts_at_once_still_make_one_incident(
    admin: httpx.AsyncClient, services: Services
) -> None:
    before = await stored_rows(services)
    responses = await asyncio.gather(*(post_with_key(admin, KEY) for _ in range(6)))
    assert len({created(r)["id"] for r in responses}) == 1
    assert await stored_rows(services) == once_more(before)


async def test_a_key_is_remembered_for_a_day_then_forgotten_and_cleared(
    medan_staff: httpx.AsyncClient, services: Services, clock: ManualClock
) -> None:
    first = created(await post_with_key(medan_staff, KEY))
    clock.advance(timedelta(hours=23))
    replay = await post_with_key(medan_staff, KEY)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == first["id"]

    clock.advance(timedelta(hours=2))
    # A day later the key is a new request: a new incident, and the old record is gone.
    later = created(await post_with_key(medan_staff, KEY))
    assert later["id"] != first["id"]
    async with services.engine.connect() as conn:
        keys = (await conn.execute(select(idempotency.c.key, idempotency.c.created_at))).all()
    assert [(k, at) for k, at in keys] == [(KEY, clock.now())]

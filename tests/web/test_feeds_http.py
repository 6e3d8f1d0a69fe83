"""The feeds through the real app and database: what a journalist's feed reader receives."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

import feedparser  # type: ignore[import-untyped]  # feedparser ships no type hints
import httpx
import pytest

from status.clock import ManualClock

pytestmark = pytest.mark.anyio

BASE = "https://status.example.id"
OUTAGE = {
    "name": "Loket e-Meterai KCU Denpasar tutup <script>alert(1)</script> &",
    "status": "investigating",
    "impact": "major",
    "body": "Jaringan ke server e-Meterai putus <b>&\"'.",
    "components": {"kcu-denpasar": "major_outage"},
}
MAINTENANCE = {
    "name": "Pemeliharaan server e-Meterai",
    "body": "Pembubuhan tidak tersedia selama dua jam.",
    "scheduled_for": "2026-11-24T01:00:00Z",
    "scheduled_until": "2026-11-24T03:00:00Z",
    "components": ["emeterai-stamping"],
}


def read(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def outage_resolved_and_maintenance(
    admin: httpx.AsyncClient, clock: ManualClock
) -> list[dict[str, Any]]:
    """An outage with two updates, then a maintenance; returned newest posted first, as the API shows them."""
    outage = await post(admin, "/api/v1/incidents", OUTAGE)
    clock.advance(timedelta(minutes=45))
    await post(
        admin,
        f"/api/v1/incidents/{outage['id']}/updates",
        {"status": "resolved", "body": "Loket buka kembali.", "components": {}},
    )
    clock.advance(timedelta(minutes=5))
    maintenance = await post(admin, "/api/v1/maintenances", MAINTENANCE)
    return [(await admin.get(f"/api/v1/incidents/{i['id']}")).json() for i in (maintenance, outage)]


async def test_history_feed_matches_the_incidents_update_by_update(
    applicant: httpx.AsyncClient, admin: httpx.AsyncClient, clock: ManualClock
) -> None:
    incidents = await outage_resolved_and_maintenance(admin, clock)
    for path in ("/history.atom", "/history.rss"):
        feed = read(await applicant.get(path))
        assert [e.id for e in feed.entries] == [i["shortlink"] for i in incidents]
        assert [e.title for e in feed.entries] == [i["name"] for i in incidents]
        for entry, incident in zip(feed.entries, incidents, strict=True):
            assert entry.link == f"{BASE}/incidents/{incident['id']}"
            text = entry.summary
            bodies = [html.escape(u["body"]) for u in incident["incident_updates"]]
            positions = [text.index(body) for body in bodies]
            assert positions == sorted(positions), "updates newest first"
            assert text.count("<small>") == len(bodies)
    outage = read(await applicant.get("/history.atom")).entries[1]
    assert "<strong>Selesai</strong> - Loket buka kembali." in outage.summary
    assert "Senin 23-11-2026 11.45 WITA" in outage.summary  # 03:45 UTC in Denpasar
    assert outage.updated == "2026-11-23T03:45:00+00:00"


async def test_updates_feed_has_an_entry_for_every_update(
    applicant: httpx.AsyncClient, admin: httpx.AsyncClient, clock: ManualClock
) -> None:
    incidents = await outage_resolved_and_maintenance(admin, clock)
    expected = [
        (f"{i['shortlink']}#update-{u['id']}", u["body"])
        for i in incidents
        for u in i["incident_updates"]
    ]
    for path in ("/updates.atom", "/updates.rss"):
        feed = read(await applicant.get(path))
        assert [e.id for e in feed.entries] == [entry_id for entry_id, _ in expected]
        for entry, (_, body) in zip(feed.entries, expected, strict=True):
            assert html.escape(body) in entry.summary


async def test_repeated_get_with_the_etag_gets_304_until_an_update_arrives(
    applicant: httpx.AsyncClient, admin: httpx.AsyncClient, clock: ManualClock
) -> None:
    outage = await post(admin, "/api/v1/incidents", OUTAGE)
    for path in ("/history.atom", "/updates.rss", "/components/kcu-denpasar/history.atom"):
        first = await applicant.get(path)
        assert first.status_code == 200
        media = "application/atom+xml" if path.endswith(".atom") else "application/rss+xml"
        assert first.headers["content-type"] == f"{media}; charset=utf-8"
        assert first.headers["vary"] == "Accept-Encoding"
        etag = first.headers["etag"]
        again = await applicant.get(path, headers={"If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b"")
        assert again.headers["etag"] == etag
    before = read(await applicant.get("/history.atom"))
    etag = (await applicant.get("/history.atom")).headers["etag"]

    clock.advance(timedelta(minutes=10))
    await post(
        admin,
        f"/api/v1/incidents/{outage['id']}/updates",
        {"status": "identified", "body": "Penyebab ditemukan.", "components": {}},
    )
    changed = await applicant.get("/history.atom", headers={"If-None-Match": etag})
    after = read(changed)
    assert changed.headers["etag"] != etag
    # The entry is the same entry, updated: its id holds, its `updated` moves.
    assert [e.id for e in after.entries] == [e.id for e in before.entries]
    assert after.entries[0].id == f"{BASE}/incidents/{outage['id']}"
    assert before.entries[0].updated == "2026-11-23T03:00:00+00:00"
    assert after.entries[0].updated == "2026-11-23T03:10:00+00:00"
    assert after.feed.updated == "2026-11-23T03:10:00+00:00"


async def test_english_feed_on_request(
    applicant: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await post(admin, "/api/v1/incidents", OUTAGE)
    indonesian = read(await applicant.get("/history.atom", headers={"Accept-Language": "en"}))
    english = read(await applicant.get("/history.atom?lang=en"))
    assert (indonesian.feed.language, english.feed.language) == ("id", "en")
    assert "<strong>Investigasi</strong>" in indonesian.entries[0].summary
    assert "Monday 2026-11-23 11:00 WITA" in english.entries[0].summary
    assert "<strong>Investigating</strong>" in english.entries[0].summary
    assert english.entries[0].link.endswith("?lang=en")
    assert english.feed.title == "Status e-Meterai — Incident history"


async def test_component_and_region_feeds_hold_only_what_concerns_them(
    applicant: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    outage = await post(admin, "/api/v1/incidents", OUTAGE)
    mine = f"{BASE}/incidents/{outage['id']}"
    for path in (
        "/components/kcu-denpasar/history.rss",
        "/regions/bali/history.atom?lang=en",
        "/history.rss",
    ):
        assert [e.id for e in read(await applicant.get(path)).entries] == [mine], path
    for path in ("/components/kcu-medan/history.atom", "/regions/sumatera-utara/history.rss"):
        assert read(await applicant.get(path)).entries == [], path
    unknown = await applicant.get("/components/kcu-nowhere/history.atom")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"

"""Tests for status/web/public.py: what an applicant's phone, a widget or a CDN sees on public reads."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime

import httpx
import pytest

from status.clock import ManualClock

pytestmark = pytest.mark.anyio

V2_PATHS = [
    "/api/v2/summary.json",
    "/api/v2/status.json",
    "/api/v2/components.json",
    "/api/v2/incidents.json",
    "/api/v2/incidents/unresolved.json",
    "/api/v2/scheduled-maintenances.json",
    "/api/v2/scheduled-maintenances/upcoming.json",
    "/api/v2/scheduled-maintenances/active.json",
]
PUBLIC_PATHS = [*V2_PATHS, "/api/v1/branches", "/openapi.json"]
IDENTITY = {"Accept-Encoding": "identity"}
NEW_INCIDENT = {
    "name": "Antrean KCU Medan <b>&\"'",
    "status": "investigating",
    "impact": "major",
    "body": "Nomor antrean tidak bergerak sejak 08.00 WIB.",
    "components": {"kcu-medan": "partial_outage"},
}


@pytest.mark.parametrize("path", PUBLIC_PATHS)
async def test_public_document_is_json_any_site_may_read(
    applicant: httpx.AsyncClient, path: str
) -> None:
    response = await applicant.get(path, headers=IDENTITY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-expose-headers"] == "ETag, Last-Modified"
    assert response.headers["vary"] == "Accept-Encoding"
    assert "content-encoding" not in response.headers
    assert int(response.headers["content-length"]) == len(response.content)
    assert isinstance(response.json(), dict)


@pytest.mark.parametrize("path", V2_PATHS)
async def test_v2_documents_start_with_the_page(applicant: httpx.AsyncClient, path: str) -> None:
    page = (await applicant.get(path)).json()["page"]
    assert {k: page[k] for k in ("name", "url", "time_zone")} == {
        "name": "Status e-Meterai",
        "url": "https://status.example.id",
        "time_zone": "Asia/Jakarta",
    }


@pytest.mark.parametrize("path", PUBLIC_PATHS)
async def test_cache_lets_a_cdn_serve_the_rush(applicant: httpx.AsyncClient, path: str) -> None:
    response = await applicant.get(path)
    directives = [d.strip() for d in response.headers["cache-control"].split(",")]
    assert "public" in directives
    assert "max-age=5" in directives
    assert "stale-while-revalidate=30" in directives


async def test_repeated_get_with_the_etag_gets_304_without_a_body(
    applicant: httpx.AsyncClient,
) -> None:
    first = await applicant.get("/api/v2/summary.json")
    etag = first.headers["etag"]
    again = await applicant.get("/api/v2/summary.json", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["last-modified"] == first.headers["last-modified"]
    assert again.headers["access-control-allow-origin"] == "*"
    assert "max-age=5" in again.headers["cache-control"]
    assert "content-length" not in again.headers or again.headers["content-length"] == "0"


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [
        pytest.param("{etag}", 304, id="same"),
        pytest.param("W/{etag}", 304, id="weak-form-of-same"),
        pytest.param('"older", {etag}', 304, id="one-of-several"),
        pytest.param("*", 304, id="any"),
        pytest.param('"older"', 200, id="different"),
        pytest.param("", 200, id="empty"),
    ],
)
async def test_if_none_match_compares_etags(
    applicant: httpx.AsyncClient, if_none_match: str, status: int
) -> None:
    etag = (await applicant.get("/api/v2/status.json")).headers["etag"]
    header = if_none_match.format(etag=etag)
    response = await applicant.get("/api/v2/status.json", headers={"If-None-Match": header})
    assert response.status_code == status


@pytest.mark.parametrize(
    ("shift", "status"),
    [
        pytest.param(timedelta(0), 304, id="equal-to-last-modified"),
        pytest.param(timedelta(hours=1), 304, id="later"),
        pytest.param(timedelta(seconds=-1), 200, id="earlier"),
        pytest.param(None, 200, id="not-a-date"),
    ],
)
async def test_if_modified_since_compares_with_last_modified(
    applicant: httpx.AsyncClient, shift: timedelta | None, status: int
) -> None:
    last_modified = (await applicant.get("/api/v2/components.json")).headers["last-modified"]
    since = (
        format_datetime(parsedate_to_datetime(last_modified) + shift, usegmt=True)
        if shift is not None
        else "yesterday"
    )
    response = await applicant.get("/api/v2/components.json", headers={"If-Modified-Since": since})
    assert response.status_code == status
    assert response.content == (b"" if status == 304 else response.content)


async def test_if_none_match_wins_over_if_modified_since(applicant: httpx.AsyncClient) -> None:
    first = await applicant.get("/api/v2/summary.json")
    headers = {"If-None-Match": '"older"', "If-Modified-Since": first.headers["last-modified"]}
    assert (await applicant.get("/api/v2/summary.json", headers=headers)).status_code == 200


@pytest.mark.parametrize("path", PUBLIC_PATHS)
async def test_gzip_is_sent_to_who_asks_and_holds_the_same_json(
    applicant: httpx.AsyncClient, path: str
) -> None:
    plain = await applicant.get(path, headers=IDENTITY)
    async with applicant.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) == len(raw)
    assert response.headers["etag"] == plain.headers["etag"]
    assert gzip.decompress(raw) == plain.content
    assert len(raw) < len(plain.content) or len(plain.content) < 200


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip, deflate, br, zstd", True),
        ("GZIP", True),
        ("deflate, gzip;q=0.5", True),
        ("*", True),
        ("identity", False),
        ("deflate, br", False),
        ("gzip;q=0", False),
        ("*, gzip;q=0", False),
        ("*;q=0", False),
    ],
)
async def test_gzip_only_when_the_client_accepts_it(
    applicant: httpx.AsyncClient, accept_encoding: str, gzipped: bool
) -> None:
    headers = {"Accept-Encoding": accept_encoding}
    async with applicant.stream("GET", "/api/v2/summary.json", headers=headers) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.headers.get("content-encoding") == ("gzip" if gzipped else None)
    assert raw.startswith(b"\x1f\x8b") is gzipped


async def test_head_returns_the_headers_without_a_body(applicant: httpx.AsyncClient) -> None:
    get = await applicant.get("/api/v2/summary.json", headers=IDENTITY)
    head = await applicant.head("/api/v2/summary.json", headers=IDENTITY)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("path", ["/api/v2/summary.json", "/api/v1/branches"])
async def test_cors_preflight_is_answered_with_204(applicant: httpx.AsyncClient, path: str) -> None:
    response = await applicant.options(
        path,
        headers={
            "Origin": "https://widget.example.org",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "If-None-Match",
        },
    )
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
    assert "If-None-Match" in response.headers["access-control-allow-headers"]
    assert response.headers["access-control-max-age"] == "86400"


async def test_new_incident_shows_at_once_and_changes_the_etag(
    applicant: httpx.AsyncClient, admin: httpx.AsyncClient, clock: ManualClock
) -> None:
    before = await applicant.get("/api/v2/summary.json")
    assert before.json()["incidents"] == []
    clock.advance(timedelta(minutes=5))
    posted = await admin.post("/api/v1/incidents", json=NEW_INCIDENT)
    assert posted.status_code == 201

    after = await applicant.get(
        "/api/v2/summary.json",
        headers={"If-None-Match": before.headers["etag"]},
    )
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    incidents = after.json()["incidents"]
    assert [(i["id"], i["name"], i["impact"]) for i in incidents] == [
        (posted.json()["id"], "Antrean KCU Medan <b>&\"'", "major")
    ]
    assert after.json()["status"] == {"indicator": "major", "description": "Gangguan sebagian"}
    assert parsedate_to_datetime(after.headers["last-modified"]) > parsedate_to_datetime(
        before.headers["last-modified"]
    )
    since_before = {"If-Modified-Since": before.headers["last-modified"]}
    assert (await applicant.get("/api/v2/summary.json", headers=since_before)).status_code == 200
    repeat = await applicant.get(
        "/api/v2/summary.json", headers={"If-None-Match": after.headers["etag"]}
    )
    assert repeat.status_code == 304


async def test_document_that_did_not_change_keeps_its_etag_and_date(
    applicant: httpx.AsyncClient, admin: httpx.AsyncClient, clock: ManualClock
) -> None:
    # Every v2 document carries page.updated_at, so any change touches them all (as on
    # Statuspage); the API description does not change, and caches keep their copy of it.
    before = await applicant.get("/openapi.json")
    clock.advance(timedelta(minutes=5))
    assert (await admin.post("/api/v1/incidents", json=NEW_INCIDENT)).status_code == 201
    after = await applicant.get("/openapi.json", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 304
    assert after.headers["last-modified"] == before.headers["last-modified"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_writing_to_a_public_document_is_refused_with_405(
    applicant: httpx.AsyncClient, method: str
) -> None:
    response = await applicant.request(method, "/api/v2/summary.json", json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    assert response.json() == {
        "error": {"code": "method_not_allowed", "message": "Method Not Allowed", "field": None}
    }


async def test_healthz_says_the_database_answers(applicant: httpx.AsyncClient) -> None:
    response = await applicant.get("/healthz")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    doc = response.json()
    assert {k: doc[k] for k in ("status", "database")} == {"status": "ok", "database": "ok"}
    assert isinstance(doc["snapshot_event_id"], int)
    assert doc["snapshot_built_at"] == "2026-11-23T03:00:00.000Z"


async def test_healthz_answers_head(applicant: httpx.AsyncClient) -> None:
    response = await applicant.head("/healthz")
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize(
    "path", ["/api/v2/nothing.json", "/api/v2/summary", "/api/v3/summary.json", "/etc/passwd"]
)
async def test_unknown_path_is_a_404_in_the_error_shape(
    applicant: httpx.AsyncClient, path: str
) -> None:
    response = await applicant.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not Found", "field": None}
    }


async def test_public_json_keeps_hostile_text_verbatim(
    applicant: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    assert (await admin.post("/api/v1/incidents", json=NEW_INCIDENT)).status_code == 201
    raw = (await applicant.get("/api/v2/incidents/unresolved.json", headers=IDENTITY)).content
    assert b'"name":"Antrean KCU Medan <b>&\\"\'"' in raw
    assert json.loads(raw)["incidents"][0]["name"] == "Antrean KCU Medan <b>&\"'"

"""The status page through the app, on both backends: what a phone receives, and how it is cached."""

from __future__ import annotations

import gzip
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from status import db
from status.clock import ManualClock
from status.config import Config, load_config_text
from status.schema import check_daily
from status.services import Services
from tests.conftest import TEST_CONFIG

pytestmark = pytest.mark.anyio

CHECK = """
[[check]]
id = "purchase-api"
component = "emeterai-purchase"
url = "https://upstream.example/api/health"
"""


@pytest.fixture
def config() -> Config:
    return load_config_text(TEST_CONFIG + CHECK, "test.toml")


async def test_the_page_is_html_in_bahasa_indonesia(applicant: httpx.AsyncClient) -> None:
    response = await applicant.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<html lang="id">' in response.text
    assert "Semua layanan berjalan normal" in response.text
    assert "KCU Denpasar" in response.text
    assert response.headers["vary"] == "Accept-Encoding, Accept-Language"


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/?lang=en", {}),
        ("/", {"accept-language": "en-US,en;q=0.9"}),
        ("/", {"accept-language": "fr, en;q=0.5, id;q=0.4"}),
    ],
)
async def test_english_by_query_or_browser_language(
    applicant: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> None:
    response = await applicant.get(url, headers=headers)
    assert '<html lang="en">' in response.text
    assert "All Systems Operational" in response.text


async def test_an_explicit_choice_beats_the_browser_language(applicant: httpx.AsyncClient) -> None:
    response = await applicant.get("/?lang=id", headers={"accept-language": "en"})
    assert '<html lang="id">' in response.text


async def test_a_new_incident_appears_on_the_page_and_at_its_permalink(
    admin: httpx.AsyncClient, applicant: httpx.AsyncClient
) -> None:
    before = await applicant.get("/")
    created = await admin.post(
        "/api/v1/incidents",
        json={
            "name": "Loket <script>alert(1)</script> tutup",
            "status": "identified",
            "impact": "major",
            "body": "Jaringan pusat terganggu. Nomor antrean tetap berlaku besok.",
            "components": {"kcu-medan": "major_outage"},
        },
    )
    assert created.status_code == 201
    incident_id = created.json()["id"]
    page = await applicant.get("/")
    assert page.headers["etag"] != before.headers["etag"]
    assert "Gangguan besar" in page.text
    assert "Loket &lt;script&gt;alert(1)&lt;/script&gt; tutup" in page.text
    assert "<script" not in page.text
    assert "Nomor antrean tetap berlaku besok." in page.text
    assert f'href="/incidents/{incident_id}?lang=id"' in page.text
    permalink = await applicant.get(f"/incidents/{incident_id}")
    assert permalink.status_code == 200
    assert "Teridentifikasi" in permalink.text
    english = await applicant.get(f"/incidents/{incident_id}", headers={"accept-language": "en"})
    assert "Identified" in english.text
    missing = await applicant.get("/incidents/nosuchincident")
    assert missing.status_code == 404


async def test_revalidation_answers_304_and_gzip_is_prepared(applicant: httpx.AsyncClient) -> None:
    first = await applicant.get("/", headers={"accept-encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip"
    assert int(first.headers["content-length"]) < len(first.content) / 4
    again = await applicant.get("/", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    since = await applicant.get("/", headers={"if-modified-since": first.headers["last-modified"]})
    assert since.status_code == 304
    english = await applicant.get(
        "/", headers={"if-none-match": first.headers["etag"], "accept-language": "en"}
    )
    assert english.status_code == 200, "the English page is another representation"


async def test_plain_body_for_clients_without_gzip(applicant: httpx.AsyncClient) -> None:
    response = await applicant.get("/", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in response.headers
    zipped = await applicant.get("/", headers={"accept-encoding": "gzip"})
    assert gzip.decompress(await _raw(applicant, "/")) == response.content == zipped.content


async def _raw(client: httpx.AsyncClient, path: str) -> bytes:
    async with client.stream("GET", path, headers={"accept-encoding": "gzip"}) as response:
        return b"".join([chunk async for chunk in response.aiter_raw()])


async def test_uptime_bars_come_from_the_daily_figures(
    services: Services, clock: ManualClock, applicant: httpx.AsyncClient
) -> None:
    today = clock.now().date()  # 10:00 WIB: the same day in Jakarta
    rows: list[dict[str, Any]] = [
        {
            "check_id": "purchase-api",
            "day": (today - timedelta(days=n)).isoformat(),
            "total": 1000,
            "failures": 50 if n == 1 else 0,
            "latency_buckets": {},
            "updated_at": clock.now(),
        }
        for n in range(100)  # older days are not shown
    ]
    async with db.write(services.engine) as conn:
        await conn.execute(insert(check_daily), rows)
    await services.snapshot.refresh(force=True)
    page = (await applicant.get("/")).text
    assert "99,9% waktu normal dalam 90 hari" in page  # 50 failures in 90,000 checks, floored
    yesterday = today - timedelta(days=1)
    assert f"95,0% normal pada {yesterday:%d-%m-%Y}" in page
    assert page.count("% normal pada ") == 90
    oldest = today - timedelta(days=89)
    assert f"100,0% normal pada {oldest:%d-%m-%Y}" in page
    assert f"pada {today - timedelta(days=90):%d-%m-%Y}" not in page
    assert isinstance(today, date)


async def test_a_permalink_outlives_the_ninety_days_the_page_keeps(
    admin: httpx.AsyncClient, applicant: httpx.AsyncClient, services: Services, clock: ManualClock
) -> None:
    created = await admin.post(
        "/api/v1/incidents",
        json={
            "name": "Penjualan <e-Meterai> berhenti",
            "status": "investigating",
            "impact": "major",
            "body": "Sistem pusat tidak menjawab.",
            "components": {"kcu-medan": "major_outage"},
        },
    )
    incident_id = created.json()["id"]
    resolved = await admin.post(
        f"/api/v1/incidents/{incident_id}/updates",
        json={"status": "resolved", "body": "Penjualan kembali normal."},
    )
    assert resolved.status_code == 201
    clock.advance(timedelta(days=120))
    await services.snapshot.refresh(force=True)
    assert f"/incidents/{incident_id}" not in services.snapshot.files

    old = await applicant.get(f"/incidents/{incident_id}")
    assert old.status_code == 200
    assert old.headers["content-type"] == "text/html; charset=utf-8"
    assert "Penjualan &lt;e-Meterai&gt; berhenti" in old.text
    assert "Penjualan kembali normal." in old.text
    assert "Sistem pusat tidak menjawab." in old.text
    head = await applicant.head(f"/incidents/{incident_id}")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(old.content))
    english = await applicant.get(f"/incidents/{incident_id}?lang=en")
    assert '<html lang="en">' in english.text
    again = await applicant.get(
        f"/incidents/{incident_id}", headers={"if-none-match": old.headers["etag"]}
    )
    assert again.status_code == 304
    assert (await applicant.get("/incidents/nosuchincident")).status_code == 404
    assert (await applicant.get("/incidents/" + "x" * 65)).status_code == 404

"""The status page in headless Chromium with JavaScript off, served by the real `siaran serve`.

With SIARAN_SCREENSHOTS=1 the screenshot is written to docs/screenshots/status-page.png (the
README's); otherwise into the test's temporary directory.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import httpx
import pytest

from status.hours import DAYS
from tests.browser.conftest import LiveServer

if TYPE_CHECKING:  # the chromium fixture skips (or fails under CI) without playwright
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
WIB = ZoneInfo("Asia/Jakarta")
INCIDENT = "Pembelian e-Meterai gagal"
LATEST = "Penyebab ditemukan: server pusat kelebihan beban."


def _closed_today() -> str:
    """A weekday that is not today in Bali (WITA), so KCU Denpasar is closed now."""
    yesterday = datetime.now(ZoneInfo("Asia/Makassar")) - timedelta(days=1)
    return DAYS[yesterday.weekday()]


@pytest.fixture
def live_config() -> str:
    return f"""
[site]
name = "Status e-Meterai"
public_url = "{{public_url}}"
language = "id"
timezone = "Asia/Jakarta"

[[component]]
id = "emeterai-purchase"
name = "Pembelian e-Meterai"
group = "Layanan e-Meterai"

[[component]]
id = "emeterai-stamping"
name = "Pembubuhan e-Meterai"
group = "Layanan e-Meterai"

[[component]]
id = "emeterai-download"
name = "Pengiriman tautan unduhan"
group = "Layanan e-Meterai"

# The service checks itself, so the bars have a live check behind them (loopback only).
[[check]]
id = "purchase-api"
component = "emeterai-purchase"
url = "{{public_url}}/healthz"

[[check]]
id = "stamping-api"
component = "emeterai-stamping"
url = "{{public_url}}/healthz"

[[check]]
id = "download-api"
component = "emeterai-download"
url = "{{public_url}}/healthz"

[[branch]]
id = "kcu-medan"
name = "KCU Medan"
region = "Sumatera Utara"
timezone = "Asia/Jakarta"

[[branch]]
id = "kcu-jakarta-pusat"
name = "KCU Jakarta Pusat"
region = "DKI Jakarta"
timezone = "Asia/Jakarta"

[[branch]]
id = "kcu-denpasar"
name = "KCU Denpasar"
region = "Bali"
timezone = "Asia/Makassar"
hours = "{_closed_today()} 07:30-16:00"

[[branch]]
id = "kcu-jayapura"
name = "KCU Jayapura"
region = "Papua"
timezone = "Asia/Jayapura"
"""


def _history(database_url: str) -> None:
    """90 days of daily check figures, as the prober keeps them; a rough week in the middle."""
    path = database_url.removeprefix("sqlite:///")
    today = datetime.now(WIB).date()
    now = datetime.now(UTC).isoformat()
    rows = []
    for check in ("purchase-api", "stamping-api", "download-api"):
        for n in range(1, 90):
            failures = 0
            if check == "purchase-api" and 50 <= n <= 52:
                failures = (500, 1400, 90)[n - 50]  # the registration rush
            elif check == "download-api" and n == 20:
                failures = 12
            day = (today - timedelta(days=n)).isoformat()
            rows.append((check, day, 2880, failures, "{}", now))
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO check_daily (check_id, day, total, failures, latency_buckets, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )


def _news(server: LiveServer) -> str:
    """What staff post during an outage, through the real API; returns the open incident's id."""
    admin = {"Authorization": f"Bearer {server.token('ops', 'admin')}"}
    with httpx.Client(base_url=server.url, headers=admin, timeout=10) as api:
        earlier = api.post(
            "/api/v1/incidents",
            json={
                "name": "Loket KCU Medan tutup sementara",
                "status": "identified",
                "impact": "minor",
                "body": "Jaringan kantor terputus.",
                "components": {"kcu-medan": "partial_outage"},
            },
        ).json()["id"]
        resolved = api.post(
            f"/api/v1/incidents/{earlier}/updates",
            json={
                "status": "resolved",
                "body": "Loket melayani lagi.",
                "components": {"kcu-medan": "operational"},
            },
        )
        assert resolved.status_code == 201, resolved.text
        created = api.post(
            "/api/v1/incidents",
            json={
                "name": INCIDENT,
                "status": "investigating",
                "impact": "major",
                "body": "Pembayaran diterima tetapi meterai tidak terbit.",
                "components": {"emeterai-purchase": "major_outage"},
            },
        )
        assert created.status_code == 201, created.text
        incident_id: str = created.json()["id"]
        update = api.post(
            f"/api/v1/incidents/{incident_id}/updates",
            json={
                "status": "identified",
                "body": f"{LATEST} Meterai yang sudah dibayar terbit otomatis; "
                "nomor antrean tetap berlaku.",
            },
        )
        assert update.status_code == 201, update.text
        queue = api.put(
            "/api/v1/branches/kcu-medan/queue",
            json={"serving": 37, "issued": 120, "counters_open": 2},
        )
        assert queue.status_code == 200, queue.text
    return incident_id


def _screenshot_path(tmp_path: Path) -> Path:
    if os.environ.get("SIARAN_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "screenshots" / "status-page.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path / "status-page.png"


def test_a_person_on_a_phone_sees_the_outage_and_their_branch(
    live_server: LiveServer, phone: Callable[..., Page], tmp_path: Path
) -> None:
    _history(live_server.database_url)
    incident_id = _news(live_server)
    page = phone(width=360)
    response = page.goto(f"{live_server.url}/")
    assert response is not None
    assert response.status == 200
    assert page.title() == "Status e-Meterai"
    assert page.locator("html").get_attribute("lang") == "id"
    assert page.get_by_role("status").inner_text() == "Gangguan besar"
    heading = page.get_by_role("heading", name=INCIDENT)
    assert heading.is_visible()
    card = page.locator("article", has=heading)
    assert LATEST in card.inner_text()
    assert "Teridentifikasi" in card.inner_text()
    denpasar = page.locator("li.card", has_text="KCU Denpasar").inner_text()
    assert "Tutup" in denpasar
    assert "Tutup, buka lagi" in denpasar
    assert "WITA" in denpasar
    medan = page.locator("li.card", has_text="KCU Medan").inner_text()
    assert "Buka 24 jam" in medan
    assert "Antrean 83 orang" in medan
    purchase = page.locator("li.card", has_text="Pembelian e-Meterai").first.inner_text()
    assert "Gangguan total" in purchase
    assert page.locator("ol.bars").count() == 3
    assert page.get_by_role("link", name="Loket KCU Medan tutup sementara").is_visible()
    page.screenshot(path=str(_screenshot_path(tmp_path)), full_page=True)

    # The permalink opens without JavaScript and lists every update.
    heading.get_by_role("link").click()
    assert page.url == f"{live_server.url}/incidents/{incident_id}?lang=id"
    permalink = page.locator("main").inner_text()
    assert LATEST in permalink
    assert "Pembayaran diterima tetapi meterai tidak terbit." in permalink


def test_nothing_scrolls_sideways_at_320_px(
    live_server: LiveServer, phone: Callable[..., Page]
) -> None:
    _news(live_server)
    page = phone(width=320)
    page.goto(f"{live_server.url}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320


def test_an_english_browser_gets_english(
    live_server: LiveServer, phone: Callable[..., Page]
) -> None:
    page = phone(width=360, locale="en-US")
    page.goto(f"{live_server.url}/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("status").inner_text() == "All Systems Operational"
    assert "Closed, opens" in page.locator("li.card", has_text="KCU Denpasar").inner_text()
    page.get_by_role("link", name="Bahasa Indonesia").click()
    assert page.locator("html").get_attribute("lang") == "id"
    assert page.get_by_role("status").inner_text() == "Semua layanan berjalan normal"

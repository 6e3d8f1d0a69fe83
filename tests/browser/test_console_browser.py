"""A branch officer on a phone (JavaScript off): signs in to /staff with their token, posts a
notice from a template after a preview, and the notice is on the public page, in the feed and
in the Telegram channel; another branch's officer gets the 403 page and changes nothing.

SIARAN_SCREENSHOTS=1 saves the console's pages to docs/screenshots/console-*.png (README).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.browser.conftest import LIVE_CONFIG
from tests.fakes.telegram import UNLIMITED, FakeTelegram, fake_telegram

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from tests.browser.conftest import LiveServer

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHANNEL = "@statusemeterai"
NOTICE = "Loket e-Meterai KCU Medan tutup sementara"


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with fake_telegram(limits=UNLIMITED) as fake:
        fake.add_channel(CHANNEL)
        yield fake


@pytest.fixture
def live_config(telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch) -> str:
    """The browser suite's service, posting to a channel on the fake Bot API."""
    monkeypatch.setenv("SIARAN_TELEGRAM_TOKEN", telegram.token)
    return LIVE_CONFIG + (
        f'\n[telegram]\napi_base_url = "{telegram.url}/bot"\n\n'
        f'[[telegram.channel]]\nchat = "{CHANNEL}"\ncomponents = ["*"]\nlanguage = "id"\n'
    )


def shot(page: Page, name: str) -> None:
    if os.environ.get("SIARAN_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"console-{name}.png"), full_page=True)


def sign_in(page: Page, server: LiveServer, token: str) -> None:
    page.goto(f"{server.url}/staff")
    assert page.url.startswith(f"{server.url}/staff/signin")
    page.fill("#token", token)
    page.click("button[type=submit] >> text=Masuk")
    assert page.url == f"{server.url}/staff"


def wait_for(check: Callable[[], bool], what: str, within: float = 15.0) -> None:
    """Poll a server the test started until `check()` holds (delivery runs in the background)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {within}s"
        time.sleep(0.05)


def test_an_officer_posts_a_notice_and_another_branch_cannot_touch_it(
    live_server: LiveServer, phone: Callable[..., Page], telegram: FakeTelegram
) -> None:
    medan = phone(width=360)
    sign_in(medan, live_server, live_server.token("Petugas KCU Medan", "branch:kcu-medan"))
    assert medan.locator("h1").inner_text() == "Beranda"
    assert "KCU Jayapura" not in medan.content()
    shot(medan, "home")

    medan.click("text=Loket tutup")
    assert medan.input_value("#name") == NOTICE
    shot(medan, "notice-form")
    medan.click("button >> text=Pratinjau")
    preview = medan.locator("[data-preview=telegram]").inner_text()
    assert preview.startswith(f"🟠 Teridentifikasi · {NOTICE}")
    assert "• KCU Medan: Gangguan total" in preview
    shot(medan, "preview")
    medan.click("button >> text=Kirim sekarang")
    assert "Pemberitahuan terkirim" in medan.locator("[role=status]").inner_text()
    shot(medan, "sent")
    incident_url = medan.url.split("?")[0]
    incident_id = incident_url.rsplit("/", 1)[1]

    # What applicants see: the page, the feed, the channel.
    public = phone(width=360)
    public.goto(f"{live_server.url}/")
    assert NOTICE in public.content()
    feed = httpx.get(f"{live_server.url}/history.atom", timeout=5)
    assert feed.status_code == 200
    assert NOTICE in feed.text
    wait_for(lambda: bool(telegram.messages(CHANNEL)), "the channel post")
    (post,) = telegram.messages(CHANNEL)
    assert post.text.startswith(f"🟠 Teridentifikasi · {NOTICE}")
    assert post.text.endswith(f"{live_server.url}/incidents/{incident_id}")

    # Another branch: the 403 page for the notice and for posting in Medan's name.
    jayapura = phone(width=360)
    sign_in(jayapura, live_server, live_server.token("Petugas KCU Jayapura", "branch:kcu-jayapura"))
    assert NOTICE not in jayapura.content()
    response = jayapura.goto(incident_url)
    assert response is not None
    assert response.status == 403
    assert "Di luar wewenang Anda" in jayapura.content()
    assert "Nomor antrean hari ini" not in jayapura.content()
    shot(jayapura, "forbidden")
    jayapura.goto(f"{live_server.url}/staff/notices/new")
    csrf = jayapura.locator("input[name=csrf]").first.get_attribute("value")
    forged = jayapura.request.post(
        f"{live_server.url}/staff/notices",
        form={
            "intent": "send",
            "csrf": csrf or "",
            "form_key": "forged-1",
            "name": "Loket KCU Medan dibuka",
            "body": "Palsu.",
            "status": "resolved",
            "impact": "none",
            "component": "kcu-medan",
            "component_status": "operational",
        },
        max_redirects=0,
    )
    assert forged.status == 403
    assert "Tidak ada yang diubah" in forged.text()
    resolved = jayapura.request.post(
        f"{incident_url}/updates",
        form={
            "intent": "send",
            "csrf": csrf or "",
            "form_key": "forged-2",
            "status": "resolved",
            "body": "x",
        },
        max_redirects=0,
    )
    assert resolved.status == 403

    incidents = httpx.get(f"{live_server.url}/api/v2/incidents.json", timeout=5).json()["incidents"]
    assert [(i["name"], i["status"], len(i["incident_updates"])) for i in incidents] == [
        (NOTICE, "identified", 1)
    ]
    assert len(telegram.messages(CHANNEL)) == 1
    admin = live_server.token("ops", "admin")
    entries = httpx.get(
        f"{live_server.url}/api/v1/audit",
        headers={"Authorization": f"Bearer {admin}"},
        timeout=5,
    ).json()["entries"]
    assert [(e["actor"], e["action"], e["outcome"]) for e in reversed(entries)] == [
        ("Petugas KCU Medan", "console.signin", "ok"),
        ("Petugas KCU Medan", "incident.create", "ok"),
        ("Petugas KCU Jayapura", "console.signin", "ok"),
        ("Petugas KCU Jayapura", "incident.create", "denied"),
        ("Petugas KCU Jayapura", "incident.update", "denied"),
    ]

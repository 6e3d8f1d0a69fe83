"""Admins in the console: tokens (never their secrets), the audit log, failed deliveries and
their retry; branch staff get the 403 page for all of it."""

from __future__ import annotations

import html

import pytest

from broadcasters._dispatch import Dispatcher
from status import db, delivery_log
from status.services import Services
from tests.broadcasters.test_dispatch import rng, run_once
from tests.web.test_console import hidden, person, signed_in
from tests.web.test_deliveries import a_failed_delivery

pytestmark = pytest.mark.anyio


async def test_admins_see_tokens_without_secrets(services: Services) -> None:
    medan_secret = await person(services, "petugas medan", "branch:kcu-medan")
    async with signed_in(services, "ops admin", "admin") as admin:
        page = await admin.get("/staff/tokens")
    assert page.status_code == 200
    assert "petugas medan" in page.text
    assert "branch:kcu-medan" in page.text
    assert medan_secret not in page.text
    assert "siaran_" not in page.text


async def test_admins_read_the_audit_log_of_console_actions(services: Services) -> None:
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as medan:
        home = await medan.get("/staff")
        await medan.post(
            "/staff/branches/kcu-medan/queue",
            data={
                "csrf": hidden(home.text, "csrf"),
                "form_key": hidden(home.text, "form_key"),
                "serving": "5",
                "issued": "9",
            },
        )
    async with signed_in(services, "ops admin", "admin") as admin:
        page = await admin.get("/staff/audit")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "queue.set kcu-medan" in text
    assert '"serving": 5' in text
    assert "console.signin" in text
    assert "198.51.100.20" in text


async def test_admins_retry_a_failed_delivery_and_it_is_sent(services: Services) -> None:
    channel = await a_failed_delivery(services)
    async with signed_in(services, "ops admin", "admin") as admin:
        page = await admin.get("/staff/deliveries")
        assert page.status_code == 200
        assert "Forbidden: bot is not a member of the channel chat" in page.text
        form = {
            "csrf": hidden(page.text, "csrf"),
            "form_key": hidden(page.text, "form_key"),
            "target": "telegram:@statusemeterai",
        }
        retried = await admin.post("/staff/deliveries/retry", data=form)
        assert retried.status_code == 303
        assert retried.headers["location"] == "/staff/deliveries?done=1"
        again = await admin.post("/staff/deliveries/retry", data=form)  # a double submit
        assert again.headers["location"] == "/staff/deliveries?done=1"
        assert "Tidak ada pengiriman yang gagal" in (await admin.get("/staff/deliveries")).text
    d = Dispatcher(services.engine, services.clock, [channel], instance_id="d2", rng=rng())
    await run_once(d)
    assert [b for b, _ in channel.got] == ["incident.created: Loket <b>tutup</b>"]
    async with db.read(services.engine) as conn:
        assert await delivery_log.list_deliveries(conn, status="failed") == []


async def test_branch_staff_get_the_403_page_for_admin_pages(services: Services) -> None:
    await a_failed_delivery(services)
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as medan:
        home = await medan.get("/staff")
        assert "/staff/audit" not in home.text
        for path in ("/staff/tokens", "/staff/audit", "/staff/deliveries"):
            answer = await medan.get(path)
            assert answer.status_code == 403, path
            assert "Khusus administrator" in answer.text
        retry = await medan.post(
            "/staff/deliveries/retry",
            data={"csrf": hidden(home.text, "csrf"), "form_key": "k", "target": "x"},
        )
        assert retry.status_code == 403
    async with db.read(services.engine) as conn:
        assert len(await delivery_log.list_deliveries(conn, status="failed")) == 1

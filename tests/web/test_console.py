"""Branch staff use the console at /staff: sign in, post a notice from a template, preview it,
update and resolve it; never for another branch; every form guarded by a CSRF token.

The helpers at the top are shared with test_console_admin.py: they act the way a browser does
(cookies, hidden form fields, 303 redirects) against the real app on both databases.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from broadcasters._telegram_text import Post, render_post
from status import db, store, tokens
from status.clock import ManualClock
from status.schema import audit, events, incident_updates, incidents, staff_sessions
from status.services import Services
from status.web.app import create_app

pytestmark = pytest.mark.anyio

BASE = "http://testserver"


async def person(services: Services, name: str, scope: str) -> str:
    """A staff token's secret, as `siaran token create` would print it."""
    _info, secret = await tokens.create_token(services.engine, name, (scope,), services.clock.now())
    return secret


def browser(
    services: Services, base: str = BASE, address: str = "198.51.100.20"
) -> httpx.AsyncClient:
    app = create_app(services, background=False)
    transport = httpx.ASGITransport(app=app, client=(address, 41000))
    return httpx.AsyncClient(
        transport=transport, base_url=base, headers={"User-Agent": "phone test"}
    )


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} field in the page"
    return html.unescape(found.group(1))


async def sign_in(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    form = await client.get("/staff/signin")
    assert form.status_code == 200
    return await client.post(
        "/staff/signin", data={"csrf": hidden(form.text, "csrf"), "token": secret}
    )


@asynccontextmanager
async def signed_in(services: Services, name: str, scope: str) -> AsyncIterator[httpx.AsyncClient]:
    """A phone signed in with a new token of `scope`."""
    async with browser(services) as client:
        answer = await sign_in(client, await person(services, name, scope))
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/staff"
        yield client


async def notice_form(client: httpx.AsyncClient, **params: str) -> dict[str, str]:
    """The notice form's fields as the page fills them in (a template, if one is named)."""
    page = await client.get("/staff/notices/new", params=params)
    assert page.status_code == 200, page.text
    fields = {name: hidden(page.text, name) for name in ("csrf", "form_key")}
    name = re.search(r'id="name" name="name" value="([^"]*)"', page.text)
    body = re.search(r"<textarea[^>]*>([^<]*)</textarea>", page.text)
    assert name is not None
    assert body is not None
    fields["name"], fields["body"] = html.unescape(name[1]), html.unescape(body[1])
    for select_name in ("component", "status", "impact", "component_status"):
        block = re.search(rf'<select id="{select_name}"[^>]*>(.*?)</select>', page.text, re.S)
        assert block, select_name
        chosen = re.search(r'<option value="([^"]*)" selected>', block[1])
        fields[select_name] = chosen[1] if chosen else ""
    return fields


async def post_notice(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    return await client.post("/staff/notices", data={"intent": "send", **fields})


async def count(services: Services, table: Any) -> int:
    async with db.read(services.engine) as conn:
        return await store.count_rows(conn, table)


async def audit_rows(services: Services) -> list[tuple[str, str, str]]:
    async with db.read(services.engine) as conn:
        entries = await store.load_audit(conn, limit=100, before_id=None)
    return [(e.actor, e.action, e.outcome) for e in reversed(entries)]


# -- signing in ---------------------------------------------------------------------------------


async def test_a_branch_token_signs_in_and_sees_its_branch_only(services: Services) -> None:
    async with browser(services) as client:
        first = await client.get("/staff")
        assert first.status_code == 303
        assert first.headers["location"].startswith("/staff/signin")
        answer = await sign_in(client, await person(services, "petugas medan", "branch:kcu-medan"))
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("siaran_staff=")
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Max-Age=604800" in cookie
        assert "Secure" not in cookie  # plain http to a host that is not the public one
        home = await client.get("/staff")
        assert home.status_code == 200
        assert home.headers["cache-control"] == "no-store"
        assert "petugas medan" in home.text
        assert "KCU Medan" in home.text
        assert "KCU Denpasar" not in home.text
        assert '<html lang="id">' in home.text
        assert "Kirim pemberitahuan" in home.text
    assert ("petugas medan", "console.signin", "ok") in await audit_rows(services)


async def test_over_https_the_cookie_is_secure_and_host_prefixed(services: Services) -> None:
    async with browser(services, base="https://status.example.id") as client:
        answer = await sign_in(client, await person(services, "ops", "admin"))
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("__Host-siaran_staff=")
        assert "Secure" in cookie
        assert "Path=/" in cookie
        assert "Domain" not in cookie
        assert (await client.get("/staff")).status_code == 200


async def test_a_wrong_token_is_refused_and_audited_without_the_token(services: Services) -> None:
    async with browser(services) as client:
        answer = await sign_in(client, "siaran_not-a-real-token")
        assert answer.status_code == 401
        assert "Token tidak dikenal" in answer.text
        assert "siaran_staff" not in answer.headers.get("set-cookie", "")
    assert await audit_rows(services) == [("unknown", "console.signin", "denied")]
    async with db.read(services.engine) as conn:
        details = [e.detail for e in await store.load_audit(conn, limit=5, before_id=None)]
    assert "not-a-real-token" not in repr(details)


async def test_five_failures_from_one_address_get_429_and_a_wait(
    services: Services, clock: ManualClock
) -> None:
    secret = await person(services, "petugas medan", "branch:kcu-medan")
    async with browser(services) as client:
        statuses = [(await sign_in(client, f"siaran_guess{i}")).status_code for i in range(5)]
        assert statuses == [401, 401, 401, 401, 429]
        blocked = await sign_in(client, secret)  # even the right token waits
        assert blocked.status_code == 429
        assert blocked.headers["retry-after"] == "900"
        assert "10.15 WIB" in blocked.text  # 10:00 WIB now, fifteen minutes' wait
    async with browser(services, address="198.51.100.99") as elsewhere:
        assert (await sign_in(elsewhere, secret)).status_code == 303
    clock.advance(timedelta(minutes=15))
    async with browser(services) as client:
        assert (await sign_in(client, secret)).status_code == 303


async def test_the_sign_in_form_needs_its_csrf_value(services: Services) -> None:
    secret = await person(services, "petugas medan", "branch:kcu-medan")
    async with browser(services) as client:
        no_cookie = await client.post("/staff/signin", data={"csrf": "x", "token": secret})
        assert no_cookie.status_code == 403
        await client.get("/staff/signin")
        wrong = await client.post("/staff/signin", data={"csrf": "forged", "token": secret})
        assert wrong.status_code == 403
        assert "Formulir kedaluwarsa" in wrong.text
    assert await count(services, staff_sessions) == 0


async def test_sessions_expire_when_idle_and_after_a_week(
    services: Services, clock: ManualClock
) -> None:
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as client:
        clock.advance(timedelta(hours=11, minutes=59))
        assert (await client.get("/staff")).status_code == 200  # and that counts as activity
        clock.advance(timedelta(hours=11, minutes=59))
        assert (await client.get("/staff")).status_code == 200
        clock.advance(timedelta(hours=12))
        idle = await client.get("/staff/notices/new")
        assert idle.status_code == 303
        assert idle.headers["location"] == "/staff/signin?next=/staff/notices/new"
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as client:
        for _ in range(16):  # active every 11 hours, but a session lives a week at most
            clock.advance(timedelta(hours=11))
            answer = await client.get("/staff")
        assert answer.status_code == 303


async def test_signing_out_ends_the_session_for_good(services: Services) -> None:
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as client:
        home = await client.get("/staff")
        stolen = dict(client.cookies)
        out = await client.post("/staff/signout", data={"csrf": hidden(home.text, "csrf")})
        assert out.status_code == 303
        assert out.headers["location"] == "/staff/signin"
        assert (await client.get("/staff")).status_code == 303
    async with browser(services) as replay:
        replay.cookies.update(stolen)
        assert (await replay.get("/staff")).status_code == 303
    assert ("petugas medan", "console.signout", "ok") in await audit_rows(services)


# -- posting ------------------------------------------------------------------------------------


async def test_a_notice_from_a_template_appears_in_the_public_api(
    services: Services, applicant: httpx.AsyncClient
) -> None:
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as client:
        fields = await notice_form(client, template="counter_closed", component="kcu-medan")
        assert fields["name"] == "Loket e-Meterai KCU Medan tutup sementara"
        assert "Nomor antrean hari ini tetap berlaku" in fields["body"]
        assert (fields["status"], fields["impact"], fields["component_status"]) == (
            "identified",
            "major",
            "major_outage",
        )
        sent = await post_notice(client, **fields)
        assert sent.status_code == 303, sent.text
        incident_id = sent.headers["location"].split("/")[-1].split("?")[0]
        shown = await client.get(sent.headers["location"])
        assert "Pemberitahuan terkirim" in shown.text
    public = (await applicant.get("/api/v2/incidents.json")).json()["incidents"]
    assert [(i["id"], i["name"], i["status"]) for i in public] == [
        (incident_id, "Loket e-Meterai KCU Medan tutup sementara", "identified")
    ]
    assert public[0]["incident_updates"][0]["body"].startswith("Hari ini tidak ada penjualan")
    components = (await applicant.get("/api/v2/components.json")).json()["components"]
    assert {c["id"]: c["status"] for c in components}["kcu-medan"] == "major_outage"
    assert ("petugas medan", "incident.create", "ok") in await audit_rows(services)


async def test_the_preview_shows_the_telegram_post_and_sends_nothing(services: Services) -> None:
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as client:
        fields = await notice_form(client, template="physical_stamps", component="kcu-medan")
        shown = await client.post("/staff/notices", data={**fields, "intent": "preview"})
        assert shown.status_code == 200, shown.text
    expected = render_post(
        Post(
            maintenance=False,
            status="monitoring",
            name=fields["name"],
            body=fields["body"],
            at=services.clock.now(),
            link="https://status.example.id/incidents/…",
            components=(("KCU Medan", "operational"),),
        ),
        "id",
        services.config.branch("kcu-medan").zone,  # type: ignore[union-attr]
    )
    block = re.search(r'<div class="tg" data-preview="telegram">(.*?)</div>', shown.text, re.S)
    assert block is not None
    assert block[1] == expected
    assert "🟡 Dipantau · <b>Meterai tempel juga diterima (KCU Medan)</b>" in expected
    assert "10.00 WIB" in expected
    page = re.search(r'data-preview="page">(.*?)</div>', shown.text, re.S)
    assert page is not None
    assert "Meterai tempel (fisik) juga diterima" in page[1]
    # The preview carries the same one-time key, so "send" after it is still one notice.
    assert hidden(shown.text, "form_key") == fields["form_key"]
    assert await count(services, incidents) == 0


async def test_a_double_submit_makes_one_notice(services: Services) -> None:
    news_before = await count(services, events)
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as client:
        fields = await notice_form(client, template="counter_closed", component="kcu-medan")
        first = await post_notice(client, **fields)
        second = await post_notice(client, **fields)
        assert first.status_code == second.status_code == 303
        assert first.headers["location"] == second.headers["location"]
    assert await count(services, incidents) == 1
    assert await count(services, events) == news_before + 1


async def test_a_bad_value_shows_the_form_again_and_writes_nothing(services: Services) -> None:
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as client:
        fields = await notice_form(client, component="kcu-medan")
        answer = await post_notice(client, **{**fields, "name": "   ", "body": "Loket tutup."})
        assert answer.status_code == 422
        assert "Belum terkirim" in answer.text
        assert '"name" must not be empty' in html.unescape(answer.text)
        assert "Loket tutup." in answer.text  # what was typed is kept
        fixed = await post_notice(client, **{**fields, "name": "Loket tutup", "body": "Tutup."})
        assert fixed.status_code == 303  # the same key works once nothing was written
    assert await count(services, incidents) == 1


async def test_staff_update_and_resolve_their_notice(
    services: Services, applicant: httpx.AsyncClient
) -> None:
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as client:
        sent = await post_notice(
            client, **await notice_form(client, template="counter_closed", component="kcu-medan")
        )
        location = sent.headers["location"].split("?")[0]
        page = await client.get(location, params={"template": "queue_resumed"})
        assert page.status_code == 200
        resolved = await client.post(
            f"{location}/updates",
            data={
                "intent": "send",
                "csrf": hidden(page.text, "csrf"),
                "form_key": hidden(page.text, "form_key"),
                "status": "resolved",
                "body": "Layanan e-Meterai di KCU Medan kembali normal.",
                "component": "kcu-medan",
                "component_status": "operational",
            },
        )
        assert resolved.status_code == 303, resolved.text
    (public,) = (await applicant.get("/api/v2/incidents.json")).json()["incidents"]
    assert public["status"] == "resolved"
    assert [u["status"] for u in public["incident_updates"]] == ["resolved", "identified"]
    assert (await applicant.get("/api/v2/incidents/unresolved.json")).json()["incidents"] == []


# -- scope --------------------------------------------------------------------------------------


async def test_another_branch_cannot_see_or_change_a_notice(services: Services) -> None:
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as medan:
        sent = await post_notice(
            medan, **await notice_form(medan, template="counter_closed", component="kcu-medan")
        )
        location = sent.headers["location"].split("?")[0]
    before = (await count(services, incident_updates), await count(services, events))
    async with signed_in(services, "petugas denpasar", "branch:kcu-denpasar") as denpasar:
        home = await denpasar.get("/staff")
        assert "Loket e-Meterai KCU Medan" not in home.text
        seen = await denpasar.get(location)
        assert seen.status_code == 403
        assert "Di luar wewenang Anda" in seen.text
        assert "Nomor antrean" not in seen.text
        changed = await denpasar.post(
            f"{location}/updates",
            data={
                "intent": "send",
                "csrf": hidden(home.text, "csrf"),
                "form_key": "k1",
                "status": "resolved",
                "body": "Selesai.",
            },
        )
        assert changed.status_code == 403
        assert "Tidak ada yang diubah" in changed.text
        # A form sent for Medan from Denpasar's session: refused by the core, like the API.
        foreign = await post_notice(
            denpasar,
            csrf=hidden(home.text, "csrf"),
            form_key="k2",
            name="Loket KCU Medan tutup",
            body="Palsu.",
            status="identified",
            impact="major",
            component="kcu-medan",
            component_status="major_outage",
        )
        assert foreign.status_code == 403
        assert (await denpasar.get("/staff/notices/new?component=kcu-medan")).status_code == 403
    assert (await count(services, incident_updates), await count(services, events)) == before
    assert await count(services, incidents) == 1
    assert [a for a in await audit_rows(services) if a[0] == "petugas denpasar"] == [
        ("petugas denpasar", "console.signin", "ok"),
        ("petugas denpasar", "incident.update", "denied"),
        ("petugas denpasar", "incident.create", "denied"),
    ]


async def test_branch_staff_set_their_own_queue_only(
    services: Services, applicant: httpx.AsyncClient
) -> None:
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as client:
        home = await client.get("/staff")
        fields = {"csrf": hidden(home.text, "csrf"), "form_key": hidden(home.text, "form_key")}
        saved = await client.post(
            "/staff/branches/kcu-medan/queue",
            data={**fields, "serving": "37", "issued": "120", "counters_open": "2"},
        )
        assert saved.status_code == 303, saved.text
        assert "Dilayani 37 dari 120" in (await client.get("/staff")).text
        other = await client.post(
            "/staff/branches/kcu-denpasar/queue",
            data={**fields, "form_key": "k3", "serving": "1", "issued": "2"},
        )
        assert other.status_code == 403
        bad = await client.post(
            "/staff/branches/kcu-medan/queue",
            data={**fields, "form_key": "k4", "serving": "tiga", "issued": "2"},
        )
        assert bad.status_code == 422
    rows = (await applicant.get("/api/v1/branches")).json()["branches"]
    queues = {b["id"]: b["queue"] for b in rows}
    assert (queues["kcu-medan"]["serving"], queues["kcu-medan"]["issued"]) == (37, 120)
    assert queues["kcu-denpasar"] is None


async def test_maintenance_is_scheduled_in_the_branch_local_time(services: Services) -> None:
    async with signed_in(services, "petugas denpasar", "branch:kcu-denpasar") as client:
        page = await client.get("/staff/maintenances/new")
        assert "KCU Denpasar (WITA)" in page.text
        sent = await client.post(
            "/staff/maintenances",
            data={
                "csrf": hidden(page.text, "csrf"),
                "form_key": hidden(page.text, "form_key"),
                "component": "kcu-denpasar",
                "name": "Pemeliharaan jaringan",
                "body": "Loket tidak melayani.",
                "scheduled_for": "2026-11-24T08:00",
                "scheduled_until": "2026-11-24T10:00",
            },
        )
        assert sent.status_code == 303, sent.text
    async with db.read(services.engine) as conn:
        row = (await conn.execute(select(incidents.c.scheduled_for))).one()
    assert row.scheduled_for.isoformat() == "2026-11-24T00:00:00+00:00"  # 08.00 WITA


# -- CSRF and escaping --------------------------------------------------------------------------


@pytest.mark.parametrize("csrf", [None, "", "0" * 64])
async def test_a_form_without_the_right_csrf_token_is_refused(
    services: Services, csrf: str | None
) -> None:
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as client:
        fields = await notice_form(client, template="counter_closed", component="kcu-medan")
        del fields["csrf"]
        if csrf is not None:
            fields["csrf"] = csrf
        answer = await post_notice(client, **fields)
        assert answer.status_code == 403
        assert "Formulir kedaluwarsa" in answer.text
        home = await client.get("/staff")
        signout = await client.post("/staff/signout", data={"csrf": csrf or ""})
        assert signout.status_code == 403
        assert (await client.get("/staff")).status_code == 200  # still signed in
        assert home.status_code == 200
    assert await count(services, incidents) == 0


async def test_staff_text_is_escaped_wherever_it_appears(services: Services) -> None:
    nasty = "<script>alert(1)</script> & \"quotes\" 'x'"
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as client:
        fields = await notice_form(client, component="kcu-medan")
        fields.update(name=nasty, body=f"<img src=x onerror=alert(1)> {nasty}")
        shown = await client.post("/staff/notices", data={**fields, "intent": "preview"})
        sent = await post_notice(client, **fields)
        page = await client.get(sent.headers["location"])
        home = await client.get("/staff")
    for answer in (shown, page, home):
        assert answer.status_code == 200
        assert "<script>alert" not in answer.text
        assert "<img src=x" not in answer.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text
        assert "default-src 'none'" in answer.headers["content-security-policy"]


async def test_the_console_speaks_english_when_asked(services: Services) -> None:
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as client:
        english = await client.get("/staff", params={"lang": "en"})
        assert '<html lang="en">' in english.text
        assert "Post a notice" in english.text
        assert '<html lang="en">' in (await client.get("/staff/notices/new")).text  # remembered


async def test_unknown_pages_and_incidents_are_404_pages(services: Services) -> None:
    async with signed_in(services, "petugas medan", "branch:kcu-medan") as client:
        for path in ("/staff/incidents/nope", "/staff/nothing-here"):
            answer = await client.get(path)
            assert answer.status_code == 404
            assert answer.headers["content-type"].startswith("text/html")
    async with db.read(services.engine) as conn:
        assert (await conn.execute(select(func.count()).select_from(audit))).scalar_one() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("component", "kcu-\x00medan"),
        ("component", "x" * 300),
        ("name", "Loket\x00tutup"),
        ("status", "closed"),
        ("form_key", "\x00"),
        ("form_key", "k" * 201),
    ],
)
async def test_strange_form_values_get_a_4xx_page(
    services: Services, field: str, value: str
) -> None:
    async with signed_in(services, "ops admin", "admin") as client:
        fields = await notice_form(client, template="upstream_down", component="kcu-medan")
        answer = await post_notice(client, **{**fields, field: value})
        assert 400 <= answer.status_code < 500, answer.text
        assert answer.headers["content-type"].startswith("text/html")
        raw = await client.post(
            "/staff/notices",
            content=b"csrf=" + fields["csrf"].encode() + b"&name=%FF%FE",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert raw.status_code == 400
        wrong_type = await client.post("/staff/notices", json=fields)
        assert wrong_type.status_code == 415
    assert await count(services, incidents) == 0

"""Staff in the bot: link an account with a one-time code, then post for their own branches after a preview.

Everything goes through the real PTB client to the fake Bot API on loopback, with a real
database (SQLite and PostgreSQL) and the public renderings the applicant reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from broadcasters._telegram_text import Envelope, View, render_body
from broadcasters._telegram_updates import WORKERS
from broadcasters.telegram_bot import SubscriberBot
from status import db, link_codes, outbox, tokens
from status.clock import ManualClock
from status.commands import NewIncident
from status.model import SYSTEM, Actor
from status.schema import idempotency, incidents, staff_telegram_links
from status.services import Services
from status.vocabulary import ComponentStatus as CS, Impact, IncidentStatus
from tests.broadcasters.test_telegram_bot import (
    buttons,
    from_bot,
    presses,
    says,
    subscriber_bot,
)
from tests.conftest import eventually
from tests.fakes.telegram import UNLIMITED, ChatMessage, FakeTelegram, fake_telegram

pytestmark = pytest.mark.anyio

# People: branch staff on their own phones, and an applicant.
TIGOR = 2001  # petugas at KCU Medan
KETUT = 2002  # petugas at KCU Denpasar
AYU = 1001  # an applicant in the Medan queue; no token
OPS = Actor("ops admin", ("admin",))
HELP = "Perintah:\n/langganan"
LINKED = 'Akun Telegram ini sekarang tertaut ke token "petugas medan" (branch:kcu-medan).'
PREVIEW = "Pratinjau pesan di kanal (jam dan tautan ditetapkan saat dikirim). Kirim?"
STALE = (
    "Pratinjau ini sudah tidak berlaku (kedaluwarsa, dibatalkan, atau tautan Anda dicabut). "
    "Tidak ada yang dikirim."
)


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with fake_telegram(limits=UNLIMITED) as server:
        for user, name in ((TIGOR, "Tigor"), (KETUT, "Ketut"), (AYU, "Ayu")):
            server.add_user(user, name, username=name.lower())
        yield server


@pytest.fixture
async def bot(services: Services, fake: FakeTelegram) -> AsyncIterator[SubscriberBot]:
    async with subscriber_bot(services, fake) as running:
        yield running


async def token(services: Services, name: str, scope: str) -> str:
    info, _secret = await tokens.create_token(services.engine, name, (scope,), services.clock.now())
    return info.id


async def code_for(
    services: Services, token_id: str, ttl: timedelta = link_codes.DEFAULT_TTL
) -> str:
    async with db.write(services.engine) as conn:
        issued = await link_codes.issue(conn, token_id, OPS, services.clock.now(), ttl)
    return issued.code


async def linked(
    services: Services, fake: FakeTelegram, clock: ManualClock, user: int, name: str, scope: str
) -> str:
    """`user` links their account to a new token; returns the token's id."""
    token_id = await token(services, name, scope)
    reply = await says(fake, clock, user, f"/tautkan {await code_for(services, token_id)}")
    assert reply.text.startswith("Akun Telegram ini sekarang tertaut"), reply.text
    return token_id


async def medan_staff(services: Services, fake: FakeTelegram, clock: ManualClock) -> str:
    return await linked(services, fake, clock, TIGOR, "petugas medan", "branch:kcu-medan")


async def public_incidents(services: Services) -> list[dict[str, Any]]:
    from status.web.app import create_app

    app = create_app(services, background=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        found: list[dict[str, Any]] = (await client.get("/api/v2/incidents.json")).json()[
            "incidents"
        ]
    return found


async def count(services: Services, table: Any) -> int:
    async with db.read(services.engine) as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def audit(services: Services) -> list[Any]:
    from status import store

    async with db.read(services.engine) as conn:
        return await store.load_audit(conn, limit=50, before_id=None)


def send_and_cancel(preview: ChatMessage) -> tuple[str, str]:
    (send, send_data), (cancel, cancel_data) = buttons(preview)
    assert (send, cancel) == ("Kirim", "Batal")
    assert send_data.startswith("st:ok:")
    assert cancel_data.startswith("st:no:")
    return send_data, cancel_data


async def settled(fake: FakeTelegram, clock: ManualClock, user: int) -> None:
    """Every update `user` sent so far has been handled: one chat's updates go in order.

    The clock moves on while waiting: the bot paces its calls on it.
    """
    before = len(from_bot(fake, user))
    fake.send_user_message(user, "/status")

    def answered() -> bool:
        clock.advance(timedelta(milliseconds=100))
        return len(from_bot(fake, user)) > before

    await eventually(answered)


async def incident_on(services: Services, branch: str, name: str) -> str:
    async with services.core.transaction() as tx:
        created = await services.core.create_incident(
            tx,
            NewIncident(
                name,
                IncidentStatus.INVESTIGATING,
                Impact.MAJOR,
                "Sistem pusat tidak merespons.",
                {branch: CS.MAJOR_OUTAGE},
            ),
            SYSTEM,
        )
    return created.id


# ── linking ─────────────────────────────────────────────────────────────────────────────


async def test_a_code_links_one_account_once(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    token_id = await token(services, "petugas medan", "branch:kcu-medan")
    code = await code_for(services, token_id)
    typed = f"{code[:4].lower()}-{code[4:].lower()}"  # as someone reads it off a screen

    reply = await says(fake, clock, TIGOR, f"/tautkan {typed}")
    assert reply.text == (
        f"{LINKED}\n\nPerintah petugas:\n"
        "/pengumuman kcu-medan <teks> — pengumuman untuk kantor Anda\n"
        "/update <id insiden> <status> <teks> — kabar terbaru; status: investigasi, "
        "teridentifikasi, dipantau, selesai\n"
        "/selesai <id insiden> [teks] — tandai selesai\n"
        "/lepas — lepaskan tautan\n\n"
        "Setiap pesan ditampilkan dulu sebagai pratinjau; baru terkirim setelah Anda menekan Kirim."
    )
    again = await says(fake, clock, KETUT, f"/link {code}")
    assert again.text.startswith("Kode tidak berlaku: salah, sudah dipakai, atau kedaluwarsa.")
    async with db.read(services.engine) as conn:
        rows = list(await conn.execute(select(staff_telegram_links)))
    assert [(r.telegram_user_id, r.token_id, r.username) for r in rows] == [
        (TIGOR, token_id, "tigor")
    ]
    entry = next(e for e in await audit(services) if e.action == "telegram.link")
    assert (entry.token_id, entry.outcome, entry.remote_addr) == (token_id, "ok", "telegram")
    assert entry.detail == {"telegram_user_id": TIGOR}


async def test_an_expired_code_links_nobody(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    code = await code_for(services, await token(services, "petugas medan", "branch:kcu-medan"))
    clock.advance(timedelta(minutes=15))
    reply = await says(fake, clock, TIGOR, f"/tautkan {code}")
    assert reply.text.startswith("Kode tidak berlaku")
    assert await count(services, staff_telegram_links) == 0


async def test_unlinking_makes_the_staff_commands_vanish(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    await medan_staff(services, fake, clock)
    bye = await says(fake, clock, TIGOR, "/lepas")
    assert bye.text == (
        'Tautan ke token "petugas medan" dilepas. '
        "Perintah petugas tidak lagi berlaku dari akun ini."
    )
    after = await says(fake, clock, TIGOR, "/pengumuman kcu-medan Loket buka.")
    assert after.text.startswith(HELP)


# ── who gets nothing ────────────────────────────────────────────────────────────────────


async def test_an_applicant_sending_staff_commands_gets_only_the_usual_help(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    unknown = await says(fake, clock, AYU, "/apaini")
    for typed in ("/notice kcu-medan Loket tutup", "/update abc monitoring x", "/selesai abc"):
        reply = await says(fake, clock, AYU, typed)
        assert (reply.text, reply.reply_markup) == (unknown.text, None), typed
    assert unknown.text.startswith(HELP)
    assert await count(services, incidents) == 0
    assert await count(services, idempotency) == 0


async def test_linked_staff_in_a_group_get_nothing(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    await medan_staff(services, fake, clock)
    # The same worker as Tigor's private chat, so his next private message proves it was read.
    group = fake.add_group("Petugas KCU Medan", chat_id=-4_000_000_000 + TIGOR % WORKERS)
    fake.send_user_message(TIGOR, "/notice kcu-medan Loket tutup", chat=group)
    await settled(fake, clock, TIGOR)
    assert from_bot(fake, group) == []
    assert await count(services, idempotency) == 0


# ── posting ─────────────────────────────────────────────────────────────────────────────


async def test_medan_staff_post_a_notice_after_confirming_the_preview(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    token_id = await medan_staff(services, fake, clock)
    preview = await says(fake, clock, TIGOR, "/notice kcu-medan Loket e-Meterai buka kembali.")
    post = (
        "🟠 Teridentifikasi · Pengumuman KCU Medan\n\n"
        "Loket e-Meterai buka kembali.\n\n"
        "Terdampak:\n• KCU Medan: Normal\n\n"
        "10.00 WIB"
    )
    assert preview.text == f"{PREVIEW}\n\n{post}"
    send, _cancel = send_and_cancel(preview)
    assert await public_incidents(services) == []

    done = await presses(fake, clock, TIGOR, preview, send)
    (notice,) = await public_incidents(services)
    assert done.text == (
        f"Terkirim. ID insiden: {notice['id']}\n"
        f"Kabar terbaru: /update {notice['id']} <status> <teks>\n"
        f"Selesaikan: /selesai {notice['id']}"
    )
    assert done.reply_markup is None
    assert (notice["name"], notice["impact"], notice["status"]) == (
        "Pengumuman KCU Medan",
        "none",
        "identified",
    )
    assert notice["incident_updates"][0]["body"] == "Loket e-Meterai buka kembali."
    # What the channel posts is the preview, plus the link.
    *_synced, event = await outbox.follow(services.engine, 0)
    assert event.kind == "incident.created"
    view = View("id", ZoneInfo("Asia/Jakarta"))
    channel = Envelope.loads(render_body(event, view)).post
    bold = post.replace("Pengumuman KCU Medan", "<b>Pengumuman KCU Medan</b>")
    assert channel == f"{bold} · https://status.example.id/incidents/{notice['id']}"
    entry = next(e for e in await audit(services) if e.action == "incident.create")
    assert (entry.actor, entry.token_id, entry.target, entry.outcome) == (
        "petugas medan",
        token_id,
        notice["id"],
        "ok",
    )
    assert (entry.remote_addr, entry.user_agent) == ("telegram", "telegram user 2001 (@tigor)")


async def test_cancel_writes_nothing(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    await medan_staff(services, fake, clock)
    preview = await says(fake, clock, TIGOR, "/pengumuman kcu-medan Loket tutup sementara.")
    _send, cancel = send_and_cancel(preview)
    done = await presses(fake, clock, TIGOR, preview, cancel)
    assert (done.text, done.reply_markup) == ("Dibatalkan. Tidak ada yang dikirim.", None)
    assert await count(services, incidents) == 0
    assert await count(services, idempotency) == 0


async def test_pressing_send_twice_writes_once(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    await medan_staff(services, fake, clock)
    preview = await says(fake, clock, TIGOR, "/notice kcu-medan Loket buka kembali.")
    send, _cancel = send_and_cancel(preview)
    fake.press_button(TIGOR, preview.message_id, send)
    fake.press_button(TIGOR, preview.message_id, send)  # before the first press is answered
    await settled(fake, clock, TIGOR)
    assert await count(services, incidents) == 1
    (notice,) = await public_incidents(services)
    message = next(m for m in fake.messages(TIGOR) if m.message_id == preview.message_id)
    assert message.text.startswith(f"Terkirim. ID insiden: {notice['id']}\n")
    assert len(fake.calls("answerCallbackQuery")) == 2


async def test_a_pending_notice_expires(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    await medan_staff(services, fake, clock)
    preview = await says(fake, clock, TIGOR, "/notice kcu-medan Loket buka kembali.")
    send, _cancel = send_and_cancel(preview)
    clock.advance(timedelta(minutes=10))
    assert (await presses(fake, clock, TIGOR, preview, send)).text == STALE
    assert await count(services, incidents) == 0


async def test_medan_staff_cannot_post_for_denpasar(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    token_id = await medan_staff(services, fake, clock)
    refused = await says(fake, clock, TIGOR, "/notice kcu-denpasar Loket tutup.")
    assert refused.text == (
        "Ditolak: token Anda hanya boleh menulis untuk kcu-medan. Tidak ada yang dikirim."
    )
    assert refused.reply_markup is None
    denpasar = await incident_on(services, "kcu-denpasar", "Jaringan KCU Denpasar putus")
    again = await says(fake, clock, TIGOR, f"/selesai {denpasar}")
    assert again.text == refused.text
    assert await count(services, incidents) == 1  # only the one set up above
    assert await count(services, idempotency) == 0
    denied = [e for e in await audit(services) if e.outcome == "denied"]
    assert [(e.action, e.target, e.token_id, e.remote_addr) for e in denied] == [
        ("incident.update", denpasar, token_id, "telegram"),
        ("incident.create", "", token_id, "telegram"),
    ]
    unknown = await says(fake, clock, TIGOR, "/notice kcu-surabaya Loket tutup.")
    assert unknown.text == 'Kantor "kcu-surabaya" tidak dikenal. Kantor Anda: kcu-medan.'


async def test_a_revoked_token_stops_working_at_once(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    token_id = await medan_staff(services, fake, clock)
    preview = await says(fake, clock, TIGOR, "/notice kcu-medan Loket buka kembali.")
    send, _cancel = send_and_cancel(preview)
    assert await tokens.revoke_token(services.engine, token_id, clock.now()) == [token_id]

    assert (await presses(fake, clock, TIGOR, preview, send)).text == STALE
    after = await says(fake, clock, TIGOR, "/notice kcu-medan Loket buka kembali.")
    assert after.text.startswith(HELP)
    assert await count(services, incidents) == 0


async def test_update_and_resolve_move_an_incident_in_the_readers_language(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    await medan_staff(services, fake, clock)
    incident_id = await incident_on(services, "kcu-medan", "Loket KCU Medan tutup")
    link = f"https://status.example.id/incidents/{incident_id}"

    preview = await says(fake, clock, TIGOR, f"/update {link} dipantau Antrean bergerak.")
    assert preview.text == (
        f"{PREVIEW}\n\n🟡 Dipantau · Loket KCU Medan tutup\n\nAntrean bergerak.\n\n"
        f"Terdampak:\n• KCU Medan: Gangguan total\n\n10.00 WIB · {link}"
    )
    await presses(fake, clock, TIGOR, preview, send_and_cancel(preview)[0])
    (incident,) = await public_incidents(services)
    assert incident["status"] == "monitoring"

    choice = await says(fake, clock, TIGOR, "/bahasa")
    await presses(fake, clock, TIGOR, choice, "lang:en")
    preview = await says(fake, clock, TIGOR, f"/resolve {incident_id}")
    assert preview.text.startswith(
        "Preview of the channel message (time and link are set when it is sent). Send it?\n\n"
        "✅ Resolved · Loket KCU Medan tutup\n\nLayanan sudah normal kembali.\n\n"
    )
    (send, _), (cancel, _) = buttons(preview)
    assert (send, cancel) == ("Send", "Cancel")
    done = await presses(fake, clock, TIGOR, preview, buttons(preview)[0][1])
    assert done.text.startswith(f"Sent. Incident id: {incident_id}\n")
    (incident,) = await public_incidents(services)
    assert incident["status"] == "resolved"
    assert [u["status"] for u in incident["incident_updates"]] == [
        "resolved",
        "monitoring",
        "investigating",
    ]

    wrong = await says(fake, clock, TIGOR, f"/update {incident_id} fixed Done.")
    assert wrong.text == (
        'Unknown status "fixed". Choose: investigating, identified, monitoring, resolved.'
    )
    missing = await says(fake, clock, TIGOR, "/update nope monitoring Antrean bergerak.")
    assert missing.text == 'No incident "nope".'


async def test_staff_text_is_escaped_in_the_preview_and_stored_as_typed(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    await medan_staff(services, fake, clock)
    preview = await says(fake, clock, TIGOR, "/notice kcu-medan\nLoket <b>& buka\nBawa KTP.")
    assert "\n\nLoket <b>& buka\nBawa KTP.\n\n" in preview.text
    assert [e["type"] for e in preview.entities] == ["bold"]  # only the name, as in a post
    await presses(fake, clock, TIGOR, preview, send_and_cancel(preview)[0])
    (notice,) = await public_incidents(services)
    assert notice["incident_updates"][0]["body"] == "Loket <b>& buka\nBawa KTP."

    bad = await says(fake, clock, TIGOR, "/notice <i>kcu&medan</i> x")
    assert bad.text == 'Kantor "<i>kcu&medan</i>" tidak dikenal. Kantor Anda: kcu-medan.'
    assert bad.entities == []

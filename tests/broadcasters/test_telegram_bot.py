"""The subscriber bot: what applicants say to it, what they read back, and who hears of what.

Everything goes through the real PTB client to the fake Bot API on loopback, with a real
database (SQLite and PostgreSQL); the clock is manual, so the bot's pacing is driven here.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send
from telegram.error import NetworkError, TimedOut

from broadcasters import Deps, _subscribers as store, telegram
from broadcasters._dispatch import Dispatcher
from broadcasters._registry import kinds, module, tables
from broadcasters._telegram_text import View
from broadcasters.telegram_bot import (
    SubscriberBot,
    classify,
    open_fanouts,
    parse_config,
    render_dm,
)
from status import db
from status.automatic import Automatic
from status.clock import ManualClock
from status.commands import NewIncident, NewUpdate
from status.config import Config, ConfigError, load_config_text
from status.model import SYSTEM, Event, State, Verdict
from status.render.page import render_page
from status.schema import bot_subscribers, branch_queues, deliveries, targets
from status.services import Services
from status.vocabulary import ComponentStatus as CS, Impact, IncidentStatus
from tests.conftest import MONDAY_MORNING, TEST_CONFIG, eventually
from tests.fakes.telegram import UNLIMITED, ChatMessage, FakeTelegram, fake_telegram
from tests.fakes.telegram_html import parse_html, utf16_length

pytestmark = pytest.mark.anyio
T = TypeVar("T")
TOKEN_ENV = "SIARAN_TELEGRAM_TOKEN"
HOSTILE = "<b>&\"'"
SITE = "https://status.example.id/incidents"
CONFIG = load_config_text(TEST_CONFIG, "t.toml")

# People: applicants in the queues, each in their own private chat with the bot.
AYU = 1001  # queues at KCU Medan
MADE = 1002  # queues at KCU Denpasar
JOHN = 1003  # reads English, follows the whole of Sumatera Utara
SARI = 1004  # follows the e-Meterai services themselves


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with fake_telegram(limits=UNLIMITED) as server:
        for user, name in ((AYU, "Ayu"), (MADE, "Made"), (JOHN, "John"), (SARI, "Sari")):
            server.add_user(user, name, username=name.lower())
        yield server


def document(fake: FakeTelegram, **bot: Any) -> dict[str, Any]:
    return {
        "telegram": {
            "token_env": TOKEN_ENV,
            "api_base_url": f"{fake.url}/bot",
            "bot": {"enabled": True, **bot},
        }
    }


@asynccontextmanager
async def subscriber_bot(
    services: Services,
    fake: FakeTelegram,
    *,
    config: Config | None = None,
    environ: dict[str, str] | None = None,
    **bot: Any,
) -> AsyncIterator[SubscriberBot]:
    async with httpx.AsyncClient() as http:
        deps = Deps(
            services.clock,
            http,
            config or services.config,
            {TOKEN_ENV: fake.token, **(environ or {})},
            engine=services.engine,
        )
        async with open_fanouts(document(fake, **bot), deps, documents=services.snapshot) as found:
            (subscriber_bot,) = found
            yield subscriber_bot


@pytest.fixture
async def bot(services: Services, fake: FakeTelegram) -> AsyncIterator[SubscriberBot]:
    async with subscriber_bot(services, fake) as running:
        yield running


@pytest.fixture
async def untouched_engine() -> AsyncIterator[AsyncEngine]:
    """An engine for a bot whose test never reaches the database."""
    engine = db.make_engine("sqlite://")
    yield engine
    await engine.dispose()


@pytest.fixture
async def bot_alone(
    fake: FakeTelegram, untouched_engine: AsyncEngine
) -> AsyncIterator[SubscriberBot]:
    """A running bot for what a single send does."""
    async with httpx.AsyncClient() as http:
        deps = Deps(
            ManualClock(MONDAY_MORNING),
            http,
            CONFIG,
            {TOKEN_ENV: fake.token},
            engine=untouched_engine,
        )
        async with open_fanouts(document(fake), deps) as (running,):
            yield running


# ── talking to the bot ──────────────────────────────────────────────────────────────────


def from_bot(fake: FakeTelegram, user: int) -> list[ChatMessage]:
    return [m for m in fake.messages(user) if m.sender is None]


def buttons(message: ChatMessage) -> list[tuple[str, str]]:
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    return [(b["text"], b["callback_data"]) for row in rows for b in row]


async def says(fake: FakeTelegram, clock: ManualClock, user: int, text: str) -> ChatMessage:
    """`user` writes `text`; returns the bot's answer."""
    clock.advance(timedelta(seconds=5))  # people take a few seconds between messages
    before = len(from_bot(fake, user))
    fake.send_user_message(user, text)
    await eventually(lambda: len(from_bot(fake, user)) > before)
    return from_bot(fake, user)[-1]


async def presses(
    fake: FakeTelegram, clock: ManualClock, user: int, message: ChatMessage, data: str
) -> ChatMessage:
    """`user` presses the button `data` under `message`; returns that message as edited."""
    clock.advance(timedelta(seconds=5))
    edits = len(fake.calls("editMessageText"))
    fake.press_button(user, message.message_id, data)
    await eventually(lambda: len(fake.calls("editMessageText")) > edits)
    return next(m for m in fake.messages(user) if m.message_id == message.message_id)


# ── the conversation ────────────────────────────────────────────────────────────────────


async def test_start_greets_in_bahasa_indonesia_and_english_can_be_chosen(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    greeting = await says(fake, clock, JOHN, "/start")
    assert greeting.text.startswith("Halo! Ini bot Status e-Meterai.")
    assert buttons(greeting) == [("Bahasa Indonesia", "lang:id"), ("English", "lang:en")]

    chosen = await presses(fake, clock, JOHN, greeting, "lang:en")
    assert chosen.text.startswith("Language: English.\n\nCommands:\n/subscribe")
    assert chosen.reply_markup is None
    assert await store.language_of(services.engine, JOHN) == "en"
    assert [c.params["callback_query_id"] for c in fake.calls("answerCallbackQuery")]

    help_text = await says(fake, clock, JOHN, "what is this?")
    assert help_text.text.startswith("Commands:\n/subscribe")


async def test_langganan_with_a_branch_id_subscribes_at_once(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    reply = await says(fake, clock, AYU, "/langganan kcu-medan")
    assert reply.text == (
        "Anda sekarang mengikuti KCU Medan. "
        "Saya akan mengirim pesan saat ada gangguan atau pemeliharaan."
    )
    assert await store.follows(services.engine, AYU) == ["kcu-medan"]
    async with db.read(services.engine) as conn:
        row = (
            await conn.execute(select(bot_subscribers).where(bot_subscribers.c.chat_id == AYU))
        ).one()
    assert (row.language, row.username, row.blocked_at) == ("id", "ayu", None)

    again = await says(fake, clock, AYU, "/subscribe@siaran_test_bot kcu-medan")
    assert again.text == "Anda sudah mengikuti KCU Medan."


UNDERSTOOD = [
    ("/langganan KCU medan", "kcu-medan", "KCU Medan"),
    ("/langganan bali", "region:Bali", "wilayah Bali"),
    ("/langganan Layanan", "upstream", "layanan e-Meterai"),
    ("/subscribe upstream", "upstream", "layanan e-Meterai"),
    ("/langganan emeterai-purchase", "emeterai-purchase", "Pembelian e-Meterai"),
]


async def test_branch_names_regions_and_the_services_are_understood(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    for typed, follow, confirmed in UNDERSTOOD:
        reply = await says(fake, clock, AYU, typed)
        assert reply.text.startswith(f"Anda sekarang mengikuti {confirmed}."), typed
        assert await store.follows(services.engine, AYU) == [follow], typed
        await says(fake, clock, AYU, "/berhenti semua")


async def test_an_unknown_branch_is_answered_with_the_typed_text_escaped(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    reply = await says(fake, clock, AYU, f"/langganan {HOSTILE}")
    assert reply.text.startswith(f'Saya tidak menemukan "{HOSTILE}".')
    assert reply.entities == []  # nothing of what was typed became markup
    assert await store.follows(services.engine, AYU) == []


async def test_buttons_lead_from_a_region_to_a_branch(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    menu = await says(fake, clock, MADE, "/langganan")
    assert buttons(menu) == [
        ("Sumatera Utara", "r:region:Sumatera Utara"),
        ("Bali", "r:region:Bali"),
        ("Papua", "r:region:Papua"),
        ("Layanan e-Meterai", "s:upstream"),
    ]
    region = await presses(fake, clock, MADE, menu, "r:region:Bali")
    assert region.text == "Kantor pos di Bali:"
    assert buttons(region) == [
        ("Seluruh Bali", "s:region:Bali"),
        ("KCU Denpasar", "s:kcu-denpasar"),
        ("« Kembali", "menu"),
    ]
    back = await presses(fake, clock, MADE, region, "menu")
    assert buttons(back) == buttons(menu)
    region = await presses(fake, clock, MADE, back, "r:region:Bali")
    done = await presses(fake, clock, MADE, region, "s:kcu-denpasar")
    assert done.text.startswith("Anda sekarang mengikuti KCU Denpasar.")
    assert done.reply_markup is None
    assert await store.follows(services.engine, MADE) == ["kcu-denpasar"]


async def test_berhenti_removes_what_was_followed(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    nothing = await says(fake, clock, AYU, "/berhenti")
    assert nothing.text == "Anda belum mengikuti apa pun. Ketik /langganan untuk memilih."
    await says(fake, clock, AYU, "/langganan kcu-medan")
    await says(fake, clock, AYU, "/langganan Bali")
    await says(fake, clock, AYU, "/langganan layanan")

    choice = await says(fake, clock, AYU, "/berhenti")
    assert choice.text == "Berhenti mengikuti apa?"
    assert buttons(choice) == [
        ("KCU Medan", "u:kcu-medan"),
        ("wilayah Bali", "u:region:Bali"),
        ("layanan e-Meterai", "u:upstream"),
        ("Semua", "u:*"),
    ]
    done = await presses(fake, clock, AYU, choice, "u:kcu-medan")
    assert done.text == "Anda tidak lagi mengikuti KCU Medan."
    assert await store.follows(services.engine, AYU) == ["region:Bali", "upstream"]

    typed = await says(fake, clock, AYU, "/unsubscribe bali")
    assert typed.text == "Anda tidak lagi mengikuti wilayah Bali."
    everything = await says(fake, clock, AYU, "/berhenti semua")
    assert everything.text.startswith("Anda tidak lagi mengikuti apa pun.")
    assert await store.follows(services.engine, AYU) == []


async def incident(
    services: Services, name: str, body: str, components: dict[str, CS] | None = None
) -> str:
    async with services.core.transaction() as tx:
        created = await services.core.create_incident(
            tx,
            NewIncident(
                name,
                IncidentStatus.INVESTIGATING,
                Impact.MAJOR,
                body,
                {"kcu-medan": CS.MAJOR_OUTAGE} if components is None else components,
            ),
            SYSTEM,
        )
    return created.id


async def test_status_answers_from_the_public_snapshot(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    calm = await says(fake, clock, AYU, "/status")
    assert calm.text == (
        "Status sekarang: Semua layanan berjalan normal\n\nSelengkapnya: https://status.example.id"
    )
    await incident(services, f"Loket tutup {HOSTILE}", "Sistem pusat tidak merespons.")
    await says(fake, clock, JOHN, "/start")  # John reads English
    await presses(fake, clock, JOHN, from_bot(fake, JOHN)[-1], "lang:en")

    troubled = await says(fake, clock, JOHN, "/status")
    assert troubled.text == (
        "Status now: Major System Outage\n\n"
        "Not operational:\n"
        "• KCU Medan: Major outage\n\n"
        "Ongoing incidents:\n"
        f"• Loket tutup {HOSTILE} — Investigating\n\n"
        "More: https://status.example.id"
    )


async def test_antrean_shows_a_branch_and_its_queue_from_the_snapshot(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    read_at = MONDAY_MORNING  # 10.00 WIB
    async with db.write(services.engine) as conn:
        await conn.execute(
            insert(branch_queues).values(
                branch_id="kcu-medan",
                serving=37,
                issued=120,
                counters_open=2,
                length=83,
                last_move_at=read_at - timedelta(minutes=25),
                served_per_hour=120,
                estimated_wait_s=2460,
                stalled=True,
                is_open=True,
                read_at=read_at,
                samples=[],
                source="probe",
                updated_at=read_at,
            )
        )
    await services.snapshot.refresh(force=True)

    reply = await says(fake, clock, AYU, "/antrean KCU Medan")
    assert reply.text == (
        "KCU Medan · Sumatera Utara\n"
        "Buka sampai 16.00 WIB\n"
        "Nomor yang dilayani: 37\n"
        "Menunggu: 83 orang\n"
        "Perkiraan waktu tunggu: 41 menit\n"
        "Antrean tidak bergerak sejak 09.35 WIB.\n"
        "Data antrean pukul 10.00 WIB"
    )
    never_read = await says(fake, clock, AYU, "/queue kcu-denpasar")
    assert never_read.text == "KCU Denpasar · Bali\nBuka sampai 16.00 WITA\nBelum ada data antrean."
    unknown = await says(fake, clock, AYU, "/antrean kcu-mars")
    assert unknown.text == 'Saya tidak menemukan kantor "kcu-mars". Contoh: /antrean kcu-medan'
    usage = await says(fake, clock, AYU, "/antrean")
    assert usage.text == "Tulis kantor yang ingin dilihat, misalnya: /antrean kcu-medan"


async def test_messages_in_groups_are_left_alone(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    group = fake.add_group("Antrean KCU Medan")
    fake.send_user_message(AYU, "/langganan kcu-medan", chat=group)
    await says(fake, clock, AYU, "/status")  # handled after the group message (one poll order)
    assert from_bot(fake, group) == []
    assert await store.follows(services.engine, AYU) == []


# ── fan-out ─────────────────────────────────────────────────────────────────────────────


async def drive(clock: ManualClock, work: Awaitable[T]) -> T:
    """Run `work` while the clock moves on (the bot's pacing waits on it)."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.sleep(0.005)
        clock.advance(timedelta(milliseconds=50))
    return task.result()


async def dispatcher(services: Services, bot: SubscriberBot) -> Dispatcher:
    rng = random.Random(1)  # noqa: S311 - retry jitter in a test
    found = Dispatcher(
        services.engine, services.clock, [], fanouts=[bot], instance_id="d1", rng=rng
    )
    await found.start()
    return found


async def dispatch(services: Services, d: Dispatcher) -> None:
    assert isinstance(services.clock, ManualClock)
    while await d.plan():
        pass
    await drive(services.clock, d.send_due())


async def follow(services: Services, chat: int, what: str, language: str = "id") -> None:
    await store.follow(services.engine, chat, what, None, language, services.clock.now())


async def test_an_incident_at_medan_reaches_medan_followers_and_not_denpasars(
    services: Services, fake: FakeTelegram, bot: SubscriberBot
) -> None:
    await follow(services, AYU, "kcu-medan")
    await follow(services, MADE, "kcu-denpasar")
    await follow(services, JOHN, "region:Sumatera Utara", "en")
    await follow(services, SARI, "upstream")
    d = await dispatcher(services, bot)
    incident_id = await incident(services, "Loket KCU Medan tutup", "Sistem pusat tidak merespons.")
    await dispatch(services, d)

    assert [m.text for m in from_bot(fake, AYU)] == [
        "🔴 Investigasi · Loket KCU Medan tutup\n\nSistem pusat tidak merespons.\n\n"
        f"10.00 WIB · {SITE}/{incident_id}"
    ]
    assert [m.text for m in from_bot(fake, JOHN)] == [
        "🔴 Investigating · Loket KCU Medan tutup\n\nSistem pusat tidak merespons.\n\n"
        f"10:00 WIB · {SITE}/{incident_id}"
    ]
    assert from_bot(fake, MADE) == []
    assert from_bot(fake, SARI) == []


async def test_an_upstream_outage_reaches_those_who_follow_the_services(
    services: Services, fake: FakeTelegram, bot: SubscriberBot
) -> None:
    await follow(services, AYU, "kcu-medan")
    await follow(services, SARI, "upstream")
    d = await dispatcher(services, bot)
    await incident(
        services, "Pembelian gagal", "Server pusat lambat.", {"emeterai-purchase": CS.MAJOR_OUTAGE}
    )
    await dispatch(services, d)
    assert len(from_bot(fake, SARI)) == 1
    assert from_bot(fake, AYU) == []


async def test_a_notice_naming_nothing_reaches_every_follower_once(
    services: Services, fake: FakeTelegram, bot: SubscriberBot
) -> None:
    await follow(services, AYU, "kcu-medan")
    await follow(services, AYU, "region:Sumatera Utara")
    await follow(services, MADE, "kcu-denpasar")
    d = await dispatcher(services, bot)
    await incident(services, "Meterai tempel juga diterima", "Untuk pendaftaran CASN.", {})
    await dispatch(services, d)
    assert len(from_bot(fake, AYU)) == 1
    assert len(from_bot(fake, MADE)) == 1


async def test_a_subscriber_who_blocked_the_bot_is_unsubscribed_after_one_attempt(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    await follow(services, AYU, "kcu-medan")
    await follow(services, JOHN, "kcu-medan", "en")
    fake.block(AYU)
    d = await dispatcher(services, bot)
    await incident(services, "Loket tutup", "satu")
    await dispatch(services, d)

    tried = [c for c in fake.calls("sendMessage") if c.params["chat_id"] == AYU]
    assert [c.status for c in tried] == [403]
    assert await store.follows(services.engine, AYU) == []
    async with db.read(services.engine) as conn:
        ayu = (
            await conn.execute(select(bot_subscribers).where(bot_subscribers.c.chat_id == AYU))
        ).one()
        target = (
            await conn.execute(select(targets).where(targets.c.id == f"telegram-dm:{AYU}"))
        ).one()
    assert ayu.blocked_at is not None
    assert "bot was blocked by the user" in target.disabled_reason
    assert len(from_bot(fake, JOHN)) == 1  # the others were not held up

    await incident(services, "Loket tutup lagi", "dua")
    await dispatch(services, d)
    assert len([c for c in fake.calls("sendMessage") if c.params["chat_id"] == AYU]) == 1

    # Ayu unblocks the bot and follows Medan again: news reaches her from then on.
    await says(fake, clock, AYU, "/langganan kcu-medan")
    await incident(services, "Loket tutup sekali lagi", "tiga")
    await dispatch(services, d)
    assert from_bot(fake, AYU)[-1].text.startswith("🔴 Investigasi · Loket tutup sekali lagi")


async def test_flood_control_pauses_the_bot_and_the_dm_follows_after_retry_after(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    await follow(services, AYU, "kcu-medan")
    d = await dispatcher(services, bot)
    await incident(services, "Loket tutup", "satu")
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    await dispatch(services, d)
    assert from_bot(fake, AYU) == []
    async with db.read(services.engine) as conn:
        waiting = (
            await conn.execute(
                select(deliveries).where(deliveries.c.target == f"telegram-dm:{AYU}")
            )
        ).one()
    assert waiting.status == "pending"
    assert "retry after 0:00:07" in waiting.last_error
    assert bot.pacer.paused_until is not None
    assert waiting.next_attempt_at == bot.pacer.paused_until

    await dispatch(services, d)  # too early: nothing is due
    assert from_bot(fake, AYU) == []
    clock.advance(timedelta(seconds=7))
    await dispatch(services, d)
    assert len(from_bot(fake, AYU)) == 1


async def test_a_later_update_replies_to_the_first_dm_of_the_incident(
    services: Services, fake: FakeTelegram, bot: SubscriberBot
) -> None:
    await follow(services, AYU, "kcu-medan")
    d = await dispatcher(services, bot)
    incident_id = await incident(services, "Loket tutup", "satu")
    await dispatch(services, d)
    async with services.core.transaction() as tx:
        await services.core.add_update(
            tx, incident_id, NewUpdate(IncidentStatus.RESOLVED, "Sudah normal."), SYSTEM
        )
    await dispatch(services, d)
    first, second = from_bot(fake, AYU)
    assert second.reply_to == first.message_id
    assert second.text.startswith("✅ Selesai · Loket tutup\n\nSudah normal.")


async def fold_in(services: Services, branch: str) -> None:
    """The prober sees `branch` fail while an upstream incident is open: it is folded in."""
    verdict = Verdict(f"queue-{branch}", branch, True, CS.MAJOR_OUTAGE, services.clock.now())
    async with services.core.transaction() as tx:
        await Automatic(services.core).apply(tx, [verdict])


async def test_a_branch_folded_into_an_upstream_incident_is_news_for_its_followers_only(
    services: Services, fake: FakeTelegram, bot: SubscriberBot
) -> None:
    await follow(services, AYU, "kcu-medan")
    await follow(services, JOHN, "region:Sumatera Utara", "en")
    await follow(services, SARI, "upstream")
    await follow(services, SARI, "kcu-medan")  # heard of the incident as a services follower
    await follow(services, MADE, "kcu-denpasar")
    fake.add_channel("@medanstatus")
    fake.add_channel("@emeterai")
    doc = document(fake)
    doc["telegram"]["channel"] = [
        {"chat": "@medanstatus", "components": ["kcu-medan"]},
        {"chat": "@emeterai", "components": ["emeterai-purchase"]},
    ]
    async with (
        httpx.AsyncClient() as http,
        telegram.open_targets(
            doc,
            Deps(services.clock, http, services.config, {TOKEN_ENV: fake.token}),
            keep_boards=False,
        ) as channels,
    ):
        d = Dispatcher(services.engine, services.clock, channels, fanouts=[bot], instance_id="d1")
        await d.start()
        incident_id = await incident(
            services,
            "Pembelian gagal",
            "Server pusat lambat.",
            {"emeterai-purchase": CS.MAJOR_OUTAGE},
        )
        await dispatch(services, d)
        assert [len(from_bot(fake, who)) for who in (AYU, JOHN, SARI, MADE)] == [0, 0, 1, 0]
        assert [len(fake.messages(c)) for c in ("@medanstatus", "@emeterai")] == [0, 1]

        await fold_in(services, "kcu-medan")
        await dispatch(services, d)
        (ayus,) = from_bot(fake, AYU)
        assert ayus.text == (
            "🔴 Investigasi · Pembelian gagal\n\nServer pusat lambat.\n\n"
            f"Terdampak:\n• KCU Medan: Gangguan total\n\n10.00 WIB · {SITE}/{incident_id}"
        )
        (johns,) = from_bot(fake, JOHN)
        assert "• KCU Medan: Major outage" in johns.text
        assert [len(from_bot(fake, who)) for who in (SARI, MADE)] == [1, 0]
        # The branch's channel gets the incident as a new thread, pinned; the services' does not.
        (post,) = fake.messages("@medanstatus")
        assert post.text == ayus.text
        assert fake.pinned("@medanstatus") == [post]
        assert len(fake.messages("@emeterai")) == 1

        async with services.core.transaction() as tx:
            await services.core.add_update(
                tx, incident_id, NewUpdate(IncidentStatus.RESOLVED, "Sudah normal."), SYSTEM
            )
        await dispatch(services, d)
        # From then on they follow the incident in the thread they got.
        first, resolved = from_bot(fake, AYU)
        assert resolved.reply_to == first.message_id
        assert fake.messages("@medanstatus")[-1].reply_to == post.message_id
        assert [len(from_bot(fake, who)) for who in (JOHN, SARI, MADE)] == [2, 2, 0]


@pytest.mark.parametrize(
    ("status", "description", "permanent", "retry_after"),
    [
        (403, "Forbidden: bot was blocked by the user", True, None),
        (403, "Forbidden: user is deactivated", True, None),
        (400, "Bad Request: chat not found", True, None),
        (400, "Bad Request: can't parse entities: unsupported start tag", False, 10),
        (429, "Too Many Requests: retry after 12", False, 12),
        (401, "Unauthorized", False, 300),
        (502, "Bad Gateway", False, None),
    ],
)
async def test_telegram_errors_become_delivery_errors(
    fake: FakeTelegram,
    bot_alone: SubscriberBot,
    status: int,
    description: str,
    permanent: bool,
    retry_after: int | None,
) -> None:
    from broadcasters import DeliveryError, Message

    extra = {"retry_after": retry_after} if status == 429 else {}
    fake.fail_next("sendMessage", status, description, **extra)
    with pytest.raises(DeliveryError) as caught:
        await bot_alone.deliver(Message(f"telegram-dm:{AYU}", "halo"), None)
    assert caught.value.permanent is permanent
    expected = None if retry_after is None else timedelta(seconds=retry_after)
    assert caught.value.retry_after == expected
    assert fake.token not in str(caught.value)


@pytest.mark.parametrize("error", [TimedOut("Timed out"), NetworkError("httpx.ConnectError: ")])
def test_timeouts_and_network_errors_are_retried(error: NetworkError) -> None:
    found = classify(error, AYU)
    assert (found.permanent, found.retry_after) == (False, None)


# ── rendering ───────────────────────────────────────────────────────────────────────────

AT = datetime(2026, 11, 23, 3, 30, tzinfo=UTC)


def view(language: str) -> View:
    zones = {b.id: b.zone for b in CONFIG.branches}
    return View(language, ZoneInfo(CONFIG.site.timezone), None, zones)


def event(name: str, body: str, components: tuple[str, ...] = ("kcu-denpasar",)) -> Event:
    incident = {
        "id": "abc123def456",
        "name": name,
        "status": "investigating",
        "shortlink": f"{SITE}/abc123def456",
        "incident_updates": [{"body": body, "status": "investigating"}],
    }
    return Event(7, "incident.created", AT, "abc123def456", components, {"incident": incident})


@pytest.mark.parametrize(
    ("language", "components", "expected"),
    [
        (
            "id",
            ("kcu-denpasar",),
            "🔴 Investigasi · <b>&lt;b&gt;&amp;\"' [log]</b>\n\n&lt;b&gt;&amp;\"'\n[log]\n\n"
            f"11.30 WITA · {SITE}/abc123def456",
        ),
        (
            "en",
            ("kcu-jayapura",),
            "🔴 Investigating · <b>&lt;b&gt;&amp;\"' [log]</b>\n\n&lt;b&gt;&amp;\"'\n[log]\n\n"
            f"12:30 WIT · {SITE}/abc123def456",
        ),
        (
            "id",
            ("kcu-denpasar", "kcu-jayapura"),  # branches in two zones: the site's
            "🔴 Investigasi · <b>&lt;b&gt;&amp;\"' [log]</b>\n\n&lt;b&gt;&amp;\"'\n[log]\n\n"
            f"10.30 WIB · {SITE}/abc123def456",
        ),
    ],
)
def test_a_dm_is_escaped_and_in_the_zone_of_its_branch(
    language: str, components: tuple[str, ...], expected: str
) -> None:
    hostile = event(f"{HOSTILE}\n[log]", f"{HOSTILE}\n[log]", components)
    assert render_dm(hostile, language, view(language)) == expected


def test_a_long_notice_is_trimmed_to_fit_one_message() -> None:
    body = "Antrean 😀 panjang. " * 600
    rendered = render_dm(event("Loket tutup", body), "id", view("id"))
    text, _ = parse_html(rendered)
    assert utf16_length(text) <= 4096
    assert text.endswith(f"…\n\n11.30 WITA · {SITE}/abc123def456")


# ── configuration and lifecycle ─────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("table", "found"),
    [
        ({}, None),
        ({"bot": {}}, None),
        ({"bot": {"enabled": False, "mode": "polling"}}, None),
    ],
)
def test_an_absent_or_disabled_bot_is_not_started(table: dict[str, Any], found: None) -> None:
    assert parse_config(table, CONFIG) is found


def test_the_bot_speaks_the_sites_language_and_paces_at_30_unless_told() -> None:
    settings = parse_config({"bot": {"enabled": True}}, CONFIG)
    assert settings is not None
    assert (settings.language, settings.bot.max_per_second, settings.bot.mode) == (
        "id",
        30,
        "polling",
    )
    assert settings.token_env == TOKEN_ENV
    paid = parse_config(
        {"bot": {"enabled": True, "max_per_second": 1000, "language": "en"}}, CONFIG
    )
    assert paid is not None
    assert (paid.language, paid.bot.max_per_second) == ("en", 1000)


@pytest.mark.parametrize(
    ("bot", "key", "problem"),
    [
        ({"mode": "push"}, "telegram.bot.mode", 'expected "polling" or "webhook", got "push"'),
        ({"language": "jv"}, "telegram.bot.language", 'expected "id" or "en", got "jv"'),
        ({"max_per_second": 0}, "telegram.bot.max_per_second", "expected a number above 0"),
        ({"max_per_second": 5000}, "telegram.bot.max_per_second", "at most 1000"),
        ({"token_env": "123:ABC"}, "telegram.bot.token_env", "the name of an environment variable"),
        ({"enable": True}, "telegram.bot.enable", "unknown key"),
        ({"username": "t.me/siaran_bot"}, "telegram.bot.username", 'like "siaran_bot"'),
    ],
)
def test_config_mistakes_name_the_key(bot: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"bot": {"enabled": True, **bot}}, CONFIG)
    assert caught.value.key_path == key
    assert problem in caught.value.problem
    assert "123:ABC" not in str(caught.value)


def test_the_bots_username_is_accepted_and_the_status_page_links_to_the_bot() -> None:
    text = TEST_CONFIG + '\n[telegram]\n[telegram.bot]\nenabled = true\nusername = "siaran_bot"\n'
    config = load_config_text(text, "siaran.toml", extra_tables=tables())
    settings = parse_config(config.document["telegram"], config)
    assert settings is not None
    assert settings.bot.username == "siaran_bot"
    state = State((), (), (), 1, MONDAY_MORNING, MONDAY_MORNING)
    for path in ("/", "/?lang=en"):
        html = render_page(state, config, MONDAY_MORNING)[path][0].decode()
        assert 'href="https://t.me/siaran_bot"' in html
        assert "@siaran_bot" in html


async def test_open_targets_has_no_targets_of_its_own(fake: FakeTelegram) -> None:
    assert "telegram_bot" in kinds()
    async with httpx.AsyncClient() as http:
        deps = Deps(ManualClock(MONDAY_MORNING), http, CONFIG, {})
        async with module("telegram_bot").open_targets(document(fake), deps) as found:
            assert list(found) == []
        async with open_fanouts({}, deps) as fanouts:
            assert fanouts == []
        with pytest.raises(ConfigError) as caught:
            async with module("telegram_bot").open_targets(document(fake, mode="push"), deps):
                pass
    assert caught.value.key_path == "telegram.bot.mode"


async def test_a_rejected_token_is_a_config_error_that_does_not_quote_it(
    fake: FakeTelegram, untouched_engine: AsyncEngine
) -> None:
    wrong = "999999:WRONG-token"
    async with httpx.AsyncClient() as http:
        clock = ManualClock(MONDAY_MORNING)
        deps = Deps(clock, http, CONFIG, {TOKEN_ENV: wrong}, engine=untouched_engine)
        with pytest.raises(ConfigError) as caught:
            async with open_fanouts(document(fake), deps):
                pass
    assert caught.value.key_path == "telegram.token_env"
    assert wrong not in str(caught.value)


async def test_polling_clears_a_webhook_and_sets_the_command_menu(
    services: Services, fake: FakeTelegram, bot: SubscriberBot, clock: ManualClock
) -> None:
    await says(fake, clock, AYU, "/status")
    assert fake.calls("deleteWebhook")
    assert [c["command"] for c in fake.my_commands()] == [
        "langganan",
        "berhenti",
        "status",
        "antrean",
        "bahasa",
    ]
    assert [c["command"] for c in fake.my_commands(language_code="en")][:2] == [
        "subscribe",
        "unsubscribe",
    ]


class Later:
    """An ASGI app whose routes arrive after the server has started (the bot is made then)."""

    def __init__(self) -> None:
        self.app: Starlette = Starlette()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@asynccontextmanager
async def web(app: Later) -> AsyncIterator[str]:
    """uvicorn on this test's event loop: the bot's queues belong to it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_webhook_mode_answers_telegrams_posts_and_refuses_others(
    services: Services, fake: FakeTelegram, clock: ManualClock
) -> None:
    later = Later()
    secret = "s3cret-token_for-webhook"
    environ = {"HOOK_PATH": "/telegram/9f2c41", "HOOK_SECRET": secret}
    async with web(later) as url:
        config = load_config_text(
            TEST_CONFIG.replace('"https://status.example.id"', f'"{url}"'), "t.toml"
        )
        async with subscriber_bot(
            services,
            fake,
            config=config,
            environ=environ,
            mode="webhook",
            webhook_path_env="HOOK_PATH",
            secret_token_env="HOOK_SECRET",
        ) as hooked:
            later.app = Starlette(routes=hooked.routes)
            await eventually(lambda: fake.webhook is not None)
            assert fake.webhook == {
                "url": f"{url}/telegram/9f2c41",
                "secret_token": secret,
                "allowed_updates": ["message", "callback_query"],
            }
            reply = await says(fake, clock, AYU, "/langganan kcu-medan")
            assert reply.text.startswith("Anda sekarang mengikuti KCU Medan.")

            async with httpx.AsyncClient() as http:
                forged = await http.post(
                    f"{url}/telegram/9f2c41",
                    json={"update_id": 1},
                    headers={"X-Telegram-Bot-Api-Secret-Token": "guess"},
                )
                unsigned = await http.post(f"{url}/telegram/9f2c41", json={"update_id": 1})
                garbage = await http.post(
                    f"{url}/telegram/9f2c41",
                    content=b"{not json",
                    headers={"X-Telegram-Bot-Api-Secret-Token": secret},
                )
            assert (forged.status_code, unsigned.status_code) == (403, 403)
            assert garbage.status_code == 400

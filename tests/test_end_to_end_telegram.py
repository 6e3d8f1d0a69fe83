"""End to end: the demo's upstream fails and Telegram tells everyone, through the real wiring.

The whole instance runs as `siaran serve` wires it (status.web.asgi.wired_app: prober,
core, outbox dispatcher, channel, live board, subscriber bot) against the demo simulator and
the fake Bot API, on a fast demo timeline (checks every 300 ms, stall after 2 s, resolve after
2 s quiet), so one outage plays out in seconds.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message

import broadcasters
from status import db, tokens
from status.cli import demo_text
from status.clock import SystemClock
from status.config import load_config_text
from status.demo.simulator import create_simulator
from status.schema import bot_subscriptions, deliveries, incident_components, incidents
from status.web.asgi import wired_app
from tests.conftest import eventually
from tests.fakes.telegram import ChatMessage, FakeTelegram, fake_telegram
from tests.fakes.upstream import serve

pytestmark = pytest.mark.anyio

CHANNEL = "@statusemeterai"
SUBSCRIBERS = (5001, 5002, 5003)
AFFECTED = "kcu-jakarta-pusat"  # its queue stalls during the outage: folded into the incident
FAST = {
    'interval = "2s"': 'interval = "300ms"',  # checks and queue_interval alike
    'stall_after = "20s"': 'stall_after = "2s"',
    'resolve_after = "30s"': 'resolve_after = "2s"',
}


def config_text(simulator: str, telegram: FakeTelegram) -> str:
    text = demo_text(simulator, "https://status.example.id", datetime.now(UTC))
    for slow, fast in FAST.items():
        assert slow in text, f"demo.toml no longer has {slow}"
        text = text.replace(slow, fast)
    return text + (
        f'\n[telegram]\napi_base_url = "{telegram.url}/bot"\n\n'
        f'[[telegram.channel]]\nchat = "{CHANNEL}"\ncomponents = ["*"]\nlive_board = true\n\n'
        "[telegram.bot]\nenabled = true\n"
    )


@asynccontextmanager
async def running(app: ASGIApp) -> AsyncIterator[None]:
    """The ASGI lifespan, as a server runs it: startup, the background loops, then shutdown."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    started = asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"] == "lifespan.startup.failed":
            raise RuntimeError(message.get("message"))

    async def lifespan() -> None:
        scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        await app(scope, inbox.get, send)

    task = asyncio.create_task(lifespan())
    waiter = asyncio.create_task(started.wait())
    await inbox.put({"type": "lifespan.startup"})
    await asyncio.wait({task, waiter}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    assert started.is_set(), "the app did not start"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(task, 20)


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    # Wall-clock times for every call, to compare with when the incident was written.
    with fake_telegram(clock=time.time) as fake:
        fake.add_channel(CHANNEL, chat_id=-1001234567890, title="Status e-Meterai")
        for user in SUBSCRIBERS:
            fake.add_user(user, f"Pemohon {user}")
        yield fake


@pytest.fixture
def simulator() -> Iterator[str]:
    with serve(create_simulator(SystemClock())) as url:
        yield url


def posts(fake: FakeTelegram) -> list[ChatMessage]:
    """The channel's incident posts (not the status board)."""
    return [m for m in fake.messages(CHANNEL) if not m.text.startswith("📋")]


def board(fake: FakeTelegram) -> ChatMessage | None:
    return next((m for m in fake.pinned(CHANNEL) if m.text.startswith("📋")), None)


async def test_an_upstream_outage_reaches_the_channel_its_board_and_the_branch_subscribers(
    telegram: FakeTelegram, simulator: str, engine: AsyncEngine
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    config = load_config_text(
        config_text(simulator, telegram), "<e2e>", extra_tables=broadcasters.tables()
    )
    environ = {"SIARAN_TELEGRAM_TOKEN": telegram.token, "SIARAN_DATABASE_URL": url}
    async with (
        wired_app(config, environ) as app,
        running(app),
        httpx.AsyncClient() as control,
    ):
        # People follow the branch through the bot, as they would on their phones.
        for user in SUBSCRIBERS:
            telegram.send_user_message(user, f"/langganan {AFFECTED}")

        async def subscribed() -> bool:
            async with db.read(engine) as conn:
                count = await conn.execute(
                    select(func.count()).where(bot_subscriptions.c.follow == AFFECTED)
                )
                return count.scalar_one() == len(SUBSCRIBERS)

        await eventually(subscribed, within=15)
        await eventually(lambda: board(telegram) is not None, within=15)
        assert (found := board(telegram)) is not None
        assert found.disable_notification

        # The upstream purchase API goes down.
        await control.post(f"{simulator}/control/services/purchase", json={"mode": "down"})
        await eventually(lambda: len(posts(telegram)) == 1, within=15)
        first = posts(telegram)[0]
        assert first.text.startswith("🔴 Investigasi")
        async with db.read(engine) as conn:
            incident_id, created_at = (
                await conn.execute(select(incidents.c.id, incidents.c.created_at))
            ).one()
        (sent,) = [
            c
            for c in telegram.calls("sendMessage")
            if c.params.get("reply_parameters") is None
            and not str(c.params["text"]).startswith("📋")
            and c.params["chat_id"] == CHANNEL
        ]
        delay = sent.at - created_at.timestamp()
        print(f"incident written → channel post received: {delay * 1000:.0f} ms")
        assert delay < 1.0, f"the post took {delay:.2f} s"
        await eventually(lambda: posts(telegram)[0].pinned)  # pinned right after it is sent

        # The board follows within its coalescing interval.
        await eventually(
            lambda: "🔴 Pembelian e-Meterai: Gangguan total" in (board(telegram) or first).text,
            within=15,
        )

        # A branch queue stalls meanwhile: folded into the same incident, not one of its own.
        await control.post(f"{simulator}/control/queues/{AFFECTED}", json={"mode": "stalled"})

        async def folded() -> bool:
            async with db.read(engine) as conn:
                rows = await conn.execute(
                    select(incident_components.c.component_id).where(
                        incident_components.c.incident_id == incident_id
                    )
                )
                return AFFECTED in {r[0] for r in rows}

        await eventually(folded, within=20)

        # Service and queue come back: monitoring, then resolved after the quiet period.
        await control.post(f"{simulator}/control/services/purchase", json={"mode": "up"})
        await control.post(f"{simulator}/control/queues/{AFFECTED}", json={"mode": "moving"})
        await eventually(
            lambda: any(m.text.startswith("✅ Selesai") for m in posts(telegram)), within=30
        )
        await eventually(
            lambda: "🟢 Semua layanan berjalan normal" in (board(telegram) or first).text,
            within=15,
        )

        async def all_sent() -> bool:  # DMs to subscribers go at the bot's own pace
            async with db.read(engine) as conn:
                left = await conn.execute(
                    select(func.count()).where(deliveries.c.status.in_(("pending", "sending")))
                )
                return left.scalar_one() == 0

        await eventually(all_sent, within=15)

        first, *replies = posts(telegram)
        assert replies
        assert all(m.reply_to == first.message_id for m in replies)
        heads = [
            str(c.params["text"]).split("\n")[0]
            for c in telegram.calls("editMessageText")
            if c.params["message_id"] == first.message_id and c.status == 200
        ]
        assert heads[0].startswith("🟡 Dipantau")
        assert heads[-1].startswith("✅ Selesai")
        assert first.text.startswith("✅ Selesai")  # the first post's status line follows
        assert f"https://status.example.id/incidents/{incident_id}" in first.text
        assert re.search(r"\n\d\d\.\d\d WIB · ", first.text)  # the time, in WIB
        assert not first.pinned
        boards = {m.message_id for m in telegram.messages(CHANNEL) if m.text.startswith("📋")}
        assert len(boards) == 1

        # The delivery log shows every post and DM, each sent.
        _info, token = await tokens.create_token(engine, "e2e ops", ("admin",), datetime.now(UTC))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://siaran") as api:
            answer = await api.get(
                "/api/v1/deliveries?limit=500", headers={"Authorization": f"Bearer {token}"}
            )
        assert answer.status_code == 200
        log = answer.json()["deliveries"]
        assert {d["status"] for d in log} == {"sent"}
        to_channel = {int(d["receipt"]) for d in log if d["target"] == f"telegram:{CHANNEL}"}
        assert to_channel == {m.message_id for m in posts(telegram)}
        for user in SUBSCRIBERS:
            sent_to = {int(d["receipt"]) for d in log if d["target"] == f"telegram-dm:{user}"}
            got = {m.message_id: m.text for m in telegram.messages(user) if m.sender is None}
            assert len(sent_to) >= 2, f"subscriber {user} got {len(sent_to)} DMs"
            assert sent_to <= set(got)
            assert all("Pembelian e-Meterai" in got[i] for i in sent_to)

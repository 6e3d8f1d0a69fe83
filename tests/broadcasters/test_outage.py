"""Telegram down for minutes (502s, or refusing connections) while news keeps coming: once it
answers again, every channel post and every DM arrives, in order, none twice.

The real dispatcher loop, the real channel broadcaster and the real subscriber bot talk to the
fake Bot API on loopback; the clock is manual, so ten minutes of outage and the backoff that
goes with it take seconds.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from broadcasters import Deps, _subscribers as store, telegram
from broadcasters._dispatch import Dispatcher
from broadcasters.telegram_bot import open_fanouts
from status import db
from status.clock import ManualClock
from status.commands import NewIncident, NewUpdate
from status.model import SYSTEM
from status.schema import deliveries
from status.services import Services
from status.vocabulary import ComponentStatus as CS, Impact, IncidentStatus
from tests.conftest import free_port
from tests.fakes.telegram import UNLIMITED, FakeTelegram
from tests.fakes.upstream import serve

pytestmark = pytest.mark.anyio

CHANNEL = "@statusemeterai"
TOKEN_ENV = "SIARAN_TELEGRAM_TOKEN"
APPLICANTS = list(range(7001, 7031))  # thirty people queueing at KCU Medan
NEWS = ["Loket tutup: jaringan pusat terganggu.", "Teknisi sedang memperbaiki.", "Sudah normal."]


@contextmanager
def listening(fake: FakeTelegram, port: int) -> Iterator[None]:
    """Serve `fake` on 127.0.0.1:`port` for the block; outside it connections are refused."""
    with serve(fake.app(), port):
        try:
            yield
        finally:
            fake._closing.set()  # ends the bot's held long poll, so the server stops at once
    fake._closing.clear()  # the same fake answers again on the next listener


@asynccontextmanager
async def dispatching(services: Services, fake: FakeTelegram) -> AsyncIterator[Dispatcher]:
    """The channel and the subscriber bot behind the dispatcher's own loop, as `serve` runs them."""
    doc = {
        "telegram": {
            "token_env": TOKEN_ENV,
            "api_base_url": f"{fake.url}/bot",
            "channel": [{"chat": CHANNEL, "components": ["*"]}],
            "bot": {"enabled": True},
        }
    }
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient())
        deps = Deps(
            services.clock, http, services.config, {TOKEN_ENV: fake.token}, engine=services.engine
        )
        channels = await stack.enter_async_context(telegram.open_targets(doc, deps))
        fanouts = await stack.enter_async_context(open_fanouts(doc, deps))
        dispatcher = Dispatcher(
            services.engine,
            services.clock,
            channels,
            fanouts=fanouts,
            rng=random.Random(4),  # noqa: S311 - retry jitter in a test
        )
        await dispatcher.start()
        services.core.on_commit(dispatcher.on_commit)
        loop = asyncio.ensure_future(dispatcher.run())
        try:
            yield dispatcher
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)


async def minutes_pass(clock: ManualClock, minutes: float) -> None:
    """Let `minutes` of clock time go by in 5-second steps, each given a moment to act on."""
    for _ in range(int(minutes * 12)):
        clock.advance(timedelta(seconds=5))
        await asyncio.sleep(0.01)


async def until(
    clock: ManualClock, done: Callable[[], Awaitable[bool]], *, minutes: float = 30
) -> None:
    """Move the clock on until `done()`; fail after `minutes` of clock time."""
    for _ in range(int(minutes * 12)):
        if await done():
            return
        clock.advance(timedelta(seconds=5))
        await asyncio.sleep(0.02)
    raise AssertionError(f"not done within {minutes} minutes")


async def statuses(services: Services) -> list[tuple[str, int, str]]:
    async with db.read(services.engine) as conn:
        rows = await conn.execute(
            select(deliveries.c.target, deliveries.c.attempts, deliveries.c.status).order_by(
                deliveries.c.target, deliveries.c.event_id
            )
        )
        return [(r.target, r.attempts, r.status) for r in rows]


async def news_during_outage(services: Services, clock: ManualClock) -> str:
    """The incident, an update and its resolution, a couple of minutes apart."""
    async with services.core.transaction() as tx:
        created = await services.core.create_incident(
            tx,
            NewIncident(
                "Loket e-Meterai KCU Medan tutup",
                IncidentStatus.INVESTIGATING,
                Impact.MAJOR,
                NEWS[0],
                {"kcu-medan": CS.MAJOR_OUTAGE},
            ),
            SYSTEM,
        )
    for status, body in ((IncidentStatus.IDENTIFIED, NEWS[1]), (IncidentStatus.RESOLVED, NEWS[2])):
        await minutes_pass(clock, 2)
        async with services.core.transaction() as tx:
            await services.core.add_update(tx, created.id, NewUpdate(status, body), SYSTEM)
    return created.id


async def everything_arrives_in_order_once(
    services: Services, fake: FakeTelegram, clock: ManualClock
) -> None:
    async def all_sent() -> bool:
        found = await statuses(services)
        return len(found) == 3 * (len(APPLICANTS) + 1) and all(s == "sent" for *_, s in found)

    await until(clock, all_sent)
    posts = fake.messages(CHANNEL)
    assert [next(b for b in NEWS if b in p.text) for p in posts] == NEWS
    assert [p.reply_to for p in posts[1:]] == [posts[0].message_id] * 2
    for chat in APPLICANTS:
        assert [next(b for b in NEWS if b in m.text) for m in fake.messages(chat)] == NEWS
    found = await statuses(services)
    # The first delivery of every target was tried through the outage, with backoff.
    firsts = {target: attempts for target, attempts, _ in reversed(found)}
    assert min(firsts.values()) > 1


@pytest.fixture
async def followers(services: Services, clock: ManualClock) -> list[int]:
    for chat in APPLICANTS:
        await store.follow(services.engine, chat, "kcu-medan", None, "id", clock.now())
    return APPLICANTS


def fake_with_chats(port: int) -> FakeTelegram:
    fake = FakeTelegram(limits=UNLIMITED)
    fake.url = f"http://127.0.0.1:{port}"
    fake.add_channel(CHANNEL)
    for chat in APPLICANTS:
        fake.add_user(chat)
    return fake


async def test_ten_minutes_of_502s_end_with_everything_delivered_in_order(
    services: Services, clock: ManualClock, followers: list[int]
) -> None:
    port = free_port()
    fake = fake_with_chats(port)
    with listening(fake, port):
        async with dispatching(services, fake):
            fake.outage = "bad_gateway"
            await news_during_outage(services, clock)
            await minutes_pass(clock, 6)
            assert fake.messages(CHANNEL) == []
            assert all(fake.messages(chat) == [] for chat in APPLICANTS)
            assert fake.statuses()[502] > len(APPLICANTS)
            fake.outage = None
            await everything_arrives_in_order_once(services, fake, clock)


async def test_ten_minutes_of_refused_connections_end_with_everything_delivered_in_order(
    services: Services, clock: ManualClock, followers: list[int]
) -> None:
    port = free_port()
    fake = fake_with_chats(port)
    with ExitStack() as telegram_up:
        telegram_up.enter_context(listening(fake, port))
        async with dispatching(services, fake):
            telegram_up.close()  # nothing listens on the port any more
            await news_during_outage(services, clock)
            await minutes_pass(clock, 6)
            async with db.read(services.engine) as conn:
                tried = (await conn.execute(select(deliveries.c.attempts))).scalars().all()
            assert max(tried) > 1
            assert fake.messages(CHANNEL) == []
            with listening(fake, port):
                await everything_arrives_in_order_once(services, fake, clock)

"""The bot's pace under network jitter: Telegram counts a DM when it arrives, so a DM counts
against the bot's limit until a second after its answer, and evenly spaced DMs that bunch up
on the way still never make 31 in a second."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from broadcasters import telegram, telegram_bot
from broadcasters._base import Deps
from broadcasters._telegram_limits import HORIZON, Pacer, bot_rate
from status.services import Services
from tests.broadcasters.test_telegram_limits import (
    START,
    Timeline,
    run,
    settle,
    windows_hold_at_most,
)
from tests.fakes.telegram import UNLIMITED, fake_telegram

pytestmark = pytest.mark.anyio
ROUND_TRIP = timedelta(milliseconds=200)


async def test_a_dm_counts_until_a_second_after_its_answer() -> None:
    clock = Timeline()
    pacer = Pacer(clock, per_second=30)
    calls: list[tuple[timedelta, timedelta]] = []

    async def dm(chat: int) -> None:
        async with pacer.slot(chat):
            sent = clock.now()
            await clock.sleep_until(sent + ROUND_TRIP)  # Telegram answers 200 ms later
        calls.append((sent - START, clock.now() - START))

    await run(clock, *(dm(1000 + n) for n in range(90)))
    calls.sort()
    # Wherever in its round trip each DM arrived, no second holds more than 30 arrivals.
    for (_, answered), (later_sent, _) in zip(calls, calls[30:], strict=False):
        assert later_sent >= answered + timedelta(seconds=1)
    # Still close to the limit: 90 DMs in about three seconds plus the round trips.
    assert calls[-1][0] <= timedelta(seconds=3) + 3 * ROUND_TRIP


async def test_a_channel_post_goes_before_every_waiting_dm_and_the_budget_stays_30() -> None:
    clock = Timeline()
    pacer = Pacer(clock, per_second=30)
    admitted: dict[str, timedelta] = {}

    async def send(name: str, chat: int | None, *, urgent: bool = False) -> None:
        async with pacer.slot(chat, urgent=urgent):
            admitted[name] = clock.since_start()
            await clock.sleep_until(clock.now() + ROUND_TRIP)

    async def post_later() -> None:
        await clock.sleep_until(START + timedelta(milliseconds=500))
        await send("post", None, urgent=True)

    dms = [send(f"dm {n}", 1000 + n) for n in range(120)]
    await run(clock, *dms, post_later())
    # 120 DMs were queued first, yet the post goes out right after the few slots handed out.
    assert admitted["post"] <= timedelta(milliseconds=500) + HORIZON + 2 * pacer.interval
    times = sorted(admitted.values())
    # No place is kept idle for the channel: 121 sends in 4 s plus the round trips.
    assert times[-1] <= timedelta(seconds=4) + 4 * ROUND_TRIP
    assert windows_hold_at_most(times, 30, timedelta(seconds=1))


async def test_a_cancelled_wait_passes_its_turn_on() -> None:
    clock = Timeline()
    pacer = Pacer(clock, per_second=1, per_window=1)
    await pacer.acquire(None)  # the window is full for a second
    first = asyncio.ensure_future(pacer.acquire(None))
    urgent = asyncio.ensure_future(pacer.acquire(None, urgent=True))
    ordinary = asyncio.ensure_future(pacer.acquire(None))
    await settle()
    urgent.cancel()
    await run(clock, first, ordinary)
    assert urgent.cancelled()


@pytest.mark.parametrize(
    ("table", "per_second"),
    [
        ({"bot": {"enabled": True}}, 30),
        ({"bot": {"enabled": True, "max_per_second": 1000}}, 1000),
        ({"bot": {"enabled": False, "max_per_second": 1000}}, 30),
        ({"bot": {"enabled": True, "max_per_second": 1000, "token_env": "SIARAN_DM_BOT"}}, 30),
        ({}, 30),
    ],
)
def test_channels_pace_at_the_rate_of_the_bot_sharing_their_token(
    table: dict[str, object], per_second: float
) -> None:
    raw = {"token_env": "SIARAN_TELEGRAM_TOKEN", **table}
    assert bot_rate(raw, "SIARAN_TELEGRAM_TOKEN") == per_second


async def test_channels_and_the_subscriber_bot_on_one_token_share_one_pacer(
    services: Services,
) -> None:
    with fake_telegram(limits=UNLIMITED) as fake:
        fake.add_channel("@statusemeterai")
        doc = {
            "telegram": {
                "token_env": "SIARAN_TELEGRAM_TOKEN",
                "api_base_url": f"{fake.url}/bot",
                "channel": [{"chat": "@statusemeterai"}],
                "bot": {"enabled": True, "max_per_second": 1000},
            }
        }
        environ = {"SIARAN_TELEGRAM_TOKEN": fake.token}
        async with httpx.AsyncClient() as http:
            deps = Deps(services.clock, http, services.config, environ, engine=services.engine)
            async with (
                telegram.open_targets(doc, deps, keep_boards=False) as (channel,),
                telegram_bot.open_fanouts(doc, deps) as (bot,),
            ):
                assert channel.pacer is bot.pacer
                assert bot.pacer.interval == timedelta(milliseconds=1)
                assert bot.pacer.per_window == 1000
                assert fake.token not in repr(deps)

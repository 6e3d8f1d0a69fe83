"""The bot's pace under network jitter: Telegram counts a DM when it arrives, so a DM counts
against the bot's limit until a second after its answer, and evenly spaced DMs that bunch up
on the way still never make 31 in a second."""

from __future__ import annotations

from datetime import timedelta

import pytest

from broadcasters._telegram_limits import Pacer
from broadcasters.telegram_bot import Settings, parse_config
from status.config import load_config_text
from tests.broadcasters.test_telegram_limits import START, Timeline, run
from tests.conftest import TEST_CONFIG

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


@pytest.mark.parametrize(
    ("bot", "channels", "pace"),
    [
        ({"enabled": True}, 1, 29),  # the channel's post always has its place in the second
        ({"enabled": True}, 0, 30),
        ({"enabled": True, "max_per_second": 1000}, 2, 998),
        ({"enabled": True, "token_env": "SIARAN_DM_BOT"}, 1, 30),  # another bot: its own budget
    ],
)
def test_dms_leave_room_for_channels_posting_with_the_same_bot(
    bot: dict[str, object], channels: int, pace: int
) -> None:
    raw = {
        "token_env": "SIARAN_TELEGRAM_TOKEN",
        "channel": [{"chat": f"@saluran{n}x"} for n in range(channels)],
        "bot": bot,
    }
    settings = parse_config(raw, load_config_text(TEST_CONFIG, "t.toml"))
    assert isinstance(settings, Settings)
    assert settings.pace == pace

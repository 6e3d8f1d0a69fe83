"""The bot's pace: Telegram's limits kept on a manual clock, whoever is sending."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from telegram.error import RetryAfter

from broadcasters._telegram_limits import BacklogError, Pace, PacedRequests, Pacer, slot_interval
from status.clock import ManualClock

pytestmark = pytest.mark.anyio
START = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
T = TypeVar("T")
SECOND = timedelta(seconds=1)


class Timeline(ManualClock):
    """A ManualClock that knows when its sleepers want to wake, so a test can jump there."""

    def __init__(self, start: datetime = START) -> None:
        super().__init__(start)
        self.wakeups: list[datetime] = []

    async def sleep_until(self, at: datetime) -> None:
        self.wakeups.append(at)
        try:
            await super().sleep_until(at)
        finally:
            self.wakeups.remove(at)

    def since_start(self) -> timedelta:
        return self.now() - START


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def run(clock: Timeline, *work: Awaitable[T]) -> list[T]:
    """Run `work` to the end, moving the clock to the next wake-up whenever all are asleep."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        while True:
            await settle()
            if all(t.done() for t in tasks):
                return [t.result() for t in tasks]
            ahead = [w for w in clock.wakeups if w > clock.now()]
            assert ahead, "stuck: nothing done and nobody waiting for the clock"
            clock.set(min(ahead))
    finally:
        for task in tasks:
            task.cancel()


def admitted(clock: Timeline, pacer: Pacer, chat: int | None) -> Awaitable[timedelta]:
    async def go() -> timedelta:
        await pacer.acquire(chat)
        return clock.since_start()

    return go()


def windows_hold_at_most(times: Sequence[timedelta], count: int, per: timedelta) -> bool:
    ordered = sorted(times)
    return all(ordered[i + count] - ordered[i] >= per for i in range(len(ordered) - count))


async def test_sixty_dms_to_sixty_people_take_two_seconds_at_30_a_second() -> None:
    clock = Timeline()
    pacer = Pacer(clock, per_second=30)
    times = await run(clock, *(admitted(clock, pacer, 1000 + n) for n in range(60)))
    assert windows_hold_at_most(times, 30, SECOND)  # never 31 in any second
    assert max(times) >= timedelta(seconds=59 / 30)  # the 60th leaves 59 slots after the first
    assert pacer.free_at - START >= timedelta(seconds=2)  # and the 61st could not before 2 s
    assert sorted(times) == times  # first come, first served


async def test_two_dms_to_one_person_are_a_second_apart_without_holding_up_others() -> None:
    clock = Timeline()
    pacer = Pacer(clock, per_second=30)
    first, second, other = await run(
        clock,
        admitted(clock, pacer, 42),
        admitted(clock, pacer, 42),
        admitted(clock, pacer, 43),
    )
    assert second - first >= SECOND
    assert other < SECOND  # another person's DM went in the meantime


async def test_a_group_or_channel_gets_three_seconds_between_messages() -> None:
    clock = Timeline()
    pacer = Pacer(clock)
    first, second = await run(clock, admitted(clock, pacer, -1001), admitted(clock, pacer, -1001))
    assert second - first == timedelta(seconds=3)


async def test_a_429_pauses_every_send_until_its_retry_after() -> None:
    clock = Timeline()
    pacer = Pacer(clock, per_second=30)
    pacer.pause(timedelta(seconds=5))
    times = await run(clock, *(admitted(clock, pacer, 2000 + n) for n in range(3)))
    assert min(times) == timedelta(seconds=5)
    assert windows_hold_at_most(times, 1, pacer.interval)  # evenly spaced after the pause


async def test_sends_waiting_when_a_429_arrives_queue_again_after_it_without_a_burst() -> None:
    clock = Timeline()
    pacer = Pacer(clock, per_second=10)

    async def flood_after_first() -> timedelta:
        await pacer.acquire(1)
        await asyncio.sleep(0)  # the next takes its slot, 0.1 s; the others wait their turn
        assert pacer.free_at == START + timedelta(milliseconds=200)
        pacer.pause(timedelta(seconds=3))
        return clock.since_start()

    waiting = [admitted(clock, pacer, 3000 + n) for n in range(4)]
    paused_at, *times = await run(clock, flood_after_first(), *waiting)
    assert min(times) == paused_at + timedelta(seconds=3)
    assert windows_hold_at_most(times, 1, timedelta(milliseconds=100))


async def test_a_send_that_would_wait_too_long_takes_nothing() -> None:
    clock = Timeline()
    pacer = Pacer(clock)
    pacer.pause(timedelta(seconds=30))
    free_at = pacer.free_at
    with pytest.raises(BacklogError) as caught:
        await pacer.acquire(7, patience=timedelta(seconds=10))
    assert caught.value.wait == timedelta(seconds=30)
    assert pacer.free_at == free_at
    (late,) = await run(clock, admitted(clock, pacer, 7))  # and the chat is not held either
    assert late == timedelta(seconds=30)


@pytest.mark.parametrize(
    ("per_second", "interval"),
    [(30, timedelta(microseconds=33334)), (1000, timedelta(milliseconds=1)), (1, SECOND)],
)
def test_slots_are_rounded_up_so_the_rate_is_never_exceeded(
    per_second: float, interval: timedelta
) -> None:
    assert slot_interval(per_second) == interval
    assert slot_interval(per_second) * per_second >= SECOND


# ── PTB's hook ──────────────────────────────────────────────────────────────────────────


class Endpoint:
    """Stands in for PTB's _do_post: answers 429 `floods` times, then ok."""

    def __init__(self, clock: Timeline, floods: int = 0) -> None:
        self.clock, self.floods = clock, floods
        self.calls: list[timedelta] = []

    async def __call__(self, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
        self.calls.append(self.clock.since_start())
        if self.floods:
            self.floods -= 1
            raise RetryAfter(timedelta(seconds=4))
        return {"message_id": 1}


def request(
    limiter: PacedRequests, endpoint: Callable[..., Any], method: str, pace: Pace | None
) -> Awaitable[Any]:
    return limiter.process_request(endpoint, (), {}, method, {"chat_id": 55, "text": "x"}, pace)


async def test_a_reply_that_meets_a_429_waits_it_out_and_is_sent_once_more() -> None:
    clock = Timeline()
    limiter = PacedRequests(Pacer(clock))
    endpoint = Endpoint(clock, floods=1)
    (result,) = await run(clock, request(limiter, endpoint, "sendMessage", None))
    assert result == {"message_id": 1}
    assert endpoint.calls == [timedelta(0), timedelta(seconds=4)]


async def test_a_fan_out_send_hands_a_429_back_and_pauses_the_bot() -> None:
    clock = Timeline()
    pacer = Pacer(clock)
    limiter = PacedRequests(pacer)
    endpoint = Endpoint(clock, floods=1)
    with pytest.raises(RetryAfter):
        await request(limiter, endpoint, "sendMessage", Pace(retry_on_flood=False))
    assert endpoint.calls == [timedelta(0)]
    assert pacer.paused_until == START + timedelta(seconds=4)


async def test_calls_that_send_nothing_are_not_paced() -> None:
    clock = Timeline()
    pacer = Pacer(clock)
    pacer.pause(timedelta(minutes=1))
    endpoint = Endpoint(clock)
    assert await request(PacedRequests(pacer), endpoint, "answerCallbackQuery", None)
    assert endpoint.calls == [timedelta(0)]

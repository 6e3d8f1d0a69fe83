"""Pacing for one bot's Bot API calls: a global bucket, a gap per chat, and a pause after a 429.

Telegram's published limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
about 30 messages a second over all chats (up to 1000 with paid broadcasts), no more than
one a second in a private chat, 20 a minute in a group. Past them Telegram answers 429 with
`retry_after` (https://core.telegram.org/bots/api#responseparameters) and counts the excess
against the bot, so the safe course is never to burst: sends leave evenly spaced.

PTB's AIORateLimiter does not fit: it has no per-private-chat limit, and after its retries
it re-raises RetryAfter without holding back the bot's other sends. Here:

- `Pacer` is the pure-ish scheduler on an injected Clock, so tests drive it with a
  ManualClock. Sends are admitted first-come first-served: each send first waits for its
  chat's gap (one send per chat at a time, in order), then takes the bot's next global slot,
  1/rate apart. Spacing alone is not enough: Telegram counts a send when it arrives, and
  network jitter bunches evenly spaced sends up, so a send also holds a place in a sliding
  window of `per_window` places from its slot until a second after its answer came back
  (a new send is admitted when fewer than `per_window` will still count at its slot).
  Ordinary sends take their slots at most HORIZON ahead.
  A 429 pauses every send until its `retry_after` has passed; a send that had a slot during
  the pause takes a new one after it, so the pause never ends in a burst.
- Sends are admitted first-come first-served within two classes: an `urgent` send (a
  channel post or its edit) is admitted before every waiting ordinary send (DMs), so a
  post never queues behind a fan-out, and no place of the budget is kept idle for it.
- `PacedRequests` plugs the Pacer into PTB (ExtBot's rate_limiter), so every paced call
  of the bot, a reply to a user as much as a fan-out DM, shares one budget.
- `shared_pacer` hands everyone sending with one token (channels in telegram.py, the
  subscriber bot in telegram_bot.py) the same Pacer, so the bot's whole limit is one budget.

    BacklogError(Exception) ... the wait for a slot would exceed the caller's patience;
                                `wait` says how long it would have been
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import math
import warnings
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

from status.clock import Clock

ChatKey = int | str
PRIVATE_GAP = timedelta(seconds=1)
WINDOW = timedelta(seconds=1)
GROUP_GAP = timedelta(seconds=3)  # 20 a minute in a group or channel
FREE_PER_SECOND = 30.0  # without paid broadcasts
HORIZON = timedelta(milliseconds=100)  # how far ahead an ordinary send may take its slot
# Calls that put a message in a chat, which is what Telegram's limits count. getUpdates is
# never passed to a rate limiter by PTB; answerCallbackQuery, getMe, setMyCommands … are free.
PACED = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendAudio",
        "sendVideo",
        "sendAnimation",
        "sendVoice",
        "sendSticker",
        "sendLocation",
        "sendMediaGroup",
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
    }
)
# A 429 on a reply to a user is waited out and the reply sent once more; a second 429 is
# raised (the handler's error is logged), so a flood never turns into a loop.
REPLY_RETRIES = 1


class BacklogError(Exception):
    """The next slot is further away than the caller will wait."""

    def __init__(self, wait: timedelta) -> None:
        super().__init__(f"next Bot API slot in {wait.total_seconds():.1f}s")
        self.wait = wait


def slot_interval(per_second: float) -> timedelta:
    """1/rate, rounded up to the microsecond so that `per_second` slots never fit in 1 s."""
    return timedelta(microseconds=math.ceil(1_000_000 / per_second))


def retry_after(exc: RetryAfter) -> timedelta:
    """Telegram's wait; PTB 22 gives an int or a timedelta depending on PTB_TIMEDELTA."""
    with warnings.catch_warnings():
        # Reading the int form warns (PTB 22.2+); both forms are handled right here.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


class _Turns:
    """A lock whose urgent waiters go before the ordinary ones; each class first come, first served."""

    def __init__(self) -> None:
        self._held = False
        self._waiting: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())

    @asynccontextmanager
    async def turn(self, *, urgent: bool) -> AsyncIterator[None]:
        if self._held:
            queue = self._waiting[0 if urgent else 1]
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            queue.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._pass_on()  # handed the turn just as we were cancelled: pass it on
                elif waiter in queue:
                    queue.remove(waiter)
                raise
        self._held = True
        try:
            yield
        finally:
            self._pass_on()

    def _pass_on(self) -> None:
        for queue in self._waiting:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the turn goes to it: _held stays True
                    return
        self._held = False


class Pacer:
    """Admits sends one slot at a time; see the module docstring. Not thread-safe (one loop)."""

    def __init__(
        self,
        clock: Clock,
        *,
        per_second: float = 30.0,
        private_gap: timedelta = PRIVATE_GAP,
        group_gap: timedelta = GROUP_GAP,
        per_window: int | None = None,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.clock = clock
        self.interval = slot_interval(per_second)
        self._private_gap, self._group_gap = private_gap, group_gap
        self._next_slot: datetime | None = None  # the bot's next free global slot
        self._chat_free: dict[ChatKey, datetime] = {}  # chat → earliest next send there
        self._chat_locks: dict[ChatKey, tuple[asyncio.Lock, int]] = {}
        self._paused_until: datetime | None = None
        self._pauses = 0  # bumped by every pause(): slots taken before it are void
        # The sliding window Telegram counts in: at most per_window sends in any WINDOW.
        # A send counts from its slot until WINDOW after its answer came back, because
        # Telegram counts it on arrival, somewhere in between.
        self.per_window = per_window or max(1, math.floor(per_second))
        self._counting: list[datetime] = []  # heap: when each finished send stops counting
        self._open = 0  # sends holding a slot whose answer has not come back
        self._landed = asyncio.Event()
        self._admit = _Turns()

    @property
    def free_at(self) -> datetime:
        """When the next send could leave if it were the only one waiting."""
        now = self.clock.now()
        return max(now, self._next_slot or now, self._paused_until or now)

    @property
    def paused_until(self) -> datetime | None:
        now = self.clock.now()
        return self._paused_until if self._paused_until and self._paused_until > now else None

    def gap(self, chat: ChatKey) -> timedelta:
        """Private chats have positive ids; groups and channels negative ids or @usernames."""
        return self._private_gap if isinstance(chat, int) and chat > 0 else self._group_gap

    def pause(self, wait: timedelta) -> None:
        """Telegram said 429: no send leaves until `wait` from now."""
        until = self.clock.now() + wait
        if self._paused_until is None or until > self._paused_until:
            self._paused_until = until
        # Every slot handed out so far is void; sends queue again from the end of the pause.
        self._next_slot = self._paused_until
        self._pauses += 1

    async def acquire(
        self, chat: ChatKey | None, *, patience: timedelta | None = None, urgent: bool = False
    ) -> None:
        """Wait for this chat's and the bot's next slot and take them; the send counts as done.

        Raises BacklogError, taking nothing, when the wait would exceed `patience` (None:
        wait as long as it takes). Cancelling a waiting acquire takes nothing either.
        `urgent` sends are admitted before every waiting ordinary one.
        """
        self.landed(at=await self._acquire(chat, patience, urgent))

    @asynccontextmanager
    async def slot(
        self, chat: ChatKey | None, *, patience: timedelta | None = None, urgent: bool = False
    ) -> AsyncIterator[None]:
        """Hold a slot for one call: it counts in the window until WINDOW after it returns."""
        await self._acquire(chat, patience, urgent)
        try:
            yield
        finally:
            self.landed()

    def landed(self, *, at: datetime | None = None) -> None:
        """One send's answer is back: it counts until WINDOW from then (or from `at`)."""
        self._open -= 1
        heapq.heappush(self._counting, (at or self.clock.now()) + WINDOW)
        self._landed.set()

    async def _acquire(
        self, chat: ChatKey | None, patience: timedelta | None, urgent: bool
    ) -> datetime:
        if chat is None:
            return await self._take_global(patience, urgent)
        lock = self._enter(chat)
        try:
            async with lock:
                # The lock keeps this chat's sends in order and one at a time, so the gap
                # is measured from the slot the previous send really got.
                await self._wait_for(self._chat_free.get(chat), patience)
                sent_at = await self._take_global(patience, urgent)
                self._chat_free[chat] = sent_at + self.gap(chat)
                return sent_at
        finally:
            self._leave(chat)

    async def _take_global(self, patience: timedelta | None, urgent: bool) -> datetime:
        asked = self.clock.now()
        while True:
            async with self._admit.turn(urgent=urgent):  # one waiter for the window at a time
                now = self.clock.now()
                if patience is not None and now - asked > patience:
                    raise BacklogError(now - asked)
                while True:
                    await self._wait_for(self._paused_until, patience)
                    await self._wait_for_window(patience)
                    now = self.clock.now()
                    # Ordinary sends take slots at most HORIZON ahead, so an urgent one that
                    # comes later is never queued behind a second of them.
                    ahead = (self._next_slot or now) - HORIZON
                    if urgent or ahead <= now:
                        break
                    await self._wait_for(ahead, patience)
                slot = max(now, self._next_slot or now)
                if patience is not None and slot - now > patience:
                    raise BacklogError(slot - now)
                self._next_slot = slot + self.interval
                self._open += 1
                pauses = self._pauses
            try:
                await self.clock.sleep_until(slot)
            except BaseException:
                self._release_unused()
                raise
            if pauses == self._pauses:
                return slot
            # A 429 came while this send waited: its slot is void; queue again after the pause.
            self._release_unused()

    def _release_unused(self) -> None:
        self._open -= 1
        self._landed.set()

    def _counted(self) -> int:
        """Sends that will still count at the next slot (slots only move later, so a send
        that stops counting by then is forgotten now)."""
        now = self.clock.now()
        at = max(now, self._next_slot or now)
        while self._counting and self._counting[0] <= at:
            heapq.heappop(self._counting)
        return self._open + len(self._counting)

    async def _wait_for_window(self, patience: timedelta | None) -> None:
        while self._counted() >= self.per_window:
            waits: list[asyncio.Future[Any]] = []
            if self._counting:
                at = self._counting[0]
                if patience is not None and at - self.clock.now() > patience:
                    raise BacklogError(at - self.clock.now())
                waits.append(asyncio.ensure_future(self.clock.sleep_until(at)))
            self._landed.clear()
            waits.append(asyncio.ensure_future(self._landed.wait()))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()

    async def _wait_for(self, at: datetime | None, patience: timedelta | None) -> None:
        now = self.clock.now()
        if at is None or at <= now:
            return
        if patience is not None and at - now > patience:
            raise BacklogError(at - now)
        await self.clock.sleep_until(at)

    def _enter(self, chat: ChatKey) -> asyncio.Lock:
        lock, users = self._chat_locks.get(chat) or (asyncio.Lock(), 0)
        self._chat_locks[chat] = (lock, users + 1)
        return lock

    def _leave(self, chat: ChatKey) -> None:
        lock, users = self._chat_locks[chat]
        if users > 1:
            self._chat_locks[chat] = (lock, users - 1)
            return
        del self._chat_locks[chat]
        # Forget chats whose gap has passed, so a million subscribers cost no memory at rest.
        free = self._chat_free.get(chat)
        if free is not None and free <= self.clock.now():
            del self._chat_free[chat]
        if len(self._chat_free) > 4096:
            now = self.clock.now()
            idle = [
                c for c, at in self._chat_free.items() if at <= now and c not in self._chat_locks
            ]
            for c in idle:
                del self._chat_free[c]


def bot_rate(raw: Mapping[str, Any], token_env: str) -> float:
    """Messages a second for the bot whose token is in `token_env`, from a [telegram] table:
    [telegram.bot] max_per_second when that bot is enabled and uses this token, else 30."""
    bot = raw.get("bot")
    if not isinstance(bot, Mapping) or bot.get("enabled") is not True:
        return FREE_PER_SECOND
    bot_env = bot.get("token_env") or raw.get("token_env", "SIARAN_TELEGRAM_TOKEN")
    rate = bot.get("max_per_second", FREE_PER_SECOND)
    ok = isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0
    return float(rate) if bot_env == token_env and ok else FREE_PER_SECOND


def shared_pacer(
    shared: MutableMapping[str, Any], clock: Clock, token: str, per_second: float
) -> Pacer:
    """The one Pacer for everything sent with `token` in this process (see Deps.shared)."""
    key = "telegram-pacer:" + hashlib.sha256(token.encode()).hexdigest()[:16]  # never the token
    pacer = shared.get(key)
    if not isinstance(pacer, Pacer):
        whole = max(1, math.floor(per_second))
        pacer = shared[key] = Pacer(clock, per_second=per_second, per_window=whole)
    return pacer


@dataclass(frozen=True, slots=True)
class Pace:
    """Per-call `rate_limit_args`: how long to wait for a slot and whether to retry a 429."""

    patience: timedelta | None = None
    retry_on_flood: bool = True


Callback = Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]]


class PacedRequests(BaseRateLimiter[Pace]):
    """PTB's rate-limiter hook over a Pacer: PACED calls take a slot; a 429 pauses the Pacer.

    Without `rate_limit_args` (replies in the conversation) a call waits as long as it takes
    and is retried REPLY_RETRIES times after a 429; with Pace(patience, retry_on_flood=False)
    (fan-out deliveries) it raises BacklogError or RetryAfter so the dispatcher reschedules it.
    """

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: Pace | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        pace = rate_limit_args or Pace()
        if endpoint not in PACED:
            return await callback(*args, **kwargs)
        chat = data.get("chat_id")
        key: ChatKey | None = chat if isinstance(chat, int | str) else None
        retries = REPLY_RETRIES if pace.retry_on_flood else 0
        while True:
            try:
                async with self.pacer.slot(key, patience=pace.patience):
                    return await callback(*args, **kwargs)
            except RetryAfter as exc:
                self.pacer.pause(retry_after(exc))
                if retries <= 0:
                    raise
                retries -= 1

"""The bot's incoming updates: our own getUpdates long poll or a webhook endpoint, into per-chat workers.

Why not PTB's Updater: it brings its own tasks, sleeps on the wall clock and logs its own
way; here the poll is one task we hold and cancel, backing off on the injected clock.

- Polling suits one instance. Two pollers of one bot keep stopping each other with 409
  Conflict (https://core.telegram.org/bots/api#getupdates), so with several instances behind
  a load balancer use webhook mode. Offsets are confirmed once updates are queued: a crash
  may drop the last few commands (people ask again), never news (that is in the outbox).
- Webhook mode: setWebhook(public_url + path, secret_token) at start; `routes` must be mounted
  in the web app; a POST without the secret gets 403, one that arrives before the bot is
  ready or while its queue is full gets 503, and Telegram retries it
  (https://core.telegram.org/bots/api#setwebhook).

Either way an update goes to one of WORKERS queues chosen by chat id, so one person's
messages are handled in order and nobody waits behind someone else's slow reply.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from telegram import Update
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application

from broadcasters._telegram_limits import retry_after
from status.clock import Clock

log = logging.getLogger(__name__)

WORKERS = 8
QUEUE_SIZE = 256  # per worker
POLL_TIMEOUT = timedelta(seconds=30)  # getUpdates long poll
ALLOWED_UPDATES = ("message", "callback_query")
CONFLICT_WAIT = timedelta(seconds=30)
TOKEN_WAIT = timedelta(minutes=5)
BACKOFF_MAX = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str  # public_url + path, where Telegram POSTs
    path: str  # the route in our web app
    secret: str  # X-Telegram-Bot-Api-Secret-Token


class Updates:
    """Receives updates for `application` and hands them to process_update, per chat in order.

    `prepare` runs (and is retried with backoff) before anything is received: it initializes
    the Application. `mask` hides the token in logged errors.
    """

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        clock: Clock,
        prepare: Callable[[], Awaitable[None]],
        *,
        webhook: Webhook | None = None,
        mask: Callable[[str], str] = str,
    ) -> None:
        self.application, self.clock, self.webhook = application, clock, webhook
        self._prepare, self._mask = prepare, mask
        self._queues: list[asyncio.Queue[Update]] = [
            asyncio.Queue(QUEUE_SIZE) for _ in range(WORKERS)
        ]
        self._ready = asyncio.Event()

    @property
    def routes(self) -> list[BaseRoute]:
        """The webhook endpoint for the web app (none in polling mode)."""
        if self.webhook is None:
            return []
        return [Route(self.webhook.path, self._receive, methods=["POST"])]

    async def feed(self, update: Update) -> None:
        """Queue an update for its chat's worker (waits while that queue is full)."""
        await self._queues[_shard(update)].put(update)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Poll or register the webhook, and run the workers, for the block's lifetime.

        A task that dies is logged at once and its error raised when the block ends.
        """
        tasks = [asyncio.create_task(self._serve(), name="telegram-bot-updates")]
        tasks += [
            asyncio.create_task(self._work(queue), name=f"telegram-bot-worker-{i}")
            for i, queue in enumerate(self._queues)
        ]
        for task in tasks:
            task.add_done_callback(_report_death)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        dead = [o for o in outcomes if isinstance(o, Exception)]
        if dead:
            raise dead[0]

    async def _serve(self) -> None:
        await self._until(self._start, "start")
        if self.webhook is None:
            await self._poll()

    async def _start(self) -> None:
        await self._prepare()
        bot = self.application.bot
        if self.webhook is not None:
            await bot.set_webhook(
                self.webhook.url,
                secret_token=self.webhook.secret,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
            )
        else:
            await bot.delete_webhook()  # getUpdates answers 409 while a webhook is set
        self._ready.set()

    async def _poll(self) -> None:
        offset: int | None = None
        failures = 0
        clear_webhook = False
        while True:
            try:
                if clear_webhook:  # someone set a webhook since we started
                    await self.application.bot.delete_webhook()
                    clear_webhook = False
                updates = await self.application.bot.get_updates(
                    offset=offset, timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES
                )
            except TelegramError as exc:
                failures += 1
                clear_webhook = isinstance(exc, Conflict) and "webhook" in str(exc).lower()
                await self._sleep(self._wait_after(exc, failures, "getUpdates"))
                continue
            failures = 0
            for update in updates:
                offset = update.update_id + 1
                await self.feed(update)

    async def _until(self, step: Callable[[], Awaitable[None]], what: str) -> None:
        failures = 0
        while True:
            try:
                await step()
                return
            except TelegramError as exc:
                failures += 1
                await self._sleep(self._wait_after(exc, failures, what))

    def _wait_after(self, exc: TelegramError, failures: int, what: str) -> timedelta:
        reason = self._mask(str(exc))
        if isinstance(exc, RetryAfter):
            return retry_after(exc)
        if isinstance(exc, Conflict):
            log.warning(
                "telegram bot: %s: %s; if another instance polls this bot, enable the bot "
                'on one instance only or use mode = "webhook"',
                what,
                reason,
            )
            return CONFLICT_WAIT
        if isinstance(exc, InvalidToken):
            log.error("telegram bot: %s: Telegram rejected the token; set a valid one", what)
            return TOKEN_WAIT
        log.warning("telegram bot: %s failed (%s: %s); retrying", what, type(exc).__name__, reason)
        return min(timedelta(seconds=2 ** min(failures, 10)), BACKOFF_MAX)

    async def _sleep(self, wait: timedelta) -> None:
        await self.clock.sleep_until(self.clock.now() + wait)

    async def _work(self, queue: asyncio.Queue[Update]) -> None:
        while True:
            update = await queue.get()
            # Handler errors are caught inside process_update and go to the error handler.
            await self.application.process_update(update)

    async def _receive(self, request: Request) -> Response:
        """Telegram's webhook POST: check the secret, parse, queue; answer at once."""
        assert self.webhook is not None  # noqa: S101 - the route exists only in webhook mode
        given = request.headers.get("x-telegram-bot-api-secret-token", "")
        if not hmac.compare_digest(given.encode(), self.webhook.secret.encode()):
            return Response(status_code=403)
        if not self._ready.is_set():
            return Response(status_code=503)
        try:
            doc: Any = json.loads(await request.body())
            update = Update.de_json(doc, self.application.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            return Response(status_code=400)
        try:
            self._queues[_shard(update)].put_nowait(update)
        except asyncio.QueueFull:
            return Response(status_code=503)
        return Response(status_code=200)


def _shard(update: Update) -> int:
    chat, user = update.effective_chat, update.effective_user
    key = chat.id if chat is not None else user.id if user is not None else update.update_id
    return key % WORKERS


def _report_death(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("telegram bot: %s died", task.get_name(), exc_info=task.exception())

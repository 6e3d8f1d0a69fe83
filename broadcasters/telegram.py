"""Telegram channels via PTB Bot(base_url=…): a post per incident, replies per update, the first post edited to show the current status.

Config (PRODUCT.md; `[telegram.bot]` belongs to telegram_bot.py and is not read here):

    [telegram]
    token_env = "SIARAN_TELEGRAM_TOKEN"              # the name of the variable, never the token
    api_base_url = "https://api.telegram.org/bot"    # a self-hosted Bot API server or a fake

    [[telegram.channel]]
    chat = "@statusemeterai"    # or a numeric chat id, as a string or an integer
    components = ["*"]          # component ids, "*", "region:<name>"
    language = "id"             # "id" | "en"
    live_board = false          # one pinned status board, edited in place (_telegram_board_keeper)
    timezone = "Asia/Makassar"  # optional; default: the zone of the branches it follows when
                                # they share one, else per post the zone of the event's
                                # branches when they share one, else [site].timezone

One delivery (body: see _telegram_text.render_body) with `previous` = the thread's first post:

1. unpin the first post if the event closes the incident or maintenance;
2. edit the first post to "head", so people scrolling back see the current status;
3. send "post" as a reply to the first post (HTML, no link preview);
4. pin the new post if it starts a thread (silently; skipped with a warning without the right).

With `live_board = true` the channel also keeps one pinned status board (show_board), kept
up to date by _telegram_board_keeper. Posts and board edits share the chat's budget
(PER_MINUTE sends and edits in any minute); posts go first: the board takes a slot only when
no post is waiting or going out, at least SEND_GAP after any call, and while fewer than
BOARD_SHARE calls went out in the last minute, so posts always have the rest.

Every send and edit also takes a place in the bot's global budget (_telegram_limits.Pacer),
the one the subscriber bot's DMs take from when it runs on the same token; channel calls are
admitted before any waiting DM, so a post never queues behind a fan-out, and a 429 pauses
the whole bot until its retry_after.

Steps 1 and 2 are idempotent and come before the send, so when one of them fails the whole
delivery is retried without posting twice. After the send nothing raises: a retry would post
again. Sends and edits to one chat are at least SEND_GAP apart, at most PER_MINUTE a minute.

PTB errors become DeliveryError (https://core.telegram.org/bots/api#making-requests):

    TelegramError
    ├── RetryAfter ....... retry_after = Telegram's wait; this chat is held until then
    ├── ChatMigrated ..... followed once to new_chat_id, which is remembered (ops are warned)
    ├── Forbidden ........ permanent: the bot was removed from the channel or blocked
    ├── InvalidToken ..... permanent: the token was revoked
    └── NetworkError ..... retryable
        ├── BadRequest ... "chat not found" or no right to post → permanent; our text refused
        │                  (a rendering bug) → retried every REFUSED_RETRY, so the dispatcher's
        │                  attempt cap fails that one delivery within minutes, holding the
        │                  channel's later posts only that long, and the channel stays enabled
        └── TimedOut ..... retryable; the message may have gone out (a retry may repeat it)
"""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from telegram import Bot, LinkPreviewOptions, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from broadcasters._base import Broadcaster, DeliveryError, Deps, Message, Receipt
from broadcasters._telegram_board_keeper import BoardKeeper
from broadcasters._telegram_http import AiohttpRequest
from broadcasters._telegram_limits import Pacer, bot_rate, shared_pacer
from broadcasters._telegram_text import (
    AFFECTED,
    Envelope,
    View,
    newly_affected,
    render_body,
    touched_before,
)
from status.config import Config, ConfigError, parse_table
from status.model import Event

TABLE = "telegram"
log = logging.getLogger(__name__)
T = TypeVar("T")

# Incidents and maintenances only: component and queue readings are the live board's news,
# not posts. A branch folded into an incident (incident.affected) is posted only in a channel
# that follows it and none of what the incident touched before: there it starts the thread.
KINDS = frozenset(
    {
        "incident.created",
        "incident.updated",
        "incident.resolved",
        "maintenance.scheduled",
        "maintenance.updated",
    }
)
# Telegram allows about 20 messages a minute in one group or channel:
# https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this
# and advises about one a second in one chat.
PER_MINUTE = 20
SEND_GAP = timedelta(seconds=1)
BOARD_SHARE = 12  # the board's edits stop while this many calls went out in the last minute
WINDOW = timedelta(minutes=1)
# A text Telegram refuses will be refused again; retry soon so the attempt cap ends it quickly.
REFUSED_RETRY = timedelta(seconds=10)
# Lower-cased fragments of Telegram's descriptions (PTB drops "Bad Request: " and capitalises).
NO_CHAT = (
    "chat not found",
    "need administrator rights",
    "have no rights to send",
    "not enough rights to send",
    "chat_write_forbidden",
    "peer_id_invalid",
)
TEXT_REFUSED = ("can't parse entities", "message is too long", "text is empty", "must be non-empty")
# The board message is gone (deleted by a human) or can no longer be edited: post a new one.
BOARD_GONE = ("message to edit not found", "message can't be edited", "message_id_invalid")
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
CHAT = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}|-?[0-9]{1,20}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LANGUAGES = ("id", "en")


@dataclass(frozen=True, slots=True)
class Settings:
    token_env: str = "SIARAN_TELEGRAM_TOKEN"  # noqa: S105 - a variable's name, not a secret
    api_base_url: str = "https://api.telegram.org/bot"


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    chat: str  # "@username" or a numeric chat id (TOML integers are turned into strings)
    components: tuple[str, ...] = ("*",)
    language: str = "id"
    live_board: bool = False
    timezone: str = ""  # "" = derived, see the module docstring


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    settings: Settings
    channels: tuple[ChannelConfig, ...]


def parse_config(raw: object, config: Config) -> TelegramConfig:
    """Validate `[telegram]`; ConfigError names the key path, e.g. telegram.channel[1].chat."""
    if not isinstance(raw, Mapping):
        raise ConfigError(TABLE, "expected a table ([telegram])")
    allowed = ("token_env", "api_base_url", "channel", "bot")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{TABLE}.{unknown[0]}", f"unknown key; allowed keys are {', '.join(allowed)}"
        )
    settings = parse_table(
        Settings, {k: v for k, v in raw.items() if k not in ("channel", "bot")}, path=TABLE
    )
    if not ENV_NAME.fullmatch(settings.token_env):
        # Never echo the value: someone may have pasted the token itself here.
        raise ConfigError(
            f"{TABLE}.token_env",
            'expected the name of an environment variable like "SIARAN_TELEGRAM_TOKEN"',
        )
    url = urlsplit(settings.api_base_url)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ConfigError(
            f"{TABLE}.api_base_url",
            f'expected a URL like "https://api.telegram.org/bot", got "{settings.api_base_url}"',
        )
    items = raw.get("channel", [])
    if not isinstance(items, list):
        raise ConfigError(f"{TABLE}.channel", "expected an array of tables ([[telegram.channel]])")
    channels = [
        _parse_channel(item, f"{TABLE}.channel[{i}]", config) for i, item in enumerate(items)
    ]
    seen: dict[str, int] = {}
    for i, channel in enumerate(channels):
        if channel.chat in seen:
            raise ConfigError(
                f"{TABLE}.channel[{i}].chat",
                f'"{channel.chat}" is already used by telegram.channel[{seen[channel.chat]}]',
            )
        seen[channel.chat] = i
    return TelegramConfig(settings, tuple(channels))


def _parse_channel(raw: object, path: str, config: Config) -> ChannelConfig:
    if (
        isinstance(raw, Mapping)
        and isinstance(raw.get("chat"), int)
        and not isinstance(raw["chat"], bool)
    ):
        raw = {**raw, "chat": str(raw["chat"])}  # chat = -1001234567890 is as good as a string
    channel = parse_table(ChannelConfig, raw, path=path)
    if not CHAT.fullmatch(channel.chat):
        raise ConfigError(
            f"{path}.chat",
            f'expected "@channelname" or a numeric chat id like -1001234567890, got "{channel.chat}"',
        )
    if not channel.components:
        raise ConfigError(f"{path}.components", 'expected at least one entry, e.g. ["*"]')
    known, regions = config.component_ids(), {b.region for b in config.branches}
    for j, item in enumerate(channel.components):
        region = item.removeprefix("region:")
        if item == "*" or item in known or (item.startswith("region:") and region in regions):
            continue
        what = (
            f'unknown region "{region}"'
            if item.startswith("region:")
            else f'unknown component "{item}"'
        )
        raise ConfigError(
            f"{path}.components[{j}]",
            f'{what}; use "*", a [[component]] or [[branch]] id, or "region:<branch region>"',
        )
    if channel.language not in LANGUAGES:
        raise ConfigError(f"{path}.language", f'expected "id" or "en", got "{channel.language}"')
    if channel.timezone:
        try:
            ZoneInfo(channel.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"{path}.timezone",
                f'unknown time zone "{channel.timezone}"; e.g. "Asia/Jakarta" (WIB), '
                '"Asia/Makassar" (WITA), "Asia/Jayapura" (WIT)',
            ) from None
    return channel


def view_for(channel: ChannelConfig, config: Config) -> View:
    """The channel's language and zone: its own, else the one zone its branches share, else per event."""
    branch_zones = {b.id: b.zone for b in config.branches}
    zone: ZoneInfo | None = ZoneInfo(channel.timezone) if channel.timezone else None
    if zone is None and "*" not in channel.components:
        zones: set[ZoneInfo | None] = set()
        for item in channel.components:
            if item.startswith("region:"):
                zones |= {b.zone for b in config.branches if b.region == item[7:]}
            else:
                zones.add(branch_zones.get(item))  # an upstream component has no zone of its own
        if len(zones) == 1:
            zone = zones.pop()
    return View(channel.language, ZoneInfo(config.site.timezone), zone, branch_zones)


def retry_after(exc: RetryAfter) -> timedelta:
    """Telegram's wait; PTB 22 gives an int or a timedelta depending on PTB_TIMEDELTA."""
    with warnings.catch_warnings():
        # Reading the int form warns (PTB 22.2+); both forms are handled right here.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


class Channel:
    """One [[telegram.channel]]: posts, replies and edits in one chat, paced and classified."""

    def __init__(
        self,
        config: ChannelConfig,
        bot: Bot,
        deps: Deps,
        view: View,
        *,
        token: str = "",
        pacer: Pacer | None = None,
    ) -> None:
        self.config, self.bot, self.deps, self.view = config, bot, deps, view
        # The bot's global budget, shared with every chat this token sends to.
        self.pacer = pacer or Pacer(deps.clock)
        # Where posts go now; a group that became a supergroup moves this (ChatMigrated).
        self.chat_id: int | str = config.chat if config.chat.startswith("@") else int(config.chat)
        self._token = token
        self._last_send: datetime | None = None  # the last send or edit, the board's too
        self._last_post: datetime | None = None  # the last send or edit for a post
        # When each send or edit of the last minute came back. Telegram counts a call when it
        # arrives, somewhere between our start and its answer, so a call counts from its start
        # (in _flying) until WINDOW after its answer: a wait in the bot's queue or a slow
        # network can never squeeze PER_MINUTE + 1 arrivals into one minute.
        self._recent: deque[datetime] = deque()
        self._flying = 0
        self._hold_until: datetime | None = None
        self._delivering = 0  # posts waiting for a slot or going out: the board gives way

    @property
    def target(self) -> str:
        return f"telegram:{self.config.chat}"

    @property
    def live_board(self) -> bool:
        return self.config.live_board

    def wants(self, event: Event) -> bool:
        follows, regions = self.config.components, self.deps.regions
        if event.kind == AFFECTED:
            new = newly_affected(event)
            before = replace(event, component_ids=touched_before(event))
            return bool(new) and (
                replace(event, component_ids=new).touches(follows, regions)
                and not before.touches(follows, regions)
            )
        return event.kind in KINDS and event.touches(follows, regions)

    def render(self, event: Event) -> Message:
        return Message(self.target, render_body(event, self.view))

    async def deliver(self, message: Message, previous: Receipt | None) -> Receipt | None:
        """Carry out one envelope; returns the new message's id. Raises DeliveryError."""
        self._delivering += 1
        try:
            return await self._deliver(message, previous)
        finally:
            self._delivering -= 1

    async def _deliver(self, message: Message, previous: Receipt | None) -> Receipt | None:
        try:
            envelope = Envelope.loads(message.body)
        except ValueError as exc:
            raise DeliveryError(f"telegram: {exc}", retry_after=REFUSED_RETRY) from None
        now = self.deps.clock.now()
        if self._hold_until is not None and now < self._hold_until:
            wait = self._hold_until - now
            raise DeliveryError(
                f"telegram: {self.config.chat} is in flood control", retry_after=wait
            )
        first = int(previous) if previous is not None and previous.lstrip("-").isdigit() else None
        if first is not None and envelope.unpin:
            await self._unpin(first)
        if first is not None and envelope.head is not None:
            await self._edit(first, envelope.head)
        sent = await self._send(envelope.post, first)
        if envelope.pin:
            await self._pin(sent)
        return str(sent)

    def board_may_edit(self) -> bool:
        """Whether the board may take a slot now: no post is waiting or going out, the gap since
        the last call has passed, and Telegram's flood control does not hold this chat."""
        now = self.deps.clock.now()
        if self._delivering or (self._hold_until is not None and now < self._hold_until):
            return False
        if self._last_send is not None and now < self._last_send + SEND_GAP:
            return False
        return self._free_at(now, BOARD_SHARE) <= now

    async def show_board(self, message_id: int | None, text: str) -> tuple[int, bool]:
        """Edit the board to `text`, or post and pin a new one when there is none or it is gone.

        Returns (its message id, whether it is a new message). Call when board_may_edit().
        Raises DeliveryError as deliver() does.
        """
        if message_id is not None:
            self._count(self.deps.clock.now())
            try:
                await self._on_chat(
                    lambda chat: self.bot.edit_message_text(
                        text,
                        chat_id=chat,
                        message_id=message_id,
                        parse_mode=ParseMode.HTML,
                        link_preview_options=NO_PREVIEW,
                    ),
                    paced=True,
                )
                return message_id, False
            except BadRequest as exc:
                reason = str(exc).lower()
                if "message is not modified" in reason:
                    return message_id, False  # it already says so (e.g. after a restart)
                if not any(p in reason for p in BOARD_GONE):
                    raise self._error(exc) from None
                log.info(
                    "telegram: the status board in %s is gone (%s); posting a new one",
                    self.config.chat,
                    exc,
                )
            except TelegramError as exc:
                raise self._error(exc) from None
        sent = await self._send(text, None, silent=True)
        await self._pin(sent)
        return sent, True

    async def _send(self, text: str, reply_to: int | None, *, silent: bool = False) -> int:
        reply = (
            ReplyParameters(reply_to, allow_sending_without_reply=True)
            if reply_to is not None
            else None
        )
        await self._pace()
        try:
            sent = await self._on_chat(
                lambda chat: self.bot.send_message(
                    chat,
                    text,
                    parse_mode=ParseMode.HTML,
                    link_preview_options=NO_PREVIEW,
                    reply_parameters=reply,
                    disable_notification=silent,
                ),
                paced=True,
            )
        except TelegramError as exc:
            raise self._error(exc) from None
        return sent.message_id

    async def _edit(self, message_id: int, text: str) -> None:
        await self._pace()
        try:
            await self._on_chat(
                lambda chat: self.bot.edit_message_text(
                    text,
                    chat_id=chat,
                    message_id=message_id,
                    parse_mode=ParseMode.HTML,
                    link_preview_options=NO_PREVIEW,
                ),
                paced=True,
            )
        except BadRequest as exc:
            if "message is not modified" in str(exc).lower():
                return  # already reads so: an earlier attempt of this delivery edited it
            if _no_chat(exc):
                raise self._error(exc) from None
            # The first post was deleted or is too old to edit; the reply still carries the news.
            log.warning(
                "telegram: could not update message %d in %s: %s", message_id, self.config.chat, exc
            )
        except TelegramError as exc:
            raise self._error(exc) from None

    async def _unpin(self, message_id: int) -> None:
        try:
            await self._on_chat(lambda chat: self.bot.unpin_chat_message(chat, message_id))
        except BadRequest as exc:
            if _no_chat(exc):
                raise self._error(exc) from None
            # Not pinned (never was, or someone unpinned it), or no right to pin.
            log.info(
                "telegram: did not unpin message %d in %s: %s", message_id, self.config.chat, exc
            )
        except TelegramError as exc:
            raise self._error(exc) from None

    async def _pin(self, message_id: int) -> None:
        try:
            await self._on_chat(
                lambda chat: self.bot.pin_chat_message(chat, message_id, disable_notification=True)
            )
        except TelegramError as exc:  # the post is out: a retry would post it twice
            reason = self._error(exc)
            log.warning(
                "telegram: could not pin message %d in %s (%s); give the bot the right to pin messages",
                message_id,
                self.config.chat,
                reason,
            )

    async def _pace(self) -> None:
        """Keep a post's sends and edits SEND_GAP apart and within PER_MINUTE (Telegram's limits).

        A post does not wait out the gap after a board edit: news goes out at once.
        """
        while True:  # a loop: the board may have taken a slot while this call slept
            now = self.deps.clock.now()
            at = self._free_at(now, PER_MINUTE)
            if self._last_post is not None:
                at = max(at, self._last_post + SEND_GAP)
            if at <= now:
                break
            await self.deps.clock.sleep_until(at)
        self._last_post = now
        self._count(now)

    def _free_at(self, now: datetime, limit: int) -> datetime:
        """When fewer than `limit` calls will count: those under way and those answered in
        the minute before."""
        while self._recent and self._recent[0] <= now - WINDOW:
            self._recent.popleft()
        over = len(self._recent) + self._flying - limit
        if over < 0:
            return now
        if over < len(self._recent):
            return self._recent[over] + WINDOW
        return now + SEND_GAP  # only calls under way: look again once one may have come back

    def _count(self, now: datetime) -> None:
        """A send or edit starts; _landed() says when it came back."""
        self._last_send = now
        self._flying += 1

    def _landed(self) -> None:
        self._flying -= 1
        self._recent.append(self.deps.clock.now())

    async def _on_chat(
        self, call: Callable[[int | str], Awaitable[T]], *, paced: bool = False
    ) -> T:
        """One Bot API call on this chat, following a group's move to a supergroup once.

        A `paced` call (one Telegram counts: a send or an edit) takes an urgent slot of the
        bot's budget; a 429 on it pauses every send of the bot until Telegram's wait is over.
        """
        if paced:  # its start was counted (_count): it is counted as landed whatever happens
            try:
                async with self.pacer.slot(None, urgent=True):
                    return await self._on_chat(call)
            except RetryAfter as exc:
                self.pacer.pause(retry_after(exc))
                raise
            finally:
                self._landed()
        try:
            return await call(self.chat_id)
        except ChatMigrated as exc:
            log.warning(
                "telegram: %s became the supergroup %d; posting there from now on. "
                'Set chat = "%d" in its [[telegram.channel]] (its delivery target id changes too)',
                self.config.chat,
                exc.new_chat_id,
                exc.new_chat_id,
            )
            self.chat_id = exc.new_chat_id
            return await call(self.chat_id)

    def _error(self, exc: TelegramError) -> DeliveryError:
        """classify(), remembering a flood-control wait so this chat is left alone until then."""
        error = classify(exc, self.config.chat, self._token)
        if isinstance(exc, RetryAfter) and error.retry_after is not None:
            self._hold_until = self.deps.clock.now() + error.retry_after
        return error


def classify(exc: TelegramError, chat: str, token: str = "") -> DeliveryError:
    """The DeliveryError for a PTB error (see the module docstring); `token` is masked in reasons."""
    text = str(exc).replace(token, "<token>") if token else str(exc)
    if isinstance(exc, RetryAfter):
        wait = retry_after(exc)
        return DeliveryError(
            f"telegram: {chat}: flood control, retry after {wait}", retry_after=wait
        )
    if isinstance(exc, Forbidden):
        return DeliveryError(
            f"telegram: {chat}: {text}; make the bot an admin there, then re-enable the target",
            permanent=True,
        )
    if isinstance(exc, InvalidToken):
        return DeliveryError(
            "telegram: the bot token was rejected; fix the token and re-enable the target",
            permanent=True,
        )
    # BadRequest and TimedOut are NetworkErrors: they are told apart before the catch-all.
    if isinstance(exc, BadRequest) and _no_chat(exc):
        return DeliveryError(
            f"telegram: {chat}: {text}; check its chat in [[telegram.channel]]", permanent=True
        )
    if isinstance(exc, BadRequest) and any(p in text.lower() for p in TEXT_REFUSED):
        return DeliveryError(
            f"telegram: {chat} refused our text ({text}); a rendering bug: this delivery "
            "stops after the dispatcher's attempt cap and the channel stays enabled",
            retry_after=REFUSED_RETRY,
        )
    if isinstance(exc, TimedOut):
        return DeliveryError(
            f"telegram: {chat}: timed out ({text}); the message may have been delivered, "
            "so the retry may repeat it"
        )
    return DeliveryError(f"telegram: {chat}: {type(exc).__name__}: {text}")


def _no_chat(exc: BadRequest) -> bool:
    return any(p in str(exc).lower() for p in NO_CHAT)


@asynccontextmanager
async def open_targets(
    doc: Mapping[str, Any], deps: Deps, *, keep_boards: bool = True
) -> AsyncIterator[list[Channel]]:
    """One target per [[telegram.channel]], sharing one PTB Bot for the block's lifetime.

    Channels with live_board = true get a BoardKeeper running alongside (keep_boards=False
    leaves that to the caller, e.g. a test driving BoardKeeper.step()).
    """
    if TABLE not in doc:
        yield []
        return
    config = parse_config(doc[TABLE], deps.config)
    if not config.channels:
        yield []
        return
    env = config.settings.token_env
    try:
        token = deps.secret(env).decode()
    except KeyError:
        raise ConfigError(
            f"{TABLE}.token_env",
            f"environment variable {env} is not set; put the channel bot's token from @BotFather there",
        ) from None
    # A Bot API URL contains the token: httpx logs every request URL at INFO, and PTB logs
    # its base URL at DEBUG when a Bot is made. Neither may reach a log, even with -v.
    for name, level in (("httpx", logging.WARNING), ("telegram", logging.INFO)):
        if logging.getLogger(name).getEffectiveLevel() < level:
            logging.getLogger(name).setLevel(level)
    # Explicit timeouts; the pool is shared by every channel's deliveries, which run at once.
    request = AiohttpRequest(
        connection_pool_size=8,
        connect_timeout=5.0,
        read_timeout=10.0,
        write_timeout=10.0,
        pool_timeout=10.0,
    )
    bot = Bot(token, base_url=config.settings.api_base_url, request=request)
    # What `async with bot` does, except that an unreachable Telegram does not stop the
    # service from starting: the posts wait in the outbox and go out once it answers.
    try:
        await bot.initialize()  # getMe: checks the token
    except InvalidToken:
        await bot.shutdown()
        # PTB's own message quotes the token; this one never does.
        raise ConfigError(
            f"{TABLE}.token_env",
            f"Telegram rejected the token in {env} (or {config.settings.api_base_url} "
            "is not a Bot API server)",
        ) from None
    except NetworkError as exc:  # TimedOut and BadRequest too; PTB's HTTP clients are open
        reason = str(exc).replace(token, "<token>")
        log.warning(
            "telegram: Bot API unreachable at start (%s); posts wait until it answers", reason
        )
    except BaseException:
        await bot.shutdown()
        raise
    # One budget with the subscriber bot when it sends with this token (telegram_bot.py).
    pacer = shared_pacer(deps.shared, deps.clock, token, bot_rate(doc[TABLE], env))
    channels = [
        Channel(c, bot, deps, view_for(c, deps.config), token=token, pacer=pacer)
        for c in config.channels
    ]
    keepers: list[BoardKeeper] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for channel in channels:
            if not (keep_boards and channel.live_board):
                continue
            if deps.engine is None:
                log.warning("telegram: %s: live_board needs the database; no board", channel.target)
                continue
            keeper = BoardKeeper(channel, deps.engine)
            keepers.append(keeper)
            tasks.append(asyncio.create_task(keeper.run(), name=f"board {channel.target}"))
        yield channels
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for keeper in keepers:
            try:
                await keeper.release()
            except Exception:  # the lease runs out by itself; shutting down goes on
                log.warning("telegram: could not release the board lease of %s", keeper.lease_id)
        await bot.shutdown()


_: type[Broadcaster] = Channel

"""Subscriber bot: /start, /langganan <branch>, fan-out to subscribers; PTB Application(updater=None).

Config (`[telegram]` is shared with telegram.py; this module reads only its `bot` sub-table
and the two connection keys):

    [telegram]
    token_env = "SIARAN_TELEGRAM_TOKEN"              # the name of the variable, never the token
    api_base_url = "https://api.telegram.org/bot"    # a self-hosted Bot API server or a fake

    [telegram.bot]
    enabled = true                # default false
    mode = "polling"              # or "webhook"
    language = "id"               # for people who have not chosen; default [site].language
    max_per_second = 30           # the bot's global limit; up to 1000 with paid broadcasts.
                                  # [[telegram.channel]] posts on the same token take from
                                  # the same budget, before any waiting DM
    username = "siaran_bot"       # optional: the bot's @username without the @; the status
                                  # page then links to https://t.me/siaran_bot
    token_env = ""                # a separate bot for subscribers; default [telegram].token_env
    webhook_path_env = "SIARAN_TELEGRAM_WEBHOOK_PATH"      # webhook mode: the variable holding
                                                           # the path, e.g. "/telegram/9f2c…"
    secret_token_env = "SIARAN_TELEGRAM_WEBHOOK_SECRET"    # webhook mode: the variable holding
                                                           # X-Telegram-Bot-Api-Secret-Token

Running (open_fanouts): one PTB Application without an Updater; _telegram_updates receives
(our own getUpdates long poll, or a webhook endpoint: mount `SubscriberBot.routes`) and
_telegram_chat answers. Polling suits one instance; use webhook mode for several.

Fan-out (the FanOut protocol): each subscriber is the target "telegram-dm:<chat id>". Every
Bot API call of this bot (replies too) is paced by _telegram_limits, in one budget with the
channels posting with the same token, and goes out over aiohttp (_telegram_http), with
enough connections for max_per_second. A branch folded into an open incident
(incident.affected) is a first DM for those following it and nothing the incident touched
before. PTB errors become DeliveryError (https://core.telegram.org/bots/api#making-requests):

    TelegramError
    ├── RetryAfter ....... the whole bot pauses; retry_after = Telegram's wait
    ├── Forbidden ........ permanent: blocked the bot, deactivated; gone() unsubscribes them
    ├── InvalidToken ..... retryable, slowly: never permanent, that would unsubscribe everyone
    └── NetworkError ..... retryable
        ├── BadRequest ... "chat not found" → permanent (gone); our text refused → retried
        │                  every REFUSED_RETRY until the dispatcher's attempt cap (a bug of ours
        │                  must not unsubscribe anyone)
        └── TimedOut ..... retryable; the DM may have arrived (a retry may repeat it)
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.routing import BaseRoute
from telegram import BotCommand, BotCommandScopeDefault, LinkPreviewOptions, ReplyParameters, Update
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ExtBot

from broadcasters import _subscribers as store
from broadcasters._base import Broadcaster, DeliveryError, Deps, FanOut, Message, Receipt
from broadcasters._telegram_chat import Conversation, Documents
from broadcasters._telegram_http import AiohttpRequest
from broadcasters._telegram_limits import (
    BacklogError,
    Pace,
    PacedRequests,
    retry_after,
    shared_pacer,
)
from broadcasters._telegram_text import (
    AFFECTED,
    View,
    newly_affected,
    posts,
    render_post,
    touched_before,
    zone_for,
)
from broadcasters._telegram_updates import Updates, Webhook
from status.config import Config, ConfigError, parse_table
from status.core import Core
from status.i18n import LANGUAGES, t
from status.model import Event

TABLE = "telegram"
PREFIX = store.PREFIX
log = logging.getLogger(__name__)

# incident.affected: see recipients().
KINDS = frozenset(
    {
        "incident.affected",
        "incident.created",
        "incident.updated",
        "incident.resolved",
        "maintenance.scheduled",
        "maintenance.updated",
    }
)
# A fan-out send waits this long for a slot before handing the delivery back to the
# dispatcher with retry_after (which renews its lease on the target meanwhile). The
# dispatcher keeps at most 256 sends in flight: under 10 s of queue at 30 a second.
DELIVERY_PATIENCE = timedelta(seconds=30)
REFUSED_RETRY = timedelta(seconds=10)
TOKEN_RETRY = timedelta(minutes=5)
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # https://core.telegram.org/bots/api#setwebhook
WEBHOOK_PATH = re.compile(r"/[A-Za-z0-9._~/-]{1,200}")
USERNAME = re.compile(
    r"@?[A-Za-z][A-Za-z0-9_]{3,31}"
)  # https://core.telegram.org/bots/features#botfather
# Lower-cased fragments of Telegram's descriptions (PTB drops "Bad Request: " and capitalises).
NO_CHAT = ("chat not found", "user not found", "peer_id_invalid")
# Command names in the menu Telegram shows (a-z only); the Indonesian name keys the description.
COMMANDS = (
    ("langganan", "subscribe"),
    ("berhenti", "unsubscribe"),
    ("status", "status"),
    ("antrean", "queue"),
    ("bahasa", "language"),
)


@dataclass(frozen=True, slots=True)
class BotConfig:
    enabled: bool = False
    mode: str = "polling"
    language: str = ""
    max_per_second: float = 30.0
    token_env: str = ""
    username: str = ""
    webhook_path_env: str = "SIARAN_TELEGRAM_WEBHOOK_PATH"
    secret_token_env: str = "SIARAN_TELEGRAM_WEBHOOK_SECRET"  # noqa: S105 - a variable's name


@dataclass(frozen=True, slots=True)
class Settings:
    """[telegram.bot] with its defaults filled in from [telegram] and [site]."""

    bot: BotConfig
    token_env: str
    api_base_url: str
    language: str


def parse_config(raw: object, config: Config) -> Settings | None:
    """Validate [telegram.bot]; None when it is absent or disabled. Raises ConfigError."""
    if not isinstance(raw, Mapping):
        raise ConfigError(TABLE, "expected a table ([telegram])")
    if "bot" not in raw:
        return None
    path = f"{TABLE}.bot"
    bot = parse_table(BotConfig, raw["bot"], path=path)
    if bot.mode not in ("polling", "webhook"):
        raise ConfigError(f"{path}.mode", f'expected "polling" or "webhook", got "{bot.mode}"')
    if bot.language not in ("", *LANGUAGES):
        raise ConfigError(f"{path}.language", f'expected "id" or "en", got "{bot.language}"')
    if bot.username and not USERNAME.fullmatch(bot.username):
        raise ConfigError(
            f"{path}.username",
            f'expected the bot\'s @username from @BotFather, like "siaran_bot", got "{bot.username}"',
        )
    if not 0 < bot.max_per_second <= 1000:
        raise ConfigError(
            f"{path}.max_per_second",
            f"expected a number above 0 and at most 1000 (30 is Telegram's free limit), "
            f"got {bot.max_per_second:g}",
        )
    token_env = bot.token_env or raw.get("token_env", "SIARAN_TELEGRAM_TOKEN")
    api_base_url = raw.get("api_base_url", "https://api.telegram.org/bot")
    names = [(f"{path}.token_env" if bot.token_env else f"{TABLE}.token_env", token_env)]
    if bot.mode == "webhook":
        names += [(f"{path}.webhook_path_env", bot.webhook_path_env)]
        names += [(f"{path}.secret_token_env", bot.secret_token_env)]
    for key, name in names:
        # Never echo the value: someone may have pasted the secret itself here.
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            raise ConfigError(
                key, 'expected the name of an environment variable like "SIARAN_TELEGRAM_TOKEN"'
            )
    url = urlsplit(api_base_url) if isinstance(api_base_url, str) else None
    if url is None or url.scheme not in ("http", "https") or not url.netloc:
        raise ConfigError(
            f"{TABLE}.api_base_url", 'expected a URL like "https://api.telegram.org/bot"'
        )
    if not bot.enabled:
        return None
    language = bot.language or config.site.language
    return Settings(bot, str(token_env), str(api_base_url), language)


def render_dm(event: Event, language: str, view: View) -> str:
    """A subscriber's DM: status line, name, the latest update, local time and link (≤ 4096)."""
    post, _ = posts(event)
    new = newly_affected(event)
    if new:  # the branch that brought the reader in is the one component worth naming
        return render_post(post, language, zone_for(view, new))
    # Short: the name and the notice say what happened; the link has the full list.
    return render_post(replace(post, components=()), language, zone_for(view, event.component_ids))


def classify(exc: TelegramError, chat_id: int, token: str = "") -> DeliveryError:
    """The DeliveryError for a PTB error (see the module docstring); `token` is masked."""
    text = str(exc).replace(token, "<token>") if token else str(exc)
    where = f"telegram-dm: {chat_id}"
    if isinstance(exc, RetryAfter):
        wait = retry_after(exc)
        return DeliveryError(f"{where}: flood control, retry after {wait}", retry_after=wait)
    if isinstance(exc, Forbidden):
        return DeliveryError(f"{where}: {text}", permanent=True)
    if isinstance(exc, InvalidToken):
        return DeliveryError(
            "telegram-dm: the bot token was rejected; fix it, the DMs wait", retry_after=TOKEN_RETRY
        )
    # BadRequest and TimedOut are NetworkErrors: they are told apart before the catch-all.
    if isinstance(exc, BadRequest) and any(p in text.lower() for p in NO_CHAT):
        return DeliveryError(f"{where}: {text}", permanent=True)
    if isinstance(exc, BadRequest):
        return DeliveryError(
            f"{where}: Telegram refused our text ({text}); a rendering bug",
            retry_after=REFUSED_RETRY,
        )
    if isinstance(exc, TimedOut):
        return DeliveryError(f"{where}: timed out ({text}); the DM may have arrived")
    return DeliveryError(f"{where}: {type(exc).__name__}: {text}")


Bot = ExtBot[Pace]


class SubscriberBot:
    """The fan-out to subscribers and the conversation with them, on one PTB Application."""

    def __init__(
        self,
        settings: Settings,
        token: str,
        deps: Deps,
        engine: AsyncEngine,
        *,
        webhook: Webhook | None = None,
        documents: Documents | None = None,
    ) -> None:
        self.settings, self.deps, self.engine = settings, deps, engine
        self.language = settings.language
        self._token = token
        # Shared with the channels posting with this token (telegram.py): one budget.
        self.pacer = shared_pacer(deps.shared, deps.clock, token, settings.bot.max_per_second)
        self.application = (
            Application.builder()
            .token(token)
            .base_url(settings.api_base_url)
            .request(_request(connections(settings.bot.max_per_second)))
            .get_updates_request(_request(1))
            .rate_limiter(PacedRequests(self.pacer))
            .updater(None)
            .build()
        )
        self.bot: Bot = self.application.bot
        self.conversation = Conversation(engine, deps.config, deps.clock, self.language, documents)
        self.conversation.install(self.application)
        self.application.add_error_handler(self._on_error)
        config = deps.config
        branch_zones = {b.id: b.zone for b in config.branches}
        self._views = {
            lang: View(lang, ZoneInfo(config.site.timezone), None, branch_zones)
            for lang in LANGUAGES
        }
        self._initialized = False
        self.updates = Updates(
            self.application, deps.clock, self._initialize, webhook=webhook, mask=self._mask
        )

    # ── FanOut ──────────────────────────────────────────────────────────────────────────

    @property
    def prefix(self) -> str:
        return PREFIX

    def wants(self, event: Event) -> bool:
        if event.kind == AFFECTED:
            return bool(newly_affected(event))
        return event.kind in KINDS

    async def recipients(self, conn: AsyncConnection, event: Event) -> Sequence[tuple[str, str]]:
        """Followers of what `event` touches. A branch folded into an incident (incident.affected)
        reaches those following that branch or its region and nothing the incident touched
        before: the others heard of the incident already."""
        config = self.deps.config
        if event.kind == AFFECTED:
            before = touched_before(event)
            if not before:
                return []  # an incident naming nothing reached every follower already
            found = await store.recipients(
                conn,
                store.keys_for(newly_affected(event), config),
                unless=store.keys_for(before, config),
            )
        else:
            found = await store.recipients(conn, store.follow_keys(event, config))
        return [
            (store.target_of(chat), lang if lang in LANGUAGES else self.language)
            for chat, lang in found
        ]

    def render_for(self, event: Event, language: str) -> str:
        view = self._views.get(language) or self._views[self.language]
        return render_dm(event, view.language, view)

    async def deliver(self, message: Message, previous: Receipt | None) -> Receipt | None:
        """Send one DM, as a reply to the incident's first DM when there is one."""
        chat_id = store.chat_of(message.target)
        if chat_id is None:
            raise DeliveryError(f"not a subscriber target: {message.target}", permanent=True)
        first = int(previous) if previous is not None and previous.isdigit() else None
        reply = ReplyParameters(first, allow_sending_without_reply=True) if first else None
        try:
            sent = await self.bot.send_message(
                chat_id,
                message.body,
                parse_mode=ParseMode.HTML,
                link_preview_options=NO_PREVIEW,
                reply_parameters=reply,
                rate_limit_args=Pace(patience=DELIVERY_PATIENCE, retry_on_flood=False),
            )
        except BacklogError as exc:
            raise DeliveryError(
                f"telegram-dm: {chat_id}: the bot's send queue is full or paused",
                retry_after=exc.wait,
            ) from None
        except TelegramError as exc:
            raise classify(exc, chat_id, self._token) from None
        return str(sent.message_id)

    async def gone(self, target: str, reason: str) -> None:
        """Telegram says the chat is gone for good: unsubscribe them (the row keeps blocked_at)."""
        chat_id = store.chat_of(target)
        if chat_id is None:
            return
        await store.forget(self.engine, chat_id, reason, self.deps.clock.now())
        log.info("telegram-dm: %d unsubscribed: %s", chat_id, reason)

    # ── conversation plumbing ───────────────────────────────────────────────────────────

    @property
    def routes(self) -> list[BaseRoute]:
        """The webhook endpoint for the web app (none in polling mode)."""
        return self.updates.routes

    def attach(self, documents: Documents, core: Core | None = None) -> None:
        """Where /status and /antrean read from (the snapshot), once the web app has one; and
        the instance's core, so staff commands written here wake its dispatcher at once."""
        self.conversation.documents = documents
        if core is not None:
            self.conversation.staff.use_core(core)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Initialize, receive and answer updates for the block's lifetime; shut down after."""
        try:
            await self._initialize()
        except NetworkError as exc:  # TimedOut and BadRequest too
            log.warning(
                "telegram bot: Bot API unreachable at start (%s); retrying in the background",
                self._mask(str(exc)),
            )
        except BaseException:
            await self._shutdown()
            raise
        try:
            async with self.updates.running():
                yield
        finally:
            await self._shutdown()

    async def _initialize(self) -> None:
        if self._initialized:
            return
        try:
            await self.application.initialize()  # getMe: checks the token
        except InvalidToken:
            # PTB's own message quotes the token; this one never does.
            raise ConfigError(
                f"{TABLE}.token_env",
                f"Telegram rejected the token in {self.settings.token_env} "
                f"(or {self.settings.api_base_url} is not a Bot API server)",
            ) from None
        self._initialized = True
        await self._set_commands()

    async def _shutdown(self) -> None:
        await self.application.shutdown()
        await self.bot.shutdown()  # also when initialize() never got through

    async def _set_commands(self) -> None:
        """The command menu in each language (a nicety: failure is only logged)."""
        try:
            for lang in LANGUAGES:
                commands = [
                    BotCommand(
                        id_name if lang == "id" else en_name, t(f"bot.commands.{id_name}", lang)
                    )
                    for id_name, en_name in COMMANDS
                ]
                code = None if lang == self.language else lang
                await self.bot.set_my_commands(
                    commands, scope=BotCommandScopeDefault(), language_code=code
                )
        except TelegramError as exc:
            log.warning("telegram bot: could not set the command menu: %s", self._mask(str(exc)))

    async def _on_error(self, update: object, context: Any) -> None:
        error = context.error
        chat = update.effective_chat if isinstance(update, Update) else None
        where = chat.id if chat is not None else "?"
        if isinstance(error, TelegramError):
            log.warning("telegram bot: answering chat %s failed: %s", where, self._mask(str(error)))
        else:
            log.error("telegram bot: handling an update from chat %s failed", where, exc_info=error)

    def _mask(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text


def connections(per_second: float) -> int:
    """Connections for the bot's calls: a call holds one for its round trip (tens to a few
    hundred milliseconds), so 1000 sends a second need a few hundred; 16 at the free rate."""
    return max(16, min(256, math.ceil(per_second / 4)))


def _request(pool: int) -> AiohttpRequest:
    # Explicit timeouts; getUpdates adds its long-poll timeout to read_timeout itself.
    return AiohttpRequest(
        connection_pool_size=pool,
        connect_timeout=5.0,
        read_timeout=10.0,
        write_timeout=10.0,
        pool_timeout=10.0,
    )


def _secret(deps: Deps, name: str, key: str, what: str) -> str:
    try:
        return deps.secret(name).decode()
    except KeyError:
        raise ConfigError(
            key, f"environment variable {name} is not set; put {what} there"
        ) from None


def _quiet_http_logs() -> None:
    # A Bot API URL contains the token: httpx logs every request URL at INFO, and PTB logs
    # its base URL at DEBUG when a Bot is made. Neither may reach a log, even with -v.
    for name, level in (("httpx", logging.WARNING), ("telegram", logging.INFO)):
        if logging.getLogger(name).getEffectiveLevel() < level:
            logging.getLogger(name).setLevel(level)


@asynccontextmanager
async def open_targets(doc: Mapping[str, Any], deps: Deps) -> AsyncIterator[list[Broadcaster]]:
    """No broadcast targets of its own: validates [telegram.bot]; the bot is open_fanouts()."""
    if TABLE in doc:
        parse_config(doc[TABLE], deps.config)
    yield []


@asynccontextmanager
async def open_fanouts(
    doc: Mapping[str, Any], deps: Deps, *, documents: Documents | None = None
) -> AsyncIterator[list[SubscriberBot]]:
    """The subscriber bot, answering and fanning out for the block's lifetime; [] when disabled.

    Needs deps.engine. `documents` (the snapshot) may also be given later with attach().
    """
    settings = parse_config(doc[TABLE], deps.config) if TABLE in doc else None
    if settings is None:
        yield []
        return
    if deps.engine is None:
        raise RuntimeError("[telegram.bot] keeps its subscribers in the database: pass Deps.engine")
    key = f"{TABLE}.bot.token_env" if settings.bot.token_env else f"{TABLE}.token_env"
    token = _secret(deps, settings.token_env, key, "the bot's token from @BotFather")
    webhook = None
    if settings.bot.mode == "webhook":
        path_key = f"{TABLE}.bot.webhook_path_env"
        path = _secret(
            deps, settings.bot.webhook_path_env, path_key, 'a path like "/telegram/<random>"'
        )
        if not WEBHOOK_PATH.fullmatch(path):
            raise ConfigError(
                path_key,
                f'{settings.bot.webhook_path_env} must hold a path like "/telegram/<random>"',
            )
        secret_key = f"{TABLE}.bot.secret_token_env"
        secret = _secret(deps, settings.bot.secret_token_env, secret_key, "a random secret")
        if not SECRET_TOKEN.fullmatch(secret):
            raise ConfigError(
                secret_key,
                f"{settings.bot.secret_token_env} must hold 1-256 characters of A-Z, a-z, 0-9, _ or -",
            )
        webhook = Webhook(deps.config.site.public_url.rstrip("/") + path, path, secret)
    _quiet_http_logs()
    bot = SubscriberBot(settings, token, deps, deps.engine, webhook=webhook, documents=documents)
    async with bot.running():
        yield [bot]


_: type[FanOut] = SubscriberBot

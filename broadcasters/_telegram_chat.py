"""The subscriber bot's conversation: commands and buttons in, Telegram HTML replies out.

Every command works in both languages, whichever the person reads:

    /start                          greeting and language buttons
    /langganan, /subscribe [what]   what = branch id or name, region, "layanan"/"upstream";
                                    without it, buttons: regions → branches (or a whole region)
    /berhenti, /unsubscribe [what]  what as above, or "semua"/"all"; without it, buttons
    /status                         overall status, what is not operational, open incidents
    /antrean, /queue <branch>       a branch: open or closed, and its queue
    /bahasa, /language              language buttons
    anything else                   a short help

Button data (at most 64 bytes: https://core.telegram.org/bots/api#inlinekeyboardbutton) is
"lang:<id|en>", "menu", "r:<region>", "s:<follow>", "u:<follow>" or "u:*", where a follow
too long to fit is sent as "#" and a hash of it (code_of).

/status and /antrean answer from the snapshot's public JSON (/api/v2/summary.json and
/api/v1/branches), never from the database: in a rush those are what everyone asks.
Every string from staff or config is escaped (html.escape) before it enters a reply.

Staff commands (_telegram_staff) are installed ahead of these; to anyone not linked to a staff
token they do not exist.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from broadcasters import _subscribers as store
from broadcasters._telegram_replies import (
    Places,
    code_of,
    decode,
    queue_text,
    say,
    status_text,
)
from broadcasters._telegram_staff import StaffCommands
from broadcasters._telegram_text import clip, one_line
from status.clock import Clock
from status.config import Config
from status.i18n import LANGUAGES, t

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
BRANCH_BUTTONS = 60  # Telegram shows at most ~100 buttons; a region's list stops here
ALL = "*"
EVERYTHING_WORDS = frozenset({"semua", "all", "*"})
SUMMARY, BRANCHES = "/api/v2/summary.json", "/api/v1/branches"


class Document(Protocol):
    @property
    def body(self) -> bytes: ...


class Documents(Protocol):
    """Where the public renderings are (status.snapshot.Snapshot)."""

    def get(self, path: str) -> Document | None: ...


Rows = list[list[InlineKeyboardButton]]


def _keyboard(rows: Rows) -> InlineKeyboardMarkup | None:
    return InlineKeyboardMarkup(rows) if rows else None


def _pairs(buttons: list[InlineKeyboardButton]) -> Rows:
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(clip(one_line(text), 64), callback_data=data)


class Conversation:
    """The handlers; one instance per bot, sharing the engine, the clock and the snapshot."""

    def __init__(
        self,
        engine: AsyncEngine,
        config: Config,
        clock: Clock,
        language: str,
        documents: Documents | None = None,
    ) -> None:
        self.engine, self.config, self.clock = engine, config, clock
        self.language = language  # a new subscriber's, until they choose
        self.documents = documents
        self.places = Places(config)
        self.staff = StaffCommands(
            engine,
            config,
            clock,
            language=self._language,
            unknown=self.help,
            committed=self._committed,
        )

    def install(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        self.staff.install(application)  # first: the catch-alls below would take its updates
        private = filters.ChatType.PRIVATE
        commands = (
            (("start",), self.start),
            (("langganan", "subscribe"), self.subscribe),
            (("berhenti", "unsubscribe", "stop"), self.unsubscribe),
            (("status",), self.status),
            (("antrean", "queue"), self.queue),
            (("bahasa", "language"), self.choose_language),
        )
        for names, callback in commands:
            application.add_handler(CommandHandler(names, callback, filters=private))
        application.add_handler(CallbackQueryHandler(self.button))
        application.add_handler(MessageHandler(private, self.help))

    # ── commands ────────────────────────────────────────────────────────────────────────

    async def start(self, update: Update, _context: object) -> None:
        chat, user = update.effective_chat, update.effective_user
        if chat is None:
            return
        lang = await store.touch(
            self.engine, chat.id, user.username if user else None, self.language, self.clock.now()
        )
        text = say("bot.greeting", lang, site=self.config.site.name)
        await self._send(update, text, self._languages(lang))

    async def choose_language(self, update: Update, _context: object) -> None:
        lang = await self._language(update)
        await self._send(update, say("bot.choose_language", lang), self._languages(lang))

    async def help(self, update: Update, _context: object) -> None:
        await self._send(update, say("bot.help", await self._language(update)))

    async def subscribe(self, update: Update, _context: object) -> None:
        lang, wanted = await self._language(update), _argument(update)
        if not wanted:
            await self._send(update, *self._menu(lang))
            return
        what = self.places.resolve(wanted)
        if what is None:
            await self._send(update, say("bot.not_found", lang, query=clip(wanted, 100)))
            return
        await self._send(update, await self._follow(update, what, lang))

    async def unsubscribe(self, update: Update, _context: object) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        lang, wanted = await self._language(update), _argument(update)
        current = await store.follows(self.engine, chat.id)
        if not current:
            await self._send(update, say("bot.following_nothing", lang))
        elif not wanted:
            buttons = [_button(self.places.label(f, lang), f"u:{code_of(f)}") for f in current]
            rows = [*_pairs(buttons), [_button(t("bot.all_button", lang), f"u:{ALL}")]]
            await self._send(update, say("bot.choose_unsubscribe", lang), _keyboard(rows))
        else:
            what = self._among(wanted, current, lang)
            await self._send(update, await self._unfollow(chat.id, what, lang))

    async def status(self, update: Update, _context: object) -> None:
        lang = await self._language(update)
        summary = self._document(SUMMARY)
        text = say("bot.not_ready", lang) if summary is None else status_text(summary, lang)
        await self._send(update, text)

    async def queue(self, update: Update, _context: object) -> None:
        lang, wanted = await self._language(update), " ".join(_argument(update).split())
        if not wanted:
            await self._send(update, say("bot.queue_usage", lang))
            return
        doc = self._document(BRANCHES)
        if doc is None:
            await self._send(update, say("bot.not_ready", lang))
            return
        key = wanted.casefold()
        branch = next(
            (
                b
                for b in doc.get("branches") or []
                if key in (str(b.get("id")), str(b.get("name", "")).casefold())
            ),
            None,
        )
        if branch is None:
            await self._send(update, say("bot.branch_not_found", lang, query=clip(wanted, 100)))
            return
        await self._send(update, queue_text(branch, lang, self.clock.now()))

    # ── buttons ─────────────────────────────────────────────────────────────────────────

    async def button(self, update: Update, _context: object) -> None:
        query = update.callback_query
        if query is None or query.message is None or query.message.chat.type != ChatType.PRIVATE:
            return
        await query.answer()  # stops the spinner at once; the edit below is paced
        chat_id, data = query.message.chat.id, query.data or ""
        if data.startswith("lang:") and data[5:] in LANGUAGES:
            lang = await store.touch(
                self.engine,
                chat_id,
                query.from_user.username,
                data[5:],
                self.clock.now(),
                set_language=True,
            )
            await _edit(query, f"{say('bot.language_set', lang)}\n\n{say('bot.help', lang)}")
            return
        lang = await store.language_of(self.engine, chat_id) or self.language
        if data == "menu":
            await _edit(query, *self._menu(lang))
        elif data.startswith("r:"):
            region = decode(data[2:], [f"region:{r}" for r in self.places.regions])
            if region is None:
                await _edit(query, say("bot.stale_button", lang))
            else:
                await _edit(query, *self._region(region[7:], lang))
        elif data.startswith("s:"):
            what = decode(data[2:], self.places.everything())
            if what is None:
                await _edit(query, say("bot.stale_button", lang))
            else:
                await _edit(query, await self._follow(update, what, lang))
        elif data.startswith("u:"):
            current = await store.follows(self.engine, chat_id)
            what = None if data == f"u:{ALL}" else decode(data[2:], current)
            if what is None and data != f"u:{ALL}":
                await _edit(query, say("bot.stale_button", lang))
            else:
                await _edit(query, await self._unfollow(chat_id, what, lang))
        else:
            await _edit(query, say("bot.stale_button", lang))

    # ── pieces ──────────────────────────────────────────────────────────────────────────

    def _languages(self, lang: str) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(
            [
                [
                    _button(t("bot.language_id", lang), "lang:id"),
                    _button(t("bot.language_en", lang), "lang:en"),
                ]
            ]
        )

    def _menu(self, lang: str) -> tuple[str, InlineKeyboardMarkup | None]:
        buttons = [_button(r, f"r:{code_of(f'region:{r}')}") for r in self.places.regions]
        rows = _pairs(buttons)
        if self.config.components:
            rows.append([_button(t("bot.upstream_button", lang), f"s:{store.UPSTREAM}")])
        return say("bot.choose_follow", lang), _keyboard(rows)

    def _region(self, region: str, lang: str) -> tuple[str, InlineKeyboardMarkup | None]:
        branches = [b for b in self.config.branches if b.region == region]
        whole = _button(
            t("bot.whole_region", lang, region=region), f"s:{code_of(f'region:{region}')}"
        )
        buttons = [_button(b.name, f"s:{code_of(b.id)}") for b in branches[:BRANCH_BUTTONS]]
        rows = [[whole], *_pairs(buttons), [_button(t("bot.back", lang), "menu")]]
        text = say("bot.choose_branch", lang, region=region)
        if len(branches) > BRANCH_BUTTONS:
            text += "\n" + say("bot.more_branches", lang)
        return text, _keyboard(rows)

    async def _follow(self, update: Update, what: str, lang: str) -> str:
        chat, user = update.effective_chat, update.effective_user
        assert chat is not None  # noqa: S101 - every caller checked for a private chat
        new = await store.follow(
            self.engine, chat.id, what, user.username if user else None, lang, self.clock.now()
        )
        key = "bot.subscribed" if new else "bot.already_subscribed"
        return say(key, lang, what=self.places.label(what, lang))

    async def _unfollow(self, chat_id: int, what: str | None, lang: str) -> str:
        if what == ALL:
            what = None
        removed = await store.unfollow(self.engine, chat_id, what)
        if what is None:
            return say("bot.unsubscribed_all" if removed else "bot.following_nothing", lang)
        label = self.places.label(what, lang)
        if not removed:
            return say("bot.not_following", lang, what=clip(label, 100))
        return say("bot.unsubscribed", lang, what=label)

    def _among(self, wanted: str, current: list[str], lang: str) -> str:
        """What a typed /berhenti argument means: "all", a place, or one of their follows' labels."""
        key = " ".join(wanted.split()).casefold()
        if key in EVERYTHING_WORDS:
            return ALL
        resolved = self.places.resolve(wanted)
        if resolved is not None:
            return resolved
        named = {self.places.label(f, lang).casefold(): f for f in current}
        return named.get(key) or next((f for f in current if f.casefold() == key), wanted)

    async def _language(self, update: Update) -> str:
        chat = update.effective_chat
        found = await store.language_of(self.engine, chat.id) if chat else None
        return found or self.language

    async def _committed(self, event_id: int) -> None:
        """A staff command was written: rebuild the public renderings now, as the API does."""
        on_commit = getattr(self.documents, "on_commit", None)
        if on_commit is not None:
            await on_commit(event_id)

    def _document(self, path: str) -> Mapping[str, Any] | None:
        rendering = self.documents.get(path) if self.documents is not None else None
        if rendering is None:
            return None
        doc: Any = json.loads(rendering.body)
        return doc if isinstance(doc, Mapping) else None

    async def _send(
        self, update: Update, text: str, keyboard: InlineKeyboardMarkup | None = None
    ) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        await chat.send_message(
            text, parse_mode=ParseMode.HTML, reply_markup=keyboard, link_preview_options=NO_PREVIEW
        )


def _argument(update: Update) -> str:
    """What follows the command: "/langganan@bot KCU Medan" → "KCU Medan"."""
    text = update.effective_message.text if update.effective_message else None
    parts = (text or "").split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


async def _edit(
    query: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup | None = None
) -> None:
    try:
        await query.edit_message_text(
            text, parse_mode=ParseMode.HTML, reply_markup=keyboard, link_preview_options=NO_PREVIEW
        )
    except BadRequest as exc:
        # The same button pressed twice: the message already says this.
        if "message is not modified" not in str(exc).lower():
            raise

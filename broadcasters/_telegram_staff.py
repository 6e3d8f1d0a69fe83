"""Staff commands in the subscriber bot: link an account to a token, then post for one's branches after a preview.

    /tautkan, /link <code>                      link this Telegram account (message.from.id) to
                                                the token an admin issued the code for
    /lepas, /unlink                             remove the link
    /pengumuman, /notice <branch id> <text>     a notice (impact none) for a branch
    /update <incident id> <status> <text>       news on an incident (its id or its link);
                                                status in English or Indonesian (dipantau…)
    /selesai, /resolve <incident id> [text]     resolve it

Private chats only. Anyone without a live link to a live token, and everyone in a group, gets
what an unknown command gets (the help), so nothing shows the staff commands exist.

Nothing is written until the Send button: the command is first run through the core and
rolled back (_staff_writes: the staff API's own parser, core command and scope check, with
refusals audited), and the outbox event it would have written is rendered as channels render
it, as the preview. Send writes it once, with the linked token as the actor (audit
remote_addr "telegram"); pressing it twice writes nothing twice.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

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
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, filters

from broadcasters._staff_writes import Action, StaffWrites
from broadcasters._telegram_text import MAX_TEXT, View, plain_length, posts, render_post, zone_for
from status import db, link_codes
from status.clock import Clock
from status.commands import BODY_MAX
from status.config import Config
from status.core import Core
from status.errors import ConflictError, DomainError, NotFoundError, ScopeError
from status.i18n import LANGUAGES, t
from status.model import Actor, Event
from status.vocabulary import IncidentStatus
from status.web.errors import APIError

log = logging.getLogger(__name__)

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
ID_MAX = 64
STATUSES = (
    IncidentStatus.INVESTIGATING,
    IncidentStatus.IDENTIFIED,
    IncidentStatus.MONITORING,
    IncidentStatus.RESOLVED,
)
_ARGS = re.compile(r"\S+(?:\s+(.*))?", re.DOTALL)

Handler = Callable[[Update, Any], Coroutine[Any, Any, None]]


class Refusal(Exception):
    """A reply instead of a preview: the locale key and its values."""

    def __init__(self, key: str, **values: str) -> None:
        super().__init__(key)
        self.key, self.values = key, values


def say(key: str, lang: str, **values: str) -> str:
    """The locale's text as Telegram HTML: the wording and every value escaped."""
    wording = html.escape(t(f"telegram_staff.{key}", lang), quote=False)
    return wording.format(**{k: html.escape(v, quote=False) for k, v in values.items()})


def arguments(text: str) -> str:
    """Everything after the command word ("/notice@bot a b" → "a b"), newlines kept."""
    found = _ARGS.fullmatch(text.strip())
    return (found.group(1) or "").strip() if found else ""


def _words(args: str, count: int) -> list[str]:
    """`args` cut at whitespace into `count` parts, the last keeping its newlines; "" if missing."""
    parts = args.split(maxsplit=count - 1)
    return parts + [""] * (count - len(parts))


def status_of(word: str) -> IncidentStatus | None:
    """An incident status from its English value or its word in either language."""
    key = word.casefold()
    for status in STATUSES:
        words = {str(status)} | {
            t(f"telegram.incident_status.{status}", lang).casefold() for lang in LANGUAGES
        }
        if key in words:
            return status
    return None


def preview_text(event: Event, lang: str, view: View) -> str:
    """The channel post `event` makes, under a line asking to send it (the post alone if both
    would not fit Telegram's 4096)."""
    post, _ = posts(event)
    if event.kind == "incident.created":
        post = replace(post, link="")  # the dry run's id is not the one Send will make
    body = render_post(post, lang, zone_for(view, event.component_ids))
    text = f"{say('preview', lang)}\n\n{body}"
    return text if plain_length(text) <= MAX_TEXT else body


class StaffCommands:
    """The staff handlers; installed ahead of the subscriber conversation's catch-alls."""

    def __init__(
        self,
        engine: AsyncEngine,
        config: Config,
        clock: Clock,
        *,
        language: Callable[[Update], Awaitable[str]],
        unknown: Handler,
        committed: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        """`language` is a chat's chosen language; `unknown` answers what is not a command;
        `committed` hears a written event's id (the snapshot rebuilds at once)."""
        self.engine, self.config, self.clock = engine, config, clock
        self._language, self._unknown = language, unknown
        # The same writer the staff API uses; the class holds no state besides listeners.
        core = Core(engine, clock, config)
        if committed is not None:
            core.on_commit(committed)
        self.writes = StaffWrites(core)
        zones = {b.id: b.zone for b in config.branches}
        self._views = {
            lang: View(lang, ZoneInfo(config.site.timezone), None, zones) for lang in LANGUAGES
        }

    def use_core(self, core: Core) -> None:
        """Write through the instance's own core: its listeners (snapshot, dispatcher) hear
        each command at once instead of on their next poll."""
        self.writes = StaffWrites(core)

    def install(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        private = filters.ChatType.PRIVATE
        commands: tuple[tuple[tuple[str, ...], Handler], ...] = (
            (("tautkan", "link"), self.link),
            (("lepas", "unlink"), self.unlink),
            (("pengumuman", "notice"), self.notice),
            (("update",), self.update),
            (("selesai", "resolve"), self.resolve),
        )
        for names, callback in commands:
            application.add_handler(CommandHandler(names, callback, filters=private))
        application.add_handler(CallbackQueryHandler(self.button, pattern=r"^st:"))

    # ── linking ─────────────────────────────────────────────────────────────────────────

    async def link(self, update: Update, _context: object) -> None:
        user, lang = update.effective_user, await self._language(update)
        typed = arguments(_text(update))
        if user is None:
            return
        if not typed:
            await _send(update, say("link_usage", lang))
            return
        async with db.write(self.engine) as conn:
            actor = await link_codes.redeem(conn, typed, user.id, user.username, self.clock.now())
        if actor is None:
            await _send(update, say("link_failed", lang))
            return
        log.info("telegram bot: user %d linked to token %s", user.id, actor.token_id)
        example = min(actor.branches, default=self._example())
        await _send(
            update,
            say("linked", lang, name=actor.name, scopes=", ".join(actor.scopes), example=example),
        )

    async def unlink(self, update: Update, context: object) -> None:
        user = update.effective_user
        if user is None:
            return
        async with db.write(self.engine) as conn:
            actor = await link_codes.unlink(conn, user.id, self.clock.now())
        if actor is None:
            await self._unknown(update, context)
            return
        await _send(update, say("unlinked", await self._language(update), name=actor.name))

    # ── commands that write (after a preview) ───────────────────────────────────────────

    async def notice(self, update: Update, context: object) -> None:
        await self._command(update, context, self._notice)

    async def update(self, update: Update, context: object) -> None:
        await self._command(update, context, self._update)

    async def resolve(self, update: Update, context: object) -> None:
        await self._command(update, context, self._resolve)

    def _notice(self, args: str, actor: Actor, lang: str) -> Action:
        branch_id, text = _words(args, 2)
        if not branch_id or not text:
            raise Refusal("notice_usage", example=min(actor.branches, default=self._example()))
        branch = next(
            (b for b in self.config.branches if b.id.casefold() == branch_id.casefold()), None
        )
        if branch is None:
            yours = self._yours(actor, lang)
            raise Refusal("unknown_branch", branch=branch_id[:ID_MAX], yours=yours)
        site = self.config.site.language
        doc = {
            "name": t("telegram_staff.notice_name", site, branch=branch.name),
            "status": str(IncidentStatus.IDENTIFIED),
            "impact": "none",
            "body": text[:BODY_MAX],
            "components": {branch.id: "operational"},
        }
        return Action(doc)

    def _update(self, args: str, _actor: Actor, _lang: str) -> Action:
        incident_id, word, text = _words(args, 3)
        if not text:
            raise Refusal("update_usage")
        status = status_of(word)
        if status is None:
            raise Refusal("unknown_status", status=word[:40])
        return self._on_incident(incident_id, status, text)

    def _resolve(self, args: str, _actor: Actor, _lang: str) -> Action:
        incident_id, text = _words(args, 2)
        if not incident_id:
            raise Refusal("resolve_usage")
        text = text or t("telegram_staff.resolved_body", self.config.site.language)
        return self._on_incident(incident_id, IncidentStatus.RESOLVED, text)

    @staticmethod
    def _on_incident(typed: str, status: IncidentStatus, text: str) -> Action:
        # The link under a channel post works too: staff can paste what they see.
        incident_id = typed.rstrip("/").rsplit("/incidents/", 1)[-1]
        if not 0 < len(incident_id) <= ID_MAX or not incident_id.isprintable():
            raise Refusal("not_found", id=incident_id[:ID_MAX])
        doc = {"status": str(status), "body": text.strip()[:BODY_MAX], "components": {}}
        return Action(doc, incident_id)

    async def _command(
        self, update: Update, context: object, parse: Callable[[str, Actor, str], Action]
    ) -> None:
        user = update.effective_user
        actor = await self._actor(user.id) if user is not None else None
        if actor is None:
            await self._unknown(update, context)  # as if the command did not exist
            return
        lang = await self._language(update)
        try:
            action = parse(arguments(_text(update)), actor, lang)
            try:
                event = await self.writes.preview(action, actor)
            except (DomainError, APIError) as exc:
                raise self._refusal(exc, action.incident_id, actor, lang) from None
        except Refusal as refusal:
            await _send(update, say(refusal.key, lang, **refusal.values))
            return
        pending = await self.writes.hold(action, actor)
        buttons = [
            InlineKeyboardButton(say("send_button", lang), callback_data=f"st:ok:{pending}"),
            InlineKeyboardButton(say("cancel_button", lang), callback_data=f"st:no:{pending}"),
        ]
        text = preview_text(event, lang, self._views[lang])
        await _send(update, text, InlineKeyboardMarkup([buttons]))

    def _refusal(
        self, exc: DomainError | APIError, incident_id: str | None, actor: Actor, lang: str
    ) -> Refusal:
        if isinstance(exc, ScopeError):
            return Refusal("refused", yours=self._yours(actor, lang))
        if isinstance(exc, NotFoundError):
            return Refusal("not_found", id=incident_id or "")
        if isinstance(exc, ConflictError):
            return Refusal("busy")
        return Refusal("invalid", reason=exc.message)

    # ── the Send and Cancel buttons ─────────────────────────────────────────────────────

    async def button(self, update: Update, _context: object) -> None:
        query = update.callback_query
        if query is None or query.message is None or query.message.chat.type != ChatType.PRIVATE:
            return
        await query.answer()
        lang = await self._language(update)
        verb, _, pending = (query.data or "").partition(":")[2].partition(":")
        actor = await self._actor(query.from_user.id)
        if actor is None or verb not in ("ok", "no"):
            await _edit(query, say("stale", lang))
        elif verb == "no":
            cancelled = await self.writes.cancel(actor, pending)
            await _edit(query, say("cancelled" if cancelled else "stale", lang))
        else:
            await _edit(query, await self._confirm(actor, pending, lang))

    async def _confirm(self, actor: Actor, pending: str, lang: str) -> str:
        try:
            sent = await self.writes.send(actor, pending)
        except (DomainError, APIError) as exc:
            refusal = self._refusal(exc, None, actor, lang)
            return say(refusal.key, lang, **refusal.values)
        if sent is None:
            return say("stale", lang)
        if not sent.again:
            log.info("telegram bot: token %s wrote on %s", actor.token_id, sent.incident_id)
        return say("sent", lang, id=sent.incident_id)

    # ── pieces ──────────────────────────────────────────────────────────────────────────

    async def _actor(self, user_id: int) -> Actor | None:
        async with db.read(self.engine) as conn:
            return await link_codes.actor_for(conn, user_id)

    @staticmethod
    def _yours(actor: Actor, lang: str) -> str:
        if actor.is_admin:
            return t("telegram_staff.all_branches", lang)
        return ", ".join(sorted(actor.branches))

    def _example(self) -> str:
        return self.config.branches[0].id if self.config.branches else "kcu-medan"


def _text(update: Update) -> str:
    message = update.effective_message
    return (message.text or "") if message is not None else ""


async def _send(update: Update, text: str, keyboard: InlineKeyboardMarkup | None = None) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    await chat.send_message(
        text, parse_mode=ParseMode.HTML, reply_markup=keyboard, link_preview_options=NO_PREVIEW
    )


async def _edit(query: CallbackQuery, text: str) -> None:
    try:
        await query.edit_message_text(
            text, parse_mode=ParseMode.HTML, reply_markup=None, link_preview_options=NO_PREVIEW
        )
    except BadRequest as exc:
        # The same button pressed twice: the message already says this.
        if "message is not modified" not in str(exc).lower():
            raise

"""Fake Telegram Bot API: a real server on loopback that answers like api.telegram.org does.

Point python-telegram-bot at it: `Bot(fake.token, base_url=f"{fake.url}/bot")`. The fake
keeps chats and what their members see, records every call, enforces Telegram's flood limits
on an injectable clock, applies Telegram's text rules (telegram_html.py) and answers with
Telegram's own error bodies (https://core.telegram.org/bots/api#making-requests):

    400 "Bad Request: chat not found" | "…: message is too long" | "…: can't parse entities: …"
        | "…: message is not modified: …" | "…: message to edit not found"
        | "…: group chat was upgraded to a supergroup chat" + parameters.migrate_to_chat_id
    401 "Unauthorized" (unknown token)      404 "Not Found" (malformed token, unknown method)
    403 "Forbidden: bot was blocked by the user" | "…: bot is not a member of the channel chat"
    409 "Conflict: …" (getUpdates while a webhook is set, or a second poller)
    429 "Too Many Requests: retry after N" + parameters.retry_after
    502 nginx's HTML page (outage = "bad_gateway"); outage = "timeout" holds every request
        until the outage ends, then drops it unprocessed; latency[method] delays and processes
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.fakes.telegram_html import TextError, check_length, command_entities, parse_text
from tests.fakes.upstream import serve

JSON = dict[str, Any]
Outage = Literal["bad_gateway", "timeout"]
TOKEN = "123456:TEST-token"

NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly"
    " the same as a current content and reply markup of the message"
)
# PTB posts form fields, JSON-encoding all but strings; Telegram decodes each by its type.
DECODED = frozenset(
    ["message_id", "reply_to_message_id", "offset", "limit", "timeout", "max_connections"]  # noqa: RUF005 - rows read better
    + ["disable_notification", "protect_content", "allow_sending_without_reply", "show_alert"]
    + ["drop_pending_updates", "reply_markup", "reply_parameters", "link_preview_options"]
    + ["entities", "commands", "allowed_updates", "scope"]
)


@dataclass(frozen=True)
class Rate:
    """At most `count` counted calls in any `per` seconds."""

    count: int
    per: float


@dataclass(frozen=True)
class Limits:
    """Flood limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).

    Scopes are the whole bot and each chat. A scope over its rate answers 429 to every counted
    call until its penalty ends: when the window frees a slot (whole seconds, at least 1), or
    after `retry_after` seconds when that is set.
    """

    bot: Rate | None = Rate(30, 1.0)
    private_chat: Rate | None = Rate(1, 1.0)
    group_chat: Rate | None = Rate(20, 60.0)  # groups, supergroups and channels
    retry_after: int | None = None
    methods: frozenset[str] = frozenset({"sendMessage"})


UNLIMITED = Limits(bot=None, private_chat=None, group_chat=None)


@dataclass
class ChatMessage:
    """A message as the chat's members see it now (after edits)."""

    message_id: int
    chat_id: int
    text: str
    entities: list[JSON]
    date: int
    sender: JSON | None = None  # the user who wrote it; None: the bot did
    reply_to: int | None = None
    reply_markup: JSON | None = None  # inline keyboards only; Telegram echoes no other kind
    disable_notification: bool = False
    edit_date: int | None = None
    pinned_at: int = 0  # order of pinning; 0 = not pinned

    @property
    def pinned(self) -> bool:
        return self.pinned_at > 0


@dataclass
class Chat:
    """A chat the fake knows, with the switches a test flips."""

    id: int
    type: Literal["private", "group", "supergroup", "channel"]
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    language_code: str | None = None  # private: the user's app language
    blocked: bool = False  # private: the user blocked the bot
    bot_removed: bool = False  # group/channel: the bot was removed
    migrated_to: int | None = None  # group: upgraded to this supergroup
    messages: dict[int, ChatMessage] = field(default_factory=dict)
    last_message_id: int = 0

    def to_json(self) -> JSON:
        names = {"title": self.title, "username": self.username, "first_name": self.first_name}
        return {"id": self.id, "type": self.type} | {k: v for k, v in names.items() if v}


@dataclass(frozen=True)
class Call:
    """One request the fake answered: method, decoded params, fake-clock time, HTTP status."""

    method: str
    params: JSON
    at: float
    status: int
    description: str | None = None


class ApiError(Exception):
    """An error answer; body() is Telegram's JSON for it."""

    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.parameters = status, description, parameters

    def body(self) -> JSON:
        body = {"ok": False, "error_code": self.status, "description": self.description}
        return body | ({"parameters": self.parameters} if self.parameters else {})


def _bad(description: str, **parameters: Any) -> ApiError:
    return ApiError(400, f"Bad Request: {description}", parameters or None)


def _too_many(seconds: float) -> ApiError:
    retry = max(1, math.ceil(seconds))  # Telegram's retry_after is whole seconds
    return ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})


class _BadGateway(Exception):
    pass


@dataclass(frozen=True)
class _Described:
    """A result that Telegram sends with a "description" (setWebhook, deleteWebhook)."""

    result: Any
    description: str


class FakeTelegram:
    """The Bot API's state, shared by the test thread and the server thread under one lock.

    `outage` and `latency[method]` (seconds) are plain attributes a test may assign any time.
    Methods named `_api_<Bot API method>` answer that method; add one to support another.
    """

    def __init__(
        self,
        token: str = TOKEN,
        *,
        limits: Limits = Limits(),
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.token, self.limits, self.url = token, limits, ""
        self.outage: Outage | None = None
        self.latency: dict[str, float] = {}
        self.bot_user: JSON = {"id": int(token.split(":")[0]), "is_bot": True}
        self.bot_user |= {"first_name": "Siaran", "username": "siaran_test_bot"}
        self._clock, self._wall = clock, wall
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._chats: dict[int, Chat] = {}
        self._calls: list[Call] = []
        self._scripted: dict[str, deque[ApiError]] = {}
        self._updates: deque[JSON] = deque()
        self._allowed_updates: list[str] | None = None
        self._poller = 0
        self._webhook: JSON | None = None
        self._webhook_error: tuple[int, str] | None = None
        self._windows: dict[str, deque[float]] = {}
        self._penalty: dict[str, float] = {}
        self._queries: set[str] = set()
        self._commands: dict[str, list[JSON]] = {}
        self._ids = itertools.count(1)
        methods = [*(n[5:] for n in dir(self) if n.startswith("_api_")), "getUpdates"]
        self._names = {name.lower(): name for name in methods}

    # ── what a test sets up ─────────────────────────────────────────────────────────────

    def add_channel(self, username: str, *, chat_id: int | None = None, title: str = "") -> int:
        """A public channel the bot posts to, e.g. add_channel("@statusemeterai")."""
        name = username.removeprefix("@")
        chat_id = chat_id or -1001000000000 - next(self._ids)
        return self._add(Chat(chat_id, "channel", title or name, name))

    def add_group(self, title: str, *, chat_id: int | None = None, supergroup: bool = False) -> int:
        kind: Literal["group", "supergroup"] = "supergroup" if supergroup else "group"
        chat_id = chat_id or (-1002000000000 if supergroup else -4000000000) - next(self._ids)
        return self._add(Chat(chat_id, kind, title))

    def add_user(
        self, user_id: int, first_name: str = "Pengguna", username: str = "", language: str = "id"
    ) -> int:
        """A person who started the bot; their private chat's id is their user id."""
        user = Chat(user_id, "private", None, username, first_name, language_code=language)
        return self._add(user)

    def block(self, user_id: int, blocked: bool = True) -> None:
        with self._lock:
            self._chat(user_id).blocked = blocked

    def remove_bot(self, chat: int | str, removed: bool = True) -> None:
        with self._lock:
            self._chat(chat).bot_removed = removed

    def migrate(self, group: int | str, new_chat_id: int | None = None) -> int:
        """Upgrade a group to a supergroup; the old id then answers 400 with migrate_to_chat_id."""
        with self._lock:
            old = self._chat(group)
            old.migrated_to = self.add_group(old.title or "", chat_id=new_chat_id, supergroup=True)
            return old.migrated_to

    def fail_next(self, method: str, status: int, description: str, **parameters: Any) -> None:
        """Answer the next call of `method` with this error, before any other check."""
        with self._lock:
            error = ApiError(status, description, parameters or None)
            self._scripted.setdefault(method, deque()).append(error)

    def delete_message(self, chat: int | str, message_id: int) -> None:
        """A channel admin deletes a message by hand (edits then answer "message to edit not found")."""
        with self._lock:
            del self._chat(chat).messages[message_id]

    def flood(self, retry_after: int = 5, chat: int | str | None = None) -> None:
        """Start a flood penalty now, for the whole bot or for one chat."""
        with self._lock:
            scope = "bot" if chat is None else f"chat {self._chat(chat).id}"
            self._penalty[scope] = self._clock() + retry_after

    def send_user_message(self, user_id: int, text: str, *, chat: int | str | None = None) -> int:
        """A user writes `text` to the bot (or in `chat`); queues the Update; returns message_id."""
        with self._lock:
            user = self._user(user_id)
            user.blocked = False  # writing to a bot you blocked means unblocking it first
            target = user if chat is None else self._chat(chat)
            entities = command_entities(text)
            message = self._store(target, text, entities, sender=self._user_json(user))
            self._queue(message=self._message_json(target, message))
            return message.message_id

    def press_button(self, user_id: int, message_id: int, data: str, chat: int | str = 0) -> str:
        """A user presses an inline button under a bot message; queues it; returns the query id."""
        with self._lock:
            user = self._user(user_id)
            target = self._chat(chat or user_id)
            message = target.messages[message_id]
            rows = (message.reply_markup or {}).get("inline_keyboard", [])
            offered = [button.get("callback_data") for row in rows for button in row]
            if data not in offered:
                raise ValueError(f"message {message_id} offers no button {data!r}, only {offered}")
            query_id = str(4_620_000_000_000_000_000 + next(self._ids))
            self._queries.add(query_id)
            self._queue(
                callback_query={
                    "id": query_id,
                    "from": self._user_json(user),
                    "message": self._message_json(target, message),
                    "chat_instance": str(abs(target.id) * 7919),
                    "data": data,
                }
            )
            return query_id

    # ── what a test reads back ──────────────────────────────────────────────────────────

    def messages(self, chat: int | str) -> list[ChatMessage]:
        """Every message in the chat as its members see it now, oldest first (copies)."""
        with self._lock:
            return [replace(m) for _, m in sorted(self._chat(chat).messages.items())]

    def pinned(self, chat: int | str) -> list[ChatMessage]:
        """The chat's pinned messages, most recently pinned first."""
        return sorted((m for m in self.messages(chat) if m.pinned), key=lambda m: -m.pinned_at)

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method in (None, c.method)]

    def statuses(self) -> Counter[int]:
        """How many answers had each HTTP status, e.g. statuses()[429]."""
        with self._lock:
            return Counter(c.status for c in self._calls)

    def pending_updates(self) -> list[JSON]:
        with self._lock:
            return list(self._updates)

    def my_commands(self, scope: str = "default", language_code: str = "") -> list[JSON]:
        with self._lock:
            return list(self._commands.get(f"{scope}/{language_code}", []))

    @property
    def webhook(self) -> JSON | None:
        with self._lock:
            return None if self._webhook is None else dict(self._webhook)

    # ── the server ──────────────────────────────────────────────────────────────────────

    def app(self) -> Starlette:
        route = Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])
        return Starlette(routes=[route])

    async def _endpoint(self, request: Request) -> Response:
        asked = request.path_params["method"]
        method = self._names.get(asked.lower(), asked)  # Telegram ignores the case
        params: JSON = {}
        try:
            params = _decode(await _read_params(request))
            result = await self._answer(request.path_params["token"], method, params)
        except TextError as error:  # Telegram's text rules live in telegram_html.py
            status, body = 400, _bad(str(error)).body()
            self._record(method, params, status, body["description"])
            return JSONResponse(body, status)
        except _BadGateway:
            self._record(method, params, 502, "Bad Gateway")
            return HTMLResponse(NGINX_502, 502)
        except ApiError as error:
            self._record(method, params, error.status, error.description)
            return JSONResponse(error.body(), error.status)
        self._record(method, params, 200, None)
        if isinstance(result, _Described):
            return JSONResponse(
                {"ok": True, "result": result.result, "description": result.description}
            )
        return JSONResponse({"ok": True, "result": result})

    async def _answer(self, token: str, method: str, params: JSON) -> Any:
        # A held request never reaches "Telegram", even after the outage ends; to have a
        # request done late (client timed out, message sent anyway), use latency instead.
        held = self.outage == "timeout"
        await self._wait(lambda: self.outage != "timeout", math.inf)
        if held or self.outage == "bad_gateway" or self._closing.is_set():
            raise _BadGateway
        await asyncio.sleep(self.latency.get(method, 0.0))
        if not re.fullmatch(r"\d+:[\w-]+", token):
            raise ApiError(404, "Not Found")
        if token != self.token:
            raise ApiError(401, "Unauthorized")
        with self._lock:
            if scripted := self._scripted.get(method):
                raise scripted.popleft()
            if method not in self._names.values():
                raise ApiError(404, "Not Found")
            if method != "getUpdates":
                return getattr(self, f"_api_{method}")(params)
        return await self._get_updates(params)

    async def _wait(self, done: Callable[[], bool], seconds: float) -> None:
        """Until done() or `seconds` or closing. The waker is another thread, so poll every 20 ms."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not (done() or self._closing.is_set()):
            if asyncio.get_running_loop().time() >= deadline:
                return
            await asyncio.sleep(0.02)

    def _record(self, method: str, params: JSON, status: int, description: str | None) -> None:
        with self._lock:
            self._calls.append(Call(method, params, self._clock(), status, description))

    # ── Bot API methods (called under the lock) ─────────────────────────────────────────

    def _api_getMe(self, p: JSON) -> JSON:
        flags = ["can_read_all_group_messages", "supports_inline_queries", "has_main_web_app"]
        return self.bot_user | {"can_join_groups": True} | dict.fromkeys(flags, False)

    def _api_sendMessage(self, p: JSON) -> JSON:
        text, entities = parse_text(p.get("text"), p.get("parse_mode"), p.get("entities"))
        chat = self._target(p)
        reply_to = _reply_to(chat, p)
        check_length(text)
        self._admit("sendMessage", chat)
        message = self._store(chat, text, entities, reply_to=reply_to, reply_markup=_inline(p))
        message.disable_notification = bool(p.get("disable_notification"))
        return self._message_json(chat, message)

    def _api_editMessageText(self, p: JSON) -> JSON:
        if "inline_message_id" in p:
            raise _bad("the fake does not implement inline_message_id")
        text, entities = parse_text(p.get("text"), p.get("parse_mode"), p.get("entities"))
        chat = self._target(p)
        message = self._message(chat, p, "message to edit not found")
        if message.sender is not None:
            raise _bad("message can't be edited")
        check_length(text)
        markup = _inline(p)  # an edit without reply_markup takes the keyboard away
        if (message.text, message.entities, message.reply_markup) == (text, entities, markup):
            raise _bad(NOT_MODIFIED)
        self._admit("editMessageText", chat)
        message.text, message.entities, message.reply_markup = text, entities, markup
        message.edit_date = int(self._wall())
        return self._message_json(chat, message)

    def _api_pinChatMessage(self, p: JSON) -> bool:
        self._message(self._target(p), p, "message to pin not found").pinned_at = next(self._ids)
        return True

    def _api_unpinChatMessage(self, p: JSON) -> bool:
        chat = self._target(p)
        pinned = sorted((m.pinned_at, m.message_id) for m in chat.messages.values() if m.pinned)
        latest = pinned[-1][1] if pinned else 0
        message = chat.messages.get(p.get("message_id") or latest)  # the latest by default
        if message is None or not message.pinned:
            raise _bad("message to unpin not found")
        message.pinned_at = 0
        return True

    def _api_setWebhook(self, p: JSON) -> _Described:
        if not p.get("url"):
            return self._api_deleteWebhook(p)
        if not str(p["url"]).startswith(("https://", "http://")):  # http: tests have no TLS
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        same = self._webhook is not None and self._webhook["url"] == p["url"]
        keys = ("url", "secret_token", "max_connections", "allowed_updates")
        self._webhook = {k: p[k] for k in keys if k in p}
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return _Described(True, "Webhook is already set" if same else "Webhook was set")

    def _api_deleteWebhook(self, p: JSON) -> _Described:
        existed, self._webhook, self._webhook_error = self._webhook is not None, None, None
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return _Described(True, "Webhook was deleted" if existed else "Webhook is already deleted")

    def _api_getWebhookInfo(self, p: JSON) -> JSON:
        info = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook is not None:
            info |= {"max_connections": 40, "ip_address": "127.0.0.1"} | self._webhook
            info.pop("secret_token", None)
        if self._webhook is not None and self._webhook_error:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    def _api_answerCallbackQuery(self, p: JSON) -> bool:
        if str(p.get("callback_query_id")) not in self._queries:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        self._queries.discard(str(p["callback_query_id"]))
        return True

    def _api_setMyCommands(self, p: JSON) -> bool:
        for command in p.get("commands") or []:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command"))):
                raise _bad("BOT_COMMAND_INVALID")
        self._commands[_scope(p)] = list(p.get("commands") or [])
        return True

    def _api_getMyCommands(self, p: JSON) -> list[JSON]:
        return self._commands.get(_scope(p), [])

    def _api_getChat(self, p: JSON) -> JSON:
        chat = self._target(p, sending=False)
        gifts = ["unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription"]
        info = chat.to_json() | {"accent_color_id": 0, "max_reaction_count": 11}
        info["accepted_gift_types"] = dict.fromkeys([*gifts, "gifts_from_channels"], False)
        pinned = [m for m in chat.messages.values() if m.pinned]
        if pinned:
            latest = max(pinned, key=lambda m: m.pinned_at)
            info["pinned_message"] = self._message_json(chat, latest)
        return info

    async def _get_updates(self, p: JSON) -> list[JSON]:
        offset, limit = int(p.get("offset", 0)), int(p.get("limit", 100))
        with self._lock:
            if self._webhook is not None:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active;"
                    " use deleteWebhook to delete the webhook first",
                )
            self._poller += 1
            poller = self._poller
            if "allowed_updates" in p:  # Telegram keeps it for later calls; [] means all kinds
                self._allowed_updates = p["allowed_updates"] or None
            while self._updates and (
                0 < offset > self._updates[0]["update_id"] or len(self._updates) > -offset > 0
            ):
                self._updates.popleft()  # confirmed by `offset`, or older than the last -offset

        def batch() -> list[JSON]:
            with self._lock:
                if self._poller != poller:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request;"
                        " make sure that only one bot instance is running",
                    )
                wanted = self._allowed_updates
                return [u for u in self._updates if not wanted or set(wanted) & set(u)][:limit]

        await self._wait(lambda: bool(batch()), float(p.get("timeout", 0)))
        return batch()

    # ── machinery (callers hold the lock) ───────────────────────────────────────────────

    def _add(self, chat: Chat) -> int:
        with self._lock:
            self._chats[chat.id] = chat
            return chat.id

    def _find(self, ref: Any, *, people: bool) -> Chat | None:
        if not (isinstance(ref, str) and ref.startswith("@")):
            return self._chats.get(ref) if isinstance(ref, int) else None
        # The API reaches only channels and supergroups by @username; tests may name anyone.
        kinds = ("channel", "supergroup", "private") if people else ("channel", "supergroup")
        named = ref[1:].lower()
        found = (c for c in self._chats.values() if (c.username or "").lower() == named)
        return next((c for c in found if c.type in kinds), None)

    def _chat(self, ref: int | str) -> Chat:
        chat = self._find(ref, people=True)
        if chat is None:
            raise KeyError(f"the fake knows no chat {ref!r}; add it first")
        return chat

    def _user(self, user_id: int) -> Chat:
        return self._chats.get(user_id) or self._chat(self.add_user(user_id))

    def _target(self, p: JSON, *, sending: bool = True) -> Chat:
        if p.get("chat_id") in (None, ""):
            raise _bad("chat_id is empty")
        chat = self._find(p["chat_id"], people=False)
        if chat is None:
            raise _bad("chat not found")
        if chat.migrated_to is not None:
            raise _bad(
                "group chat was upgraded to a supergroup chat", migrate_to_chat_id=chat.migrated_to
            )
        if chat.blocked and sending:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat.bot_removed and chat.type == "channel":
            raise ApiError(403, "Forbidden: bot is not a member of the channel chat")
        if chat.bot_removed:
            raise ApiError(403, f"Forbidden: bot was kicked from the {chat.type} chat")
        return chat

    def _message(self, chat: Chat, p: JSON, missing: str) -> ChatMessage:
        if "message_id" not in p:
            raise _bad("message identifier is not specified")
        if p["message_id"] not in chat.messages:
            raise _bad(missing)
        return chat.messages[p["message_id"]]

    def _admit(self, method: str, chat: Chat) -> None:
        """Count a call against the flood limits, or raise the 429 Telegram would send."""
        if method not in self.limits.methods:
            return
        now = self._clock()
        per_chat = self.limits.private_chat if chat.type == "private" else self.limits.group_chat
        scopes = [("bot", self.limits.bot), (f"chat {chat.id}", per_chat)]
        for scope, rate in scopes:
            if now < self._penalty.get(scope, -math.inf):
                raise _too_many(self._penalty[scope] - now)
            window = self._windows.setdefault(scope, deque())
            while rate is not None and window and window[0] <= now - rate.per:
                window.popleft()
            if rate is not None and len(window) >= rate.count:
                wait = self.limits.retry_after or window[0] + rate.per - now
                self._penalty[scope] = now + max(1, math.ceil(wait))
                raise _too_many(wait)
        for scope, rate in scopes:
            if rate is not None:
                self._windows[scope].append(now)

    def _store(self, chat: Chat, text: str, entities: list[JSON], **fields: Any) -> ChatMessage:
        # Telegram never reuses an id, even after a message was deleted.
        message_id = chat.last_message_id = max(chat.messages, default=chat.last_message_id) + 1
        message = ChatMessage(message_id, chat.id, text, entities, int(self._wall()), **fields)
        chat.messages[message_id] = message
        return message

    def _queue(self, **payload: JSON) -> None:
        self._updates.append({"update_id": 100_000_000 + next(self._ids)} | payload)

    def _user_json(self, user: Chat) -> JSON:
        name = {"username": user.username} if user.username else {}
        person = {"id": user.id, "is_bot": False, "first_name": user.first_name or ""} | name
        return person | {"language_code": user.language_code or "id"}

    def _message_json(self, chat: Chat, m: ChatMessage, *, nested: bool = True) -> JSON:
        out: JSON = {"message_id": m.message_id}
        if m.sender is None and chat.type == "channel":
            out["sender_chat"] = chat.to_json()  # channel posts carry the channel, not the bot
        else:
            out["from"] = m.sender or self.bot_user
        out |= {"chat": chat.to_json(), "date": m.date}
        if m.edit_date:
            out["edit_date"] = m.edit_date
        if nested and m.reply_to in chat.messages:  # Telegram nests one level only
            out["reply_to_message"] = self._message_json(
                chat, chat.messages[m.reply_to], nested=False
            )
        out["text"] = m.text
        if m.entities:
            out["entities"] = m.entities
        if m.reply_markup:
            out["reply_markup"] = m.reply_markup
        return out

    def _deliver_webhooks(self) -> None:
        """While a webhook is set, POST queued updates to it one by one, in order, as Telegram does."""
        with httpx.Client(timeout=5.0) as client:
            while not self._closing.wait(0.02):
                with self._lock:
                    hook, update = self._webhook, (self._updates or [None])[0]
                if hook is None or update is None:
                    continue
                secret = hook.get("secret_token")
                headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
                error: str | None = None
                try:
                    response = client.post(hook["url"], json=update, headers=headers)
                    if not response.is_success:
                        status = f"{response.status_code} {response.reason_phrase}"
                        error = f"Wrong response from the webhook: {status}"
                except Exception as exc:  # shown in getWebhookInfo, as Telegram does
                    error = f"Connection failed: {exc!r}"
                with self._lock:
                    if error is not None:
                        self._webhook_error = (int(self._wall()), error)
                    elif self._updates and self._updates[0] is update:
                        self._updates.popleft()
                if error is not None:
                    self._closing.wait(0.1)  # Telegram backs off too


def _reply_to(chat: Chat, p: JSON) -> int | None:
    wanted = p.get("reply_parameters")
    if wanted is None and "reply_to_message_id" in p:  # before Bot API 7.0, still accepted
        keys = ("reply_to_message_id", "allow_sending_without_reply")
        wanted = dict(
            zip(("message_id", "allow_sending_without_reply"), map(p.get, keys), strict=True)
        )
    if not wanted:
        return None
    if wanted.get("message_id") in chat.messages:
        return int(wanted["message_id"])
    if wanted.get("allow_sending_without_reply"):
        return None
    raise _bad("message to be replied not found")


def _inline(p: JSON) -> JSON | None:
    markup = p.get("reply_markup")
    return markup if isinstance(markup, dict) and "inline_keyboard" in markup else None


def _scope(p: JSON) -> str:
    return f"{(p.get('scope') or {}).get('type', 'default')}/{p.get('language_code', '')}"


async def _read_params(request: Request) -> JSON:
    """Query string plus a JSON, urlencoded or multipart body (python-multipart is not installed)."""
    params: JSON = dict(request.query_params)
    body, kind = await request.body(), request.headers.get("content-type", "")
    if kind.startswith("application/json") and body:
        try:
            params |= json.loads(body)
        except (ValueError, TypeError):  # not JSON, or JSON but not an object
            raise _bad("can't parse JSON object") from None
    elif kind.startswith("application/x-www-form-urlencoded"):
        params |= parse_qsl(body.decode(), keep_blank_values=True)
    elif kind.startswith("multipart/form-data"):
        whole = BytesParser(EmailMessage, policy=HTTP).parsebytes(
            f"Content-Type: {kind}\r\n\r\n".encode() + body
        )
        for part in whole.iter_parts():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)  # decode=True on a non-multipart part
            name = str(part.get_param("name", header="content-disposition"))
            params[name] = payload if part.get_filename() else payload.decode()
    return params


def _decode(raw: JSON) -> JSON:
    """Decode form strings by field type, as Telegram does, so recorded params look alike."""
    out: JSON = {}
    for key, value in raw.items():
        if isinstance(value, str) and key in DECODED:
            try:
                value = json.loads(value)
            except ValueError:
                raise _bad(f"can't parse {key} JSON object") from None
        elif key == "chat_id" and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            value = int(value)
        out[key] = value
    return out


@contextmanager
def fake_telegram(
    token: str = TOKEN,
    *,
    limits: Limits = Limits(),
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> Iterator[FakeTelegram]:
    """Serve a FakeTelegram on 127.0.0.1; f"{fake.url}/bot" is the base_url for PTB's Bot.

    `limits` defaults to Telegram's published ones (sendMessage only); tests that are not
    about flooding but send fast may pass UNLIMITED. `clock` (monotonic seconds) drives the
    limits and Call.at; `wall` (Unix seconds) gives messages their date and edit_date.
    """
    fake = FakeTelegram(token, limits=limits, clock=clock, wall=wall)
    with serve(fake.app()) as url:
        fake.url = url
        courier = threading.Thread(target=fake._deliver_webhooks, name="fake-telegram-webhook")
        courier.start()
        try:
            yield fake
        finally:
            fake._closing.set()  # releases held requests and long polls, so uvicorn stops at once
            courier.join(timeout=10)

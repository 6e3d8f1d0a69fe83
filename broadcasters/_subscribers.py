"""The bot's subscribers and what each follows (bot_subscribers, bot_subscriptions); SQLite and PostgreSQL.

A follow is a component or branch id, "region:<branch region>", or "upstream" (every
e-Meterai service, i.e. every component that is not a branch). Each write is one short
transaction; races between two instances end in an upsert, never in an IntegrityError.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from status import db
from status.config import Config
from status.model import Event
from status.schema import bot_subscribers, bot_subscriptions, deliveries, targets

PREFIX = "telegram-dm:"  # a subscriber's delivery target is f"{PREFIX}{chat_id}"
UPSTREAM = "upstream"
FOLLOW_MAX = 100  # bot_subscriptions.follow


def target_of(chat_id: int) -> str:
    return f"{PREFIX}{chat_id}"


def chat_of(target: str) -> int | None:
    """The chat id in a delivery target, or None when `target` is not a subscriber's."""
    rest = target.removeprefix(PREFIX)
    if rest == target or not rest.lstrip("-").isdigit():
        return None
    return int(rest)


def follow_keys(event: Event, config: Config) -> set[str] | None:
    """Every follow that `event` is news for; None means everyone (a notice naming nothing)."""
    if event.incident_id is not None and not event.component_ids:
        return None
    return keys_for(event.component_ids, config)


def keys_for(component_ids: Collection[str], config: Config) -> set[str]:
    """The follows that news about `component_ids` reaches: each id and its region (or upstream)."""
    regions = {b.id: b.region for b in config.branches}
    keys = set(component_ids)
    for component in component_ids:
        keys.add(f"region:{regions[component]}" if component in regions else UPSTREAM)
    return keys


async def recipients(
    conn: AsyncConnection, keys: Collection[str] | None, *, unless: Collection[str] = ()
) -> list[tuple[int, str]]:
    """(chat id, language) of every reachable subscriber following one of `keys` (None: any)
    and none of `unless` (who heard of it already)."""
    query = (
        select(bot_subscribers.c.chat_id, bot_subscribers.c.language)
        .join(bot_subscriptions, bot_subscriptions.c.chat_id == bot_subscribers.c.chat_id)
        .where(bot_subscribers.c.blocked_at.is_(None))
    )
    if keys is not None:
        query = query.where(bot_subscriptions.c.follow.in_(sorted(keys)))
    if unless:
        heard = select(bot_subscriptions.c.chat_id).where(
            bot_subscriptions.c.follow.in_(sorted(unless))
        )
        query = query.where(bot_subscribers.c.chat_id.not_in(heard))
    rows = await conn.execute(query.distinct().order_by(bot_subscribers.c.chat_id))
    return [(int(r.chat_id), str(r.language)) for r in rows]


async def language_of(engine: AsyncEngine, chat_id: int) -> str | None:
    async with db.read(engine) as conn:
        found = await conn.execute(
            select(bot_subscribers.c.language).where(bot_subscribers.c.chat_id == chat_id)
        )
        language = found.scalar()
    return None if language is None else str(language)


async def touch(
    engine: AsyncEngine,
    chat_id: int,
    username: str | None,
    language: str,
    now: datetime,
    *,
    set_language: bool = False,
) -> str:
    """Record someone who talks to the bot; returns their language.

    A new subscriber gets `language`; an existing one keeps theirs unless `set_language`.
    Writing to the bot means they no longer block it.
    """
    async with db.write(engine) as conn:
        return await _ensure(conn, chat_id, username, language, now, set_language=set_language)


async def follow(
    engine: AsyncEngine,
    chat_id: int,
    what: str,
    username: str | None,
    language: str,
    now: datetime,
) -> bool:
    """Follow `what`; False when it was followed already."""
    async with db.write(engine) as conn:
        await _ensure(conn, chat_id, username, language, now)
        have = await conn.execute(
            select(bot_subscriptions.c.follow).where(
                bot_subscriptions.c.chat_id == chat_id, bot_subscriptions.c.follow == what
            )
        )
        if have.first() is not None:
            return False
        row = {"chat_id": chat_id, "follow": what, "created_at": now}
        await conn.execute(
            db.upsert_statement(conn, bot_subscriptions, [row], ("chat_id", "follow"))
        )
        # Someone who blocked the bot and came back: the dispatcher stopped their target then.
        await conn.execute(
            update(targets)
            .where(targets.c.id == target_of(chat_id), targets.c.disabled_at.is_not(None))
            .values(disabled_at=None, disabled_reason=None, updated_at=now)
        )
        return True


async def follows(engine: AsyncEngine, chat_id: int) -> list[str]:
    """What `chat_id` follows, oldest first."""
    async with db.read(engine) as conn:
        rows = await conn.execute(
            select(bot_subscriptions.c.follow)
            .where(bot_subscriptions.c.chat_id == chat_id)
            .order_by(bot_subscriptions.c.created_at, bot_subscriptions.c.follow)
        )
        return [str(r.follow) for r in rows]


async def unfollow(engine: AsyncEngine, chat_id: int, what: str | None) -> int:
    """Stop following `what` (None: everything); returns how many follows were removed."""
    condition = bot_subscriptions.c.chat_id == chat_id
    if what is not None:
        condition = condition & (bot_subscriptions.c.follow == what)
    async with db.write(engine) as conn:
        result = await conn.execute(delete(bot_subscriptions).where(condition))
        return int(result.rowcount or 0)


async def forget(engine: AsyncEngine, chat_id: int, reason: str, now: datetime) -> None:
    """Telegram says this chat is gone (blocked the bot, deleted their account): unsubscribe them.

    Their row stays with blocked_at set, so the record of who left and when is kept; deliveries
    still waiting for them are failed, so nothing stale reaches them if they come back.
    """
    async with db.write(engine) as conn:
        await conn.execute(
            update(bot_subscribers)
            .where(bot_subscribers.c.chat_id == chat_id)
            .values(blocked_at=now, updated_at=now)
        )
        await conn.execute(delete(bot_subscriptions).where(bot_subscriptions.c.chat_id == chat_id))
        await conn.execute(
            update(deliveries)
            .where(
                deliveries.c.target == target_of(chat_id),
                deliveries.c.status.in_(("pending", "sending")),
            )
            .values(status="failed", last_error=f"unsubscribed: {reason}"[:300])
        )


async def _ensure(
    conn: AsyncConnection,
    chat_id: int,
    username: str | None,
    language: str,
    now: datetime,
    *,
    set_language: bool = False,
) -> str:
    name = username[:100] if username else None
    found = (
        await conn.execute(
            select(bot_subscribers.c.language).where(bot_subscribers.c.chat_id == chat_id)
        )
    ).first()
    if found is None:
        row = {
            "chat_id": chat_id,
            "language": language,
            "username": name,
            "created_at": now,
            "updated_at": now,
            "blocked_at": None,
        }
        await conn.execute(db.upsert_statement(conn, bot_subscribers, [row], ("chat_id",)))
        return language
    values: dict[str, object] = {"username": name, "updated_at": now, "blocked_at": None}
    if set_language:
        values["language"] = language
    await conn.execute(
        update(bot_subscribers).where(bot_subscribers.c.chat_id == chat_id).values(**values)
    )
    return language if set_language else str(found.language)

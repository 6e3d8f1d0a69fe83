"""Telegram link codes for staff tokens (stored hashed, single use, expiring) and the links they make.

An admin issues a code for a token (`siaran token link-code`, or
`POST /api/v1/tokens/<id>/telegram-link-codes`); the staff member sends `/tautkan <code>` to
the bot from their own Telegram account, and from then on that Telegram user acts as the
token. Every lookup joins the token, so a revoked token stops working at once. Issuing,
linking and unlinking are written to the audit log in the same transaction as the change.

Codes are 8 characters from an alphabet without look-alikes (no 0/O, 1/I): 40 bits, so
guessing one within its lifetime (15 minutes by default) is hopeless; only their sha256 is
stored, like tokens'.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from status import db
from status.core import write_audit
from status.errors import InvalidError, NotFoundError
from status.model import Actor
from status.schema import staff_link_codes, staff_telegram_links, tokens

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
LENGTH = 8
DEFAULT_TTL = timedelta(minutes=15)
TTL_MIN, TTL_MAX = timedelta(minutes=1), timedelta(hours=24)
VIA = "telegram"  # the audit log's remote_addr for what staff do through the bot


@dataclass(frozen=True, slots=True)
class Issued:
    code: str  # shown once; only its hash is stored
    token_id: str
    token_name: str
    expires_at: datetime


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalize(typed: str) -> str | None:
    """What someone typed ("abcd-efgh", "ABCD EFGH") as a code, or None when it cannot be one."""
    code = "".join(typed.split()).replace("-", "").upper()
    if len(code) != LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def check_ttl(ttl: timedelta) -> timedelta:
    """The lifetime, or InvalidError (field "ttl") outside 1 minute to 24 hours."""
    if not TTL_MIN <= ttl <= TTL_MAX:
        raise InvalidError("a link code lives from 1m to 24h", field="ttl")
    return ttl


async def issue(
    conn: AsyncConnection,
    token_id: str,
    actor: Actor,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
) -> Issued:
    """A new code for a live token, in the caller's write transaction, audited as `actor`.

    Raises NotFoundError for an unknown or revoked token, InvalidError for a ttl out of range.
    """
    check_ttl(ttl)
    row = (
        await conn.execute(
            select(tokens.c.id, tokens.c.name).where(
                tokens.c.id == token_id, tokens.c.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None:
        raise NotFoundError(f'no active token with id "{token_id}"')
    code = new_code()
    expires_at = now + ttl
    await conn.execute(
        staff_link_codes.insert().values(
            code_hash=hash_code(code),
            token_id=row.id,
            created_by=actor.name[:100],
            created_at=now,
            expires_at=expires_at,
            used_at=None,
        )
    )
    detail = {"token_name": row.name, "expires_at": expires_at.isoformat()}
    await write_audit(conn, now, actor, "telegram.link_code", row.id, "ok", detail)
    return Issued(code, row.id, row.name, expires_at)


def _actor(name: str, scopes: str, token_id: str, user_id: int, username: str | None) -> Actor:
    who = f"telegram user {user_id}" + (f" (@{username})" if username else "")
    return Actor(name, tuple(scopes.split(",")), token_id=token_id, remote_addr=VIA, user_agent=who)


async def redeem(
    conn: AsyncConnection, typed: str, user_id: int, username: str | None, now: datetime
) -> Actor | None:
    """Link Telegram user `user_id` to the code's token; None when the code is unknown, used,
    expired or its token revoked (all alike, so nobody learns which). In a write transaction.
    """
    code = normalize(typed)
    if code is None:
        return None
    # The conditional UPDATE is the claim: of two people racing with one code, one wins.
    claimed = await conn.execute(
        update(staff_link_codes)
        .where(
            staff_link_codes.c.code_hash == hash_code(code),
            staff_link_codes.c.used_at.is_(None),
            staff_link_codes.c.expires_at > now,
        )
        .values(used_at=now)
        .returning(staff_link_codes.c.token_id)
    )
    token_id = claimed.scalar_one_or_none()
    if token_id is None:
        return None
    token = (
        await conn.execute(
            select(tokens).where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
        )
    ).first()
    if token is None:
        return None
    name = username[:100] if username else None
    row = {
        "telegram_user_id": user_id,
        "token_id": token.id,
        "username": name,
        "linked_at": now,
        "unlinked_at": None,
    }
    await conn.execute(db.upsert_statement(conn, staff_telegram_links, [row], ["telegram_user_id"]))
    actor = _actor(token.name, token.scopes, token.id, user_id, name)
    await write_audit(
        conn, now, actor, "telegram.link", token.id, "ok", {"telegram_user_id": user_id}
    )
    return actor


async def actor_for(conn: AsyncConnection, user_id: int) -> Actor | None:
    """The staff member a Telegram user acts as: a live link to a live token, else None."""
    row = (
        await conn.execute(
            select(tokens.c.id, tokens.c.name, tokens.c.scopes, staff_telegram_links.c.username)
            .join(tokens, tokens.c.id == staff_telegram_links.c.token_id)
            .where(
                staff_telegram_links.c.telegram_user_id == user_id,
                staff_telegram_links.c.unlinked_at.is_(None),
                tokens.c.revoked_at.is_(None),
            )
        )
    ).first()
    if row is None:
        return None
    return _actor(row.name, row.scopes, row.id, user_id, row.username)


async def unlink(conn: AsyncConnection, user_id: int, now: datetime) -> Actor | None:
    """End a Telegram user's link (audited); the actor it was, or None when there was none."""
    actor = await actor_for(conn, user_id)
    if actor is None:
        return None
    await conn.execute(
        update(staff_telegram_links)
        .where(staff_telegram_links.c.telegram_user_id == user_id)
        .values(unlinked_at=now)
    )
    target = actor.token_id or ""
    await write_audit(
        conn, now, actor, "telegram.unlink", target, "ok", {"telegram_user_id": user_id}
    )
    return actor

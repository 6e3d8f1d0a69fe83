"""create/verify/revoke staff tokens (stored hashed); scopes admin | branch:<id>."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from status import db
from status.model import Actor
from status.schema import tokens

PREFIX = "siaran_"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def hash_token(secret: str) -> str:
    """sha256 hex: the token carries 256 random bits, so a slow password hash would add nothing."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(text: str, known_branches: Iterable[str]) -> tuple[str, ...]:
    """Parse "admin" or "branch:kcu-medan,branch:kcu-denpasar"; raises ValueError naming the problem."""
    known = set(known_branches)
    scopes: list[str] = []
    for raw in text.split(","):
        scope = raw.strip()
        if scope == "admin":
            scopes.append(scope)
        elif scope.startswith("branch:"):
            branch = scope[len("branch:") :]
            if branch not in known:
                hint = ", ".join(sorted(known)) or "none configured"
                raise ValueError(f'unknown branch "{branch}" in scope; known branches: {hint}')
            scopes.append(scope)
        else:
            raise ValueError(f'unknown scope "{scope}"; expected "admin" or "branch:<branch id>"')
    if "admin" in scopes and len(scopes) > 1:
        raise ValueError('"admin" already covers every branch; give it alone')
    return tuple(dict.fromkeys(scopes))


async def create_token(
    engine: AsyncEngine, name: str, scopes: Sequence[str], now: datetime
) -> tuple[TokenInfo, str]:
    """Store a new token's hash; returns its info and the secret, which is never stored."""
    if not name.strip() or len(name) > 100:
        raise ValueError("a token name is 1 to 100 characters")
    secret = PREFIX + secrets.token_urlsafe(32)
    token_id = secrets.token_hex(6)
    async with db.write(engine) as conn:
        await conn.execute(
            insert(tokens).values(
                id=token_id,
                name=name.strip(),
                token_hash=hash_token(secret),
                scopes=",".join(scopes),
                created_at=now,
                last_used_at=None,
                revoked_at=None,
            )
        )
    return TokenInfo(token_id, name.strip(), tuple(scopes), now, None, None), secret


async def list_tokens(engine: AsyncEngine) -> list[TokenInfo]:
    async with db.read(engine) as conn:
        rows = await conn.execute(select(tokens).order_by(tokens.c.created_at, tokens.c.id))
        return [
            TokenInfo(
                r.id, r.name, tuple(r.scopes.split(",")), r.created_at, r.last_used_at, r.revoked_at
            )
            for r in rows
        ]


async def revoke_token(engine: AsyncEngine, id_or_name: str, now: datetime) -> list[str]:
    """Revoke by id, or by name if the name is unique among live tokens; returns revoked ids."""
    async with db.write(engine) as conn:
        rows = list(
            await conn.execute(
                select(tokens.c.id).where(
                    tokens.c.revoked_at.is_(None),
                    or_(tokens.c.id == id_or_name, tokens.c.name == id_or_name),
                )
            )
        )
        if len(rows) > 1:
            raise ValueError(f'"{id_or_name}" names {len(rows)} tokens; revoke by id')
        ids = [r.id for r in rows]
        if ids:
            await conn.execute(update(tokens).where(tokens.c.id.in_(ids)).values(revoked_at=now))
        return ids


async def verify_token(conn: AsyncConnection, secret: str) -> Actor | None:
    """The Actor for a live token, or None; never says why (unknown and revoked look alike)."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    row = (
        await conn.execute(select(tokens).where(tokens.c.token_hash == hash_token(secret)))
    ).first()
    if row is None or row.revoked_at is not None:
        return None
    return Actor(row.name, tuple(row.scopes.split(",")), token_id=row.id)


async def touch(conn: AsyncConnection, token_id: str | None, now: datetime) -> None:
    """Record use inside a write transaction (a read transaction must not write on SQLite)."""
    if token_id is not None:
        await conn.execute(update(tokens).where(tokens.c.id == token_id).values(last_used_at=now))

"""Console sessions: a random id in a cookie, only its sha256 stored; idle and absolute expiry.

Cookie rule (the same for setting and reading):

- Secure, and named with the `__Host-` prefix (which also pins Path=/ and forbids Domain), when
  the request arrived over https, or when `site.public_url` is https and the request is for
  that host (a TLS-terminating proxy that does not say so). A plain-http request to another
  host (a test or a first look on 127.0.0.1) gets a plain cookie named without the prefix, so
  the console still works there; nobody should run it that way in production.
- HttpOnly always: no script of ours reads it, and none injected should.
- SameSite=Lax: a link to an incident shared in the staff Telegram group opens signed in
  (Strict would show the sign-in form first), while a cross-site POST never carries the
  cookie; every form also needs its CSRF token, so Lax gives up nothing that Strict protects.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from status import db
from status.model import Actor
from status.schema import staff_sessions, tokens

NAME = "siaran_staff"
IDLE = timedelta(hours=12)  # a shift, with a break
ABSOLUTE = timedelta(days=7)  # then sign in again, whatever happens
TOUCH_EVERY = timedelta(minutes=5)  # last_seen_at is written at most this often


@dataclass(frozen=True, slots=True)
class Session:
    id_hash: str
    actor: Actor
    csrf_secret: str
    expires_at: datetime


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def is_secure(request: Request, public_url: str) -> bool:
    if request.url.scheme == "https":
        return True
    public = urlsplit(public_url)
    return public.scheme == "https" and public.hostname == request.url.hostname


def cookie_name(request: Request, public_url: str, base: str = NAME) -> str:
    return f"__Host-{base}" if is_secure(request, public_url) else base


def set_cookie(
    response: Response,
    request: Request,
    public_url: str,
    value: str,
    max_age: int,
    base: str = NAME,
) -> None:
    response.set_cookie(
        cookie_name(request, public_url, base),
        value,
        max_age=max_age,
        path="/",
        secure=is_secure(request, public_url),
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, request: Request, public_url: str, base: str = NAME) -> None:
    response.delete_cookie(
        cookie_name(request, public_url, base),
        path="/",
        secure=is_secure(request, public_url),
        httponly=True,
        samesite="lax",
    )


async def start(engine: AsyncEngine, token_id: str, now: datetime, remote: str) -> str:
    """A new session for a verified token; returns the cookie value (never stored)."""
    secret = secrets.token_urlsafe(32)
    async with db.write(engine) as conn:
        await conn.execute(
            insert(staff_sessions).values(
                id_hash=digest(secret),
                token_id=token_id,
                csrf_secret=secrets.token_hex(32),
                created_at=now,
                last_seen_at=now,
                expires_at=now + ABSOLUTE,
                ended_at=None,
                remote=remote[:64],
            )
        )
    return secret


async def find(engine: AsyncEngine, secret: str, request: Request, now: datetime) -> Session | None:
    """The live session for a cookie value, or None: unknown, ended, idle too long, past its
    absolute expiry, or its token revoked."""
    if not secret or len(secret) > 100:
        return None
    id_hash = digest(secret)
    async with db.read(engine) as conn:
        row = (
            await conn.execute(
                select(staff_sessions, tokens.c.name, tokens.c.scopes, tokens.c.revoked_at)
                .join(tokens, tokens.c.id == staff_sessions.c.token_id)
                .where(staff_sessions.c.id_hash == id_hash)
            )
        ).first()
    if (
        row is None
        or row.ended_at is not None
        or row.revoked_at is not None
        or now >= row.expires_at
        or now - row.last_seen_at >= IDLE
    ):
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        async with db.write(engine) as conn:
            await conn.execute(
                update(staff_sessions)
                .where(staff_sessions.c.id_hash == id_hash)
                .values(last_seen_at=now)
            )
    actor = Actor(
        row.name,
        tuple(row.scopes.split(",")),
        token_id=row.token_id,
        remote_addr=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", ""),
    )
    return Session(id_hash, actor, row.csrf_secret, row.expires_at)


async def end(engine: AsyncEngine, id_hash: str, now: datetime) -> None:
    async with db.write(engine) as conn:
        await conn.execute(
            update(staff_sessions).where(staff_sessions.c.id_hash == id_hash).values(ended_at=now)
        )

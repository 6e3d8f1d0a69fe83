"""Idempotency-Key: a retried write returns the first response and writes nothing twice.

The record is written in the same transaction as the change it answers for, so either both
exist or neither does. Records are kept for KEEP (as Stripe does, 24 hours): long enough for any
client's retries, short enough that the table does not grow for ever; each write clears its
token's expired records.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from status.schema import idempotency
from status.web.errors import APIError

HEADER = "idempotency-key"
KEY_MAX = 200
KEEP = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: str


def key_of(request: Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key or len(key) > KEY_MAX or not key.isprintable() or not key.isascii():
        raise APIError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {KEY_MAX} printable ASCII characters",
            field="Idempotency-Key",
        )
    return key


def fingerprint(request: Request, body: bytes) -> str:
    return hashlib.sha256(f"{request.method} {request.url.path}\n".encode() + body).hexdigest()


async def find(
    conn: AsyncConnection, token_id: str, key: str, print_: str, now: datetime
) -> Replay | None:
    """The stored answer for this key, if one younger than KEEP exists."""
    row = (
        await conn.execute(
            select(idempotency).where(
                idempotency.c.token_id == token_id,
                idempotency.c.key == key,
                idempotency.c.created_at >= now - KEEP,
            )
        )
    ).first()
    if row is None:
        return None
    if row.fingerprint != print_:
        raise APIError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different request",
            field="Idempotency-Key",
        )
    return Replay(row.status_code, row.body)


async def remember(
    conn: AsyncConnection,
    token_id: str,
    key: str,
    print_: str,
    status: int,
    body: str,
    now: datetime,
) -> None:
    await conn.execute(
        delete(idempotency).where(
            idempotency.c.token_id == token_id, idempotency.c.created_at < now - KEEP
        )
    )
    await conn.execute(
        insert(idempotency).values(
            token_id=token_id,
            key=key,
            fingerprint=print_,
            status_code=status,
            body=body,
            created_at=now,
        )
    )

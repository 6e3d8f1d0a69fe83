"""Sign-in throttling per client address, kept in the database so it holds across instances.

LIMIT failures within WINDOW block that address for WINDOW from the failure that reached the
limit; a success clears the count. A blocked address gets 429 even with a good token, so the
block cannot be used to test guesses.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from status import db
from status.schema import signin_failures

LIMIT = 5
WINDOW = timedelta(minutes=15)


def source_of(host: str) -> str:
    return host[:64] or "unknown"


async def blocked_until(engine: AsyncEngine, source: str, now: datetime) -> datetime | None:
    async with db.read(engine) as conn:
        row = (
            await conn.execute(
                select(signin_failures.c.blocked_until).where(signin_failures.c.source == source)
            )
        ).first()
    if row is None or row.blocked_until is None or row.blocked_until <= now:
        return None
    blocked: datetime = row.blocked_until
    return blocked


async def record_failure(engine: AsyncEngine, source: str, now: datetime) -> datetime | None:
    """Count one failed sign-in; returns until when the source is now blocked, if it is."""
    async with db.write(engine) as conn:
        # An atomic increment, so two instances counting at once do not lose a failure.
        counted = await conn.execute(
            update(signin_failures)
            .where(
                signin_failures.c.source == source, signin_failures.c.window_start > now - WINDOW
            )
            .values(failures=signin_failures.c.failures + 1)
        )
        if not counted.rowcount:
            row = {"source": source, "failures": 1, "window_start": now, "blocked_until": None}
            await conn.execute(db.upsert_statement(conn, signin_failures, [row], ["source"]))
        failures = (
            await conn.execute(
                select(signin_failures.c.failures).where(signin_failures.c.source == source)
            )
        ).scalar_one()
        if failures < LIMIT:
            return None
        until = now + WINDOW
        await conn.execute(
            update(signin_failures)
            .where(signin_failures.c.source == source)
            .values(blocked_until=until)
        )
        return until


async def clear(engine: AsyncEngine, source: str) -> None:
    async with db.write(engine) as conn:
        await conn.execute(delete(signin_failures).where(signin_failures.c.source == source))

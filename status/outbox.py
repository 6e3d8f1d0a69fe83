"""append(event) inside core's transaction; ids_after(floor) for readers that follow the log
(with status.event_cursor, since ids can commit out of order); follow(after_id) reads a range."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from status import db
from status.model import Event
from status.schema import events


async def append(
    conn: AsyncConnection,
    *,
    kind: str,
    at: datetime,
    incident_id: str | None,
    component_ids: Iterable[str],
    payload: Mapping[str, Any],
) -> int:
    """Write one event in the caller's transaction; it exists exactly when the change does."""
    result = await conn.execute(
        insert(events)
        .values(
            kind=kind,
            created_at=at,
            incident_id=incident_id,
            component_ids=sorted(set(component_ids)),
            payload=dict(payload),
        )
        .returning(events.c.id)
    )
    return int(result.scalar_one())


def as_event(row: Any) -> Event:
    return Event(
        row.id, row.kind, row.created_at, row.incident_id, tuple(row.component_ids), row.payload
    )


async def follow(engine: AsyncEngine, after_id: int, *, limit: int = 500) -> list[Event]:
    """Events with id > after_id committed now, oldest first (a read, not a cursor: a lower id
    may still commit later, see status.event_cursor)."""
    async with db.read(engine) as conn:
        rows = await conn.execute(
            select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
        )
        return [as_event(r) for r in rows]


async def ids_after(conn: AsyncConnection, floor: int) -> list[int]:
    """Every event id above `floor` now visible (see status.event_cursor)."""
    rows = await conn.execute(select(events.c.id).where(events.c.id > floor).order_by(events.c.id))
    return [int(i) for i in rows.scalars()]


async def latest_id(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.coalesce(func.max(events.c.id), 0)))).scalar_one())

"""What was sent where and what failed: read the delivery log, retry failed deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from status.schema import deliveries, targets

STATUSES = ("pending", "sending", "sent", "failed")


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    event_id: int
    target: str
    incident_id: str | None
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    receipt: str | None
    created_at: datetime
    sent_at: datetime | None
    target_disabled: str | None  # why the target is stopped, if it is


async def list_deliveries(
    conn: AsyncConnection,
    *,
    status: str | None = None,
    target: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[Delivery]:
    """Newest first."""
    query = (
        select(deliveries, targets.c.disabled_reason)
        .join(targets, targets.c.id == deliveries.c.target, isouter=True)
        .order_by(deliveries.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(deliveries.c.status == status)
    if target is not None:
        query = query.where(deliveries.c.target == target)
    if before_id is not None:
        query = query.where(deliveries.c.id < before_id)
    return [
        Delivery(
            r.id,
            r.event_id,
            r.target,
            r.incident_id,
            r.status,
            r.attempts,
            r.next_attempt_at,
            r.last_error,
            r.receipt,
            r.created_at,
            r.sent_at,
            r.disabled_reason,
        )
        for r in await conn.execute(query)
    ]


async def retry(
    conn: AsyncConnection, now: datetime, *, ids: Sequence[int] = (), target: str | None = None
) -> int:
    """Put failed deliveries back in line (and re-enable their targets); returns how many."""
    conditions = [deliveries.c.status == "failed"]
    if ids:
        conditions.append(deliveries.c.id.in_(list(ids)))
    if target is not None:
        conditions.append(deliveries.c.target == target)
    picked = [
        r[0] for r in await conn.execute(select(deliveries.c.target).distinct().where(*conditions))
    ]
    result = await conn.execute(
        update(deliveries)
        .where(*conditions)
        .values(status="pending", next_attempt_at=now, attempts=0)
    )
    if picked:
        await conn.execute(
            update(targets)
            .where(targets.c.id.in_(picked))
            .values(disabled_at=None, disabled_reason=None, updated_at=now)
        )
    return int(result.rowcount or 0)

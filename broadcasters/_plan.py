"""Planning: one delivery row per target that wants an event, rendered once; events marked planned.

Safe with several processes on one database. Single targets (channels, webhooks) are planned
first in a short transaction, so a channel post never waits for a fan-out to 100,000
subscribers; fan-outs are planned one event at a time, oldest first, in chunks (a crash
half-way redoes the event, and the unique (event, target) key makes the redo write nothing
twice). The Dispatcher (_dispatch.py) runs a Planner beside its sending.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from broadcasters._base import Broadcaster, FanOut
from status import db, outbox
from status.clock import Clock
from status.model import Event
from status.schema import deliveries, events, targets

log = logging.getLogger(__name__)

FAN_OUT_CHUNK = 5000  # recipients per planning transaction: short write locks on SQLite


def insert_new(conn: AsyncConnection, table: Any, keys: Sequence[str]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING: planning twice writes nothing twice."""
    dialect: Any = sqlite if conn.dialect.name == "sqlite" else postgresql
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(keys))


class Planner:
    """Writes the deliveries of unplanned events for this instance's targets and fan-outs."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        by_target: Mapping[str, Broadcaster],
        fanouts: Sequence[FanOut],
    ) -> None:
        self.engine, self.clock = engine, clock
        self.by_target, self.fanouts = by_target, fanouts

    async def plan(self, batch: int = 200, *, on_progress: Callable[[], None] | None = None) -> int:
        """Write deliveries for up to `batch` unplanned events; returns how many were planned."""
        count = await self._plan_targets(batch)
        if on_progress is not None:
            on_progress()  # channels and webhooks can be sent to now
        if self.fanouts:
            while await self._plan_fan_out(on_progress):
                count += 1
        return count

    async def _plan_targets(self, batch: int) -> int:
        """Single targets' deliveries; events no fan-out wants are marked planned here."""
        now = self.clock.now()
        async with db.write(self.engine) as conn:
            query = select(events).where(events.c.planned.is_(False)).order_by(events.c.id)
            rows = [outbox.as_event(r) for r in await conn.execute(query.limit(batch))]
            if not rows:
                return 0
            since = await self._since(conn)
            planned = [d for event in rows for d in self._single(event, since, now)]
            if planned:
                await conn.execute(insert_new(conn, deliveries, ["event_id", "target"]), planned)
            done = [e.id for e in rows if not any(f.wants(e) for f in self.fanouts)]
            if done:
                await conn.execute(update(events).where(events.c.id.in_(done)).values(planned=True))
            return len(done)

    async def _since(self, conn: AsyncConnection) -> dict[str, int]:
        found = await conn.execute(
            select(targets.c.id, targets.c.since_event_id).where(
                targets.c.id.in_(list(self.by_target))
            )
        )
        return {r.id: r.since_event_id for r in found}

    def _single(self, event: Event, since: dict[str, int], now: datetime) -> list[dict[str, Any]]:
        planned = []
        for target, broadcaster in self.by_target.items():
            if event.id <= since.get(target, 0) or not broadcaster.wants(event):
                continue
            try:
                body, status, error = broadcaster.render(event).body, "pending", None
            except Exception as exc:  # a renderer bug must not block everyone else
                log.exception("rendering event %d for %s failed", event.id, target)
                body, status, error = "", "failed", f"render failed: {exc!r}"[:300]
            planned.append(_row(event, target, body, now, status=status, error=error))
        return planned

    async def _plan_fan_out(self, on_progress: Callable[[], None] | None) -> bool:
        """Fan the oldest unplanned event out to its recipients; False when none is left.

        Events are fanned out strictly in order, so a recipient's deliveries are in event
        order. PostgreSQL: the row lock makes a second process wait, then see it planned.
        """
        # Recipients are read outside any write: on SQLite a write holds the one write lock,
        # and the sends' bookkeeping must not wait for a 100,000-row read.
        async with db.read(self.engine) as conn:
            query = select(events).where(events.c.planned.is_(False)).order_by(events.c.id)
            row = (await conn.execute(query.limit(1))).first()
            if row is None:
                return False
            event, now = outbox.as_event(row), self.clock.now()
            rows = []
            for fanout in self.fanouts:
                if fanout.wants(event):
                    rows += await self._fan_out(conn, fanout, event, now)
        chunks = [rows[i : i + FAN_OUT_CHUNK] for i in range(0, len(rows), FAN_OUT_CHUNK)]
        for index, chunk in enumerate(chunks or [[]]):
            last = index == max(len(chunks) - 1, 0)
            async with db.write(self.engine) as conn:
                if index == 0:
                    query = select(events.c.planned).where(events.c.id == event.id)
                    if not db.is_sqlite(self.engine):
                        query = query.with_for_update()
                    if (await conn.execute(query)).scalar():
                        return True  # another process planned it meanwhile
                    # The single targets' rows, in case the event missed _plan_targets.
                    single = self._single(event, await self._since(conn), now)
                    if single:
                        await conn.execute(
                            insert_new(conn, deliveries, ["event_id", "target"]), single
                        )
                await self._insert_fan_out(conn, chunk, now)
                if last:
                    await self._mark_planned(conn, event.id)
            if not last:
                # News written meanwhile reaches channels now, not after the last recipient.
                await self._plan_targets(200)
                if on_progress is not None:
                    on_progress()  # the first recipients can be sent to while the rest is written
        return True

    async def _mark_planned(self, conn: AsyncConnection, event_id: int) -> None:
        await conn.execute(update(events).where(events.c.id == event_id).values(planned=True))

    async def _insert_fan_out(
        self, conn: AsyncConnection, rows: list[dict[str, Any]], now: datetime
    ) -> None:
        if not rows:
            return
        new = [{"id": r["target"], "since_event_id": 0, "updated_at": now} for r in rows]
        await conn.execute(insert_new(conn, targets, ["id"]), new)
        await conn.execute(insert_new(conn, deliveries, ["event_id", "target"]), rows)

    async def _fan_out(
        self, conn: AsyncConnection, fanout: FanOut, event: Event, now: datetime
    ) -> list[dict[str, Any]]:
        """One delivery per recipient, rendered once per language."""
        recipients = await fanout.recipients(conn, event)
        languages = {lang for _, lang in recipients}
        bodies = {lang: fanout.render_for(event, lang) for lang in languages}
        return [_row(event, target, bodies[lang], now) for target, lang in recipients]


def _row(
    event: Event,
    target: str,
    body: str,
    now: datetime,
    *,
    status: str = "pending",
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event.id,
        "target": target,
        "incident_id": event.incident_id,
        "status": status,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": error,
        "body": body,
        "created_at": now,
    }

"""Outbox consumer: lease (event, target), render, deliver, record, back off; ordered per target.

Two steps, each safe with several processes on one database:

1. plan: claim events not yet planned and write one delivery row per target that wants the
   event, rendered once, in the same transaction that marks the event planned;
2. send: lease targets that have due deliveries (a conditional UPDATE, so one process per
   target at a time) and send each target's deliveries strictly in event order. A delivery
   is marked "sending" (committed) before the call, so after a crash exactly the in-flight
   ones are sent again: at-least-once, never dropped.

A retryable failure backs off (exponential with jitter, or the target's retry_after) and
holds that target's later deliveries back, keeping its order; other targets go on. A
permanent failure disables the target and ops see it in `siaran deliveries`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from broadcasters._base import Broadcaster, DeliveryError, FanOut, Message
from status import db, outbox
from status.clock import Clock
from status.schema import deliveries, events, receipts, targets

log = logging.getLogger(__name__)

OPEN = ("pending", "sending")
BACKOFF_FIRST = timedelta(seconds=2)
BACKOFF_MAX = timedelta(minutes=15)


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """2 s, 4 s, 8 s … capped at 15 min, each scaled by 0.5 to 1.5 so retries don't stampede."""
    base: timedelta = min(BACKOFF_FIRST * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)
    return base * (0.5 + rng.random())


class Dispatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        broadcasters: Sequence[Broadcaster],
        *,
        fanouts: Sequence[FanOut] = (),
        instance_id: str | None = None,
        rng: random.Random | None = None,
        lease: timedelta = timedelta(seconds=30),
        workers: int = 64,
        poll_every: timedelta = timedelta(milliseconds=500),
        max_attempts: int = 20,
    ) -> None:
        self.engine, self.clock = engine, clock
        self.by_target = {b.target: b for b in broadcasters}
        self.fanouts = list(fanouts)
        self.instance_id = instance_id or f"dispatch-{secrets.token_hex(4)}"
        self._rng = rng or random.Random()  # noqa: S311 - retry jitter, not security
        self._lease, self._workers = lease, workers
        self._poll_every, self._max_attempts = poll_every, max_attempts
        self._wake = asyncio.Event()

    async def start(self) -> None:
        """Register this instance's targets; one seen for the first time starts from now."""
        now = self.clock.now()
        async with db.write(self.engine) as conn:
            newest = await outbox.latest_id(conn)
            known = {
                r[0]
                for r in await conn.execute(
                    select(targets.c.id).where(targets.c.id.in_(list(self.by_target)))
                )
            }
            new = [t for t in self.by_target if t not in known]
            if new:
                await conn.execute(
                    insert(targets),
                    [{"id": t, "since_event_id": newest, "updated_at": now} for t in new],
                )

    async def on_commit(self, _event_id: int) -> None:
        """Core listener: news was written; plan and send now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Loop until cancelled."""
        while True:
            self._wake.clear()
            try:
                while await self.plan():
                    pass
                await self.send_due()
            except Exception:  # the loop outlives a database hiccup; the next pass retries
                log.exception("dispatch pass failed")
            sleeper = asyncio.ensure_future(
                self.clock.sleep_until(self.clock.now() + self._poll_every)
            )
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, woken):
                    task.cancel()

    async def plan(self, batch: int = 200) -> int:
        """Write deliveries for up to `batch` unplanned events; returns how many were planned."""
        now = self.clock.now()
        async with db.write(self.engine) as conn:
            query = select(events).where(events.c.planned.is_(False)).order_by(events.c.id)
            if not db.is_sqlite(self.engine):
                query = query.with_for_update(skip_locked=True)
            rows = list(await conn.execute(query.limit(batch)))
            if not rows:
                return 0
            since = {
                r.id: r.since_event_id
                for r in await conn.execute(
                    select(targets.c.id, targets.c.since_event_id).where(
                        targets.c.id.in_(list(self.by_target))
                    )
                )
            }
            planned: list[dict[str, object]] = []
            for row in rows:
                event = outbox.as_event(row)
                for target, broadcaster in self.by_target.items():
                    if event.id <= since.get(target, 0) or not broadcaster.wants(event):
                        continue
                    try:
                        body, status, error = broadcaster.render(event).body, "pending", None
                    except Exception as exc:  # a renderer bug must not block everyone else
                        log.exception("rendering event %d for %s failed", event.id, target)
                        body, status, error = "", "failed", f"render failed: {exc!r}"[:300]
                    planned.append(
                        {
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
                    )
            for row in rows:
                event = outbox.as_event(row)
                for fanout in self.fanouts:
                    if fanout.wants(event):
                        planned.extend(await self._fan_out(conn, fanout, event, now))
            if planned:
                await conn.execute(insert(deliveries), planned)
                known = {
                    r[0]
                    for r in await conn.execute(
                        select(targets.c.id).where(targets.c.id.in_({p["target"] for p in planned}))
                    )
                }
                new = sorted({str(p["target"]) for p in planned} - known)
                if new:
                    await conn.execute(insert(targets), [{"id": t, "updated_at": now} for t in new])
            await conn.execute(
                update(events).where(events.c.id.in_([r.id for r in rows])).values(planned=True)
            )
            return len(rows)

    async def _fan_out(
        self, conn: Any, fanout: FanOut, event: Any, now: datetime
    ) -> list[dict[str, object]]:
        """One delivery per recipient, rendered once per language."""
        recipients = await fanout.recipients(conn, event)
        if not recipients:
            return []
        bodies = {lang: fanout.render_for(event, lang) for lang in {lang for _, lang in recipients}}
        ids = [t for t, _ in recipients]
        known: set[str] = set()
        for chunk in range(0, len(ids), 500):
            known |= {
                r[0]
                for r in await conn.execute(
                    select(targets.c.id).where(targets.c.id.in_(ids[chunk : chunk + 500]))
                )
            }
        new = [t for t in ids if t not in known]
        if new:
            await conn.execute(
                insert(targets), [{"id": t, "since_event_id": 0, "updated_at": now} for t in new]
            )
        return [
            {
                "event_id": event.id,
                "target": target,
                "incident_id": event.incident_id,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": None,
                "body": bodies[lang],
                "created_at": now,
            }
            for target, lang in recipients
        ]

    def _owner(self, target: str) -> Broadcaster | FanOut | None:
        found = self.by_target.get(target)
        if found is not None:
            return found
        return next((f for f in self.fanouts if target.startswith(f.prefix)), None)

    async def send_due(self) -> int:
        """Send every due delivery of the targets this instance can lease; returns sends."""
        claimed = await self._claim(self.clock.now())
        gate = asyncio.Semaphore(self._workers)

        async def drain(target: str) -> int:
            async with gate:
                return await self._drain(target)

        sent = await asyncio.gather(*(drain(t) for t in claimed))
        return sum(sent)

    async def _claim(self, now: datetime) -> list[str]:
        mine = list(self.by_target)
        ours: list[ColumnElement[bool]] = [deliveries.c.target.in_(mine)] if mine else []
        ours += [deliveries.c.target.startswith(f.prefix) for f in self.fanouts]
        if not ours:
            return []
        async with db.write(self.engine) as conn:
            # Only targets that can be leased now: a stopped target's backlog, or one another
            # process is draining, must not crowd out the rest.
            due = [
                r[0]
                for r in await conn.execute(
                    select(deliveries.c.target)
                    .distinct()
                    .join(targets, targets.c.id == deliveries.c.target)
                    .where(
                        deliveries.c.status.in_(OPEN),
                        deliveries.c.next_attempt_at <= now,
                        or_(*ours),
                        targets.c.disabled_at.is_(None),
                        or_(
                            targets.c.lease_until.is_(None),
                            targets.c.lease_until < now,
                            targets.c.lease_owner == self.instance_id,
                        ),
                    )
                    .limit(self._workers * 8)
                )
            ]
            if not due:
                return []
            await conn.execute(
                update(targets)
                .where(
                    targets.c.id.in_(due),
                    targets.c.disabled_at.is_(None),
                    or_(
                        targets.c.lease_until.is_(None),
                        targets.c.lease_until < now,
                        targets.c.lease_owner == self.instance_id,
                    ),
                )
                .values(lease_owner=self.instance_id, lease_until=now + self._lease)
            )
            return [
                r[0]
                for r in await conn.execute(
                    select(targets.c.id).where(
                        targets.c.id.in_(due), targets.c.lease_owner == self.instance_id
                    )
                )
            ]

    async def _drain(self, target: str) -> int:
        """Send this target's open deliveries in event order until one must wait."""
        broadcaster = self._owner(target)
        if broadcaster is None:
            return 0
        sent = 0
        try:
            while True:
                now = self.clock.now()
                async with db.write(self.engine) as conn:
                    row = (
                        await conn.execute(
                            select(deliveries)
                            .where(deliveries.c.target == target, deliveries.c.status.in_(OPEN))
                            .order_by(deliveries.c.event_id)
                            .limit(1)
                        )
                    ).first()
                    if row is None or row.next_attempt_at > now:
                        return sent  # nothing left, or the oldest must wait: order holds
                    await conn.execute(
                        update(deliveries)
                        .where(deliveries.c.id == row.id)
                        .values(status="sending", attempts=row.attempts + 1)
                    )
                    await conn.execute(
                        update(targets)
                        .where(targets.c.id == target)
                        .values(lease_until=now + self._lease)
                    )
                    previous = None
                    if row.incident_id is not None:
                        previous = (
                            await conn.execute(
                                select(receipts.c.receipt).where(
                                    receipts.c.target == target,
                                    receipts.c.incident_id == row.incident_id,
                                )
                            )
                        ).scalar()
                try:
                    receipt = await broadcaster.deliver(Message(target, row.body), previous)
                except DeliveryError as exc:
                    await self._failed(row, exc, row.attempts + 1)
                    return sent
                except Exception as exc:  # a broadcaster bug: retry later, loudly
                    log.exception("delivery %d to %s crashed", row.id, target)
                    await self._failed(row, DeliveryError(f"crashed: {exc!r}"), row.attempts + 1)
                    return sent
                await self._sent(row, receipt)
                sent += 1
        finally:
            async with db.write(self.engine) as conn:
                await conn.execute(
                    update(targets)
                    .where(
                        targets.c.id == target,
                        targets.c.lease_owner == self.instance_id,
                    )
                    .values(lease_owner=None, lease_until=None)
                )

    async def _sent(self, row: Any, receipt: str | None) -> None:
        now = self.clock.now()
        async with db.write(self.engine) as conn:
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == row.id)
                .values(status="sent", sent_at=now, receipt=receipt, last_error=None)
            )
            if receipt is not None and row.incident_id is not None:
                have = (
                    await conn.execute(
                        select(receipts.c.receipt).where(
                            and_(
                                receipts.c.target == row.target,
                                receipts.c.incident_id == row.incident_id,
                            )
                        )
                    )
                ).first()
                if have is None:
                    await conn.execute(
                        insert(receipts).values(
                            target=row.target, incident_id=row.incident_id, receipt=receipt
                        )
                    )

    async def _failed(self, row: Any, exc: DeliveryError, attempts: int) -> None:
        now = self.clock.now()
        reason = str(exc)[:300]
        delivery_id, target = row.id, row.target
        async with db.write(self.engine) as conn:
            if exc.permanent or attempts >= self._max_attempts:
                await conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery_id)
                    .values(status="failed", last_error=reason)
                )
                if exc.permanent:
                    await conn.execute(
                        update(targets)
                        .where(targets.c.id == target)
                        .values(disabled_at=now, disabled_reason=reason, updated_at=now)
                    )
                    log.warning("target %s disabled: %s", target, reason)
        if exc.permanent:
            fanout = next((f for f in self.fanouts if target.startswith(f.prefix)), None)
            if fanout is not None:  # after our commit: it writes in its own transaction
                await fanout.gone(target, reason)
            return
        if attempts >= self._max_attempts:
            return
        async with db.write(self.engine) as conn:
            wait = exc.retry_after if exc.retry_after is not None else backoff(attempts, self._rng)
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(status="pending", last_error=reason, next_attempt_at=now + wait)
            )

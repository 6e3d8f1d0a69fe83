"""Outbox consumer: lease (event, target), render, deliver, record, back off; ordered per target.

Two steps, each safe with several processes on one database:

1. plan (_plan.Planner): write one delivery row per target that wants an event, rendered
   once, and mark the event planned; channels first, fan-outs in chunks;
2. send: claim a batch of deliveries, each the oldest open one of its target, leasing the
   target (a conditional UPDATE, so one process per target at a time) and marking the
   delivery "sending" (committed) before the call. Up to `workers` deliveries are in flight;
   outcomes are written back in one transaction every FLUSH_EVERY. After a crash exactly the
   "sending" ones are sent again (at-least-once, never dropped): a duplicate is possible only
   for a delivery that went out but whose outcome was not yet written.

A retryable failure backs off (exponential with jitter, or the target's retry_after) and
holds that target's later deliveries back, keeping its order; other targets go on. A
permanent failure disables the target and ops see it in `siaran deliveries`. Single targets
are claimed before fan-out recipients, so news for a channel is not queued behind them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from broadcasters._base import Broadcaster, DeliveryError, FanOut, Message
from broadcasters._plan import Planner, insert_new
from status import db, outbox
from status.clock import Clock
from status.schema import deliveries, receipts, targets

log = logging.getLogger(__name__)

OPEN = ("pending", "sending")
BACKOFF_FIRST = timedelta(seconds=2)
# Short enough that news goes out within minutes of Telegram coming back after an outage.
BACKOFF_MAX = timedelta(minutes=5)
# Outcomes are written in one transaction this often: at 1000 sends/s, one write per 50 sends.
FLUSH_EVERY = 0.05
# A dead process's targets come back after this; a live one renews its leases every third.
LEASE = timedelta(seconds=10)


def backoff(attempts: int, rng: random.Random, first: timedelta = BACKOFF_FIRST) -> timedelta:
    """2 s, 4 s, 8 s …, each scaled by 0.5 to 1.5 so retries don't stampede; at most 5 min."""
    base: timedelta = first * (2 ** min(max(attempts - 1, 0), 20))
    return min(base * (0.5 + rng.random()), BACKOFF_MAX)


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery this instance leased and marked "sending"."""

    id: int
    event_id: int
    target: str
    incident_id: str | None
    body: str
    attempts: int  # including this one
    previous: str | None  # the receipt of the incident's first message to this target


@dataclass(frozen=True, slots=True)
class Outcome:
    claim: Claim
    receipt: str | None = None
    error: DeliveryError | None = None
    at: datetime | None = None  # when it failed: a retry_after counts from then


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
        lease: timedelta = LEASE,
        workers: int = 256,
        poll_every: timedelta = timedelta(milliseconds=500),
        max_attempts: int = 20,
        backoff_first: timedelta = BACKOFF_FIRST,
    ) -> None:
        self.engine, self.clock = engine, clock
        self.by_target = {b.target: b for b in broadcasters}
        self.fanouts = list(fanouts)
        self.instance_id = instance_id or f"dispatch-{secrets.token_hex(4)}"
        self._rng = rng or random.Random()  # noqa: S311 - retry jitter, not security
        self._lease, self._workers = lease, workers
        self._poll_every, self._max_attempts = poll_every, max_attempts
        self._backoff_first = backoff_first
        self.planner = Planner(engine, clock, self.by_target, self.fanouts)
        self._wake = asyncio.Event()
        self._in_flight: set[str] = set()

    async def start(self) -> None:
        """Register this instance's targets; one seen for the first time starts from now."""
        now = self.clock.now()
        async with db.write(self.engine) as conn:
            newest = await outbox.latest_id(conn)
            rows = [{"id": t, "since_event_id": newest, "updated_at": now} for t in self.by_target]
            if rows:
                await conn.execute(insert_new(conn, targets, ["id"]), rows)

    async def on_commit(self, _event_id: int) -> None:
        """Core listener: news was written; plan and send now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Plan and send until cancelled; fan-out planning runs beside the sending."""
        planned = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._plan_loop(planned), name="dispatch-plan")
            group.create_task(self._send_loop(planned), name="dispatch-send")

    async def _plan_loop(self, planned: asyncio.Event) -> None:
        while True:
            self._wake.clear()
            try:
                while await self.plan(on_progress=planned.set):
                    planned.set()
            except Exception:  # the loop outlives a database hiccup; the next pass retries
                log.exception("dispatch planning failed")
            await self._nap(self._wake)

    async def _send_loop(self, planned: asyncio.Event) -> None:
        while True:
            planned.clear()
            try:
                await self.send_due()
            except Exception:  # the loop outlives a database hiccup; the next pass retries
                log.exception("dispatch pass failed")
            await self._nap(planned)

    async def plan(self, batch: int = 200, *, on_progress: Callable[[], None] | None = None) -> int:
        """Write deliveries for up to `batch` unplanned events; returns how many were planned."""
        return await self.planner.plan(batch, on_progress=on_progress)

    async def _nap(self, woken_by: asyncio.Event) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep_until(self.clock.now() + self._poll_every))
        woken = asyncio.ensure_future(woken_by.wait())
        try:
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, woken):
                task.cancel()

    # ── sending ─────────────────────────────────────────────────────────────────────────

    def _owner(self, target: str) -> Broadcaster | FanOut | None:
        found = self.by_target.get(target)
        if found is not None:
            return found
        return next((f for f in self.fanouts if target.startswith(f.prefix)), None)

    async def send_due(self) -> int:
        """Send due deliveries until none is left that this instance can lease; returns sends.

        Keeps up to `workers` deliveries in flight and writes their outcomes every FLUSH_EVERY.
        """
        sent, renewed = 0, self.clock.now()
        flying: dict[asyncio.Task[Outcome], str] = {}
        try:
            while True:
                room = self._workers - len(flying)
                claimed = await self._claim(self.clock.now(), room) if room > 0 else []
                flying |= {asyncio.ensure_future(self._deliver(c)): c.target for c in claimed}
                if not flying:
                    return sent
                done, _ = await asyncio.wait(flying, timeout=FLUSH_EVERY)
                for task in done:
                    del flying[task]
                if done:
                    sent += await self._record([t.result() for t in done])
                if self.clock.now() >= renewed + self._lease / 3:
                    renewed = self.clock.now()
                    await self._renew(list(flying.values()), renewed)
        finally:
            # Cancelled: what is in flight stays "sending" and leased; it is sent again once
            # the lease runs out (by this process after a restart, or by another).
            for task in flying:
                task.cancel()
            self._in_flight -= set(flying.values())

    async def _deliver(self, claim: Claim) -> Outcome:
        owner = self._owner(claim.target)
        try:
            if owner is None:
                raise DeliveryError(f"no broadcaster here for {claim.target}")
            receipt = await owner.deliver(Message(claim.target, claim.body), claim.previous)
        except DeliveryError as exc:
            return Outcome(claim, error=exc, at=self.clock.now())
        except Exception as exc:  # a broadcaster bug: retry later, loudly
            log.exception("delivery %d to %s crashed", claim.id, claim.target)
            return Outcome(claim, error=DeliveryError(f"crashed: {exc!r}"), at=self.clock.now())
        return Outcome(claim, receipt=receipt)

    def _ours(self, *, singles: bool) -> list[ColumnElement[bool]]:
        if singles:
            return [deliveries.c.target.in_(list(self.by_target))] if self.by_target else []
        return [deliveries.c.target.startswith(f.prefix) for f in self.fanouts]

    async def _claim(self, now: datetime, room: int) -> list[Claim]:
        """Lease up to `room` targets with a due head delivery; mark those "sending"."""
        claims: list[Claim] = []
        async with db.write(self.engine) as conn:
            for singles in (True, False):  # channels and webhooks before fan-out recipients
                ours = self._ours(singles=singles)
                if ours and room - len(claims) > 0:
                    claims += await self._claim_some(conn, now, room - len(claims), or_(*ours))
        self._in_flight |= {c.target for c in claims}
        return claims

    async def _claim_some(
        self, conn: AsyncConnection, now: datetime, room: int, ours: ColumnElement[bool]
    ) -> list[Claim]:
        earlier = deliveries.alias("earlier")
        not_head = exists().where(
            earlier.c.target == deliveries.c.target,
            earlier.c.status.in_(OPEN),
            earlier.c.event_id < deliveries.c.event_id,
        )
        free = or_(targets.c.lease_until.is_(None), targets.c.lease_until < now)
        # Targets whose head waits (backoff) or that another process drains are skipped, so
        # a stopped target's backlog never crowds out the rest.
        found = await conn.execute(
            select(deliveries)
            .join(targets, targets.c.id == deliveries.c.target)
            .where(
                deliveries.c.status.in_(OPEN),
                deliveries.c.next_attempt_at <= now,
                ours,
                targets.c.disabled_at.is_(None),
                free,
                ~not_head,
            )
            .limit(room + len(self._in_flight))
        )
        heads = {r.target: r for r in found if r.target not in self._in_flight}
        heads = dict(list(heads.items())[:room])
        if not heads:
            return []
        leased = {
            r[0]
            for r in await conn.execute(
                update(targets)
                .where(targets.c.id.in_(list(heads)), targets.c.disabled_at.is_(None), free)
                .values(lease_owner=self.instance_id, lease_until=now + self._lease)
                .returning(targets.c.id)
            )
        }
        # Only a delivery still open: another process may have sent it since the SELECT.
        # `status || ''` keeps SQLite on the primary key: without statistics it would take
        # the status index and walk every pending row (8 ms a claim with 100,000 pending).
        marked = {
            r[0]
            for r in await conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id.in_([heads[t].id for t in leased]),
                    deliveries.c.status.concat("").in_(OPEN),
                )
                .values(status="sending", attempts=deliveries.c.attempts + 1)
                .returning(deliveries.c.id)
            )
        }
        unused = [t for t in leased if heads[t].id not in marked]
        if unused:
            await self._release(conn, unused)
        mine = [heads[t] for t in leased if heads[t].id in marked]
        previous = await self._receipts(conn, [r for r in mine if r.incident_id is not None])
        return [
            Claim(
                r.id,
                r.event_id,
                r.target,
                r.incident_id,
                r.body,
                r.attempts + 1,
                previous.get((r.target, r.incident_id)),
            )
            for r in mine
        ]

    async def _receipts(
        self, conn: AsyncConnection, rows: Sequence[Any]
    ) -> dict[tuple[str, str], str]:
        found: dict[tuple[str, str], str] = {}
        wanted = {(r.target, r.incident_id) for r in rows}
        names = sorted({t for t, _ in wanted})
        for start in range(0, len(names), 500):
            for r in await conn.execute(
                select(receipts).where(receipts.c.target.in_(names[start : start + 500]))
            ):
                if (r.target, r.incident_id) in wanted:
                    found[(r.target, r.incident_id)] = r.receipt
        return found

    async def _renew(self, names: Sequence[str], now: datetime) -> None:
        """Sends waiting for the bot's pace may outlast a lease: keep their targets ours."""
        if not names:
            return
        async with db.write(self.engine) as conn:
            await conn.execute(
                update(targets)
                .where(targets.c.id.in_(list(names)), targets.c.lease_owner == self.instance_id)
                .values(lease_until=now + self._lease)
            )

    async def _release(self, conn: AsyncConnection, names: Sequence[str]) -> None:
        await conn.execute(
            update(targets)
            .where(targets.c.id.in_(list(names)), targets.c.lease_owner == self.instance_id)
            .values(lease_owner=None, lease_until=None)
        )

    async def _record(self, outcomes: Sequence[Outcome]) -> int:
        """Write outcomes in one transaction and release the targets; returns how many sent."""
        now = self.clock.now()
        ok = [o for o in outcomes if o.error is None]
        failed = [(o.claim, o.error, o.at or now) for o in outcomes if o.error is not None]
        gone: list[tuple[str, str]] = []
        async with db.write(self.engine) as conn:
            if ok:
                await conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == bindparam("delivery"))
                    .values(status="sent", sent_at=now, receipt=bindparam("got"), last_error=None),
                    [{"delivery": o.claim.id, "got": o.receipt} for o in ok],
                )
                firsts = [
                    {
                        "target": o.claim.target,
                        "incident_id": o.claim.incident_id,
                        "receipt": o.receipt,
                    }
                    for o in ok
                    if o.receipt is not None
                    and o.claim.incident_id is not None
                    and o.claim.previous is None
                ]
                if firsts:
                    await conn.execute(
                        insert_new(conn, receipts, ["target", "incident_id"]), firsts
                    )
            for claim, error, at in failed:
                if await self._failed(conn, claim, error, at):
                    gone.append((claim.target, str(error)[:300]))
            await self._release(conn, [o.claim.target for o in outcomes])
        self._in_flight -= {o.claim.target for o in outcomes}
        for target, reason in gone:  # after our commit: a fan-out writes in its own transaction
            fanout = next((f for f in self.fanouts if target.startswith(f.prefix)), None)
            if fanout is not None:
                await fanout.gone(target, reason)
        return len(ok)

    async def _failed(
        self, conn: AsyncConnection, claim: Claim, exc: DeliveryError, now: datetime
    ) -> bool:
        """Record one failure; True when the target is stopped for good."""
        reason = str(exc)[:300]
        if exc.permanent or claim.attempts >= self._max_attempts:
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == claim.id)
                .values(status="failed", last_error=reason)
            )
            if exc.permanent:
                await conn.execute(
                    update(targets)
                    .where(targets.c.id == claim.target)
                    .values(disabled_at=now, disabled_reason=reason, updated_at=now)
                )
                log.warning("target %s disabled: %s", claim.target, reason)
            return exc.permanent
        wait = exc.retry_after if exc.retry_after is not None else self._backoff(claim.attempts)
        retry_at = now + wait
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.id == claim.id)
            .values(status="pending", last_error=reason, next_attempt_at=retry_at)
        )
        # Later deliveries wait with it, so a claim never finds them due behind a waiting head.
        await conn.execute(
            update(deliveries)
            .where(
                deliveries.c.target == claim.target,
                deliveries.c.status == "pending",
                deliveries.c.event_id > claim.event_id,
                deliveries.c.next_attempt_at < retry_at,
            )
            .values(next_attempt_at=retry_at)
        )
        return False

    def _backoff(self, attempts: int) -> timedelta:
        return backoff(attempts, self._rng, self._backoff_first)

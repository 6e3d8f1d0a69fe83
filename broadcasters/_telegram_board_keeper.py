"""Keeps a live_board channel's pinned status board current: one message, edited in place.

Every POLL_EVERY the keeper reads the events written since its last pass (by any instance)
and marks the board *dirty* when one touches what the channel follows: incidents, component
statuses, queues.updated. Time alone dirties it too, when a followed branch opens or closes.
A dirty board is rendered (_telegram_board) from the database's state at most once per
BOARD_EVERY, so a burst of events makes one edit, and is edited only when

- its text changed ("message is not modified" is success: it already says so);
- the channel has a free slot: posts and board edits share Telegram's budget of 20 a
  minute in a channel, and the board gives way to any post waiting (telegram.Channel).

The board's message id is kept in `receipts` under (channel target, "board"): incident ids
are 12 hex digits, so "board" never collides with one, and the dispatcher only reads receipts
of its deliveries' incidents. A restart edits the same message; a board deleted by a human is
posted again and pinned (silently). With several instances on one database, a lease on the
`targets` row "<channel target>#board" makes one of them the keeper at a time.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcasters._base import DeliveryError
from broadcasters._telegram_board import next_change, render_board
from status import db, outbox, store
from status.event_cursor import EventCursor
from status.model import Event
from status.schema import events, receipts, targets

if TYPE_CHECKING:
    from broadcasters.telegram import Channel

log = logging.getLogger(__name__)

BOARD = "board"  # receipts.incident_id of a channel's board message
BOARD_EVERY = timedelta(seconds=4)  # at most one edit per this; 15 a minute leaves room for posts
POLL_EVERY = timedelta(seconds=1)
LEASE = timedelta(seconds=30)
# After a permanent failure (the bot was removed from the channel) try again only this often.
STOPPED_RETRY = timedelta(minutes=5)


class BoardKeeper:
    """The status board of one channel; run() until cancelled, or step() one pass (tests)."""

    def __init__(
        self,
        channel: Channel,
        engine: AsyncEngine,
        *,
        every: timedelta = BOARD_EVERY,
        poll_every: timedelta = POLL_EVERY,
        instance_id: str | None = None,
    ) -> None:
        self.channel, self.engine = channel, engine
        self.clock, self.config = channel.deps.clock, channel.deps.config
        self.every, self.poll_every = every, poll_every
        self.instance_id = instance_id or f"board-{secrets.token_hex(4)}"
        self.lease_id = f"{channel.target}#board"
        self._events: EventCursor | None = None  # the events already looked at
        self._dirty = (
            True  # a fresh keeper renders once: the state may have moved while it was down
        )
        self._not_before: datetime | None = None
        self._lease_until: datetime | None = None
        self._message_id: int | None = None
        self._shown: str | None = None  # the body on the board now; None = not known
        self._time_change: datetime | None = None

    @property
    def message_id(self) -> int | None:
        return self._message_id

    async def run(self) -> None:
        """Keep the board until cancelled; a failed pass is logged and the next one retries."""
        while True:
            try:
                await self.step()
            except Exception:
                log.exception("telegram: status board of %s: pass failed", self.channel.config.chat)
            await self.clock.sleep_until(self.clock.now() + self.poll_every)

    async def step(self) -> bool:
        """One pass: note news, and edit (or post) the board if it is due; True when it did."""
        now = self.clock.now()
        await self._follow()
        if self._time_change is not None and now >= self._time_change:
            self._dirty, self._time_change = True, None
        if not self._dirty or (self._not_before is not None and now < self._not_before):
            return False
        if not self.channel.board_may_edit():
            return False  # a post goes first, or the chat's gap has not passed yet
        if not await self._take_lease(now):
            self._not_before = now + self.every
            return False
        async with db.read(self.engine) as conn:
            state = await store.load_state(conn, now)
        view = self.channel.view
        filters = self.channel.config.components
        board = render_board(
            state, self.config, filters, now, view.language, view.zone or view.site_zone
        )
        self._time_change = next_change(self.config, filters, now)
        self._dirty = False
        if board.body == self._shown and self._message_id is not None:
            return False  # nothing a reader would notice changed: no edit
        self._not_before = now + self.every
        try:
            message_id, new = await self.channel.show_board(self._message_id, board.text)
        except DeliveryError as exc:
            self._dirty = True
            wait = STOPPED_RETRY if exc.permanent else (exc.retry_after or self.every)
            self._not_before = now + max(wait, self.every)
            log.warning(
                "telegram: status board of %s not updated: %s", self.channel.config.chat, exc
            )
            return False
        if new:
            await self._remember(message_id)
        self._message_id, self._shown = message_id, board.body
        return True

    async def _follow(self) -> None:
        """Mark the board dirty when an event since the last pass touches what it follows."""
        filters, regions = self.channel.config.components, self.channel.deps.regions
        async with db.read(self.engine) as conn:
            if self._events is None:
                self._events = EventCursor(await outbox.latest_id(conn))
                return
            rows = list(
                await conn.execute(
                    select(events.c.id, events.c.kind, events.c.incident_id, events.c.component_ids)
                    .where(events.c.id > self._events.floor)
                    .order_by(events.c.id)
                    .limit(1000)
                )
            )
        unseen = set(self._events.unseen(row.id for row in rows))
        for row in rows:
            if row.id not in unseen:
                continue
            event = Event(
                row.id, row.kind, self.clock.now(), row.incident_id, tuple(row.component_ids), {}
            )
            if event.touches(filters, regions):
                self._dirty = True
        self._events.see(unseen, self.clock.now())

    async def _take_lease(self, now: datetime) -> bool:
        """Hold the board lease (one keeper per channel across instances); reload what another
        keeper may have changed when the lease was not already ours."""
        mine = or_(
            targets.c.lease_owner.is_(None),
            targets.c.lease_until < now,
            targets.c.lease_owner == self.instance_id,
        )
        values: dict[str, Any] = {
            "lease_owner": self.instance_id,
            "lease_until": now + LEASE,
            "updated_at": now,
        }
        try:
            async with db.write(self.engine) as conn:
                taken = await conn.execute(
                    update(targets).where(targets.c.id == self.lease_id, mine).values(**values)
                )
                if not taken.rowcount:
                    have = await conn.execute(
                        select(targets.c.id).where(targets.c.id == self.lease_id)
                    )
                    if have.first() is not None:
                        return False  # another instance keeps this board
                    await conn.execute(insert(targets).values(id=self.lease_id, **values))
                receipt = (
                    await conn.execute(
                        select(receipts.c.receipt).where(
                            receipts.c.target == self.channel.target,
                            receipts.c.incident_id == BOARD,
                        )
                    )
                ).scalar()
        except IntegrityError:
            return False  # another instance created the lease row first
        continued = self._lease_until is not None and now < self._lease_until
        self._lease_until = now + LEASE
        found = int(receipt) if receipt is not None and receipt.lstrip("-").isdigit() else None
        if not continued or found != self._message_id:
            self._shown = None  # another keeper may have edited or re-posted it meanwhile
        self._message_id = found
        return True

    async def release(self) -> None:
        """Give the lease up (on shutdown), so a restarted or other instance keeps the board at once."""
        async with db.write(self.engine) as conn:
            await conn.execute(
                update(targets)
                .where(targets.c.id == self.lease_id, targets.c.lease_owner == self.instance_id)
                .values(lease_owner=None, lease_until=None)
            )
        self._lease_until = None

    async def _remember(self, message_id: int) -> None:
        row = {"target": self.channel.target, "incident_id": BOARD, "receipt": str(message_id)}
        async with db.write(self.engine) as conn:
            await conn.execute(
                db.upsert_statement(conn, receipts, [row], ("target", "incident_id"))
            )

"""Outbox consumer: follow events, render, deliver to every target that wants them.

This first version follows the event log from where this process started and delivers each
event once per target, logging failures. The durable dispatcher — per-target leases and
delivery records, retries with backoff, resume after a crash — replaces it with issue #4.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from broadcasters._base import Broadcaster, DeliveryError, Receipt
from status import db, outbox
from status.clock import Clock
from status.model import Event

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        targets: Sequence[Broadcaster],
        *,
        poll_every: timedelta = timedelta(milliseconds=250),
    ) -> None:
        self._engine, self._clock, self._targets = engine, clock, targets
        self._poll_every = poll_every
        self._receipts: dict[tuple[str, str], Receipt] = {}
        self.after_id = -1

    async def start_from_now(self) -> None:
        async with db.read(self._engine) as conn:
            self.after_id = await outbox.latest_id(conn)

    async def run(self) -> None:
        """Loop until cancelled."""
        if self.after_id < 0:
            await self.start_from_now()
        while True:
            try:
                for event in await outbox.follow(self._engine, self.after_id):
                    await self.deliver(event)
                    self.after_id = event.id
            except Exception:  # the loop must outlive a database hiccup; the next poll retries
                log.exception("dispatch pass failed")
            await self._clock.sleep_until(self._clock.now() + self._poll_every)

    async def deliver(self, event: Event) -> None:
        for target in self._targets:
            if not target.wants(event):
                continue
            message = target.render(event)
            key = (target.target, event.incident_id or "")
            try:
                receipt = await target.deliver(message, self._receipts.get(key))
            except DeliveryError as exc:
                log.warning("delivery of event %d to %s failed: %s", event.id, target.target, exc)
                continue
            if receipt is not None:
                self._receipts[key] = receipt

"""Clock protocol (now, sleep_until); SystemClock; ManualClock for tests (advance() wakes sleepers)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        ...

    async def sleep_until(self, at: datetime) -> None:
        """Return once `now() >= at` (immediately if it already is)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, at: datetime) -> None:
        delay = (at - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


class ManualClock:
    """A clock that only moves when a test calls advance() or set()."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._changed = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def set(self, at: datetime) -> None:
        self._now = at.astimezone(UTC)
        self._changed.set()
        self._changed = asyncio.Event()

    def advance(self, by: timedelta) -> None:
        self.set(self._now + by)

    async def sleep_until(self, at: datetime) -> None:
        while self._now < at:
            await self._changed.wait()

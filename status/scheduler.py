"""Runs the maintenance schedule: starts and completes windows on time, woken early by new schedules."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from status.clock import Clock
from status.core import Core

log = logging.getLogger(__name__)

# Even with nothing scheduled, look again now and then: another instance may have scheduled
# something (its commit wakes only its own process).
IDLE_CHECK = timedelta(seconds=30)


async def run_schedule(core: Core, clock: Clock) -> None:
    """Loop until cancelled."""
    while True:
        core.schedule_changed.clear()
        wake = clock.now() + IDLE_CHECK
        try:
            await core.apply_schedule()
            upcoming = await core.next_schedule_change()
            if upcoming is not None:
                wake = min(wake, upcoming)
        except Exception:  # a database hiccup must not end the schedule; the next pass retries
            log.exception("maintenance schedule pass failed")
        sleeper = asyncio.ensure_future(clock.sleep_until(wake))
        changed = asyncio.ensure_future(core.schedule_changed.wait())
        try:
            await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, changed):
                task.cancel()
            await asyncio.gather(sleeper, changed, return_exceptions=True)

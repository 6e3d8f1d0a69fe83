"""The public site shows every change even when event ids commit out of order.

PostgreSQL hands out an event's id when the row is inserted, so a transaction that took id
11 can commit after one that took id 12. A reader that only remembers the highest id it has
built would never rebuild for 11: the page would show the second incident and not the first.
On SQLite writers queue for the write lock, so the same steps commit in id order; the tests
run on both and must hold on both.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from status import db
from status.clock import ManualClock
from status.commands import NewIncident
from status.model import SYSTEM
from status.services import Services, build_services
from status.vocabulary import ComponentStatus as CS, Impact, IncidentStatus
from tests.conftest import eventually

pytestmark = pytest.mark.anyio

SUMMARY = "/api/v2/summary.json"


def _incident(name: str, component: str) -> NewIncident:
    return NewIncident(
        name,
        IncidentStatus.INVESTIGATING,
        Impact.MAJOR,
        "Sedang dicek.",
        {component: CS.MAJOR_OUTAGE},
    )


def _shown(services: Services) -> set[str]:
    summary = json.loads(services.snapshot.files[SUMMARY].body)
    return {incident["name"] for incident in summary["incidents"]}


@asynccontextmanager
async def _held_open(services: Services, name: str, component: str) -> AsyncIterator[asyncio.Event]:
    """A transaction that writes an incident (taking its event id) and commits only when the
    yielded event is set; on exit it has committed."""
    written, release = asyncio.Event(), asyncio.Event()

    async def write() -> None:
        async with services.core.transaction() as tx:
            await services.core.create_incident(tx, _incident(name, component), SYSTEM)
            written.set()
            await release.wait()

    task = asyncio.create_task(write())
    if db.is_sqlite(services.engine):
        # SQLite writers queue for the lock, so the later writer waits for this one: let this
        # one commit first rather than deadlock the test.
        release.set()
        await task
        yield release
        return
    await written.wait()
    try:
        yield release
    finally:
        release.set()
        await task


async def _create(services: Services, name: str, component: str) -> None:
    async with services.core.transaction() as tx:
        await services.core.create_incident(tx, _incident(name, component), SYSTEM)


async def test_the_writing_instance_shows_an_incident_that_committed_after_a_newer_one(
    services: Services,
) -> None:
    async with _held_open(services, "Gangguan Medan", "kcu-medan"):
        await _create(services, "Gangguan Denpasar", "kcu-denpasar")
        assert "Gangguan Denpasar" in _shown(services)
    # The first transaction has committed now, with the lower event id.
    assert _shown(services) == {"Gangguan Medan", "Gangguan Denpasar"}


async def test_another_instance_shows_an_incident_that_committed_after_a_newer_one(
    services: Services, clock: ManualClock
) -> None:
    other = build_services(services.config, services.engine, services.clock)
    await other.snapshot.refresh(force=True)
    follower = asyncio.create_task(other.snapshot.run())  # polls when the clock moves on
    try:
        async with _held_open(services, "Gangguan Medan", "kcu-medan"):
            await _create(services, "Gangguan Denpasar", "kcu-denpasar")
            # The other instance builds while the lower id is still uncommitted.
            await other.snapshot.refresh(force=True)
            assert "Gangguan Denpasar" in _shown(other)
        clock.advance(timedelta(seconds=1))
        await eventually(lambda: _shown(other) == {"Gangguan Medan", "Gangguan Denpasar"})
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)


async def test_a_rolled_back_event_id_does_not_hold_the_follower_back(
    services: Services, clock: ManualClock
) -> None:
    """A gap left by a rolled-back write is waited for a while, then given up on; later
    changes still reach the page meanwhile, and polling stays cheap after."""

    class Abandon(Exception):
        pass

    async def abandoned_write() -> None:
        async with services.core.transaction() as tx:
            await services.core.create_incident(tx, _incident("Batal", "kcu-medan"), SYSTEM)
            raise Abandon

    with pytest.raises(Abandon):
        await abandoned_write()
    follower = asyncio.create_task(services.snapshot.run())
    try:
        await _create(services, "Gangguan Denpasar", "kcu-denpasar")
        assert _shown(services) == {"Gangguan Denpasar"}
        if not db.is_sqlite(services.engine):  # SQLite reuses a rolled-back rowid: no gap
            assert services.snapshot.waiting_for  # the rolled-back id, for now
        clock.advance(timedelta(minutes=3))
        await eventually(lambda: not services.snapshot.waiting_for)
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)

"""The status core: one writer, one event per change, statuses derived, schedules kept."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from status import db, store
from status.clock import ManualClock
from status.commands import NewIncident, NewMaintenance, NewUpdate
from status.config import load_config_text
from status.errors import InvalidError, ScopeError
from status.model import SYSTEM, Actor
from status.scheduler import run_schedule
from status.schema import events, incidents
from status.services import Services, build_services
from status.vocabulary import ComponentStatus as CS, Impact, IncidentStatus
from tests.conftest import TEST_CONFIG, eventually

pytestmark = pytest.mark.anyio

MEDAN_STAFF = Actor("petugas medan", ("branch:kcu-medan",), token_id="t1")


async def _count(services: Services, table: object) -> int:
    async with db.read(services.engine) as conn:
        return await store.count_rows(conn, table)


async def _status(services: Services, component_id: str) -> CS:
    async with db.read(services.engine) as conn:
        comps = {c.id: c for c in await store.load_components(conn)}
    return comps[component_id].status


async def _open(
    services: Services,
    components: dict[str, CS],
    impact: Impact = Impact.MAJOR,
    actor: Actor = SYSTEM,
) -> str:
    async with services.core.transaction() as tx:
        incident = await services.core.create_incident(
            tx,
            NewIncident(
                "Gangguan", IncidentStatus.INVESTIGATING, impact, "Sedang dicek.", components
            ),
            actor,
        )
    return incident.id


async def _resolve(services: Services, incident_id: str) -> None:
    async with services.core.transaction() as tx:
        await services.core.add_update(
            tx, incident_id, NewUpdate(IncidentStatus.RESOLVED, "Sudah normal."), SYSTEM
        )


async def test_every_change_writes_exactly_one_event_carrying_the_incident(
    services: Services,
) -> None:
    before = await _count(services, events)
    incident_id = await _open(services, {"kcu-medan": CS.PARTIAL_OUTAGE})
    await _resolve(services, incident_id)
    async with db.read(services.engine) as conn:
        rows = list(await conn.execute(select(events).where(events.c.id > 0).order_by(events.c.id)))
    new = rows[before:]
    assert [r.kind for r in new] == ["incident.created", "incident.resolved"]
    assert all(r.incident_id == incident_id for r in new)
    assert new[0].payload["incident"]["components"][0]["id"] == "kcu-medan"
    assert new[0].payload["component_changes"] == [
        {
            "id": "kcu-medan",
            "name": "KCU Medan",
            "old_status": "operational",
            "new_status": "partial_outage",
        }
    ]
    assert new[1].payload["component_changes"][0]["new_status"] == "operational"


async def test_a_refused_command_leaves_no_incident_and_no_event(services: Services) -> None:
    before = (await _count(services, events), await _count(services, incidents))
    with pytest.raises(InvalidError) as caught:
        await _open(services, {"kcu-medan": CS.MAJOR_OUTAGE, "kcu-atlantis": CS.MAJOR_OUTAGE})
    assert caught.value.field == "components.kcu-atlantis"
    with pytest.raises(ScopeError):
        await _open(services, {"kcu-denpasar": CS.MAJOR_OUTAGE}, actor=MEDAN_STAFF)
    assert (await _count(services, events), await _count(services, incidents)) == before
    assert await _status(services, "kcu-medan") is CS.OPERATIONAL


async def test_a_component_shows_the_worst_of_its_open_incidents(services: Services) -> None:
    slow = await _open(services, {"emeterai-purchase": CS.DEGRADED_PERFORMANCE}, Impact.MINOR)
    down = await _open(services, {"emeterai-purchase": CS.MAJOR_OUTAGE})
    assert await _status(services, "emeterai-purchase") is CS.MAJOR_OUTAGE
    await _resolve(services, down)
    assert await _status(services, "emeterai-purchase") is CS.DEGRADED_PERFORMANCE
    await _resolve(services, slow)
    assert await _status(services, "emeterai-purchase") is CS.OPERATIONAL


async def test_concurrent_writers_never_leave_a_stale_component_status(services: Services) -> None:
    opened = await asyncio.gather(
        *(
            _open(services, {"kcu-medan": s})
            for s in [CS.DEGRADED_PERFORMANCE, CS.PARTIAL_OUTAGE, CS.MAJOR_OUTAGE] * 3
        )
    )
    assert await _status(services, "kcu-medan") is CS.MAJOR_OUTAGE
    # Resolve every major outage at once while the others stay open.
    await asyncio.gather(*(_resolve(services, i) for i in opened[2::3]))
    assert await _status(services, "kcu-medan") is CS.PARTIAL_OUTAGE
    await asyncio.gather(*(_resolve(services, i) for i in opened))
    assert await _status(services, "kcu-medan") is CS.OPERATIONAL


async def test_the_maintenance_window_opens_and_closes_on_the_clock(
    services: Services, clock: ManualClock
) -> None:
    start = clock.now() + timedelta(hours=1)
    async with services.core.transaction() as tx:
        window = await services.core.schedule_maintenance(
            tx,
            NewMaintenance(
                "Pemeliharaan server",
                "Layanan pembelian dihentikan sementara.",
                start,
                start + timedelta(hours=2),
                ("emeterai-purchase",),
            ),
            SYSTEM,
        )
    runner = asyncio.create_task(run_schedule(services.core, clock))
    try:

        async def status() -> str:
            async with db.read(services.engine) as conn:
                found = await store.load_incident(conn, window.id)
            assert found is not None
            return found.status

        await eventually(lambda: _status(services, "emeterai-purchase"))
        assert await status() == "scheduled"
        clock.advance(timedelta(hours=1, seconds=1))
        await eventually(lambda: _is(status, "in_progress"))
        assert await _status(services, "emeterai-purchase") is CS.UNDER_MAINTENANCE
        clock.advance(timedelta(hours=2))
        await eventually(lambda: _is(status, "completed"))
        assert await _status(services, "emeterai-purchase") is CS.OPERATIONAL
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def _is(read: object, expected: str) -> bool:
    assert callable(read)
    return bool(await read() == expected)


async def test_removing_a_branch_from_the_config_takes_it_off_the_page(services: Services) -> None:
    trimmed = TEST_CONFIG.replace('id = "kcu-jayapura"', 'id = "kcu-jayapura-baru"')
    second = build_services(load_config_text(trimmed, "test.toml"), services.engine, services.clock)
    async with second.core.transaction() as tx:
        assert await second.core.sync_components(tx) is True
    async with second.core.transaction() as tx:
        assert await second.core.sync_components(tx) is False  # idempotent
    async with db.read(services.engine) as conn:
        ids = [c.id for c in await store.load_components(conn)]
        synced = (
            await conn.execute(
                select(func.count()).select_from(events).where(events.c.kind == "components.synced")
            )
        ).scalar_one()
    assert "kcu-jayapura" not in ids
    assert "kcu-jayapura-baru" in ids
    assert synced == 2  # the first start and the change; not the no-op


async def test_another_instance_picks_up_a_change_by_following_the_event_log(
    services: Services, clock: ManualClock
) -> None:
    other = build_services(services.config, services.engine, services.clock)
    await other.snapshot.refresh(force=True)
    follower = asyncio.create_task(other.snapshot.run())
    try:
        await _open(services, {"kcu-medan": CS.MAJOR_OUTAGE})
        # `services` rebuilt at once (its own commit); `other` only learns by polling.
        assert b'"major_outage"' in services.snapshot.files["/api/v2/components.json"].body
        clock.advance(timedelta(seconds=1))
        await eventually(lambda: other.snapshot.event_id == services.snapshot.event_id)
        assert b'"major_outage"' in other.snapshot.files["/api/v2/components.json"].body
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)


async def test_the_branch_board_turns_closed_at_closing_time_without_any_event(
    services: Services, clock: ManualClock
) -> None:
    def medan() -> dict[str, object]:
        doc = json.loads(services.snapshot.files["/api/v1/branches"].body)
        found: dict[str, object] = next(b for b in doc["branches"] if b["id"] == "kcu-medan")
        return found

    def medan_open() -> bool:
        return medan()["open"] is True

    assert medan_open()  # Monday 10:00 WIB
    follower = asyncio.create_task(services.snapshot.run())
    try:
        clock.set(clock.now().replace(hour=9, minute=0, second=1))
        await eventually(lambda: not medan_open())  # 16:00:01 WIB
        assert medan()["open_label"] == "Tutup, buka lagi Selasa 24-11-2026 07.30 WIB"
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)

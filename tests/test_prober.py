"""The prober against a real upstream on loopback: one incident per outage, honest about hours."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from status import db
from status.checks import Observation
from status.clock import ManualClock
from status.commands import NewUpdate
from status.config import Config, load_config_text
from status.model import PROBER, Actor
from status.probe_store import ProbeStore
from status.prober import Prober
from status.schema import check_daily, check_results, check_state, events, incidents
from status.services import Services, build_services
from status.vocabulary import ComponentStatus, IncidentStatus
from status.web.asgi import checks_client
from tests.fakes.upstream import Upstream, serve

pytestmark = pytest.mark.anyio
BROADCAST = ("incident.created", "incident.updated", "incident.resolved")

UPSTREAM_CONFIG = """
[site]
name = "Status e-Meterai"
public_url = "https://status.example.id"

[prober]
resolve_after = "5m"

[[component]]
id = "emeterai-purchase"
name = "Pembelian e-Meterai"
group = "Layanan e-Meterai"

[[check]]
id = "purchase-api"
component = "emeterai-purchase"
url = "{url}/api/purchase/health"
interval = "30s"
timeout = "2s"
conditions = ["status == 200", "body.status == 'UP'"]
fail_after = 3
recover_after = 2
"""

BRANCH = """
[[branch]]
id = "{id}"
name = "KCU {name}"
region = "Sumatera Utara"
timezone = "Asia/Jakarta"
hours = "Mon-Fri 07:30-16:00"
queue_url = "{url}/queues/{id}"
queue_interval = "1m"
stall_after = "{stall}"
"""


def jitter(seed: int) -> random.Random:
    """Deterministic phases, so a failing run can be replayed."""
    return random.Random(seed)  # noqa: S311 - scheduling jitter, not security


@pytest.fixture
def upstream() -> Iterator[tuple[Upstream, str]]:
    fake = Upstream()
    with serve(fake.app()) as url:
        yield fake, url


def config_for(url: str, branches: int = 0, stall: str = "20m") -> Config:
    text = UPSTREAM_CONFIG.replace("{url}", url)
    for n in range(branches):
        text += (
            BRANCH.replace("{url}", url)
            .replace("{id}", f"kc-{n:02d}")
            .replace("{name}", f"Cabang {n:02d}")
            .replace("{stall}", stall)
        )
    return load_config_text(text, "test.toml")


@pytest.fixture
async def checks_http(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    """The client `siaran serve` gives the prober (over status/checks/transport.py)."""
    async with checks_client(config) as client:
        yield client


async def started(
    config: Config, engine: AsyncEngine, clock: ManualClock, http: httpx.AsyncClient
) -> tuple[Services, Prober]:
    services = build_services(config, engine, clock)
    async with services.core.transaction() as tx:
        await services.core.sync_components(tx)
    prober = Prober(services.core, http, rng=jitter(7))
    await prober.start()
    return services, prober


async def step(prober: Prober, clock: ManualClock, by: timedelta, times: int = 1) -> None:
    """Let `by` pass `times` times, running whatever falls due, as the live loop would."""
    for _ in range(times):
        clock.advance(by)
        await prober.run_due()
        await prober.housekeeping()


async def summary(services: Services) -> dict[str, Any]:
    await services.snapshot.refresh()
    doc: dict[str, Any] = json.loads(services.snapshot.files["/api/v2/summary.json"].body)
    return doc


async def event_kinds(engine: AsyncEngine) -> list[str]:
    async with db.read(engine) as conn:
        return [r.kind for r in await conn.execute(select(events.c.kind).order_by(events.c.id))]


async def incident_rows(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with db.read(engine) as conn:
        rows = await conn.execute(select(incidents.c.id, incidents.c.status))
        return [(r.id, r.status) for r in rows]


def component(doc: dict[str, Any], component_id: str) -> str:
    comps = doc["components"]
    assert isinstance(comps, list)
    return str(next(c["status"] for c in comps if c["id"] == component_id))


async def test_an_upstream_outage_opens_one_incident_updated_then_resolved(
    engine: AsyncEngine,
    clock: ManualClock,
    checks_http: httpx.AsyncClient,
    upstream: tuple[Upstream, str],
) -> None:
    fake, url = upstream
    services, prober = await started(config_for(url), engine, clock, checks_http)
    interval = timedelta(seconds=30)
    await step(prober, clock, interval, 2)
    assert await incident_rows(engine) == []

    fake.down.add("purchase")
    await step(prober, clock, interval, 2)
    assert await incident_rows(engine) == []  # two failures are not yet an outage
    await step(prober, clock, interval)
    (opened,) = await incident_rows(engine)
    doc = await summary(services)
    assert opened[1] == "investigating"
    assert component(doc, "emeterai-purchase") == "major_outage"
    assert doc["status"] == {"indicator": "critical", "description": "Gangguan besar"}
    body = doc["incidents"][0]["incident_updates"][0]["body"]
    assert "Pembelian e-Meterai bermasalah sejak" in body
    assert "condition failed: status == 200 (got 503)" in body
    assert "has been failing since" in body

    await step(prober, clock, interval, 5)  # still down: nothing new
    assert len(await incident_rows(engine)) == 1

    fake.down.clear()
    await step(prober, clock, interval, 2)
    assert await incident_rows(engine) == [(opened[0], "monitoring")]
    doc = await summary(services)
    assert component(doc, "emeterai-purchase") == "operational"
    await step(prober, clock, interval, 10)  # five quiet minutes
    assert await incident_rows(engine) == [(opened[0], "resolved")]
    doc = await summary(services)
    assert doc["incidents"] == []
    assert doc["status"]["indicator"] == "none"
    kinds = [k for k in await event_kinds(engine) if k in BROADCAST]
    assert kinds == ["incident.created", "incident.updated", "incident.resolved"]


async def test_a_flapping_check_keeps_one_incident_open(
    engine: AsyncEngine,
    clock: ManualClock,
    checks_http: httpx.AsyncClient,
    upstream: tuple[Upstream, str],
) -> None:
    fake, url = upstream
    _services, prober = await started(config_for(url), engine, clock, checks_http)
    interval = timedelta(seconds=30)
    for _ in range(4):  # down 3, up 2: confirmed each way, but never five quiet minutes
        fake.down.add("purchase")
        await step(prober, clock, interval, 3)
        fake.down.clear()
        await step(prober, clock, interval, 2)
    rows = await incident_rows(engine)
    assert len(rows) == 1
    assert rows[0][1] == "monitoring"
    kinds = [k for k in await event_kinds(engine) if k in BROADCAST]
    assert kinds.count("incident.created") == 1


def monday(hour: int, minute: int = 0, day: int = 23, month: int = 11) -> datetime:
    # 23 November 2026 is a Monday; WIB is UTC+7.
    return datetime(2026, month, day, hour - 7, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "opens"),
    [
        pytest.param(monday(10), True, id="stall-during-opening-hours"),
        pytest.param(monday(15, 50), False, id="stall-running-into-closing-time"),
        pytest.param(monday(10, month=8, day=17), False, id="stall-on-independence-day"),
    ],
)
async def test_a_stalled_queue_opens_a_branch_incident_only_while_the_branch_is_open(
    engine: AsyncEngine,
    checks_http: httpx.AsyncClient,
    upstream: tuple[Upstream, str],
    start: datetime,
    opens: bool,
) -> None:
    fake, url = upstream
    clock = ManualClock(start)
    fake.queues = {"kc-00": (37, 120)}  # 83 people waiting, serving frozen at 37
    services, prober = await started(config_for(url, branches=1), engine, clock, checks_http)
    await step(prober, clock, timedelta(minutes=1), 30)
    rows = await incident_rows(engine)
    branches = json.loads(services.snapshot.files["/api/v1/branches"].body)["branches"]
    assert branches[0]["queue"]["serving"] == 37
    assert branches[0]["queue"]["length"] == 83
    if opens:
        assert len(rows) == 1
        doc = await summary(services)
        assert component(doc, "kc-00") == "partial_outage"
        update = doc["incidents"][0]["incident_updates"][0]["body"]
        assert "antrean tidak bergerak sejak 10.01 WIB" in update  # the first reading
        assert branches[0]["queue"]["stalled"] is True
    else:
        assert rows == []
        assert branches[0]["status"] == "operational"


async def test_fifty_branches_failing_with_the_upstream_fold_into_its_one_incident(
    engine: AsyncEngine,
    checks_http: httpx.AsyncClient,
    upstream: tuple[Upstream, str],
) -> None:
    fake, url = upstream
    clock = ManualClock(monday(9))
    fake.queues = {f"kc-{n:02d}": (10, 60) for n in range(50)}
    config = config_for(url, branches=50, stall="3m")
    services, prober = await started(config, engine, clock, checks_http)
    await step(prober, clock, timedelta(seconds=60), 2)
    fake.advance_queues()
    await step(prober, clock, timedelta(seconds=60), 1)
    before = len(await event_kinds(engine))

    fake.down.add("purchase")  # the stamp service fails; queues freeze everywhere
    await step(prober, clock, timedelta(seconds=30), 10)  # five minutes
    rows = await incident_rows(engine)
    assert len(rows) == 1
    doc = await summary(services)
    (incident,) = doc["incidents"]
    listed = {c["id"] for c in incident["components"]}
    assert listed == {"emeterai-purchase"} | {f"kc-{n:02d}" for n in range(50)}
    assert all(component(doc, f"kc-{n:02d}") == "partial_outage" for n in range(50))
    new = (await event_kinds(engine))[before:]
    assert [k for k in new if k in BROADCAST] == ["incident.created"]
    assert new.count("incident.affected") < 10  # batched, not one per branch


async def owners(engine: AsyncEngine) -> dict[str, str | None]:
    async with db.read(engine) as conn:
        rows = await conn.execute(select(check_state.c.check_id, check_state.c.owner))
        return {r.check_id: r.owner for r in rows}


async def test_two_instances_share_the_checks_and_a_dead_ones_move_within_a_lease(
    engine: AsyncEngine,
    checks_http: httpx.AsyncClient,
    upstream: tuple[Upstream, str],
) -> None:
    _fake, url = upstream
    clock = ManualClock(monday(9))
    config = config_for(url, branches=9)  # ten checks: the upstream and nine queues
    lease = config.prober.lease
    _a_services, a = await started(config, engine, clock, checks_http)
    b = Prober(
        build_services(config, engine, clock).core,
        checks_http,
        rng=jitter(8),
        instance_id="prober-b",
    )
    await b.start()
    await a.claim()  # a now sees b alive and sheds to its fair share
    await b.claim()
    held = await owners(engine)
    assert sorted(str(o) for o in held.values()) == sorted([a.instance_id] * 5 + ["prober-b"] * 5)

    # b dies without a word (no release). Within one lease a holds everything.
    clock.advance(lease + timedelta(seconds=1))
    await a.claim()
    assert set((await owners(engine)).values()) == {a.instance_id}
    # and a runs them: every check reports within one interval
    await step(a, clock, timedelta(minutes=1))
    async with db.read(engine) as conn:
        ran = await conn.execute(
            select(check_state.c.check_id).where(check_state.c.last_at.is_not(None))
        )
        assert len(list(ran)) == 10


async def test_a_clean_stop_hands_checks_back_at_once(
    engine: AsyncEngine,
    clock: ManualClock,
    checks_http: httpx.AsyncClient,
    upstream: tuple[Upstream, str],
) -> None:
    _fake, url = upstream
    _services, prober = await started(config_for(url), engine, clock, checks_http)
    assert set((await owners(engine)).values()) == {prober.instance_id}
    await prober.stop()
    assert set((await owners(engine)).values()) == {None}


async def test_a_silenced_check_opens_no_incident_but_still_moves_the_status(
    engine: AsyncEngine,
    clock: ManualClock,
    checks_http: httpx.AsyncClient,
    upstream: tuple[Upstream, str],
) -> None:
    fake, url = upstream
    services, prober = await started(config_for(url), engine, clock, checks_http)
    async with services.core.transaction() as tx:
        await prober.automatic.silence(tx, "purchase-api", clock.now() + timedelta(hours=1), PROBER)
    fake.down.add("purchase")
    await step(prober, clock, timedelta(seconds=30), 4)
    assert await incident_rows(engine) == []
    assert component(await summary(services), "emeterai-purchase") == "major_outage"


async def test_after_staff_take_an_automatic_incident_over_the_prober_writes_no_updates(
    engine: AsyncEngine,
    clock: ManualClock,
    checks_http: httpx.AsyncClient,
    upstream: tuple[Upstream, str],
) -> None:
    fake, url = upstream
    services, prober = await started(config_for(url), engine, clock, checks_http)
    fake.down.add("purchase")
    await step(prober, clock, timedelta(seconds=30), 3)
    ((incident_id, _),) = await incident_rows(engine)
    staff = Actor("ops", ("admin",), token_id="t-ops")
    async with services.core.transaction() as tx:
        await services.core.add_update(
            tx,
            incident_id,
            NewUpdate(IncidentStatus.IDENTIFIED, "Penyedia e-Meterai sedang memperbaiki server."),
            staff,
        )
    fake.down.clear()
    await step(prober, clock, timedelta(seconds=30), 20)  # recovered, ten quiet minutes
    assert await incident_rows(engine) == [(incident_id, "identified")]  # staff decide
    assert component(await summary(services), "emeterai-purchase") == "operational"


# --- the prober's own tables ------------------------------------------------------------------


def seen(check_id: str, at: datetime, ok: bool, ms: float | None = 12.0) -> Observation:
    return Observation(check_id, at, ok, "ok" if ok else "timeout", "", 200 if ok else None, ms)


async def daily_rows(engine: AsyncEngine) -> dict[tuple[str, str], tuple[int, int, int | None]]:
    async with db.read(engine) as conn:
        rows = await conn.execute(select(check_daily))
        return {(r.check_id, r.day): (r.total, r.failures, r.p50_ms) for r in rows}


async def rename(engine: AsyncEngine, table: str, to: str) -> None:
    """Take a table away (and back): the next write to it fails, as a real outage would."""
    async with db.write(engine) as conn:
        await conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {to}")


async def test_daily_figures_add_up_over_flushes_for_thousands_of_checks(
    engine: AsyncEngine, config: Config
) -> None:
    store = ProbeStore(engine, config)
    ids = [f"check-{n:04d}" for n in range(1_234)]  # more than two flush_daily chunks
    morning = monday(10)
    for cid in ids:
        store.add(seen(cid, morning, True))
    await store.write_results(morning)
    await store.flush_daily(morning, force=True)
    for cid in ids:
        store.add(seen(cid, morning + timedelta(seconds=30), cid.endswith("7"), ms=None))
    store.add(seen(ids[0], monday(23, 59) + timedelta(minutes=2), True))  # 00.01 WIB, Tuesday
    await store.write_results(morning)
    await store.flush_daily(morning + timedelta(minutes=1), force=True)

    rows = await daily_rows(engine)
    assert len(rows) == len(ids) + 1
    assert rows[("check-0007", "2026-11-23")] == (2, 0, 12)
    assert rows[("check-1233", "2026-11-23")] == (2, 1, 12)
    assert rows[("check-0000", "2026-11-24")] == (1, 0, 12)
    assert sum(total for total, _, _ in rows.values()) == 2 * len(ids) + 1


async def test_a_failed_daily_write_keeps_its_figures_for_the_next_flush(
    engine: AsyncEngine, config: Config
) -> None:
    store = ProbeStore(engine, config)
    morning = monday(10)
    store.add(seen("purchase-api", morning, True))
    await store.write_results(morning)
    await store.flush_daily(morning, force=True)

    store.add(seen("purchase-api", morning + timedelta(seconds=30), False))
    await store.write_results(morning)
    await rename(engine, "check_daily", "check_daily_away")
    with pytest.raises(Exception, match="check_daily"):
        await store.flush_daily(morning + timedelta(minutes=1), force=True)
    await rename(engine, "check_daily_away", "check_daily")
    store.add(seen("purchase-api", morning + timedelta(seconds=60), True))
    await store.write_results(morning)
    await store.flush_daily(morning + timedelta(minutes=2), force=True)

    assert await daily_rows(engine) == {("purchase-api", "2026-11-23"): (3, 1, 12)}


async def test_a_failed_results_write_loses_no_result(engine: AsyncEngine, config: Config) -> None:
    store = ProbeStore(engine, config)
    morning = monday(10)
    store.add(seen("purchase-api", morning, False))
    await rename(engine, "check_results", "check_results_away")
    with pytest.raises(Exception, match="check_results"):
        await store.write_results(morning)
    await rename(engine, "check_results_away", "check_results")
    store.add(seen("purchase-api", morning + timedelta(seconds=30), True))
    await store.write_results(morning)
    await store.flush_daily(morning, force=True)

    async with db.read(engine) as conn:
        results = list(await conn.execute(select(check_results.c.at, check_results.c.ok)))
    assert sorted(results) == [(morning, False), (morning + timedelta(seconds=30), True)]
    assert await daily_rows(engine) == {("purchase-api", "2026-11-23"): (2, 1, 12)}


async def test_check_rows_follow_the_config(engine: AsyncEngine, config: Config) -> None:
    store = ProbeStore(engine, config)
    now = monday(10)
    critical, degraded = ComponentStatus.MAJOR_OUTAGE, ComponentStatus.DEGRADED_PERFORMANCE
    await store.ensure_rows({"a": ("svc-1", critical), "b": ("svc-1", critical)}, now)
    await store.ensure_rows({"a": ("svc-2", degraded), "c": ("svc-1", critical)}, now)
    async with db.read(engine) as conn:
        rows = await conn.execute(
            select(check_state.c.check_id, check_state.c.component_id, check_state.c.severity)
        )
        assert sorted(tuple(r) for r in rows) == [
            ("a", "svc-2", "degraded_performance"),
            ("c", "svc-1", "major_outage"),
        ]

"""The dispatcher: every follower gets every event once and in order, whatever fails."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from broadcasters import DeliveryError, Message, Receipt
from broadcasters._dispatch import Dispatcher
from status import db
from status.clock import ManualClock
from status.commands import NewIncident, NewUpdate
from status.model import SYSTEM, Event
from status.schema import deliveries, targets
from status.services import Services
from status.vocabulary import ComponentStatus as CS, Impact, IncidentStatus

pytestmark = pytest.mark.anyio


@dataclass
class Recorder:
    """A target that keeps what it was sent; `failures` makes its next calls fail."""

    target: str
    follows: tuple[str, ...] = ("*",)
    got: list[tuple[str, Receipt | None]] = field(default_factory=list)
    failures: list[DeliveryError] = field(default_factory=list)

    def wants(self, event: Event) -> bool:
        return event.kind.startswith("incident.") and event.touches(self.follows)

    def render(self, event: Event) -> Message:
        update_body = event.payload["incident"]["incident_updates"][0]["body"]
        return Message(self.target, f"{event.kind}: {update_body}")

    async def deliver(self, message: Message, previous: Receipt | None) -> Receipt | None:
        await asyncio.sleep(0)  # a real send awaits I/O; let others interleave
        if self.failures:
            raise self.failures.pop(0)
        self.got.append((message.body, previous))
        return f"msg-{len(self.got)}"


def rng() -> random.Random:
    return random.Random(1)  # noqa: S311 - retry jitter in a test


async def dispatcher(services: Services, *recorders: Recorder, name: str = "d1") -> Dispatcher:
    d = Dispatcher(services.engine, services.clock, recorders, instance_id=name, rng=rng())
    await d.start()
    return d


async def news(services: Services, body: str, component: str = "kcu-medan") -> str:
    async with services.core.transaction() as tx:
        incident = await services.core.create_incident(
            tx,
            NewIncident(
                "Loket",
                IncidentStatus.INVESTIGATING,
                Impact.MAJOR,
                body,
                {component: CS.PARTIAL_OUTAGE},
            ),
            SYSTEM,
        )
    return incident.id


async def follow_up(services: Services, incident_id: str, body: str) -> None:
    async with services.core.transaction() as tx:
        await services.core.add_update(
            tx, incident_id, NewUpdate(IncidentStatus.IDENTIFIED, body), SYSTEM
        )


async def run_once(d: Dispatcher) -> None:
    while await d.plan():
        pass
    await d.send_due()


async def test_every_follower_gets_every_event_once_in_order(services: Services) -> None:
    everyone, medan = Recorder("a:all"), Recorder("b:medan", ("kcu-medan",))
    d = await dispatcher(services, everyone, medan)
    first = await news(services, "satu")
    await news(services, "dua", component="kcu-denpasar")
    await follow_up(services, first, "tiga")
    await run_once(d)
    await run_once(d)  # nothing twice
    assert [b for b, _ in everyone.got] == [
        "incident.created: satu",
        "incident.created: dua",
        "incident.updated: tiga",
    ]
    assert [b for b, _ in medan.got] == ["incident.created: satu", "incident.updated: tiga"]


async def test_the_first_posts_receipt_is_handed_back_for_later_updates(services: Services) -> None:
    channel = Recorder("a:channel")
    d = await dispatcher(services, channel)
    first = await news(services, "satu")
    await run_once(d)
    await follow_up(services, first, "dua")
    await follow_up(services, first, "tiga")
    await run_once(d)
    assert [p for _, p in channel.got] == [None, "msg-1", "msg-1"]


async def test_a_failing_target_backs_off_in_order_without_holding_up_others(
    services: Services, clock: ManualClock
) -> None:
    flaky, steady = Recorder("a:flaky"), Recorder("b:steady")
    flaky.failures = [
        DeliveryError("HTTP 502"),
        DeliveryError("429", retry_after=timedelta(seconds=30)),
    ]
    d = await dispatcher(services, flaky, steady)
    await news(services, "satu")
    await news(services, "dua")
    await run_once(d)
    assert len(steady.got) == 2
    assert flaky.got == []
    clock.advance(timedelta(seconds=5))  # past the first backoff (2 s ± jitter)
    await run_once(d)
    assert flaky.got == []  # 429: waits its retry_after
    clock.advance(timedelta(seconds=31))
    await run_once(d)
    assert [b for b, _ in flaky.got] == ["incident.created: satu", "incident.created: dua"]
    async with db.read(services.engine) as conn:
        row = (
            await conn.execute(
                select(deliveries)
                .where(deliveries.c.target == "a:flaky")
                .order_by(deliveries.c.event_id)
            )
        ).first()
    assert row is not None
    assert (row.status, row.attempts) == ("sent", 3)


async def test_a_permanent_failure_stops_only_that_target(services: Services) -> None:
    gone, steady = Recorder("a:gone"), Recorder("b:steady")
    gone.failures = [DeliveryError("Forbidden: bot was blocked by the user", permanent=True)]
    d = await dispatcher(services, gone, steady)
    await news(services, "satu")
    await news(services, "dua")
    await run_once(d)
    await run_once(d)
    assert gone.got == []
    assert len(steady.got) == 2
    async with db.read(services.engine) as conn:
        target = (await conn.execute(select(targets).where(targets.c.id == "a:gone"))).one()
        statuses = [
            r.status
            for r in await conn.execute(
                select(deliveries.c.status)
                .where(deliveries.c.target == "a:gone")
                .order_by(deliveries.c.event_id)
            )
        ]
    assert target.disabled_reason == "Forbidden: bot was blocked by the user"
    assert statuses == ["failed", "pending"]


async def test_after_a_crash_only_the_in_flight_delivery_is_sent_again(
    services: Services, clock: ManualClock
) -> None:
    channel = Recorder("a:channel")
    d = await dispatcher(services, channel)
    await news(services, "satu")
    await news(services, "dua")
    await d.plan()
    async with db.write(services.engine) as conn:  # the process died mid-call on "satu"
        await conn.execute(
            update(deliveries).where(deliveries.c.target == "a:channel").values(status="sending")
        )
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.body == "incident.created: dua")
            .values(status="pending")
        )
        await conn.execute(
            update(targets).values(lease_owner="dead", lease_until=services.clock.now())
        )
    restarted = await dispatcher(services, channel, name="d2")
    clock.advance(timedelta(seconds=1))  # the dead process's lease has run out
    await run_once(restarted)
    assert [b for b, _ in channel.got] == ["incident.created: satu", "incident.created: dua"]


async def test_two_dispatchers_never_send_one_delivery_twice(services: Services) -> None:
    channels = [Recorder(f"t:{n}") for n in range(20)]
    one = await dispatcher(services, *channels, name="one")
    two = await dispatcher(services, *channels, name="two")
    for n in range(5):
        await news(services, f"kabar {n}")
    await asyncio.gather(run_once(one), run_once(two))
    await asyncio.gather(run_once(one), run_once(two))
    assert all(
        [b for b, _ in c.got] == [f"incident.created: kabar {n}" for n in range(5)]
        for c in channels
    )


async def test_a_target_added_later_gets_news_from_then_on(services: Services) -> None:
    await news(services, "lama")
    late = Recorder("a:late")
    d = await dispatcher(services, late)
    await news(services, "baru")
    await run_once(d)
    assert [b for b, _ in late.got] == ["incident.created: baru"]

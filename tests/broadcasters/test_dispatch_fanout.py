"""The dispatcher with a big fan-out: channels are not queued behind thousands of DMs, and what
is in flight at once stays within the dispatcher's window."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcasters import Message, Receipt
from broadcasters._dispatch import Dispatcher
from status import db
from status.model import Event
from status.schema import deliveries
from status.services import Services
from tests.broadcasters.test_dispatch import Recorder, news, rng
from tests.conftest import eventually

pytestmark = pytest.mark.anyio
PEOPLE = 1500


@dataclass
class Crowd:
    """PEOPLE subscribers behind a slow Bot API: each DM takes a few milliseconds."""

    prefix: str = "dm:"
    got: list[str] = field(default_factory=list)
    flying: int = 0
    most_flying: int = 0

    def wants(self, event: Event) -> bool:
        return event.kind == "incident.created"

    async def recipients(self, conn: AsyncConnection, event: Event) -> Sequence[tuple[str, str]]:
        return [(f"dm:{n}", "id") for n in range(PEOPLE)]

    def render_for(self, event: Event, language: str) -> str:
        return str(event.payload["incident"]["name"])

    async def deliver(self, message: Message, previous: Receipt | None) -> Receipt | None:
        self.flying += 1
        self.most_flying = max(self.most_flying, self.flying)
        await asyncio.sleep(0.002)
        self.flying -= 1
        self.got.append(message.target)
        return None

    async def gone(self, target: str, reason: str) -> None:
        return None


async def test_a_channel_post_is_not_queued_behind_a_big_fan_out(services: Services) -> None:
    channel, crowd = Recorder("telegram:@statusemeterai"), Crowd()
    d = Dispatcher(
        services.engine, services.clock, [channel], fanouts=[crowd], rng=rng(), workers=64
    )
    await d.start()
    await news(services, "satu")
    while await d.plan():
        pass
    sending = asyncio.ensure_future(d.send_due())
    await eventually(lambda: len(crowd.got) >= 100)
    await news(services, "dua", component="kcu-jayapura")
    while await d.plan():
        pass
    await eventually(lambda: len(channel.got) == 2)
    dms_before_the_second_post = len(crowd.got)
    assert await sending == PEOPLE * 2 + 2
    assert [b for b, _ in channel.got] == ["incident.created: satu", "incident.created: dua"]
    assert dms_before_the_second_post < PEOPLE  # the post did not wait for the first fan-out
    assert sorted(crowd.got) == sorted([f"dm:{n}" for n in range(PEOPLE)] * 2)
    assert crowd.most_flying <= 64
    async with db.read(services.engine) as conn:
        found = await conn.execute(
            select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
        )
        statuses = {str(status): int(n) for status, n in found}
    assert statuses == {"sent": PEOPLE * 2 + 2}

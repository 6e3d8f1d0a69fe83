"""Check leases: with several instances on one database, each check runs in exactly one.

Each instance heartbeats, counts the live instances, and holds about its fair share of the
checks. A claim is a conditional UPDATE (free, expired, or already ours), so two instances
racing for one check cannot both win; a dead instance's leases expire and others take them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from status import db
from status.schema import check_state, prober_instances


class Leases:
    def __init__(self, engine: AsyncEngine, instance_id: str, lease: timedelta) -> None:
        self.engine, self.instance_id, self.lease = engine, instance_id, lease

    async def claim(self, check_ids: Sequence[str], now: datetime) -> set[str]:
        """Renew ours, shed extras beyond a fair share, take free ones up to it; returns ours."""
        until = now + self.lease
        async with db.write(self.engine) as conn:
            await conn.execute(
                db.upsert_statement(
                    conn, prober_instances, [{"id": self.instance_id, "heartbeat_at": now}], ["id"]
                )
            )
            await conn.execute(
                delete(prober_instances).where(
                    prober_instances.c.heartbeat_at < now - 4 * self.lease
                )
            )
            live = int(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(prober_instances)
                        .where(prober_instances.c.heartbeat_at >= now - self.lease)
                    )
                ).scalar_one()
            )
            share = math.ceil(len(check_ids) / max(live, 1))
            ours = [
                r[0]
                for r in await conn.execute(
                    select(check_state.c.check_id)
                    .where(check_state.c.owner == self.instance_id)
                    .order_by(check_state.c.check_id)
                )
            ]
            if len(ours) > share:
                extra = ours[share:]
                await conn.execute(
                    update(check_state)
                    .where(check_state.c.check_id.in_(extra))
                    .values(owner=None, lease_until=None)
                )
                ours = ours[:share]
            await conn.execute(
                update(check_state)
                .where(check_state.c.owner == self.instance_id)
                .values(lease_until=until)
            )
            wanted = share - len(ours)
            if wanted > 0:
                free = [
                    r[0]
                    for r in await conn.execute(
                        select(check_state.c.check_id)
                        .where(
                            check_state.c.check_id.in_(list(check_ids)),
                            or_(
                                check_state.c.lease_until.is_(None), check_state.c.lease_until < now
                            ),
                        )
                        .order_by(check_state.c.check_id)
                        .limit(wanted)
                    )
                ]
                for chunk in _chunks(free, 500):
                    # Re-checked in the UPDATE itself: another instance may have won meanwhile.
                    await conn.execute(
                        update(check_state)
                        .where(
                            check_state.c.check_id.in_(chunk),
                            or_(
                                check_state.c.lease_until.is_(None), check_state.c.lease_until < now
                            ),
                        )
                        .values(owner=self.instance_id, lease_until=until)
                    )
            return {
                r[0]
                for r in await conn.execute(
                    select(check_state.c.check_id).where(check_state.c.owner == self.instance_id)
                )
            }

    async def release(self) -> None:
        """On a clean stop, hand our checks back at once instead of waiting for expiry."""
        async with db.write(self.engine) as conn:
            await conn.execute(
                update(check_state)
                .where(check_state.c.owner == self.instance_id)
                .values(owner=None, lease_until=None)
            )
            await conn.execute(
                delete(prober_instances).where(prober_instances.c.id == self.instance_id)
            )


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]

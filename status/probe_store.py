"""The prober's own tables: check state rows, raw results in batches, daily aggregates, pruning."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from status import db, history
from status.checks import Observation
from status.config import Config
from status.schema import check_daily, check_results, check_state
from status.vocabulary import ComponentStatus

DAILY_EVERY = timedelta(minutes=1)
# check_state.last_* is what ops read at /api/v1/checks; every few seconds is fresh enough and
# spares one UPDATE per check per flush.
LAST_EVERY = timedelta(seconds=5)
PRUNE_EVERY = timedelta(hours=1)


class ProbeStore:
    def __init__(self, engine: AsyncEngine, config: Config) -> None:
        self.engine, self.config = engine, config
        self.zone = ZoneInfo(config.site.timezone)
        self._pending: list[Observation] = []
        self._last: dict[str, Observation] = {}
        self._last_at: datetime | None = None
        self._days: dict[tuple[str, date], history.Day] = {}
        self._daily_at: datetime | None = None
        self._pruned_at: datetime | None = None

    async def ensure_rows(
        self, checks: Mapping[str, tuple[str, ComponentStatus]], now: datetime
    ) -> None:
        async with db.write(self.engine) as conn:
            have = {
                r[0]: r
                for r in await conn.execute(
                    select(
                        check_state.c.check_id, check_state.c.component_id, check_state.c.severity
                    )
                )
            }
            for check_id, (component_id, severity) in checks.items():
                row = have.get(check_id)
                if row is None:
                    await conn.execute(
                        insert(check_state).values(
                            check_id=check_id,
                            component_id=component_id,
                            severity=severity,
                            failing=False,
                            transitions=[],
                            updated_at=now,
                        )
                    )
                elif (row.component_id, row.severity) != (component_id, severity):
                    await conn.execute(
                        update(check_state)
                        .where(check_state.c.check_id == check_id)
                        .values(component_id=component_id, severity=severity)
                    )
            gone = set(have) - set(checks)
            if gone:
                await conn.execute(delete(check_state).where(check_state.c.check_id.in_(gone)))

    async def confirmed(self) -> dict[str, tuple[bool, datetime | None]]:
        async with db.read(self.engine) as conn:
            rows = await conn.execute(
                select(check_state.c.check_id, check_state.c.failing, check_state.c.since)
            )
            return {r.check_id: (r.failing, r.since) for r in rows}

    def add(self, obs: Observation) -> None:
        self._pending.append(obs)

    async def write_results(self, now: datetime) -> None:
        """One batch insert per flush; the latest observation of each check onto its row."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        self._last.update((o.check_id, o) for o in pending)
        try:
            await self._insert(pending, now)
        except Exception:
            self._pending[:0] = pending  # a failed write loses nothing: the next flush retries
            raise
        # Counted into the daily figures only once written, so a retry never counts twice.
        results = [history.Result(o.check_id, o.at, o.ok, o.response_time_ms) for o in pending]
        for key, day in history.fold(self._days, results, self.zone).items():
            self._days[key] = day

    async def _insert(self, pending: list[Observation], now: datetime) -> None:
        async with db.write(self.engine) as conn:
            await conn.execute(
                insert(check_results),
                [
                    {
                        "check_id": o.check_id,
                        "at": o.at,
                        "ok": o.ok,
                        "kind": o.kind,
                        "reason": o.reason[:300],
                        "status_code": o.status_code,
                        "response_ms": _ms(o.response_time_ms),
                    }
                    for o in pending
                ],
            )
            if self._last_at is None or now - self._last_at >= LAST_EVERY:
                await self._write_last(conn)
                self._last_at = now

    async def _write_last(self, conn: AsyncConnection) -> None:
        """Each check's latest observation onto its row, in one executemany (ops read it)."""
        last, self._last = self._last, {}
        if not last:
            return
        await conn.execute(
            update(check_state)
            .where(check_state.c.check_id == bindparam("cid"))
            .values(
                last_at=bindparam("at"),
                last_ok=bindparam("ok"),
                last_kind=bindparam("kind"),
                last_reason=bindparam("reason"),
                last_status_code=bindparam("code"),
                last_response_ms=bindparam("ms"),
            ),
            [
                {
                    "cid": o.check_id,
                    "at": o.at,
                    "ok": o.ok,
                    "kind": o.kind,
                    "reason": o.reason[:300],
                    "code": o.status_code,
                    "ms": _ms(o.response_time_ms),
                }
                for o in last.values()
            ],
        )

    async def flush_daily(self, now: datetime, *, force: bool = False) -> None:
        """Add the days accumulated since the last flush into check_daily."""
        if not force and self._daily_at is not None and now - self._daily_at < DAILY_EVERY:
            return
        self._daily_at = now
        pending, self._days = self._days, {}
        if not pending:
            return
        async with db.write(self.engine) as conn:
            for (check_id, day), delta in pending.items():
                row = (
                    await conn.execute(
                        select(check_daily).where(
                            check_daily.c.check_id == check_id, check_daily.c.day == day.isoformat()
                        )
                    )
                ).first()
                merged = delta
                if row is not None:
                    buckets = {int(k): v for k, v in row.latency_buckets.items()}
                    for k, v in delta.buckets.items():
                        buckets[k] = buckets.get(k, 0) + v
                    merged = history.Day(
                        check_id,
                        day,
                        row.total + delta.total,
                        row.failures + delta.failures,
                        buckets,
                    )
                await conn.execute(
                    db.upsert_statement(
                        conn,
                        check_daily,
                        [
                            {
                                "check_id": check_id,
                                "day": day.isoformat(),
                                "total": merged.total,
                                "failures": merged.failures,
                                "latency_buckets": {str(k): v for k, v in merged.buckets.items()},
                                "p50_ms": merged.percentile_ms(0.5),
                                "p95_ms": merged.percentile_ms(0.95),
                                "updated_at": now,
                            }
                        ],
                        ["check_id", "day"],
                    )
                )

    async def prune(self, now: datetime) -> int:
        """Delete raw results older than the retention period (aggregates stay)."""
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return 0
        self._pruned_at = now
        async with db.write(self.engine) as conn:
            result = await conn.execute(
                delete(check_results).where(
                    check_results.c.at < now - self.config.prober.results_retention
                )
            )
            return int(result.rowcount or 0)


def _ms(value: float | None) -> int | None:
    return None if value is None else round(value)

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
DAILY_CHUNK = 500  # (check, day) figures per flush_daily transaction


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
        """A check_state row per check: new ones inserted, moved ones updated, gone ones deleted."""
        async with db.write(self.engine) as conn:
            have = {
                r.check_id: (r.component_id, r.severity)
                for r in await conn.execute(
                    select(
                        check_state.c.check_id, check_state.c.component_id, check_state.c.severity
                    )
                )
            }
            new = [
                {
                    "check_id": check_id,
                    "component_id": component_id,
                    "severity": severity,
                    "failing": False,
                    "transitions": [],
                    "updated_at": now,
                }
                for check_id, (component_id, severity) in checks.items()
                if check_id not in have
            ]
            moved = [
                {"cid": check_id, "component_id": component_id, "severity": severity}
                for check_id, (component_id, severity) in checks.items()
                if check_id in have and have[check_id] != (component_id, severity)
            ]
            if new:
                await conn.execute(insert(check_state), new)
            if moved:
                await conn.execute(
                    update(check_state)
                    .where(check_state.c.check_id == bindparam("cid"))
                    .values(component_id=bindparam("component_id"), severity=bindparam("severity")),
                    moved,
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
        """Add the days accumulated since the last flush into check_daily, DAILY_CHUNK at a time.

        Each chunk is one short transaction (one SELECT, one executemany upsert): the SQLite
        write lock is shared with the API, so it is never held for the whole flush. A chunk
        that fails goes back into the buffer with the ones after it; written chunks stay written.
        """
        if not force and self._daily_at is not None and now - self._daily_at < DAILY_EVERY:
            return
        self._daily_at = now
        pending, self._days = self._days, {}
        deltas = list(pending.values())
        for start in range(0, len(deltas), DAILY_CHUNK):
            chunk = deltas[start : start + DAILY_CHUNK]
            try:
                await self._add_days(chunk, now)
            except Exception:
                self._keep(deltas[start:])
                raise

    async def _add_days(self, deltas: list[history.Day], now: datetime) -> None:
        async with db.write(self.engine) as conn:
            wanted = {(d.check_id, d.day.isoformat()) for d in deltas}
            stored = {
                (r.check_id, r.day): r
                for r in await conn.execute(
                    select(check_daily)
                    .where(
                        check_daily.c.check_id.in_({c for c, _ in wanted}),
                        check_daily.c.day.in_({d for _, d in wanted}),
                    )
                    .with_for_update()  # PostgreSQL: no other writer between read and write
                )
                if (r.check_id, r.day) in wanted
            }
            rows = []
            for delta in deltas:
                day = delta.day.isoformat()
                row = stored.get((delta.check_id, day))
                merged = delta
                if row is not None:
                    before = history.Day(
                        delta.check_id,
                        delta.day,
                        row.total,
                        row.failures,
                        {int(k): v for k, v in row.latency_buckets.items()},
                    )
                    merged = _add(before, delta)
                rows.append(
                    {
                        "check_id": delta.check_id,
                        "day": day,
                        "total": merged.total,
                        "failures": merged.failures,
                        "latency_buckets": {str(k): v for k, v in merged.buckets.items()},
                        "p50_ms": merged.percentile_ms(0.5),
                        "p95_ms": merged.percentile_ms(0.95),
                        "updated_at": now,
                    }
                )
            # One statement with bind parameters, run as executemany: a VALUES list of 500 rows
            # takes SQLAlchemy a second or more to compile.
            upsert = db.upsert_statement(
                conn, check_daily, [{c: bindparam(c) for c in rows[0]}], ["check_id", "day"]
            )
            await conn.execute(upsert, rows)

    def _keep(self, deltas: list[history.Day]) -> None:
        """Unwritten deltas back into the buffer, added to whatever arrived since."""
        for delta in deltas:
            key = (delta.check_id, delta.day)
            since = self._days.get(key)
            self._days[key] = delta if since is None else _add(delta, since)

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


def _add(a: history.Day, b: history.Day) -> history.Day:
    """Two partial figures of the same check and day, as one."""
    buckets = dict(a.buckets)
    for k, v in b.buckets.items():
        buckets[k] = buckets.get(k, 0) + v
    return history.Day(a.check_id, a.day, a.total + b.total, a.failures + b.failures, buckets)


def _ms(value: float | None) -> int | None:
    return None if value is None else round(value)

"""Pure: check observations → compact daily aggregates (uptime ratio, failures, latency p50/p95).

Latency is kept as a log-scale histogram (about 12% wide buckets from 1 ms to ~60 s), so a
day of a check is a few dozen integers whatever the interval, and days merge by adding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

BUCKET_GROWTH = 1.12
BUCKETS = 100  # 1.12**99 ≈ 75,000 ms; slower answers land in the last bucket


def bucket_of(ms: float) -> int:
    if ms <= 1:
        return 0
    return min(BUCKETS - 1, int(math.log(ms) / math.log(BUCKET_GROWTH)) + 1)


def bucket_upper_ms(index: int) -> float:
    return float(BUCKET_GROWTH**index)


@dataclass(frozen=True, slots=True)
class Day:
    check_id: str
    day: date
    total: int = 0
    failures: int = 0
    buckets: Mapping[int, int] = field(default_factory=dict)

    @property
    def uptime(self) -> float | None:
        return None if self.total == 0 else (self.total - self.failures) / self.total

    def percentile_ms(self, q: float) -> int | None:
        """The upper edge of the bucket holding quantile q (0-1); None without latencies."""
        count = sum(self.buckets.values())
        if count == 0:
            return None
        rank = max(1, math.ceil(q * count))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return round(bucket_upper_ms(index))
        return None  # pragma: no cover - rank <= count always reaches a bucket


@dataclass(frozen=True, slots=True)
class Result:
    check_id: str
    at: datetime
    ok: bool
    response_ms: float | None


def day_key(at: datetime, zone: ZoneInfo) -> date:
    """Days are the site's days (WIB for a Jakarta site), as readers count them."""
    return at.astimezone(zone).date()


def fold(
    days: Mapping[tuple[str, date], Day], results: Iterable[Result], zone: ZoneInfo
) -> dict[tuple[str, date], Day]:
    """Add `results` into the per-check per-day aggregates; returns only the days touched."""
    out: dict[tuple[str, date], Day] = {}
    for r in results:
        key = (r.check_id, day_key(r.at, zone))
        current = out.get(key) or days.get(key) or Day(r.check_id, key[1])
        buckets = dict(current.buckets)
        if r.response_ms is not None:
            b = bucket_of(r.response_ms)
            buckets[b] = buckets.get(b, 0) + 1
        out[key] = Day(
            current.check_id,
            current.day,
            current.total + 1,
            current.failures + (0 if r.ok else 1),
            buckets,
        )
    return out


def uptime_bars(days: Sequence[Day], today: date, count: int = 90) -> list[float | None]:
    """`count` daily uptime ratios ending today, oldest first; None where nothing was measured."""
    by_day = {d.day: d for d in days}
    return [
        (by_day[d].uptime if d in by_day else None)
        for d in (date.fromordinal(today.toordinal() - i) for i in range(count - 1, -1, -1))
    ]

"""Pure: verdict streaks → component status (fail_after/recover_after), one incident per outage, page indicator."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from status.vocabulary import ComponentStatus, Impact, Indicator

_IMPACT_INDICATOR = {
    Impact.NONE: Indicator.NONE,
    Impact.MAINTENANCE: Indicator.NONE,
    Impact.MINOR: Indicator.MINOR,
    Impact.MAJOR: Indicator.MAJOR,
    Impact.CRITICAL: Indicator.CRITICAL,
}

_STATUS_INDICATOR = {
    ComponentStatus.OPERATIONAL: Indicator.NONE,
    ComponentStatus.UNDER_MAINTENANCE: Indicator.NONE,
    ComponentStatus.DEGRADED_PERFORMANCE: Indicator.MINOR,
    ComponentStatus.PARTIAL_OUTAGE: Indicator.MAJOR,
    ComponentStatus.MAJOR_OUTAGE: Indicator.CRITICAL,
}


def derive_component_status(
    reported: ComponentStatus, imposed: Iterable[ComponentStatus]
) -> ComponentStatus:
    """A component shows the worst of what the prober confirmed and what open incidents say."""
    return max((reported, *imposed), key=lambda s: s.rank)


def page_indicator(
    statuses: Iterable[ComponentStatus], open_impacts: Iterable[Impact]
) -> Indicator:
    """Statuspage's page indicator: the worst of open incident impacts and component statuses."""
    candidates = [_STATUS_INDICATOR[s] for s in statuses]
    candidates += [_IMPACT_INDICATOR[i] for i in open_impacts]
    return max(candidates, key=lambda i: i.rank, default=Indicator.NONE)


def is_maintenance_active(statuses: Iterable[ComponentStatus]) -> bool:
    return any(s is ComponentStatus.UNDER_MAINTENANCE for s in statuses)


@dataclass(frozen=True, slots=True)
class Streak:
    """A check's confirmation state: raw observations only count once they repeat."""

    failing: bool = False  # the confirmed state
    fail_streak: int = 0
    ok_streak: int = 0
    since: datetime | None = None  # when the confirmed state began (first observation of it)
    first_fail_at: datetime | None = None  # start of the current run of failures
    first_ok_at: datetime | None = None  # start of the current run of successes


def next_streak(
    streak: Streak, ok: bool, at: datetime, *, fail_after: int, recover_after: int
) -> tuple[Streak, str | None]:
    """Fold one observation in; returns the new streak and "failed"/"recovered" on a transition.

    The confirmed failure is dated from the first failure of the run that confirmed it, so
    "since 10.30 WIB" names when trouble began, not when we became sure.
    """
    if ok:
        first_ok = streak.first_ok_at if streak.ok_streak else at
        new = replace(
            streak,
            ok_streak=streak.ok_streak + 1,
            fail_streak=0,
            first_ok_at=first_ok,
            first_fail_at=None,
        )
        if streak.failing and new.ok_streak >= recover_after:
            return replace(new, failing=False, since=first_ok), "recovered"
        return new, None
    first_fail = streak.first_fail_at if streak.fail_streak else at
    new = replace(
        streak,
        fail_streak=streak.fail_streak + 1,
        ok_streak=0,
        first_fail_at=first_fail,
        first_ok_at=None,
    )
    if not streak.failing and new.fail_streak >= fail_after:
        return replace(new, failing=True, since=first_fail), "failed"
    return new, None


def is_flapping(
    transitions: Sequence[datetime], now: datetime, *, window: timedelta, threshold: int
) -> bool:
    """Many state changes in a short window: keep one incident open instead of many."""
    return sum(1 for t in transitions if now - t <= window) >= threshold

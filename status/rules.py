"""Pure: verdict streaks → component status (fail_after/recover_after), one incident per outage, page indicator."""

from __future__ import annotations

from collections.abc import Iterable

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

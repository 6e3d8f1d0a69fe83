"""A branch queue as a check: poll, derive the queue state, fail on a stall while open."""

from __future__ import annotations

from datetime import timedelta

import httpx

from status.checks import Observation
from status.checks.queue import QueueError, QueueState, fetch_queue, next_queue_state
from status.clock import Clock
from status.config import BranchConfig
from status.hours import open_state
from status.i18n import format_local, t
from status.vocabulary import ComponentStatus

# What a branch shows: a stalled queue is a branch not serving; an unreachable queue system
# tells us less (the branch may well be serving), so it only degrades.
STALLED = ComponentStatus.PARTIAL_OUTAGE
UNREACHABLE = ComponentStatus.DEGRADED_PERFORMANCE


class QueueProbe:
    def __init__(self, branch: BranchConfig, http: httpx.AsyncClient, clock: Clock) -> None:
        self.branch, self.http, self.clock = branch, http, clock
        self._state: QueueState | None = None
        self._pending: QueueState | str | None = None

    @property
    def check_id(self) -> str:
        return f"queue:{self.branch.id}"

    @property
    def interval(self) -> timedelta:
        return self.branch.queue_interval

    def take_state(self) -> QueueState | str | None:
        """The newest reading (or fetch problem) not yet written; cleared by taking it."""
        pending, self._pending = self._pending, None
        return pending

    async def run(self) -> Observation:
        at = self.clock.now()
        is_open = open_state(self.branch.opening_hours, self.branch.zone, at).is_open
        try:
            reading = await fetch_queue(
                self.http,
                self.branch.queue_url,
                self.branch.queue_fields,
                self.branch.queue_timeout,
                at,
            )
        except QueueError as exc:
            self._pending = str(exc)
            if not is_open:  # a closed branch may switch its queue system off: not trouble
                return Observation(self.check_id, at, True, "ok", "", None, None)
            return Observation(
                self.check_id,
                at,
                False,
                "protocol",
                f"queue system: {exc}",
                None,
                None,
                severity=UNREACHABLE,
                reason_id=t("auto.queue_unreachable", "id", reason=str(exc)),
            )
        state = next_queue_state(
            self._state, reading, is_open=is_open, stall_after=self.branch.stall_after
        )
        self._state = self._pending = state
        if not state.stalled:
            return Observation(self.check_id, at, True, "ok", "", None, None)
        zone = self.branch.zone
        return Observation(
            self.check_id,
            at,
            False,
            "condition",
            t("auto.stalled", "en", time=format_local(state.last_move_at, zone, "en")),
            None,
            None,
            failed_condition="serving moves within stall_after",
            observed=str(state.serving),
            severity=STALLED,
            confirmed=True,
            since=state.last_move_at,
            reason_id=t("auto.stalled", "id", time=format_local(state.last_move_at, zone, "id")),
        )

"""Check protocol + map from config `type` ("http", "queue") to class."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import httpx

    from status.clock import Clock
    from status.config import CheckConfig

ObservationKind = Literal["ok", "timeout", "connect", "tls", "protocol", "json", "condition"]


@dataclass(frozen=True, slots=True)
class Observation:
    """The outcome of one attempt of one check; `reason` is "" when ok."""

    check_id: str
    at: datetime  # aware UTC, when the attempt started
    ok: bool
    kind: ObservationKind
    reason: str  # short English, e.g. 'timed out after 5s', 'connection refused'
    status_code: int | None
    response_time_ms: float | None
    failed_condition: str | None = None  # the condition as written, when kind == "condition"
    observed: str | None = None  # conditions.describe() of what was seen, at most 200 chars
    # Queue checks say more: how bad (a stall is worse than an unreachable queue system),
    # whether the failure is already confirmed by time (stall_after), and since when.
    severity: str | None = None
    confirmed: bool = False
    since: datetime | None = None
    reason_id: str = ""  # the reason in Bahasa Indonesia, where we have words for it


class Check(Protocol):
    @property
    def check_id(self) -> str: ...

    @property
    def interval(self) -> timedelta: ...

    async def run(self) -> Observation:
        """One attempt; returns within the check's timeout and never raises for the target's faults."""
        ...


CheckFactory = Callable[["CheckConfig", "httpx.AsyncClient", "Clock"], Check]

# Imported last: http.py needs Observation from this module.
from status.checks.http import HttpCheck  # noqa: E402

# The config `type` names the class (gatus: key = directory = type constant).
CHECK_TYPES: dict[str, CheckFactory] = {"http": HttpCheck}

__all__ = ["CHECK_TYPES", "Check", "CheckFactory", "HttpCheck", "Observation", "ObservationKind"]

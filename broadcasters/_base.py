"""The interface and its value types; the only machinery a broadcaster imports.

Each broadcaster module also defines, at module level:

    TABLE = "<top-level config key it owns>"

    @asynccontextmanager
    async def open_targets(doc: Mapping[str, Any], deps: Deps) -> AsyncIterator[Sequence[Broadcaster]]

`open_targets` parses its own table (`status.config.parse_table`), opens what it needs and
yields its targets; it yields [] when its table is absent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from status.clock import Clock
from status.config import Config
from status.model import Event

Receipt = (
    str  # opaque, returned by deliver() (e.g. a Telegram message_id) and handed back next time
)


class DeliveryError(Exception):
    """A delivery failed. permanent → the target is disabled and ops are told; retry_after → overrides backoff."""

    def __init__(
        self, reason: str, *, permanent: bool = False, retry_after: timedelta | None = None
    ) -> None:
        super().__init__(reason)
        self.permanent, self.retry_after = permanent, retry_after


@dataclass(frozen=True, slots=True)
class Message:
    target: str  # stable id, e.g. "telegram:@statusemeterai"; keys deliveries and receipts
    body: str  # exactly what is sent (text, HTML, or JSON), stored in the delivery log


class Broadcaster(Protocol):
    @property
    def target(self) -> str: ...

    def wants(self, event: Event) -> bool:
        """Filter: components ["*"], ids, "region:Bali", impact."""
        ...

    def render(self, event: Event) -> Message:
        """Pure: no clock, no I/O; language and zone come from config."""
        ...

    async def deliver(self, message: Message, previous: Receipt | None) -> Receipt | None: ...


class FanOut(Protocol):
    """A broadcaster with many recipients found at plan time (e.g. bot subscribers).

    Each recipient is its own target, f"{prefix}{id}", with its own ordered deliveries, so one
    blocked subscriber never holds up another and a crash loses nobody's message.
    """

    @property
    def prefix(self) -> str: ...

    def wants(self, event: Event) -> bool: ...

    async def recipients(self, conn: AsyncConnection, event: Event) -> Sequence[tuple[str, str]]:
        """(target id, language) of everyone following what `event` touches."""
        ...

    def render_for(self, event: Event, language: str) -> str:
        """Pure: the message body in `language`."""
        ...

    async def deliver(self, message: Message, previous: Receipt | None) -> Receipt | None: ...

    async def gone(self, target: str, reason: str) -> None:
        """A permanent failure for one recipient (e.g. blocked the bot): forget them."""
        ...


@dataclass(frozen=True, slots=True)
class Deps:
    clock: Clock
    http: httpx.AsyncClient
    config: Config
    # Holds every secret in the process: never printed.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    allow_private_targets: bool = False
    engine: AsyncEngine | None = None  # for kinds that keep their own rows (bot subscribers)
    # What kinds opened with these Deps share in this process, by a key of their own: e.g. one
    # Telegram Pacer per bot token, taken by channels and the subscriber bot alike.
    shared: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def regions(self) -> dict[str, str]:
        """component id → region, for "region:<name>" filters."""
        return {b.id: b.region for b in self.config.branches}

    def secret(self, name: str) -> bytes:
        """The value of environment variable `name`; raises KeyError naming it (never its value)."""
        value = self.environ.get(name)
        if not value:
            raise KeyError(f"environment variable {name} is not set")
        return value.encode()

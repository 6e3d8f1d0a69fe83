"""Console: one log line per event, for the demo, development and dry runs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from broadcasters._base import Broadcaster, Deps, Message, Receipt
from status.config import parse_table
from status.i18n import format_local, t
from status.model import Event

TABLE = "console"
log = logging.getLogger("siaran.broadcast")


@dataclass(frozen=True, slots=True)
class Config:
    enabled: bool = True
    language: str = "id"
    timezone: str = "Asia/Jakarta"
    components: tuple[str, ...] = ("*",)


def render_line(event: Event, lang: str, zone: ZoneInfo) -> str:
    """`[14.05 WIB] incident.created · Loket tutup · investigating/major · KCU Medan: Gangguan total`."""
    incident = event.payload.get("incident") or {}
    parts = [f"[{format_local(event.created_at, zone, lang)}] {event.kind}"]
    if incident:
        parts.append(str(incident.get("name", "")))
        parts.append(f"{incident.get('status')}/{incident.get('impact')}")
    changes = [
        f"{c['name']}: {t('component_status.' + c['new_status'], lang)}"
        for c in event.payload.get("component_changes", [])
    ]
    if changes:
        parts.append(", ".join(changes))
    if incident.get("shortlink"):
        parts.append(str(incident["shortlink"]))
    # Control characters in staff text must not forge extra log lines.
    return " · ".join(p.replace("\n", " ").replace("\r", " ") for p in parts)


@dataclass(frozen=True, slots=True)
class Console:
    config: Config
    deps: Deps

    @property
    def target(self) -> str:
        return "console:stderr"

    def wants(self, event: Event) -> bool:
        # Queue readings change every few seconds; the console reports news, not readings.
        if event.kind.startswith("queues."):
            return False
        return event.touches(self.config.components, self.deps.regions)

    def render(self, event: Event) -> Message:
        return Message(
            self.target, render_line(event, self.config.language, ZoneInfo(self.config.timezone))
        )

    async def deliver(self, message: Message, previous: Receipt | None) -> Receipt | None:
        log.info("%s", message.body)
        return None


@asynccontextmanager
async def open_targets(doc: Mapping[str, Any], deps: Deps) -> AsyncIterator[list[Console]]:
    if TABLE not in doc:
        yield []
        return
    config = parse_table(Config, doc[TABLE], path=TABLE)
    yield [Console(config, deps)] if config.enabled else []


_: type[Broadcaster] = Console

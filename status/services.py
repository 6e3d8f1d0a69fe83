"""Services: the wired objects one running instance shares (built in one place, cli → create_app)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from status.clock import Clock
from status.config import Config
from status.core import Core
from status.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class Services:
    config: Config
    engine: AsyncEngine
    clock: Clock
    core: Core
    snapshot: Snapshot
    # Broadcaster targets opened for this instance (broadcasters.open_all); may be empty.
    targets: Sequence[Any] = field(default_factory=tuple)
    # The health prober, when this instance runs checks (status.prober.Prober).
    prober: Any = None
    # Broadcasters with many recipients (broadcasters.open_fanouts), e.g. bot subscribers.
    fanouts: Sequence[Any] = field(default_factory=tuple)


def build_services(
    config: Config,
    engine: AsyncEngine,
    clock: Clock,
    targets: Sequence[Any] = (),
    checks_http: httpx.AsyncClient | None = None,
    fanouts: Sequence[Any] = (),
) -> Services:
    """Wire the core and the snapshot with every public renderer; the one place this happens."""
    from status.render.documents import NEXT_CHANGES, RENDERERS

    core = Core(engine, clock, config)
    snapshot = Snapshot(engine, clock, config, list(RENDERERS), next_changes=list(NEXT_CHANGES))
    core.on_commit(snapshot.on_commit)
    prober = None
    if checks_http is not None and (config.checks or any(b.queue_url for b in config.branches)):
        from status.prober import Prober

        prober = Prober(core, checks_http)
    return Services(config, engine, clock, core, snapshot, tuple(targets), prober, tuple(fanouts))

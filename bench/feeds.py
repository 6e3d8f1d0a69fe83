"""Benchmark: how long the snapshot spends on the Atom/RSS feeds per rebuild.

    .venv/bin/python bench/feeds.py --branches 57 --incidents 300 --updates 4

Builds a synthetic state (3 upstream components plus N branches in 19 regions across WIB,
WITA and WIT; incidents, notices and maintenances with U updates each), then times
status.render.feeds.render_feeds: a cold build (a fresh process: nothing memoized), and a
rebuild after one incident gets one more update (the common case: one event arrives). Each
rebuild also pays status.snapshot.make_rendering (gzip + ETag) for the paths whose bytes
changed; that is timed too. Times are CPU time of this process (time.process_time), so other
work on a shared machine does not inflate them.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from datetime import UTC, datetime, timedelta

from status.config import BranchConfig, ComponentConfig, Config, Site
from status.model import AffectedComponent, Component, Incident, IncidentUpdate, State
from status.render.feeds import render_feeds
from status.snapshot import make_rendering
from status.vocabulary import ComponentStatus, Impact, IncidentKind

T0 = datetime(2026, 9, 1, tzinfo=UTC)
ZONES = ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura")
STATUSES = ("investigating", "identified", "monitoring", "resolved")
MAINTENANCE_STATUSES = ("scheduled", "in_progress", "verifying", "completed")


def build(branches: int, incidents: int, updates: int) -> tuple[State, Config]:
    services = [f"emeterai-{n}" for n in ("purchase", "stamping", "verify")]
    branch_ids = [f"kcu-{n:03d}" for n in range(branches)]
    config = Config(
        site=Site(public_url="https://status.example.id"),
        components=tuple(ComponentConfig(s, s.title(), "Layanan e-Meterai") for s in services),
        branches=tuple(
            BranchConfig(b, f"KCU {b}", f"Wilayah {n % 19}", ZONES[n % 19 % 3])
            for n, b in enumerate(branch_ids)
        ),
    )
    ok = ComponentStatus.OPERATIONAL
    components = [
        Component(s, s.title(), "Layanan e-Meterai", "", "service", n, ok, ok, T0, T0)
        for n, s in enumerate(services)
    ] + [
        Component(b.id, b.name, b.region, "", "branch", 3 + n, ok, ok, T0, T0)
        for n, b in enumerate(config.branches)
    ]
    made: list[Incident] = []
    for n in range(incidents):
        start = T0 + timedelta(hours=6 * n)
        named = [branch_ids[n % branches]] if n % 5 else [services[n % 3], branch_ids[n % branches]]
        affected = tuple(AffectedComponent(c, c, ok, ComponentStatus.MAJOR_OUTAGE) for c in named)
        maintenance = n % 10 == 0
        words = MAINTENANCE_STATUSES if maintenance else STATUSES
        ups = tuple(
            IncidentUpdate(
                f"u{n}-{k}",
                f"i{n}",
                words[min(k, 3)],
                f"Update {k}: antrean tidak bergerak <b>&\n" + "Nomor antrean tetap berlaku. " * 4,
                start + timedelta(minutes=20 * k),
                start + timedelta(minutes=20 * k),
                affected,
            )
            for k in reversed(range(updates))
        )
        made.append(
            Incident(
                f"i{n}",
                IncidentKind.MAINTENANCE if maintenance else IncidentKind.INCIDENT,
                f"Gangguan {n} <script>&",
                "completed" if maintenance else "resolved",
                Impact.MAINTENANCE
                if maintenance
                else (Impact.NONE if n % 7 == 0 else Impact.MAJOR),
                start,
                ups[0].created_at,
                start,
                None,
                ups[0].created_at,
                start if maintenance else None,
                start + timedelta(hours=2) if maintenance else None,
                False,
                "staff",
                dict.fromkeys(named, ComponentStatus.MAJOR_OUTAGE),
                ups,
            )
        )
    made.reverse()
    state = State(
        components=tuple(components),
        incidents=tuple(i for i in made if i.kind is IncidentKind.INCIDENT),
        maintenances=tuple(i for i in made if i.kind is IncidentKind.MAINTENANCE),
        last_event_id=1,
        loaded_at=made[0].updated_at,
        last_change_at=made[0].updated_at,
    )
    return state, config


def one_more_update(state: State, n: int) -> State:
    """The newest incident gets update number n."""
    first = state.incidents[0]
    at = first.updated_at + timedelta(minutes=5)
    update = IncidentUpdate(f"extra-{n}", first.id, "monitoring", f"Pembaruan {n}", at, at)
    changed = dataclasses.replace(first, updates=(update, *first.updates), updated_at=at)
    return dataclasses.replace(state, incidents=(changed, *state.incidents[1:]), loaded_at=at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--branches", type=int, default=57)
    parser.add_argument("--incidents", type=int, default=300)
    parser.add_argument("--updates", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    state, config = build(args.branches, args.incidents, args.updates)

    started = time.process_time()
    files = render_feeds(state, config, state.loaded_at)
    cold = time.process_time() - started
    size = sum(len(body) for body, _ in files.values())

    renders, installs = [], []
    for n in range(args.rounds):
        state = one_more_update(state, n)
        started = time.process_time()
        new = render_feeds(state, config, state.loaded_at)
        renders.append(time.process_time() - started)
        started = time.process_time()
        for path, (body, content_type) in new.items():
            if files[path][0] != body:
                make_rendering(body, content_type, state.loaded_at)
        installs.append(time.process_time() - started)
        files = new

    print(
        f"{len(state.components)} components, {args.incidents} incidents x {args.updates} "
        f"updates: {len(files)} feed paths, {size / 1e6:.1f} MB"
    )
    print(f"cold render:              {cold * 1000:7.1f} ms")
    print(f"rebuild after one update: {statistics.median(renders) * 1000:7.1f} ms (median)")
    print(f"  + gzip/ETag of changed: {statistics.median(installs) * 1000:7.1f} ms (median)")


if __name__ == "__main__":
    main()

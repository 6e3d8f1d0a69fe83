"""Benchmark: the health prober at N loopback endpoints vs a bare aiohttp client on the same ones.

    .venv/bin/python bench/prober.py --endpoints 20000 --duration 90

Three kinds of process, so that each one's CPU is its own:

- fleet: `--fleet-workers` asyncio servers answering `{"status":"UP"}` on N distinct host:port
  pairs (127.42.a.b x ports from 21000; every address in 127.0.0.0/8 is loopback on Linux);
- siaran: the real Prober (a config with N [[check]]s, SQLite in a temp dir, SystemClock);
- reference: bare aiohttp fetching the same N URLs at the same instants, concurrently.

The check rows exist before the measured start, as after a restart (`--first-start` measures
a first start instead). The first interval is warm-up (every check's first phase) and is
reported apart; the window after it is measured by a thread, so an overloaded loop cannot
stretch it. See bench/README.md ("prober.py") for how to read the table and what was found;
results go to bench/results/prober-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import math
import os
import platform
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, cast

from summary import Processes, _raise_interrupt, tail

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
BIN_DIR = Path(sys.executable).parent

INTERVAL_S = 30  # every check's interval, as in the issue
TIMEOUT = "5s"
ON_TIME_S = 1.0  # a run is on time when it starts within this of its slot
GRACE_S = 2.0  # after the window, for the prober's flush (every 250 ms) to write the last results
LATE_S = 20.0  # how long after the window a result may still arrive before it counts as lost
BASE_PORT = 21000  # below the ephemeral range (32768-60999 here), so no port is taken from it
HOSTS_PER_OCTET = 250
PATH = "/health"
SEED = 20240917  # the phases; the same in the prober and the reference
CHECKS_CLIENTS = ("shipped", "httpcore")
PACKAGES = (
    "httpx",
    "httpcore",
    "anyio",
    "aiohttp",
    "sqlalchemy",
    "aiosqlite",
    "uvloop",
)

# -- shared --------------------------------------------------------------------------------------


def endpoints(n: int, ports: int) -> list[tuple[str, int]]:
    """N distinct (host, port) pairs: `ports` ports on each of ceil(N / ports) loopback addresses."""
    out = []
    for i in range(n):
        a = i // ports
        out.append(
            (f"127.42.{a // HOSTS_PER_OCTET}.{a % HOSTS_PER_OCTET + 1}", BASE_PORT + i % ports)
        )
    return out


def url_of(host: str, port: int) -> str:
    return f"http://{host}:{port}{PATH}"


def raise_nofile() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (not raised here: that needs CAP_SYS_RESOURCE)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_seconds() -> tuple[float, float]:
    """(user, system) CPU of this process, all threads (aiosqlite's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def sleep_until(at: float) -> None:
    delay = at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


@dataclass(slots=True)
class Window:
    """What one client did with the slots due in [start, end): the table's row."""

    start: float
    end: float
    expected: int = 0  # slots due in the window
    started: int = 0  # runs started for a slot in the window (skipped slots never start)
    on_time: int = 0
    drift_p50_s: float | None = None
    drift_p99_s: float | None = None
    drift_max_s: float | None = None
    skipped: int = 0
    completed: int = 0  # runs that finished in the window, whenever their slot was
    failed: int = 0  # of those, answers that were not 200 + {"status": "UP"}
    cpu_s: float = 0.0
    cpu_user_s: float = 0.0
    cpu_sys_s: float = 0.0
    lag_p99_ms: float | None = None  # event-loop lag of a 100 ms ticker
    lag_max_ms: float | None = None
    cpu_per_second: list[float] = field(default_factory=list)

    @property
    def cpu_per_check_ms(self) -> float | None:
        return self.cpu_s * 1000 / self.completed if self.completed else None

    @property
    def core_percent(self) -> float:
        return 100 * self.cpu_s / (self.end - self.start)

    @property
    def on_time_percent(self) -> float | None:
        return 100 * self.on_time / self.expected if self.expected else None


def expected_slots(first_due: Sequence[float], start: float, end: float) -> int:
    count = 0
    for due in first_due:
        k = max(0, math.ceil((start - due) / INTERVAL_S))
        if due + k * INTERVAL_S < end:
            count += math.ceil((end - due - k * INTERVAL_S) / INTERVAL_S)
    return count


def fill_drift(window: Window, starts: Sequence[tuple[float, float]]) -> None:
    """starts: (due, drift) of every run started; those due in the window are counted."""
    drift = [d for due, d in starts if window.start <= due < window.end]
    window.started = len(drift)
    window.on_time = sum(1 for d in drift if d <= ON_TIME_S)
    window.drift_p50_s = quantile(drift, 0.5)
    window.drift_p99_s = quantile(drift, 0.99)
    window.drift_max_s = max(drift, default=None)


class Meter(threading.Thread):
    """Measures the window from a thread of its own, then writes the role's result and exits.

    An overloaded event loop wakes its sleepers late and can take minutes to cancel thousands
    of runs; this thread waits for neither. It takes CPU and `counters` (plain ints, read under
    the GIL) at the window's two instants, waits GRACE_S for the last results to be written,
    calls `finish` for the role's result, writes it to `out` and ends the process. The event
    loop's own lag is measured inside the loop by `tick()`.
    """

    def __init__(
        self,
        window: Window,
        counters: Callable[[], Mapping[str, int]],
        finish: Callable[[Meter], dict[str, Any]],
        out: str,
    ) -> None:
        super().__init__(name="meter", daemon=True)
        self.window, self.counters, self.finish, self.out = window, counters, finish, out
        self.lag_ms: list[float] = []
        self.at_start: dict[str, int] = {}
        self.at_end: dict[str, int] = {}

    def run(self) -> None:
        try:
            self._measure()
            time.sleep(GRACE_S)
            write_json(self.out, self.finish(self))
            code = 0
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        # Not a clean exit on purpose: closing thousands of sockets and pooled connections
        # measures nothing and, with an overloaded loop, can take longer than the run.
        os._exit(code)

    def _measure(self) -> None:
        w = self.window
        time.sleep(max(0.0, w.start - time.time()))
        user0, sys0 = cpu_seconds()
        self.at_start = dict(self.counters())
        last, second = user0 + sys0, w.start + 1
        while second <= w.end:
            time.sleep(max(0.0, second - time.time()))
            now = sum(cpu_seconds())
            w.cpu_per_second.append(round(now - last, 4))
            last, second = now, second + 1
        time.sleep(max(0.0, w.end - time.time()))
        self.at_end = dict(self.counters())
        user1, sys1 = cpu_seconds()
        w.cpu_user_s, w.cpu_sys_s = user1 - user0, sys1 - sys0
        w.cpu_s = w.cpu_user_s + w.cpu_sys_s
        lag = list(self.lag_ms)
        w.lag_p99_ms = quantile(lag, 0.99)
        w.lag_max_ms = max(lag, default=None)

    def delta(self, name: str) -> int:
        return self.at_end[name] - self.at_start[name]

    async def tick(self) -> None:
        """Event-loop lag: how late a 100 ms sleep wakes, inside the window."""
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.1)
            if self.window.start <= time.time() < self.window.end:
                self.lag_ms.append((time.perf_counter() - t - 0.1) * 1000)


# -- fleet: the endpoints --------------------------------------------------------------------


def fleet_response(keep_alive: bool) -> bytes:
    body = b'{"status":"UP"}'
    head = (
        "HTTP/1.1 200 OK\r\n"
        "Server: fleet\r\n"
        f"Date: {formatdate(usegmt=True)}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + body


@dataclass(slots=True)
class FleetStats:
    connections: int = 0
    requests: int = 0


class Endpoint(asyncio.Protocol):
    """A tiny HTTP/1.1 server: every request (no body) gets the same 200 JSON answer."""

    def __init__(self, stats: FleetStats, keep_alive: bool, hang: bool = False) -> None:
        self.stats, self.keep_alive, self.hang = stats, keep_alive, hang
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.stats.connections += 1

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.hang:  # an upstream in trouble: takes the request, never answers
            return
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end].lower(), self.buffer[end + 4 :]
            self.stats.requests += 1
            if self.keep_alive and b"connection: close" not in head:
                self.transport.write(KEEP_ALIVE)
            else:
                self.transport.write(CLOSE)
                self.transport.close()
                return


KEEP_ALIVE, CLOSE = fleet_response(True), fleet_response(False)


async def serve_fleet(params: Mapping[str, Any]) -> FleetStats:
    loop = asyncio.get_running_loop()
    stats = FleetStats()
    keep_alive = bool(params["keep_alive"])
    servers = []
    for i, (host, port) in enumerate(params["pairs"], start=int(params["first_index"])):
        hang = i % 100 < int(params["hang_percent"])
        servers.append(
            await loop.create_server(
                partial(Endpoint, stats, keep_alive, hang),
                host,
                port,
                reuse_address=True,
                backlog=128,
            )
        )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    for server in servers:
        server.close()
    return stats


def run_fleet(params: Mapping[str, Any]) -> None:
    raise_nofile()
    try:
        import uvloop  # the fleet's CPU is not measured; uvloop leaves more of the box to the rest

        stats = uvloop.run(serve_fleet(params))
    except ImportError:
        stats = asyncio.run(serve_fleet(params))
    write_json(params["out"], asdict(stats))


def write_json(path: str | Path, value: object) -> None:
    """Written whole, then renamed: another process polls for the file and reads it at once."""
    partial_path = Path(f"{path}.part")
    partial_path.write_text(json.dumps(value))
    partial_path.replace(path)


# -- siaran: the real prober -----------------------------------------------------------------


def config_text(params: Mapping[str, Any]) -> str:
    components = int(params["components"])
    lines = [
        "[site]",
        'name = "Prober bench"',
        'public_url = "http://127.0.0.1:8080"',
        "",
        "[storage]",
        f'url = "sqlite:///{params["db"]}"',
        "",
    ]
    if params.get("concurrency"):
        lines += ["[prober]", f"concurrency = {int(params['concurrency'])}", ""]
    for c in range(components):
        lines += [
            "[[component]]",
            f'id = "svc-{c:03d}"',
            f'name = "Service {c:03d}"',
            'group = "Bench"',
            "",
        ]
    for i, url in enumerate(params["urls"]):
        lines += [
            "[[check]]",
            f'id = "check-{i:06d}"',
            f'component = "svc-{i % components:03d}"',
            f'url = "{url}"',
            f'interval = "{INTERVAL_S}s"',
            f'timeout = "{TIMEOUT}"',
            """conditions = ["status == 200", "body.status == 'UP'"]""",
            "",
        ]
    return "\n".join(lines)


class StartLog(list[float]):
    """Stands in for Prober.timing.drift_s and also notes when each run started (due = then - drift)."""

    def __init__(self) -> None:
        super().__init__()
        self.started_at: list[float] = []

    def append(self, drift: float, /) -> None:
        self.started_at.append(time.time())
        super().append(drift)

    def starts(self) -> list[tuple[float, float]]:
        """(due, drift) of each run; read from the Meter's thread while the loop may append."""
        n = min(len(self.started_at), len(self))
        return [(at - d, d) for at, d in zip(self.started_at[:n], self[:n], strict=True)]


def checks_client(config: Any, client: str) -> Any:
    """The prober's httpx client: as `siaran serve` builds it, or over httpx's own transport.

    "httpcore" is the client shipped before status/checks/transport.py (httpx's default
    transport, whose pool collapses at thousands of hosts); kept to measure the difference.
    """
    import httpx

    if client == "shipped":
        from status.web.asgi import checks_client as shipped

        return shipped(config)
    limit = config.prober.concurrency
    return httpx.AsyncClient(
        follow_redirects=False,
        limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
        headers={"user-agent": "siaran-prober/bench"},
    )


async def measure_siaran(params: Mapping[str, Any]) -> None:
    import logging

    from sqlalchemy import insert

    from status import db
    from status.clock import SystemClock
    from status.config import load_config_text
    from status.prober import Prober
    from status.schema import check_state
    from status.services import build_services

    logging.basicConfig(level=logging.WARNING)
    setup: dict[str, float] = {}
    t = time.perf_counter()
    config = load_config_text(config_text(params), "bench.toml")
    setup["config_s"] = time.perf_counter() - t
    engine = db.make_engine(f"sqlite:///{params['db']}")
    t = time.perf_counter()
    await db.migrate(engine)
    setup["migrate_s"] = time.perf_counter() - t
    http = checks_client(config, params["client"])
    services = build_services(config, engine, SystemClock())
    async with services.core.transaction() as tx:
        await services.core.sync_components(tx)
    seed = int(params["seed"])
    if not params["first_start"]:
        # A restart, the steady case: the check rows exist before start() (`--first-start`
        # lets ensure_rows() write them in the warm-up instead).
        now = datetime.now(UTC)
        rows = [
            {
                "check_id": c.id,
                "component_id": c.component,
                "severity": c.severity,
                "failing": False,
                "transitions": [],
                "updated_at": now,
            }
            for c in config.checks
        ]
        async with db.write(engine) as conn:
            await conn.execute(insert(check_state), rows)
    prober = Prober(services.core, http, rng=random.Random(seed))  # noqa: S311 - phases
    start_log = StartLog()
    prober.timing.drift_s = start_log
    t = time.perf_counter()
    await prober.start()
    setup["start_s"] = time.perf_counter() - t
    setup["rss_after_start_mb"] = rss_mb()[0]
    # The phases the prober drew (Job.next_at, before any run), for the reference to share.
    first_due = [prober._jobs[c.id].next_at.timestamp() for c in config.checks]
    t_base = min(first_due)
    warm = Window(t_base, t_base + INTERVAL_S)
    window = Window(warm.end, t_base + float(params["duration"]))
    write_json(params["schedule"], {"due": first_due, "t_warm": window.start, "t_end": window.end})
    print(f"ready: start() took {setup['start_s']:.1f}s", flush=True)

    gc_pauses = GcPauses(window)

    def finish(meter: Meter) -> dict[str, Any]:
        starts = start_log.starts()
        for w in (warm, window):
            w.expected = expected_slots(first_due, w.start, w.end)
            fill_drift(w, starts)
        window.completed = meter.delta("runs")
        window.skipped = meter.delta("skipped")
        results = count_results(params["db"], window)
        on_time_written = sum(results.values())
        # Results are counted by when the run started (`at`), so compare with the runs that
        # started in the window, whatever their slot.
        begun = sum(1 for due, drift in starts if window.start <= due + drift < window.end)
        waited = GRACE_S
        # Late is not lost: a lagging loop delays writes by seconds (each statement of a
        # write transaction waits its turn on the loop). Wait a while longer to tell them apart.
        while sum(results.values()) < begun and waited < LATE_S:
            time.sleep(0.5)
            waited += 0.5
            results = count_results(params["db"], window)
        window.failed = sum(n for k, n in results.items() if not k.startswith("ok:"))
        current, peak = rss_mb()
        return {
            "client": params["client"],
            "setup": setup,
            "warmup": _window_dict(warm),
            "window": _window_dict(window),
            # Observations written for the window's slots by GRACE_S after it, and by
            # `results_waited_s` (at most LATE_S); fewer than `started` by then means lost.
            "results_in_db": results,
            "results_written_by_grace": on_time_written,
            "results_written": sum(results.values()),
            "results_waited_s": waited,
            "runs_begun_in_window": begun,
            "rss_end_mb": current,
            "rss_peak_mb": peak,
            "gc": gc_pauses.summary(),
        }

    counters = {"runs": 0, "skipped": 0}

    def read_counters() -> Mapping[str, int]:
        counters.update(runs=prober.timing.runs, skipped=prober.timing.skipped)
        return counters

    meter = Meter(window, read_counters, finish, params["out"])
    gc.callbacks.append(gc_pauses.note)
    meter.start()
    async with asyncio.TaskGroup() as group:  # until the meter ends the process
        group.create_task(prober.run(), name="prober")
        group.create_task(meter.tick(), name="ticker")
    raise RuntimeError("the prober stopped before the window was measured")


class GcPauses:
    """The cyclic garbage collector's pauses in the window, per generation: they stop the loop."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.started = 0.0
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}

    def note(self, phase: str, info: Mapping[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        elif self.window.start <= time.time() < self.window.end:
            self.pauses[info["generation"]].append(time.perf_counter() - self.started)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            f"gen{g}": {"count": len(p), "total_s": sum(p), "max_s": max(p, default=0.0)}
            for g, p in self.pauses.items()
        }


def count_results(db_path: str, window: Window) -> dict[str, int]:
    """Observations in the window by outcome, read on a connection of this thread's own."""
    from sqlalchemy import create_engine, func, select

    from status.schema import check_results

    engine = create_engine(f"sqlite:///{db_path}")
    with engine.connect() as conn:
        rows = conn.execute(
            select(check_results.c.ok, check_results.c.kind, func.count())
            .where(
                check_results.c.at >= datetime.fromtimestamp(window.start, UTC),
                check_results.c.at < datetime.fromtimestamp(window.end, UTC),
            )
            .group_by(check_results.c.ok, check_results.c.kind)
        )
        return {f"{'ok' if r[0] else 'failed'}:{r[1]}": int(r[2]) for r in rows}


def _window_dict(w: Window) -> dict[str, Any]:
    out = asdict(w)
    out.update(
        cpu_per_check_ms=w.cpu_per_check_ms,
        core_percent=w.core_percent,
        on_time_percent=w.on_time_percent,
    )
    return out


# -- reference: bare aiohttp -----------------------------------------------------------------


async def measure_reference(params: Mapping[str, Any]) -> None:
    import aiohttp

    plan = params["plan"]
    first_due: list[float] = plan["due"]
    window = Window(float(plan["t_warm"]), float(plan["t_end"]))
    late_start = time.time() - window.start
    starts: list[tuple[float, float]] = []
    counters = {"completed": 0, "failed": 0, "skipped": 0}
    limit = int(params["concurrency"])
    semaphore = asyncio.Semaphore(limit)  # as the prober's [prober] concurrency
    timeout = aiohttp.ClientTimeout(total=5)
    # httpx's keep-alive expiry (5 s by default), so both clients hold the same idle connections.
    connector = aiohttp.TCPConnector(limit=limit, keepalive_timeout=float(params["keepalive"]))
    session = aiohttp.ClientSession(connector=connector, timeout=timeout)

    async def fetch(url: str) -> bool:
        try:
            async with session.get(url, allow_redirects=False) as response:
                body = await response.read()
            return response.status == 200 and json.loads(body).get("status") == "UP"
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False

    async def every_interval(url: str, due: float) -> None:
        while True:
            await sleep_until(due)
            starts.append((due, time.time() - due))
            async with semaphore:
                ok = await fetch(url)
            counters["completed"] += 1
            counters["failed"] += not ok
            due += INTERVAL_S
            while due <= time.time():  # never overlap itself, as the prober: skip the slot
                counters["skipped"] += 1
                due += INTERVAL_S

    def finish(meter: Meter) -> dict[str, Any]:
        window.expected = expected_slots(first_due, window.start, window.end)
        fill_drift(window, list(starts))
        window.completed = meter.delta("completed")
        window.failed = meter.delta("failed")
        window.skipped = meter.delta("skipped")
        current, peak = rss_mb()
        return {
            "late_start_s": late_start,
            "window": _window_dict(window),
            "rss_end_mb": current,
            "rss_peak_mb": peak,
        }

    meter = Meter(window, lambda: counters, finish, params["out"])
    meter.start()
    async with asyncio.TaskGroup() as group:  # until the meter ends the process
        for url, due in zip(params["urls"], first_due, strict=True):
            group.create_task(every_interval(url, due))
        group.create_task(meter.tick())


# -- orchestration -----------------------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} not ready after {timeout:.0f}s:\n{tail(log)}")
        time.sleep(0.2)


def _says_ready(log: Path) -> bool:
    return "ready" in log.read_text(encoding="utf-8", errors="replace")


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a live process from /proc (the fleet's, the box's share of it)."""
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def box_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole box since boot, all cores (steal counts as busy)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


def sockstat() -> dict[str, int]:
    """TCP sockets in use and in TIME_WAIT, box-wide (/proc/net/sockstat)."""
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            words = line.split()[1:]
            return {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}
    return {}


def versions() -> dict[str, str]:
    out = {
        "python": platform.python_version(),
        "kernel": platform.release(),
        "cpus": str(os.cpu_count()),
    }
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


def system_limits() -> dict[str, str]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text().strip().replace("\t", " ")
        except OSError:
            return "-"

    return {
        "nofile": " ".join(str(v) for v in resource.getrlimit(resource.RLIMIT_NOFILE)),
        "ip_local_port_range": read("/proc/sys/net/ipv4/ip_local_port_range"),
        "tcp_tw_reuse": read("/proc/sys/net/ipv4/tcp_tw_reuse"),
        "tcp_max_tw_buckets": read("/proc/sys/net/ipv4/tcp_max_tw_buckets"),
        "somaxconn": read("/proc/sys/net/core/somaxconn"),
    }


def code_version(code: Path) -> dict[str, str]:
    """What was measured: a digest of the copied status/, and the repo's commit (read-only git)."""
    digest = hashlib.sha256()
    for path in sorted((code / "status").rglob("*.py")):
        digest.update(path.relative_to(code).as_posix().encode() + b"\0" + path.read_bytes())
    out = {"status_sha256": digest.hexdigest()[:16]}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out["commit"] = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        out["dirty"] = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "status"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    return out


def copy_code(source: Path, target: Path) -> Path:
    """status/ and broadcasters/ into the temp dir: a run measures one version of the code."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("status", "broadcasters"):
        shutil.copytree(source / package, target / package, ignore=ignore)
    return target


def role_argv(role: str, params_path: Path) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--role",
        role,
        "--params",
        str(params_path),
    ]


@dataclass(slots=True)
class BoxSample:
    at: float
    time_wait: int
    tcp_inuse: int


def wait_for_quiet(limit_s: float, busy_cores: float = 0.5) -> float:
    """Wait up to limit_s for other work on the box to settle; returns the busy cores seen last."""
    deadline = time.monotonic() + limit_s
    while True:
        b0, _ = box_cpu_s()
        time.sleep(2)
        busy = (box_cpu_s()[0] - b0) / 2
        if busy < busy_cores or time.monotonic() > deadline:
            return busy


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    raise_nofile()
    busy_before = wait_for_quiet(args.quiet_wait)
    if busy_before >= 0.5:
        print(f"the box is busy ({busy_before:.2f} cores) before the run", file=sys.stderr)
    pairs = endpoints(args.endpoints, args.ports)
    urls = [url_of(h, p) for h, p in pairs]
    # Each fleet worker holds its listeners plus open connections under the hard RLIMIT_NOFILE.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    workers = args.fleet_workers or max(1, math.ceil(len(pairs) / max(1000, hard // 3)))
    tmp = Path(tempfile.mkdtemp(prefix="siaran-prober-bench-"))
    procs = Processes(tmp)
    samples: list[BoxSample] = []
    try:
        code = copy_code(Path(args.code) if args.code else REPO, tmp / "code")
        chunk = math.ceil(len(pairs) / workers)
        for w in range(workers):
            params = {
                "pairs": pairs[w * chunk : (w + 1) * chunk],
                "keep_alive": args.connection == "keep-alive",
                "first_index": w * chunk,
                "hang_percent": args.hang_percent,
                "out": str(tmp / f"fleet-{w}.json"),
            }
            path = tmp / f"fleet-{w}.params.json"
            path.write_text(json.dumps(params))
            procs.start(f"fleet-{w}", role_argv("fleet", path))
        for w in range(workers):
            log = tmp / f"fleet-{w}.log"
            wait_for(partial(_says_ready, log), 60, f"fleet-{w}", log)
        print(
            f"fleet: {len(pairs)} endpoints on {workers} worker(s), {args.connection}",
            file=sys.stderr,
        )

        schedule = tmp / "schedule.json"
        siaran_params = {
            "urls": urls,
            "components": args.components,
            "db": str(tmp / "siaran.db"),
            "client": args.checks_client,
            "seed": SEED,
            "duration": args.duration,
            "schedule": str(schedule),
            "concurrency": args.concurrency,
            "first_start": args.first_start,
            "loop": args.loop,
            "out": str(tmp / "siaran.json"),
        }
        (tmp / "siaran.params.json").write_text(json.dumps(siaran_params))
        started = time.monotonic()
        # The copied code first; then --code itself, for what a prototype adds beside status/.
        extra = [str(Path(args.code).resolve())] if args.code else []
        env = {"PYTHONPATH": os.pathsep.join([str(code), *extra])}
        procs.start("siaran", role_argv("siaran", tmp / "siaran.params.json"), env)
        wait_for(schedule.exists, args.setup_timeout, "siaran prober", tmp / "siaran.log")
        setup_s = time.monotonic() - started
        plan = json.loads(schedule.read_text())
        print(
            f"siaran: set up in {setup_s:.1f}s; measuring {plan['t_end'] - plan['t_warm']:.0f}s after a {INTERVAL_S}s warm-up",
            file=sys.stderr,
        )
        if args.reference:
            ref_params = {
                "urls": urls,
                "schedule": str(schedule),
                "concurrency": args.concurrency or 500,
                "loop": args.loop,
                "keepalive": args.reference_keepalive,
                "out": str(tmp / "reference.json"),
            }
            (tmp / "reference.params.json").write_text(json.dumps(ref_params))
            procs.start("reference", role_argv("reference", tmp / "reference.params.json"))
        profile = tmp / "profile.txt"
        if args.profile:
            wait_until = plan["t_warm"] - time.time()
            time.sleep(max(0.0, wait_until))
            procs.start(
                "py-spy",
                [
                    str(BIN_DIR / "py-spy"), "record", "--pid", str(procs.pid(args.profile)), "--rate", "100",
                    "--nonblocking", "--format", "raw", "--duration", str(int(plan["t_end"] - plan["t_warm"])),
                    "--output", str(profile),
                ],
            )  # fmt: skip

        fleet_pids = [procs.pid(f"fleet-{w}") for w in range(workers)]
        box_at: dict[str, tuple[float, float, float]] = {}
        deadline = plan["t_end"] + LATE_S + 60
        clients = ["siaran", *(["reference"] if args.reference else [])]
        while any(procs.running[c][0].poll() is None for c in clients):
            if time.time() > deadline:
                raise SystemExit(
                    f"clients still running 60s after the window:\n{tail(tmp / 'siaran.log')}"
                )
            stat = sockstat()
            samples.append(BoxSample(time.time(), stat.get("tw", 0), stat.get("inuse", 0)))
            for mark in ("t_warm", "t_end"):
                if mark not in box_at and time.time() >= plan[mark]:
                    busy, total = box_cpu_s()
                    box_at[mark] = (busy, total, sum(proc_cpu_s(p) for p in fleet_pids))
            time.sleep(0.5)
        for c in clients:
            code_ = procs.wait(c, 1)
            if code_ != 0:
                raise SystemExit(f"{c} failed ({code_}):\n{tail(tmp / f'{c}.log')}")
        if args.profile:
            procs.wait("py-spy", 30)
        for w in range(workers):
            procs.stop(f"fleet-{w}")
        fleet = [json.loads((tmp / f"fleet-{w}.json").read_text()) for w in range(workers)]
        siaran = json.loads((tmp / "siaran.json").read_text())
        reference = json.loads((tmp / "reference.json").read_text()) if args.reference else None
        box: dict[str, Any] = {}
        if len(box_at) == 2:
            (b0, t0, f0), (b1, t1, f1) = box_at["t_warm"], box_at["t_end"]
            seconds = plan["t_end"] - plan["t_warm"]
            ours = siaran["window"]["cpu_s"] + (reference["window"]["cpu_s"] if reference else 0)
            box = {
                "busy_cores": (b1 - b0) / seconds,
                "cores": (t1 - t0) / seconds,
                "fleet_cores": (f1 - f0) / seconds,
                # Everything else on the box (other work, steal): high values disturb the run.
                "other_cores": (b1 - b0 - f1 + f0 - ours) / seconds,
                "busy_before": busy_before,
            }
        in_window = [s for s in samples if plan["t_warm"] <= s.at < plan["t_end"]]
        box["time_wait_max"] = max((s.time_wait for s in in_window), default=0)
        box["tcp_inuse_max"] = max((s.tcp_inuse for s in in_window), default=0)
        return {
            "args": vars(args),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": versions(),
            "code": {**code_version(code), "from": str(args.code or REPO)},
            "limits": system_limits(),
            "fleet": {"workers": workers, "per_worker": fleet, "ports": args.ports},
            "setup_s": setup_s,
            "siaran": siaran,
            "reference": reference,
            "box": box,
            "profile": summarize_profile(profile) if args.profile and profile.exists() else None,
        }
    finally:
        procs.stop_all()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def summarize_profile(path: Path, top: int = 25) -> dict[str, list[tuple[str, float]]]:
    """py-spy's collapsed stacks → the functions with the most samples, inclusive and self (%)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(f) for f in stack.split(";")]
        for name in set(frames):
            inclusive[name] = inclusive.get(name, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count

    def ranked(counts: dict[str, int]) -> list[tuple[str, float]]:
        best = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [(name, round(100 * n / max(total, 1), 1)) for name, n in best]

    return {
        "inclusive": ranked(inclusive),
        "self": ranked(own),
        "samples": [("total", float(total))],
    }


def _frame_name(frame: str) -> str:
    """'flush (status/prober.py:230)' → 'flush (status/prober.py)': lines vary, functions don't."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/code/", "lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


# -- report ----------------------------------------------------------------------------------------


def _f(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(result: Mapping[str, Any]) -> str:
    loop = f", {result['args'].get('loop', 'asyncio')}"
    code = " proto" if result["args"].get("code") else ""
    rows: list[tuple[str, Mapping[str, Any], float]] = [
        (
            f"siaran{code} ({result['siaran']['client']}{loop})",
            result["siaran"]["window"],
            result["siaran"]["rss_peak_mb"],
        )
    ]
    if result["reference"]:
        rows.append(
            (
                f"aiohttp (reference{loop})",
                result["reference"]["window"],
                result["reference"]["rss_peak_mb"],
            )
        )
    warm = result["siaran"]["warmup"]
    lines = [
        f"{'client':30} {'expected':>8} {'started':>8} {'on time':>8} {'drift p50':>9} {'p99 s':>7} "
        f"{'max s':>7} {'skipped':>7} {'failed':>6} {'cpu/check':>9} {'core':>6} {'RSS MB':>7} {'lag p99':>8}",
    ]
    for name, w, rss in rows:
        lines.append(
            f"{name:30} {w['expected']:>8} {w['started']:>8} {_f(w['on_time_percent'], '7.2f')}% "
            f"{_f(w['drift_p50_s'], '9.3f')} {_f(w['drift_p99_s'], '7.3f')} {_f(w['drift_max_s'], '7.2f')} "
            f"{w['skipped']:>7} {w['failed']:>6} {_f(w['cpu_per_check_ms'], '7.3f')}ms "
            f"{w['core_percent']:5.1f}% {rss:7.0f} {_f(w['lag_p99_ms'], '6.0f')}ms"
        )
    lines.append(
        f"{'  warm-up (first 30s)':30} {warm['expected']:>8} {warm['started']:>8} "
        f"{_f(warm['on_time_percent'], '7.2f')}% {_f(warm['drift_p50_s'], '9.3f')} "
        f"{_f(warm['drift_p99_s'], '7.3f')} {_f(warm['drift_max_s'], '7.2f')}"
    )
    s = result["siaran"]["window"]
    written = result["siaran"]["results_written"]
    by_grace = result["siaran"].get("results_written_by_grace", written)
    waited = result["siaran"].get("results_waited_s", GRACE_S)
    begun = result["siaran"].get("runs_begun_in_window", s["started"])
    lines.append(
        f"siaran results written for the window: {by_grace} of {begun} runs begun in it "
        f"{GRACE_S:.0f} s after it, {written} after {waited:.1f} s "
        f"({result['siaran']['results_in_db']})"
    )
    if result["siaran"].get("gc"):
        lines.append(
            "siaran gc pauses in the window: "
            + ", ".join(
                f"{g} {v['count']:.0f}x {v['total_s']:.2f}s (max {v['max_s'] * 1000:.0f}ms)"
                for g, v in result["siaran"]["gc"].items()
            )
        )
    targets = [
        ("on time >= 99%", (s["on_time_percent"] or 0) >= 99),
        ("drift p99 < 1 s", s["drift_p99_s"] is not None and s["drift_p99_s"] < 1),
        ("under half a core", s["core_percent"] < 50),
        ("no failed checks", s["failed"] == 0),
        ("no results lost", written >= begun),
    ]
    if result["reference"]:
        r = result["reference"]["window"]
        ratio = (s["cpu_per_check_ms"] or 0) / (r["cpu_per_check_ms"] or float("inf"))
        lines.append(f"cpu per check, siaran / aiohttp: {ratio:.2f}x")
        targets.append(("cpu per check <= 3x aiohttp", ratio <= 3))
    box = result["box"]
    lines.append(
        f"box: {_f(box.get('busy_cores'), '.2f')} of {_f(box.get('cores'), '.0f')} cores busy "
        f"(fleet {_f(box.get('fleet_cores'), '.2f')}, other work {_f(box.get('other_cores'), '.2f')}); "
        f"TIME_WAIT max {box['time_wait_max']}, "
        f"TCP in use max {box['tcp_inuse_max']}; setup {result['setup_s']:.1f}s "
        f"(prober.start() {result['siaran']['setup']['start_s']:.1f}s)"
    )
    lines.append(
        "targets: " + ", ".join(f"{name} {'ok' if ok else 'MISSED'}" for name, ok in targets)
    )
    if result.get("profile"):
        lines.append(f"py-spy of {result['args']['profile']}, % of samples: self, then inclusive")
        lines += [f"  {pct:5.1f}  {name}" for name, pct in result["profile"]["self"][:12]]
        lines += [f"  {pct:5.1f}  {name}" for name, pct in result["profile"]["inclusive"][:30]]
    return "\n".join(lines)


def run_loop(loop: str, main: Coroutine[Any, Any, None]) -> None:
    """uvloop.run, as `siaran serve` does (status/cli.py), or the stdlib loop (asyncio.run)."""
    if loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--endpoints", type=int, default=20000)
    parser.add_argument(
        "--duration", type=float, default=90, help="seconds, warm-up included (>= 60)"
    )
    parser.add_argument("--ports", type=int, default=100, help="ports per loopback address")
    parser.add_argument("--components", type=int, default=20)
    parser.add_argument("--checks-client", choices=CHECKS_CLIENTS, default="shipped")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="[prober] concurrency (default: the config's)"
    )
    parser.add_argument("--connection", choices=("keep-alive", "close"), default="keep-alive")
    parser.add_argument(
        "--hang-percent",
        type=int,
        default=0,
        help="this %% of endpoints never answer (an outage: checks wait for their 5 s timeout)",
    )
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="both clients' event loop (`siaran serve` runs on uvloop)",
    )
    parser.add_argument("--fleet-workers", type=int, default=0, help="default: by RLIMIT_NOFILE")
    parser.add_argument("--no-reference", dest="reference", action="store_false")
    parser.add_argument(
        "--reference-keepalive",
        type=float,
        default=5.0,
        help="the reference's keep-alive expiry, s (httpx's default; over 30 reuses connections)",
    )
    parser.add_argument(
        "--first-start",
        action="store_true",
        help="measure the very first start (rows written in the warm-up)",
    )
    parser.add_argument(
        "--profile",
        choices=("siaran", "reference"),
        help="py-spy that process during the window (top functions in the table and the JSON)",
    )
    parser.add_argument(
        "--code", help="a directory with status/ (a prototype) instead of this repo's"
    )
    parser.add_argument("--setup-timeout", type=float, default=90)
    parser.add_argument(
        "--quiet-wait", type=float, default=30, help="seconds to wait for a quiet box"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, db)")
    parser.add_argument("--role", choices=("fleet", "siaran", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.role:
        params = json.loads(Path(args.params).read_text())
        if args.role == "fleet":
            run_fleet(params)
            return 0
        raise_nofile()
        if args.role == "siaran":
            run_loop(params["loop"], measure_siaran(params))  # its Meter writes the result, exits
        else:
            params["plan"] = json.loads(Path(params["schedule"]).read_text())
            run_loop(params["loop"], measure_reference(params))
        return 1  # not reached unless the run ended early (it raised)

    if args.duration < 2 * INTERVAL_S:
        parser.error(f"--duration must be at least {2 * INTERVAL_S}s (one interval is warm-up)")
    if (
        BASE_PORT + args.ports > 32768
        or math.ceil(args.endpoints / args.ports) > 256 * HOSTS_PER_OCTET
    ):
        parser.error("too many ports or addresses for 127.42.0.0/16 below port 32768")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    result = run_bench(args)
    print(report(result))
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"prober-{stamp}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

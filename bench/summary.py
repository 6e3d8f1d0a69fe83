"""Benchmark: /api/v2/summary.json from Siaran vs the same bytes as a static file from nginx.

    .venv/bin/python bench/summary.py [--duration 15] [--connections 100]

Everything runs on 127.0.0.1 in a temp dir and every process started here is stopped on exit,
Ctrl-C or error. See bench/README.md for how to read the table; results go to bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from importlib.metadata import version
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

HOST = "127.0.0.1"  # the only address anything here binds to or connects to
PATH = "/api/v2/summary.json"
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
BIN_DIR = Path(sys.executable).parent  # the venv's bin: siaran, granian
MAX_RUN_SECONDS = 20  # one wrk run, warm-up included, stays under this
GZIP = {"Accept-Encoding": "gzip"}

# How Siaran is served in each option. `siaran-serve` is the shipped command, whatever it
# runs; the others run the same wiring on a chosen server and loop (bench/serve.py), or under
# granian's own CLI with the app factory; `bare-*` serve the same answer without Siaran, to
# show what each server itself costs.
SERVERS: dict[str, list[str]] = {
    "siaran-serve": ["{bin}/siaran", "serve", "--config", "{config}", "--host", HOST, "--port", "{port}"],
    "uvicorn": [
        "{python}", "{bench}/serve.py", "--config", "{config}", "--host", HOST, "--port", "{port}",
        "--server", "uvicorn", "--loop", "asyncio",
    ],
    "uvicorn-uvloop": [
        "{python}", "{bench}/serve.py", "--config", "{config}", "--host", HOST, "--port", "{port}",
        "--server", "uvicorn", "--loop", "uvloop",
    ],
    "granian": [
        "{python}", "{bench}/serve.py", "--config", "{config}", "--host", HOST, "--port", "{port}",
        "--server", "granian", "--loop", "asyncio",
    ],
    "granian-uvloop": [
        "{python}", "{bench}/serve.py", "--config", "{config}", "--host", HOST, "--port", "{port}",
        "--server", "granian", "--loop", "uvloop",
    ],
    "granian-cli": [
        "{bin}/granian", "--interface", "asgi", "--factory", "--workers", "1",
        "--runtime-threads", "1", "--loop", "asyncio", "--http", "1", "--no-ws",
        "--host", HOST, "--port", "{port}", "--working-dir", "{code}",
        "status.web.asgi:app_from_env",
    ],
    # Ceilings, not options: the same bytes and headers from a bare ASGI callable, no Siaran.
    "bare-uvicorn": [
        "{python}", "{bench}/serve.py", "--bare", "{bare}", "--host", HOST, "--port", "{port}",
        "--server", "uvicorn", "--loop", "uvloop",
    ],
    "bare-granian": [
        "{python}", "{bench}/serve.py", "--bare", "{bare}", "--host", HOST, "--port", "{port}",
        "--server", "granian", "--loop", "uvloop",
    ],
}  # fmt: skip

COMPONENTS = [
    ("emeterai-purchase", "Pembelian e-Meterai"),
    ("emeterai-stamping", "Pembubuhan e-Meterai"),
    ("emeterai-download", "Pengiriman tautan unduhan"),
    ("emeterai-verify", "Verifikasi dokumen bermeterai"),
]
BRANCHES = [
    ("kcu-medan", "KCU Medan", "Sumatera Utara", "Asia/Jakarta"),
    ("kc-binjai", "KC Binjai", "Sumatera Utara", "Asia/Jakarta"),
    ("kcu-padang", "KCU Padang", "Sumatera Barat", "Asia/Jakarta"),
    ("kcu-palembang", "KCU Palembang", "Sumatera Selatan", "Asia/Jakarta"),
    ("kcu-jakarta-pusat", "KCU Jakarta Pusat", "DKI Jakarta", "Asia/Jakarta"),
    ("kc-jakarta-selatan", "KC Jakarta Selatan", "DKI Jakarta", "Asia/Jakarta"),
    ("kcu-bandung", "KCU Bandung", "Jawa Barat", "Asia/Jakarta"),
    ("kcu-surabaya", "KCU Surabaya", "Jawa Timur", "Asia/Jakarta"),
    ("kcu-denpasar", "KCU Denpasar", "Bali", "Asia/Makassar"),
    ("kc-makassar", "KC Makassar", "Sulawesi Selatan", "Asia/Makassar"),
    ("kcu-balikpapan", "KCU Balikpapan", "Kalimantan Timur", "Asia/Makassar"),
    ("kcu-jayapura", "KCU Jayapura", "Papua", "Asia/Jayapura"),
]


# -- processes ---------------------------------------------------------------------------------


class Processes:
    """Every server and wrk started here: each in a session of its own, all stopped by stop_all().

    `niceness` (e.g. -10) is applied to each one's autogroup (Linux gives every session one and
    shares CPU between autogroups first, so a plain `nice` would change nothing) and to the
    process itself, where there are no autogroups.
    """

    def __init__(self, log_dir: Path, niceness: int = 0) -> None:
        self.log_dir, self.niceness = log_dir, niceness
        self.running: dict[str, tuple[subprocess.Popen[bytes], TextIO]] = {}

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Path:
        log_path = self.log_dir / f"{name}.log"
        log_file = log_path.open("a", encoding="utf-8")
        # A session of its own: Ctrl-C reaches only this script, which then stops the group
        # (granian's CLI has a worker child) in order.
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.running[name] = (proc, log_file)
        if self.niceness:
            with contextlib.suppress(OSError):
                Path(f"/proc/{proc.pid}/autogroup").write_text(str(self.niceness))
            os.setpriority(os.PRIO_PROCESS, proc.pid, self.niceness)
        return log_path

    def run(
        self,
        name: str,
        argv: Sequence[str],
        timeout: float,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """Start, wait, stop; its output (stdout and stderr), or SystemExit if it failed."""
        log_path = self.start(name, argv, env)
        try:
            code = self.running[name][0].wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:  # also on Ctrl-C: the load stops before the server does
            self.stop(name)
        output = log_path.read_text(encoding="utf-8", errors="replace")
        log_path.unlink()
        if code != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({code}):\n{output[-2000:]}")
        return output

    def pid(self, name: str) -> int:
        return self.running[name][0].pid

    def exited(self, name: str) -> int | None:
        return self.running[name][0].poll()

    def wait(self, name: str, timeout: float) -> int | None:
        """Its exit status once it ends within `timeout`, else None (it keeps running)."""
        try:
            return self.running[name][0].wait(max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            return None

    def stop(self, name: str, timeout: float = 10) -> None:
        proc, log_file = self.running.pop(name)
        pgid = proc.pid  # start_new_session: the child leads its own group
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)  # anything of its group still left (e.g. a worker)
        log_file.close()

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):  # newest first: wrk before its server
            self.stop(name)


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(cpu: int | None, argv: Sequence[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if cpu is not None else list(argv)


# -- HTTP (stdlib http.client: it hands back the body exactly as sent, gzip included) ------------


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def request(
    port: int,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def wait_until_up(
    procs: Processes, name: str, log_path: Path, port: int, timeout: float = 60, path: str = PATH
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if procs.exited(name) is not None:
            raise SystemExit(f"{name} exited while starting; its log:\n{tail(log_path)}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if request(port, "GET", path).status == 200:
                return
        time.sleep(0.1)
    raise SystemExit(
        f"{name} did not answer {path} within {timeout:.0f}s; its log:\n{tail(log_path)}"
    )


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


# -- Siaran: config, token, realistic data ----------------------------------------------------


def write_config(directory: Path) -> Path:
    parts = [
        "[site]",
        'name = "Status e-Meterai"',
        'public_url = "https://status.example.id"',
        'language = "id"',
        'timezone = "Asia/Jakarta"',
        "",
        "[storage]",
        f'url = "sqlite:///{directory / "siaran.db"}"',
        "",
    ]
    for cid, name in COMPONENTS:
        parts += ["[[component]]", f'id = "{cid}"', f'name = "{name}"']
        parts += ['group = "Layanan e-Meterai"', ""]
    # No `hours`: open around the clock, so no rendering changes with the time of day mid-run.
    for bid, name, region, zone in BRANCHES:
        parts += ["[[branch]]", f'id = "{bid}"', f'name = "{name}"', f'region = "{region}"']
        parts += [f'timezone = "{zone}"', ""]
    path = directory / "siaran.toml"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def snapshot_code(directory: Path) -> dict[str, str]:
    """Copy the working tree's packages so every run measures the same code; env that uses it.

    Others may edit status/ while a bench runs; the copy (first on PYTHONPATH, ahead of the
    editable install's finder) keeps one run's servers on one version of the code.
    """
    code = directory / "code"
    for package in ("status", "broadcasters"):
        shutil.copytree(
            REPO / package, code / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return {"PYTHONPATH": str(code)}


def code_digest(env: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(env["PYTHONPATH"]).rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def create_token(config: Path, env: Mapping[str, str]) -> str:
    done = subprocess.run(
        [
            *(str(BIN_DIR / "siaran"), "token", "create", "--config", str(config)),
            *("--name", "bench", "--scope", "admin"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, **env},
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"siaran token create failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout.strip()


def seed(port: int, token: str, log_path: Path) -> int:
    """Open incidents and upcoming maintenance like a bad CASN registration day; returns how many writes."""
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(path: str, doc: dict[str, Any]) -> dict[str, Any]:
        reply = request(port, "POST", path, auth, json.dumps(doc).encode())
        if reply.status not in (200, 201):
            raise SystemExit(
                f"POST {path} → {reply.status}: {reply.body[:300]!r}; the server's log:\n"
                + tail(log_path)
            )
        answer: dict[str, Any] = json.loads(reply.body)
        return answer

    writes = 0
    upstream = post(
        "/api/v1/incidents",
        {
            "name": "Pembelian e-Meterai gagal saat pembayaran",
            "impact": "major",
            "body": "Banyak pembeli melaporkan pembayaran berhasil tetapi meterai tidak terbit. "
            "Tim sedang menyelidiki bersama penyedia layanan.",
            "components": {
                "emeterai-purchase": "major_outage",
                "emeterai-download": "degraded_performance",
            },
        },
    )
    writes += 1
    for status, body in [
        ("identified", "Penyebabnya antrean di sisi penerbit meterai yang penuh karena lonjakan pendaftaran CASN."),
        ("monitoring", "Kapasitas penerbit sudah ditambah; pembelian mulai berhasil. Tautan unduhan "
         "untuk pembelian yang tertunda dikirim ulang bertahap."),
    ]:  # fmt: skip
        post(f"/api/v1/incidents/{upstream['id']}/updates", {"status": status, "body": body})
        writes += 1
    notices = [
        (
            "kcu-medan",
            "partial_outage",
            "minor",
            "Loket e-Meterai KCU Medan: antrean tidak bergerak",
        ),
        ("kcu-padang", "partial_outage", "minor", "Loket e-Meterai KCU Padang tutup sementara"),
        ("kcu-denpasar", "major_outage", "major", "KCU Denpasar tidak dapat menjual e-Meterai"),
        ("kcu-jayapura", "degraded_performance", "none", "Meterai tempel tetap diterima"),
    ]
    for bid, comp_status, impact, name in notices:
        incident = post(
            "/api/v1/incidents",
            {
                "name": name,
                "impact": impact,
                "body": "Pembeli diminta tidak mengantre sejak subuh. Pembelian e-Meterai juga "
                "bisa dilakukan daring; kementerian menyatakan meterai tempel tetap diterima.",
                "components": {bid: comp_status},
            },
        )
        post(
            f"/api/v1/incidents/{incident['id']}/updates",
            {
                "status": "identified",
                "body": "Petugas loket sudah menghubungi pusat; pembaruan berikutnya dalam 30 menit.",
            },
        )
        writes += 2
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    for hours, name, comps in [
        (0, "Pemeliharaan penerbit e-Meterai", ["emeterai-purchase", "emeterai-stamping"]),
    ]:  # fmt: skip
        post(
            "/api/v1/maintenances",
            {
                "name": name,
                "body": "Layanan tidak tersedia selama pemeliharaan; pembelian yang sudah dibayar "
                "tetap diproses setelahnya.",
                "scheduled_for": (start + timedelta(hours=hours)).isoformat(),
                "scheduled_until": (start + timedelta(hours=hours + 2)).isoformat(),
                "components": comps,
            },
        )
        writes += 1
    return writes


# -- nginx -------------------------------------------------------------------------------------


def write_nginx(directory: Path, port: int, body: bytes, gzipped: bytes, reply: Reply) -> Path:
    """Root with summary.json + summary.json.gz (Siaran's own gzip bytes) and an nginx.conf."""
    root = directory / "nginx-root"
    target = root / PATH.lstrip("/")
    target.parent.mkdir(parents=True)
    target.write_bytes(body)
    Path(f"{target}.gz").write_bytes(gzipped)
    # Same Last-Modified as Siaran's; nginx's ETag is then derived from it and the size.
    mtime = parsedate_to_datetime(reply.headers["last-modified"]).timestamp()
    for path in (target, Path(f"{target}.gz")):
        os.utime(path, (mtime, mtime))
    location = f"""
        location = {PATH} {{
            gzip_static on;
            gzip_vary on;
            add_header Cache-Control "{reply.headers["cache-control"]}";
            add_header Access-Control-Allow-Origin "*";
            add_header Access-Control-Expose-Headers "ETag, Last-Modified";
        }}"""
    types = "types { }\n    default_type application/json;\n    charset_types application/json;"
    return write_nginx_conf(directory, port, root, types, location)


def write_nginx_conf(directory: Path, port: int, root: Path, types: str, locations: str) -> Path:
    """nginx at its best for one worker: the conf around `types` and `locations`, for `root`.

    Room for 4,000 connections (the 2,000-connection hold in bench/public.py fits).
    """
    # nginx workers drop root to `nobody`; let them read (and only read) the tree.
    for path in [directory, *root.rglob("*"), root]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    tmp = directory / "nginx-tmp"
    tmp.mkdir()
    conf = directory / "nginx.conf"
    conf.write_text(
        f"""# generated by bench/{Path(sys.argv[0]).name}
worker_processes 1;          # one Siaran process ↔ one nginx worker
worker_rlimit_nofile 8192;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;          # Siaran's servers run with their access log off too
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=16 inactive=60s;  # nginx at its best: no open/stat per request
    open_file_cache_valid 60s;
    keepalive_requests 1000000;        # keep every wrk connection open, as Siaran's servers do
    {types}
    charset utf-8;
    server {{
        listen {HOST}:{port} backlog=4096;
        root {root};{locations}
    }}
}}
""",
        encoding="utf-8",
    )
    return conf


# -- CPU accounting: who used the two cores during a run ------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (steal counts: it is someone else)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(x) for x in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds used so far by the live processes of one process group (a server)."""
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # exited meanwhile
        rest = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(rest[2]) == pgid:  # pgrp; utime and stime follow at 11 and 12
            ticks += int(rest[11]) + int(rest[12])
    return ticks / CLK_TCK


def own_cpu_seconds() -> float:
    """This script plus its waited-for children (wrk)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def wait_for_quiet(limit: float, threshold: float = 0.15) -> tuple[float, float]:
    """Wait (up to `limit` s) until other work uses under `threshold` of a core; (waited, last load)."""
    started = time.monotonic()
    while True:
        busy, own = machine_busy_seconds(), own_cpu_seconds()
        time.sleep(1)
        load = machine_busy_seconds() - busy - (own_cpu_seconds() - own)
        waited = time.monotonic() - started
        if load < threshold or waited >= limit:
            return waited, load


# -- wrk ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests_per_s: float
    latency_ms: dict[str, float]  # "50", "75", "90", "99" → milliseconds
    latency_avg_ms: float
    requests: int
    seconds: float
    bytes_read: float
    socket_errors: dict[str, int]
    non_2xx_3xx: int

    @property
    def errors(self) -> int:
        return sum(self.socket_errors.values()) + self.non_2xx_3xx


_TIME_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _TIME_UNITS[match[2]]


def parse_wrk(output: str) -> WrkResult:
    """wrk 4.x text output (with --latency) → numbers; raises ValueError if a line is missing."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in ([\d.]+\w+), ([\d.]+)(\w+) read", output, re.M)
    avg = re.search(r"^\s*Latency\s+([\d.]+\w+)\s", output, re.M)
    if rps is None or total is None or avg is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    latency = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)", output, re.M)}
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    counts = [int(n) for n in sock.groups()] if sock else [0, 0, 0, 0]
    non_ok = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests_per_s=float(rps[1]),
        latency_ms=latency,
        latency_avg_ms=_ms(avg[1]),
        requests=int(total[1]),
        seconds=_ms(total[2]) / 1000,
        bytes_read=float(total[3]) * _SIZE_UNITS[total[4]],
        socket_errors=dict(zip(("connect", "read", "write", "timeout"), counts, strict=True)),
        non_2xx_3xx=int(non_ok[1]) if non_ok else 0,
    )


@dataclass(frozen=True, slots=True)
class Load:
    threads: int
    connections: int
    duration: int
    warmup: int
    cpu: int | None  # core wrk is pinned to
    quiet_wait: float
    max_other: float
    retries: int

    def argv(
        self, port: int, seconds: int, path: str = PATH, script: Path | None = None
    ) -> list[str]:
        wrk = ["wrk", f"-t{self.threads}", f"-c{self.connections}", f"-d{seconds}s", "--latency"]
        if script is not None:
            wrk += ["-s", str(script)]
        return pinned(
            self.cpu,
            [*wrk, "-H", "Accept-Encoding: gzip", f"http://{HOST}:{port}{path}"],
        )


# -- one measured run ---------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    name: str
    round: int
    command: list[str]
    result: WrkResult
    wrk_output: str
    headers: dict[str, str]
    same_bytes: bool  # gzip body identical to nginx's file, before and after the run
    cpu: dict[str, float]  # % of one core during the measured run: server, wrk, other
    waited_for_quiet_s: float
    disturbed: bool  # other work used more than --max-other % of a core meanwhile


def measure(
    procs: Processes,
    name: str,
    round_: int,
    argv: list[str],
    env: Mapping[str, str] | None,
    port: int,
    load: Load,
    expected_gzip: bytes,
) -> list[Run]:
    """Start one server, load it, stop it; every run, those other work disturbed marked.

    A run during which other processes used more than `load.max_other` % of a core is
    repeated, up to `load.retries` times, on the same server.
    """
    log_path = procs.start(name, argv, env)
    try:
        wait_until_up(procs, name, log_path, port)
        return measure_running(procs, name, round_, argv, port, load, expected_gzip, log_path)
    finally:
        procs.stop(name)


def measure_running(
    procs: Processes,
    name: str,
    round_: int,
    argv: list[str],
    port: int,
    load: Load,
    expected_gzip: bytes,
    log_path: Path,
    path: str = PATH,
    script: Path | None = None,
) -> list[Run]:
    """Load a running server, again while other work disturbed the run (up to load.retries)."""
    runs: list[Run] = []
    for attempt in range(load.retries + 1):
        run = load_once(procs, name, round_, argv, port, load, expected_gzip, path, script)
        runs.append(run)
        if procs.exited(name) is not None:
            raise SystemExit(f"{name} died during the run; its log:\n{tail(log_path)}")
        if not run.disturbed:
            break
        again = "; again" if attempt < load.retries else ""
        print(
            f"    disturbed: other work used {run.cpu['other']:.0f}% of a core{again}",
            file=sys.stderr,
        )
    return runs


def load_once(
    procs: Processes,
    name: str,
    round_: int,
    argv: list[str],
    port: int,
    load: Load,
    expected_gzip: bytes,
    path: str = PATH,
    script: Path | None = None,
) -> Run:
    """One wrk run (after a warm-up) with CPU accounting; `script` (wrk Lua) may vary the path."""
    before = request(port, "GET", path, GZIP)
    waited, _ = wait_for_quiet(load.quiet_wait)
    print(
        f"  round {round_} {name} {path}: wrk -c{load.connections} {load.duration}s",
        file=sys.stderr,
        flush=True,
    )
    if load.warmup:
        warmup = load.argv(port, load.warmup, path, script)
        procs.run("wrk-warmup", warmup, timeout=load.warmup + 30)
    pgid = procs.pid(name)
    start = time.monotonic()
    busy, server, own = machine_busy_seconds(), group_cpu_seconds(pgid), own_cpu_seconds()
    wrk = load.argv(port, load.duration, path, script)
    output = procs.run("wrk", wrk, timeout=load.duration + 30)
    elapsed = time.monotonic() - start
    server = group_cpu_seconds(pgid) - server
    own = own_cpu_seconds() - own
    busy = machine_busy_seconds() - busy
    after = request(port, "GET", path, GZIP)
    cpu = {
        "server": 100 * server / elapsed,
        "wrk": 100 * own / elapsed,
        "other": max(0.0, 100 * (busy - server - own) / elapsed),
    }
    same = before.body == after.body == expected_gzip
    result = parse_wrk(output)
    disturbed = cpu["other"] > load.max_other
    return Run(name, round_, argv, result, output, before.headers, same, cpu, waited, disturbed)


# -- report ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    """One server over its runs: medians over the undisturbed runs (all runs if none was)."""

    name: str
    runs: list[Run]
    ratios: dict[str, float] = field(default_factory=dict)

    @property
    def counted(self) -> list[Run]:
        return [r for r in self.runs if not r.disturbed] or self.runs

    @property
    def rps(self) -> float:
        return statistics.median(r.result.requests_per_s for r in self.counted)

    def latency(self, pct: str) -> float:
        return statistics.median(r.result.latency_ms[pct] for r in self.counted)

    @property
    def errors(self) -> int:
        return sum(r.result.errors for r in self.runs)

    @property
    def same_bytes(self) -> bool:
        return all(r.same_bytes for r in self.runs)

    @property
    def disturbed(self) -> bool:
        return all(r.disturbed for r in self.counted)

    def cpu(self, who: str) -> float:
        return statistics.mean(r.cpu[who] for r in self.counted)

    @property
    def verdict(self) -> str:
        if not self.ratios:
            return ""
        ok = self.ratios["rps"] >= 0.5 and self.ratios["p99"] <= 2.0
        ok = ok and self.errors == 0 and self.same_bytes
        words = ["ceiling"] if self.name.startswith("bare-") else []  # not Siaran: for scale
        words.append("meets" if ok else "misses")
        if not self.same_bytes:
            words.append("bytes differ!")
        if self.disturbed:
            words.append("every run disturbed")
        return ", ".join(words)


def print_table(rows: Sequence[Row]) -> None:
    head = f"{'server':<16}{'runs':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>7}"
    head += f"{'B/resp':>7}{'cpu srv/wrk/other %':>22}{'rps x':>7}{'p99 x':>7}  target"
    print(head)
    print("-" * (len(head) + 6))
    for row in rows:
        r0 = row.runs[0].result
        cpu = f"{row.cpu('server'):.0f}/{row.cpu('wrk'):.0f}/{row.cpu('other'):.0f}"
        runs = f"{sum(not r.disturbed for r in row.runs)}/{len(row.runs)}"
        line = f"{row.name:<16}{runs:>6}{row.rps:>9.0f}{row.latency('50'):>9.2f}"
        line += (
            f"{row.latency('99'):>9.2f}{row.errors:>7d}{r0.bytes_read / max(r0.requests, 1):>7.0f}"
        )
        line += f"{cpu:>22}"
        if row.ratios:
            line += f"{row.ratios['rps']:>7.2f}{row.ratios['p99']:>7.2f}  {row.verdict}"
        print(line)


def git_head() -> str:
    """The commit checked out (read-only; the copied tree may hold uncommitted changes)."""
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def versions() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
        return (done.stdout + done.stderr).strip().splitlines()[0]

    return {
        "python": platform.python_version(),
        "kernel": platform.release(),
        "cpus": str(os.cpu_count()),
        "nginx": first_line(["nginx", "-v"]),
        "wrk": first_line(["wrk", "-v"]),
        **{p: version(p) for p in ("uvicorn", "uvloop", "httptools", "granian", "starlette")},
    }


# -- main --------------------------------------------------------------------------------------


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """The wrk, pinning and quiet-machine options every bench here shares."""
    parser.add_argument(
        "--duration", type=int, default=15, help="seconds per measured wrk run (default 15)"
    )
    parser.add_argument("--connections", type=int, default=100, help="wrk -c (default 100)")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of unmeasured wrk before each run"
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat nginx + every server")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30,
        help="before each run, wait up to this many seconds for other work to stop (default 30)",
    )
    parser.add_argument(
        "--max-other",
        type=float,
        default=25,
        help="a run during which other work used more %% of a core is disturbed (default 25)",
    )
    parser.add_argument(
        "--retries", type=int, default=1, help="repeat a disturbed run up to this many times"
    )
    parser.add_argument("--server-cpu", type=int, default=0, help="core for the server under test")
    parser.add_argument("--wrk-cpu", type=int, default=1, help="core for wrk")
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run servers and wrk at this nice level; on a shared box -10 gives them precedence",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, config)")


def check_load_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.duration < 1 or args.duration + args.warmup > MAX_RUN_SECONDS:
        parser.error(f"--duration + --warmup must be at most {MAX_RUN_SECONDS} seconds")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser)
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"comma-separated Siaran options, in order (default: {','.join(SERVERS)})",
    )
    args = parser.parse_args(argv)
    check_load_arguments(parser, args)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if unknown := [s for s in args.servers if s not in SERVERS]:
        parser.error(f"unknown server(s) {unknown}; known: {', '.join(SERVERS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return session(args, bench)


# What a bench does once its temp dir and process table exist.
Work = Callable[[argparse.Namespace, Load, int | None, Path, Processes], int]


def session(args: argparse.Namespace, work: Work) -> int:
    """Check the tools, pin, then run `work` in a temp dir; every process it started is stopped
    on the way out (normal end, error, Ctrl-C, SIGTERM, SIGHUP)."""
    for tool in ("nginx", "wrk", *(() if args.no_pin else ("taskset",))):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install -y nginx wrk)")
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    server_cpu = args.server_cpu if pin else None
    wrk_cpu = args.wrk_cpu if pin else None
    load = Load(
        args.threads,
        args.connections,
        args.duration,
        args.warmup,
        wrk_cpu,
        args.quiet_wait,
        args.max_other,
        args.retries,
    )
    # Also SIGINT: a shell starts background jobs with it ignored, and Ctrl-C must still clean up.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupt)

    with contextlib.ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="siaran-bench-"))
        if args.keep:
            print(f"temp dir (kept): {tmp}", file=sys.stderr)
        else:
            stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        procs = Processes(tmp, args.nice)
        stack.callback(procs.stop_all)  # runs first on the way out: nothing outlives the script
        try:
            return work(args, load, server_cpu, tmp, procs)
        except KeyboardInterrupt:
            print("\ninterrupted; stopping servers", file=sys.stderr)
            return 130


def bench(
    args: argparse.Namespace, load: Load, server_cpu: int | None, tmp: Path, procs: Processes
) -> int:
    config = write_config(tmp)
    fill = {"bin": str(BIN_DIR), "python": sys.executable, "bench": str(BENCH_DIR)}
    fill["config"] = str(config)
    env = {"SIARAN_CONFIG": str(config), **snapshot_code(tmp)}
    fill["code"] = env["PYTHONPATH"]  # granian puts its working dir first on sys.path

    # 1. Realistic data through the staff API, then the exact bytes readers get.
    token = create_token(config, env)
    port = free_port()
    argv = [p.format(**fill, port=port) for p in SERVERS["siaran-serve"]]
    log_path = procs.start("seed", argv, env)
    wait_until_up(procs, "seed", log_path, port)
    writes = seed(port, token, log_path)
    plain = request(port, "GET", PATH)
    zipped = request(port, "GET", PATH, GZIP)
    procs.stop("seed")
    if (
        zipped.headers.get("content-encoding") != "gzip"
        or gzip.decompress(zipped.body) != plain.body
    ):
        raise SystemExit("Siaran's gzip answer does not decompress to its plain answer")
    print(
        f"summary.json: {len(plain.body)} bytes, {len(zipped.body)} gzipped, {writes} staff "
        f"writes; wrk: {' '.join(load.argv(0, load.duration))}",
        file=sys.stderr,
    )

    # The bare servers answer with Siaran's own headers (minus the server's own) and gzip body.
    own = {"date", "server", "connection", "transfer-encoding", "keep-alive"}
    bare: dict[str, Any] = {
        "headers": [[k, v] for k, v in zipped.headers.items() if k not in own],
        "body_hex": zipped.body.hex(),
    }
    fill["bare"] = str(tmp / "bare.json")
    Path(fill["bare"]).write_text(json.dumps(bare), encoding="utf-8")

    # 2. nginx with those bytes; it runs first in every round and once more at the end, so
    #    its spread shows the machine's noise.
    nginx_port = free_port()
    conf = write_nginx(tmp, nginx_port, plain.body, zipped.body, zipped)
    nginx = ["nginx", "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "nginx-error.log")]
    nginx = pinned(server_cpu, nginx)
    runs: list[Run] = []
    for round_ in range(1, args.rounds + 1):
        runs += measure(procs, "nginx", round_, nginx, None, nginx_port, load, zipped.body)
        for name in args.servers:
            port = free_port()
            argv = [p.format(**fill, port=port) for p in SERVERS[name]]
            argv = pinned(server_cpu, argv)
            runs += measure(procs, name, round_, argv, env, port, load, zipped.body)
    runs += measure(procs, "nginx", args.rounds + 1, nginx, None, nginx_port, load, zipped.body)

    # 3. Medians per server; ratios against nginx's medians.
    rows = [Row(name, [r for r in runs if r.name == name]) for name in ["nginx", *args.servers]]
    reference = rows[0]
    for row in rows[1:]:
        row.ratios = {
            "rps": row.rps / reference.rps,
            "p99": row.latency("99") / reference.latency("99"),
        }
    pinning = (
        f"server on core {server_cpu}, wrk on core {load.cpu}"
        if server_cpu is not None
        else "not pinned"
    ) + (f", nice {procs.niceness}" if procs.niceness else "")
    print()
    print(
        f"{PATH}: {len(plain.body)} B, {len(zipped.body)} B gzip; wrk -t{load.threads} "
        f"-c{load.connections} -d{load.duration}s -H 'Accept-Encoding: gzip'; {pinning}"
    )
    print_table(rows)
    print(
        f"runs = clean/all: a run is disturbed when other work used over {load.max_other:.0f}% "
        "of a core meanwhile;\nreq/s, p50, p99 and cpu are medians/means over the clean runs "
        "(over all, if none was clean); 'rps x' = Siaran/nginx req/s (target >= 0.5),\n"
        "'p99 x' = Siaran p99 / nginx p99 (target <= 2); cpu % of one core: the server, wrk, "
        "everything else"
    )

    write_results(
        "summary",
        load,
        server_cpu,
        procs,
        env,
        conf,
        body={
            "bytes": len(plain.body),
            "gzip_bytes": len(zipped.body),
            "sha256": hashlib.sha256(plain.body).hexdigest(),
            "etag": zipped.headers.get("etag"),
        },
        summary=[
            {"name": row.name, **row_doc(row), "ratios": row.ratios, "verdict": row.verdict}
            for row in rows
        ],
        runs=[run_doc(run) for run in runs],
    )
    return 0


def row_doc(row: Row) -> dict[str, Any]:
    return {
        "runs": len(row.runs),
        "runs_counted": len(row.counted),
        "requests_per_s": row.rps,
        "p50_ms": row.latency("50"),
        "p99_ms": row.latency("99"),
        "errors": row.errors,
        "same_bytes": row.same_bytes,
        "cpu_percent": {w: row.cpu(w) for w in ("server", "wrk", "other")},
    }


def run_doc(run: Run) -> dict[str, Any]:
    """Everything about one wrk run, its raw output included."""
    doc = {k: v for k, v in asdict(run).items() if k != "result"}
    return {**doc, **asdict(run.result), "errors": run.result.errors}


def write_results(
    kind: str,
    load: Load,
    server_cpu: int | None,
    procs: Processes,
    env: Mapping[str, str],
    conf: Path,
    **sections: Any,
) -> None:
    """bench/results/<kind>-<UTC time>.json: what ran, where, on which code, and `sections`."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"{kind}-{stamp}.json"
    doc = {
        "at": stamp,
        "command": [sys.executable, *sys.argv],
        "versions": versions(),
        "load": asdict(load),  # max_other: % of a core above which a run is not counted
        "server_cpu": server_cpu,
        "niceness": procs.niceness,
        "code": {"git_head": git_head(), "snapshot_sha256": code_digest(env)},
        **sections,
        "nginx_conf": conf.read_text(encoding="utf-8"),
    }
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"results: {out.relative_to(REPO)}")


if __name__ == "__main__":
    sys.exit(main())

"""Shared fixtures: both database backends, a configured instance, and people with tokens.

Every test that takes `engine` (directly or through `services`/`admin`/...) runs twice: on a
fresh SQLite file and on a fresh PostgreSQL schema. PostgreSQL is found at
$SIARAN_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test); where it is
absent those tests skip saying so, except under CI=true, where its absence fails the run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from status import db, tokens
from status.clock import ManualClock
from status.config import Config, load_config_text
from status.schema import metadata
from status.services import Services, build_services
from status.web.app import create_app

POSTGRES_URL = os.environ.get(
    "SIARAN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

TEST_CONFIG = """
[site]
name = "Status e-Meterai"
public_url = "https://status.example.id"
language = "id"
timezone = "Asia/Jakarta"

[[component]]
id = "emeterai-purchase"
name = "Pembelian e-Meterai"
group = "Layanan e-Meterai"

[[component]]
id = "emeterai-stamping"
name = "Pembubuhan e-Meterai"
group = "Layanan e-Meterai"

[[branch]]
id = "kcu-medan"
name = "KCU Medan"
region = "Sumatera Utara"
timezone = "Asia/Jakarta"
hours = "Mon-Fri 07:30-16:00; Sat 08:00-12:00"

[[branch]]
id = "kcu-denpasar"
name = "KCU Denpasar"
region = "Bali"
timezone = "Asia/Makassar"
hours = "Mon-Fri 07:30-16:00"

[[branch]]
id = "kcu-jayapura"
name = "KCU Jayapura"
region = "Papua"
timezone = "Asia/Jayapura"
"""

# Monday 23 November 2026, 10:00 WIB: branches with office hours are open.
MONDAY_MORNING = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _ptb_timedeltas(monkeypatch: pytest.MonkeyPatch) -> None:
    """python-telegram-bot 22 warns unless told to use timedeltas (RetryAfter.retry_after);
    with filterwarnings=error the warning would replace the error. Production sets it too."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk to loopback only; anything else is a bug in the test."""
    real = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            if not (host.startswith("127.") or host in ("::1", "localhost")):
                raise RuntimeError(f"test tried to reach {host}; only loopback is allowed")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def _postgres_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'siaran.db'}"
        return
    if not _postgres_available():
        message = f"PostgreSQL is not reachable at {POSTGRES_URL}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the PostgreSQL half of the suite")
        pytest.skip(f"{message}; start it or set SIARAN_TEST_POSTGRES_URL")
    yield POSTGRES_URL


def _run_aside(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run async setup on its own loop in a thread: session fixtures may be first requested
    from inside a test's running event loop, where asyncio.run() is not allowed."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, work()).result()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated once per session; each test starts from a copy."""
    path = tmp_path_factory.mktemp("template") / "siaran.db"

    async def build() -> None:
        eng = db.make_engine(f"sqlite:///{path}")
        await db.migrate(eng)
        await eng.dispose()

    _run_aside(build)
    return path


def _pg_admin(statement: str) -> None:
    async def run() -> None:
        admin = db.make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await admin.dispose()

    _run_aside(run)


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[str]:
    """A PostgreSQL database migrated once per session; each test empties it first."""
    name = f"siaran_tpl_{secrets.token_hex(4)}"
    _pg_admin(f"CREATE DATABASE {name}")

    async def build() -> None:
        eng = db.make_engine(_pg_url(name))
        await db.migrate(eng)
        await eng.dispose()

    try:
        _run_aside(build)
        yield name
    finally:
        _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _pg_url(database: str) -> str:
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{database}"


@pytest.fixture
async def engine(
    database_url: str, anyio_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """A fresh, fully migrated database for one test (SQLite: a copy; PostgreSQL: emptied)."""
    if database_url.startswith("sqlite"):
        target = tmp_path / "siaran.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), target)
        eng = db.make_engine(f"sqlite:///{target}")
        yield eng
        await eng.dispose()
        return
    # One migrated database per session, emptied before each test: TRUNCATE costs a few
    # milliseconds where CREATE DATABASE … TEMPLATE costs a checkpoint (~0.3 s).
    name = request.getfixturevalue("migrated_postgres")
    eng = db.make_engine(_pg_url(name))
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with eng.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def config() -> Config:
    return load_config_text(TEST_CONFIG, "test.toml")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY_MORNING)


@pytest.fixture
async def services(engine: AsyncEngine, config: Config, clock: ManualClock) -> Services:
    built = build_services(config, engine, clock)
    async with built.core.transaction() as tx:
        await built.core.sync_components(tx)
    await built.snapshot.refresh(force=True)
    return built


@pytest.fixture
async def applicant(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """Anyone on the internet: no token."""
    app = create_app(services, background=False)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _person(services: Services, name: str, scopes: tuple[str, ...]) -> httpx.AsyncClient:
    _info, secret = await tokens.create_token(services.engine, name, scopes, services.clock.now())
    app = create_app(services, background=False)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 41000))
    return httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {secret}", "User-Agent": f"{name} test"},
    )


@pytest.fixture
async def admin(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with await _person(services, "ops admin", ("admin",)) as client:
        yield client


@pytest.fixture
async def medan_staff(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with await _person(services, "petugas medan", ("branch:kcu-medan",)) as client:
        yield client


@pytest.fixture
async def denpasar_staff(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with await _person(services, "petugas denpasar", ("branch:kcu-denpasar",)) as client:
        yield client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_for_port(port: int, within: float = 20.0) -> None:
    """Poll until something accepts on 127.0.0.1:port (a server the test started)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            await w.wait_closed()
            return
        except OSError:
            if loop.time() > deadline:
                raise TimeoutError(f"nothing listened on port {port} within {within}s") from None
            await asyncio.sleep(0.05)


async def eventually(check: Any, within: float = 10.0) -> None:
    """Wait until `check()` (sync or async) is truthy: for background loops the test started."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise TimeoutError("condition not reached in time")
        await asyncio.sleep(0.01)


def stop(proc: subprocess.Popen[Any], within: float = 20.0) -> int:
    """Stop a process we started as a supervisor would (SIGTERM), killing it only if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=within)
    except subprocess.TimeoutExpired:  # pragma: no cover - only if shutdown hangs
        proc.kill()
        return proc.wait()

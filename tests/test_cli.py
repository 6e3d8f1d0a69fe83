"""The `siaran` command as operators and scripts use it: real processes, real sockets."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from status import db
from tests.conftest import (
    POSTGRES_URL,
    TEST_CONFIG,
    _postgres_available,
    free_port,
    stop,
    wait_for_port,
)

SUMMARY_KEYS = ["page", "components", "incidents", "scheduled_maintenances", "status"]


def siaran(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "status", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "siaran.toml"
    path.write_text(TEST_CONFIG + f'\n[storage]\nurl = "sqlite:///{tmp_path / "s.db"}"\n')
    return path


def test_token_create_prints_the_token_alone_on_stdout(config_file: Path) -> None:
    made = siaran(
        "token",
        "create",
        "--config",
        str(config_file),
        "--name",
        "medan",
        "--scope",
        "branch:kcu-medan",
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.count("\n") == 1
    secret = made.stdout.strip()
    assert secret.startswith("siaran_")
    assert len(secret) > 40
    assert secret not in made.stderr
    listed = siaran("token", "list", "--config", str(config_file))
    assert "medan\tbranch:kcu-medan\tactive" in listed.stdout
    assert secret not in listed.stdout
    assert (config_file.parent / "s.db").read_bytes().find(secret.encode()) == -1


def test_token_create_refuses_a_branch_that_does_not_exist(config_file: Path) -> None:
    made = siaran(
        "token",
        "create",
        "--config",
        str(config_file),
        "--name",
        "x",
        "--scope",
        "branch:kcu-atlantis",
    )
    assert made.returncode == 2
    assert made.stdout == ""
    assert 'unknown branch "kcu-atlantis"' in made.stderr


def test_a_revoked_token_is_listed_as_revoked(config_file: Path) -> None:
    siaran("token", "create", "--config", str(config_file), "--name", "temp", "--scope", "admin")
    revoked = siaran("token", "revoke", "--config", str(config_file), "temp")
    assert revoked.returncode == 0, revoked.stderr
    assert "\trevoked " in siaran("token", "list", "--config", str(config_file)).stdout
    again = siaran("token", "revoke", "--config", str(config_file), "temp")
    assert again.returncode == 1
    assert 'no active token "temp"' in again.stderr


def test_init_writes_a_starter_config_that_validates(tmp_path: Path) -> None:
    target = tmp_path / "siaran.toml"
    assert siaran("init", "--config", str(target)).returncode == 0
    assert "KCU Medan" in target.read_text()
    checked = siaran("check-config", "--config", str(target))
    assert checked.returncode == 0, checked.stderr
    refused = siaran("init", "--config", str(target))
    assert refused.returncode == 1
    assert "already exists" in refused.stderr


def test_a_bad_config_stops_start_up_naming_file_key_and_problem(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(TEST_CONFIG.replace('timezone = "Asia/Makassar"', 'timezone = "WITA"'))
    started = siaran("serve", "--config", str(path), "--port", str(free_port()))
    assert started.returncode == 2
    assert f'{path}: branch[1].timezone: unknown time zone "WITA"' in started.stderr


@asynccontextmanager
async def running(*args: str, port: int, env: dict[str, str] | None = None) -> AsyncIterator[str]:
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(  # noqa: ASYNC220 - a server that outlives this coroutine step
            [sys.executable, "-m", "status", *args],
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=log,
            text=True,
        )
        try:
            await wait_for_port(port)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(proc)
            log.seek(0)
            assert proc.returncode == 0, log.read()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A throwaway PostgreSQL database, for a server process that brings its own schema."""
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable; CI must run the PostgreSQL tests")
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    name = f"siaran_cli_{secrets.token_hex(4)}"

    def admin(statement: str) -> None:
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc", statement],
            check=True,
            capture_output=True,
        )

    admin(f"CREATE DATABASE {name}")
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_serve_answers_a_statuspage_summary_over_a_real_socket(
    backend: str, config_file: Path, request: pytest.FixtureRequest, anyio_backend: str
) -> None:
    env = {}
    if backend == "postgresql":
        env["SIARAN_DATABASE_URL"] = request.getfixturevalue("postgres_database")
    port = free_port()
    async with (
        running(
            "serve", "--config", str(config_file), "--port", str(port), port=port, env=env
        ) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        summary = (await client.get("/api/v2/summary.json")).json()
        health = (await client.get("/healthz")).json()
    assert list(summary) == SUMMARY_KEYS
    assert {c["id"] for c in summary["components"]} >= {"emeterai-purchase", "kcu-medan"}
    assert summary["status"] == {
        "indicator": "none",
        "description": "Semua layanan berjalan normal",
    }
    assert health["database"] == "ok"


@pytest.mark.anyio
async def test_the_demo_runs_with_no_setup(tmp_path: Path, anyio_backend: str) -> None:
    port = free_port()
    database = f"sqlite:///{tmp_path / 'demo.db'}"
    demo = running("demo", "--port", str(port), "--database", database, port=port)
    async with demo as url, httpx.AsyncClient(base_url=url) as client:
        summary = (await client.get("/api/v2/summary.json")).json()
        branches = (await client.get("/api/v1/branches")).json()
    names = {c["name"] for c in summary["components"]}
    assert {"Pembelian e-Meterai", "KCU Medan", "KCU Denpasar"} <= names
    assert {b["zone"] for b in branches["branches"]} == {"WIB", "WITA", "WIT"}
    assert (tmp_path / "demo.db").exists()


async def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(c.dialect.get_table_names(c)))
    await engine.dispose()
    return names


@pytest.mark.anyio
async def test_migrate_creates_every_table(config_file: Path, anyio_backend: str) -> None:
    done = siaran("migrate", "--config", str(config_file))
    assert done.returncode == 0, done.stderr
    url = f"sqlite:///{config_file.parent / 's.db'}"
    assert {
        "components",
        "incidents",
        "incident_updates",
        "events",
        "tokens",
        "audit",
        "idempotency",
        "alembic_version",
    } <= await _tables(url)


@pytest.mark.anyio
async def test_deliveries_lists_what_failed_and_retry_puts_it_back(
    config_file: Path, anyio_backend: str
) -> None:
    from broadcasters import DeliveryError
    from broadcasters._dispatch import Dispatcher
    from status.clock import ManualClock
    from status.config import load_config
    from status.services import build_services
    from tests.broadcasters.test_dispatch import Recorder, news, rng, run_once
    from tests.conftest import MONDAY_MORNING

    config = load_config(config_file)
    engine = db.make_engine(config.storage.url)
    await db.migrate(engine)
    services = build_services(config, engine, ManualClock(MONDAY_MORNING))
    async with services.core.transaction() as tx:
        await services.core.sync_components(tx)
    hook = Recorder("webhook:ops")
    hook.failures = [DeliveryError("HTTP 410", permanent=True)]
    d = Dispatcher(engine, services.clock, [hook], instance_id="d", rng=rng())
    await d.start()
    await news(services, "Loket tutup")
    await run_once(d)
    await engine.dispose()

    listed = siaran("deliveries", "--config", str(config_file), "--status", "failed")
    assert listed.returncode == 0, listed.stderr
    assert "\twebhook:ops\tfailed\tattempts 1\tHTTP 410 [target stopped: HTTP 410]" in listed.stdout
    retried = siaran(
        "deliveries", "--config", str(config_file), "--retry", "--target", "webhook:ops"
    )
    assert "1 failed deliveries put back in line" in retried.stderr
    assert "\tpending\t" in siaran("deliveries", "--config", str(config_file)).stdout


@pytest.mark.anyio
async def test_serve_keeps_stdout_clean_and_logs_to_stderr(
    config_file: Path, anyio_backend: str
) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "status", "serve", "--config", str(config_file)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(  # noqa: ASYNC220 - a server that outlives this coroutine step
            [*argv, "--port", str(port)],
            stdout=out,
            stderr=err,
            text=True,
        )
        try:
            await wait_for_port(port)
            async with httpx.AsyncClient() as client:
                summary = await client.get(f"http://127.0.0.1:{port}/api/v2/summary.json")
            assert summary.status_code == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
        out.seek(0)
        err.seek(0)
        assert out.read() == ""
        logged = err.read()
    assert proc.returncode == 0, logged
    # The HTTP server's own start and stop lines, in our log format, on stderr.
    assert " INFO status.web.http_server: listening on http://127.0.0.1:" in logged
    assert " INFO uvicorn.error: Finished server process" in logged


@pytest.mark.anyio
async def test_serve_answers_hundreds_of_phones_that_hold_their_connections_open(
    config_file: Path, anyio_backend: str
) -> None:
    port = free_port()
    phones = 400  # granian's default (before uvicorn) let 128 in and queued the rest
    request = b"GET /api/v2/status.json HTTP/1.1\r\nHost: status.example.id\r\n\r\n"
    async with running("serve", "--config", str(config_file), "--port", str(port), port=port):
        streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        try:
            async with asyncio.timeout(30):
                for _ in range(phones):
                    streams.append(await asyncio.open_connection("127.0.0.1", port))
                for _reader, writer in streams:
                    writer.write(request)
                lines = await asyncio.gather(*(reader.readline() for reader, _w in streams))
        finally:
            for _reader, writer in streams:
                writer.close()
    assert lines == [b"HTTP/1.1 200 OK\r\n"] * phones

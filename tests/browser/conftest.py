"""Browser fixtures: headless Chromium (Debian's package, never a downloaded one) and the real
service started as `siaran serve` on a free port.

    def test_it(live_server, phone):
        page = phone(width=360)                    # JavaScript off, like a cheap phone's data saver
        page.goto(live_server.url + "/")
        token = live_server.token("ops", "admin")  # `siaran token create` against its database

Override `live_config` (TOML text; "{public_url}" is replaced by the server's URL) or
`live_database_url` in a test module to start the service differently.

Chromium is /usr/bin/chromium (scripts/test installs Debian's chromium and chromium-driver when
it can). Where it or the playwright package is missing these tests skip saying why, except
under CI=true, where that fails the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import free_port, stop

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path(os.environ.get("SIARAN_TEST_CHROMIUM", "/usr/bin/chromium"))
# Quiet and self-contained: no updates, sync, QUIC or other traffic of the browser's own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP = 30.0  # seconds for `siaran serve` to migrate a fresh database and listen

LIVE_CONFIG = """
[site]
name = "Status e-Meterai"
public_url = "{public_url}"
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

[[branch]]
id = "kcu-jayapura"
name = "KCU Jayapura"
region = "Papua"
timezone = "Asia/Jayapura"
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser tests (scripts/test installs chromium)")
    pytest.skip(f"{reason}; install Debian's chromium and chromium-driver to run browser tests")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Chromium for one test module; each test opens its own context.

    Not per session: playwright's sync API keeps its own event loop while open, which the
    suite's async tests in later modules should not run beside.
    """
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def phone(chromium: Browser) -> Iterator[Callable[..., Page]]:
    """Opens a page in a fresh browser context: `phone(width=360, javascript=False, locale="id-ID")`.

    `locale` sets the browser's Accept-Language.
    """
    contexts: list[Any] = []

    def open_page(
        width: int = 360, *, javascript: bool = False, locale: str = "id-ID", height: int = 780
    ) -> Page:
        context = chromium.new_context(
            viewport={"width": width, "height": height},
            java_script_enabled=javascript,
            locale=locale,
            device_scale_factor=1,
        )
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def live_config() -> str:
    """The TOML the service runs with; "{public_url}" becomes its own base URL."""
    return LIVE_CONFIG


@pytest.fixture
def live_database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'live.db'}"


@dataclass
class LiveServer:
    """A running `siaran serve`: its base URL and the means to act on it as operations would."""

    url: str
    config_path: Path
    database_url: str
    log_path: Path
    env: dict[str, str] = field(repr=False)

    def siaran(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run another `siaran` command against the same config and database."""
        return subprocess.run(
            [sys.executable, "-m", "status", *args, "--config", str(self.config_path)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def token(self, name: str, scope: str) -> str:
        """A new staff token (`siaran token create` prints it alone on stdout)."""
        return self.siaran("token", "create", "--name", name, "--scope", scope).stdout.strip()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    """Until /healthz says the database answers and the renderings are built."""
    deadline = time.monotonic() + STARTUP
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"siaran serve exited with {process.returncode}:\n{log_path.read_text()}"
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"siaran serve was not ready within {STARTUP}s:\n{log_path.read_text()}"
            )
        time.sleep(0.05)  # polling a server the test started, not waiting for an outcome


@pytest.fixture
def live_server(live_config: str, live_database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The real service (`siaran serve`) on a free loopback port; stopped with SIGTERM after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config_path = tmp_path / "siaran.toml"
    config_path.write_text(live_config.replace("{public_url}", url), encoding="utf-8")
    log_path = tmp_path / "siaran-serve.log"
    env = {
        **os.environ,
        "SIARAN_DATABASE_URL": live_database_url,
        "PTB_TIMEDELTA": "true",
        "SIARAN_ALLOW_PRIVATE_TARGETS": "1",
    }
    command = [sys.executable, "-m", "status", "serve", "--config", str(config_path)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(process, url, log_path)
        yield LiveServer(url, config_path, live_database_url, log_path, env)
    finally:
        stop(process, within=15)

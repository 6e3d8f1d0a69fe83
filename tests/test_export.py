"""`siaran export`: the public site as static files a CDN or a plain nginx can serve."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from status.export import MANIFEST, export, file_for
from status.services import Services
from status.snapshot import make_rendering
from tests.conftest import TEST_CONFIG, eventually, stop
from tests.test_cli import siaran

HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"
AT = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
NEW_INCIDENT = {
    "name": "Loket e-Meterai KCU Medan tutup <b>&\"'",
    "status": "identified",
    "impact": "major",
    "body": "Jaringan pusat terganggu. Nomor antrean tetap berlaku besok.",
    "components": {"kcu-medan": "major_outage"},
}


@pytest.mark.parametrize(
    ("path", "file"),
    [
        ("/", "index.html"),
        ("/api/v2/summary.json", "api/v2/summary.json"),
        ("/history.atom", "history.atom"),
        ("/components/kcu-medan/history.rss", "components/kcu-medan/history.rss"),
        ("/api/v1/branches", "api/v1/branches"),
        ("/?lang=en", "en/index.html"),
        ("/history.atom?lang=en", "en/history.atom"),
        ("/api/v2/summary.json?lang=id", "id/api/v2/summary.json"),
        ("/?v=3", None),
        ("/../etc/passwd", None),
        ("relative.json", None),
    ],
)
def test_each_public_path_has_a_file_a_static_host_serves_at_that_path(
    path: str, file: str | None
) -> None:
    assert file_for(path) == file


async def _get_raw(
    client: httpx.AsyncClient, url: str, encoding: str
) -> tuple[httpx.Response, bytes]:
    """The answer with its body exactly as sent (gzip left compressed)."""
    async with client.stream("GET", url, headers={"Accept-Encoding": encoding}) as response:
        return response, b"".join([c async for c in response.aiter_raw()])


@pytest.mark.anyio
async def test_export_writes_the_bytes_the_server_serves(
    services: Services, applicant: httpx.AsyncClient, admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    posted = await admin.post("/api/v1/incidents", json=NEW_INCIDENT)
    assert posted.status_code == 201
    out = tmp_path / "site"

    export(services.snapshot.files, out)

    manifest = json.loads((out / MANIFEST).read_text())
    paths = sorted(services.snapshot.files)
    assert "/api/v2/summary.json" in paths
    assert sorted(manifest["urls"]) == paths
    for path in paths:
        name = manifest["urls"][path]["file"]
        plain, body = await _get_raw(applicant, path, "identity")
        zipped, gzipped = await _get_raw(applicant, path, "gzip")
        assert plain.status_code == zipped.status_code == 200, path
        assert (out / name).read_bytes() == body, path
        assert (out / f"{name}.gz").read_bytes() == gzipped, path
        assert zipped.headers["content-encoding"] == "gzip"
        assert manifest["urls"][path]["content_type"] == plain.headers["content-type"]
        modified = parsedate_to_datetime(plain.headers["last-modified"]).timestamp()
        assert (out / name).stat().st_mtime == modified, path
    summary = json.loads((out / "api/v2/summary.json").read_text())
    assert [i["name"] for i in summary["incidents"]] == [NEW_INCIDENT["name"]]
    # Once the page renderer publishes them: the page and each incident's permalink.
    if "/" in paths:
        assert (out / "index.html").is_file()
    incident = f"/incidents/{posted.json()['id']}"
    if incident in paths:
        assert (out / incident.lstrip("/") / "index.html").is_file()


def test_a_vanished_path_is_removed_and_unchanged_files_are_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "robots.txt").write_text("User-agent: *\n")  # not ours: never touched
    summary = make_rendering(b'{"incidents":[1]}', JSON, AT)
    first = {
        "/api/v2/summary.json": summary,
        "/incidents/abc": make_rendering(b"<h1>Loket tutup</h1>", HTML, AT),
    }
    done = export(first, out)
    assert (done.written, done.unchanged, done.removed) == (4, 0, 0)
    assert (out / "incidents/abc/index.html").read_bytes() == b"<h1>Loket tutup</h1>"
    kept = (out / "api/v2/summary.json").stat()

    later = AT + timedelta(hours=1)  # a new process dates the same bytes anew
    again = {"/api/v2/summary.json": make_rendering(summary.body, JSON, later)}
    done = export(again, out)

    assert (done.written, done.unchanged, done.removed) == (0, 2, 2)
    assert not (out / "incidents").exists()
    assert (out / "robots.txt").read_text() == "User-agent: *\n"
    now = (out / "api/v2/summary.json").stat()
    assert (now.st_ino, now.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "api", "robots.txt"]


def test_a_file_changed_by_someone_else_is_written_again(tmp_path: Path) -> None:
    out = tmp_path / "site"
    files = {"/api/v2/status.json": make_rendering(b'{"status":"ok"}', JSON, AT)}
    export(files, out)
    (out / "api/v2/status.json").write_bytes(b"tampered")

    done = export(files, out)

    assert done.written == 1
    assert (out / "api/v2/status.json").read_bytes() == b'{"status":"ok"}'
    assert gzip.decompress((out / "api/v2/status.json.gz").read_bytes()) == b'{"status":"ok"}'


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "siaran.toml"
    path.write_text(TEST_CONFIG + f'\n[storage]\nurl = "sqlite:///{tmp_path / "s.db"}"\n')
    return path


@pytest.mark.parametrize(
    ("directory", "says"),
    [
        ("siaran.toml", "exists and is not a directory"),
        ("siaran.toml/site", "cannot create it: Not a directory"),
        ("/sys", "cannot write there"),  # exists, and even root may not create files in sysfs
        ("/sys/siaran-site", "cannot create it"),
    ],
)
def test_a_directory_that_cannot_hold_the_site_is_refused_clearly(
    config_file: Path, directory: str, says: str
) -> None:
    target = config_file.parent / directory  # absolute paths stay as they are
    done = siaran("export", str(target), "--config", str(config_file))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"siaran export: {target}: {says}")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
    assert not (config_file.parent / "s.db").exists()  # refused before touching the database


def _database_url(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


@dataclass
class Watch:
    """`siaran export DIR --watch` as a process; its output once it has stopped."""

    proc: subprocess.Popen[str]
    stdout: str = ""
    stderr: str = ""


@contextmanager
def watching(directory: Path, config: Path, database: str) -> Iterator[Watch]:
    """Run the watcher; on leaving, stop it with SIGTERM as a supervisor would."""
    with (
        (directory.parent / "export.out").open("w+") as out,
        (directory.parent / "export.err").open("w+") as err,
    ):
        argv = [sys.executable, "-m", "status", "export", str(directory), "--watch"]
        proc = subprocess.Popen(
            [*argv, "--config", str(config)],
            env={**os.environ, "SIARAN_DATABASE_URL": database},
            stdout=out,
            stderr=err,
            text=True,
        )
        watch = Watch(proc)
        try:
            yield watch
        finally:
            stop(proc)
            out.seek(0)
            err.seek(0)
            watch.stdout, watch.stderr = out.read(), err.read()


@pytest.mark.anyio
async def test_watch_writes_an_incident_created_afterwards(
    services: Services, admin: httpx.AsyncClient, config_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    summary = out / "api/v2/summary.json"
    with watching(out, config_file, _database_url(services.engine)) as watch:
        await eventually(summary.is_file, within=60)
        assert json.loads(summary.read_bytes())["incidents"] == []

        posted = await admin.post("/api/v1/incidents", json=NEW_INCIDENT)
        assert posted.status_code == 201

        def shows_it() -> bool:
            incidents = json.loads(summary.read_bytes())["incidents"]
            return [i["name"] for i in incidents] == [NEW_INCIDENT["name"]]

        await eventually(shows_it, within=30)
        served = services.snapshot.get("/api/v2/summary.json")
        assert served is not None
        assert summary.read_bytes() == served.body
        assert (out / "api/v2/summary.json.gz").read_bytes() == served.gzipped
        incident = f"/incidents/{posted.json()['id']}"
        if services.snapshot.get(incident) is not None:  # once the page renderer lands
            await eventually((out / incident.lstrip("/") / "index.html").is_file)
        assert watch.proc.poll() is None
    assert watch.proc.returncode == 0, watch.stderr
    assert watch.stdout == ""
    assert "Traceback" not in watch.stderr

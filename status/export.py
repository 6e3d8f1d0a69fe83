"""Writes the current renderings (page, JSON, feeds) to a directory for static hosting.

`siaran export DIR` puts the whole public site where a CDN, object storage or a plain nginx
can serve it, so a rush never reaches Siaran at all. A static host serves a file by path and
picks its type from the name, so each snapshot path maps to a file like this:

    /                          → index.html
    /incidents/<id>            → incidents/<id>/index.html    (HTML without an extension)
    /api/v2/summary.json       → api/v2/summary.json
    /history.atom              → history.atom
    /api/v1/branches           → api/v1/branches               (no extension: type set by host)
    <path>?lang=en             → en/<file of path>             (en/index.html, en/history.atom)

Beside each file is `<file>.gz`, Siaran's own gzip bytes (nginx `gzip_static`, CDNs that take
precompressed objects), and each file's mtime is the rendering's Last-Modified. Every file is
replaced atomically (a temp file, then os.replace), so a reader sees the old bytes or the new,
never half. A file whose bytes did not change is not touched (its mtime stays, so a CDN sync
uploads only what changed). `.siaran-export.json` lists what the last export wrote, with each
URL's content type; files for paths that vanished are removed, and only those: anything else
in DIR is left alone.

The page links languages as `?lang=en`, which a plain static host ignores (it serves the
site's language); nginx maps it onto the en/ tree with
`if ($arg_lang ~ ^(en|id)$) { rewrite ^ /$arg_lang$uri? last; }` and serves /incidents/<id>
without a redirect with `try_files $uri $uri/index.html =404;`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from status.clock import Clock
from status.snapshot import Rendering, Snapshot

log = logging.getLogger(__name__)

MANIFEST = ".siaran-export.json"
_LANG_QUERY = re.compile(r"lang=([a-z]{2,3})")


class ExportError(Exception):
    """The directory cannot hold the export (not a directory, not writable); says which and why."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one export did, in files (a `.gz` counts as a file)."""

    written: int
    unchanged: int
    removed: int


def file_for(path: str) -> str | None:
    """The relative file a snapshot path is written to; None for a path no file can stand for."""
    base, _, query = path.partition("?")
    prefix = ""
    if query:
        match = _LANG_QUERY.fullmatch(query)
        if match is None:
            return None
        prefix = match[1] + "/"
    parts = PurePosixPath(base).parts
    if not parts or parts[0] != "/" or any(p in (".", "..") or "\\" in p for p in parts[1:]):
        return None
    rest = "/".join(parts[1:])
    if not rest:
        return prefix + "index.html"
    return prefix + rest


def _file_for(path: str, content_type: str) -> str | None:
    name = file_for(path)
    # An HTML path without an extension becomes a directory index, so /incidents/<id>/ works
    # on every static host and /incidents/<id> does too where the host adds the slash.
    html = content_type.startswith("text/html")
    if name is not None and html and "." not in name.rsplit("/", 1)[-1]:
        name += "/index.html"
    return name


def plan(files: Mapping[str, Rendering]) -> dict[str, tuple[str, Rendering]]:
    """Relative file → (URL path, rendering) for every path that maps to a file."""
    planned: dict[str, tuple[str, Rendering]] = {}
    for path, rendering in sorted(files.items()):
        name = _file_for(path, rendering.content_type)
        if name is not None:
            planned[name] = (path, rendering)
    directories = {str(p) for name in planned for p in PurePosixPath(name).parents}
    if clash := sorted(directories & set(planned)):
        raise ExportError(f"{clash[0]} would be both a file and a directory")
    return planned


def export(files: Mapping[str, Rendering], directory: Path) -> Outcome:
    """Write `files` (a snapshot's path → Rendering) into `directory`; raises ExportError."""
    check_directory(directory)
    previous = _read_manifest(directory)
    wanted: dict[str, tuple[bytes, float, str]] = {}  # file → bytes, mtime, etag
    urls: dict[str, dict[str, str]] = {}
    for name, (path, rendering) in plan(files).items():
        mtime = rendering.last_modified.timestamp()
        wanted[name] = (rendering.body, mtime, rendering.etag)
        wanted[name + ".gz"] = (rendering.gzipped, mtime, rendering.etag)
        urls[path] = {"file": name, "content_type": rendering.content_type}
    written = unchanged = removed = 0
    kept: dict[str, tuple[str, int]] = {}  # file → etag, mtime (seconds): the new manifest
    try:
        # Vanished first: a path that became a directory (or back) needs the old one gone.
        for name in sorted(set(previous) - set(wanted)):
            target = directory / name
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
                removed += 1
            _prune_empty_parents(target.parent, directory)
        for name, (data, mtime, etag) in wanted.items():
            target = directory / name
            before = previous.get(name)
            # Same bytes as last time (and nobody touched the file since): keep file and mtime,
            # even where a fresh process dates the same bytes anew.
            if (
                before is not None
                and before[0] == etag
                and _same_file(target, len(data), before[1])
            ):
                kept[name] = before
                unchanged += 1
                continue
            _write_atomically(target, data, mtime)
            kept[name] = (etag, int(mtime))
            written += 1
        manifest = {
            "version": 1,
            "files": {name: {"etag": etag, "mtime": mtime} for name, (etag, mtime) in kept.items()},
            "urls": urls,
        }
        body = json.dumps(manifest, indent=1, sort_keys=True).encode()
        _write_atomically(directory / MANIFEST, body, None)
    except OSError as exc:
        raise ExportError(f"{directory}: cannot write there: {_reason(exc)}") from exc
    return Outcome(written, unchanged, removed)


def check_directory(directory: Path) -> None:
    """Create the directory and prove it takes files; ExportError says why it cannot."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise ExportError(f"{directory}: exists and is not a directory") from exc
    except OSError as exc:
        raise ExportError(f"{directory}: cannot create it: {_reason(exc)}") from exc
    if not directory.is_dir():
        raise ExportError(f"{directory}: exists and is not a directory")
    probe = directory / f".siaran-probe-{secrets.token_hex(4)}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ExportError(f"{directory}: cannot write there: {_reason(exc)}") from exc


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _read_manifest(directory: Path) -> dict[str, tuple[str, int]]:
    """File → (etag, mtime) from the last export; empty if there was none or it is unreadable.

    Names that could point outside the directory are dropped: the manifest is only a file.
    """
    try:
        files: Any = json.loads((directory / MANIFEST).read_bytes())["files"]
        return {
            str(name): (str(entry["etag"]), int(entry["mtime"]))
            for name, entry in files.items()
            if file_for("/" + str(name)) == str(name)
        }
    except (OSError, ValueError, LookupError, TypeError, AttributeError):
        return {}


def _same_file(target: Path, size: int, mtime: int) -> bool:
    try:
        st = target.stat()
    except OSError:
        return False
    return st.st_size == size and int(st.st_mtime) == mtime


def _write_atomically(target: Path, data: bytes, mtime: float | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    # 0o644 (less the umask): a static host's workers run as another user and must read it.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        if mtime is not None:
            os.utime(temp, (mtime, mtime))
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def _prune_empty_parents(folder: Path, root: Path) -> None:
    """Remove directories a vanished path leaves empty (incidents/<id>/), up to the root."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or already gone): stop climbing
            return
        folder = folder.parent


async def follow(
    snapshot: Snapshot,
    directory: Path,
    clock: Clock,
    *,
    every: timedelta = timedelta(milliseconds=200),
    retry_after: timedelta = timedelta(seconds=5),
) -> None:
    """Keep `directory` current: export after every rebuild of `snapshot`; runs until cancelled.

    The snapshot follows the event log (and the clock) on its own; this loop only notices
    that it swapped in new renderings, which costs an identity check, not a query.
    """
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(snapshot.run())
        exported: Mapping[str, Rendering] | None = None
        while True:
            files = snapshot.files
            if files is not exported:
                try:
                    outcome = await asyncio.to_thread(export, files, directory)
                except ExportError as exc:  # e.g. a full disk: say so, and try again
                    log.error("export failed: %s; retrying in %ss", exc, retry_after.seconds)
                    await clock.sleep_until(clock.now() + retry_after)
                    continue
                exported = files
                if outcome.written or outcome.removed:
                    log.info(
                        "exported event %d to %s: %d files written, %d removed",
                        snapshot.event_id,
                        directory,
                        outcome.written,
                        outcome.removed,
                    )
            await clock.sleep_until(clock.now() + every)

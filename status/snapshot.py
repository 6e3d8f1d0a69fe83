"""Every instance follows the event log and rebuilds renderings; serves bytes + ETag + Last-Modified.

Public reads never touch the database: a rebuild happens when this process commits a change
(on_commit), when another instance's event appears (polled), or when time alone changes
what is true (a branch opens, a maintenance window starts).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from status import db, outbox, store
from status.clock import Clock
from status.config import Config
from status.event_cursor import EventCursor
from status.model import State

log = logging.getLogger(__name__)

JSON = "application/json; charset=utf-8"
# Short enough that news spreads within seconds; stale-while-revalidate lets a CDN or browser
# keep answering from cache while one request refreshes it, which is what survives a rush.
PUBLIC_CACHE = "public, max-age=5, stale-while-revalidate=30, stale-if-error=86400"


Headers = list[tuple[bytes, bytes]]
STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode("ascii")
    for status in HTTPStatus
}


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete answer, built once: ASGI's header pairs for the ASGI path, and the same
    on the wire for status.web.http_server, which writes `wire_status`, its per-second Date
    line, `wire_headers` (the other header lines and the blank line) and the body."""

    status: int
    headers: Headers
    body: bytes
    wire_status: bytes = field(init=False)
    wire_headers: bytes = field(init=False)

    def __post_init__(self) -> None:
        lines = [name + b": " + value + b"\r\n" for name, value in self.headers]
        object.__setattr__(self, "wire_status", STATUS_LINES[self.status])
        object.__setattr__(self, "wire_headers", b"".join([*lines, b"\r\n"]))


@dataclass(frozen=True, slots=True)
class Rendering:
    """One public response, prepared once per change, with the five answers a request for it
    can get (status.web.public.answer picks one) built ahead rather than on the rush path."""

    body: bytes
    gzipped: bytes
    etag: str
    last_modified: datetime
    content_type: str
    not_modified: Reply
    plain: Reply
    gzip: Reply
    plain_head: Reply
    gzip_head: Reply


# Every public answer carries these: cacheable by anyone, readable from any site.
COMMON_HEADERS = [
    (b"cache-control", PUBLIC_CACHE.encode()),
    (b"vary", b"Accept-Encoding"),
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"ETag, Last-Modified"),
]


def make_rendering(body: bytes, content_type: str, last_modified: datetime) -> Rendering:
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    # mtime=0 keeps the gzip bytes a pure function of the body (same ETag → same bytes).
    gzipped = gzip.compress(body, 6, mtime=0)
    modified = last_modified.replace(microsecond=0)
    validators = [
        (b"etag", etag.encode()),
        (b"last-modified", format_datetime(modified, usegmt=True).encode()),
        *COMMON_HEADERS,
    ]
    if content_type.startswith("text/html"):
        # The page is negotiated on Accept-Language (status.web.public.answer).
        validators = [
            (name, b"Accept-Encoding, Accept-Language" if name == b"vary" else value)
            for name, value in validators
        ]
    typed = [*validators, (b"content-type", content_type.encode())]
    plain = [*typed, (b"content-length", str(len(body)).encode())]
    zipped = [
        *typed,
        (b"content-length", str(len(gzipped)).encode()),
        (b"content-encoding", b"gzip"),
    ]
    return Rendering(
        body,
        gzipped,
        etag,
        modified,
        content_type,
        not_modified=Reply(304, validators, b""),
        plain=Reply(200, plain, body),
        gzip=Reply(200, zipped, gzipped),
        plain_head=Reply(200, plain, b""),
        gzip_head=Reply(200, zipped, b""),
    )


def dump_json(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def _modified_at(previous: Rendering | None, state: State, now: datetime) -> datetime:
    """Last-Modified for a changed body; strictly later than the previous one.

    HTTP dates have one-second resolution: two changes within a second would otherwise share
    a date, and a client sending only If-Modified-Since would keep the stale copy.
    """
    if previous is None:
        return state.last_change_at
    return max(now, previous.last_modified + timedelta(seconds=1))


# A renderer turns one loaded state into documents: path → (body, content type).
Renderer = Callable[[State, Config, datetime], Mapping[str, tuple[bytes, str]]]
# Tells when time alone will change some rendering (None = never).
NextChange = Callable[[Config, State, datetime], datetime | None]


class Snapshot:
    """The public site in memory: path → Rendering, swapped whole on each rebuild."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        config: Config,
        renderers: list[Renderer],
        *,
        next_changes: list[NextChange] | None = None,
        poll_every: timedelta = timedelta(seconds=1),
    ) -> None:
        self._engine, self._clock, self._config = engine, clock, config
        self._renderers = renderers
        self._next_changes = next_changes or []
        self._poll_every = poll_every
        self._files: dict[str, Rendering] = {}
        self._lock = asyncio.Lock()
        self._built_event = -1
        self._cursor: EventCursor | None = None  # None until the first build
        self._state: State | None = None
        self._next_time_change: datetime | None = None

    @property
    def files(self) -> Mapping[str, Rendering]:
        return self._files

    @property
    def state(self) -> State | None:
        return self._state

    @property
    def event_id(self) -> int:
        return self._built_event

    def get(self, path: str) -> Rendering | None:
        return self._files.get(path)

    async def refresh(self, *, including: int | None = None, force: bool = False) -> None:
        """Rebuild unless what is built already includes event `including` (any build will do
        when it is None); `force` rebuilds regardless."""
        async with self._lock:
            built = self._cursor
            if not force and built is not None and (including is None or built.covers(including)):
                return
            now = self._clock.now()
            async with db.read(self._engine) as conn:
                if self._cursor is None:
                    self._cursor = EventCursor(await outbox.latest_id(conn))
                ids = await outbox.ids_after(conn, self._cursor.floor)
                state = await store.load_state(conn, now)
            self._install(state, now)
            self._cursor.see(ids, now)

    def _install(self, state: State, now: datetime) -> None:
        files: dict[str, Rendering] = {}
        # A renderer publishes `path` and its `path?lang=<site language>` twin with the same
        # bytes: hash and gzip them once.
        made: dict[tuple[bytes, str, datetime], Rendering] = {}
        for renderer in self._renderers:
            for path, (body, content_type) in renderer(state, self._config, now).items():
                previous = self._files.get(path)
                if previous is not None and previous.body == body:
                    files[path] = previous  # unchanged: keep its ETag and Last-Modified
                    continue
                key = (
                    body,
                    content_type,
                    _modified_at(previous, state, now).replace(microsecond=0),
                )
                if key not in made:
                    made[key] = make_rendering(*key)
                files[path] = made[key]
        self._files = files
        self._state = state
        self._built_event = state.last_event_id
        times = [f(self._config, state, now) for f in self._next_changes]
        self._next_time_change = min((t for t in times if t is not None), default=None)

    async def on_commit(self, event_id: int) -> None:
        """Core listener: rebuild now, so a writer's next read shows its change."""
        await self.refresh(including=event_id)

    @property
    def waiting_for(self) -> list[int]:
        """Event ids below a built one that have not committed yet (see status.event_cursor)."""
        return self._cursor.waiting_for if self._cursor is not None else []

    async def run(self) -> None:
        """Follow other instances' events and the clock; runs until cancelled."""
        while True:
            wake = self._clock.now() + self._poll_every
            if self._next_time_change is not None:
                wake = min(wake, self._next_time_change)
            await self._clock.sleep_until(wake)
            try:
                unseen: list[int] = []
                if self._cursor is not None:
                    async with db.read(self._engine) as conn:
                        ids = await outbox.ids_after(conn, self._cursor.floor)
                    unseen = self._cursor.unseen(ids)
                    self._cursor.advance(self._clock.now())  # give up on long-missing ids
                due = (
                    self._next_time_change is not None
                    and self._clock.now() >= self._next_time_change
                )
                if unseen or due or self._cursor is None:
                    await self.refresh(force=True)
            except Exception:  # the loop must outlive a database hiccup; the next poll retries
                log.exception("snapshot refresh failed; serving the previous renderings")

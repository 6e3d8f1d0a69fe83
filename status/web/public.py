"""GET endpoints that serve bytes from the snapshot (v2 JSON, branches, OpenAPI), and /healthz.

`PublicFiles` is a plain ASGI callable in front of the Starlette app: a GET for a path the
snapshot holds is answered from memory without routing, middleware or the database (the
rush-hour path); everything else passes through.
"""

from __future__ import annotations

import json
from email.utils import parsedate_to_datetime
from functools import lru_cache

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from status import db
from status.i18n import LANGUAGES
from status.render.statuspage import iso
from status.services import Services
from status.snapshot import Rendering, Snapshot

_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
    (b"access-control-allow-headers", b"If-None-Match, If-Modified-Since, Accept-Language"),
    (b"access-control-expose-headers", b"ETag, Last-Modified"),
    (b"access-control-max-age", b"86400"),
]


# Snapshot paths are read-only; a POST there is a mistake worth naming, not a 404.
_METHOD_NOT_ALLOWED = json.dumps(
    {"error": {"code": "method_not_allowed", "message": "Method Not Allowed", "field": None}},
    separators=(",", ":"),
).encode()
_METHOD_NOT_ALLOWED_HEADERS = (
    (b"allow", b"GET, HEAD, OPTIONS"),
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_METHOD_NOT_ALLOWED)).encode()),
)


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    weak_free = etag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == weak_free for t in if_none_match.split(","))


def _weighted(header: str) -> list[tuple[str, float]]:
    """An Accept-* header as (lower-cased value, q) pairs in order (RFC 9110 12.4.2)."""
    items: list[tuple[str, float]] = []
    for item in header.lower().split(","):
        value, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, number = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(number)
                except ValueError:
                    q = 0.0
        items.append((value, q))
    return items


@lru_cache(maxsize=256)  # phones send a handful of distinct headers; parse each once
def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether gzip is acceptable: named, or covered by "*", with q above 0 (RFC 9110 12.5.3)."""
    weights = dict(_weighted(accept_encoding))
    q = weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0)))
    return q > 0


@lru_cache(maxsize=256)
def _query_lang(query: bytes) -> str | None:
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == b"lang":
            code = value.decode("latin-1").lower()
            return code if code in LANGUAGES else None
    return None


@lru_cache(maxsize=256)
def _preferred_language(accept_language: str) -> str | None:
    """The supported language the browser weights highest (q=0 excluded); None if none."""
    best: tuple[float, str] | None = None
    for tag, q in _weighted(accept_language):
        code = tag[:2]
        if code in LANGUAGES and q > 0 and (best is None or q > best[0]):
            best = (q, code)
    return best[1] if best else None


def _not_modified_since(value: str, rendering: Rendering) -> bool:
    try:
        since = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return since.tzinfo is not None and rendering.last_modified <= since


class PublicFiles:
    """Answers GET/HEAD/OPTIONS for snapshot paths from memory; passes everything else to `app`."""

    def __init__(self, app: ASGIApp, snapshot: Snapshot) -> None:
        self.app, self.snapshot = app, snapshot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            rendering = self._lookup(scope)
            if rendering is not None:
                method = scope["method"]
                if method in ("GET", "HEAD"):
                    await self._serve(rendering, scope, send, head=method == "HEAD")
                    return
                if method == "OPTIONS":
                    await _send(send, 204, list(_CORS), b"")
                    return
                await _send(send, 405, [*_METHOD_NOT_ALLOWED_HEADERS], _METHOD_NOT_ALLOWED)
                return
        await self.app(scope, receive, send)

    def _lookup(self, scope: Scope) -> Rendering | None:
        """The rendering for this path, in the language asked for.

        A renderer publishes `path` in the site's language and `path?lang=<code>` for each
        language. `?lang=` picks one (other query parameters, e.g. cache-busters, are
        ignored); for HTML, the browser's Accept-Language picks one when ?lang= is absent.
        """
        path = scope["path"]
        rendering = self.snapshot.get(path)
        if rendering is None:
            return None
        query = scope.get("query_string", b"")
        lang = _query_lang(query) if query else None
        if lang is None and rendering.content_type.startswith("text/html"):
            for name, value in scope["headers"]:
                if name == b"accept-language":
                    lang = _preferred_language(value.decode("latin-1"))
                    break
        if lang is None:
            return rendering
        return self.snapshot.get(f"{path}?lang={lang}") or rendering

    async def _serve(self, r: Rendering, scope: Scope, send: Send, *, head: bool) -> None:
        inm = ims = None
        gzip_ok = False
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                inm = value.decode("latin-1")
            elif name == b"if-modified-since":
                ims = value.decode("latin-1")
            elif name == b"accept-encoding":
                gzip_ok = _accepts_gzip(value.decode("latin-1"))
        # RFC 9110 13.1.3: If-Modified-Since is ignored when If-None-Match is present.
        fresh = (
            _matches(inm, r.etag)
            if inm is not None
            else (ims is not None and _not_modified_since(ims, r))
        )
        if fresh:
            await _send(send, 304, r.not_modified_headers, b"")
        elif gzip_ok:
            await _send(send, 200, r.gzip_headers, b"" if head else r.gzipped)
        else:
            await _send(send, 200, r.plain_headers, b"" if head else r.body)


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    start: Message = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})


async def healthz(request: Request) -> Response:
    """200 when the database answers and the snapshot is built; 503 otherwise (for load balancers)."""
    services: Services = request.app.state.services
    database = "ok"
    try:
        async with db.read(services.engine) as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # any failure to reach the database is the answer, not an error
        database = "unreachable"
    state = services.snapshot.state
    ok = database == "ok" and state is not None
    return JSONResponse(
        {
            "status": "ok" if ok else "unavailable",
            "database": database,
            "snapshot_event_id": services.snapshot.event_id,
            "snapshot_built_at": iso(state.loaded_at) if state else None,
        },
        status_code=200 if ok else 503,
        headers={"cache-control": "no-store"},
    )


routes = [Route("/healthz", healthz, methods=["GET", "HEAD"])]

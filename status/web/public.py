"""GET endpoints that serve bytes from the snapshot (v2 JSON, branches, OpenAPI), and /healthz.

`PublicFiles` is a plain ASGI callable in front of the Starlette app: a GET for a path the
snapshot holds is answered from memory without routing, middleware or the database (the
rush-hour path); everything else passes through.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
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
from status.snapshot import Rendering, Reply, Snapshot

_CORS = Reply(
    204,
    [
        (b"access-control-allow-origin", b"*"),
        (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
        (b"access-control-allow-headers", b"If-None-Match, If-Modified-Since, Accept-Language"),
        (b"access-control-expose-headers", b"ETag, Last-Modified"),
        (b"access-control-max-age", b"86400"),
    ],
    b"",
)


# Snapshot paths are read-only; a POST there is a mistake worth naming, not a 404.
_METHOD_NOT_ALLOWED_BODY = json.dumps(
    {"error": {"code": "method_not_allowed", "message": "Method Not Allowed", "field": None}},
    separators=(",", ":"),
).encode()
_METHOD_NOT_ALLOWED = Reply(
    405,
    [
        (b"allow", b"GET, HEAD, OPTIONS"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_METHOD_NOT_ALLOWED_BODY)).encode()),
    ],
    _METHOD_NOT_ALLOWED_BODY,
)


# The request headers a snapshot answer depends on.
NEGOTIATED = frozenset(
    (b"accept-encoding", b"accept-language", b"if-none-match", b"if-modified-since")
)


def negotiated_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request headers `answer` asks for (lower-case names; the first of each wins)."""
    found: dict[str, str] = {}
    for name, value in headers:
        if name in NEGOTIATED:
            found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found


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
def _query_lang(query: str) -> str | None:
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "lang":
            code = value.lower()
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


def answer(
    snapshot: Snapshot, method: str, path: str, query: str, header: Callable[[str], str | None]
) -> Reply | None:
    """The answer to a request for a snapshot path; None when the snapshot has no such path.

    The one decision behind both paths (ASGI `PublicFiles`, status.web.http_server's protocol):
    GET/HEAD get the body, a 304 or the gzip body; OPTIONS the CORS preflight; others 405.
    `header(name)` is a request header's value (lower-case name) or None; asked only for
    the headers this request's answer depends on, since each ask costs on the rush path.
    """
    rendering = snapshot.get(path)
    if rendering is None:
        return None
    lang = _query_lang(query) if query else None
    if lang is None and rendering.content_type.startswith("text/html"):
        # For HTML, the browser's Accept-Language picks the language when ?lang= is absent.
        accept_language = header("accept-language")
        lang = _preferred_language(accept_language) if accept_language else None
    if lang is not None:
        # A renderer publishes `path` in the site's language and `path?lang=<code>` for each
        # language; other query parameters (cache-busters) are ignored.
        rendering = snapshot.get(f"{path}?lang={lang}") or rendering
    head = method == "HEAD"
    if not head and method != "GET":
        return _CORS if method == "OPTIONS" else _METHOD_NOT_ALLOWED
    # RFC 9110 13.1.3: If-Modified-Since is ignored when If-None-Match is present.
    if_none_match = header("if-none-match")
    if if_none_match is not None:
        fresh = _matches(if_none_match, rendering.etag)
    else:
        if_modified_since = header("if-modified-since")
        fresh = if_modified_since is not None and _not_modified_since(if_modified_since, rendering)
    if fresh:
        return rendering.not_modified
    accept_encoding = header("accept-encoding")
    if accept_encoding is not None and _accepts_gzip(accept_encoding):
        return rendering.gzip_head if head else rendering.gzip
    return rendering.plain_head if head else rendering.plain


class PublicFiles:
    """Answers GET/HEAD/OPTIONS for snapshot paths from memory; passes everything else to `app`."""

    def __init__(self, app: ASGIApp, snapshot: Snapshot) -> None:
        self.app, self.snapshot = app, snapshot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            reply = self._answer(scope)
            if reply is not None:
                start: Message = {
                    "type": "http.response.start",
                    "status": reply.status,
                    "headers": reply.headers,
                }
                await send(start)
                await send({"type": "http.response.body", "body": reply.body})
                return
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope) -> Reply | None:
        if self.snapshot.get(scope["path"]) is None:  # most routed requests stop here
            return None
        return answer(
            self.snapshot,
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            negotiated_headers(scope["headers"]).get,
        )


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

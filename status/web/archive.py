"""/incidents/<id> for incidents older than the snapshot holds: the permanent record.

The snapshot keeps the last 90 days (status.store.HISTORY) in memory; a journalist's link to an
older incident must keep working, so a permalink the snapshot lacks is rendered here from the
database. These requests are rare, so they are not cached in memory; the ETag still saves
a reader the transfer.
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from status import db, store
from status.i18n import pick_language
from status.render.page import HTML, render_permalink
from status.services import Services
from status.web.errors import APIError

ID_MAX = 64  # the id columns' width
# Old incidents rarely change (a postmortem may still arrive): cache for minutes, not days.
CACHE = "public, max-age=300, stale-while-revalidate=3600"


async def permalink(request: Request) -> Response:
    if request.method == "OPTIONS":
        return Response(status_code=204, headers={"allow": "GET, HEAD, OPTIONS"})
    services: Services = request.app.state.services
    incident_id: str = request.path_params["incident_id"]
    if not 0 < len(incident_id) <= ID_MAX or not incident_id.isprintable():
        raise APIError(404, "not_found", "no incident has that id")
    async with db.read(services.engine) as conn:
        found = await store.load_incidents(conn, [incident_id])
        components = await store.load_components(conn, include_removed=True) if found else []
    if not found:
        raise APIError(404, "not_found", "no incident has that id")
    config = services.config
    lang = pick_language(
        request.query_params.get("lang"),
        request.headers.get("accept-language"),
        config.site.language,
    )
    body = render_permalink(found[0], components, config, lang)
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    headers = {"etag": etag, "cache-control": CACHE, "vary": "Accept-Encoding, Accept-Language"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":  # the headers a GET would get, Content-Length included
        return Response(b"", media_type=HTML, headers={**headers, "content-length": str(len(body))})
    return Response(body, media_type=HTML, headers=headers)


routes = [Route("/incidents/{incident_id}", permalink, methods=["GET", "HEAD", "OPTIONS"])]

"""Language variants on the rush path: ?lang= and, for HTML, Accept-Language pick the rendering."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from status.snapshot import Rendering, make_rendering
from status.web.public import PublicFiles

pytestmark = pytest.mark.anyio

AT = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


class Files:
    def __init__(self, files: dict[str, Rendering]) -> None:
        self.files = files

    def get(self, path: str) -> Rendering | None:
        return self.files.get(path)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"routed"})


def _client() -> httpx.AsyncClient:
    html = "text/html; charset=utf-8"
    atom = "application/atom+xml; charset=utf-8"
    files = {
        "/": make_rendering(b"<html lang=id>", html, AT),
        "/?lang=id": make_rendering(b"<html lang=id>", html, AT),
        "/?lang=en": make_rendering(b"<html lang=en>", html, AT),
        "/history.atom": make_rendering(b"<feed xml:lang='id'/>", atom, AT),
        "/history.atom?lang=en": make_rendering(b"<feed xml:lang='en'/>", atom, AT),
    }
    app = PublicFiles(_not_found, Files(files))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.parametrize(
    ("url", "accept_language", "expected"),
    [
        ("/", None, b"<html lang=id>"),
        ("/?lang=en", None, b"<html lang=en>"),
        ("/?lang=en&v=3", None, b"<html lang=en>"),
        ("/?v=3&lang=id", "en", b"<html lang=id>"),
        ("/?lang=fr", None, b"<html lang=id>"),
        ("/", "en-US,en;q=0.9", b"<html lang=en>"),
        ("/", "id-ID,id;q=0.9,en;q=0.8", b"<html lang=id>"),
        ("/", "fr, en;q=0.5, id;q=0.4", b"<html lang=en>"),
        ("/", "en;q=0, id", b"<html lang=id>"),
        ("/", "de", b"<html lang=id>"),
        # Feeds are not negotiated: a reader's Accept-Language must not change a feed's entries.
        ("/history.atom", "en", b"<feed xml:lang='id'/>"),
        ("/history.atom?lang=en", None, b"<feed xml:lang='en'/>"),
    ],
)
async def test_language_variant_is_chosen(
    url: str, accept_language: str | None, expected: bytes
) -> None:
    headers = {"accept-language": accept_language} if accept_language else {}
    async with _client() as client:
        response = await client.get(url, headers=headers)
    assert response.status_code == 200
    assert response.content == expected


async def test_html_varies_on_accept_language_but_feeds_do_not() -> None:
    async with _client() as client:
        page = await client.get("/")
        feed = await client.get("/history.atom")
        revalidated = await client.get("/", headers={"if-none-match": page.headers["etag"]})
    assert page.headers["vary"] == "Accept-Encoding, Accept-Language"
    assert feed.headers["vary"] == "Accept-Encoding"
    assert revalidated.status_code == 304
    assert revalidated.headers["vary"] == "Accept-Encoding, Accept-Language"


async def test_paths_outside_the_snapshot_go_to_the_app() -> None:
    async with _client() as client:
        response = await client.get("/staff?lang=en")
    assert response.status_code == 404
    assert response.content == b"routed"

"""Every bad request gets a 4xx that says what is wrong, in one JSON shape, and writes nothing.

A 500 would not even reach these assertions: the app re-raises unhandled errors through the
test transport, so the test fails with the original traceback.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from status import db, store
from status.schema import audit
from status.services import Services
from tests.web.test_staff_incidents import (
    created,
    incident_fields,
    open_incident,
    post_window,
    refused,
    stored_rows,
    window_fields,
)

pytestmark = pytest.mark.anyio

JSON = "application/json"
INCIDENTS = "/api/v1/incidents"
UPDATES = "/api/v1/incidents/{incident}/updates"
MAINTENANCES = "/api/v1/maintenances"
WINDOW_UPDATES = "/api/v1/maintenances/{maintenance}/updates"
GOOD_UPDATE = {"status": "identified", "body": "Penyebab ditemukan."}
GOOD_WINDOW_UPDATE = {"status": "in_progress", "body": "Mulai."}


def incident(**fields: Any) -> bytes:
    return json.dumps(incident_fields(**fields)).encode()


def without(key: str) -> bytes:
    doc = incident_fields()
    del doc[key]
    return json.dumps(doc).encode()


def update(**fields: Any) -> bytes:
    return json.dumps({**GOOD_UPDATE, **fields}).encode()


def window(**fields: Any) -> bytes:
    return json.dumps(window_fields(**fields)).encode()


def window_update(**fields: Any) -> bytes:
    return json.dumps({**GOOD_WINDOW_UPDATE, **fields}).encode()


async def everything_written(services: Services) -> dict[str, int]:
    async with db.read(services.engine) as conn:
        audited = await store.count_rows(conn, audit)
    return {**await stored_rows(services), "audit": audited}


async def fill_in(admin: httpx.AsyncClient, path: str) -> str:
    """Put real ids into a path template, creating what it refers to."""
    if "{incident}" in path:
        path = path.replace("{incident}", (await open_incident(admin))["id"])
    if "{maintenance}" in path:
        path = path.replace("{maintenance}", created(await post_window(admin))["id"])
    return path


async def send_refused(
    admin: httpx.AsyncClient,
    services: Services,
    request: tuple[str, str, bytes | None, str | None],
    expected: tuple[int, str, str | None],
) -> str:
    """Send one bad request; assert the error it gets and that nothing at all was written."""
    method, path, content, content_type = request
    path = await fill_in(admin, path)
    before = await everything_written(services)
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await admin.request(method, path, content=content, headers=headers)
    message = refused(response, *expected)
    assert await everything_written(services) == before
    return message


# (id, route, body, the field the error names)
NOT_A_JSON_OBJECT = [  # → 400 malformed_json
    ("malformed", INCIDENTS, b'{"name": ', None),
    ("empty", INCIDENTS, b"", None),
    ("array", INCIDENTS, b'[{"name": "Gangguan"}]', None),
    ("string", INCIDENTS, b'"Gangguan"', None),
    ("null", INCIDENTS, b"null", None),
    ("not-utf8", INCIDENTS, b'{"name": "Gangguan \xff"}', None),
    ("deep-arrays", INCIDENTS, b"[" * 50_000, None),
    ("deep-objects", INCIDENTS, b'{"a":' * 10_000, None),
    (
        "nine-deep",
        INCIDENTS,
        incident(components={"a": [[[[[[[[1]]]]]]]]}),
        "components.a.0.0.0.0.0.0",
    ),
    ("5000-digits", INCIDENTS, b'{"name": ' + b"9" * 5000 + b"}", None),
    ("surrogate", INCIDENTS, incident(name="Loket \ud800"), "name"),
    ("surrogate-key", INCIDENTS, b'{"\\udfff": 1}', "\\udfff"),
    ("update-malformed", UPDATES, b"{", None),
    ("window-array", MAINTENANCES, b"[]", None),
]
INVALID = [  # → 422 invalid
    # Wrong types.
    ("name-number", INCIDENTS, incident(name=42), "name"),
    ("body-list", INCIDENTS, incident(body=["Gangguan"]), "body"),
    ("status-number", INCIDENTS, incident(status=3), "status"),
    ("status-object", INCIDENTS, incident(status={"x": 1}), "status"),
    ("impact-bool", INCIDENTS, incident(impact=True), "impact"),
    ("components-list", INCIDENTS, incident(components=["kcu-medan"]), "components"),
    ("components-text", INCIDENTS, incident(components="kcu-medan"), "components"),
    ("component-number", INCIDENTS, incident(components={"kcu-medan": 4}), "components.kcu-medan"),
    # Words outside the vocabulary, and components that do not exist.
    ("status-down", INCIDENTS, incident(status="down"), "status"),
    ("impact-huge", INCIDENTS, incident(impact="huge"), "impact"),
    ("impact-maintenance", INCIDENTS, incident(impact="maintenance"), "impact"),
    ("broken", INCIDENTS, incident(components={"kcu-medan": "broken"}), "components.kcu-medan"),
    (
        "unknown-component",
        INCIDENTS,
        incident(components={"kcu-x": "major_outage"}),
        "components.kcu-x",
    ),
    (
        "nul-component",
        INCIDENTS,
        incident(components={"a\x00": "major_outage"}),
        "components.a\x00",
    ),
    # Text that is missing, empty, too long or carries a control character XML cannot hold.
    ("no-name", INCIDENTS, without("name"), "name"),
    ("no-body", INCIDENTS, without("body"), "body"),
    ("empty-name", INCIDENTS, incident(name=""), "name"),
    ("blank-name", INCIDENTS, incident(name=" \n\t "), "name"),
    ("null-name", INCIDENTS, incident(name=None), "name"),
    ("long-name", INCIDENTS, incident(name="x" * 201), "name"),
    ("long-body", INCIDENTS, incident(body="x" * 5001), "body"),
    ("nul-name", INCIDENTS, incident(name="Loket\x00tutup"), "name"),
    ("nul-body", INCIDENTS, incident(body="Loket\x00tutup"), "body"),
    ("escape-name", INCIDENTS, incident(name="Loket\x1b[31mtutup"), "name"),
    ("vtab-body", INCIDENTS, incident(body="Loket\x0btutup"), "body"),
    ("nonchar-body", INCIDENTS, incident(body="Loket\uffffnutup"), "body"),
    # Updates.
    ("update-no-status", UPDATES, json.dumps({"body": "x"}).encode(), "status"),
    ("update-status-closed", UPDATES, update(status="closed"), "status"),
    ("update-empty-name", UPDATES, update(name=""), "name"),
    ("update-impact-huge", UPDATES, update(impact="huge"), "impact"),
    ("update-impact-maint", UPDATES, update(impact="maintenance"), "impact"),
    ("update-broken", UPDATES, update(components={"kcu-medan": "broken"}), "components.kcu-medan"),
    ("update-unknown", UPDATES, update(components={"kcu-x": "major_outage"}), "components.kcu-x"),
    ("update-nul-body", UPDATES, update(body="a\x00"), "body"),
    # Maintenance windows.
    ("window-components-text", MAINTENANCES, window(components="kcu-medan"), "components"),
    ("window-components-numbers", MAINTENANCES, window(components=[1]), "components"),
    ("window-unknown-component", MAINTENANCES, window(components=["kcu-x"]), "components.kcu-x"),
    ("window-nul-component", MAINTENANCES, window(components=["a\x00"]), "components.a\x00"),
    ("window-auto-text", MAINTENANCES, window(auto_transition="ya"), "auto_transition"),
    ("window-no-start", MAINTENANCES, window(scheduled_for=None), "scheduled_for"),
    ("window-long-name", MAINTENANCES, window(name="x" * 201), "name"),
    (
        "window-year-1",
        MAINTENANCES,
        window(scheduled_for="0001-01-01T00:00+14:00"),
        "scheduled_for",
    ),
    (
        "window-year-9999",
        MAINTENANCES,
        window(scheduled_until="9999-12-31T23:59-14:00"),
        "scheduled_until",
    ),
    ("window-update-done", WINDOW_UPDATES, window_update(status="done"), "status"),
    ("window-update-no-status", WINDOW_UPDATES, json.dumps({"body": "x"}).encode(), "status"),
    (
        "window-update-early",
        WINDOW_UPDATES,
        window_update(scheduled_until="2026-11-24T00:30:00Z"),
        "scheduled_until",
    ),
    (
        "window-update-no-zone",
        WINDOW_UPDATES,
        window_update(scheduled_until="2026-11-24T05:00"),
        "scheduled_until",
    ),
]
UNKNOWN_FIELD = [  # → 422 unknown_field
    ("severity", INCIDENTS, incident(severity="high"), "severity"),
    ("update-resolved-at", UPDATES, update(resolved_at="now"), "resolved_at"),
    ("window-impact", MAINTENANCES, window(impact="minor"), "impact"),
    ("window-update-components", WINDOW_UPDATES, window_update(components=[]), "components"),
]
BODY_CASES = [
    *((*case, 400, "malformed_json") for case in NOT_A_JSON_OBJECT),
    *((*case, 422, "invalid") for case in INVALID),
    *((*case, 422, "unknown_field") for case in UNKNOWN_FIELD),
]


@pytest.mark.parametrize(
    ("path", "content", "field", "status", "code"),
    [case[1:] for case in BODY_CASES],
    ids=[case[0] for case in BODY_CASES],
)
async def test_a_bad_body_is_refused_naming_the_problem(
    admin: httpx.AsyncClient,
    services: Services,
    path: str,
    content: bytes,
    field: str | None,
    status: int,
    code: str,
) -> None:
    await send_refused(admin, services, ("POST", path, content, JSON), (status, code, field))


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        (INCIDENTS, None),
        (INCIDENTS, "text/plain"),
        (INCIDENTS, "application/x-www-form-urlencoded"),
        (INCIDENTS, "multipart/form-data"),
        (INCIDENTS, "json"),
        (UPDATES, None),
        (MAINTENANCES, "text/plain"),
        (WINDOW_UPDATES, None),
    ],
)
async def test_a_body_that_is_not_declared_json_is_a_415(
    admin: httpx.AsyncClient, services: Services, path: str, content_type: str | None
) -> None:
    request = ("POST", path, incident(), content_type)
    message = await send_refused(admin, services, request, (415, "unsupported_media_type", None))
    assert "application/json" in message


async def test_json_with_a_charset_parameter_is_accepted(admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        INCIDENTS,
        content=incident(name="Loket ditutup"),
        headers={"Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert created(response)["name"] == "Loket ditutup"


async def test_a_body_over_64_kib_is_a_413(admin: httpx.AsyncClient, services: Services) -> None:
    oversize = incident(body="x" * (64 * 1024))
    await send_refused(
        admin, services, ("POST", INCIDENTS, oversize, JSON), (413, "too_large", None)
    )


async def test_a_streamed_body_over_64_kib_is_a_413_without_a_content_length(
    admin: httpx.AsyncClient, services: Services
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    before = await everything_written(services)
    response = await admin.post(INCIDENTS, content=chunks(), headers={"Content-Type": JSON})
    assert "content-length" not in response.request.headers
    refused(response, 413, "too_large", None)
    assert await everything_written(services) == before


@pytest.mark.parametrize(
    "declared", [b"\xb2", b"-1", b"12abc"], ids=["superscript", "minus", "junk"]
)
async def test_a_content_length_that_is_not_a_number_is_a_400(
    admin: httpx.AsyncClient, services: Services, declared: bytes
) -> None:
    before = await everything_written(services)
    response = await admin.post(
        INCIDENTS,
        content=incident(),
        headers={b"Content-Type": JSON.encode(), b"Content-Length": declared},
    )
    assert response.request.headers["content-length"] == declared.decode("latin-1")
    refused(response, 400, "malformed_request", None)
    assert await everything_written(services) == before


async def test_texts_at_their_limits_are_accepted(admin: httpx.AsyncClient) -> None:
    doc = await open_incident(admin, name="n" * 200, body="b" * 5000)
    assert (len(doc["name"]), len(doc["incident_updates"][0]["body"])) == (200, 5000)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", INCIDENTS, 405, "method_not_allowed"),
        ("GET", MAINTENANCES, 405, "method_not_allowed"),
        ("GET", UPDATES, 405, "method_not_allowed"),
        ("GET", WINDOW_UPDATES, 405, "method_not_allowed"),
        ("POST", "/api/v1/audit", 405, "method_not_allowed"),
        ("DELETE", "/api/v1/incidents/{incident}", 405, "method_not_allowed"),
        ("PUT", "/api/v1/incidents/{incident}", 405, "method_not_allowed"),
        ("GET", "/api/v1/tidak-ada", 404, "not_found"),
        ("POST", "/api/v1/incidents/{incident}/updates/extra", 404, "not_found"),
        ("GET", "/api/v1/incidents/%00", 404, "not_found"),
        ("POST", "/api/v1/incidents/%00/updates", 404, "not_found"),
        ("POST", "/api/v1/maintenances/%00/updates", 404, "not_found"),
        ("GET", "/api/v1/incidents/" + "a" * 300, 404, "not_found"),
        ("GET", "/api/v1/incidents/%F0%9F%93%AE", 404, "not_found"),
    ],
    ids=lambda v: v if not isinstance(v, str) or len(v) < 40 else v[:30] + "...",
)
async def test_a_wrong_method_or_path_is_answered_in_json(
    admin: httpx.AsyncClient,
    services: Services,
    method: str,
    path: str,
    status: int,
    code: str,
) -> None:
    body = incident() if method != "GET" else None
    await send_refused(admin, services, (method, path, body, JSON), (status, code, None))


async def test_a_405_says_which_methods_the_route_takes(admin: httpx.AsyncClient) -> None:
    response = await admin.get(INCIDENTS)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"

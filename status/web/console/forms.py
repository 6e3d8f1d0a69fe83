"""Form bodies → the staff API's JSON documents, so both go through the same parse_* and core.

Reading is ours (urlencoded only: the console sends nothing else, and python-multipart is not
a dependency); validating is bodies.py's, so a form and a JSON body are refused alike.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from starlette.requests import Request

from status.vocabulary import ComponentStatus, Impact, IncidentStatus
from status.web.bodies import MAX_BODY_BYTES
from status.web.console.pages import ConsoleError
from status.web.idempotency import KEY_MAX

FORM_TYPE = "application/x-www-form-urlencoded"
KEY_FIELD = "form_key"  # one per rendered form: the Idempotency-Key of what it sends
MAX_FIELDS = 100


@dataclass(frozen=True, slots=True)
class Template:
    """A common notice: defaults for the form; its words live in console.toml."""

    id: str
    status: IncidentStatus
    impact: Impact
    component_status: ComponentStatus


TEMPLATES = (
    Template(
        "counter_closed",
        IncidentStatus.IDENTIFIED,
        Impact.MAJOR,
        ComponentStatus.MAJOR_OUTAGE,
    ),
    Template(
        "upstream_down",
        IncidentStatus.IDENTIFIED,
        Impact.MAJOR,
        ComponentStatus.PARTIAL_OUTAGE,
    ),
    Template(
        "physical_stamps", IncidentStatus.MONITORING, Impact.NONE, ComponentStatus.OPERATIONAL
    ),
    Template("queue_resumed", IncidentStatus.RESOLVED, Impact.NONE, ComponentStatus.OPERATIONAL),
)
TEMPLATE_BY_ID = {t.id: t for t in TEMPLATES}


def new_key() -> str:
    return secrets.token_urlsafe(18)


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body as {field: first value}; 415, 413 or 400 pages otherwise."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != FORM_TYPE:
        raise ConsoleError(415, "console.error.bad_form")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise ConsoleError(413, "console.error.too_large")
    try:
        pairs = parse_qsl(
            raw.decode("ascii"),
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
            encoding="utf-8",
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise ConsoleError(400, "console.error.bad_form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value.replace("\r\n", "\n"))
    return form


def form_key(form: dict[str, str]) -> str:
    key = form.get(KEY_FIELD, "")
    if not key or len(key) > KEY_MAX or not key.isprintable() or not key.isascii():
        raise ConsoleError(400, "console.error.bad_form")
    return key


def _components(form: dict[str, str]) -> dict[str, str]:
    component = form.get("component", "").strip()
    return {component: form.get("component_status", "")} if component else {}


def incident_doc(form: dict[str, str]) -> dict[str, Any]:
    """POST /api/v1/incidents's body from the notice form."""
    return {
        "name": form.get("name", ""),
        "status": form.get("status") or None,
        "impact": form.get("impact") or None,
        "body": form.get("body", ""),
        "components": _components(form),
    }


def update_doc(form: dict[str, str], *, maintenance: bool) -> dict[str, Any]:
    """POST /api/v1/incidents/<id>/updates (or maintenances/…)'s body from the update form."""
    doc: dict[str, Any] = {"status": form.get("status") or None, "body": form.get("body", "")}
    if not maintenance:
        doc["components"] = _components(form)
    return doc


def local_time(value: str, zone: ZoneInfo) -> str:
    """A datetime-local field ("2026-11-24T08:00") read in `zone`, as ISO 8601 with its offset;
    anything else goes on unchanged for bodies.py to refuse with its own message."""
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return value
    return (at if at.tzinfo else at.replace(tzinfo=zone)).isoformat()


def maintenance_doc(form: dict[str, str], zone: ZoneInfo) -> dict[str, Any]:
    component = form.get("component", "").strip()
    return {
        "name": form.get("name", ""),
        "body": form.get("body", ""),
        "scheduled_for": local_time(form.get("scheduled_for", ""), zone),
        "scheduled_until": local_time(form.get("scheduled_until", ""), zone),
        "components": [component] if component else [],
    }


def _count(value: str) -> int | str | None:
    value = value.strip()
    if not value:
        return None
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 10 else value


def queue_doc(form: dict[str, str]) -> dict[str, Any]:
    """PUT /api/v1/branches/<id>/queue's body; a non-number goes on for bodies.py to refuse."""
    return {
        "serving": _count(form.get("serving", "")),
        "issued": _count(form.get("issued", "")),
        "counters_open": _count(form.get("counters_open", "")),
    }


def retry_doc(form: dict[str, str]) -> dict[str, Any]:
    delivery = form.get("delivery", "").strip()
    if delivery:
        ok = delivery.isascii() and delivery.isdigit() and len(delivery) <= 18
        return {"ids": [int(delivery) if ok else delivery]}
    return {"target": form.get("target") or None}

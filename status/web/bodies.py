"""parse_* : a request's JSON body → a typed command, or an APIError naming the field.

Limits (documented in the README): bodies up to 64 KiB, names up to 200 characters, update
text up to 5,000 characters, up to 1,000 components per incident.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from starlette.requests import Request

from status.commands import (
    BODY_MAX,
    COMPONENTS_MAX,
    NAME_MAX,
    MaintenanceUpdate,
    NewIncident,
    NewMaintenance,
    NewUpdate,
)
from status.vocabulary import ComponentStatus, Impact, IncidentStatus, MaintenanceStatus
from status.web.errors import APIError

MAX_BODY_BYTES = 64 * 1024
E = TypeVar("E", bound=StrEnum)


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object; 415 for another content type, 413 if too big, 400 if malformed."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise APIError(
            415,
            "unsupported_media_type",
            f'send the body as "application/json", not "{ctype or "nothing"}"',
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise APIError(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise APIError(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise APIError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise APIError(400, "malformed_json", "the body must be a JSON object")
    return doc


def _invalid(field: str, message: str) -> APIError:
    return APIError(422, "invalid", message, field=field)


def _only(doc: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in doc:
        if key not in allowed:
            raise APIError(
                422,
                "unknown_field",
                f'unknown field "{key}"; allowed: {", ".join(allowed)}',
                field=key,
            )


def _text(
    doc: Mapping[str, Any], key: str, limit: int, *, required: bool = True, default: str = ""
) -> str:
    if key not in doc or doc[key] is None:
        if required:
            raise _invalid(key, f'"{key}" is required')
        return default
    value = doc[key]
    if not isinstance(value, str):
        raise _invalid(key, f'"{key}" must be a string')
    value = value.strip()
    if required and not value:
        raise _invalid(key, f'"{key}" must not be empty')
    if len(value) > limit:
        raise _invalid(key, f'"{key}" is {len(value)} characters; the limit is {limit}')
    if "\x00" in value:
        raise _invalid(key, f'"{key}" contains a NUL character')
    return value


def _enum(
    kind: type[E],
    doc: Mapping[str, Any],
    key: str,
    *,
    default: E | None = None,
    field: str | None = None,
) -> E:
    field = field or key
    value = doc.get(key)
    if value is None:
        if default is not None:
            return default
        raise _invalid(field, f'"{key}" is required; one of {", ".join(kind)}')
    try:
        return kind(value)
    except ValueError:
        raise _invalid(field, f'"{value}" is not a valid {key}; one of {", ".join(kind)}') from None


def _component_statuses(doc: Mapping[str, Any]) -> dict[str, ComponentStatus]:
    raw = doc.get("components", {})
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _invalid(
            "components", '"components" must be an object: {"<component id>": "<status>"}'
        )
    if len(raw) > COMPONENTS_MAX:
        raise _invalid("components", f"at most {COMPONENTS_MAX} components per incident")
    out = {}
    for cid, status in raw.items():
        out[cid] = _enum(ComponentStatus, {"status": status}, "status", field=f"components.{cid}")
    return out


def _component_ids(doc: Mapping[str, Any]) -> tuple[str, ...]:
    raw = doc.get("components", [])
    if isinstance(raw, dict):
        raw = list(raw)
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise _invalid("components", '"components" must be a list of component ids')
    if len(raw) > COMPONENTS_MAX:
        raise _invalid("components", f"at most {COMPONENTS_MAX} components")
    return tuple(dict.fromkeys(raw))


def _time(doc: Mapping[str, Any], key: str, *, required: bool) -> datetime | None:
    value = doc.get(key)
    if value is None:
        if required:
            raise _invalid(key, f'"{key}" is required, e.g. "2026-11-24T01:00:00Z"')
        return None
    if not isinstance(value, str):
        raise _invalid(key, f'"{key}" must be an ISO 8601 time string')
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(
            key, f'"{value}" is not an ISO 8601 time like "2026-11-24T01:00:00Z"'
        ) from None
    if at.tzinfo is None:
        raise _invalid(key, f'"{value}" has no time zone; add "Z" or an offset like "+07:00"')
    return at


def _bool(doc: Mapping[str, Any], key: str, default: bool) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise _invalid(key, f'"{key}" must be true or false')
    return value


def parse_new_incident(doc: Mapping[str, Any]) -> NewIncident:
    _only(doc, ("name", "status", "impact", "body", "components"))
    return NewIncident(
        name=_text(doc, "name", NAME_MAX),
        status=_enum(IncidentStatus, doc, "status", default=IncidentStatus.INVESTIGATING),
        impact=_enum(Impact, doc, "impact", default=Impact.NONE)
        if doc.get("impact") != "maintenance"
        else _reject_maintenance_impact(),
        body=_text(doc, "body", BODY_MAX),
        components=_component_statuses(doc),
    )


def _reject_maintenance_impact() -> Impact:
    raise _invalid("impact", 'impact "maintenance" is for POST /api/v1/maintenances')


def parse_new_update(doc: Mapping[str, Any]) -> NewUpdate:
    _only(doc, ("status", "body", "components", "name", "impact"))
    impact = None
    if doc.get("impact") is not None:
        impact = _enum(Impact, doc, "impact")
        if impact is Impact.MAINTENANCE:
            _reject_maintenance_impact()
    return NewUpdate(
        status=_enum(IncidentStatus, doc, "status"),
        body=_text(doc, "body", BODY_MAX),
        components=_component_statuses(doc),
        name=_text(doc, "name", NAME_MAX) if doc.get("name") is not None else None,
        impact=impact,
    )


def parse_new_maintenance(doc: Mapping[str, Any]) -> NewMaintenance:
    _only(
        doc, ("name", "body", "scheduled_for", "scheduled_until", "components", "auto_transition")
    )
    start = _time(doc, "scheduled_for", required=True)
    end = _time(doc, "scheduled_until", required=True)
    if start is None or end is None:  # pragma: no cover - required=True raises first
        raise _invalid("scheduled_for", "both times are required")
    return NewMaintenance(
        name=_text(doc, "name", NAME_MAX),
        body=_text(doc, "body", BODY_MAX),
        scheduled_for=start,
        scheduled_until=end,
        components=_component_ids(doc),
        auto_transition=_bool(doc, "auto_transition", True),
    )


def parse_maintenance_update(doc: Mapping[str, Any]) -> MaintenanceUpdate:
    _only(doc, ("status", "body", "scheduled_for", "scheduled_until"))
    return MaintenanceUpdate(
        status=_enum(MaintenanceStatus, doc, "status"),
        body=_text(doc, "body", BODY_MAX),
        scheduled_for=_time(doc, "scheduled_for", required=False),
        scheduled_until=_time(doc, "scheduled_until", required=False),
    )

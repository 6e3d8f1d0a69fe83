"""parse_* : a request's JSON body → a typed command, or an APIError naming the field.

Limits (documented in the README): bodies up to 64 KiB, names up to 200 characters, update
text up to 5,000 characters, up to 1,000 components per incident, JSON nested at most 8 deep.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
from status.durations import parse_duration
from status.vocabulary import ComponentStatus, Impact, IncidentStatus, MaintenanceStatus
from status.web.errors import APIError

MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 8  # a staff body needs 2 (the components object); anything deeper is not ours
_TOO_DEEP = f"the body nests more than {MAX_DEPTH} levels deep"
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
    declared = request.headers.get("content-length")
    if declared is not None:
        # ASCII digits only: str.isdigit() also passes "²", which int() refuses.
        if not (declared.isascii() and declared.isdigit()):
            raise APIError(400, "malformed_request", "Content-Length must be a whole number")
        if int(declared) > MAX_BODY_BYTES:
            raise APIError(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise APIError(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise APIError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    except ValueError:  # not UTF-8, or an integer over Python's 4,300-digit conversion limit
        raise APIError(
            400, "malformed_json", "the body is not valid JSON: not UTF-8, or a number too long"
        ) from None
    except RecursionError:
        raise APIError(400, "malformed_json", _TOO_DEEP) from None
    if not isinstance(doc, dict):
        raise APIError(400, "malformed_json", "the body must be a JSON object")
    _check_tree(doc)
    return doc


def _dotted(path: tuple[str, ...]) -> str | None:
    """A field path for error messages; an unpaired surrogate shows as its escape, \\udfff."""
    return ".".join(path).encode("utf-8", "backslashreplace").decode() or None


def _check_tree(doc: dict[str, Any]) -> None:
    """Refuse what every later step would trip over: deep nesting and strings that are not text.

    JSON may carry an unpaired UTF-16 surrogate ("\\ud800"); Python decodes it into a str that
    cannot be encoded as UTF-8, so the database, the fingerprint and even the error response
    would fail on it. Iterative, so a deep document cannot exhaust the stack here.
    """
    stack: list[tuple[Any, tuple[str, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise APIError(400, "malformed_json", _TOO_DEEP, field=_dotted(path[:MAX_DEPTH]))
        if isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, (*path, key))
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, str(i))) for i, item in enumerate(value))


def _check_text(text: str, path: tuple[str, ...]) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise APIError(
            400,
            "malformed_json",
            "the body contains an unpaired UTF-16 surrogate (\\ud800-\\udfff), which is not text",
            field=_dotted(path),
        ) from None


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
    bad = _CONTROL.search(value)
    if bad is not None:
        raise _invalid(
            key,
            f'"{key}" contains the control character U+{ord(bad.group()):04X} at position '
            f"{bad.start()}; only tab and line breaks are allowed",
        )
    return value


# Text goes into HTML, Telegram HTML and XML feeds; XML 1.0 cannot carry these at all, so they
# are refused at the door rather than mangled later. Tab, LF and CR are ordinary text.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


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
    if not isinstance(value, str):
        raise _invalid(field, f'"{key}" must be a string, one of {", ".join(kind)}')
    try:
        return kind(value)
    except ValueError:
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise _invalid(field, f'"{shown}" is not a valid {key}; one of {", ".join(kind)}') from None


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
    shown = value if len(value) <= 40 else value[:40] + "…"
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(
            key, f'"{shown}" is not an ISO 8601 time like "2026-11-24T01:00:00Z"'
        ) from None
    if at.tzinfo is None:
        raise _invalid(key, f'"{shown}" has no time zone; add "Z" or an offset like "+07:00"')
    try:
        # Times are UTC inside the system; converting here also catches the few that have no
        # UTC equivalent ("0001-01-01T00:00:00+14:00"), which would fail in every later step.
        return at.astimezone(UTC)
    except OverflowError:
        raise _invalid(key, f'"{shown}" is outside the range of times we can keep') from None


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


def _count(doc: Mapping[str, Any], key: str, *, required: bool = True) -> int | None:
    value = doc.get(key)
    if value is None:
        if required:
            raise _invalid(key, f'"{key}" is required: a whole number of tickets')
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
        raise _invalid(key, f'"{key}" must be a whole number from 0 to 1000000000')
    return value


@dataclass(frozen=True, slots=True)
class QueueEntry:
    serving: int
    issued: int
    counters_open: int | None


def parse_queue_entry(doc: Mapping[str, Any]) -> QueueEntry:
    """Staff typing their queue: {"serving": 37, "issued": 120, "counters_open": 2}."""
    _only(doc, ("serving", "issued", "counters_open"))
    serving, issued = _count(doc, "serving") or 0, _count(doc, "issued") or 0  # required
    return QueueEntry(serving, issued, _count(doc, "counters_open", required=False))


SILENCE_MAX = timedelta(days=7)


def parse_silence(doc: Mapping[str, Any], now: datetime) -> datetime | None:
    """{"for": "30m"} or {"until": "2026-11-24T01:00:00Z"}; {"until": null} lifts a silence."""
    _only(doc, ("for", "until"))
    if "for" in doc and "until" in doc:
        raise _invalid("for", 'give "for" or "until", not both')
    if "for" in doc:
        value = doc["for"]
        try:
            length = parse_duration(value) if isinstance(value, str) else None
        except ValueError:
            length = None
        if length is None or length <= timedelta(0):
            raise _invalid("for", '"for" must be a duration like "30m" or "2h"')
        if length > SILENCE_MAX:
            raise _invalid("for", "a check can be silenced for at most 7 days")
        return now + length
    if "until" not in doc:
        raise _invalid("for", 'give "for" (e.g. "30m") or "until" (a time, or null to lift)')
    until = _time(doc, "until", required=False)
    if until is not None and until - now > SILENCE_MAX:
        raise _invalid("until", "a check can be silenced for at most 7 days")
    return until


def parse_retry(doc: Mapping[str, Any]) -> tuple[tuple[int, ...], str | None]:
    """{"ids": [12, 13]} or {"target": "telegram:@statusemeterai"}: which failed ones to retry."""
    _only(doc, ("ids", "target"))
    ids = doc.get("ids", [])
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**62 for i in ids
    ):
        raise _invalid("ids", '"ids" must be a list of delivery ids')
    target = _text(doc, "target", 200, required=False) or None
    if not ids and target is None:
        raise _invalid("ids", 'give "ids" or "target"')
    return tuple(ids), target

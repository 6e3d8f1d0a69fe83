"""JSON Schemas for /openapi.json: Statuspage v2 shapes, /api/v1 documents, staff bodies, errors.

Enum values come from status/vocabulary.py and limits from status/commands.py, so the document
cannot drift from what the code accepts. Response shapes follow status/render/statuspage.py,
which follows Statuspage's public API v2 (https://metastatuspage.com/api/v2/summary.json).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from status.commands import BODY_MAX, COMPONENTS_MAX, NAME_MAX
from status.vocabulary import (
    ComponentStatus,
    Impact,
    IncidentStatus,
    Indicator,
    MaintenanceStatus,
)

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def enum_of(values: Iterable[StrEnum]) -> Schema:
    return {"type": "string", "enum": [str(v) for v in values]}


def or_null(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Schema], *, required: Iterable[str] | None = None) -> Schema:
    """An object; every property is required unless `required` names fewer."""
    keys = list(properties) if required is None else list(required)
    return {"type": "object", "properties": properties, "required": keys}


def closed(properties: dict[str, Schema], *, required: Iterable[str]) -> Schema:
    """A request body: unknown keys are refused with 422 unknown_field."""
    return {**obj(properties, required=required), "additionalProperties": False}


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time", "examples": ["2026-11-23T03:04:05.678Z"]}
INCIDENT_IMPACTS = [i for i in Impact if i is not Impact.MAINTENANCE]


def _text(limit: int, description: str) -> Schema:
    # Leading and trailing spaces are trimmed before the length is checked.
    return {"type": "string", "minLength": 1, "maxLength": limit, "description": description}


def _list(item: Schema) -> Schema:
    return {"type": "array", "items": item}


def _page_doc(key: str, item: str) -> Schema:
    return obj({"page": ref("Page"), key: _list(ref(item))})


def _statuspage() -> dict[str, Schema]:
    component_props: dict[str, Schema] = {
        "id": STRING,
        "name": STRING,
        "status": enum_of(ComponentStatus),
        "created_at": TIME,
        "updated_at": TIME,
        "position": INTEGER,
        "description": or_null(STRING),
        "showcase": BOOLEAN,
        "start_date": or_null({"type": "string", "format": "date"}),
        "group_id": or_null(STRING),
        "page_id": STRING,
        "group": BOOLEAN,
        "only_show_if_degraded": BOOLEAN,
        "components": {**_list(STRING), "description": "Member ids; groups only."},
    }
    component = obj(component_props, required=[k for k in component_props if k != "components"])
    incident_props: dict[str, Schema] = {
        "id": STRING,
        "name": STRING,
        "status": enum_of(IncidentStatus),
        "created_at": TIME,
        "updated_at": TIME,
        "monitoring_at": or_null(TIME),
        "resolved_at": or_null(TIME),
        "impact": enum_of(INCIDENT_IMPACTS),
        "shortlink": {"type": "string", "format": "uri"},
        "started_at": TIME,
        "page_id": STRING,
        "incident_updates": {**_list(ref("IncidentUpdate")), "description": "Newest first."},
        "components": _list(ref("Component")),
    }
    return {
        "Page": obj(
            {
                "id": STRING,
                "name": STRING,
                "url": {"type": "string", "format": "uri"},
                "time_zone": STRING,
                "updated_at": TIME,
            }
        ),
        "Status": obj({"indicator": enum_of(Indicator), "description": STRING}),
        "Component": component,
        "AffectedComponent": obj(
            {
                "code": STRING,
                "name": STRING,
                "old_status": enum_of(ComponentStatus),
                "new_status": enum_of(ComponentStatus),
            }
        ),
        "IncidentUpdate": obj(
            {
                "id": STRING,
                "status": enum_of([*IncidentStatus, *MaintenanceStatus]),
                "body": STRING,
                "incident_id": STRING,
                "created_at": TIME,
                "updated_at": TIME,
                "display_at": TIME,
                "affected_components": or_null(_list(ref("AffectedComponent"))),
                "deliver_notifications": BOOLEAN,
                "custom_tweet": or_null(STRING),
                "tweet_id": or_null(STRING),
            }
        ),
        "Incident": obj(incident_props),
        "ScheduledMaintenance": obj(
            {
                **incident_props,
                "status": enum_of(MaintenanceStatus),
                "impact": enum_of([Impact.MAINTENANCE]),
                "scheduled_for": or_null(TIME),
                "scheduled_until": or_null(TIME),
            }
        ),
        "Summary": obj(
            {
                "page": ref("Page"),
                "components": _list(ref("Component")),
                "incidents": _list(ref("Incident")),
                "scheduled_maintenances": _list(ref("ScheduledMaintenance")),
                "status": ref("Status"),
            }
        ),
        "StatusDocument": obj({"page": ref("Page"), "status": ref("Status")}),
        "ComponentsDocument": _page_doc("components", "Component"),
        "IncidentsDocument": _page_doc("incidents", "Incident"),
        "ScheduledMaintenancesDocument": _page_doc(
            "scheduled_maintenances", "ScheduledMaintenance"
        ),
    }


def _v1() -> dict[str, Schema]:
    return {
        "Branch": obj(
            {
                "id": STRING,
                "name": STRING,
                "region": STRING,
                "timezone": {**STRING, "examples": ["Asia/Makassar"]},
                "zone": {**STRING, "examples": ["WIB", "WITA", "WIT"]},
                "hours": or_null({**STRING, "examples": ["Mon-Fri 07:30-16:00; Sat 08:00-12:00"]}),
                "open": BOOLEAN,
                "open_label": {**STRING, "examples": ["Buka sampai 16.00 WIB"]},
                "changes_at": or_null(TIME),
                "holiday": or_null(STRING),
                "status": enum_of(ComponentStatus),
                "queue": or_null({"type": "object"}),
            }
        ),
        "BranchesDocument": obj({"generated_at": TIME, "branches": _list(ref("Branch"))}),
        "Health": obj(
            {
                "status": {"type": "string", "enum": ["ok", "unavailable"]},
                "database": {"type": "string", "enum": ["ok", "unreachable"]},
                "snapshot_event_id": INTEGER,
                "snapshot_built_at": or_null(TIME),
            }
        ),
        "Error": obj(
            {
                "error": obj(
                    {
                        "code": {**STRING, "examples": ["invalid", "unauthorized"]},
                        "message": STRING,
                        "field": {
                            **or_null(STRING),
                            "description": "The body key or header at fault, when there is one.",
                        },
                    }
                )
            }
        ),
        "AuditEntry": obj(
            {
                "id": INTEGER,
                "at": TIME,
                "actor": STRING,
                "token_id": or_null(STRING),
                "action": STRING,
                "target": STRING,
                "outcome": {"type": "string", "enum": ["ok", "denied"]},
                "remote_addr": STRING,
                "user_agent": STRING,
                "detail": {"type": "object"},
            }
        ),
        "AuditPage": obj(
            {
                "entries": {**_list(ref("AuditEntry")), "description": "Newest first."},
                "next_before": {
                    **or_null(INTEGER),
                    "description": "Pass as ?before= for the next page; null on the last.",
                },
            }
        ),
        "WhoAmI": obj({"name": STRING, "token_id": or_null(STRING), "scopes": _list(STRING)}),
    }


def _bodies() -> dict[str, Schema]:
    name = _text(NAME_MAX, "Headline, in the page's language.")
    body = _text(BODY_MAX, "The notice readers see; plain text.")
    component_statuses = {
        "type": "object",
        "additionalProperties": enum_of(ComponentStatus),
        "maxProperties": COMPONENTS_MAX,
        "description": "Component id → the status this incident asks of it.",
        "examples": [{"kcu-medan": "partial_outage"}],
    }
    window_time = {**TIME, "description": 'ISO 8601 with a zone ("Z" or "+07:00").'}
    return {
        "NewIncident": closed(
            {
                "name": name,
                "status": {**enum_of(IncidentStatus), "default": str(IncidentStatus.INVESTIGATING)},
                "impact": {**enum_of(INCIDENT_IMPACTS), "default": str(Impact.NONE)},
                "body": body,
                "components": component_statuses,
            },
            required=("name", "body"),
        ),
        "NewUpdate": closed(
            {
                "status": enum_of(IncidentStatus),
                "body": body,
                "components": component_statuses,
                "name": {**name, "description": "A new headline, if it changes."},
                "impact": {
                    **enum_of(INCIDENT_IMPACTS),
                    "description": "A new impact, if it changes.",
                },
            },
            required=("status", "body"),
        ),
        "NewMaintenance": closed(
            {
                "name": name,
                "body": body,
                "scheduled_for": window_time,
                "scheduled_until": window_time,
                "components": {
                    **_list(STRING),
                    "maxItems": COMPONENTS_MAX,
                    "description": "Ids of the components under maintenance.",
                },
                "auto_transition": {
                    **BOOLEAN,
                    "default": True,
                    "description": "Start and complete on schedule without a staff update.",
                },
            },
            required=("name", "body", "scheduled_for", "scheduled_until"),
        ),
        "MaintenanceUpdate": closed(
            {
                "status": enum_of(MaintenanceStatus),
                "body": body,
                "scheduled_for": window_time,
                "scheduled_until": window_time,
            },
            required=("status", "body"),
        ),
    }


def schemas() -> dict[str, Schema]:
    """Every named schema, freshly built (callers may modify the result)."""
    return {**_statuspage(), **_v1(), **_bodies()}

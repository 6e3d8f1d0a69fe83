"""OpenAPI 3.1 description of every endpoint: public reads, /healthz and the staff API.

Served from the snapshot at /openapi.json. tests/web/test_openapi.py walks the app's routes and
the snapshot's paths, so an endpoint added without its entry here fails the suite.
"""

from __future__ import annotations

import copy
from typing import Any

from status import __version__
from status.config import Site
from status.snapshot import PUBLIC_CACHE
from status.web import openapi_feeds, openapi_operations
from status.web.bodies import MAX_BODY_BYTES
from status.web.idempotency import KEY_MAX
from status.web.openapi_schemas import INTEGER, Schema, ref, schemas
from status.web.staff import AUDIT_PAGE_MAX

Operation = dict[str, Any]
JSON = "application/json"

# Named error responses, by status; each carries the {"error": {...}} shape.
_ERRORS = {
    400: ("BadRequest", "Malformed JSON, a bad Idempotency-Key or a bad query parameter."),
    401: ("Unauthorized", "No bearer token, or one that is unknown or revoked."),
    403: ("Forbidden", "The token's scope does not cover this (e.g. another branch)."),
    404: ("NotFound", "No such path or incident."),
    409: ("Conflict", "The record changed meanwhile; read it again and retry."),
    413: ("TooLarge", f"The body is over {MAX_BODY_BYTES} bytes."),
    415: ("UnsupportedMediaType", 'The body is not sent as "application/json".'),
    422: ("Unprocessable", "A field is missing, unknown, too long or not an allowed value."),
}
_WRITE_ERRORS = (400, 401, 403, 413, 415, 422)
# Headers every snapshot answer carries (status/web/public.py), named in components.headers.
_CACHED = {
    "ETag": "ETag",
    "Last-Modified": "LastModified",
    "Cache-Control": "CacheControl",
    "Access-Control-Allow-Origin": "AllowOrigin",
}

_PUBLIC = [
    # path, operationId, schema, summary
    ("/api/v2/summary.json", "getSummary", "Summary", "Page, components, open incidents and maintenances, status"),
    ("/api/v2/status.json", "getStatus", "StatusDocument", "The page indicator and its description"),
    ("/api/v2/components.json", "getComponents", "ComponentsDocument", "Every component; groups before their members"),
    ("/api/v2/incidents.json", "getIncidents", "IncidentsDocument", "The 50 newest incidents, open or not"),
    ("/api/v2/incidents/unresolved.json", "getUnresolvedIncidents", "IncidentsDocument", "Incidents not yet resolved"),
    ("/api/v2/scheduled-maintenances.json", "getScheduledMaintenances", "ScheduledMaintenancesDocument", "The 50 newest scheduled maintenances"),
    ("/api/v2/scheduled-maintenances/upcoming.json", "getUpcomingScheduledMaintenances", "ScheduledMaintenancesDocument", "Maintenances still to start, soonest first"),
    ("/api/v2/scheduled-maintenances/active.json", "getActiveScheduledMaintenances", "ScheduledMaintenancesDocument", "Maintenances in progress or being verified"),
    ("/api/v1/branches", "getBranches", "BranchesDocument", "Every branch: open or closed now, in its own zone (WIB/WITA/WIT)"),
    ("/openapi.json", "getOpenAPI", "", "This document"),
]  # fmt: skip

_WRITES = [
    # path, operationId, body schema, result schema, summary
    ("/api/v1/incidents", "createIncident", "NewIncident", "Incident", "Open an incident or post a notice (impact none)"),
    ("/api/v1/incidents/{incident_id}/updates", "addIncidentUpdate", "NewUpdate", "Incident", "Post an update; status resolved closes the incident"),
    ("/api/v1/maintenances", "createMaintenance", "NewMaintenance", "ScheduledMaintenance", "Schedule a maintenance window"),
    ("/api/v1/maintenances/{incident_id}/updates", "updateMaintenance", "MaintenanceUpdate", "ScheduledMaintenance", "Start, verify, complete or reschedule a maintenance"),
]  # fmt: skip


def _error(status: int) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}


def _json(
    schema: Schema, description: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        out["headers"] = {
            name: {"$ref": f"#/components/headers/{h}"} for name, h in headers.items()
        }
    return out


def _head(get: Operation) -> Operation:
    """HEAD answers like GET, without a body."""
    head = copy.deepcopy(get)
    head["operationId"] += "Head"
    head["summary"] = f"Headers of: {get['summary']}"
    for response in head["responses"].values():
        response.pop("content", None)
    return head


def _public_item(op_id: str, schema_name: str, summary: str, tag: str) -> dict[str, Operation]:
    """A path served from the snapshot: GET/HEAD from memory with validators, OPTIONS preflight."""
    schema = ref(schema_name) if schema_name else {"type": "object"}
    get: Operation = {
        "operationId": op_id,
        "tags": [tag],
        "summary": summary,
        "security": [],
        "parameters": [
            {"$ref": "#/components/parameters/IfNoneMatch"},
            {"$ref": "#/components/parameters/IfModifiedSince"},
        ],
        "responses": {
            "200": _json(schema, "The document (gzip with Accept-Encoding: gzip).", _CACHED),
            "304": {"$ref": "#/components/responses/NotModified"},
        },
    }
    preflight: Operation = {
        "operationId": f"{op_id}Preflight",
        "tags": [tag],
        "summary": "CORS preflight: any origin may read",
        "security": [],
        "responses": {"204": {"description": "CORS headers, no body."}},
    }
    return {"get": get, "head": _head(get), "options": preflight}


def _staff(
    op_id: str, summary: str, ok: dict[str, Any], errors: tuple[int, ...], **extra: Any
) -> Operation:
    status = "201" if "requestBody" in extra else "200"
    return {
        "operationId": op_id,
        "tags": ["Staff"],
        "summary": summary,
        "security": [{"bearer": []}],
        **extra,
        "responses": {status: ok, **{str(code): _error(code) for code in errors}},
    }


def _write(op_id: str, summary: str, body: str, result: str, *, path_id: bool) -> Operation:
    params = [{"$ref": "#/components/parameters/IdempotencyKey"}]
    if path_id:
        params.insert(0, {"$ref": "#/components/parameters/IncidentId"})
    created = _json(
        ref(result),
        "Created; a retry with the same Idempotency-Key returns this same answer.",
        {"Idempotent-Replayed": "IdempotentReplayed"},
    )
    return _staff(
        op_id,
        summary,
        created,
        tuple(sorted(_WRITE_ERRORS + ((404, 409) if path_id else ()))),
        parameters=params,
        requestBody={"required": True, "content": {JSON: {"schema": ref(body)}}},
    )


def _staff_paths() -> dict[str, dict[str, Operation]]:
    get_incident = _staff(
        "getIncident",
        "One incident or maintenance with all its updates",
        _json({"anyOf": [ref("Incident"), ref("ScheduledMaintenance")]}, "The incident."),
        (401, 404),
        parameters=[{"$ref": "#/components/parameters/IncidentId"}],
    )
    audit = _staff(
        "listAudit",
        "The audit log, newest first (admin only)",
        _json(ref("AuditPage"), "One page of entries."),
        (400, 401, 403),
        parameters=[
            {
                "name": "limit",
                "in": "query",
                "schema": {**INTEGER, "minimum": 1, "maximum": AUDIT_PAGE_MAX, "default": 100},
            },
            {
                "name": "before",
                "in": "query",
                "description": "Only entries with a smaller id (next_before of the last page).",
                "schema": {**INTEGER, "minimum": 1},
            },
        ],
    )
    whoami = _staff(
        "whoami", "The token's name and scopes", _json(ref("WhoAmI"), "The caller."), (401,)
    )
    paths: dict[str, dict[str, Operation]] = {
        path: {"post": _write(op_id, summary, body, result, path_id="{" in path)}
        for path, op_id, body, result, summary in _WRITES
    }
    paths["/api/v1/incidents/{incident_id}"] = {"get": get_incident, "head": _head(get_incident)}
    paths["/api/v1/audit"] = {"get": audit, "head": _head(audit)}
    paths["/api/v1/whoami"] = {"get": whoami, "head": _head(whoami)}
    return paths


def _healthz() -> dict[str, Operation]:
    get: Operation = {
        "operationId": "getHealth",
        "tags": ["Meta"],
        "summary": "Whether the database answers and the snapshot is built (for load balancers)",
        "security": [],
        "responses": {
            "200": _json(ref("Health"), "Ready."),
            "503": _json(
                ref("Health"), "Not ready: the database is unreachable or nothing is built."
            ),
        },
    }
    return {"get": get, "head": _head(get)}


def _components() -> dict[str, Any]:
    def header(description: str, **schema: Any) -> dict[str, Any]:
        return {"description": description, "schema": {"type": "string", **schema}}

    def param(name: str, description: str, **schema: Any) -> dict[str, Any]:
        return {"name": name, "in": "header", "description": description, "schema": schema}

    error = {"content": {JSON: {"schema": ref("Error")}}}
    return {
        "schemas": schemas(),
        "responses": {
            "NotModified": {
                "description": "The copy you hold is current (If-None-Match or If-Modified-Since).",
                "headers": {
                    name: {"$ref": f"#/components/headers/{h}"} for name, h in _CACHED.items()
                },
            },
            **{name: {"description": text, **error} for name, text in _ERRORS.values()},
        },
        "parameters": {
            "IfNoneMatch": param("If-None-Match", "An ETag from an earlier answer.", type="string"),
            "IfModifiedSince": param(
                "If-Modified-Since", "A Last-Modified from an earlier answer.", type="string"
            ),
            "IdempotencyKey": param(
                "Idempotency-Key",
                "Any unique string; a retry with the same key and body writes nothing twice.",
                type="string",
                minLength=1,
                maxLength=KEY_MAX,
                pattern="^[\\x20-\\x7e]+$",
            ),
            "IncidentId": {
                "name": "incident_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
            },
        },
        "headers": {
            "ETag": header("Changes whenever the body does."),
            "LastModified": header("When what this shows last changed (HTTP date)."),
            "CacheControl": header("How long caches may keep it.", examples=[PUBLIC_CACHE]),
            "AllowOrigin": header("Always *: any site may read public documents.", const="*"),
            "IdempotentReplayed": header(
                "true when this is a stored answer to a retry.", const="true"
            ),
        },
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "A staff token from `siaran token create`; scope admin or branch:<id>.",
            }
        },
    }


def build_openapi(site: Site) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for this site.

    Sub-schemas such as {"type": "string"} are shared constants: treat the result as read-only.
    """
    paths: dict[str, dict[str, Operation]] = {}
    for path, op_id, schema_name, summary in _PUBLIC:
        tag = "Statuspage v2" if path.startswith("/api/v2/") else "Public"
        paths[path] = _public_item(op_id, schema_name, summary, tag)
    paths["/healthz"] = _healthz()
    paths.update(_staff_paths())
    paths.update(openapi_operations.paths({code: name for code, (name, _) in _ERRORS.items()}))
    paths.update(openapi_feeds.paths())
    components = _components()
    components["schemas"].update(openapi_operations.schemas())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{site.name} API",
            "version": __version__,
            "description": (
                "Public reads in Statuspage's v2 shapes (https://developer.statuspage.io/), "
                "branch opening state, and the staff API. Errors are "
                '{"error": {"code", "message", "field"}} with a 4xx status.'
            ),
        },
        "servers": [{"url": site.public_url.rstrip("/")}],
        "tags": [
            {"name": "Statuspage v2", "description": "Statuspage-compatible public documents."},
            {"name": "Public", "description": "Branches and this description."},
            {"name": "Feeds", "description": "Atom and RSS: incident history and every update."},
            {"name": "Meta", "description": "Health."},
            {"name": "Staff", "description": "Writes and records; bearer token required."},
        ],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": components,
    }

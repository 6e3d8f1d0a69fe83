"""OpenAPI paths and schemas for /api/v1's prober side: queues typed by staff, silences, checks."""

from __future__ import annotations

from typing import Any

from status.web.openapi_schemas import BOOLEAN, INTEGER, STRING, TIME, closed, obj, or_null, ref

Schema = dict[str, Any]
JSON = "application/json"
COUNT: Schema = {"type": "integer", "minimum": 0, "maximum": 10**9}


def _error(code: int, name: str) -> Schema:
    return {"$ref": f"#/components/responses/{name}"}


def _path(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _write(
    op_id: str,
    summary: str,
    body: str,
    result: str,
    path: str | None,
    errors: dict[int, str],
    status: str = "200",
) -> Schema:
    params = [{"$ref": "#/components/parameters/IdempotencyKey"}]
    if path is not None:
        params.insert(0, _path(path))
    return {
        "operationId": op_id,
        "tags": ["Staff"],
        "summary": summary,
        "security": [{"bearer": []}],
        "parameters": params,
        "requestBody": {"required": True, "content": {JSON: {"schema": ref(body)}}},
        "responses": {
            status: {
                "description": "Done; a retry with the same Idempotency-Key returns this.",
                "content": {JSON: {"schema": ref(result)}},
            },
            **{str(code): _error(code, name) for code, name in errors.items()},
        },
    }


def _read(
    op_id: str,
    summary: str,
    result: str,
    codes: tuple[int, ...],
    errors: dict[int, str],
    params: list[Schema],
) -> dict[str, Schema]:
    """An admin GET and its HEAD twin."""
    failures = {str(c): _error(c, errors[c]) for c in codes}
    get: Schema = {
        "operationId": op_id,
        "tags": ["Staff"],
        "summary": summary,
        "security": [{"bearer": []}],
        "parameters": params,
        "responses": {
            "200": {"description": "OK.", "content": {JSON: {"schema": ref(result)}}},
            **failures,
        },
    }
    head: Schema = {
        **get,
        "operationId": f"{op_id}Head",
        "responses": {"200": {"description": "As GET, without a body."}, **failures},
    }
    return {"get": get, "head": head}


def _html_page(op_id: str, summary: str, errors: dict[int, str], *, incident: bool) -> Schema:
    """A public HTML page from the snapshot: both languages, validators, gzip, CORS preflight."""
    lang = {
        "name": "lang",
        "in": "query",
        "schema": {"type": "string", "enum": ["id", "en"]},
        "description": "The language; without it, Accept-Language, then the site's language.",
    }
    params: list[Schema] = [
        *([_path("incident_id")] if incident else []),
        lang,
        {"name": "Accept-Language", "in": "header", "schema": STRING},
        {"$ref": "#/components/parameters/IfNoneMatch"},
        {"$ref": "#/components/parameters/IfModifiedSince"},
    ]
    failures = {"404": _error(404, errors[404])} if incident else {}
    ok = {
        "description": "The page (gzip with Accept-Encoding: gzip).",
        "content": {"text/html": {"schema": STRING}},
    }
    get: Schema = {
        "operationId": op_id,
        "tags": ["Public"],
        "summary": summary,
        "security": [],
        "parameters": params,
        "responses": {"200": ok, "304": {"$ref": "#/components/responses/NotModified"}, **failures},
    }
    head: Schema = {
        **get,
        "operationId": f"{op_id}Head",
        "summary": f"Headers of: {summary}",
        "responses": {
            "200": {"description": "As GET, without a body."},
            "304": {"$ref": "#/components/responses/NotModified"},
            **failures,
        },
    }
    preflight: Schema = {
        "operationId": f"{op_id}Preflight",
        "tags": ["Public"],
        "summary": "CORS preflight: any origin may read",
        "security": [],
        "responses": {"204": {"description": "CORS headers, no body."}},
    }
    return {"get": get, "head": head, "options": preflight}


def paths(errors: dict[int, str]) -> dict[str, dict[str, Schema]]:
    """`errors` maps each 4xx status to its shared response name in components.responses."""
    write_errors = {c: errors[c] for c in (400, 401, 403, 404, 409, 413, 415, 422)}
    query = [
        {
            "name": "status",
            "in": "query",
            "schema": {"type": "string", "enum": ["pending", "sending", "sent", "failed"]},
        },
        {"name": "target", "in": "query", "schema": STRING},
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
        },
        {"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    ]
    return {
        # The status page and incident permalinks (status/render/page.py).
        "/": _html_page(
            "getStatusPage", "The status page (HTML, no scripts)", errors, incident=False
        ),
        "/incidents/{incident_id}": _html_page(
            "getIncidentPage",
            "An incident's or maintenance's permalink page (HTML)",
            errors,
            incident=True,
        ),
        "/api/v1/branches/{branch_id}/queue": {
            "put": _write(
                "setBranchQueue",
                "Type in a branch's queue (branches without a queue system)",
                "QueueEntry",
                "QueueState",
                "branch_id",
                write_errors,
            )
        },
        "/api/v1/checks/{check_id}/silence": {
            "post": _write(
                "silenceCheck",
                "No automatic incidents from a check for a while",
                "Silence",
                "SilenceState",
                "check_id",
                write_errors,
            )
        },
        "/api/v1/checks": _read(
            "listChecks",
            "Every check: confirmed state, last observation, lease holder (admin)",
            "CheckList",
            (401, 403),
            errors,
            [],
        ),
        "/api/v1/deliveries": _read(
            "listDeliveries",
            "What was sent where and what failed, newest first (admin)",
            "DeliveryPage",
            (400, 401, 403),
            errors,
            query,
        ),
        "/api/v1/tokens/{token_id}/telegram-link-codes": {
            "post": _write(
                "createTelegramLinkCode",
                "A one-time code linking a Telegram account to this token, for the bot's "
                "staff commands (admin; the code is shown once, stored hashed)",
                "LinkCodeRequest",
                "LinkCode",
                "token_id",
                write_errors,
                status="201",
            )
        },
        "/api/v1/deliveries/retry": {
            "post": _write(
                "retryDeliveries",
                "Put failed deliveries back in line and re-enable their targets",
                "Retry",
                "RetryResult",
                None,
                write_errors,
            )
        },
    }


def schemas() -> dict[str, Schema]:
    last = obj(
        {
            "at": TIME,
            "ok": BOOLEAN,
            "kind": STRING,
            "reason": or_null(STRING),
            "status_code": or_null(INTEGER),
            "response_ms": or_null(INTEGER),
        }
    )
    delivery = obj(
        {
            "id": INTEGER,
            "event_id": INTEGER,
            "target": STRING,
            "incident_id": or_null(STRING),
            "status": STRING,
            "attempts": INTEGER,
            "next_attempt_at": TIME,
            "last_error": or_null(STRING),
            "receipt": or_null(STRING),
            "created_at": TIME,
            "sent_at": or_null(TIME),
            "target_disabled": or_null(STRING),
        }
    )
    return {
        "DeliveryPage": obj(
            {"deliveries": {"type": "array", "items": delivery}, "next_before": or_null(INTEGER)}
        ),
        "Retry": closed(
            {"ids": {"type": "array", "items": INTEGER}, "target": STRING}, required=[]
        ),
        "RetryResult": obj({"retried": INTEGER}),
        "LinkCodeRequest": closed(
            {
                "ttl": {
                    "type": "string",
                    "examples": ["15m", "1h"],
                    "description": "How long the code works: 1m to 24h; default 15m.",
                }
            },
            required=[],
        ),
        "LinkCode": obj(
            {
                "code": {
                    "type": "string",
                    "minLength": 8,
                    "maxLength": 8,
                    "description": "Send /tautkan <code> to the bot; single use.",
                },
                "token_id": STRING,
                "token_name": STRING,
                "expires_at": TIME,
            }
        ),
        "QueueEntry": closed(
            {"serving": COUNT, "issued": COUNT, "counters_open": or_null(COUNT)},
            required=["serving", "issued"],
        ),
        "QueueState": obj(
            {
                "branch_id": STRING,
                "serving": INTEGER,
                "issued": INTEGER,
                "counters_open": or_null(INTEGER),
                "length": INTEGER,
                "estimated_wait_minutes": or_null(INTEGER),
                "read_at": TIME,
                "source": STRING,
            }
        ),
        "Silence": closed(
            {
                "for": {
                    "type": "string",
                    "examples": ["30m", "2h"],
                    "description": "How long, at most 7 days.",
                },
                "until": or_null(TIME),
            },
            required=[],
        ),
        "SilenceState": obj({"check_id": STRING, "silenced_until": or_null(TIME)}),
        "CheckList": obj(
            {
                "checks": {
                    "type": "array",
                    "items": obj(
                        {
                            "id": STRING,
                            "component_id": STRING,
                            "severity": STRING,
                            "failing": BOOLEAN,
                            "since": or_null(TIME),
                            "silenced_until": or_null(TIME),
                            "owner": or_null(STRING),
                            "last": or_null(last),
                        }
                    ),
                }
            }
        ),
    }

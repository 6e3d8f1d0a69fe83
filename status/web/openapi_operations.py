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
    op_id: str, summary: str, body: str, result: str, path: str, errors: dict[int, str]
) -> Schema:
    return {
        "operationId": op_id,
        "tags": ["Staff"],
        "summary": summary,
        "security": [{"bearer": []}],
        "parameters": [_path(path), {"$ref": "#/components/parameters/IdempotencyKey"}],
        "requestBody": {"required": True, "content": {JSON: {"schema": ref(body)}}},
        "responses": {
            "200": {
                "description": "Done; a retry with the same Idempotency-Key returns this.",
                "content": {JSON: {"schema": ref(result)}},
            },
            **{str(code): _error(code, name) for code, name in errors.items()},
        },
    }


def paths(errors: dict[int, str]) -> dict[str, dict[str, Schema]]:
    """`errors` maps each 4xx status to its shared response name in components.responses."""
    write_errors = {c: errors[c] for c in (400, 401, 403, 404, 409, 413, 415, 422)}
    checks = {
        "operationId": "listChecks",
        "tags": ["Staff"],
        "summary": "Every check: confirmed state, last observation, lease holder (admin only)",
        "security": [{"bearer": []}],
        "responses": {
            "200": {"description": "All checks.", "content": {JSON: {"schema": ref("CheckList")}}},
            **{str(c): _error(c, errors[c]) for c in (401, 403)},
        },
    }
    head = {
        **checks,
        "operationId": "listChecksHead",
        "responses": {
            "200": {"description": "As GET, without a body."},
            **{str(c): _error(c, errors[c]) for c in (401, 403)},
        },
    }
    return {
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
        "/api/v1/checks": {"get": checks, "head": head},
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
    return {
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

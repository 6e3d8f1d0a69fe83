"""Tests for status/web/openapi.py: /openapi.json describes every endpoint, and answers match it.

`jsonschema` is not a dependency, so `violations` below checks the subset of JSON Schema the
document uses (type, enum, const, required, properties, additionalProperties, items, anyOf,
length and count limits, $ref).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from status.config import Site
from status.services import Services
from status.web.app import create_app
from status.web.openapi import build_openapi
from status.web.public import PublicFiles

pytestmark = pytest.mark.anyio

HTTP_METHODS = {"get", "head", "post", "put", "patch", "delete", "options", "trace"}
DOC = build_openapi(Site(name="Status e-Meterai", public_url="https://status.example.id"))
NEW_INCIDENT = {
    "name": "Loket KCU Medan tutup <b>&\"'",
    "status": "identified",
    "impact": "major",
    "body": "Jaringan ke server e-Meterai putus.",
    "components": {"kcu-medan": "partial_outage"},
}
NEW_MAINTENANCE = {
    "name": "Pemeliharaan server e-Meterai",
    "body": "Pembubuhan tidak tersedia selama dua jam.",
    "scheduled_for": "2026-11-24T01:00:00Z",
    "scheduled_until": "2026-11-24T03:00:00Z",
    "components": ["emeterai-stamping"],
}
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def resolve(pointer: str, root: dict[str, Any] = DOC) -> Any:
    assert pointer.startswith("#/"), pointer
    node: Any = root
    for part in pointer[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{pointer}: {part} is not inside an object"
        assert part in node, f"{pointer} does not resolve: no {part!r}"
        node = node[part]
    return node


def is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, JSON_TYPES[name])


def violations(value: Any, schema: dict[str, Any], at: str = "$") -> Iterator[str]:
    """Where `value` breaks `schema`; nothing when it conforms."""
    if "$ref" in schema:
        yield from violations(value, resolve(schema["$ref"]), at)
        return
    if "anyOf" in schema:
        if all(any(violations(value, option, at)) for option in schema["anyOf"]):
            yield f"{at}: matches none of {schema['anyOf']}"
        return
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(is_type(value, t) for t in types):
            yield f"{at}: {value!r} is not {' or '.join(types)}"
            return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{at}: {value!r} is not one of {schema['enum']}"
    if "const" in schema and value != schema["const"]:
        yield f"{at}: {value!r} is not {schema['const']!r}"
    if isinstance(value, str) and not (
        schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value))
    ):
        yield f"{at}: length {len(value)} is outside the limits"
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            yield f"{at}: more than {schema['maxItems']} items"
        for i, item in enumerate(value):
            yield from violations(item, schema.get("items", {}), f"{at}[{i}]")
    if isinstance(value, dict):
        if len(value) > schema.get("maxProperties", len(value)):
            yield f"{at}: more than {schema['maxProperties']} keys"
        for key in schema.get("required", []):
            if key not in value:
                yield f"{at}: {key!r} is missing"
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                yield from violations(item, properties[key], f"{at}.{key}")
            elif extra is False:
                yield f"{at}: {key!r} is not allowed"
            elif isinstance(extra, dict):
                yield from violations(item, extra, f"{at}.{key}")


def response_schema(path: str, method: str, status: int) -> dict[str, Any]:
    response = DOC["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = resolve(response["$ref"])
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return schema


def assert_conforms(value: Any, path: str, method: str, status: int) -> None:
    assert list(violations(value, response_schema(path, method, status))) == []


def documented_methods(path: str) -> set[str]:
    return {m.upper() for m in DOC["paths"].get(path, {}) if m in HTTP_METHODS}


def documented_as(served: str) -> str:
    """The documented path a snapshot path is: ?lang= variants and {parameters} folded."""
    path = served.split("?", 1)[0]
    if path in DOC["paths"]:
        return path
    templates: list[str] = [p for p in DOC["paths"] if "{" in p]
    for template in templates:
        if re.fullmatch(re.sub(r"\{[^}/]+\}", "[^/]+", template), path):
            return template
    return path


def starlette_routes(services: Services) -> list[Route]:
    app = create_app(services, background=False)
    assert isinstance(app, PublicFiles)
    assert isinstance(app.app, Starlette)
    routes = app.app.routes
    assert all(isinstance(r, Route) for r in routes), "a Mount or WebSocket route needs a case here"
    return [r for r in routes if isinstance(r, Route)]


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


async def test_openapi_json_is_served_as_openapi_3_1(applicant: httpx.AsyncClient) -> None:
    response = await applicant.get("/openapi.json")
    assert response.status_code == 200
    served = response.json()
    assert served["openapi"] == "3.1.0"
    assert served["info"]["title"] == "Status e-Meterai API"
    assert served["servers"] == [{"url": "https://status.example.id"}]
    assert served == DOC


async def test_every_route_is_documented_with_its_methods(services: Services) -> None:
    routes = starlette_routes(services)
    assert routes
    for route in routes:
        assert route.methods is not None
        assert documented_methods(route.path) == set(route.methods), route.path


async def test_every_snapshot_path_is_documented_with_get_head_and_options(
    services: Services,
) -> None:
    files = set(services.snapshot.files)
    assert "/api/v2/summary.json" in files
    for path in files:
        assert documented_methods(documented_as(path)) == {"GET", "HEAD", "OPTIONS"}, path


async def test_nothing_documented_is_missing_from_the_app(
    services: Services, admin: httpx.AsyncClient
) -> None:
    # One incident, so that its permalink is among the snapshot's paths.
    assert (await admin.post("/api/v1/incidents", json=NEW_INCIDENT)).status_code == 201
    served = {r.path for r in starlette_routes(services)}
    served |= {documented_as(p) for p in services.snapshot.files}
    assert set(DOC["paths"]) == served


def test_every_ref_resolves_and_every_schema_is_used() -> None:
    used = set(refs(DOC))
    for pointer in used:
        resolve(pointer)
    named = {f"#/components/schemas/{name}" for name in DOC["components"]["schemas"]}
    assert named - used == set()


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for item in DOC["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_staff_writes_need_a_bearer_token_and_take_an_idempotency_key() -> None:
    writes = [
        (path, op)
        for path, item in DOC["paths"].items()
        for m, op in item.items()
        if m in ("post", "put")
    ]
    assert sorted(path for path, _ in writes) == [
        "/api/v1/branches/{branch_id}/queue",
        "/api/v1/checks/{check_id}/silence",
        "/api/v1/deliveries/retry",
        "/api/v1/incidents",
        "/api/v1/incidents/{incident_id}/updates",
        "/api/v1/maintenances",
        "/api/v1/maintenances/{incident_id}/updates",
        "/api/v1/tokens/{token_id}/telegram-link-codes",
    ]
    for path, op in writes:
        assert op["security"] == [{"bearer": []}], path
        params = [resolve(p["$ref"]) if "$ref" in p else p for p in op["parameters"]]
        assert ("Idempotency-Key", "header") in [(p["name"], p["in"]) for p in params], path
        assert op["requestBody"]["required"] is True
        assert {"200", "201"} & set(op["responses"]), path
    assert DOC["components"]["securitySchemes"] == {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A staff token from `siaran token create`; scope admin or branch:<id>."
            ),
        }
    }


def test_public_reads_need_no_token() -> None:
    for path in ("/api/v2/summary.json", "/api/v1/branches", "/healthz", "/openapi.json"):
        assert DOC["paths"][path]["get"]["security"] == [], path


def test_every_4xx_answer_has_the_error_shape() -> None:
    error_schema = {"$ref": "#/components/schemas/Error"}
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if status.startswith("4"):
                    resolved = resolve(response["$ref"]) if "$ref" in response else response
                    assert resolved["content"]["application/json"]["schema"] == error_schema, (
                        f"{method} {path} {status}"
                    )
    assert DOC["components"]["schemas"]["Error"] == {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "examples": ["invalid", "unauthorized"]},
                    "message": {"type": "string"},
                    "field": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "description": "The body key or header at fault, when there is one.",
                    },
                },
                "required": ["code", "message", "field"],
            }
        },
        "required": ["error"],
    }


def test_new_incident_body_has_the_vocabulary_and_limits() -> None:
    body = DOC["components"]["schemas"]["NewIncident"]
    assert body["required"] == ["name", "body"]
    assert body["additionalProperties"] is False
    props = body["properties"]
    assert (props["name"]["minLength"], props["name"]["maxLength"]) == (1, 200)
    assert props["body"]["maxLength"] == 5000
    assert props["status"]["enum"] == [
        "investigating",
        "identified",
        "monitoring",
        "resolved",
        "postmortem",
    ]
    assert props["status"]["default"] == "investigating"
    assert props["impact"]["enum"] == ["none", "minor", "major", "critical"]
    assert props["components"]["maxProperties"] == 1000
    assert props["components"]["additionalProperties"]["enum"] == [
        "operational",
        "under_maintenance",
        "degraded_performance",
        "partial_outage",
        "major_outage",
    ]
    maintenance = DOC["components"]["schemas"]["MaintenanceUpdate"]["properties"]["status"]
    assert maintenance["enum"] == ["scheduled", "in_progress", "verifying", "completed"]
    key = DOC["components"]["parameters"]["IdempotencyKey"]
    assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 200)


@pytest.mark.parametrize(
    ("body", "schema", "expected"),
    [
        (NEW_INCIDENT, "NewIncident", []),
        (NEW_MAINTENANCE, "NewMaintenance", []),
        ({"status": "resolved", "body": "Normal kembali."}, "NewUpdate", []),
        ({"status": "completed", "body": "Selesai."}, "MaintenanceUpdate", []),
        ({"body": "x"}, "NewIncident", ["$: 'name' is missing"]),
        (
            {**NEW_INCIDENT, "impact": "maintenance"},
            "NewIncident",
            ["$.impact: 'maintenance' is not one of ['none', 'minor', 'major', 'critical']"],
        ),
        ({**NEW_INCIDENT, "colour": "red"}, "NewIncident", ["$: 'colour' is not allowed"]),
        (
            {**NEW_INCIDENT, "name": "x" * 201},
            "NewIncident",
            ["$.name: length 201 is outside the limits"],
        ),
    ],
)
def test_request_schemas_accept_what_the_api_accepts(
    body: dict[str, Any], schema: str, expected: list[str]
) -> None:
    assert list(violations(body, {"$ref": f"#/components/schemas/{schema}"})) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/summary.json",
        "/api/v2/status.json",
        "/api/v2/components.json",
        "/api/v2/incidents.json",
        "/api/v2/incidents/unresolved.json",
        "/api/v2/scheduled-maintenances.json",
        "/api/v2/scheduled-maintenances/upcoming.json",
        "/api/v2/scheduled-maintenances/active.json",
        "/api/v1/branches",
        "/healthz",
    ],
)
async def test_public_answers_match_their_schemas(
    applicant: httpx.AsyncClient, admin: httpx.AsyncClient, path: str
) -> None:
    assert (await admin.post("/api/v1/incidents", json=NEW_INCIDENT)).status_code == 201
    assert (await admin.post("/api/v1/maintenances", json=NEW_MAINTENANCE)).status_code == 201
    response = await applicant.get(path)
    assert response.status_code == 200
    assert_conforms(response.json(), path, "get", 200)


async def test_staff_answers_match_their_schemas(admin: httpx.AsyncClient) -> None:
    created = await admin.post("/api/v1/incidents", json=NEW_INCIDENT)
    assert created.status_code == 201
    assert_conforms(created.json(), "/api/v1/incidents", "post", 201)
    incident_id = created.json()["id"]

    updated = await admin.post(
        f"/api/v1/incidents/{incident_id}/updates",
        json={"status": "resolved", "body": "Normal kembali.", "components": {}},
        headers={"Idempotency-Key": "resolve-1"},
    )
    assert updated.status_code == 201
    assert_conforms(updated.json(), "/api/v1/incidents/{incident_id}/updates", "post", 201)

    fetched = await admin.get(f"/api/v1/incidents/{incident_id}")
    assert_conforms(fetched.json(), "/api/v1/incidents/{incident_id}", "get", 200)

    scheduled = await admin.post("/api/v1/maintenances", json=NEW_MAINTENANCE)
    assert scheduled.status_code == 201
    assert_conforms(scheduled.json(), "/api/v1/maintenances", "post", 201)
    started = await admin.post(
        f"/api/v1/maintenances/{scheduled.json()['id']}/updates",
        json={"status": "in_progress", "body": "Dimulai."},
    )
    assert started.status_code == 201
    assert_conforms(started.json(), "/api/v1/maintenances/{incident_id}/updates", "post", 201)

    audit = await admin.get("/api/v1/audit")
    assert audit.json()["entries"]
    assert_conforms(audit.json(), "/api/v1/audit", "get", 200)
    assert_conforms((await admin.get("/api/v1/whoami")).json(), "/api/v1/whoami", "get", 200)


async def test_error_answers_match_the_error_schema(
    applicant: httpx.AsyncClient, medan_staff: httpx.AsyncClient
) -> None:
    cases = [
        (await applicant.post("/api/v1/incidents", json=NEW_INCIDENT), 401),
        (await medan_staff.get("/api/v1/audit"), 403),
        (await medan_staff.get("/api/v1/incidents/nope"), 404),
        (
            await medan_staff.post(
                "/api/v1/incidents", content=b"{", headers={"content-type": "application/json"}
            ),
            400,
        ),
        (await medan_staff.post("/api/v1/incidents", json={"body": "x"}), 422),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert list(violations(response.json(), {"$ref": "#/components/schemas/Error"})) == []

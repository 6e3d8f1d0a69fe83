"""OpenAPI paths for the Atom and RSS feeds (status/render/feeds.py), served from the snapshot."""

from __future__ import annotations

import copy
from typing import Any

Operation = dict[str, Any]

_FEEDS = [
    # path without extension, operationId stem, summary, path parameter
    ("/history", "History", "One entry per incident, notice or maintenance (the 50 newest and any still open), each with every update", None),
    ("/updates", "Updates", "One entry per update, newest 100; an entry is never rewritten, a correction is a new one", None),
    ("/components/{component_id}/history", "ComponentHistory", "The history feed for one component or branch (plus notices that name no component)", ("component_id", "A component or branch id, e.g. kcu-medan.")),
    ("/regions/{region}/history", "RegionHistory", "The history feed for one region's branches", ("region", 'The region name in lowercase words joined by "-", e.g. sumatera-utara.')),
]  # fmt: skip
_FORMATS = [(".atom", "Atom", "application/atom+xml"), (".rss", "Rss", "application/rss+xml")]
_CACHED = {
    "ETag": "ETag",
    "Last-Modified": "LastModified",
    "Cache-Control": "CacheControl",
    "Access-Control-Allow-Origin": "AllowOrigin",
}
_LANG = {
    "name": "lang",
    "in": "query",
    "description": "The feed's language; without it, the site's (Bahasa Indonesia by default).",
    "schema": {"type": "string", "enum": ["id", "en"]},
}


def _item(op_id: str, summary: str, media: str, param: tuple[str, str] | None) -> Operation:
    parameters: list[dict[str, Any]] = [
        _LANG,
        {"$ref": "#/components/parameters/IfNoneMatch"},
        {"$ref": "#/components/parameters/IfModifiedSince"},
    ]
    responses: dict[str, Any] = {
        "200": {
            "description": "The feed (gzip with Accept-Encoding: gzip); dates in UTC.",
            "content": {media: {"schema": {"type": "string"}}},
            "headers": {n: {"$ref": f"#/components/headers/{h}"} for n, h in _CACHED.items()},
        },
        "304": {"$ref": "#/components/responses/NotModified"},
    }
    if param is not None:
        name, description = param
        parameters.insert(
            0,
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": description,
                "schema": {"type": "string"},
            },
        )
        responses["404"] = {"$ref": "#/components/responses/NotFound"}
    get: Operation = {
        "operationId": op_id,
        "tags": ["Feeds"],
        "summary": summary,
        "security": [],
        "parameters": parameters,
        "responses": responses,
    }
    head = copy.deepcopy(get)
    head["operationId"] += "Head"
    head["summary"] = f"Headers of: {summary}"
    head["responses"]["200"].pop("content")
    preflight: Operation = {
        "operationId": f"{op_id}Preflight",
        "tags": ["Feeds"],
        "summary": "CORS preflight: any origin may read",
        "security": [],
        "responses": {"204": {"description": "CORS headers, no body."}},
    }
    return {"get": get, "head": head, "options": preflight}


def paths() -> dict[str, dict[str, Operation]]:
    return {
        f"{stem}{ext}": _item(f"get{name}{fmt}", summary, media, param)
        for stem, name, summary, param in _FEEDS
        for ext, fmt, media in _FORMATS
    }

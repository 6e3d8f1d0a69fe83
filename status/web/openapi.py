"""OpenAPI 3.1 description of every endpoint (placeholder until the full document lands)."""

from __future__ import annotations

from typing import Any

from status.config import Site


def build_openapi(site: Site) -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": site.name, "version": "1"}, "paths": {}}

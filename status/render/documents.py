"""The list of public renderings the snapshot builds: path → bytes, and when time alone changes them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache

from status.config import Config, Site
from status.model import State
from status.render import branches, feeds, page, statuspage
from status.snapshot import JSON, NextChange, Renderer, dump_json


def render_v2(state: State, config: Config, _now: datetime) -> Mapping[str, tuple[bytes, str]]:
    return {
        path: (dump_json(doc), JSON)
        for path, doc in statuspage.build_documents(state, config.site).items()
    }


def render_branches(state: State, config: Config, now: datetime) -> Mapping[str, tuple[bytes, str]]:
    return {"/api/v1/branches": (dump_json(branches.build_branches(config, state, now)), JSON)}


@cache
def _openapi(site: Site) -> bytes:
    from status.web.openapi import build_openapi

    return dump_json(build_openapi(site))


def render_openapi(
    _state: State, config: Config, _now: datetime
) -> Mapping[str, tuple[bytes, str]]:
    # Depends on the site settings alone: built once per process.
    return {"/openapi.json": (_openapi(config.site), JSON)}


def branches_change(config: Config, _state: State, now: datetime) -> datetime | None:
    return branches.next_change(config, now)


RENDERERS: tuple[Renderer, ...] = (
    render_v2,
    render_branches,
    render_openapi,
    page.render_page,
    feeds.render_feeds,
)
NEXT_CHANGES: tuple[NextChange, ...] = (branches_change, page.next_midnight)

"""Admins hand out one-time codes that link a Telegram account to a staff token (API and CLI)."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from status import db, link_codes, tokens
from status.clock import ManualClock
from status.schema import idempotency, staff_link_codes
from status.services import Services
from tests.conftest import TEST_CONFIG
from tests.test_cli import siaran
from tests.web.test_openapi import assert_conforms

pytestmark = pytest.mark.anyio
CODE = re.compile(r"[A-HJ-NP-Z2-9]{8}")


async def medan_token(services: Services) -> str:
    info, _secret = await tokens.create_token(
        services.engine, "petugas medan", ("branch:kcu-medan",), services.clock.now()
    )
    return info.id


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "siaran.toml"
    path.write_text(TEST_CONFIG + f'\n[storage]\nurl = "sqlite:///{tmp_path / "s.db"}"\n')
    return path


def path(token_id: str) -> str:
    return f"/api/v1/tokens/{token_id}/telegram-link-codes"


async def stored(services: Services) -> list[dict[str, Any]]:
    async with db.read(services.engine) as conn:
        return [dict(r._mapping) for r in await conn.execute(select(staff_link_codes))]


async def test_an_admin_gets_a_short_single_use_code_stored_only_as_a_hash(
    services: Services, admin: httpx.AsyncClient, clock: ManualClock
) -> None:
    token_id = await medan_token(services)
    response = await admin.post(path(token_id), json={})
    assert response.status_code == 201, response.text
    doc = response.json()
    assert CODE.fullmatch(doc["code"])
    assert_conforms(doc, "/api/v1/tokens/{token_id}/telegram-link-codes", "post", 201)
    assert doc == {
        "code": doc["code"],
        "token_id": token_id,
        "token_name": "petugas medan",
        "expires_at": "2026-11-23T03:15:00.000Z",
    }
    (row,) = await stored(services)
    assert row["code_hash"] == hashlib.sha256(doc["code"].encode()).hexdigest()
    assert (row["token_id"], row["created_by"], row["used_at"]) == (token_id, "ops admin", None)
    assert all(doc["code"] not in str(value) for value in row.values())

    async with db.write(services.engine) as conn:
        first = await link_codes.redeem(conn, doc["code"], 2001, "tigor", clock.now())
        again = await link_codes.redeem(conn, doc["code"], 2002, "ketut", clock.now())
    assert first is not None
    assert first.token_id == token_id
    assert again is None

    entries = (await admin.get("/api/v1/audit")).json()["entries"]
    issued = next(e for e in entries if e["action"] == "telegram.link_code")
    assert (issued["actor"], issued["target"], issued["outcome"]) == ("ops admin", token_id, "ok")
    assert issued["detail"] == {
        "token_name": "petugas medan",
        "expires_at": "2026-11-23T03:15:00+00:00",
    }


async def test_a_code_lives_as_long_as_asked_and_then_links_nobody(
    services: Services, admin: httpx.AsyncClient, clock: ManualClock
) -> None:
    token_id = await medan_token(services)
    response = await admin.post(path(token_id), json={"ttl": "1h"})
    assert response.json()["expires_at"] == "2026-11-23T04:00:00.000Z"
    clock.advance(timedelta(hours=1))
    async with db.write(services.engine) as conn:
        assert (
            await link_codes.redeem(conn, response.json()["code"], 2001, None, clock.now()) is None
        )


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"ttl": "30s"}, 422, "ttl"),
        ({"ttl": "25h"}, 422, "ttl"),
        ({"ttl": "soon"}, 422, "ttl"),
        ({"ttl": 900}, 422, "ttl"),
        ({"colour": "red"}, 422, "colour"),
    ],
)
async def test_a_bad_body_is_refused_naming_the_field(
    services: Services, admin: httpx.AsyncClient, body: dict[str, Any], status: int, field: str
) -> None:
    response = await admin.post(path(await medan_token(services)), json=body)
    assert response.status_code == status
    assert response.json()["error"]["field"] == field
    assert await stored(services) == []


async def test_branch_staff_cannot_issue_codes_and_the_attempt_is_audited(
    services: Services, admin: httpx.AsyncClient, medan_staff: httpx.AsyncClient
) -> None:
    token_id = await medan_token(services)
    response = await medan_staff.post(path(token_id), json={})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert await stored(services) == []
    entries = (await admin.get("/api/v1/audit")).json()["entries"]
    denied = next(e for e in entries if e["outcome"] == "denied")
    assert (denied["actor"], denied["action"], denied["target"]) == (
        "petugas medan",
        "telegram.link_code",
        token_id,
    )


async def test_unknown_and_revoked_tokens_get_no_code(
    services: Services, admin: httpx.AsyncClient, clock: ManualClock
) -> None:
    assert (await admin.post(path("nope"), json={})).status_code == 404
    assert (await admin.post(path("x" * 17), json={})).status_code == 404
    token_id = await medan_token(services)
    await tokens.revoke_token(services.engine, token_id, clock.now())
    response = await admin.post(path(token_id), json={})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert await stored(services) == []


async def test_a_retried_request_gets_the_same_code_and_makes_no_second(
    services: Services, admin: httpx.AsyncClient
) -> None:
    token_id = await medan_token(services)
    headers = {"Idempotency-Key": "link-tigor-1"}
    first = await admin.post(path(token_id), json={}, headers=headers)
    again = await admin.post(path(token_id), json={}, headers=headers)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(await stored(services)) == 1
    async with db.read(services.engine) as conn:
        keys = [r.key for r in await conn.execute(select(idempotency))]
    assert keys == ["link-tigor-1"]


def test_the_cli_prints_the_code_alone_on_stdout(config_file: Path) -> None:
    made = siaran(
        "token",
        "create",
        "--config",
        str(config_file),
        "--name",
        "medan",
        "--scope",
        "branch:kcu-medan",
    )
    assert made.returncode == 0, made.stderr
    linked = siaran(
        "token", "link-code", "--config", str(config_file), "--name", "medan", "--ttl", "1h"
    )
    assert linked.returncode == 0, linked.stderr
    assert linked.stdout.count("\n") == 1
    assert CODE.fullmatch(linked.stdout.strip())
    assert linked.stdout.strip() not in linked.stderr
    assert "/tautkan <code>" in linked.stderr

    unknown = siaran("token", "link-code", "--config", str(config_file), "--id", "nope")
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert 'no active token has the id "nope"' in unknown.stderr
    too_long = siaran(
        "token", "link-code", "--config", str(config_file), "--name", "medan", "--ttl", "2d"
    )
    assert (too_long.returncode, too_long.stdout) == (2, "")

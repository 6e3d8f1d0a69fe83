"""Operations hand out staff tokens: scoped, stored only as a hash, revocable by id or name."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from status import db, tokens
from status.schema import tokens as token_table

BRANCHES = ("kcu-medan", "kcu-denpasar", "kcu-jayapura")
ISSUED = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("text", "scopes"),
    [
        ("admin", ("admin",)),
        (" admin ", ("admin",)),
        ("branch:kcu-medan", ("branch:kcu-medan",)),
        ("branch:kcu-medan,branch:kcu-denpasar", ("branch:kcu-medan", "branch:kcu-denpasar")),
        ("branch:kcu-medan, branch:kcu-medan", ("branch:kcu-medan",)),
    ],
)
def test_scopes_are_admin_or_a_list_of_known_branches(text: str, scopes: tuple[str, ...]) -> None:
    assert tokens.parse_scopes(text, BRANCHES) == scopes


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("branch:kcu-surabaya", 'unknown branch "kcu-surabaya" in scope; known branches: '),
        ("branch:", 'unknown branch "" in scope'),
        ("root", 'unknown scope "root"'),
        ("Admin", 'unknown scope "Admin"'),
        ("", 'unknown scope ""'),
        ("kcu-medan", 'unknown scope "kcu-medan"; expected "admin" or "branch:<branch id>"'),
        ("admin,branch:kcu-medan", '"admin" already covers every branch; give it alone'),
        ("admin,admin", '"admin" already covers every branch'),
    ],
)
def test_an_unknown_or_confused_scope_is_refused_saying_why(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(complaint)):
        tokens.parse_scopes(text, BRANCHES)


def test_an_unknown_branch_complaint_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"known branches: kcu-denpasar, kcu-jayapura, kcu-medan$"):
        tokens.parse_scopes("branch:kcu-surabaya", BRANCHES)


async def _stored_rows(engine: AsyncEngine) -> list[dict[str, object]]:
    async with db.read(engine) as conn:
        return [dict(row._mapping) for row in await conn.execute(select(token_table))]


async def test_a_new_token_is_stored_only_as_its_sha256_hash(engine: AsyncEngine) -> None:
    info, secret = await tokens.create_token(engine, "petugas medan", ["branch:kcu-medan"], ISSUED)

    assert secret.startswith("siaran_")
    assert len(secret) > 40
    (row,) = await _stored_rows(engine)
    assert row["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    for column, value in row.items():
        assert secret not in str(value), column
        assert secret.removeprefix("siaran_") not in str(value), column
    assert (info.name, info.scopes, info.created_at) == (
        "petugas medan",
        ("branch:kcu-medan",),
        ISSUED,
    )


async def test_each_token_is_different(engine: AsyncEngine) -> None:
    first = await tokens.create_token(engine, "petugas medan", ["branch:kcu-medan"], ISSUED)
    second = await tokens.create_token(engine, "petugas medan", ["branch:kcu-medan"], ISSUED)
    assert first[0].id != second[0].id
    assert first[1] != second[1]


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
async def test_a_token_needs_a_name_of_1_to_100_characters(engine: AsyncEngine, name: str) -> None:
    with pytest.raises(ValueError, match="1 to 100 characters"):
        await tokens.create_token(engine, name, ["admin"], ISSUED)
    assert await _stored_rows(engine) == []


async def test_tokens_are_listed_oldest_first_with_their_scopes(engine: AsyncEngine) -> None:
    ops, _ = await tokens.create_token(engine, "ops admin", ["admin"], ISSUED)
    bali, _ = await tokens.create_token(engine, "petugas denpasar", ["branch:kcu-denpasar"], LATER)

    listed = await tokens.list_tokens(engine)

    assert [(t.id, t.name, t.scopes, t.created_at, t.revoked_at) for t in listed] == [
        (ops.id, "ops admin", ("admin",), ISSUED, None),
        (bali.id, "petugas denpasar", ("branch:kcu-denpasar",), LATER, None),
    ]


async def _verified_name(engine: AsyncEngine, secret: str) -> str | None:
    async with db.read(engine) as conn:
        actor = await tokens.verify_token(conn, secret)
    return None if actor is None else actor.name


@pytest.mark.parametrize("by", ["id", "name"])
async def test_a_token_is_revoked_by_id_or_unique_name(engine: AsyncEngine, by: str) -> None:
    medan, medan_secret = await tokens.create_token(
        engine, "petugas medan", ["branch:kcu-medan"], ISSUED
    )
    _bali, bali_secret = await tokens.create_token(
        engine, "petugas denpasar", ["branch:kcu-denpasar"], ISSUED
    )
    assert await _verified_name(engine, medan_secret) == "petugas medan"

    revoked = await tokens.revoke_token(engine, medan.id if by == "id" else medan.name, LATER)

    assert revoked == [medan.id]
    assert await _verified_name(engine, medan_secret) is None
    assert await _verified_name(engine, bali_secret) == "petugas denpasar"
    assert {t.name: t.revoked_at for t in await tokens.list_tokens(engine)} == {
        "petugas medan": LATER,
        "petugas denpasar": None,
    }


async def test_revoking_by_a_name_two_tokens_share_revokes_neither(engine: AsyncEngine) -> None:
    first, first_secret = await tokens.create_token(engine, "loket", ["branch:kcu-medan"], ISSUED)
    second, second_secret = await tokens.create_token(engine, "loket", ["branch:kcu-medan"], ISSUED)

    with pytest.raises(ValueError, match='"loket" names 2 tokens; revoke by id'):
        await tokens.revoke_token(engine, "loket", LATER)

    assert await _verified_name(engine, first_secret) == "loket"
    assert await _verified_name(engine, second_secret) == "loket"
    assert await tokens.revoke_token(engine, first.id, LATER) == [first.id]
    assert await tokens.revoke_token(engine, "loket", LATER) == [second.id]


async def test_revoking_something_unknown_or_already_revoked_revokes_nothing(
    engine: AsyncEngine,
) -> None:
    medan, _ = await tokens.create_token(engine, "petugas medan", ["branch:kcu-medan"], ISSUED)
    assert await tokens.revoke_token(engine, "petugas surabaya", LATER) == []
    assert await tokens.revoke_token(engine, medan.id, LATER) == [medan.id]
    assert await tokens.revoke_token(engine, medan.id, LATER) == []


@pytest.mark.parametrize(
    "secret",
    ["", "siaran_", "tanpa-awalan", "siaran_" + "x" * 300, "siaran_bukan-token-kami"],
)
async def test_a_secret_we_never_issued_verifies_as_nobody(
    engine: AsyncEngine, secret: str
) -> None:
    await tokens.create_token(engine, "ops admin", ["admin"], ISSUED)
    assert await _verified_name(engine, secret) is None

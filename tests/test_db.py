"""Storage: migrations build exactly the schema the code uses, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from status import db
from status.schema import metadata

pytestmark = pytest.mark.anyio


async def test_the_migrations_build_exactly_the_declared_schema(engine: AsyncEngine) -> None:
    def differences(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(differences) == []


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(
    tmp_path: Path, anyio_backend: str
) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'fresh' / 'siaran.db'}")
    try:
        async with engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            keys = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
    finally:
        await engine.dispose()
    assert (mode, keys) == ("wal", 1)

"""make_engine(url) for sqlite|postgresql, transaction() helper; every dialect difference lives here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def async_url(url: str) -> str:
    """Map the config's plain URLs to the async drivers we ship."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL scheme: {parsed.drivername}")


def make_engine(url: str, **options: Any) -> AsyncEngine:
    """An AsyncEngine; SQLite gets WAL, foreign keys, a busy timeout and explicit BEGIN."""
    target = make_url(async_url(url))
    if target.get_backend_name() == "sqlite":
        database = target.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(target, **options)
        _tune_sqlite(engine)
        return engine
    options.setdefault("pool_pre_ping", True)
    return create_async_engine(target, **options)


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling would begin lazily and deferred; we begin ourselves
        # so writers can take the lock up front (below) instead of failing on upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock at BEGIN: two writers queue on busy_timeout instead of
        # one of them failing with "database is locked" when its read turns into a write.
        immediate = conn.get_execution_options().get("siaran_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


@asynccontextmanager
async def write(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One write transaction: committed on normal exit, rolled back on any exception."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(siaran_write=True)
        async with conn.begin():
            yield conn


@asynccontextmanager
async def read(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read transaction, so a multi-query snapshot sees one consistent state.

    PostgreSQL's default (READ COMMITTED) gives each statement its own snapshot, so a change
    committed between two queries would show in one and not the other: REPEATABLE READ makes
    the whole transaction one snapshot (a read-only one never fails to serialize). SQLite's
    read transaction is one snapshot already (WAL).
    """
    async with engine.connect() as conn:
        if not is_sqlite(engine):
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            yield conn


async def migrate(engine: AsyncEngine) -> None:
    """Apply every Alembic migration up to head, on this engine's own connection."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    def upgrade(sync_conn: Connection) -> None:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    async with engine.connect() as conn:
        await conn.run_sync(upgrade)
        await conn.commit()


def upsert_statement(
    engine_or_conn: Any, table: Any, rows: list[dict[str, Any]], keys: Sequence[str]
) -> Any:
    """INSERT … ON CONFLICT (keys) DO UPDATE for every other column, on SQLite and PostgreSQL."""
    from sqlalchemy.dialects import postgresql, sqlite

    module: Any = sqlite if engine_or_conn.dialect.name == "sqlite" else postgresql
    statement = module.insert(table).values(rows)
    columns = [c for c in rows[0] if c not in keys]
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={c: statement.excluded[c] for c in columns}
    )

"""PostgreSQL pool and migrations. Every service works inside its own schema."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from kernel.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str


def migrations_from(package: str, folder: str = "migrations") -> list[Migration]:
    """The `NNN_name.sql` files of a package's folder, in name order."""
    root = resources.files(package).joinpath(folder)
    files = sorted((f for f in root.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(name=f"{package}:{f.name}", sql=f.read_text(encoding="utf-8")) for f in files]


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(database_url: str, schema: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    await ensure_schema(database_url, schema)
    pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        server_settings={"search_path": schema, "application_name": f"flexenroll-{schema}"},
    )
    assert pool is not None
    return pool


async def ensure_schema(database_url: str, schema: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except asyncpg.UniqueViolationError:
        pass  # two processes created it at once
    finally:
        await conn.close()


async def migrate(pool: asyncpg.Pool, schema: str, migrations: Sequence[Migration]) -> list[str]:
    """Apply what is new, once, under an advisory lock so that concurrent starts take turns."""
    kernel = migrations_from("kernel")
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{schema}.migrate")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for migration in [*kernel, *migrations]:
            if migration.name in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", migration.name)
            applied.append(migration.name)
    if applied:
        log.info("migrations_applied", schema=schema, migrations=applied)
    return applied


async def drop_schema(database_url: str, schema: str) -> None:
    """For tests and `flexctl`: remove a schema and everything in it."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


# What a caller holds inside `async with pool.acquire() as conn`: either kind works everywhere.
Connection = asyncpg.Connection | PoolConnectionProxy
Executor = Connection | asyncpg.Pool

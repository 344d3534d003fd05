"""End-to-end: services as real processes over the real broker, in a database of their own, each
service as its own role in the schema provisioned for it (as `make up` does)."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from contracts.topics import SERVICES
from tests.support.infra import ADMIN_URL, DATABASE_URL, provision_schema, unique_name, with_database


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _create(database: str) -> None:
    await _admin(f'CREATE DATABASE "{database}"')
    for service in SERVICES:
        await provision_schema(service, service, admin=with_database(ADMIN_URL, database))


@pytest.fixture(scope="session")
def e2e_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    database = unique_name("flexenroll_e2e")
    asyncio.run(_create(database))
    blobs = tmp_path_factory.mktemp("blobs")
    # The services log in as their roles with the shipped development passwords (no DB_PASSWORD).
    env = {"DATABASE_URL": with_database(DATABASE_URL, database), "ENROLLMENT_BLOB_ROOT": str(blobs)}
    yield {**env, "LOG_JSON": "true"}
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service-logs")

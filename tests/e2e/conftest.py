"""End-to-end: services as real processes over the real broker, in a database of their own."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.support.infra import DATABASE_URL, unique_name


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def e2e_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    database = unique_name("flexenroll_e2e")
    asyncio.run(_admin(f'CREATE DATABASE "{database}"'))
    base, _, _ = DATABASE_URL.rpartition("/")
    blobs = tmp_path_factory.mktemp("blobs")
    yield {"DATABASE_URL": f"{base}/{database}", "ENROLLMENT_BLOB_ROOT": str(blobs), "LOG_JSON": "true"}
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service-logs")

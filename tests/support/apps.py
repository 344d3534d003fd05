"""Run a service's app in-process against the real database and broker (integration tests)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from kernel.eventstore import EventStore
from kernel.personal import PersonKeys
from kernel.runtime import ServiceRuntime, StoreOnly
from services.enrollment.app import config_from
from services.enrollment.blobs import LocalFolderBlobStore
from services.enrollment.handlers import EnrollmentHandlers
from services.enrollment.service import EnrollmentService
from services.enrollment.settings import EnrollmentSettings
from tests.support.infra import (
    DATABASE_URL,
    KAFKA_BOOTSTRAP,
    drop_schemas,
    group_prefix,
    provision_schema_now,
    unique_name,
)


def isolated(service: str) -> dict[str, str]:
    """Settings values that give a test its own schema (provisioned for the service's role, which
    the service then connects as) and its own consumer groups."""
    schema = unique_name(f"t_{service}")
    provision_schema_now(service, schema)
    return {
        "database_url": DATABASE_URL,
        "kafka_bootstrap": KAFKA_BOOTSTRAP,
        "schema_name": schema,
        "consumer_group_prefix": group_prefix(),
    }


@asynccontextmanager
async def running(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[httpx.AsyncClient]:
    await runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield client
    finally:
        await runtime.stop()
        await drop_schemas(runtime.settings.db_schema)


def enrollment_handlers(schema: str, blob_root: Path, keys: PersonKeys | None = None) -> EnrollmentHandlers:
    """enrollment's handlers on the consumer's connection only, with the shipped configuration.

    `keys`: a `PersonKeys` bound to a real identity (tests/support/identity.py) when the handlers
    must open sealed data; without it, a client that is never asked (the status facts keep
    envelopes sealed as they are)."""
    settings = EnrollmentSettings(schema_name=schema)
    service = EnrollmentService(
        StoreOnly(EventStore("enrollment", schema)),
        LocalFolderBlobStore(blob_root),
        config_from(settings),
        keys or PersonKeys(settings),
    )
    return EnrollmentHandlers(service)

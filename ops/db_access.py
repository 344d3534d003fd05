"""Who provisions the databases, and with which connection (deploy/local/README.md, "Database roles").

A service connects as its own role to DATABASE_URL (kernel.db.create_pool); creating that role
and its schema is an administrator's job, done by `kernel.db.provision` through the
administrator's URL found here. Used by `make up` (deploy/local/database.py), by `flexctl db
provision` and by the tests.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit

from kernel.db import provision
from kernel.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
# deploy/local/postgres.sh: the local cluster's socket directory, and its administrator.
LOCAL_SOCKETS = ROOT / ".run" / "postgres"
LOCAL_ADMIN = "flexenroll"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def admin_url(database_url: str, environ: Mapping[str, str] = os.environ) -> str:
    """The administrator's connection for the database at `database_url`.

    DATABASE_ADMIN_URL when set. Otherwise, if `database_url` is the local cluster of
    deploy/local/postgres.sh (its socket for that port is in .run/postgres), its administrator
    over that socket: only the cluster's OS user (and root) may open it, and nobody is the
    administrator over TCP. Otherwise `database_url` itself: an external cluster whose URL names
    an administrator."""
    explicit = environ.get("DATABASE_ADMIN_URL")
    if explicit:
        return explicit
    parsed = urlsplit(database_url)
    port = parsed.port or 5432
    if parsed.hostname in LOOPBACK and (LOCAL_SOCKETS / f".s.PGSQL.{port}").exists():
        database = parsed.path.lstrip("/") or LOCAL_ADMIN
        return f"postgresql://{LOCAL_ADMIN}@/{database}?host={quote(str(LOCAL_SOCKETS), safe='/')}&port={port}"
    return database_url


async def provision_service(settings: ServiceSettings, admin: str | None = None) -> None:
    """The service's role (DB_USER, else its name) with its password (DB_PASSWORD, else the shipped
    development one) and its schema (SCHEMA_NAME, else its name)."""
    await provision(
        admin or admin_url(settings.database_url), settings.db_role, settings.db_secret(), settings.db_schema
    )

"""Provision every service's database role and schema on the local cluster, idempotently.

Run with `.venv/bin/python deploy/local/database.py` after `postgres.sh start` (`make up` does).
For identity, enrollment, review, payment and notify: a role named after the service, logging in
with its shipped development password (kernel.settings.local_secret: what a service uses when
DB_PASSWORD is not set), owning the schema named after it and nothing else (kernel.db.provision).

Env: FLEXENROLL_STACK (the stack file, default deploy/local/stack.env), DATABASE_URL (default: the
stack's cluster), DATABASE_ADMIN_URL (default: the stack's cluster's administrator over its socket).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

# Run as a file, so make the repo root importable even without the editable install.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from contracts.topics import SERVICES
from kernel.db import provision
from kernel.settings import ServiceSettings, local_secret
from ops.db_access import admin_url
from ops.stack import use_stack


async def main() -> int:
    use_stack()
    admin = admin_url(ServiceSettings().database_url)
    for service in SERVICES:
        await provision(admin, service, local_secret("db", service), service)  # logs schema_provisioned
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

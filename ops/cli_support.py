"""What flexctl's command groups share: the console, the stack it works on and a service's own
database pool."""

import os
import sys

import asyncpg
import typer
from rich.console import Console

from kernel.db import SchemaMissing, create_pool
from kernel.settings import ServiceSettings
from ops.stack import DEFAULT_STACK_FILE, StackError, use_stack

console = Console()


def use_local_stack() -> None:
    """Before any settings are read: the stack FLEXENROLL_STACK names (default deploy/local/stack.env)
    puts DATABASE_URL, DATABASE_ADMIN_URL, KAFKA_BOOTSTRAP and the services' URLs into the
    environment where they are not set, so flexctl talks to the stack the scripts started
    (deploy/local/README.md, "Stacks"). An installation without the repository's default file
    just uses its environment."""
    if not os.environ.get("FLEXENROLL_STACK") and not DEFAULT_STACK_FILE.is_file():
        return
    try:
        use_stack()
    except StackError as error:
        console.print(f"[red]{error}[/red]")
        sys.exit(2)


async def service_pool(settings: ServiceSettings) -> asyncpg.Pool:
    """A pool as the service itself opens it: its own role, its own schema (provisioned already)."""
    try:
        return await create_pool(
            settings.database_url, settings.db_schema, 1, 2, user=settings.db_role, password=settings.db_secret()
        )
    except SchemaMissing as missing:
        console.print(f"[red]{missing}[/red]")
        raise typer.Exit(1) from missing

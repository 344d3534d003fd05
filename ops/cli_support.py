"""What flexctl's command groups share: the console and a service's own database pool."""

import asyncpg
import typer
from rich.console import Console

from kernel.db import SchemaMissing, create_pool
from kernel.settings import ServiceSettings

console = Console()


async def service_pool(settings: ServiceSettings) -> asyncpg.Pool:
    """A pool as the service itself opens it: its own role, its own schema (provisioned already)."""
    try:
        return await create_pool(
            settings.database_url, settings.db_schema, 1, 2, user=settings.db_role, password=settings.db_secret()
        )
    except SchemaMissing as missing:
        console.print(f"[red]{missing}[/red]")
        raise typer.Exit(1) from missing

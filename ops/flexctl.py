"""flexctl: the operators' command line (design §7)."""

import asyncio
from typing import Annotated, Literal

import typer
from rich.console import Console

from kernel.db import create_pool, migrate, migrations_from
from kernel.eventstore import EventStore, new_correlation_id
from kernel.problems import Problem
from services.identity.service import IdentityService
from services.identity.settings import IdentitySettings
from services.identity.verification import load_provider

app = typer.Typer(help="Operate flexenroll: staff accounts, projections, dead letters.", no_args_is_help=True)
staff = typer.Typer(help="Reviewer and operator accounts (never self-registered).", no_args_is_help=True)
app.add_typer(staff, name="staff")
console = Console()


async def _add_staff(phone: str, password: str, role: Literal["reviewer", "operator"]) -> str:
    settings = IdentitySettings()
    pool = await create_pool(settings.database_url, settings.db_schema, 1, 2)
    try:
        await migrate(pool, settings.db_schema, migrations_from("services.identity"))
        store = EventStore(settings.service, settings.db_schema)
        provider = load_provider(settings.verification_provider, settings.verification_deny_list)
        service = IdentityService(pool, store, provider)
        user_id = await service.register(phone, password, role, new_correlation_id())
        return str(user_id)
    finally:
        await pool.close()


@staff.command("add")
def add_staff(
    phone: Annotated[str, typer.Option(help="mainland mobile number, used to log in")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="at least 8 characters, letters and digits")
    ],
    role: Annotated[str, typer.Option(help="reviewer or operator")] = "reviewer",
) -> None:
    """Create a reviewer or operator account; it logs in at identity's POST /v1/sessions."""
    if role not in ("reviewer", "operator"):
        console.print("[red]role must be reviewer or operator[/red]")
        raise typer.Exit(2)
    try:
        user_id = asyncio.run(_add_staff(phone, password, role))  # type: ignore[arg-type]
    except Problem as problem:
        console.print(f"[red]{problem.code}[/red]: {problem.detail}")
        raise typer.Exit(1) from problem
    console.print(f"{role} account created: [bold]{user_id}[/bold]")


if __name__ == "__main__":
    app()

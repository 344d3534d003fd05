"""`python -m tests.load [--rate R] [--count N] [--max-seconds S] [--accounts-ahead] [--json PATH]`
(also `make load`): journeys through `make up`'s stack at a fixed offered rate, loopback only, and
their cost in CPU per process (docs/benchmarks.md)."""

import asyncio
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kernel.logging import configure_logging
from tests.load.cost import stack_processes
from tests.load.report import show, write_json
from tests.load.run import LoadSettings, run_load
from tests.load.stack import Stack
from tests.load.targets import SERVICE_NAMES, NotLoopback, stack_urls, stack_value

DEFAULT_DATABASE = "postgresql://127.0.0.1:55432/flexenroll"
console = Console(width=int(os.environ.get("COLUMNS", "160")))
app = typer.Typer(add_completion=False)


def _overrides(urls: list[str]) -> dict[str, str]:
    pairs = [u.split("=", 1) for u in urls]
    unknown = [p[0] for p in pairs if len(p) != 2 or p[0] not in SERVICE_NAMES]
    if unknown:
        raise typer.BadParameter(f"--url takes SERVICE=URL with SERVICE one of {', '.join(SERVICE_NAMES)}")
    return dict((p[0], p[1]) for p in pairs)


@app.command()
def main(
    rate: Annotated[float, typer.Option(help="Journeys per second offered (open loop).")] = 1.0,
    count: Annotated[int, typer.Option(help="Journeys in the measured phase.")] = 20,
    max_seconds: Annotated[float, typer.Option(help="No journey is started later than this in a phase.")] = 120.0,
    drain_seconds: Annotated[float, typer.Option(help="In-flight journeys get this long after the last start.")] = 60.0,
    accounts_ahead: Annotated[bool, typer.Option(help="Create the accounts first, measured apart.")] = False,
    accounts_rate: Annotated[float, typer.Option(help="Accounts per second offered in that phase.")] = 2.0,
    url: Annotated[list[str], typer.Option(help="SERVICE=URL, loopback only (default: make up's ports).")] = [],  # noqa: B006
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the figures here too.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the simulated people.")] = None,
) -> None:
    configure_logging("load", level="WARNING", json=False)
    try:
        urls = stack_urls(_overrides(url))
    except NotLoopback as exc:
        raise typer.BadParameter(str(exc)) from exc
    database = os.environ.get("DATABASE_URL") or stack_value("DATABASE_URL") or DEFAULT_DATABASE
    stack = Stack(urls=urls, env={**os.environ, "DATABASE_URL": database}, database_url=database)
    settings = LoadSettings(rate, count, max_seconds, drain_seconds, accounts_ahead, accounts_rate, seed)
    watched = stack_processes(list(SERVICE_NAMES))
    console.print(f"watching {', '.join(f'{w.name} ({w.pid})' for w in watched)}; {settings}")
    result = asyncio.run(run_load(stack, watched, settings))
    show(console, result.phases)
    if json_path:
        meta = {"at": datetime.now(UTC).isoformat(), "host": platform.node(), "cpus": os.cpu_count(), "urls": urls}
        write_json(json_path, result.phases, {**meta, "settings": settings.__dict__})
        console.print(f"figures written to {json_path}")
    if any(p.ok < p.journeys for p in result.phases):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()

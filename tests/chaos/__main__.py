"""`python -m tests.chaos [--seconds S] [--rate R] [--kills-each K] ...` (also `make chaos`).

Starts a stack of its own beside the default one (its own PostgreSQL, broker and services on free
ports, in a directory of its own under /tmp), drives journeys through it with the load generator while killing its
services with SIGKILL and restarting its broker and database, drains, checks that nothing was lost
or done twice (tests/chaos/checks.py), prints the counts, and stops the stack. Exit status 1 when a
journey or a check failed; then the stack's directory (its logs) is kept for a look.
"""

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from contracts.topics import SERVICES
from kernel.logging import configure_logging
from tests.chaos.faults import FaultPlan, Inflicted
from tests.chaos.run import ChaosReport, ChaosSettings, chaos_run
from tests.load.run import LoadSettings
from tests.support.stack import running_stack

console = Console(width=int(os.environ.get("COLUMNS", "150")))
app = typer.Typer(add_completion=False)


def _shown(fault: Inflicted) -> None:
    console.print(f"  {fault.began:6.1f} s  {fault.fault!s:<28} took {fault.took:5.1f} s")


def show(report: ChaosReport) -> None:
    reached: dict[str, int] = {}
    for journey in report.journeys:
        reached[journey.reached] = reached.get(journey.reached, 0) + 1
    table = Table("check", "counted", "result", title="after the faults", title_justify="left")
    table.add_row("journeys reached their expected state", str(len(report.journeys)), _verdict(report.lost_journeys))
    for finding in report.findings:
        result = "ok" if finding.ok else "[red]" + "; ".join(finding.problems)
        table.add_row(finding.check, str(finding.counted), result)
    console.print(table)
    console.print(f"journeys by state reached: {reached}; faults: {len(report.faults)}; " + _drain(report))
    for journey in report.lost_journeys[:5]:
        console.print(f"[red]journey {journey.index} stopped at {journey.reached}: {journey.error}")


def _verdict(lost: Sequence[object]) -> str:
    return "ok" if not lost else f"[red]{len(lost)} did not"


def _drain(report: ChaosReport) -> str:
    if report.drained_in is None:
        return "[red]not drained[/red]"
    return f"drained {report.drained_in:.1f} s after the last journey"


@app.command()
def main(
    seconds: Annotated[float, typer.Option(help="How long journeys are started and faults strike.")] = 240.0,
    rate: Annotated[float, typer.Option(help="Journeys per second offered.")] = 1.0,
    kills_each: Annotated[int, typer.Option(help="SIGKILLs per service.")] = 3,
    broker_restarts: Annotated[int, typer.Option(help="Broker stops and starts.")] = 2,
    database_restarts: Annotated[int, typer.Option(help="PostgreSQL stops and starts.")] = 2,
    outage: Annotated[float, typer.Option(help="Seconds the broker or the database stays down.")] = 5.0,
    seed: Annotated[int, typer.Option(help="Seed of the fault plan and the people.")] = 1,
) -> None:
    configure_logging("chaos", level="WARNING", json=False)
    # The run's own pools (the code reader, the billing) lose their connections at every database
    # restart, on purpose; asyncpg's traceback for each would bury the counts.
    logging.getLogger("asyncpg").setLevel(logging.ERROR)
    count = max(1, int(rate * seconds))
    load = LoadSettings(rate=rate, count=count, max_seconds=seconds, drain_seconds=300.0, seed=seed)
    plan = FaultPlan(kills_each, broker_restarts, database_restarts, outage, start=5.0, end=seconds * 0.9)
    started = time.monotonic()
    console.print(f"chaos: {load.count} journeys at {rate}/s over {seconds:.0f} s; {plan}")
    with running_stack(SERVICES) as local:
        console.print(f"stack in {local.file.parent} up in {time.monotonic() - started:.0f} s; faults:")
        report = asyncio.run(chaos_run(local, ChaosSettings(load, plan, seed), _shown))
        show(report)
        console.print(f"done in {time.monotonic() - started:.0f} s")
        if not report.ok:  # raised inside: the stack's directory and its logs are kept
            console.print(f"[red]failed; the stack's logs stay in {local.file.parent}")
            raise typer.Exit(1)


if __name__ == "__main__":
    app()

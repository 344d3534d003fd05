"""flexctl payment: bills, withholding runs, overdue bills and reconciliation (services/payment/README.md)."""

import asyncio
from datetime import date, datetime
from pathlib import Path
from typing import Annotated
from uuid import uuid4

import asyncpg
import typer
from rich.table import Table

from kernel.clock import utc_now
from kernel.db import migrate, migrations_from
from kernel.effects import Dispatcher
from kernel.eventstore import EventStore
from kernel.problems import Problem
from kernel.runtime import OpenStorage
from ops.cli_support import console, service_pool
from services.payment import withholding_views
from services.payment.app import load_rules as payment_rules
from services.payment.bank import HttpBankGateway, collection_policy, load_bank_gateway
from services.payment.domain import Month
from services.payment.reconciliation import ReconciliationRunRecorded
from services.payment.service import IssueReport, PaymentService
from services.payment.settings import PaymentSettings
from services.payment.withholding_service import COLLECTIONS, WithholdReport

payment = typer.Typer(help="Contribution accounts and bills (services/payment/README.md).", no_args_is_help=True)


async def _issue_bills(month: str | None) -> IssueReport:
    period = Month.parse(month) if month is not None else Month.at(utc_now())
    service, _, pool = await _payment_service()
    try:
        return await service.issue_bills(period)
    finally:
        await pool.close()


@payment.command("issue-bills")
def issue_bills(
    month: Annotated[
        str | None, typer.Option(help="the contribution month YYYY-MM (default: this month in Changzhou)")
    ] = None,
) -> None:
    """Issue the month's bills (BillIssued) for every account opened by then, and any earlier month of
    theirs not billed yet. Safe to run twice and resumable: a month billed is never billed again, and
    each account is billed in a transaction of its own. A month whose year has no tariff file is
    refused (tariff_missing) before anything is billed."""
    try:
        report = asyncio.run(_issue_bills(month))
    except Problem as problem:
        console.print(f"[red]{problem.code}[/red]: {problem.detail}")
        raise typer.Exit(1) from problem
    table = Table("", "count", title=f"bills of {report.period}", title_justify="left")
    table.add_row("accounts visited", str(report.accounts))
    table.add_row("bills issued now", str(report.bills_issued))
    table.add_row("amount issued now (fen)", str(report.amount_fen))
    console.print(table)


async def _reconcile(channel: str, day: date, content: bytes, file_name: str) -> ReconciliationRunRecorded:
    service, _, pool = await _payment_service()
    try:
        return await service.reconcile(channel, day, content, file_name)
    finally:
        await pool.close()


def _fen(amount: int | None) -> str:
    return "" if amount is None else str(amount)


@payment.command("reconcile")
def reconcile(
    channel: Annotated[str, typer.Option(help="wechat, alipay, unionpay_pos, bank_counter or bank_withholding")],
    day: Annotated[
        datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="the day of settlement in Changzhou, YYYY-MM-DD")
    ],
    statement: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="the channel's daily statement (CSV, UTF-8)")
    ],
) -> None:
    """Compare a channel's daily statement with the payments taken here on that day (Asia/Shanghai)
    and list every difference both ways; the run is recorded (ReconciliationRunRecorded) either way.
    Exit 0 when everything matches, 1 when there is a difference, 2 when the statement or the channel
    is refused (nothing recorded). Statement format: services/payment/README.md, "Reconciliation"."""
    try:
        run = asyncio.run(_reconcile(channel, day.date(), statement.read_bytes(), statement.name))
    except Problem as problem:
        console.print(f"[red]{problem.code}[/red]: {problem.detail}")
        raise typer.Exit(2) from problem
    counts = Table("", "count", "fen", title=f"{run.channel} on {run.statement_date}: run {run.run_id}",
                   title_justify="left")  # fmt: skip
    counts.add_row("taken here", str(run.ours_count), str(run.ours_fen))
    counts.add_row("on the statement", str(run.statement_count), str(run.statement_fen))
    counts.add_row("matched", str(run.matched), str(run.matched_fen))
    counts.add_row("differences", str(len(run.differences)), "")
    console.print(counts)
    if not run.differences:
        console.print("[green]the statement matches[/green]")
        return
    listed = Table("difference", "transaction_id", "out_trade_no", "ours (fen)", "statement (fen)", "line",
                   title="differences", title_justify="left")  # fmt: skip
    for d in run.differences:
        listed.add_row(d.kind, d.transaction_id, d.out_trade_no, _fen(d.ours_fen), _fen(d.theirs_fen),
                       _fen(d.statement_line))  # fmt: skip
    console.print(listed)
    raise typer.Exit(1)


async def _payment_service() -> tuple[PaymentService, PaymentSettings, asyncpg.Pool]:
    settings = PaymentSettings()
    pool = await service_pool(settings)
    await migrate(pool, settings.db_schema, migrations_from("services.payment"))
    service = PaymentService(
        OpenStorage(pool, EventStore(settings.service, settings.db_schema)), payment_rules(settings)
    )
    return service, settings, pool


async def _withhold(send: bool) -> tuple[WithholdReport, dict[str, int], int]:
    service, settings, pool = await _payment_service()
    try:
        report = await service.withhold(uuid4())
        if send:  # the service's collector sends them too: whichever claims a request sends it (once)
            gateway = load_bank_gateway(settings, pool)
            policy = collection_policy(settings)
            dispatcher = Dispatcher(pool, COLLECTIONS, gateway, policy, on_final=service.record_collection_final)
            try:
                while await dispatcher.run_once():
                    pass
            finally:
                if isinstance(gateway, HttpBankGateway):
                    await gateway.aclose()
        return (
            report,
            await withholding_views.requests_of_run(pool, report.run_id),
            await withholding_views.open_requests(pool),
        )
    finally:
        await pool.close()


@payment.command("withhold")
def withhold(
    send: Annotated[bool, typer.Option(help="also send the requests now (else the service's collector does)")] = True,
) -> None:
    """The monthly withholding run (银行卡签约扣费, guide 二(一)): one collection request per unpaid bill
    whose person has an active agreement and no request open, sent to the agreement's bank exactly
    once (kernel.effects). Safe to run twice (an open request is not asked again) and resumable
    (each bill in its own transaction; a request recorded but not sent is sent by the next run or
    the service). A failed collection is asked again by the next run."""
    report, states, open_now = asyncio.run(_withhold(send))
    table = Table("", "count", title=f"withholding run {report.run_id}", title_justify="left")
    table.add_row("unpaid bills with an agreement", str(report.bills))
    table.add_row("collection requests recorded now", str(report.requested))
    table.add_row("amount requested now (fen)", str(report.amount_fen))
    table.add_row("left alone (a request open, or paid)", str(report.left_alone))
    for state in ("sent", "pending", "sending", "failed"):
        table.add_row(f"this run's requests {state}", str(states.get(state, 0)))
    table.add_row("requests awaiting the banks' answer (all runs)", str(open_now))
    console.print(table)


async def _mark_overdue() -> int:
    service, _, pool = await _payment_service()
    try:
        return await service.mark_overdue()
    finally:
        await pool.close()


@payment.command("mark-overdue")
def mark_overdue() -> None:
    """Record every unpaid bill whose due day has passed in Changzhou as overdue (BillOverdue, once per
    bill; notify sends one reminder each). The service does this by itself every
    PAYMENT_OVERDUE_CHECK_SECONDS; this is for an operator who wants it now. Safe to run twice."""
    console.print(f"{asyncio.run(_mark_overdue())} bill(s) recorded overdue now")

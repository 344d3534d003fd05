"""`flexctl payment issue-bills` on the real database: it calls payment's service layer, bills
every open account from its approval month, issues nothing more when run twice, resumes after
a run that stopped half-way, and refuses a month whose year has no tariff (`tariff_missing`)."""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from typer.testing import CliRunner

from contracts.envelope import Envelope
from contracts.events.base import Event
from contracts.events.enrollment import ApplicationApproved, EnrollmentSubmitted
from kernel.db import migrate, migrations_from
from kernel.eventstore import EventStore
from kernel.personal import new_data_key, seal
from kernel.runtime import OpenStorage
from ops import cli_support, flexctl
from services.payment import domain
from services.payment.app import load_rules
from services.payment.domain import Month
from services.payment.service import PaymentService
from services.payment.settings import PaymentSettings
from tests.support.infra import DATABASE_URL, drop_schemas, provision_schema, service_pool, unique_name

NOW = datetime.now(UTC)
SHIPPED = Path(__file__).resolve().parents[2] / "services" / "payment" / "tariffs"


@pytest.fixture
def schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """flexctl reads PaymentSettings from the environment: a schema of its own, provisioned for
    payment's role as `make up` provisions payment's."""
    name = unique_name("t_flexctl_pay")
    asyncio.run(provision_schema("payment", name))
    monkeypatch.setenv("SCHEMA_NAME", name)
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    monkeypatch.setattr(cli_support.console, "width", 250)
    yield name
    asyncio.run(drop_schemas(name))


def wrap(event: Event, application_id: UUID) -> Envelope:
    return Envelope.wrap(event, stream_id=f"application-{application_id}", stream_version=1, producer="enrollment",
                         correlation_id=f"corr-{application_id}")  # fmt: skip


async def service_on(schema: str) -> PaymentService:
    pool = await service_pool("payment", schema, 1, 2)
    await migrate(pool, schema, migrations_from("services.payment"))
    return PaymentService(OpenStorage(pool, EventStore("payment", schema)), load_rules(PaymentSettings()))


async def open_accounts(schema: str, approvals: list[datetime]) -> list[UUID]:
    """One approved applicant per approval time; their account ids."""
    service = await service_on(schema)
    try:
        accounts = []
        for decided_at in approvals:
            person, application = uuid4(), uuid4()
            example = EnrollmentSubmitted.model_json_schema()["examples"][0]
            personal = seal(new_data_key(), person, {"name": "李四", "birth_date": "1988-01-02",
                                                     "phone": "+8613900139000"})  # fmt: skip
            submitted = EnrollmentSubmitted.model_validate(
                {**example, "application_id": str(application), "applicant_id": str(person), "pension_tier": 2,
                 "medical_tier": 5, "personal": personal.model_dump(mode="json")}
            )  # fmt: skip
            approved = ApplicationApproved(application_id=application, applicant_id=person, attempt=1,
                                           case_id=uuid4(), decided_at=decided_at)  # fmt: skip
            await service.note_submission(submitted, wrap(submitted, application))
            assert await service.open_account(approved, wrap(approved, application)) is not None
            accounts.append(domain.account_id_for(person))
        return accounts
    finally:
        await service.pool.close()


async def bill_one(schema: str, account_id: UUID, month: Month) -> int:
    service = await service_on(schema)
    try:
        return len(await service.bill_account(account_id, month))
    finally:
        await service.pool.close()


async def issued(schema: str) -> list[tuple[str, str, int]]:
    """(account, period, amount) of every BillIssued in the store, and check the read model agrees."""
    pool = await service_pool("payment", schema, 1, 1)
    try:
        rows = await pool.fetch("SELECT data FROM events WHERE event_type = 'BillIssued' ORDER BY position")
        bills = sorted((r["data"]["account_id"], r["data"]["period"], r["data"]["amount_fen"]) for r in rows)
        table = await pool.fetch("SELECT account_id, period, amount_fen FROM bills")
        assert sorted((str(r["account_id"]), r["period"], r["amount_fen"]) for r in table) == bills
        return bills
    finally:
        await pool.close()


def cell(output: str, label: str) -> str:
    """The value of the report table's row `label`."""
    [line] = [line for line in output.splitlines() if label in line]
    return line.replace("│", " ").split()[-1]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(flexctl.app, ["payment", "issue-bills", *args])
    return result.exit_code, result.output


def test_issue_bills_twice_issues_once_from_each_approval_month(schema: str) -> None:
    this_month = Month.at(NOW)
    earlier = NOW - timedelta(days=40)
    accounts = asyncio.run(open_accounts(schema, [NOW, earlier, NOW]))
    expected = {
        (str(accounts[0]), str(this_month)),
        *((str(accounts[1]), str(m)) for m in domain.months(Month.at(earlier), this_month)),
        (str(accounts[2]), str(this_month)),
    }
    # A run that stopped after its first account: that account's bills are there already.
    assert asyncio.run(bill_one(schema, accounts[1], this_month)) == len(expected) - 2

    code, output = run("--month", str(this_month))
    assert code == 0, output
    assert "accounts visited" in output and f"bills of {this_month}" in output
    # resumed: the two accounts the stopped run had not reached, one month each
    assert cell(output, "bills issued now") == "2" and cell(output, "accounts visited") == "3"
    first = asyncio.run(issued(schema))
    assert {(a, p) for a, p, _ in first} == expected and len(first) == len(expected)
    tariff = load_rules(PaymentSettings()).tariffs
    for _, period, amount in first:
        year = tariff.of_year(Month.parse(period).year)
        assert amount == year.pension_fen(2) + year.medical_fen(5) and type(amount) is int

    code, output = run()  # again, this month by default: nothing more
    assert code == 0, output
    assert cell(output, "bills issued now") == "0" and cell(output, "accounts visited") == "3"
    assert asyncio.run(issued(schema)) == first


def test_a_month_without_a_tariff_is_refused_and_bills_nothing(
    schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(open_accounts(schema, [NOW]))
    this_year = Month.at(NOW).year
    # The operator's folder holds another year only.
    text = (SHIPPED / f"{this_year}.toml").read_text(encoding="utf-8")
    other = text.replace(f"year = {this_year}", f"year = {this_year - 5}")
    (tmp_path / f"{this_year - 5}.toml").write_text(other, encoding="utf-8")
    monkeypatch.setenv("PAYMENT_TARIFFS_DIR", str(tmp_path))
    code, output = run()
    assert code == 1, output
    assert "tariff_missing" in output and f"{this_year}年度的缴费标准" in output
    assert asyncio.run(issued(schema)) == []


def test_a_month_too_far_ahead_or_malformed_is_refused(schema: str) -> None:
    code, output = run("--month", str(Month.at(NOW).next().next()))
    assert code == 1 and "period_in_future" in output
    code, output = run("--month", "2026-13")
    assert code == 1 and "invalid_period" in output

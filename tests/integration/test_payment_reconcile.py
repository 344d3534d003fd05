"""`flexctl payment reconcile` on the real database: two bills settled through the real WeChat Pay
notification route (signed as tests/integration/test_payment_settlement.py signs them), then the
channel's statement of that day compared by the real CLI: one line missing, one extra and one
differing is exit 1 with each difference listed; a clean statement is exit 0; both runs recorded
(the table and ReconciliationRunRecorded); a statement with a fractional fen is refused, unrecorded."""

import asyncio
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from typer.testing import CliRunner

from kernel.clock import local_date
from ops import cli_support, flexctl
from tests.support.infra import DATABASE_URL
from tests.support.payment import Keys, Payment, billed_person, post, wechat

# The settlement tests' fixtures (their keys, the payment service in-process) come from
# tests/integration/conftest.py: `keys` and `payment`.

HEADER = "transaction_id,out_trade_no,amount,settled_at"


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


async def reconcile(tmp_path: Path, day: str, *lines: str) -> tuple[int, str]:
    """The real CLI, in a thread of its own: it runs its own event loop (asyncio.run)."""
    path = tmp_path / f"wechat-{uuid4().hex[:8]}.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    args = ["payment", "reconcile", "--channel", "wechat", "--date", day, str(path)]
    result = await asyncio.to_thread(CliRunner().invoke, flexctl.app, args)
    return result.exit_code, result.output


async def runs(payment: Payment) -> list[dict[str, Any]]:
    rows = await payment.runtime.pool.fetch(f'SELECT * FROM "{payment.schema}".reconciliation_runs ORDER BY ran_at')
    return [dict(r) for r in rows]


async def test_reconcile_lists_every_difference_and_records_each_run(
    payment: Payment, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEMA_NAME", payment.schema)
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    monkeypatch.setattr(cli_support.console, "width", 250)
    _, [first, second] = await billed_person(payment, months_back=1)
    txn_first, txn_second = "4200" + uuid4().hex[:24], "4200" + uuid4().hex[:24]
    for bill, txn in ((first, txn_first), (second, txn_second)):
        answer = await post(payment, "wechat", wechat(keys, bill["bill_id"], bill["amount_fen"], txn))
        assert answer.status_code == 204, answer.text
    paid_at = await payment.runtime.pool.fetch(f'SELECT paid_at FROM "{payment.schema}".payments')
    [day] = {local_date(r["paid_at"]) for r in paid_at}  # both settled today in Changzhou
    when = f"{day.isoformat()}T10:00:00+08:00"
    a, b = first["amount_fen"], second["amount_fen"]
    extra = "4200" + uuid4().hex[:24]

    code, output = await reconcile(
        tmp_path, day.isoformat(),
        f"{txn_first},{first['bill_id']},{yuan(a + 1)},{when}",  # differs by one fen
        f"{extra},{uuid4()},{yuan(500)},{when}",  # never taken here
    )  # fmt: skip
    assert code == 1, output
    assert "amount_differs" in output and "not_on_statement" in output and "not_here" in output, output
    assert txn_first in output and txn_second in output and extra in output
    [run] = await runs(payment)
    assert run["channel"] == "wechat" and run["statement_date"] == day and run["difference_count"] == 3
    assert (run["matched"], run["ours_count"], run["ours_fen"]) == (0, 2, a + b)
    assert (run["statement_count"], run["statement_fen"]) == (2, a + 1 + 500)
    kinds = {d["transaction_id"]: (d["kind"], d["ours_fen"], d["theirs_fen"]) for d in run["differences"]}
    assert kinds == {
        txn_first: ("amount_differs", a, a + 1),
        txn_second: ("not_on_statement", b, None),
        extra: ("not_here", None, 500),
    }
    [event] = await payment.events("ReconciliationRunRecorded", run_id=str(run["run_id"]))
    assert event["stream_id"] == f"reconciliation-run-{run['run_id']}" and len(event["differences"]) == 3

    code, output = await reconcile(
        tmp_path, day.isoformat(),
        f"{txn_second},{second['bill_id']},{yuan(b)}1,{when}",  # a tenth of a fen more: not whole fen
    )  # fmt: skip
    assert code == 2 and "invalid_statement" in output and "第2行" in output, output
    assert len(await runs(payment)) == 1  # a refused statement records nothing

    code, output = await reconcile(
        tmp_path, day.isoformat(),
        f"{txn_second},{second['bill_id']},{yuan(b)},{when}",
        f"{txn_first},{first['bill_id']},{yuan(a)},{when}",
    )  # fmt: skip
    assert code == 0, output
    assert "the statement matches" in output
    clean = (await runs(payment))[-1]
    assert clean["difference_count"] == 0 and clean["differences"] == []
    assert (clean["matched"], clean["matched_fen"], clean["statement_fen"]) == (2, a + b, a + b)
    assert len(await payment.events("ReconciliationRunRecorded")) == 2

    # The day before in Changzhou holds none of these payments: the whole statement is on it alone.
    before = day.fromordinal(day.toordinal() - 1).isoformat()
    code, output = await reconcile(tmp_path, before, f"{txn_first},{first['bill_id']},{yuan(a)},{when}")
    assert code == 1 and "not_here" in output and "not_on_statement" not in output, output

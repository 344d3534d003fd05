"""payment's pure reconciliation of a channel's daily statement (issue 8, "Downstream"): read the
statement CSV (format: services/payment/README.md, "Reconciliation") and compare it, both ways,
with what payment took on that channel that day. No I/O, no clock: the service layer reads the
payments, runs the comparison and records the run (`ReconciliationRunRecorded`).

Lines are matched on the channel's transaction id (the key of exactly-once settlement,
settlement.py). Money is integer fen throughout: the statement's yuan are converted exactly,
and an amount that is not a whole number of fen refuses the whole statement.
"""

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import ClassVar, Literal, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.events.base import Event, Fen, NonEmptyStr, Sha256Hex, UtcDatetime
from contracts.events.payment import Channel
from kernel.clock import SHANGHAI

CHANNELS: tuple[str, ...] = get_args(Channel)
COLUMNS = ("transaction_id", "out_trade_no", "amount", "settled_at")
# ASCII digits only: `\d` would take full-width and other scripts' digits, which Decimal reads too.
_YUAN = re.compile(r"[0-9]+(\.[0-9]+)?")

DifferenceKind = Literal["not_on_statement", "not_here", "amount_differs", "duplicate_on_statement"]


class StatementRefused(ValueError):
    """The statement cannot be read: nothing is compared and nothing is recorded."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class StatementLine:
    line: int  # the line in the file (the header is line 1)
    transaction_id: str
    out_trade_no: str
    amount_fen: int
    settled_at: datetime


@dataclass(frozen=True)
class Taken:
    """One payment taken here on the channel (a settlement or an overpayment: money either way)."""

    transaction_id: str
    out_trade_no: str
    amount_fen: int
    paid_at: datetime


class Difference(BaseModel):
    """One difference; `ours_fen` is what payment took, `theirs_fen` what the statement says (None on
    the side that has no such transaction)."""

    model_config = ConfigDict(frozen=True)

    kind: DifferenceKind
    transaction_id: NonEmptyStr
    out_trade_no: str
    ours_fen: Fen | None
    theirs_fen: Fen | None
    statement_line: int | None = None


@dataclass(frozen=True)
class Comparison:
    matched: int
    matched_fen: int
    ours_count: int
    ours_fen: int
    statement_count: int
    statement_fen: int
    differences: tuple[Difference, ...]


class ReconciliationRunRecorded(Event):
    """A channel's daily statement compared with payment's own payments of that day (Asia/Shanghai):
    the counts, the totals in integer fen and every difference, for an auditor to read later."""

    public: ClassVar[bool] = False

    run_id: UUID
    channel: Channel
    statement_date: date
    statement_file: str
    statement_sha256: Sha256Hex = Field(description="The statement file's digest, to tell which file was compared.")
    matched: int = Field(ge=0)
    matched_fen: Fen
    ours_count: int = Field(ge=0)
    ours_fen: Fen
    statement_count: int = Field(ge=0)
    statement_fen: Fen
    differences: list[Difference]
    ran_at: UtcDatetime


def run_stream(run_id: UUID) -> str:
    return f"reconciliation-run-{run_id}"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The instants [start, end) of a calendar day in Changzhou (kernel.clock)."""
    start = datetime.combine(day, time(), SHANGHAI)
    return start, datetime.combine(day + timedelta(days=1), time(), SHANGHAI)


def amount_fen(text: str) -> int:
    """Yuan, as the statement writes them ("123.45"), to integer fen, exactly; a negative, zero,
    malformed or fractional-fen amount ("0.005") is refused."""
    if not _YUAN.fullmatch(text):
        raise ValueError(f"amount {text!r} is not yuan written as digits, a dot and the fen")
    fen = Decimal(text) * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"amount {text!r} is not a whole number of fen")
    if fen <= 0:
        raise ValueError(f"amount {text!r} is not positive")
    return int(fen)


def _refused(line: int, why: str) -> StatementRefused:
    return StatementRefused("invalid_statement", f"对账单第{line}行无法读取：{why}")


def parse_statement(text: str) -> list[StatementLine]:
    """The lines of a statement CSV: a header naming exactly COLUMNS (in any order), then one line
    per transaction. Any bad line refuses the whole statement, naming its line."""
    rows = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = next(rows, None)
    if header is None or sorted(h.strip() for h in header) != sorted(COLUMNS):
        raise StatementRefused("invalid_statement", f"对账单首行应为列名：{','.join(COLUMNS)}。")
    where = {name.strip(): i for i, name in enumerate(header)}
    out: list[StatementLine] = []
    for number, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue  # a blank line (a trailing newline) carries no transaction
        if len(row) != len(COLUMNS):
            raise _refused(number, f"应有{len(COLUMNS)}列，实有{len(row)}列")
        cell = {name: row[i].strip() for name, i in where.items()}
        if not cell["transaction_id"] or not cell["out_trade_no"]:
            raise _refused(number, "transaction_id 和 out_trade_no 不能为空")
        try:
            fen = amount_fen(cell["amount"])
        except ValueError as exc:
            raise _refused(number, f"金额须为以元计、精确到分的正数（{exc}）") from exc
        try:
            settled_at = datetime.fromisoformat(cell["settled_at"])
        except ValueError as exc:
            raise _refused(number, "settled_at 须为带时区的 ISO 8601 时间") from exc
        if settled_at.tzinfo is None:
            raise _refused(number, "settled_at 须为带时区的 ISO 8601 时间")
        out.append(StatementLine(number, cell["transaction_id"], cell["out_trade_no"], fen, settled_at))
    return out


def compare(ours: Iterable[Taken], statement: Sequence[StatementLine]) -> Comparison:
    """Every difference both ways, matched on the transaction id. A transaction listed twice on the
    statement is compared once; each further line is a `duplicate_on_statement` difference. So both
    totals add up: ours_fen = matched_fen + the ours_fen of the differences, and statement_fen =
    matched_fen + their theirs_fen."""
    taken = {t.transaction_id: t for t in ours}
    seen: set[str] = set()
    differences: list[Difference] = []
    matched = matched_fen = 0
    for line in statement:
        if line.transaction_id in seen:
            differences.append(Difference(kind="duplicate_on_statement", transaction_id=line.transaction_id,
                                          out_trade_no=line.out_trade_no, ours_fen=None, theirs_fen=line.amount_fen,
                                          statement_line=line.line))  # fmt: skip
            continue
        seen.add(line.transaction_id)
        here = taken.get(line.transaction_id)
        if here is None:
            differences.append(Difference(kind="not_here", transaction_id=line.transaction_id,
                                          out_trade_no=line.out_trade_no, ours_fen=None, theirs_fen=line.amount_fen,
                                          statement_line=line.line))  # fmt: skip
        elif here.amount_fen != line.amount_fen:
            differences.append(Difference(kind="amount_differs", transaction_id=line.transaction_id,
                                          out_trade_no=here.out_trade_no, ours_fen=here.amount_fen,
                                          theirs_fen=line.amount_fen, statement_line=line.line))  # fmt: skip
        else:
            matched += 1
            matched_fen += line.amount_fen
    for t in sorted(taken.values(), key=lambda t: (t.paid_at, t.transaction_id)):
        if t.transaction_id not in seen:
            differences.append(
                Difference(kind="not_on_statement", transaction_id=t.transaction_id, out_trade_no=t.out_trade_no,
                           ours_fen=t.amount_fen, theirs_fen=None)
            )  # fmt: skip
    return Comparison(
        matched=matched,
        matched_fen=matched_fen,
        ours_count=len(taken),
        ours_fen=sum(t.amount_fen for t in taken.values()),
        statement_count=len(statement),
        statement_fen=sum(line.amount_fen for line in statement),
        differences=tuple(differences),
    )

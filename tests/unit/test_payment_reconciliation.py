"""Reading a channel's daily statement and comparing it with the payments taken here
(services/payment/reconciliation.py; format: services/payment/README.md, "Reconciliation"):
every kind of difference, duplicates, exact yuan to fen, and totals that add up on both sides."""

from datetime import UTC, date, datetime, timedelta

import pytest

from services.payment.reconciliation import (
    COLUMNS,
    Comparison,
    StatementLine,
    StatementRefused,
    Taken,
    amount_fen,
    compare,
    day_bounds,
    parse_statement,
)

HEADER = ",".join(COLUMNS)
AT = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


def statement(*lines: str) -> str:
    return "\n".join([HEADER, *lines]) + "\n"


def taken(txn: str, fen: int, bill: str = "bill") -> Taken:
    return Taken(txn, bill, fen, AT)


def line(txn: str, fen: int, number: int = 2, bill: str = "bill") -> StatementLine:
    return StatementLine(number, txn, bill, fen, AT)


def assert_totals_add_up(found: Comparison) -> None:
    assert found.ours_fen == found.matched_fen + sum(d.ours_fen or 0 for d in found.differences)
    assert found.statement_fen == found.matched_fen + sum(d.theirs_fen or 0 for d in found.differences)


def test_a_statement_is_read_in_integer_fen_whatever_the_column_order() -> None:
    text = "\ufeffamount,settled_at,transaction_id,out_trade_no\r\n1490.00,2026-03-02T09:30:00+08:00,T1,B1\r\n\r\n"
    [read] = parse_statement(text)
    assert read == StatementLine(2, "T1", "B1", 149000, datetime(2026, 3, 2, 1, 30, tzinfo=UTC))
    assert type(read.amount_fen) is int


@pytest.mark.parametrize(("yuan", "fen"), [("0.01", 1), ("1490.00", 149000), ("12.3", 1230), ("7", 700),
                                           ("0.10", 10), ("1.230", 123)])  # fmt: skip
def test_yuan_become_fen_exactly(yuan: str, fen: int) -> None:
    assert amount_fen(yuan) == fen


@pytest.mark.parametrize("yuan", ["0.005", "1490.001", "0.00", "-1.00", "1e3", "1,490.00", "", "NaN", "１.00"])
def test_an_amount_that_is_not_a_positive_whole_number_of_fen_is_refused(yuan: str) -> None:
    with pytest.raises(ValueError):
        amount_fen(yuan)


def test_a_fractional_fen_refuses_the_whole_statement_naming_its_line() -> None:
    text = statement("T1,B1,1.00,2026-03-02T09:30:00+08:00", "T2,B2,1490.005,2026-03-02T09:31:00+08:00")
    with pytest.raises(StatementRefused) as refused:
        parse_statement(text)
    assert refused.value.code == "invalid_statement" and "第3行" in refused.value.detail


@pytest.mark.parametrize(
    "text",
    [
        "",
        "transaction_id,out_trade_no,amount_fen,settled_at\nT1,B1,100,2026-03-02T09:30:00+08:00\n",
        statement("T1,B1,1.00"),
        statement(",B1,1.00,2026-03-02T09:30:00+08:00"),
        statement("T1,B1,1.00,2026-03-02T09:30:00"),  # no zone: which day would it be?
        statement("T1,B1,1.00,yesterday"),
    ],
)
def test_a_malformed_statement_is_refused(text: str) -> None:
    with pytest.raises(StatementRefused):
        parse_statement(text)


def test_a_clean_statement_matches_everything() -> None:
    found = compare([taken("T1", 100), taken("T2", 250)], [line("T2", 250), line("T1", 100, 3)])
    assert found.differences == () and found.matched == 2 and found.matched_fen == 350
    assert (found.ours_count, found.statement_count) == (2, 2)
    assert_totals_add_up(found)


def test_every_kind_of_difference_both_ways() -> None:
    ours = [taken("SAME", 100), taken("MISSING", 200, "B-missing"), taken("DIFF", 300, "B-diff")]
    theirs = [line("SAME", 100, 2), line("EXTRA", 400, 3, "B-extra"), line("DIFF", 301, 4)]
    found = compare(ours, theirs)
    by_kind = {d.kind: d for d in found.differences}
    assert set(by_kind) == {"not_on_statement", "not_here", "amount_differs"} and len(found.differences) == 3
    missing, extra, differs = by_kind["not_on_statement"], by_kind["not_here"], by_kind["amount_differs"]
    assert (missing.transaction_id, missing.out_trade_no, missing.ours_fen, missing.theirs_fen) == (
        "MISSING", "B-missing", 200, None)  # fmt: skip
    assert (extra.transaction_id, extra.out_trade_no, extra.ours_fen, extra.theirs_fen, extra.statement_line) == (
        "EXTRA", "B-extra", None, 400, 3)  # fmt: skip
    assert (differs.transaction_id, differs.ours_fen, differs.theirs_fen) == ("DIFF", 300, 301)
    assert differs.statement_line == 4
    assert found.matched == 1 and found.matched_fen == 100
    assert (found.ours_fen, found.statement_fen) == (600, 801)
    assert_totals_add_up(found)


def test_a_transaction_listed_twice_is_compared_once_and_the_repeat_is_a_difference() -> None:
    found = compare([taken("T1", 100)], [line("T1", 100, 2), line("T1", 100, 3), line("T1", 100, 4)])
    assert found.matched == 1 and found.statement_count == 3 and found.statement_fen == 300
    assert [(d.kind, d.statement_line, d.theirs_fen) for d in found.differences] == [
        ("duplicate_on_statement", 3, 100), ("duplicate_on_statement", 4, 100)]  # fmt: skip
    assert_totals_add_up(found)


def test_a_duplicate_of_a_transaction_we_never_took_is_one_extra_and_one_duplicate() -> None:
    found = compare([], [line("X", 500, 2), line("X", 500, 3)])
    assert [d.kind for d in found.differences] == ["not_here", "duplicate_on_statement"]
    assert found.matched == 0 and found.ours_fen == 0
    assert_totals_add_up(found)


def test_nothing_on_either_side_is_clean() -> None:
    found = compare([], parse_statement(HEADER + "\n"))
    assert found.differences == () and found.statement_count == 0 and found.statement_fen == 0


def test_the_day_is_the_calendar_day_in_changzhou() -> None:
    start, end = day_bounds(date(2026, 3, 2))
    assert start == datetime(2026, 3, 1, 16, 0, tzinfo=UTC) and end - start == timedelta(days=1)

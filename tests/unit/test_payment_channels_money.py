"""Money is integer fen from the wire to the verified notification; no float ever holds an amount
(issue 8, "Money is integer fen everywhere")."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.problems import Problem
from services.payment.channels import ChannelNotification, HmacVerifier, fen_to_yuan, parse_yuan, sign

NOW = datetime(2025, 3, 3, 3, 10, tzinfo=UTC)
SECRET = "a-test-secret-of-more-than-32-bytes-for-hmac"


@given(st.integers(min_value=1, max_value=10**15))
def test_yuan_text_and_fen_round_trip_exactly(fen: int) -> None:
    text = fen_to_yuan(fen)
    back = parse_yuan(text)
    assert back == fen and type(back) is int
    assert Decimal(text) * 100 == fen


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999999.99"), places=2))
def test_any_two_decimal_amount_reads_to_the_exact_fen(amount: Decimal) -> None:
    assert parse_yuan(format(amount, "f")) == int(amount * 100)


@given(st.integers(min_value=1, max_value=10**12).filter(lambda thousandths: thousandths % 10 != 0))
def test_a_fraction_of_a_fen_is_refused_never_rounded(thousandths: int) -> None:
    text = f"{thousandths // 1000}.{thousandths % 1000:03d}"
    with pytest.raises(Problem) as caught:
        parse_yuan(text)
    assert (caught.value.status, caught.value.code) == (422, "invalid_notification")


@pytest.mark.parametrize(
    "text",
    [
        "0.001",
        "0",
        "0.00",
        "-1.00",
        "+1.00",
        "1e3",
        "1E+2",
        " 1.00",
        "1.00 ",
        "1.",
        ".5",
        "1,00",
        "NaN",
        "Infinity",
        "１.００",
        "01.00",
        "",
        "1.000",
    ],
)
def test_anything_but_plain_yuan_with_at_most_two_decimals_is_refused(text: str) -> None:
    with pytest.raises(Problem) as caught:
        parse_yuan(text, "total_amount")
    assert caught.value.code == "invalid_notification" and "total_amount" in caught.value.detail


@pytest.mark.parametrize(
    ("text", "fen"), [("0.01", 1), ("0.1", 10), ("12.34", 1234), ("1700", 170000), ("1700.00", 170000)]
)
def test_plain_yuan_reads_to_fen(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=0.01, max_value=1e9).filter(lambda f: f != int(f)))
def test_a_float_amount_on_the_wire_is_refused_not_converted(amount: float) -> None:
    body = json.dumps(
        {
            "transaction_id": "T1",
            "out_trade_no": "B1",
            "amount_fen": amount,
            "paid_at": "2025-03-03T11:09:58+08:00",
        }
    ).encode()
    timestamp = str(int(NOW.timestamp()))
    headers = {"X-Flexenroll-Timestamp": timestamp, "X-Flexenroll-Signature": sign(SECRET, timestamp, body)}
    with pytest.raises(Problem) as caught:
        HmacVerifier("unionpay_pos", SECRET).verify(headers, body, now=NOW)
    assert caught.value.code == "invalid_notification"


@pytest.mark.parametrize("amount", [1700.0, Decimal("1700"), True, "1700", 0, -1])
def test_a_notification_holds_nothing_but_a_positive_int(amount: object) -> None:
    with pytest.raises(TypeError):
        ChannelNotification(
            channel="wechat",
            transaction_id="4200001234202503031234567890",
            out_trade_no="B1",
            amount_fen=amount,  # type: ignore[arg-type]
            paid_at=NOW,
        )


def test_fen_to_yuan_takes_only_int() -> None:
    assert fen_to_yuan(0) == "0.00" and fen_to_yuan(5) == "0.05" and fen_to_yuan(170000) == "1700.00"
    with pytest.raises(TypeError):
        fen_to_yuan(1.5)  # type: ignore[arg-type]

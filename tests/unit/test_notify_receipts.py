"""notify's payment receipt (issue 8, "Downstream"): exact yuan from integer fen, the month of the
bill, the channel in Chinese, the help line for payment questions (guide Q8), and the ids and the
replay guard's age of the intent."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import get_args
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.events.payment import Channel, PaymentSettled
from services.notify.domain import (
    CHANNEL_NAMES,
    cause_of,
    intent_for_decision,
    intent_for_settlement,
    period_text,
    sms_id_for,
    stale_note,
    yuan,
)
from services.notify.templates import load_templates
from tests.support.notify import decision


def settlement(amount_fen: int = 12345, channel: Channel = "wechat", payer: bool = False) -> PaymentSettled:
    return PaymentSettled(
        payment_id=uuid4(),
        bill_id=uuid4(),
        account_id=uuid4(),
        insured_person_id=uuid4(),
        payer_id="wx-oFz3a5b0Xq" if payer else None,
        payer_name_masked="李*" if payer else None,
        channel=channel,
        channel_txn_id="4200001234202503031234567890",
        amount_fen=amount_fen,
        bank="中国银行" if channel in ("bank_counter", "bank_withholding") else None,
        settled_at=datetime(2025, 3, 3, 3, 10, tzinfo=UTC),
    )


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_any_fen_amount_is_the_exact_yuan_with_two_decimals(fen: int) -> None:
    text = yuan(fen)
    assert Decimal(text) == Decimal(fen) / 100  # exact: no float rounding anywhere
    whole, cents = text.lstrip("-").split(".")
    assert len(cents) == 2 and whole.isdigit() and (whole == "0" or not whole.startswith("0"))
    assert text.startswith("-") == (fen < 0)


@pytest.mark.parametrize(
    ("fen", "text"),
    [(12345, "123.45"), (170000, "1700.00"), (1, "0.01"), (10, "0.10"), (99, "0.99"), (100, "1.00"), (0, "0.00")],
)
def test_known_amounts(fen: int, text: str) -> None:
    assert yuan(fen) == text


def test_the_bill_period_reads_as_year_and_month() -> None:
    assert period_text("2025-03") == "2025年03月" and period_text("2026-12") == "2026年12月"


def test_every_channel_of_the_contract_has_its_chinese_name() -> None:
    assert set(CHANNEL_NAMES) == set(get_args(Channel))
    assert CHANNEL_NAMES == {
        "wechat": "微信",
        "alipay": "支付宝",
        "unionpay_pos": "银联POS",
        "bank_counter": "银行柜面",
        "bank_withholding": "银行卡代扣",
    }


def test_the_receipt_text_month_amount_channel_and_help_line() -> None:
    templates = load_templates(None, "常州人社")
    settled = settlement(12345, "alipay")
    cause = uuid4()
    intent = intent_for_settlement(cause, settled, "2025-03", templates)
    assert intent.template == "payment_receipt"
    assert intent.params == {"period": "2025年03月", "amount": "123.45", "channel": "支付宝"}
    assert intent.text == (
        "【常州人社】您已成功缴纳2025年03月灵活就业社会保险费123.45元（缴费渠道：支付宝）。如有缴费疑问请致电96888732。"
    )
    assert intent.sms_id == sms_id_for(cause) and intent.cause_event_id == cause
    assert intent.payment_id == settled.payment_id and intent.case_id is None and intent.application_id is None
    assert intent.decided_at == settled.settled_at and cause_of(intent) == "settlement"


@pytest.mark.parametrize("channel", get_args(Channel))
def test_someone_paying_for_another_still_texts_the_insured_person(channel: Channel) -> None:
    settled = settlement(50000, channel, payer=True)
    intent = intent_for_settlement(uuid4(), settled, "2025-12", load_templates(None, "常州人社"))
    assert intent.recipient_id == settled.insured_person_id
    assert f"2025年12月灵活就业社会保险费500.00元（缴费渠道：{CHANNEL_NAMES[channel]}）" in intent.text
    assert "李" not in intent.text  # the payer is not named in the insured person's receipt


def test_the_replay_guard_note_names_what_was_too_old() -> None:
    decided_intent = intent_for_decision(uuid4(), decision("approved"), load_templates(None, "常州人社"))
    assert cause_of(decided_intent) == "decision"
    limit = timedelta(hours=72)
    assert stale_note(limit, "first_seen", "settlement") == (
        "stale_settlement: settlement older than 72 h when first seen: not texted (replay guard)"
    )
    assert stale_note(limit, "first_seen").startswith("stale_decision: decision older than 72 h")

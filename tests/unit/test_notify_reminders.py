"""notify's reminder of an overdue bill and its message about a failed bank withholding collection
(issue 8, "Downstream"): the texts (month, exact yuan from integer fen, due date, bank, the reason in
Chinese, the help line for payment questions of guide Q8), the keys that make each unique (one
reminder per bill, one message per collection request), and the replay guard's age and note."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import get_args
from uuid import uuid4

import pytest

from contracts.events.payment import WithholdingFailureReason
from services.notify.domain import (
    CAUSES,
    REASON_NAMES,
    Subject,
    cause_of,
    date_text,
    intent_for_failed_collection,
    intent_for_overdue_bill,
    is_stale,
    sms_id_for,
    stale_note,
)
from services.notify.templates import REQUIRED, TemplateError, load_templates
from tests.support.notify import bill_overdue, collection_failed

TEMPLATES = load_templates(None, "常州人社")
LIMIT = timedelta(hours=72)


def test_the_overdue_reminder_names_month_amount_due_date_and_help_line() -> None:
    overdue = bill_overdue(amount_fen=123456, period="2025-03", due_on=date(2025, 4, 15))
    cause = uuid4()
    intent = intent_for_overdue_bill(cause, overdue, TEMPLATES)
    assert intent.template == "bill_overdue"
    assert intent.params == {"period": "2025年03月", "amount": "1234.56", "due": "2025年04月15日"}
    assert intent.text == (
        "【常州人社】您2025年03月灵活就业社会保险费1234.56元已超过缴费截止日2025年04月15日，尚未缴纳。"
        "请尽快通过微信或支付宝搜索“江苏税务社保缴纳”等方式缴费，如已缴纳请忽略。如有缴费疑问请致电96888732。"
    )
    assert intent.sms_id == sms_id_for(cause) and intent.cause_event_id == cause
    assert intent.recipient_id == overdue.insured_person_id
    assert intent.case_id is None and intent.application_id is None and intent.payment_id is None


def test_one_reminder_per_bill_whatever_the_event_id() -> None:
    overdue = bill_overdue()
    first, again = (intent_for_overdue_bill(uuid4(), overdue, TEMPLATES) for _ in range(2))
    assert first.sms_id != again.sms_id  # a re-publication is another event...
    assert first.subject == again.subject == Subject("overdue_bill", overdue.bill_id)  # ...about the same bill
    assert first.subject is not None and first.subject.key == f"overdue_bill:{overdue.bill_id}"
    assert first.bill_id == overdue.bill_id
    other = intent_for_overdue_bill(uuid4(), bill_overdue(), TEMPLATES)
    assert other.subject != first.subject


def test_the_failed_collection_names_bank_reason_next_run_and_other_channels() -> None:
    failed = collection_failed(amount_fen=170000, reason="insufficient_funds", bank="工商银行", period="2025-03")
    cause = uuid4()
    intent = intent_for_failed_collection(cause, failed, TEMPLATES)
    assert intent.template == "withholding_failed"
    assert intent.params == {"period": "2025年03月", "amount": "1700.00", "bank": "工商银行", "reason": "账户余额不足"}
    assert intent.text == (
        "【常州人社】您2025年03月灵活就业社会保险费1700.00元银行卡代扣未成功（工商银行：账户余额不足）。"
        "下次代扣时将再次尝试扣款，您也可以通过微信或支付宝搜索“江苏税务社保缴纳”缴费。如有缴费疑问请致电96888732。"
    )
    assert intent.sms_id == sms_id_for(cause) and intent.recipient_id == failed.insured_person_id
    assert intent.case_id is None and intent.application_id is None and intent.payment_id is None


def test_two_failed_collections_of_one_bill_are_two_messages_each_unique_per_request() -> None:
    bill_id = uuid4()
    first, second = collection_failed(bill_id=bill_id), collection_failed(bill_id=bill_id)
    one, two = (intent_for_failed_collection(uuid4(), f, TEMPLATES) for f in (first, second))
    assert one.subject == Subject("failed_collection", first.collection_request_id)
    assert two.subject == Subject("failed_collection", second.collection_request_id)
    assert one.subject != two.subject and one.bill_id == two.bill_id == bill_id
    again = intent_for_failed_collection(uuid4(), first, TEMPLATES)  # re-published
    assert again.subject == one.subject


def test_a_reminder_and_a_failure_of_the_same_bill_do_not_share_a_key() -> None:
    bill_id = uuid4()
    reminder = intent_for_overdue_bill(uuid4(), bill_overdue(bill_id=bill_id), TEMPLATES)
    failure = intent_for_failed_collection(uuid4(), collection_failed(bill_id=bill_id), TEMPLATES)
    assert reminder.subject is not None and failure.subject is not None
    assert reminder.subject.key != failure.subject.key


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("insufficient_funds", "账户余额不足"),
        ("agreement_not_found", "扣缴协议不存在或已解除"),
        ("card_not_activated", "社保卡金融功能未激活"),
        ("account_abnormal", "账户状态异常"),
        ("refused", "银行拒绝扣款请求"),
        ("other", "其他原因"),
    ],
)
def test_every_reason_reads_in_chinese(reason: WithholdingFailureReason, words: str) -> None:
    intent = intent_for_failed_collection(uuid4(), collection_failed(reason=reason, bank="中国银行"), TEMPLATES)
    assert intent.params["reason"] == words
    assert f"（中国银行：{words}）" in intent.text


def test_every_reason_of_the_contract_has_its_words() -> None:
    assert set(REASON_NAMES) == set(get_args(WithholdingFailureReason))


@pytest.mark.parametrize(("fen", "text"), [(1, "0.01"), (10, "0.10"), (99, "0.99"), (100000, "1000.00")])
def test_amounts_are_exact_yuan_from_integer_fen(fen: int, text: str) -> None:
    reminder = intent_for_overdue_bill(uuid4(), bill_overdue(amount_fen=fen), TEMPLATES)
    failure = intent_for_failed_collection(uuid4(), collection_failed(amount_fen=fen), TEMPLATES)
    assert reminder.params["amount"] == failure.params["amount"] == text
    assert f"灵活就业社会保险费{text}元" in reminder.text and f"灵活就业社会保险费{text}元" in failure.text


def test_the_due_date_reads_as_year_month_day() -> None:
    assert date_text(date(2025, 4, 15)) == "2025年04月15日"
    assert date_text(date(2026, 1, 5)) == "2026年01月05日"


def test_the_replay_guard_counts_from_overdue_at_and_failed_at() -> None:
    overdue_at = datetime(2025, 4, 16, 1, tzinfo=UTC)
    failed_at = datetime(2025, 4, 5, 2, tzinfo=UTC)
    reminder = intent_for_overdue_bill(uuid4(), bill_overdue(overdue_at=overdue_at), TEMPLATES)
    failure = intent_for_failed_collection(uuid4(), collection_failed(failed_at=failed_at), TEMPLATES)
    assert reminder.decided_at == overdue_at and failure.decided_at == failed_at
    assert not is_stale(reminder.decided_at, overdue_at + LIMIT, LIMIT)  # exactly at the limit: texted
    assert is_stale(reminder.decided_at, overdue_at + LIMIT + timedelta(seconds=1), LIMIT)
    assert is_stale(failure.decided_at, failed_at + LIMIT + timedelta(seconds=1), LIMIT)


def test_the_stale_note_says_which_cause_was_too_old() -> None:
    reminder = intent_for_overdue_bill(uuid4(), bill_overdue(), TEMPLATES)
    failure = intent_for_failed_collection(uuid4(), collection_failed(), TEMPLATES)
    assert cause_of(reminder) == "overdue_bill" and cause_of(failure) == "failed_collection"
    assert stale_note(LIMIT, "first_seen", cause_of(reminder)) == (
        "stale_overdue_bill: overdue bill older than 72 h when first seen: not texted (replay guard)"
    )
    assert stale_note(LIMIT, "recipient_known", cause_of(failure)) == (
        "stale_failed_collection: failed collection older than 72 h when the phone became known: not texted late"
    )
    # the existing wording is unchanged
    assert stale_note(LIMIT, "first_seen", "settlement").startswith("stale_settlement: settlement older than 72 h")
    assert set(CAUSES) == {"decision", "settlement", "overdue_bill", "failed_collection"}


def test_both_templates_are_packaged_with_an_aliyun_code_and_required() -> None:
    for name in ("bill_overdue", "withholding_failed"):
        assert name in REQUIRED
        assert TEMPLATES.get(name).aliyun_code
    assert TEMPLATES.get("bill_overdue").placeholders == {"period", "amount", "due"}
    assert TEMPLATES.get("withholding_failed").placeholders == {"period", "amount", "bank", "reason"}


def test_a_templates_file_without_the_new_templates_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(
        '[review_approved]\ntext = "通过"\n[review_rejected]\ntext = "x${reasons}"\n'
        '[payment_receipt]\ntext = "已缴${period}${amount}元（${channel}）"\n',
        encoding="utf-8",
    )
    with pytest.raises(TemplateError, match="bill_overdue, withholding_failed"):
        load_templates(path, "常州人社")


def test_the_failure_text_refuses_to_render_without_its_reason() -> None:
    with pytest.raises(TemplateError, match="reason"):
        TEMPLATES.render("withholding_failed", {"period": "2025年03月", "amount": "1.00", "bank": "工商银行"})

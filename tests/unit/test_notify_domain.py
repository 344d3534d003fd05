"""notify's pure decisions: which days to look up, the phone's national form, the final event.
(What an attempt's outcome means is kernel.effects': tests/unit/test_kernel_effects.py.)"""

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

from contracts.events.notify import SmsFailed, SmsSent
from services.notify.domain import OutgoingSms, final_event, lookup_dates, national_number, stream_id

NOW = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)


def test_lookup_covers_every_shanghai_day_of_the_attempts() -> None:
    # 15:59 UTC is 23:59 in Shanghai; 16:01 UTC is already the next day there.
    first = datetime(2025, 3, 3, 15, 59, tzinfo=UTC)
    assert lookup_dates(first, first) == [date(2025, 3, 3)]
    assert lookup_dates(first, first + timedelta(minutes=2)) == [date(2025, 3, 3), date(2025, 3, 4)]
    assert len(lookup_dates(first - timedelta(days=90), first)) == 30


def test_national_number() -> None:
    assert national_number("+8613800138000") == "13800138000"


def sms() -> OutgoingSms:
    return OutgoingSms(
        sms_id=uuid4(), cause_event_id=uuid4(), case_id=uuid4(), application_id=uuid4(), recipient_id=uuid4(),
        phone="+8613800138000", template="review_approved", params={}, correlation_id="c",
    )  # fmt: skip


def test_the_final_event_carries_the_masked_phone_only() -> None:
    message = sms()
    sent = final_event(message, "sent", "aliyun", NOW, message_id="biz-1")
    assert isinstance(sent, SmsSent) and sent.provider_message_id == "biz-1" and sent.sent_at == NOW
    assert sent.phone_masked == "+86138****8000" and "13800138000" not in sent.model_dump_json()
    failed = final_event(message, "failed", "aliyun", NOW, error_code="isv.MOBILE_NUMBER_ILLEGAL")
    assert isinstance(failed, SmsFailed) and failed.error_code == "isv.MOBILE_NUMBER_ILLEGAL"
    assert message.out_id == str(message.sms_id) and stream_id(message.sms_id) == f"sms-{message.sms_id}"

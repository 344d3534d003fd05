"""notify's pure decisions: what an attempt's outcome means, and which days to look up."""

from datetime import UTC, date, datetime, timedelta

from services.notify.domain import SendResult, after_attempt, lookup_dates, national_number, retry_delay

NOW = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)


def test_accepted_is_sent_with_the_provider_message_id() -> None:
    outcome = after_attempt(SendResult.accepted("biz-1"), "", 1, 5, NOW, 5)
    assert outcome.state == "sent" and outcome.message_id == "biz-1"


def test_a_permanent_refusal_fails_at_once() -> None:
    outcome = after_attempt(SendResult.refused("isv.MOBILE_NUMBER_ILLEGAL", retryable=False), "", 1, 5, NOW, 5)
    assert outcome.state == "failed" and outcome.error_code == "isv.MOBILE_NUMBER_ILLEGAL"


def test_a_retryable_refusal_waits_then_fails_after_the_last_attempt() -> None:
    limited = SendResult.refused("isv.BUSINESS_LIMIT_CONTROL", retryable=True)
    first = after_attempt(limited, "", 1, 3, NOW, 5)
    assert first.state == "pending" and not first.uncertain and first.retry_at == NOW + timedelta(seconds=5)
    assert after_attempt(limited, "", 3, 3, NOW, 5).state == "failed"


def test_an_unknown_outcome_is_never_given_up_blindly() -> None:
    outcome = after_attempt(None, "timeout", 9, 3, NOW, 5)
    assert outcome.state == "pending" and outcome.uncertain and outcome.error_code == "timeout"


def test_retry_delay_doubles_and_is_capped() -> None:
    assert [retry_delay(n, 5).seconds for n in (1, 2, 3)] == [5, 10, 20]
    assert retry_delay(30, 5) == timedelta(hours=1)


def test_lookup_covers_every_shanghai_day_of_the_attempts() -> None:
    # 15:59 UTC is 23:59 in Shanghai; 16:01 UTC is already the next day there.
    first = datetime(2025, 3, 3, 15, 59, tzinfo=UTC)
    assert lookup_dates(first, first) == [date(2025, 3, 3)]
    assert lookup_dates(first, first + timedelta(minutes=2)) == [date(2025, 3, 3), date(2025, 3, 4)]
    assert len(lookup_dates(first - timedelta(days=90), first)) == 30


def test_national_number() -> None:
    assert national_number("+8613800138000") == "13800138000"

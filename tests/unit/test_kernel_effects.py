"""kernel.effects' pure decisions: what an attempt's outcome, or a lookup after doubt, means for an
outbound effect. (The machine on PostgreSQL: tests/integration/test_kernel_effects.py.)"""

from datetime import UTC, datetime, timedelta

import pytest

from kernel.effects import (
    EffectTable,
    Next,
    Policy,
    SendResult,
    after_attempt,
    after_lookup,
    lookup_failed,
    out_of_attempts,
    retry_delay,
)

NOW = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)


def test_accepted_is_sent_with_the_provider_reference() -> None:
    outcome = after_attempt(SendResult.accepted("biz-1"), "", 1, 5, NOW, 5)
    assert outcome == Next("sent", reference="biz-1") and outcome.final


def test_a_permanent_refusal_fails_at_once() -> None:
    outcome = after_attempt(SendResult.refused("isv.MOBILE_NUMBER_ILLEGAL", retryable=False), "", 1, 5, NOW, 5)
    assert (outcome.state, outcome.error_code, outcome.final) == ("failed", "isv.MOBILE_NUMBER_ILLEGAL", True)


def test_a_retryable_refusal_waits_then_fails_after_the_last_attempt() -> None:
    limited = SendResult.refused("isv.BUSINESS_LIMIT_CONTROL", retryable=True)
    first = after_attempt(limited, "", 1, 3, NOW, 5)
    assert first.state == "pending" and not first.uncertain and first.retry_at == NOW + timedelta(seconds=5)
    assert not first.final
    second = after_attempt(limited, "", 2, 3, NOW, 5)
    assert second.retry_at == NOW + timedelta(seconds=10)
    assert after_attempt(limited, "", 3, 3, NOW, 5).state == "failed"


def test_an_unknown_outcome_is_never_given_up_blindly() -> None:
    outcome = after_attempt(None, "timeout", 9, 3, NOW, 5)
    assert (outcome.state, outcome.uncertain, outcome.error_code) == ("pending", True, "timeout")
    assert outcome.retry_at is not None and outcome.retry_at > NOW


def test_retry_delay_doubles_and_is_capped() -> None:
    assert [retry_delay(n, 5).seconds for n in (1, 2, 3)] == [5, 10, 20]
    assert retry_delay(30, 5) == timedelta(hours=1)
    assert retry_delay(3, 0) == timedelta(0)


def test_a_lookup_that_finds_the_effect_settles_it_without_a_send() -> None:
    assert after_lookup(SendResult.accepted("serial-7")) == Next("sent", reference="serial-7")
    refused = after_lookup(SendResult.refused("ACCOUNT_CLOSED", retryable=False))
    assert refused == Next("failed", error_code="ACCOUNT_CLOSED")


def test_a_lookup_that_finds_nothing_or_a_retryable_refusal_lets_the_effect_be_sent() -> None:
    assert after_lookup(None) is None
    assert after_lookup(SendResult.refused("SYSTEM_BUSY", retryable=True)) is None


def test_a_lookup_that_cannot_say_keeps_the_doubt_and_sends_nothing() -> None:
    outcome = lookup_failed(2, NOW, 5)
    assert outcome == Next("pending", uncertain=True, error_code="lookup_failed", retry_at=NOW + timedelta(seconds=10))


def test_past_the_last_attempt_the_effect_fails() -> None:
    assert out_of_attempts(5, 5) is None
    assert out_of_attempts(6, 5) == Next("failed", error_code="max_attempts_reached")


def test_the_lease_must_outlast_a_lookup_a_send_and_the_record() -> None:
    with pytest.raises(ValueError, match="3 x the call timeout"):
        Policy(call_timeout_seconds=30, lease_seconds=60)
    assert Policy(call_timeout_seconds=20, lease_seconds=60).lease_seconds == 60


@pytest.mark.parametrize(("table", "key"), [("sms; DROP TABLE x", "id"), ("t", 'id"'), ("T", "id"), ("", "id")])
def test_table_and_key_must_be_plain_identifiers(table: str, key: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        EffectTable(table, key, lambda row: row)

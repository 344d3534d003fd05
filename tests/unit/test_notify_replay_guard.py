"""notify's replay guard: a review decision older than the limit when notify would make it
sendable is recorded `skipped_stale`, never texted (a rebuild from the topics must not text history
again). Older than the limit is stale; exactly at the limit is still texted."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from contracts.events.review import ReviewDecided
from services.notify.domain import (
    DEFAULT_MAX_DECISION_AGE,
    STATES,
    intent_for_decision,
    is_stale,
    stale_before,
    stale_note,
)
from services.notify.settings import NotifySettings
from services.notify.templates import load_templates

NOW = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)
LIMIT = timedelta(hours=72)


def test_older_than_the_limit_is_stale_and_exactly_at_the_limit_is_not() -> None:
    assert not is_stale(NOW - LIMIT, NOW, LIMIT)
    assert is_stale(NOW - LIMIT - timedelta(microseconds=1), NOW, LIMIT)
    assert not is_stale(NOW - LIMIT + timedelta(seconds=1), NOW, LIMIT)
    assert not is_stale(NOW, NOW, LIMIT)
    assert is_stale(NOW - timedelta(days=10), NOW, LIMIT)
    assert stale_before(NOW, LIMIT) == NOW - LIMIT


def test_a_decision_from_the_future_is_not_stale() -> None:
    # reviewer's clock ahead of notify's: texted, not skipped
    assert not is_stale(NOW + timedelta(minutes=5), NOW, LIMIT)


def test_a_larger_limit_lets_a_planned_catch_up_text_older_decisions() -> None:
    decided_at = NOW - timedelta(days=5)
    assert is_stale(decided_at, NOW, LIMIT)
    assert not is_stale(decided_at, NOW, timedelta(hours=168))


def test_the_intent_carries_the_decision_time() -> None:
    decided = ReviewDecided(
        case_id=uuid4(), application_id=uuid4(), applicant_id=uuid4(), attempt=1, decision="approved",
        reasons=[], reviewer_id=uuid4(), decided_at=NOW - timedelta(days=10),
    )  # fmt: skip
    intent = intent_for_decision(uuid4(), decided, load_templates(None, "常州人社"))
    assert intent.decided_at == NOW - timedelta(days=10)
    assert is_stale(intent.decided_at, NOW, DEFAULT_MAX_DECISION_AGE)


def test_the_note_says_why_without_personal_data() -> None:
    first = stale_note(LIMIT, "first_seen")
    assert first.startswith("stale_decision:") and "72 h" in first and "first seen" in first
    late = stale_note(timedelta(hours=1.5), "recipient_known")
    assert "1.5 h" in late and "phone became known" in late
    assert "skipped_stale" in STATES


def test_the_setting_defaults_to_72_hours_and_reads_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert NotifySettings().max_decision_age == timedelta(hours=72) == DEFAULT_MAX_DECISION_AGE
    monkeypatch.setenv("NOTIFY_MAX_DECISION_AGE_HOURS", "240")
    assert NotifySettings().max_decision_age == timedelta(hours=240)
    with pytest.raises(ValueError):
        NotifySettings(notify_max_decision_age_hours=0)

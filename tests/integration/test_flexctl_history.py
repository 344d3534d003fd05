"""`flexctl history APPLICATION_ID` on the real topics: a fresh journey, read back across the
five topics, once per event, in time order, with no full phone or ID number in what it prints.

The running services (`make up`) may react to the journey (review opens a case for the
submission, notify texts the applicant): those events belong to the history too, so the journey
must be included, not equal."""

import asyncio
import json
import re
from datetime import datetime

import pytest
from typer.testing import CliRunner

from kernel.relay import new_producer
from ops import cli_support, flexctl
from tests.support.infra import KAFKA_ADMIN
from tests.support.journey import PHONE, Journey, small_journey
from tests.support.kafka import publish

FULL_MOBILE = re.compile(r"(?<!\d)(?:\+?86)?1[3-9]\d{9}(?!\d)")
FULL_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


def published_journey() -> Journey:
    j = small_journey()

    async def send() -> None:
        producer = new_producer(KAFKA_ADMIN, client_id="test-flexctl-history")
        await producer.start()
        try:
            await publish(producer, j.envelopes)
        finally:
            await producer.stop()

    asyncio.run(send())
    return j


@pytest.fixture(scope="module")
def journey() -> Journey:
    return published_journey()


def assert_masked(output: str) -> None:
    assert PHONE not in output and "+8613800138000" not in output
    assert not FULL_MOBILE.search(output) and not FULL_ID_NUMBER.search(output)


def test_json_lines_give_every_event_of_the_journey_once_in_time_order(journey: Journey) -> None:
    result = CliRunner().invoke(flexctl.app, ["history", str(journey.application_id), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    ids = [line["event_id"] for line in lines]
    assert len(ids) == len(set(ids))
    assert {str(e.event_id) for e in journey.envelopes} <= set(ids)
    times = [datetime.fromisoformat(line["occurred_at"]) for line in lines]
    assert times == sorted(times)
    ours = [i for i in ids if i in {str(e.event_id) for e in journey.envelopes}]
    ordered = sorted(journey.envelopes, key=lambda e: (e.occurred_at, e.stream_id, e.stream_version, str(e.event_id)))
    assert ours == [str(e.event_id) for e in ordered]
    assert_masked(result.output)
    assert "+86139****5678" in result.output  # masked, not dropped


def test_the_table_has_a_row_per_event_with_a_masked_summary(journey: Journey, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_support.console, "width", 250)
    result = CliRunner().invoke(flexctl.app, ["history", str(journey.application_id)])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    for envelope in journey.envelopes:
        stream = f"{envelope.stream_id} v{envelope.stream_version}"
        assert sum(envelope.event_type in r and stream in r for r in rows) == 1, envelope.event_type
    assert any("approved" in r and "ReviewDecided" in r for r in rows)
    assert any("template review_approved" in r for r in rows)
    assert any("tiers pension 3 medical 5" in r for r in rows)
    assert_masked(result.output)


def test_an_unknown_application_has_no_history() -> None:
    result = CliRunner().invoke(flexctl.app, ["history", "00000000-0000-4000-8000-000000000000"])
    assert result.exit_code == 1

"""The benchmarks' journey copies (tests/bench/template.py) and their verdicts (tests/bench/report.py)."""

from contracts.envelope import Envelope
from services.enrollment.rebuild import TOPICS
from tests.bench.report import Comparison, Run
from tests.bench.template import JourneyTemplate


def test_copies_are_valid_envelopes_with_ids_of_their_own() -> None:
    template = JourneyTemplate(TOPICS, topic_prefix="p.")
    records = list(template.records(5, 3 * len(template)))
    envelopes = [Envelope.from_json(value) for _, _, value, _ in records]
    assert len({e.event_id for e in envelopes}) == len(envelopes)
    assert len({e.correlation_id for e in envelopes}) == 3  # one application per copy
    assert {topic for topic, *_ in records} == {"p." + t for t in TOPICS}
    for (_, key, _, headers), envelope in zip(records, envelopes, strict=True):
        assert key == envelope.kafka_key() and headers == envelope.kafka_headers()


def test_records_stop_at_the_count_asked_mid_copy() -> None:
    template = JourneyTemplate()
    assert len(list(template.records(0, len(template) + 2))) == len(template) + 2


def test_verdict_against_the_target() -> None:
    raw = Run("raw", 1000, 1.0)
    assert Comparison("x", Run("ours", 900, 1.0), raw, target=0.9).verdict == "PASS"
    assert Comparison("x", Run("ours", 899, 1.0), raw, target=0.9).verdict == "BELOW"
    assert Comparison("x", Run("ours", 10, 1.0), raw, target=None).verdict == "–"

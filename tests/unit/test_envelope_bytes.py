"""The relay builds each message's bytes straight from the stored row (`kafka_message_from_row`)
instead of validating an `Envelope` first: the value, key and headers must stay byte for byte what
`Envelope.to_json`, `kafka_key` and `kafka_headers` give, for every shape an event can take."""

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest

from contracts.envelope import Envelope, kafka_message_from_row
from tests.support.journey import journey

PRODUCER = "testsvc"
ODD_DATA: list[dict[str, Any]] = [
    {},
    {"name": "张伟", "city": "Zürich", "note": "naïve café ☕ 🎓"},
    {"quote": 'say "hi"\\ / back\\slash', "controls": "\x00\x01\x1f\x7f\t\n\r", "separators": "\u2028\u2029"},
    {"floats": [0.1, 1e16, 1e-7, -0.0, 1.5e300, 123456.789], "ints": [0, -1, 2**53 + 1, 2**70]},
    {"nested": {"deep": [{"a": None, "b": True, "c": False}, [], {}]}, "empty": ""},
    {"z": 1, "a": 2, "mm": 3, "b": 4},  # key order kept as given (jsonb's own order on the way back)
]
INSTANTS = [
    datetime(2025, 3, 2, 1, 0, tzinfo=UTC),
    datetime(2025, 3, 2, 1, 0, 0, 123456, tzinfo=UTC),
    datetime(2025, 12, 31, 23, 59, 59, 1, tzinfo=timezone(timedelta(hours=8))),
    datetime(1999, 1, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
]


def _jsonb_text(data: dict[str, Any]) -> str:
    """`data::text` as PostgreSQL prints jsonb: a space after every colon and comma."""
    return json.dumps(data, ensure_ascii=False, separators=(", ", ": "))


def _row(e: Envelope) -> dict[str, Any]:
    """A stored row of `e`: its columns, `data` decoded from jsonb's JSON text by the codec."""
    return {
        "position": 1,
        "event_id": e.event_id,
        "event_type": e.event_type,
        "schema_version": e.schema_version,
        "stream_id": e.stream_id,
        "stream_version": e.stream_version,
        "occurred_at": e.occurred_at,
        "correlation_id": e.correlation_id,
        "causation_id": e.causation_id,
        "data": json.loads(_jsonb_text(e.data)),
    }


def _odd_envelopes() -> list[Envelope]:
    return [
        Envelope(
            event_id=uuid4(),
            event_type="Odd€vent",
            schema_version=3,
            stream_id=f"stream-ü-{n}",
            stream_version=n + 1,
            occurred_at=INSTANTS[n % len(INSTANTS)],
            producer=PRODUCER,
            correlation_id=f"corr-中-{n}",
            causation_id=None if n % 2 else str(uuid4()),
            data=data,
        )
        for n, data in enumerate(ODD_DATA)
    ]


@pytest.mark.parametrize("envelope", [*journey().envelopes, *_odd_envelopes()], ids=lambda e: e.event_type)
def test_message_from_a_row_is_byte_identical_to_the_envelopes(envelope: Envelope) -> None:
    row = _row(envelope)
    expected = Envelope(**{**row, "producer": envelope.producer})  # as the row reads back today
    as_text = {**row, "event_id": str(envelope.event_id), "data": _jsonb_text(envelope.data)}  # the relay's query
    for given in (row, as_text):
        value, key, headers = kafka_message_from_row(given, envelope.producer)
        assert value == expected.to_json()
        assert key == expected.kafka_key()
        assert headers == expected.kafka_headers()


def test_the_odd_shapes_reach_the_bytes_as_themselves() -> None:
    """Guards the comparison above: the odd values are in the value, not lost on both sides alike."""
    [*_, floats, _, _] = [kafka_message_from_row(_row(e), PRODUCER)[0] for e in _odd_envelopes()]
    assert json.loads(floats)["data"]["ints"][-1] == 2**70
    unicode_value = kafka_message_from_row(_row(_odd_envelopes()[1]), PRODUCER)[0]
    assert "张伟".encode() in unicode_value and b'"occurred_at":"2025-03-02T01:00:00.123456Z"' in unicode_value

"""CPU-seconds per journey (tests/load/cost.py): the arithmetic between two readings."""

import pytest

from tests.load.cost import BILLING, COMMANDS, DB_BACKENDS, GENERATOR, delta, per_journey, pids_delta, system_total


def test_spent_is_after_minus_before_per_process_seen_in_both() -> None:
    before = {"identity": 10.0, "kafka": 100.0, "payment": 5.0}
    after = {"identity": 12.5, "kafka": 103.0, "review": 1.0}  # payment gone, review new
    assert delta(before, after) == pytest.approx({"identity": 2.5, "kafka": 3.0})


def test_a_process_restarted_in_between_is_left_out_not_negative() -> None:
    assert delta({"enrollment": 40.0}, {"enrollment": 0.3}) == {}


def test_per_journey_divides_by_the_journeys_run() -> None:
    assert per_journey({"identity": 2.0, "notify": 0.5}, 4) == {"identity": 0.5, "notify": 0.125}
    assert per_journey({"identity": 2.0}, 0) == {}


def test_the_system_total_leaves_out_the_generator_and_counts_backends_once() -> None:
    spent = {"identity": 1.0, "postgresql": 2.0, DB_BACKENDS: 1.5, GENERATOR: 9.0, COMMANDS: 3.0, BILLING: 0.2}
    assert system_total(spent) == pytest.approx(3.0)


def test_backends_count_what_they_spent_and_new_ones_all_their_time() -> None:
    before = {100: 1.0, 101: 2.0, 102: 5.0}
    after = {100: 1.5, 101: 2.0, 103: 0.25}  # 102 exited (lost), 103 started in between
    assert pids_delta(before, after) == pytest.approx(0.75)
    assert pids_delta({104: 9.0}, {104: 0.5}) == pytest.approx(0.5)  # a reused pid counts from zero

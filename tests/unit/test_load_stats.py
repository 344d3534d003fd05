"""The load generator's arithmetic (tests/load/stats.py): percentiles and the backlog verdict."""

import pytest

from tests.load.stats import Spread, backlog, percentile


def test_percentiles_interpolate_between_closest_ranks() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]  # unordered on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 95) == pytest.approx(4.8)
    assert percentile([1.0, 2.0], 50) == pytest.approx(1.5)
    assert percentile([7.0], 99) == 7.0


def test_no_values_have_no_percentile_and_q_is_bounded() -> None:
    assert percentile([], 50) is None
    assert Spread.of([]) == Spread(0, None, None, None)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_a_system_that_keeps_up_grew_no_backlog() -> None:
    starts = [float(i) for i in range(10)]  # 1/s for 9 s
    latencies = [0.5] * 10
    ends = [s + 0.5 for s in starts]
    found = backlog(starts, ends, latencies)
    assert found.offered_per_s == pytest.approx(1.0)
    assert found.completed_per_s_last_third == pytest.approx(1.0)  # ends 6.5, 7.5, 8.5 within [6, 9]
    assert found.in_flight_at_window_end == 1  # the last one, due at 9 s
    assert found.latency_ratio_last_to_first_third == pytest.approx(1.0)
    assert not found.grew


def test_latencies_that_grow_with_the_queue_are_a_backlog() -> None:
    starts = [float(i) for i in range(10)]
    latencies = [1.0 + i for i in range(10)]  # each waits behind the previous ones
    ends = [s + lat for s, lat in zip(starts, latencies, strict=True)]
    found = backlog(starts, ends, latencies)
    assert found.latency_ratio_last_to_first_third is not None and found.latency_ratio_last_to_first_third > 1.5
    assert found.in_flight_at_window_end > 1
    assert found.grew


def test_a_little_noise_on_short_journeys_is_no_backlog() -> None:
    starts = [float(i) for i in range(9)]
    latencies = [0.2, 0.2, 0.2, 0.25, 0.25, 0.25, 0.35, 0.35, 0.35]  # 1.75 times slower, by 0.15 s
    found = backlog(starts, [s + lat for s, lat in zip(starts, latencies, strict=True)], latencies)
    assert found.latency_ratio_last_to_first_third == pytest.approx(1.75)
    assert not found.grew


def test_a_journey_that_never_finished_is_a_backlog() -> None:
    starts = [0.0, 1.0, 2.0]
    found = backlog(starts, [0.5, 1.5, None], [0.5, 0.5, None])
    assert found.grew

"""The dashboard's SVG charts (services/web/charts.py) and the operators' pages' view models
(services/web/ops_views.py): geometry, the empty chart, ticks, escaping, the accessible figures."""

import re
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from contracts.envelope import Envelope
from ops.history import Entry
from ops.kafka_ops import Lag
from services.web import charts
from services.web.charts import Chart, Series, column_bars, data_table, nice_ticks, render_columns, render_rows
from services.web.ops_views import (
    applications_chart,
    dead_letter_counts,
    decisions_chart,
    history_rows,
    lag_by_group,
    overdue_chart,
    page_of,
    settlement_charts,
    short_agency,
)


def chart(*values: tuple[int, ...], names: tuple[str, ...] = ("甲", "乙"), money: bool = False) -> Chart:
    categories = tuple(f"c{i}" for i in range(len(values[0]))) if values else ()
    return Chart("k", "标题", categories, tuple(Series(n, v) for n, v in zip(names, values, strict=False)), money=money)


def bar_heights(svg: str) -> dict[int, float]:
    """value → height of the bars drawn (one series)."""
    return {
        int(m["value"]): float(m["height"])
        for m in re.finditer(r'data-value="(?P<value>\d+)"[^>]*height="(?P<height>[\d.]+)"', svg)
    }


# --- ticks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("maximum", "expected"),
    [
        (0, [0]),
        (1, [0, 1]),
        (3, [0, 1, 2, 3]),
        (7, [0, 2, 4, 6, 8]),
        (10, [0, 2, 4, 6, 8, 10]),
        (101, [0, 50, 100, 150]),
    ],
)
def test_ticks_are_round_and_reach_the_maximum(maximum: int, expected: list[int]) -> None:
    assert nice_ticks(maximum) == expected


def test_ticks_of_money_are_whole_yuan() -> None:
    ticks = nice_ticks(123_456, money=True)  # 1,234.56 元
    assert ticks == [0, 50_000, 100_000, 150_000] and all(t % 100 == 0 for t in ticks)
    assert nice_ticks(50, money=True) == [0, 100]  # half a yuan: the axis still goes to 1 元


def test_the_axis_is_drawn_with_its_tick_labels() -> None:
    svg = str(render_columns(chart((1, 7))))
    labels = re.findall(r'text-anchor="end" fill="#333">([\d,]+)</text>', svg)
    assert labels == ["0", "2", "4", "6", "8"]
    money = str(render_columns(chart((150_000, 10_000), money=True)))
    assert re.findall(r'text-anchor="end" fill="#333">([\d,]+)</text>', money) == ["0", "500", "1,000", "1,500"]
    assert ">元</text>" in money


# --- geometry ----------------------------------------------------------------------------------------


def test_bar_heights_are_proportional_to_the_values() -> None:
    heights = bar_heights(str(render_columns(chart((2, 4, 8)))))
    assert heights[4] == pytest.approx(2 * heights[2]) and heights[8] == pytest.approx(4 * heights[2])
    # the top tick is 8: the bar of 8 fills the plot from the axis to the top
    assert heights[8] == pytest.approx(charts.HEIGHT - charts.TOP - charts.BOTTOM)


def test_stacked_segments_sit_on_each_other() -> None:
    bars, _ = column_bars(chart((3, 0), (1, 2)))
    first, second = [b for b in bars if b.category == 0]
    assert (first.series, second.series) == (0, 1)
    assert second.y + second.height == pytest.approx(first.y)  # on top of the first
    assert first.height == pytest.approx(3 * second.height)
    assert [b.value for b in bars if b.category == 1] == [2]  # a zero draws nothing


def test_row_bars_are_proportional_and_carry_their_value() -> None:
    rows = Chart("r", "原因", ("甲", "乙"), (Series("次数", (1, 4)),), unit="次", stacked=False)
    bars, _ = charts.row_bars(rows)
    assert bars[1].width == pytest.approx(4 * bars[0].width)
    svg = str(render_rows(rows))
    assert re.findall(r'class="value"[^>]*>(\d+)</text>', svg) == ["1", "4"]


def test_zero_data_draws_an_empty_chart_that_says_so() -> None:
    for svg in (str(render_columns(chart((0, 0), (0, 0)))), str(render_rows(chart((0, 0))))):
        assert "暂无数据" in svg and 'class="bar"' not in svg
        assert 'aria-label="标题：暂无数据"' in svg
    assert "暂无数据" in str(render_columns(Chart("n", "无", (), ())))
    assert "暂无数据" not in str(render_columns(chart((0, 1))))


# --- text and accessibility --------------------------------------------------------------------------


def test_labels_and_titles_are_escaped() -> None:
    nasty = '<script>alert("x")</script>&'
    svg = str(render_columns(Chart("e", nasty, (nasty,), (Series(nasty, (1,)), Series("b", (1,))))))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&amp;" in svg
    assert 'alert("x")' not in svg  # quotes escaped too: safe inside aria-label="…"


def test_the_table_gives_every_figure_and_the_totals() -> None:
    table = data_table(chart((1, 2), (3, 4)), "日期")
    assert table.head == ("日期", "甲", "乙", "合计")
    assert table.rows == (("c0", "1", "3", "4"), ("c1", "2", "4", "6"))
    assert table.total == ("合计", "3", "7", "10")
    money = data_table(chart((12_345, 100), names=("微信",), money=True), "月份")
    assert money.total == ("合计", "124.45 元") and money.rows[0] == ("c0", "123.45 元")


def test_the_picture_has_an_accessible_summary_and_bar_titles() -> None:
    svg = str(render_columns(chart((1, 2), (3, 4))))
    assert 'role="img"' in svg and 'aria-label="标题：合计 10件，甲 3，乙 7"' in svg
    assert "<title>c1 乙：4</title>" in svg


def test_colour_is_not_the_only_cue_series_have_patterns_and_a_legend() -> None:
    two = chart((1,), (1,))
    svg = str(render_columns(two))
    assert 'fill="url(#k-p1)"' in svg and '<pattern id="k-p1"' in svg
    items = charts.legend(two)
    assert [(i.name, i.pattern) for i in items] == [("甲", "实心"), ("乙", "斜线")]
    assert 'id="k-l1"' in str(items[1].swatch)  # the legend's own pattern, not the chart's id again
    assert [i.name for i in charts.legend(chart((1,)))] == ["甲"]  # a single series is named too


# --- the dashboard's figures from the APIs -----------------------------------------------------------


APPLICATIONS = {
    "districts": [{"code": "320402", "name": "天宁区"}, {"code": "320411", "name": "新北区"}],
    "days": [
        {
            "day": "2026-12-01",
            "total": 2,
            "districts": [{"code": "320402", "count": 0}, {"code": "320411", "count": 2}],
        },
        {
            "day": "2026-12-02",
            "total": 1,
            "districts": [{"code": "320402", "count": 0}, {"code": "320411", "count": 1}],
        },
    ],
}


def test_applications_per_day_keep_the_districts_that_have_any() -> None:
    built = applications_chart(APPLICATIONS)
    assert built.categories == ("12-01", "12-02")
    assert [(s.name, s.values) for s in built.series] == [("新北区", (2, 1))]


def test_decisions_overdue_and_settlements() -> None:
    decided = decisions_chart({"days": [{"day": "2026-12-02", "approved": 2, "rejected": 1}]})
    assert [(s.name, s.values) for s in decided.series] == [("审核通过", (2,)), ("审核不通过", (1,))]
    xinbei = "常州市新北区人力资源和社会保障局劳动就业管理中心"
    queue = overdue_chart({"overdue": [{"agency_code": "320411", "agency_name": xinbei, "pending": 3, "overdue": 1}]})
    assert queue.categories == ("新北区",) and queue.series[0].values == (1,) and not queue.stacked
    assert data_table(queue, "受理机构").head == ("受理机构", "超期", "待审核")
    wechat_only = [{"count": 1, "amount_fen": 50_000}, {"count": 0, "amount_fen": 0}]
    count, amount = settlement_charts(
        {"channels": ["wechat", "alipay"], "months": [{"month": "2026-12", "channels": wechat_only}]}
    )
    assert [s.name for s in count.series] == ["微信支付"] and amount.money and amount.series[0].values == (50_000,)


def test_agency_names_are_shortened_for_the_axis() -> None:
    assert short_agency("常州市天宁区人力资源和社会保障局劳动就业管理中心") == "天宁区"
    assert short_agency("溧阳市人力资源和社会保障局劳动就业管理中心") == "溧阳市"
    assert short_agency("常州市劳动就业管理中心") == "市中心"


# --- the operators' pages ----------------------------------------------------------------------------


def test_dead_letters_are_end_minus_beginning_per_service() -> None:
    topics = {s: f"p.{s}.dlq" for s in ("identity", "enrollment", "review", "payment", "notify")}
    starts = {("p.review.dlq", 0): 2, ("p.review.dlq", 1): 0}
    ends = {("p.review.dlq", 0): 5, ("p.review.dlq", 1): 1, ("p.payment.dlq", 0): 0}
    rows = {r.service: r for r in dead_letter_counts(topics, starts, ends)}
    assert rows["review"].count == 4 and rows["payment"].count == 0 and rows["payment"].present
    assert not rows["notify"].present and rows["notify"].count == 0


def test_lag_is_summed_per_group_and_topic_and_lagging_ones_are_marked() -> None:
    rows = lag_by_group(
        [
            Lag("g.review.x", "t.enrollment.events", 0, 10, 10),
            Lag("g.review.x", "t.enrollment.events", 1, 3, 5),
            Lag("g.notify.x", "t.review.events", 0, 7, 2000),
        ],
        group_prefix="g.",
        topic_prefix="t.",
    )
    assert [(r.group, r.topic, r.partitions, r.lag, r.lagging, r.severe) for r in rows] == [
        ("notify.x", "review.events", 1, 1993, True, True),
        ("review.x", "enrollment.events", 2, 2, True, False),
    ]
    assert not lag_by_group([Lag("g", "t", 0, 4, 4)])[0].lagging


def test_history_rows_are_what_flexctl_prints_with_numbers_masked() -> None:
    envelope = Envelope(
        event_id=uuid4(),
        event_type="UserRegistered",
        schema_version=1,
        occurred_at=datetime(2026, 12, 2, 1, 2, 3, tzinfo=UTC),
        producer="identity",
        stream_id="user-1",
        stream_version=1,
        correlation_id="c",
        data={"phone": "13912345678", "role": "applicant"},
    )
    [row] = history_rows([Entry("p.identity.events", envelope)], "p.")
    assert (row.topic, row.event_type, row.stream) == ("identity.events", "UserRegistered", "user-1 v1")
    assert "13912345678" not in row.summary and "role applicant" in row.summary


def test_paging_asks_one_more_to_know_of_a_next_page() -> None:
    shown, paging = page_of(list(range(21)), 20, 20)
    assert len(shown) == 20 and paging.next == 40 and paging.previous == 0 and paging.number == 2
    shown, paging = page_of(list(range(3)), 0, 20)
    assert shown == [0, 1, 2] and paging.next is None and paging.previous is None

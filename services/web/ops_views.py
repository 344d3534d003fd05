"""What the operators' pages and the dashboard show, from what the broker and the APIs give: pure.

The dashboard's figures come from the services' aggregate APIs (enrollment `/v1/stats/applications`,
review `/v1/stats/decisions`, payment `/v1/stats/settlements`), turned here into `charts.Chart`s; the
operators' pages' rows from the broker's offsets and the history's entries (ops/history.py)."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.topics import SERVICES
from ops.history import Entry, summary
from ops.kafka_ops import Lag
from services.web.charts import Chart, Series

LAG_SEVERE = 1000  # flexctl lag marks these red too

STATUS_LABELS = {
    "draft": "草稿",
    "submitted": "已提交",
    "under_review": "审核中",
    "approved": "审核通过",
    "rejected": "审核不通过",
    "active": "已参保",
}
CHANNEL_LABELS = {
    "wechat": "微信支付",
    "alipay": "支付宝",
    "unionpay_pos": "银联POS",
    "bank_counter": "银行柜面",
    "bank_withholding": "银行代扣",
}
EXCEPTION_LABELS = {"amount_mismatch": "金额不符", "unknown_bill": "账单不存在"}


# --- the dashboard --------------------------------------------------------------------------------


def short_day(day: str) -> str:
    """2026-12-02 → 12-02: the year is in the page's heading."""
    return day[5:]


def short_agency(name: str) -> str:
    """常州市天宁区人力资源和社会保障局劳动就业管理中心 → 天宁区; the city's own centre → 市中心."""
    core = name.removeprefix("常州市").split("人力资源和社会保障局")[0]
    return "市中心" if core in ("劳动就业管理中心", "") else core


def _drop_empty(series: Sequence[Series]) -> tuple[Series, ...]:
    """Series that have figures; all of them when none has (the chart then says so)."""
    kept = tuple(s for s in series if s.total)
    return kept or tuple(series)


def applications_chart(stats: Mapping[str, Any]) -> Chart:
    days = stats["days"]
    series = [
        Series(d["name"], tuple(int(day["districts"][i]["count"]) for day in days))
        for i, d in enumerate(stats["districts"])
    ]
    return Chart(
        "applications",
        "每日参保登记申请（按居住区县）",
        tuple(short_day(str(day["day"])) for day in days),
        _drop_empty(series),
    )


def decisions_chart(stats: Mapping[str, Any]) -> Chart:
    days = stats["days"]
    return Chart(
        "decisions",
        "每日审核结果",
        tuple(short_day(str(day["day"])) for day in days),
        (
            Series("审核通过", tuple(int(day["approved"]) for day in days)),
            Series("审核不通过", tuple(int(day["rejected"]) for day in days)),
        ),
    )


def reasons_chart(stats: Mapping[str, Any]) -> Chart:
    reasons = stats["rejection_reasons"]
    return Chart(
        "reasons",
        "审核不通过原因",
        tuple(str(r["label"]) for r in reasons),
        (Series("次数", tuple(int(r["count"]) for r in reasons)),),
        unit="次",
        stacked=False,
    )


def overdue_chart(stats: Mapping[str, Any]) -> Chart:
    queues = stats["overdue"]
    return Chart(
        "overdue",
        "各受理机构超期未审案件",
        tuple(short_agency(str(q["agency_name"])) for q in queues),
        (
            Series("超期", tuple(int(q["overdue"]) for q in queues)),
            Series("待审核", tuple(int(q["pending"]) for q in queues)),
        ),
        stacked=False,
    )


def _channel_series(stats: Mapping[str, Any], field: str) -> tuple[Series, ...]:
    months = stats["months"]
    series = [
        Series(CHANNEL_LABELS.get(c, c), tuple(int(m["channels"][i][field]) for m in months))
        for i, c in enumerate(stats["channels"])
    ]
    return _drop_empty(series)


def settlement_charts(stats: Mapping[str, Any]) -> tuple[Chart, Chart]:
    """Per month and channel: how many bills were paid, and how much (fen)."""
    months = tuple(str(m["month"]) for m in stats["months"])
    return (
        Chart("settled-count", "每月缴费笔数（按渠道）", months, _channel_series(stats, "count"), unit="笔"),
        Chart("settled-amount", "每月缴费金额（按渠道）", months, _channel_series(stats, "amount_fen"), money=True),
    )


@dataclass(frozen=True)
class Figure:
    label: str
    value: int


def status_figures(stats: Mapping[str, Any]) -> list[Figure]:
    return [Figure(STATUS_LABELS.get(s["status"], s["status"]), int(s["count"])) for s in stats["by_status"]]


# --- dead letters and lag -------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetters:
    service: str
    topic: str
    count: int
    present: bool  # the topic exists (and web may describe it)


def dead_letter_counts(
    topic_of: Mapping[str, str], starts: Mapping[tuple[str, int], int], ends: Mapping[tuple[str, int], int]
) -> list[DeadLetters]:
    """Per service, the messages on its dead-letter topic: end minus beginning offsets, summed
    over partitions (`topic_of`: service → its topic under the environment's prefix)."""
    rows = []
    for service in SERVICES:
        topic = topic_of[service]
        parts = [key for key in ends if key[0] == topic]
        rows.append(DeadLetters(service, topic, sum(ends[p] - starts.get(p, 0) for p in parts), bool(parts)))
    return rows


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    partitions: int
    committed: int
    end: int
    lag: int

    @property
    def lagging(self) -> bool:
        return self.lag > 0

    @property
    def severe(self) -> bool:
        return self.lag > LAG_SEVERE


def lag_by_group(rows: Iterable[Lag], group_prefix: str = "", topic_prefix: str = "") -> list[GroupLag]:
    """Partitions summed per group and topic, in order of group and topic; the environment's
    prefixes (said once on the page) are left out of the names."""
    totals: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        key = (row.group.removeprefix(group_prefix), row.topic.removeprefix(topic_prefix))
        figures = totals.setdefault(key, [0, 0, 0, 0])
        figures[0] += 1
        figures[1] += row.committed
        figures[2] += row.end
        figures[3] += row.lag
    return [GroupLag(g, t, *figures) for (g, t), figures in sorted(totals.items())]


# --- an application's history ---------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    at: datetime
    topic: str
    event_type: str
    stream: str
    summary: str


def history_rows(entries: Iterable[Entry], topic_prefix: str) -> list[HistoryRow]:
    """What `flexctl history` prints, a row per event (already in time order, numbers masked)."""
    return [
        HistoryRow(
            e.envelope.occurred_at,
            e.topic.removeprefix(topic_prefix),
            e.envelope.event_type,
            f"{e.envelope.stream_id} v{e.envelope.stream_version}",
            summary(e.envelope),
        )
        for e in entries
    ]


# --- paging ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paging:
    """A page of a list the API gives by limit and offset; one more row is asked for than shown,
    to know whether there is a next page."""

    offset: int
    size: int
    more: bool

    @property
    def previous(self) -> int | None:
        return max(0, self.offset - self.size) if self.offset > 0 else None

    @property
    def next(self) -> int | None:
        return self.offset + self.size if self.more else None

    @property
    def number(self) -> int:
        return self.offset // self.size + 1


def page_of(rows: Sequence[Any], offset: int, size: int) -> tuple[list[Any], Paging]:
    """The rows to show of `size + 1` fetched, and where the neighbouring pages start."""
    return list(rows[:size]), Paging(offset, size, len(rows) > size)

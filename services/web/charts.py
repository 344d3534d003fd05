"""The dashboard's charts as SVG, drawn on the server: no script, no library, no CDN.

Pure: figures in, geometry and markup out. Two kinds of chart:
- `columns`: a category per column (a day, a month), its series stacked (one series: plain bars);
- `rows`: a horizontal bar per category (a reason, an agency), one series, its value written at
  the end of the bar.
Colour is never the only cue: every series also has a fill pattern (plain, stripes, dots, cross
hatch) repeated in the legend, each bar a `<title>` with its figure, the whole chart an
`aria-label` with the totals, and `data_table` gives the same figures as an HTML table.
Money is integer fen throughout; only labels turn it into yuan.
"""

import math
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from services.web.pages import yuan

# A narrow drawing scaled to the page's width: its 13-unit text stays readable at 375 px.
WIDTH, HEIGHT, FONT = 480, 260, 13
LEFT, RIGHT, TOP, BOTTOM = 60, 12, 24, 40  # room for the value axis and the category labels
ROW_HEIGHT, ROW_GAP, LABEL_WIDTH = 24, 8, 160
EMPTY = "暂无数据"
# Dark enough on white for graphics (WCAG 1.4.11: at least 3:1), and distinct in hue and lightness.
PALETTE = ("#0b5cab", "#b3261e", "#1e7b34", "#8a5a00", "#6a1b9a", "#00695c", "#37474f", "#ad1457")
PATTERNS = ("solid", "stripes", "dots", "cross")
PATTERN_NAMES = {"solid": "实心", "stripes": "斜线", "dots": "圆点", "cross": "网格"}


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass(frozen=True)
class Chart:
    """`key`: unique on the page (element ids); `money`: values are fen, shown in yuan;
    `stacked`: the series add up (a total column in the table); otherwise the later series are
    context for the table only (a row chart draws the first)."""

    key: str
    title: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    unit: str = "件"
    money: bool = False
    stacked: bool = True

    @property
    def totals(self) -> tuple[int, ...]:
        """Per category, every series together."""
        return tuple(sum(s.values[i] for s in self.series) for i in range(len(self.categories)))

    @property
    def grand_total(self) -> int:
        return sum(self.totals)

    @property
    def empty(self) -> bool:
        return not self.categories or not any(self.totals)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int
    category: int
    value: int


@dataclass(frozen=True)
class Tick:
    value: int
    position: float  # y of a column chart's axis, x of a row chart's


@dataclass(frozen=True)
class Table:
    """The figures of a chart for people who read them: a row per category, a total row."""

    caption: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    total: tuple[str, ...]


# --- numbers --------------------------------------------------------------------------------------


def nice_ticks(maximum: int, money: bool = False, count: int = 5) -> list[int]:
    """Axis ticks from 0 to at least `maximum` at a round step (1, 2 or 5 times a power of ten);
    in fen the step is whole yuan. No data: the single tick 0."""
    if maximum <= 0:
        return [0]
    floor = 100 if money else 1
    raw = max(maximum / count, floor)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(int(step), floor)
    top = math.ceil(maximum / step) * step
    return list(range(0, top + 1, step))


def figure(value: int, money: bool) -> str:
    """A value as a label: a count as it is, fen as yuan."""
    return yuan(value) if money else f"{value:,}"


def axis_label(value: int, money: bool) -> str:
    """A tick's label: short (ticks of money are whole yuan)."""
    return f"{value // 100:,}" if money else f"{value:,}"


def _label_every(count: int, room: int) -> int:
    """Label one category in n so that labels do not overlap (e.g. every 5th of 30 days)."""
    return max(1, math.ceil(count / room))


def _fits(text: str, room: float) -> bool:
    """Whether a label of digits and punctuation fits in `room` units (about 0.62 em a character)."""
    return len(text) * FONT * 0.62 <= room


# --- geometry -------------------------------------------------------------------------------------


def column_bars(chart: Chart) -> tuple[list[Bar], list[Tick]]:
    """Stacked columns: heights proportional to the values on a 0..top-tick axis."""
    ticks = nice_ticks(max(chart.totals, default=0), chart.money)
    top, plot_h = ticks[-1], HEIGHT - TOP - BOTTOM
    base = HEIGHT - BOTTOM
    scale = plot_h / top if top else 0.0
    axis = [Tick(v, base - v * scale) for v in ticks]
    if chart.empty:
        return [], axis
    slot = (WIDTH - LEFT - RIGHT) / len(chart.categories)
    width = slot * 0.7
    bars: list[Bar] = []
    for c in range(len(chart.categories)):
        y = float(base)
        for s, series in enumerate(chart.series):
            value = series.values[c]
            if value <= 0:
                continue
            height = value * scale
            y -= height
            bars.append(Bar(LEFT + c * slot + (slot - width) / 2, y, width, height, s, c, value))
    return bars, axis


def row_height(chart: Chart) -> int:
    return TOP + max(1, len(chart.categories)) * (ROW_HEIGHT + ROW_GAP) + BOTTOM


def row_bars(chart: Chart) -> tuple[list[Bar], list[Tick]]:
    """Horizontal bars (the first series): lengths proportional to the values."""
    values = chart.series[0].values if chart.series else ()
    ticks = nice_ticks(max(values, default=0), chart.money)
    top, plot_w = ticks[-1], WIDTH - LABEL_WIDTH - RIGHT - 48  # room for the value at the bar's end
    scale = plot_w / top if top else 0.0
    axis = [Tick(v, LABEL_WIDTH + v * scale) for v in ticks]
    bars = [
        Bar(LABEL_WIDTH, TOP + i * (ROW_HEIGHT + ROW_GAP), value * scale, ROW_HEIGHT, 0, i, value)
        for i, value in enumerate(values)
    ]
    return ([] if chart.empty else bars), axis


# --- markup ---------------------------------------------------------------------------------------


def fill(chart: Chart, series: int, use: str = "p") -> str:
    """The fill of a series: its colour, through its pattern from the second series on. `use`
    tells the chart's patterns ("p") from the legend's ("l"): each SVG carries its own."""
    if PATTERNS[series % len(PATTERNS)] == "solid":
        return PALETTE[series % len(PALETTE)]
    return f"url(#{chart.key}-{use}{series})"


def _pattern(chart: Chart, series: int, use: str = "p") -> str:
    kind, colour = PATTERNS[series % len(PATTERNS)], PALETTE[series % len(PALETTE)]
    marks = {
        "stripes": '<path d="M-1,1 l2,-2 M0,8 l8,-8 M7,9 l2,-2" stroke="#fff" stroke-width="2"/>',
        "dots": '<circle cx="4" cy="4" r="1.6" fill="#fff"/>',
        "cross": '<path d="M0,4 h8 M4,0 v8" stroke="#fff" stroke-width="1.5"/>',
    }
    if kind == "solid":
        return ""
    return (
        f'<pattern id="{chart.key}-{use}{series}" width="8" height="8" patternUnits="userSpaceOnUse">'
        f'<rect width="8" height="8" fill="{colour}"/>{marks[kind]}</pattern>'
    )


def summary(chart: Chart) -> str:
    """What a screen reader hears for the picture: the title and the totals."""
    if chart.empty:
        return f"{chart.title}：{EMPTY}"
    unit = "" if chart.money else chart.unit
    if chart.stacked:
        parts = [f"合计 {figure(chart.grand_total, chart.money)}{unit}"]
    else:
        parts = [f"{s.name}合计 {figure(s.total, chart.money)}{unit}" for s in chart.series]
    if chart.stacked and len(chart.series) > 1:
        parts += [f"{s.name} {figure(s.total, chart.money)}" for s in chart.series]
    else:
        first = chart.series[0].values
        parts += [f"{c} {figure(v, chart.money)}" for c, v in zip(chart.categories, first, strict=True) if v][:12]
    return f"{chart.title}：" + "，".join(parts)


def _svg(chart: Chart, height: int, body: list[str]) -> Markup:
    defs = "".join(_pattern(chart, s) for s in range(len(chart.series)))
    label = escape(summary(chart))
    return Markup(
        f'<svg class="chart" id="{chart.key}-chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg" font-size="{FONT}" font-family="sans-serif">'
        f"<title>{label}</title><defs>{defs}</defs>{''.join(body)}</svg>"
    )


def _empty_note(x: float, y: float) -> str:
    return f'<text class="empty" x="{x:.1f}" y="{y:.1f}" text-anchor="middle" fill="#555" font-size="16">{EMPTY}</text>'


def _bar_title(chart: Chart, bar: Bar) -> str:
    series = chart.series[bar.series].name
    return escape(f"{chart.categories[bar.category]} {series}：{figure(bar.value, chart.money)}")


def render_columns(chart: Chart) -> Markup:
    bars, ticks = column_bars(chart)
    base, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    body = [
        f'<line x1="{LEFT}" y1="{t.position:.1f}" x2="{right}" y2="{t.position:.1f}" stroke="#d0d4da"/>'
        f'<text x="{LEFT - 6}" y="{t.position + 4:.1f}" text-anchor="end" fill="#333">'
        f"{axis_label(t.value, chart.money)}</text>"
        for t in ticks
    ]
    body.append(
        f'<text x="4" y="{TOP - 4 + 8}" fill="#333">{"元" if chart.money else escape(chart.unit)}</text>'
        f'<line x1="{LEFT}" y1="{base}" x2="{right}" y2="{base}" stroke="#333"/>'
    )
    body += [
        f'<rect class="bar" data-series="{b.series}" data-value="{b.value}" x="{b.x:.1f}" y="{b.y:.1f}" '
        f'width="{b.width:.1f}" height="{b.height:.1f}" fill="{fill(chart, b.series)}" stroke="#fff" '
        f'stroke-width="0.5"><title>{_bar_title(chart, b)}</title></rect>'
        for b in bars
    ]
    body += _column_labels(chart)
    if chart.empty:
        body.append(_empty_note((LEFT + right) / 2, (TOP + base) / 2))
    return _svg(chart, HEIGHT, body)


def _column_labels(chart: Chart) -> list[str]:
    """The categories under the axis (one in n when crowded), the totals over the columns when there is room."""
    if not chart.categories:
        return []
    slot = (WIDTH - LEFT - RIGHT) / len(chart.categories)
    every = _label_every(len(chart.categories), 6)
    labels = []
    bars, _ = column_bars(chart)
    top_of = {b.category: b.y for b in bars}  # the last (highest) segment's y wins
    for c, name in enumerate(chart.categories):
        middle = LEFT + c * slot + slot / 2
        if c % every == 0:
            labels.append(
                f'<text x="{middle:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" fill="#333">'
                f"{escape(name)}</text>"
            )
        total = axis_label(chart.totals[c], chart.money)
        if c in top_of and len(chart.categories) <= 16 and _fits(total, slot):
            labels.append(
                f'<text class="total" x="{middle:.1f}" y="{top_of[c] - 4:.1f}" text-anchor="middle" fill="#1a1a1a">'
                f"{total}</text>"
            )
    return labels


def render_rows(chart: Chart) -> Markup:
    bars, ticks = row_bars(chart)
    height = row_height(chart)
    base = height - BOTTOM
    body = [
        f'<line x1="{t.position:.1f}" y1="{TOP}" x2="{t.position:.1f}" y2="{base}" stroke="#d0d4da"/>'
        f'<text x="{t.position:.1f}" y="{base + 16}" text-anchor="middle" fill="#333">'
        f"{axis_label(t.value, chart.money)}</text>"
        for t in ticks
    ]
    for i, name in enumerate(chart.categories):
        y = TOP + i * (ROW_HEIGHT + ROW_GAP) + ROW_HEIGHT / 2 + 4
        body.append(f'<text x="{LABEL_WIDTH - 6}" y="{y:.1f}" text-anchor="end" fill="#1a1a1a">{escape(name)}</text>')
    body += [
        f'<rect class="bar" data-series="0" data-value="{b.value}" x="{b.x:.1f}" y="{b.y:.1f}" '
        f'width="{b.width:.1f}" height="{b.height:.1f}" fill="{fill(chart, 0)}">'
        f"<title>{_bar_title(chart, b)}</title></rect>"
        f'<text class="value" x="{b.x + b.width + 4:.1f}" y="{b.y + ROW_HEIGHT / 2 + 4:.1f}" fill="#1a1a1a">'
        f"{escape(figure(b.value, chart.money))}</text>"
        for b in bars
    ]
    body.append(f'<line x1="{LABEL_WIDTH}" y1="{TOP}" x2="{LABEL_WIDTH}" y2="{base}" stroke="#333"/>')
    if chart.empty:
        body.append(_empty_note((LABEL_WIDTH + WIDTH) / 2, (TOP + base) / 2))
    return _svg(chart, height, body)


@dataclass(frozen=True)
class LegendItem:
    name: str
    swatch: Markup
    pattern: str  # said in words too: 实心, 斜线, ...


def legend(chart: Chart) -> list[LegendItem]:
    """One swatch per series, drawn with the series' own fill (a tiny SVG of its own): even a
    single series is named (the one district, the one channel with figures)."""
    items = []
    for s, series in enumerate(chart.series):
        swatch = Markup(
            f'<svg class="swatch" width="18" height="14" viewBox="0 0 18 14" aria-hidden="true">'
            f"<defs>{_pattern(chart, s, 'l')}</defs>"
            f'<rect width="18" height="14" fill="{fill(chart, s, "l")}" stroke="#333"/></svg>'
        )
        items.append(LegendItem(series.name, swatch, PATTERN_NAMES[PATTERNS[s % len(PATTERNS)]]))
    return items


def data_table(chart: Chart, category_head: str) -> Table:
    """The chart's figures: a column per series (and a total column when stacked), a total row."""
    stacked = chart.stacked and len(chart.series) > 1
    head = (category_head, *(s.name for s in chart.series), *(("合计",) if stacked else ()))
    rows = []
    for c, name in enumerate(chart.categories):
        cells = [figure(s.values[c], chart.money) for s in chart.series]
        rows.append((name, *cells, *((figure(chart.totals[c], chart.money),) if stacked else ())))
    total = (
        "合计",
        *(figure(s.total, chart.money) for s in chart.series),
        *((figure(chart.grand_total, chart.money),) if stacked else ()),
    )
    return Table(chart.title, head, tuple(rows), total)

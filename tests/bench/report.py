"""Our code against a raw baseline run in the same process: events/s, ratio, target, CPU, memory.

A `Run` is one measured pass (ours or the raw baseline); a `Comparison` pairs them with the
ratio the issue sets as target (issue 10, item 3). CPU-seconds are given per 1,000 events for
this process (or the worker process that did the work), the PostgreSQL cluster and the broker
(tests/bench/cpu.py says how each is read and how far to trust it).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.table import Table

from tests.bench.cpu import Cpu
from tests.bench.measure import Rated


@dataclass
class Run(Rated):
    label: str
    events: int
    seconds: float
    cpu: Cpu = field(default_factory=Cpu)
    peak_rss: int | None = None  # bytes: VmHWM of a worker process, or None
    latencies: list[float] = field(default_factory=list)


@dataclass
class Comparison:
    what: str
    ours: Run
    raw: Run
    target: float | None  # ratio ours/raw that passes; None: shown for information

    @property
    def ratio(self) -> float:
        return self.ours.rate / self.raw.rate

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "–"
        return "PASS" if self.ratio >= self.target else "BELOW"


def _cpu(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _mib(value: int | None) -> str:
    return "–" if value is None else f"{value / 2**20:.0f} MiB"


def comparison_table(title: str, rows: Sequence[Comparison], caption: str | None = None) -> Table:
    t = Table(title=title, caption=caption, caption_justify="left", title_justify="left")
    for name, justify in (
        ("scenario", "left"),
        ("run", "left"),
        ("events", "right"),
        ("seconds", "right"),
        ("events/s", "right"),
        ("ours/raw", "right"),
        ("target", "right"),
        ("", "left"),
        ("CPU-s/1k\nprocess", "right"),
        ("CPU-s/1k\nPostgreSQL", "right"),
        ("CPU-s/1k\nbroker", "right"),
        ("peak RSS", "right"),
    ):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in rows:
        for run, is_ours in ((c.raw, False), (c.ours, True)):
            process, pg, broker = run.cpu.per_thousand(run.events)
            t.add_row(
                c.what if not is_ours else "",
                run.label,
                f"{run.events:,}",
                f"{run.seconds:.2f}",
                f"{run.rate:,.0f}",
                f"{c.ratio:.0%}" if is_ours else "(baseline)",
                f"≥ {c.target:.0%}" if is_ours and c.target is not None else "",
                c.verdict if is_ours else "",
                _cpu(process),
                _cpu(pg),
                _cpu(broker),
                _mib(run.peak_rss),
                end_section=is_ours,
            )
    return t
